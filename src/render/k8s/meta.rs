//! What every rendered object carries: its name (the machine's), the labels
//! that say bottle made it and for which machine (the NetworkPolicy selects
//! the pod by them), and the spec's fingerprint as an annotation, so a
//! re-render shows whether the spec changed. Also the rule that the
//! machine name must be a Kubernetes name.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::spec::{Desired, Location, Problem, Spec};

use super::dns;

/// The label that says which tool manages an object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The label that names the machine.
pub const NAME: &str = "app.kubernetes.io/name";
/// The annotation holding the spec's fingerprint (the hash bottle's own
/// records keep: image, network, env, copies, exec steps and secret
/// references, not secret values).
pub const FINGERPRINT: &str = "bottle/spec-fingerprint";

/// The labels of every object of machine `name`; the pod is selected by
/// exactly these.
pub fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), "bottle".to_string()),
        (NAME.to_string(), name.to_string()),
    ])
}

/// The annotations of every object of `d`.
pub fn annotations(d: &Desired) -> BTreeMap<String, String> {
    BTreeMap::from([(FINGERPRINT.to_string(), d.fingerprint.hash())])
}

/// The metadata of every object of `d`: named after the machine.
pub fn object_meta(d: &Desired) -> ObjectMeta {
    ObjectMeta {
        name: Some(d.spec.name.to_string()),
        labels: Some(labels(d.spec.name.as_str())),
        annotations: Some(annotations(d)),
        ..ObjectMeta::default()
    }
}

/// The machine name as a Kubernetes name: every object is named after it
/// and it is a label value, so it must be a DNS-1123 label.
pub fn name_problem(spec: &Spec) -> Option<Problem> {
    let why = dns::label_problem(spec.name.as_str())?;
    Some(Problem {
        at: name_location(&spec.file),
        key: "name".into(),
        message: format!("Kubernetes needs the machine name as a DNS-1123 label: it {why}"),
    })
}

/// Where `name`'s value is in the spec file (the top of the file if it
/// cannot be read again).
fn name_location(file: &Path) -> Location {
    #[derive(serde::Deserialize)]
    struct NameAt {
        name: toml::Spanned<String>,
    }
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let start = toml::from_str::<NameAt>(&text).map_or(0, |n| n.name.span().start);
    Location::at(file, &text, start)
}
