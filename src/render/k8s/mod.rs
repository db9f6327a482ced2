//! Kubernetes manifests that run a spec's machine on a cluster, with the
//! meaning it has on one host:
//!
//! ```text
//! NetworkPolicy   egress = exactly the allow-list, no ingress   (egress)
//! Secret          only with --include-secret-values              (secrets)
//! ConfigMap       the files to copy, one tar                     (copies)
//! Pod | Sandbox   runtimeClassName: smolvm                       (pod, sandbox)
//!   init copy       unpacks the tar into one volume per destination
//!   init exec-N     exec step N: same image, env, workdir, timeout, secrets
//!   main            the image's own command
//! ```
//!
//! in that order, so the pod never exists before its NetworkPolicy. Every
//! object is named after the machine, labelled
//! `app.kubernetes.io/managed-by: bottle` and `app.kubernetes.io/name:
//! NAME`, and annotated with the spec's fingerprint (`meta`).
//!
//! Manifests are k8s-openapi types (and, for the Sandbox, a type mirroring
//! its published CRD) serialised to YAML (`yaml`), so they are well-typed by
//! construction. What a type cannot say is checked here and refused with
//! problems located in the spec: a pack is no OCI image, the machine name
//! must be a DNS-1123 label, a copy may not land on `/`, the copies must fit
//! a ConfigMap.
//!
//! Reads the files to copy (into the archive). Must not call smolvm, write
//! anything or talk to a cluster.

mod copies;
mod dns;
mod egress;
mod meta;
mod note;
mod pod;
mod sandbox;
mod secrets;
mod yaml;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Serialize;

use crate::spec::{CopyVia, Desired, Image, ImageRef, MachineName, Problem, SpecError};

use super::RenderError;
use copies::Root;

pub use copies::{ARCHIVE_KEY, CONFIG_MAP_LIMIT};
pub use dns::{label_problem, subdomain_problem};
pub use meta::{FINGERPRINT, MANAGED_BY, NAME};
pub use note::Note;
pub use pod::MAIN;
pub use sandbox::{API_VERSION as SANDBOX_API_VERSION, Sandbox};

/// What the machine becomes on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// A bare Pod.
    Pod,
    /// A `Sandbox` of kubernetes-sigs/agent-sandbox
    /// (agents.x-k8s.io/v1alpha1), whose controller makes the pod.
    AgentSandbox,
}

/// Whether the manifests hold the secrets' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretValues {
    /// No: the pod refers to a Secret the user creates (the default).
    Referenced,
    /// Yes: the Secret is rendered with its values.
    Included,
}

/// How to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub flavor: Flavor,
    /// The RuntimeClass that boots pods as smolvm microVMs.
    pub runtime_class: String,
    pub secret_values: SecretValues,
}

/// One rendered object.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Manifest {
    NetworkPolicy(NetworkPolicy),
    Secret(Secret),
    ConfigMap(ConfigMap),
    /// Boxed, as the largest: a pod spec.
    Pod(Box<Pod>),
    /// Boxed, as it holds a pod spec.
    Sandbox(Box<Sandbox>),
}

/// A spec's manifests, in the order they are applied, and what the user
/// must be told.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: MachineName,
    pub manifests: Vec<Manifest>,
    pub notes: Vec<Note>,
}

impl Rendered {
    /// The manifests as YAML documents separated by `---`.
    pub fn yaml(&self) -> Result<String, RenderError> {
        yaml::documents(&self.manifests).map_err(|source| RenderError::Yaml {
            name: self.name.to_string(),
            source,
        })
    }

    /// Whether the manifests hold secret values.
    pub fn holds_secret_values(&self) -> bool {
        self.manifests
            .iter()
            .any(|m| matches!(m, Manifest::Secret(_)))
    }
}

/// The manifests of `d`, or every reason it cannot run on Kubernetes.
pub fn render(d: &Desired, opts: &Options) -> Result<Rendered, RenderError> {
    let (image, roots) = admit(d)?;
    let archive = match roots.is_empty() {
        true => None,
        false => Some(copies::archive(d, &roots)?),
    };
    let parts = pod::Parts {
        desired: d,
        image,
        roots: &roots,
        runtime_class: &opts.runtime_class,
    };
    let notes = notes(d, opts, archive.as_ref().map_or(0, Vec::len));
    let mut manifests = vec![Manifest::NetworkPolicy(egress::network_policy(d))];
    if opts.secret_values == SecretValues::Included && !d.secrets.is_empty() {
        manifests.push(Manifest::Secret(secrets::secret(d)));
    }
    manifests.extend(archive.map(|a| Manifest::ConfigMap(copies::config_map(d, a))));
    manifests.push(machine(d, opts.flavor, pod::pod_spec(parts)));
    Ok(Rendered {
        name: d.spec.name.clone(),
        manifests,
        notes,
    })
}

/// The image and the copy volumes of `d`, or every problem that keeps it
/// off Kubernetes.
fn admit(d: &Desired) -> Result<(&ImageRef, Vec<Root>), RenderError> {
    let mut problems: Vec<Problem> = meta::name_problem(&d.spec).into_iter().collect();
    let image = match &d.spec.image {
        Image::Ref(r) => Some(r),
        Image::Pack { at, .. } => {
            problems.push(Problem {
                at: at.clone(),
                key: "image.pack".into(),
                message: "a pack is not an OCI image: a cluster pulls `image.ref` from a registry"
                    .into(),
            });
            None
        }
    };
    if let Some(at) = &d.spec.places.allow_hosts {
        problems.push(Problem {
            at: at.clone(),
            key: "network.allow_hosts".into(),
            message: "a NetworkPolicy allows addresses, not host names: list the hosts' \
                      networks in `network.allow_cidrs` to run this spec on Kubernetes"
                .into(),
        });
    }
    let roots = copies::roots(d).unwrap_or_else(|p| {
        problems.extend(p);
        Vec::new()
    });
    match image {
        Some(image) if problems.is_empty() => Ok((image, roots)),
        Some(_) | None => Err(RenderError::Refused(SpecError::invalid(problems))),
    }
}

/// The machine itself: a Pod, or a Sandbox whose controller makes it.
fn machine(d: &Desired, flavor: Flavor, spec: k8s_openapi::api::core::v1::PodSpec) -> Manifest {
    let metadata = meta::object_meta(d);
    match flavor {
        Flavor::Pod => Manifest::Pod(Box::new(Pod {
            metadata,
            spec: Some(spec),
            ..Pod::default()
        })),
        Flavor::AgentSandbox => Manifest::Sandbox(Box::new(sandbox::sandbox(metadata, spec))),
    }
}

/// What the user must be told about `d`'s manifests.
fn notes(d: &Desired, opts: &Options, archive_len: usize) -> Vec<Note> {
    let name = d.spec.name.to_string();
    let mut notes = Vec::new();
    match (d.spec.secrets.is_empty(), opts.secret_values) {
        (true, _) => {}
        (false, SecretValues::Referenced) => notes.push(Note::CreateSecret {
            name: name.clone(),
            command: secrets::create_command(d),
        }),
        (false, SecretValues::Included) => notes.push(Note::SecretValues { name: name.clone() }),
    }
    if d.spec.copy_via == CopyVia::Cp && !d.files.is_empty() {
        notes.push(Note::CopyVia { name: name.clone() });
    }
    if note::too_big_for_client_side_apply(archive_len) {
        notes.push(Note::LargeArchive {
            name,
            bytes: archive_len,
        });
    }
    notes
}

#[cfg(test)]
mod tests;
