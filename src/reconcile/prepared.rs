//! The inputs of each step, derived once from a desired spec: the single
//! source of the values both `plan` prints and `apply` runs.

use std::path::{Path, PathBuf};

use crate::lifecycle::Step;
use crate::smolvm::{CreateArgs, Dialect, ExecArgs, Version, argv};
use crate::spec::{CopyVia, Desired, Image, SECRETS_DIR};

/// Where the pack of an image ref lives in the cache: `pack create -o STUB`
/// writes `STUB` and `STUB.smolmachine`. It is written as `KEY.partial`
/// (under `KEY.lock`) and renamed to `KEY`, so an interrupted pack never
/// leaves a cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOut {
    pub image: String,
    pub stub: PathBuf,
    pub sidecar: PathBuf,
    pub partial: PathBuf,
    pub lock: PathBuf,
}

impl PackOut {
    fn new(dir: &Path, image: &str, version: Version) -> Self {
        let key = pack_key(image, version);
        PackOut {
            image: image.to_string(),
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

fn pairs(env: &[crate::spec::EnvVar]) -> Vec<(String, String)> {
    env.iter()
        .map(|v| (v.key.to_string(), v.value.clone()))
        .collect()
}

/// The cache key of an image ref packed by a smolvm version.
pub fn pack_key(image: &str, version: Version) -> String {
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
    pub host: PathBuf,
    pub guest: String,
}

/// A desired spec with every step's arguments worked out.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    pub desired: &'a Desired,
    pub cidrs: Vec<String>,
    env: Vec<(String, String)>,
    exec_env: Vec<Vec<(String, String)>>,
    pub pack: Option<PackOut>,
    /// What `create --from` is given.
    pub from: String,
    pub upload: Option<Upload>,
}

impl<'a> Prepared<'a> {
    pub fn new(desired: &'a Desired, cache_dir: &Path, version: Version) -> Self {
        let (pack, from) = match &desired.spec.image {
            Image::Ref(image) => {
                let out = PackOut::new(&cache_dir.join("packs"), image.as_str(), version);
                let from = out.sidecar.to_string_lossy().into_owned();
                (Some(out), from)
            }
            Image::Pack { path, .. } => (None, path.to_string_lossy().into_owned()),
        };
        let id = &desired.fingerprint.copy[..16];
        let archive = !desired.files.is_empty() && desired.spec.copy_via == CopyVia::Archive;
        let upload = archive.then(|| Upload {
            host: cache_dir
                .join("uploads")
                .join(format!("{}-{id}.tar", desired.spec.name)),
            guest: format!("/tmp/bottle-copy-{id}.tar"),
        });
        Prepared {
            desired,
            cidrs: desired
                .spec
                .allow_cidrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            env: pairs(&desired.spec.env),
            exec_env: desired.spec.execs.iter().map(|e| pairs(&e.env)).collect(),
            pack,
            from,
            upload,
        }
    }

    pub fn name(&self) -> &str {
        self.desired.spec.name.as_str()
    }

    pub fn create_args(&self) -> CreateArgs<'_> {
        CreateArgs {
            name: self.name(),
            from: Some(&self.from),
            allow_cidrs: &self.cidrs,
            env: &self.env,
        }
    }

    /// The arguments and command of the i-th exec step. A step given
    /// secrets runs under `sh`, which reads each from its guest file into
    /// the environment, so no value is ever on a command line.
    pub fn exec_args(&self, i: usize) -> (ExecArgs<'_>, Vec<String>) {
        let e = &self.desired.spec.execs[i];
        let args = ExecArgs {
            name: self.name(),
            env: &self.exec_env[i],
            workdir: e.workdir.as_ref().map(|w| w.as_str()),
            timeout: e.timeout,
        };
        if e.secrets.is_empty() {
            return (args, e.run.clone());
        }
        let exports: Vec<String> = e
            .secrets
            .iter()
            .map(|n| format!("export {n}=\"$(cat {SECRETS_DIR}/{n})\""))
            .collect();
        let script = format!("{} && exec \"$@\"", exports.join(" && "));
        let wrapper = ["sh", "-c", &script, "bottle-secrets"].map(str::to_string);
        (
            args,
            wrapper.into_iter().chain(e.run.iter().cloned()).collect(),
        )
    }

    /// The command that unpacks the uploaded archive at `/` and removes it.
    pub fn unpack_command(&self) -> Vec<String> {
        let guest = self.upload.as_ref().map_or("", |u| u.guest.as_str());
        let script = format!("tar -xf {guest} -C / && rm -f {guest}");
        ["sh", "-c", &script].map(str::to_string).to_vec()
    }

    /// The guest file of a secret.
    pub fn secret_path(name: &str) -> String {
        format!("{SECRETS_DIR}/{name}")
    }

    /// The command that makes the secrets directory private.
    pub fn secrets_dir_command() -> Vec<String> {
        let script = format!("mkdir -p {SECRETS_DIR} && chmod 700 {SECRETS_DIR}");
        ["sh", "-c", &script].map(str::to_string).to_vec()
    }

    /// The command that makes every secret file read-only for its owner.
    pub fn secrets_mode_command(&self) -> Vec<String> {
        let files = self
            .desired
            .secrets
            .iter()
            .map(|s| Self::secret_path(s.name.as_str()));
        ["chmod".to_string(), "400".to_string()]
            .into_iter()
            .chain(files)
            .collect()
    }

    /// `(host, NAME:guest)` of the i-th file to copy.
    pub fn copy_args(&self, i: usize) -> (&str, String) {
        let f = &self.desired.files[i];
        (f.host.as_str(), format!("{}:{}", self.name(), f.guest))
    }

    /// What a step does, in words, for progress lines.
    pub fn describe(&self, step: Step) -> String {
        match step {
            Step::Pack => format!(
                "pack {}",
                self.pack.as_ref().map_or("", |p| p.image.as_str())
            ),
            Step::StopOld => "stop the machine being replaced".into(),
            Step::DeleteOld => "delete the machine being replaced".into(),
            Step::Create => "create".into(),
            Step::Start => "start".into(),
            Step::WaitReady => "wait-ready".into(),
            Step::Secrets => {
                let names: Vec<&str> = self
                    .desired
                    .secrets
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                format!("secrets {}", names.join(", "))
            }
            Step::Copy(i) => format!("copy {}", self.desired.files[i].guest),
            Step::Upload => format!("upload {} files", self.desired.files.len()),
            Step::Unpack => {
                let dests: Vec<&str> = self
                    .desired
                    .spec
                    .copies
                    .iter()
                    .map(|c| c.dest.as_str())
                    .collect();
                format!("unpack {}", dests.join(", "))
            }
            Step::Exec(i) => format!("exec {}", self.desired.spec.execs[i].run.join(" ")),
        }
    }

    /// The argv of every call a step makes (for readiness, one probe; a
    /// secret's host temp file is shown as `<temp file>`).
    pub fn calls(&self, program: &str, dialect: Dialect, step: Step) -> Vec<Vec<String>> {
        let name = self.name();
        let exec = |cmd: &[String]| {
            let args = ExecArgs {
                name,
                ..ExecArgs::default()
            };
            argv::machine_exec(program, &args, cmd)
        };
        match step {
            Step::Secrets => {
                let mut v = vec![exec(&Self::secrets_dir_command())];
                for s in &self.desired.secrets {
                    let dst = format!("{name}:{}", Self::secret_path(s.name.as_str()));
                    v.push(argv::machine_cp(program, "<temp file>", &dst));
                }
                v.push(exec(&self.secrets_mode_command()));
                v
            }
            _ => vec![self.argv(program, dialect, step)],
        }
    }

    /// The argv a step runs (for readiness, one probe of it; for secrets,
    /// the first of its calls).
    pub fn argv(&self, program: &str, dialect: Dialect, step: Step) -> Vec<String> {
        let name = self.name();
        match step {
            Step::Secrets => argv::machine_exec(
                program,
                &ExecArgs {
                    name,
                    ..ExecArgs::default()
                },
                &Self::secrets_dir_command(),
            ),
            Step::Pack => {
                let p = self.pack.as_ref();
                let image = p.map_or("", |p| p.image.as_str());
                let stub = p.map_or(String::new(), |p| p.partial.to_string_lossy().into_owned());
                argv::pack_create(program, image, &stub)
            }
            Step::StopOld => argv::machine_stop(program, name),
            Step::DeleteOld => argv::machine_delete(program, dialect, name),
            Step::Create => argv::machine_create(program, dialect, &self.create_args()),
            Step::Start => argv::machine_start(program, name),
            Step::WaitReady => {
                let args = ExecArgs {
                    name,
                    ..ExecArgs::default()
                };
                argv::machine_exec(program, &args, &["true".to_string()])
            }
            Step::Copy(i) => {
                let (src, dst) = self.copy_args(i);
                argv::machine_cp(program, src, &dst)
            }
            Step::Upload => {
                let (host, guest) =
                    self.upload
                        .as_ref()
                        .map_or((String::new(), String::new()), |u| {
                            (
                                u.host.to_string_lossy().into_owned(),
                                format!("{name}:{}", u.guest),
                            )
                        });
                argv::machine_cp(program, &host, &guest)
            }
            Step::Unpack => argv::machine_exec(
                program,
                &ExecArgs {
                    name,
                    ..ExecArgs::default()
                },
                &self.unpack_command(),
            ),
            Step::Exec(i) => {
                let (args, cmd) = self.exec_args(i);
                argv::machine_exec(program, &args, &cmd)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_keys_depend_on_image_and_smolvm_version() {
        let v = Version::new(1, 9, 3);
        let k = pack_key("alpine:3", v);
        assert_eq!(k.len(), 32);
        assert_eq!(k, pack_key("alpine:3", v));
        assert_ne!(k, pack_key("alpine:4", v));
        assert_ne!(k, pack_key("alpine:3", Version::new(1, 9, 2)));
        assert!(!k.ends_with(".smolmachine"));
    }
}
