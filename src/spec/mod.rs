//! The spec: what a user declares about one VM, and how it is read.
//!
//! Owns parsing (`raw`), validation into domain types (`validate`, pure) and
//! resolution of what the spec names on the host (`resolve`: pack files,
//! content fingerprint; `copies`: copy sources, walked without following
//! links). It never talks to smolvm and never
//! writes anything.

mod copies;
mod error;
mod fingerprint;
mod hashes;
pub mod legacy;
mod location;
mod raw;
mod resolve;
mod secret;
mod validate;
pub mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use copies::{CopyKind, CopySummary, FileCopy, Leaving, leaves, open_file};
pub use error::{Problem, SpecError};
pub use fingerprint::{CopyDiff, CopyPrint, FINGERPRINT_VERSION, Field, Fingerprint, exec_hash};
pub use hashes::Hashes;
pub use legacy::{LegacyPrint, ran_prefix};
pub use location::Location;
pub use resolve::{Desired, owner, resolve, resolve_with};
pub use secret::{MIN_SECRET_LEN, Secret, SecretValue, mask_words};
pub use validate::parse;
pub use values::{
    EnvKey, EnvVar, GuestPath, HostName, HostPath, ImageRef, MachineName, ValueError,
};

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
    /// The egress allow-list's networks (`--allow-cidr`).
    pub allow_cidrs: Vec<IpNet>,
    /// The egress allow-list's host names (`--allow-host`): smolvm resolves
    /// them at create, allows their addresses, and answers DNS for them.
    pub allow_hosts: Vec<HostName>,
    /// `network.dns` as written; `None` when the key is absent, which means
    /// [`Dns::Closed`] (see [`Spec::dns`]). Kept apart from its meaning
    /// only for the fingerprint (see `resolve`).
    pub dns_written: Option<Dns>,
    /// Guest environment given at create, sorted by key.
    pub env: Vec<EnvVar>,
    pub copies: Vec<CopyEntry>,
    /// How copies travel; does not shape the VM.
    pub copy_via: CopyVia,
    pub ready_timeout: Duration,
    pub execs: Vec<ExecStep>,
    /// Secrets by reference; their values are read by `resolve`.
    pub secrets: Vec<SecretRef>,
    /// Where the values that make smolvm's command line long are written,
    /// for problems found after validation (the argument limit).
    pub places: Places,
}

impl Spec {
    /// Whether the spec has an egress allow-list; without one the VM has
    /// no network at all.
    pub fn has_allow_list(&self) -> bool {
        !self.allow_cidrs.is_empty() || !self.allow_hosts.is_empty()
    }

    /// What the guest's DNS may resolve when it has a network: closed
    /// unless the spec says `dns = "open"`.
    pub fn dns(&self) -> Dns {
        self.dns_written.unwrap_or(Dns::Closed)
    }
}

/// `network.dns`: whether the guest may resolve names beyond `allow_hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dns {
    /// Only the names of `allow_hosts` resolve (none when it is empty);
    /// every other query gets NXDOMAIN. The default.
    Closed,
    /// Every query is forwarded to the host's resolver, as smolvm does
    /// when it is given no `--allow-host`.
    Open,
}

/// Where parts of a spec are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Places {
    /// The top of the file, for problems with no better place.
    pub file: Location,
    /// Each `[env]` entry's key.
    pub env: Vec<(EnvKey, Location)>,
    /// The first element of `network.allow_cidrs`, if any.
    pub allow_cidrs: Option<Location>,
    /// The first element of `network.allow_hosts`, if any.
    pub allow_hosts: Option<Location>,
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
