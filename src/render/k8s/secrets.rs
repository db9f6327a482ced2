//! The spec's secrets on Kubernetes: a Secret named after the machine with
//! one key per secret, mounted read-only with mode 0400 at the guest path
//! bottle uses on a host (`/run/bottle/secrets`), so exec steps read them
//! exactly as they do there.
//!
//! By default the Secret is not rendered: the user creates it with
//! [`create_command`], which names the host files and variables the values
//! come from and never holds a value itself. Pure: values come from
//! [`Desired`], already read.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, SecretVolumeSource, Volume, VolumeMount};

use crate::smolvm::call::quote;
use crate::spec::{Desired, SECRETS_DIR, SecretRef, SecretSource};

use super::meta;

/// The pod volume holding the Secret.
pub const VOLUME: &str = "secrets";
/// The mode of every secret file, as on a host.
const MODE: i32 = 0o400;

/// The Secret volume, if the spec has secrets.
pub fn volume(d: &Desired) -> Option<Volume> {
    if d.spec.secrets.is_empty() {
        return None;
    }
    Some(Volume {
        name: VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(d.spec.name.to_string()),
            default_mode: Some(MODE),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    })
}

/// Where every container sees the secrets, if the spec has any.
pub fn mount(d: &Desired) -> Option<VolumeMount> {
    if d.spec.secrets.is_empty() {
        return None;
    }
    Some(VolumeMount {
        name: VOLUME.into(),
        mount_path: SECRETS_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    })
}

/// The Secret with its values (only for `--include-secret-values`).
pub fn secret(d: &Desired) -> Secret {
    let data: BTreeMap<String, ByteString> = d
        .secrets
        .iter()
        .map(|s| (s.name.to_string(), ByteString(s.value.expose().to_vec())))
        .collect();
    Secret {
        metadata: meta::object_meta(d),
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The `kubectl` command that creates the Secret from the same host files
/// and variables bottle reads, byte for byte. A variable's value travels
/// through a bash/zsh process substitution (`printf` is a shell builtin),
/// so no value is ever on a command line.
pub fn create_command(d: &Desired) -> String {
    let name = quote(d.spec.name.as_str());
    let sources: Vec<String> = d.spec.secrets.iter().map(from_file).collect();
    format!("kubectl create secret generic {name} {}", sources.join(" "))
}

fn from_file(s: &SecretRef) -> String {
    match &s.source {
        SecretSource::File(path) => quote(&format!("--from-file={}={}", s.name, path.display())),
        SecretSource::Env(var) => format!("--from-file={}=<(printf %s \"${var}\")", s.name),
    }
}
