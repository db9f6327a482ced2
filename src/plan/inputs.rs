//! The inputs of each step, worked out once from a desired spec, and the
//! calls each step makes: the single source of what `bottle plan` prints,
//! what the executor runs and what hints tell a human to run.
//!
//! Pure: it decides paths but creates none, and builds every argv with the
//! wrapper's [`Cli`]. Must not run anything.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::lifecycle::Teardown;
use crate::smolvm::argv::{Create, Exec};
use crate::smolvm::call::shorten;
use crate::smolvm::{Call, Cli, GuestTarget, Version};
use crate::spec::{
    CopyKind, CopyPrint, CopyVia, Desired, EnvKey, FileCopy, GuestPath, HostPath, Image, ImageRef,
    MachineName, SECRETS_DIR, Secret, ValueError,
};

use super::decide::CopyShape;
use super::step::Step;
use super::transfer::Transfer;

/// How many bytes of paths one prune call carries at most (well under
/// any kernel's argument limit).
const PRUNE_CHUNK: usize = 64 * 1024;

/// Why the inputs of a spec cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the copy archive {} cannot be given to smolvm's `cp`", path.display())]
    UploadPath {
        path: PathBuf,
        #[source]
        cause: ValueError,
    },
}

/// Where the pack of an image ref lives in the cache: `pack create -o STUB`
/// writes `STUB` and `STUB.smolmachine`. It is written as `KEY.partial`
/// (under `KEY.lock`) and renamed to `KEY`, so an interrupted pack never
/// leaves a cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOut {
    pub image: ImageRef,
    pub stub: PathBuf,
    pub sidecar: PathBuf,
    pub partial: PathBuf,
    pub lock: PathBuf,
}

impl PackOut {
    fn new(dir: &Path, image: &ImageRef, version: &Version) -> Self {
        let key = pack_key(image.as_str(), version);
        PackOut {
            image: image.clone(),
            stub: dir.join(&key),
            sidecar: dir.join(format!("{key}.smolmachine")),
            partial: dir.join(format!("{key}.partial")),
            lock: dir.join(format!("{key}.lock")),
        }
    }

    /// The `.smolmachine` that `pack create -o partial` writes.
    pub fn partial_sidecar(&self) -> PathBuf {
        self.partial.with_extension("partial.smolmachine")
    }

    /// Whether the cache already holds this pack.
    pub fn cached(&self) -> bool {
        self.sidecar.is_file()
    }
}

/// The cache key of an image ref packed by a smolvm version.
pub fn pack_key(image: &str, version: &Version) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"bottle pack v1\n");
    h.update(image.as_bytes());
    h.update(format!("\nsmolvm {version}").as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// The archive of every file to copy: written on the host, uploaded with
/// one `cp`, unpacked with one `exec`. Both paths are named by the content
/// hash of what is copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub host: HostPath,
    pub guest: GuestPath,
}

/// How the secrets of an exec step reach its command, by smolvm version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDelivery {
    /// smolvm 1.0.0 and later: `exec --secret-env NAME=BOTTLE_SECRET_NAME`
    /// with the value in smolvm's own environment. No file holds a value,
    /// on the host or in the guest, and there is no secrets step.
    SmolvmEnv,
    /// smolvm 0.8.x (no `--secret-env`): the secrets step copies each value
    /// into the guest as `/run/bottle/secrets/NAME` (0400) from a host
    /// memfd, and the step's command runs under an `sh` that exports them.
    GuestFiles,
}

impl SecretDelivery {
    pub fn of(version: &Version) -> Self {
        match version.has_secret_env() {
            true => SecretDelivery::SmolvmEnv,
            false => SecretDelivery::GuestFiles,
        }
    }
}

/// Host paths that exist only while a step runs: the path `cp` reads each
/// secret from (`/proc/PID/fd/N` of an anonymous memfd of bottle's), and
/// the one a `copy[i]` step's file is read from (`/proc/PID/fd/N` of
/// bottle's descriptor of the file it checked, so `cp` cannot be led
/// through a link put in its place). `bottle plan` shows them as
/// [`Staged::shown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staged {
    secrets: Vec<(EnvKey, HostPath)>,
    file: Option<HostPath>,
}

impl Staged {
    pub fn new(secrets: Vec<(EnvKey, HostPath)>) -> Self {
        Staged {
            secrets,
            file: None,
        }
    }

    /// The descriptor path a `copy[i]` step's file is read from.
    pub fn file(path: HostPath) -> Self {
        Staged {
            secrets: Vec::new(),
            file: Some(path),
        }
    }

    /// The path plan output gives every secret's memfd: `/proc/PID/fd/N`
    /// (bottle's pid and the descriptor are known only when it runs).
    pub fn shown(desired: &Desired) -> Self {
        let fd = HostPath::parse(Path::new("/proc/PID/fd/N")).ok();
        let secrets = desired.secrets.iter();
        let secrets = fd
            .iter()
            .flat_map(|p| secrets.clone().map(|s| (s.name.clone(), p.clone())));
        Staged {
            secrets: secrets.collect(),
            file: fd.clone(),
        }
    }

    fn secret(&self, name: &EnvKey) -> Option<&HostPath> {
        self.secrets.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

/// A desired spec with every step's arguments worked out.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub desired: &'a Desired,
    pub pack: Option<PackOut>,
    /// What `create --from` is given.
    pub from: PathBuf,
    pub upload: Option<Upload>,
    /// The `[[copy]]` entries this apply sends paths of (their indices in
    /// the spec).
    pub sent: Vec<usize>,
    /// The files and links to send, in spec order: every path for a new
    /// machine, the changed ones in an update. What `upload` archives, or
    /// what the `copy[i]` steps send.
    pub files: Vec<FileCopy>,
    /// What is sent and removed.
    pub transfer: Transfer,
    /// How they travel.
    pub route: CopyShape,
    /// Whether this smolvm's `cp` takes `--mode`.
    pub cp_mode: bool,
    /// How exec steps get their secrets on this smolvm.
    pub secrets: SecretDelivery,
}

impl<'a> Inputs<'a> {
    /// The inputs of an apply of `desired` that makes `transfer`.
    pub fn new(
        desired: &'a Desired,
        cache_dir: &Path,
        version: &Version,
        transfer: Transfer,
    ) -> Result<Self, PlanError> {
        let (pack, from) = match &desired.spec.image {
            Image::Ref(image) => {
                let out = PackOut::new(&cache_dir.join("packs"), image, version);
                let from = out.sidecar.clone();
                (Some(out), from)
            }
            Image::Pack { path, .. } => (None, path.clone()),
        };
        let files = files_sent(desired, &transfer);
        let mut sent: Vec<usize> = transfer.send.iter().map(|(i, _)| *i).collect();
        sent.sort_unstable();
        sent.dedup();
        let cp_mode = version.has_cp_mode();
        let route = route(desired.spec.copy_via, &files, cp_mode);
        let upload = match route {
            CopyShape::Archive => Some(upload(desired, &transfer, cache_dir)?),
            CopyShape::None | CopyShape::Files(_) => None,
        };
        Ok(Inputs {
            desired,
            pack,
            from,
            upload,
            sent,
            files,
            transfer,
            route,
            cp_mode,
            secrets: SecretDelivery::of(version),
        })
    }

    pub fn name(&self) -> &'a MachineName {
        &self.desired.spec.name
    }

    /// Whether the apply has a secrets step: only to put secret files in
    /// the guest, on a smolvm without `--secret-env`.
    pub fn secrets_step(&self) -> bool {
        !self.desired.secrets.is_empty() && self.secrets == SecretDelivery::GuestFiles
    }

    /// The secrets the i-th exec step gives smolvm with `--secret-env`, in
    /// the step's order (none when they travel as guest files).
    fn exec_secrets(&self, i: usize) -> Vec<Secret> {
        let wanted = &self.desired.spec.execs[i].secrets;
        match self.secrets {
            SecretDelivery::GuestFiles => Vec::new(),
            SecretDelivery::SmolvmEnv => wanted
                .iter()
                .filter_map(|n| self.desired.secrets.iter().find(|s| &s.name == n))
                .cloned()
                .collect(),
        }
    }

    /// The command of the i-th exec step. With guest files, a step given
    /// secrets runs under `sh`, which reads each from its guest file into
    /// the environment, so no value is ever on a command line.
    fn exec_command(&self, i: usize) -> Vec<String> {
        let e = &self.desired.spec.execs[i];
        match self.secrets {
            SecretDelivery::SmolvmEnv => e.run.clone(),
            SecretDelivery::GuestFiles => with_secrets(&e.run, &e.secrets),
        }
    }

    /// The command that unpacks the uploaded archive at `/` and removes it.
    fn unpack_command(u: &Upload) -> Vec<String> {
        let guest = &u.guest;
        let script = format!("tar -xf {guest} -C / && rm -f {guest}");
        sh(&script)
    }

    /// The command that makes every secret file read-only for its owner.
    fn secrets_mode_command(&self) -> Vec<String> {
        let files = self
            .desired
            .secrets
            .iter()
            .map(|s| secret_path(&s.name).to_string());
        ["chmod".to_string(), "400".to_string()]
            .into_iter()
            .chain(files)
            .collect()
    }

    /// What a step does, in words, for progress lines.
    pub fn describe(&self, step: Step) -> String {
        let d = self.desired;
        match step {
            Step::Pack => {
                let image = self.pack.as_ref().map(|p| p.image.as_str());
                format!("pack {}", image.unwrap_or_default())
            }
            Step::StopOld => "stop the machine being replaced".into(),
            Step::DeleteOld => "delete the machine being replaced".into(),
            Step::Record => "record the machine as being created".into(),
            Step::Create => "create".into(),
            Step::Start => "start".into(),
            Step::WaitReady => "wait-ready".into(),
            Step::Secrets => {
                let names: Vec<&str> = d.secrets.iter().map(|s| s.name.as_str()).collect();
                format!("secrets {}", names.join(", "))
            }
            Step::Prune => prune_count(&self.transfer),
            Step::Copy(i) => match &self.files[i].kind {
                CopyKind::File { .. } => format!("copy {}", self.files[i].guest),
                CopyKind::Link { target } => format!("link {} -> {target}", self.files[i].guest),
            },
            Step::Upload => format!("upload {}", upload_count(&self.files)),
            Step::Unpack => {
                let dests: Vec<&str> = self
                    .sent
                    .iter()
                    .map(|&i| d.spec.copies[i].dest.as_str())
                    .collect();
                format!("unpack {}", dests.join(", "))
            }
            Step::Exec(i) => format!("exec {}", shorten(&d.spec.execs[i].run.join(" "))),
        }
    }

    /// Every call a step makes, in order (readiness: one probe, repeated
    /// until it succeeds). `staged` names the step's temporary host files.
    pub fn calls(&self, cli: &Cli, step: Step, staged: &Staged) -> Vec<Call> {
        let name = self.name();
        let target = |path| GuestTarget {
            machine: name,
            path,
        };
        match step {
            Step::Record => Vec::new(),
            Step::Pack => self
                .pack
                .iter()
                .map(|p| cli.pack_create(&p.image, &p.partial))
                .collect(),
            Step::StopOld => vec![cli.machine_stop(name)],
            Step::DeleteOld => vec![cli.machine_delete(name)],
            Step::Create => vec![self.create_call(cli)],
            Step::Start => vec![start_calls(cli, name).start],
            Step::WaitReady => vec![start_calls(cli, name).probe],
            Step::Secrets => self.secret_calls(cli, staged),
            Step::Prune => self.prune_calls(cli),
            Step::Copy(i) => {
                let f = &self.files[i];
                let src = staged.file.as_ref().unwrap_or(&f.host);
                match (&f.kind, self.cp_mode) {
                    (CopyKind::File { mode }, true) => {
                        vec![cli.machine_cp_mode(src, target(&f.guest), *mode)]
                    }
                    (CopyKind::File { .. }, false) => vec![cli.machine_cp(src, target(&f.guest))],
                    (CopyKind::Link { target }, _) => {
                        vec![cli.machine_exec(&Exec::on(name), &link_command(&f.guest, target))]
                    }
                }
            }
            Step::Upload => self
                .upload
                .iter()
                .map(|u| cli.machine_cp(&u.host, target(&u.guest)))
                .collect(),
            Step::Unpack => self
                .upload
                .iter()
                .map(|u| cli.machine_exec(&Exec::on(name), &Self::unpack_command(u)))
                .collect(),
            Step::Exec(i) => vec![self.exec_call(cli, i)],
        }
    }

    /// The `create` call: the allow-list, with the `--allow-host` values
    /// that carry the DNS rule (see `egress`), and the env.
    pub fn create_call(&self, cli: &Cli) -> Call {
        let spec = &self.desired.spec;
        cli.machine_create(&Create {
            name: self.name(),
            from: Some(&self.from),
            allow_cidrs: &spec.allow_cidrs,
            allow_hosts: &super::egress::dns(spec).allow_hosts(),
            env: &spec.env,
        })
    }

    /// `rm -f --` of the paths to remove, then `rmdir --` of the
    /// directories to clear where they are empty (`|| true`: one the
    /// agent put files in stays), each split into calls of at most
    /// [`PRUNE_CHUNK`] bytes of paths. Both can run again after a failure
    /// or a crash and do no harm. Every path is an argument, never script
    /// text.
    fn prune_calls(&self, cli: &Cli) -> Vec<Call> {
        let t = &self.transfer;
        let rm = chunks(&t.remove).map(|paths| with_head(&["rm", "-f", "--"], paths));
        let rmdir_head = ["sh", "-c", r#"rmdir -- "$@" || true"#, "bottle-prune"];
        let rmdir = chunks(&t.clear).map(|paths| with_head(&rmdir_head, paths));
        rm.chain(rmdir)
            .map(|cmd| cli.machine_exec(&Exec::on(self.name()), &cmd))
            .collect()
    }

    fn exec_call(&self, cli: &Cli, i: usize) -> Call {
        let e = &self.desired.spec.execs[i];
        let secrets = self.exec_secrets(i);
        let args = Exec {
            name: self.name(),
            env: &e.env,
            secrets: &secrets,
            workdir: e.workdir.as_ref(),
            timeout: e.timeout,
            stream: true,
        };
        cli.machine_exec(&args, &self.exec_command(i))
    }

    fn secret_calls(&self, cli: &Cli, staged: &Staged) -> Vec<Call> {
        let name = self.name();
        let dir = secrets_dir();
        let script = format!("mkdir -p {dir} && chmod 700 {dir}");
        let mut v = vec![cli.machine_exec(&Exec::on(name), &sh(&script))];
        for s in &self.desired.secrets {
            if let Some(src) = staged.secret(&s.name) {
                let path = secret_path(&s.name);
                let target = GuestTarget {
                    machine: name,
                    path: &path,
                };
                v.push(cli.machine_cp(src, target));
            }
        }
        v.push(cli.machine_exec(&Exec::on(name), &self.secrets_mode_command()));
        v
    }
}

/// The id of an archive of the paths `transfer` sends from `copies`: a
/// hash of each path and what is put there.
pub fn upload_id(copies: &[CopyPrint], transfer: &Transfer) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"bottle upload v3\n");
    for (i, path) in &transfer.send {
        let entry = copies[*i].entries.get(path).map_or("", String::as_str);
        h.update(path.as_bytes());
        h.update(b"\0");
        h.update(entry.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex()[..16].to_string()
}

/// The files and links `transfer` sends, in its order.
fn files_sent(desired: &Desired, transfer: &Transfer) -> Vec<FileCopy> {
    let mut by_copy: BTreeMap<usize, HashMap<&str, &FileCopy>> = BTreeMap::new();
    let mut files = Vec::with_capacity(transfer.send.len());
    for (i, path) in &transfer.send {
        let of_copy = by_copy.entry(*i).or_insert_with(|| {
            let all = desired.files_of(*i).iter();
            all.map(|f| (f.guest.as_str(), f)).collect()
        });
        files.extend(of_copy.get(path.as_str()).map(|f| (*f).clone()));
    }
    files
}

/// How `files` travel: one archive, unless the spec asks for one `cp`
/// each, or the one file to send can go by one `cp` that keeps its mode.
fn route(via: CopyVia, files: &[FileCopy], cp_mode: bool) -> CopyShape {
    let one_file = matches!(files, [f] if matches!(f.kind, CopyKind::File { .. }));
    match (files.is_empty(), via) {
        (true, _) => CopyShape::None,
        (false, CopyVia::Cp) => CopyShape::Files(files.len()),
        (false, CopyVia::Archive) if one_file && cp_mode => CopyShape::Files(1),
        (false, CopyVia::Archive) => CopyShape::Archive,
    }
}

/// `remove 2 paths the copies no longer make and 1 directory they no
/// longer need, where empty`.
fn prune_count(t: &Transfer) -> String {
    let plural = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let mut parts = Vec::new();
    if !t.remove.is_empty() {
        let paths = plural(t.remove.len(), "path", "paths");
        parts.push(format!("remove {paths} the copies no longer make"));
    }
    if !t.clear.is_empty() {
        let dirs = plural(t.clear.len(), "directory", "directories");
        parts.push(format!("{dirs} they no longer need, where empty"));
    }
    parts.join(" and ")
}

/// `paths` in runs of at most [`PRUNE_CHUNK`] bytes (at least one path
/// each).
fn chunks(paths: &[String]) -> impl Iterator<Item = &[String]> {
    let mut rest = paths;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .take_while(|p| {
                bytes += p.len() + 1;
                bytes <= PRUNE_CHUNK
            })
            .count()
            .max(1);
        let (run, left) = rest.split_at(n);
        rest = left;
        Some(run)
    })
}

/// `head` followed by `paths`.
fn with_head(head: &[&str], paths: &[String]) -> Vec<String> {
    let head = head.iter().map(|w| (*w).to_string());
    head.chain(paths.iter().cloned()).collect()
}

fn upload(desired: &Desired, transfer: &Transfer, cache_dir: &Path) -> Result<Upload, PlanError> {
    let id = &upload_id(&desired.fingerprint.copies, transfer);
    let path = cache_dir
        .join("uploads")
        .join(format!("{}-{id}.tar", desired.spec.name));
    let host = HostPath::parse(&path).map_err(|cause| PlanError::UploadPath {
        path: path.clone(),
        cause,
    })?;
    Ok(Upload {
        host,
        guest: GuestPath::internal(format!("/tmp/bottle-copy-{id}.tar")),
    })
}

/// `N files`, and `and M links` when there are links.
fn upload_count(files: &[FileCopy]) -> String {
    let links = files
        .iter()
        .filter(|f| matches!(f.kind, CopyKind::Link { .. }))
        .count();
    let plural = |n: usize, one: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    };
    match links {
        0 => plural(files.len(), "file"),
        n => format!(
            "{} and {}",
            plural(files.len() - n, "file"),
            plural(n, "link")
        ),
    }
}

/// The command that makes the link at `path` to `target` in the guest
/// (`copy_via = "cp"`: `cp` copies regular files only): its directory,
/// then `ln -sfn`. Both paths are `sh` parameters, never script text, so
/// no target can be read as shell.
fn link_command(path: &GuestPath, target: &str) -> Vec<String> {
    let parent = match path.as_str().rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    };
    let script = r#"mkdir -p "$1" && ln -sfn -- "$2" "$3""#;
    let params = ["bottle-link", parent, target, path.as_str()];
    sh(script)
        .into_iter()
        .chain(params.map(str::to_string))
        .collect()
}

fn sh(script: &str) -> Vec<String> {
    ["sh", "-c", script].map(str::to_string).to_vec()
}

/// The command that runs `run` with `secrets` in its environment. Given
/// secrets, it runs under `sh`, which reads each from its guest file into
/// the environment, so no value is ever on a command line; without, it is
/// `run` itself. `render k8s` runs exec steps through it too.
pub fn with_secrets(run: &[String], secrets: &[EnvKey]) -> Vec<String> {
    if secrets.is_empty() {
        return run.to_vec();
    }
    let exports: Vec<String> = secrets
        .iter()
        .map(|n| format!("export {n}=\"$(cat {})\"", secret_path(n)))
        .collect();
    let script = format!("{} && exec \"$@\"", exports.join(" && "));
    let wrapper = ["sh", "-c", &script, "bottle-secrets"].map(str::to_string);
    wrapper.into_iter().chain(run.iter().cloned()).collect()
}

/// The guest directory that holds the secrets.
fn secrets_dir() -> GuestPath {
    GuestPath::internal(SECRETS_DIR.to_string())
}

/// The guest file of a secret.
pub fn secret_path(name: &EnvKey) -> GuestPath {
    secrets_dir().child(name)
}

/// How machine `name` is started and waited for: the calls of the
/// `start` and `wait-ready` steps, and what `bottle start` runs.
pub struct StartCalls {
    pub start: Call,
    /// Repeated until it exits 0.
    pub probe: Call,
}

pub fn start_calls(cli: &Cli, name: &MachineName) -> StartCalls {
    StartCalls {
        start: cli.machine_start(name),
        probe: cli.probe(name),
    }
}

/// The call of one teardown step of machine `name`.
pub fn teardown_call(cli: &Cli, name: &MachineName, t: Teardown) -> Call {
    match t {
        Teardown::Stop => cli.machine_stop(name),
        Teardown::Delete => cli.machine_delete(name),
    }
}

/// The calls of a whole teardown of machine `name`: what a failure after
/// `create` makes, and what a hint tells a human to run.
pub fn teardown_calls(cli: &Cli, name: &MachineName) -> Vec<Call> {
    [Teardown::Stop, Teardown::Delete]
        .map(|t| teardown_call(cli, name, t))
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smolvm::Dialect;

    /// A spec whose one exec step is given secret `TOKEN` (from a file).
    fn desired_with_a_secret(dir: &Path) -> Desired {
        std::fs::write(dir.join("token"), "t0ken-value\n").unwrap();
        let text = "name = \"vm\"\n[image]\nref = \"a:1\"\n[[exec]]\nrun = [\"agent\"]\n\
                    secrets = [\"TOKEN\"]\n[secrets]\nTOKEN = { from_file = \"token\" }\n";
        let spec = crate::spec::parse(&dir.join("spec.toml"), text).unwrap();
        crate::spec::resolve(spec).unwrap()
    }

    #[test]
    fn from_1_0_0_secrets_go_through_smolvm_s_environment_and_no_step_copies_them() {
        let tmp = tempfile::tempdir().unwrap();
        let d = desired_with_a_secret(tmp.path());
        let v = Version::new(1, 0, 0);
        let inputs = Inputs::new(&d, tmp.path(), &v, Transfer::default()).unwrap();
        assert_eq!(inputs.secrets, SecretDelivery::SmolvmEnv);
        assert!(!inputs.secrets_step());
        let cli = Cli::new("smolvm", Dialect::Positional);
        let calls = inputs.calls(&cli, Step::Exec(0), &Staged::default());
        assert_eq!(
            calls[0].to_string(),
            "smolvm machine exec --name vm --secret-env TOKEN=BOTTLE_SECRET_TOKEN --stream -- agent"
        );
        let env: Vec<_> = calls[0]
            .env
            .iter()
            .map(|v| (v.name.as_str(), v.value.expose()))
            .collect();
        assert_eq!(env, [("BOTTLE_SECRET_TOKEN", &b"t0ken-value"[..])]);
    }

    #[test]
    fn before_1_0_0_secrets_are_guest_files_read_by_a_wrapper() {
        let tmp = tempfile::tempdir().unwrap();
        let d = desired_with_a_secret(tmp.path());
        let v = Version::new(0, 9, 9);
        let inputs = Inputs::new(&d, tmp.path(), &v, Transfer::default()).unwrap();
        assert_eq!(inputs.secrets, SecretDelivery::GuestFiles);
        assert!(inputs.secrets_step());
        let cli = Cli::new("smolvm", Dialect::Positional);
        let exec = &inputs.calls(&cli, Step::Exec(0), &Staged::default())[0];
        assert!(exec.env.is_empty());
        assert_eq!(
            exec.to_string(),
            "smolvm machine exec --name vm --stream -- sh -c 'export TOKEN=\"$(cat /run/bottle/secrets/TOKEN)\" \
             && exec \"$@\"' bottle-secrets agent"
        );
        let shown: Vec<String> = inputs
            .calls(&cli, Step::Secrets, &Staged::shown(&d))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "smolvm machine exec --name vm -- sh -c 'mkdir -p /run/bottle/secrets && chmod 700 /run/bottle/secrets'",
                "smolvm machine cp /proc/PID/fd/N vm:/run/bottle/secrets/TOKEN",
                "smolvm machine exec --name vm -- chmod 400 /run/bottle/secrets/TOKEN",
            ]
        );
    }

    #[test]
    fn paths_to_prune_go_in_calls_of_at_most_64_kib_and_never_none() {
        let path = |i: usize| format!("/workspace/{i:0>95}");
        let many: Vec<String> = (0..1000).map(path).collect();
        let runs: Vec<usize> = chunks(&many).map(<[String]>::len).collect();
        assert_eq!(runs, [612, 388], "107 bytes a path, with its separator");
        assert_eq!(chunks(&many[..600]).count(), 1);
        let huge = vec!["/".repeat(PRUNE_CHUNK + 1)];
        assert_eq!(
            chunks(&huge).count(),
            1,
            "a path longer than a chunk goes alone"
        );
        assert_eq!(chunks(&[]).count(), 0);
    }

    #[test]
    fn pack_keys_depend_on_image_and_smolvm_version() {
        let v = Version::new(1, 9, 3);
        let k = pack_key("alpine:3", &v);
        assert_eq!(k.len(), 32);
        assert_eq!(k, pack_key("alpine:3", &v));
        assert_ne!(k, pack_key("alpine:4", &v));
        assert_ne!(k, pack_key("alpine:3", &Version::new(1, 9, 2)));
        assert!(!k.ends_with(".smolmachine"));
    }

    #[test]
    fn a_link_is_made_by_ln_with_its_target_as_a_parameter() {
        let path = GuestPath::parse("/w/a/notes.txt").unwrap();
        assert_eq!(
            link_command(&path, "../$(reboot) '-x"),
            [
                "sh",
                "-c",
                r#"mkdir -p "$1" && ln -sfn -- "$2" "$3""#,
                "bottle-link",
                "/w/a",
                "../$(reboot) '-x",
                "/w/a/notes.txt"
            ]
        );
        let top = link_command(&GuestPath::parse("/l").unwrap(), "x");
        assert_eq!(top[4], "/");
    }
}
