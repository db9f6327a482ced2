//! The inputs of each step, worked out once from a desired spec, and the
//! calls each step makes: the single source of what `bottle plan` prints,
//! what the executor runs and what hints tell a human to run.
//!
//! Pure: it decides paths but creates none, and builds every argv with the
//! wrapper's [`Cli`]. Must not run anything.

use std::path::{Path, PathBuf};

use crate::lifecycle::Teardown;
use crate::smolvm::argv::{Create, Exec};
use crate::smolvm::{Call, Cli, GuestTarget, Version};
use crate::spec::{
    CopyVia, Desired, EnvKey, GuestPath, HostPath, Image, ImageRef, MachineName, SECRETS_DIR,
    ValueError,
};

use super::step::Step;

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

/// Host files that exist only while a step runs: each secret's temporary
/// copy. `bottle plan` shows them as [`Staged::shown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staged {
    secrets: Vec<(EnvKey, HostPath)>,
}

impl Staged {
    pub fn new(secrets: Vec<(EnvKey, HostPath)>) -> Self {
        Staged { secrets }
    }

    /// The names plan output gives the temporary files:
    /// `$TMPDIR/bottle-secret-XXXXXX` (the suffix is chosen when it runs).
    pub fn shown(desired: &Desired) -> Self {
        let shown = std::env::temp_dir().join("bottle-secret-XXXXXX");
        let path = HostPath::parse(&shown)
            .or_else(|_| HostPath::parse(Path::new("/tmp/bottle-secret-XXXXXX")));
        let secrets = match path {
            Ok(p) => desired
                .secrets
                .iter()
                .map(|s| (s.name.clone(), p.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        Staged { secrets }
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
}

impl<'a> Inputs<'a> {
    pub fn new(
        desired: &'a Desired,
        cache_dir: &Path,
        version: &Version,
    ) -> Result<Self, PlanError> {
        let (pack, from) = match &desired.spec.image {
            Image::Ref(image) => {
                let out = PackOut::new(&cache_dir.join("packs"), image, version);
                let from = out.sidecar.clone();
                (Some(out), from)
            }
            Image::Pack { path, .. } => (None, path.clone()),
        };
        let archive = !desired.files.is_empty() && desired.spec.copy_via == CopyVia::Archive;
        let upload = match archive {
            true => Some(upload(desired, cache_dir)?),
            false => None,
        };
        Ok(Inputs {
            desired,
            pack,
            from,
            upload,
        })
    }

    pub fn name(&self) -> &'a MachineName {
        &self.desired.spec.name
    }

    /// The command of the i-th exec step. A step given secrets runs under
    /// `sh`, which reads each from its guest file into the environment, so
    /// no value is ever on a command line.
    fn exec_command(&self, i: usize) -> Vec<String> {
        let e = &self.desired.spec.execs[i];
        if e.secrets.is_empty() {
            return e.run.clone();
        }
        let exports: Vec<String> = e
            .secrets
            .iter()
            .map(|n| format!("export {n}=\"$(cat {})\"", secret_path(n)))
            .collect();
        let script = format!("{} && exec \"$@\"", exports.join(" && "));
        let wrapper = ["sh", "-c", &script, "bottle-secrets"].map(str::to_string);
        wrapper.into_iter().chain(e.run.iter().cloned()).collect()
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
            Step::Copy(i) => format!("copy {}", d.files[i].guest),
            Step::Upload => format!("upload {} files", d.files.len()),
            Step::Unpack => {
                let dests: Vec<&str> = d.spec.copies.iter().map(|c| c.dest.as_str()).collect();
                format!("unpack {}", dests.join(", "))
            }
            Step::Exec(i) => format!("exec {}", d.spec.execs[i].run.join(" ")),
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
            Step::Start => vec![cli.machine_start(name)],
            Step::WaitReady => vec![cli.probe(name)],
            Step::Secrets => self.secret_calls(cli, staged),
            Step::Copy(i) => {
                let f = &self.desired.files[i];
                vec![cli.machine_cp(&f.host, target(&f.guest))]
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

    fn create_call(&self, cli: &Cli) -> Call {
        let spec = &self.desired.spec;
        cli.machine_create(&Create {
            name: self.name(),
            from: Some(&self.from),
            allow_cidrs: &spec.allow_cidrs,
            env: &spec.env,
        })
    }

    fn exec_call(&self, cli: &Cli, i: usize) -> Call {
        let e = &self.desired.spec.execs[i];
        let args = Exec {
            name: self.name(),
            env: &e.env,
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

fn upload(desired: &Desired, cache_dir: &Path) -> Result<Upload, PlanError> {
    let id = &desired.fingerprint.copy[..16];
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

fn sh(script: &str) -> Vec<String> {
    ["sh", "-c", script].map(str::to_string).to_vec()
}

/// The guest directory that holds the secrets.
fn secrets_dir() -> GuestPath {
    GuestPath::internal(SECRETS_DIR.to_string())
}

/// The guest file of a secret.
pub fn secret_path(name: &EnvKey) -> GuestPath {
    secrets_dir().child(name)
}

/// The call of one teardown step of machine `name`.
pub fn teardown_call(cli: &Cli, name: &MachineName, t: Teardown) -> Call {
    match t {
        Teardown::Stop => cli.machine_stop(name),
        Teardown::Delete => cli.machine_delete(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
