//! The spec: what a user declares about one VM, and how it is read.
//!
//! Owns parsing (`raw`), validation into domain types (`validate`, pure) and
//! resolution of what the spec names on the host (`resolve`: pack files,
//! content fingerprint; `copies`: copy sources, walked without following
//! links). It never talks to smolvm and never
//! writes anything.

mod copies;
mod error;
mod location;
mod raw;
mod resolve;
mod secret;
mod validate;
pub mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use copies::{CopyKind, CopySummary, FileCopy, Leaving, leaves};
pub use error::{Problem, SpecError};
pub use location::Location;
pub use resolve::{Desired, Field, Fingerprint, resolve};
pub use secret::{MIN_SECRET_LEN, Secret, SecretValue};
pub use validate::parse;
pub use values::{EnvKey, EnvVar, GuestPath, HostPath, ImageRef, MachineName, ValueError};

/// The default deadline for the guest to answer after `start`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A validated spec. Every value here has passed its rule; host paths are
/// absolute (so none can be read as a flag) but not yet checked on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The spec file, as the user named it.
    pub file: PathBuf,
    pub name: MachineName,
    pub image: Image,
    pub allow_cidrs: Vec<IpNet>,
    /// Guest environment given at create, sorted by key.
    pub env: Vec<EnvVar>,
    pub copies: Vec<CopyEntry>,
    /// How copies travel; does not shape the VM.
    pub copy_via: CopyVia,
    pub ready_timeout: Duration,
    pub execs: Vec<ExecStep>,
    /// Secrets by reference; their values are read by `resolve`.
    pub secrets: Vec<SecretRef>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// A host environment variable.
    Env(EnvKey),
    /// A host file (absolute).
    File(PathBuf),
}

/// A `[secrets]` entry: a name (a POSIX variable name) and its source.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef {
    pub name: EnvKey,
    pub source: SecretSource,
    pub at: Location,
}

/// Where secrets are put in the guest, one file per secret.
pub const SECRETS_DIR: &str = "/run/bottle/secrets";

/// Where the VM's root filesystem comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// An OCI image reference, packed by bottle into its cache.
    Ref(ImageRef),
    /// An existing `.smolmachine` pack file.
    Pack { path: PathBuf, at: Location },
}

/// How the files of `[[copy]]` reach the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyVia {
    /// One tar archive, one `cp`, one `exec` that unpacks it (the default;
    /// needs `tar` in the image, as busybox and every distro have).
    Archive,
    /// One `cp` per file, for images without `tar`.
    Cp,
}

/// One `[[copy]]` entry: a host file or directory to a guest path.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyEntry {
    pub src: PathBuf,
    pub dest: GuestPath,
    /// Where `src` is written in the spec, for errors found on disk.
    pub at: Location,
    pub key: String,
}

/// One `[[exec]]` step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecStep {
    pub run: Vec<String>,
    pub workdir: Option<GuestPath>,
    pub env: Vec<EnvVar>,
    pub timeout: Option<Duration>,
    /// Secrets given to this step as environment variables.
    pub secrets: Vec<EnvKey>,
}

/// Read, parse and validate the spec at `path`.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests;
