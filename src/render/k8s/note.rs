//! What `render k8s` tells the user on stderr besides the manifests: what
//! to do by hand, and what differs from a host.

use std::fmt;

/// The most `kubectl apply` (client side) keeps in one object's
/// annotations, where it stores a copy of the whole object.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// One thing to tell the user about a machine's manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The pod needs a Secret the user creates with `command`.
    CreateSecret { name: String, command: String },
    /// The manifests hold secret values (`--include-secret-values`).
    SecretValues { name: String },
    /// `copy_via = "cp"` has no meaning on Kubernetes.
    CopyVia { name: String },
    /// The copy archive is too big for a client-side `kubectl apply`.
    LargeArchive { name: String, bytes: usize },
}

/// Whether a ConfigMap holding `archive_len` bytes (base64 in the copy
/// `kubectl apply` keeps in an annotation) would pass that limit.
pub fn too_big_for_client_side_apply(archive_len: usize) -> bool {
    archive_len.div_ceil(3) * 4 + 4096 > ANNOTATIONS_LIMIT
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::CreateSecret { name, command } => write!(
                f,
                "{name}: the pod starts once its Secret `{name}` exists; create it from the same \
                 host files and variables (in bash or zsh; no value is put on a command \
                 line):\n  {command}"
            ),
            Note::SecretValues { name } => write!(
                f,
                "warning: {name}: the manifests hold the secret values (base64, not \
                 encrypted): do not commit or share them"
            ),
            Note::CopyVia { name } => write!(
                f,
                "note: {name}: `copy_via = \"cp\"` has no effect on Kubernetes: the `copy` \
                 init container unpacks the files with the image's `tar`"
            ),
            Note::LargeArchive { name, bytes } => write!(
                f,
                "note: {name}: the copy archive is {bytes} bytes; a plain `kubectl apply` \
                 also keeps each object in an annotation of at most 256 KiB: use `kubectl \
                 apply --server-side`"
            ),
        }
    }
}
