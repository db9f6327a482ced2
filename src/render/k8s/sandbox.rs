//! The machine as a `Sandbox` of kubernetes-sigs/agent-sandbox, the
//! Kubernetes community's shape for agent sandboxes: its controller makes
//! one pod, named after the Sandbox, from `spec.podTemplate`.
//!
//! The type mirrors the published CRD, read in kubernetes-sigs/agent-sandbox:
//!
//! - `k8s/crds/agents.x-k8s.io_sandboxes.yaml` (commit 05359f5d): group
//!   `agents.x-k8s.io`, kind `Sandbox`, namespaced, version `v1alpha1`
//!   (served, storage); `spec` is required and its `podTemplate` is
//!   required, holding `metadata` (only `labels` and `annotations`) and
//!   `spec` (a full core/v1 PodSpec, required). The other `spec` fields
//!   (`volumeClaimTemplates`, `shutdownTime`, `shutdownPolicy`, `replicas`)
//!   are optional and not used here.
//! - `api/v1alpha1/sandbox_types.go` (commit 0282213a): the same, as Go
//!   types (`PodTemplate{Spec corev1.PodSpec; ObjectMeta PodMetadata}`).
//! - `docs/api.md` (commit 01e149d1): newer releases add
//!   `agents.x-k8s.io/v1beta1`, and `api/v1alpha1/sandbox_conversion.go`
//!   converts v1alpha1 to it; v1alpha1 is rendered because every release
//!   has it.
//! - `controllers/sandbox_controller.go` (commit 00a24329,
//!   `resolvePodName`): the pod's name is the Sandbox's.
//!
//! Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// The Sandbox CRD's group and version.
pub const API_VERSION: &str = "agents.x-k8s.io/v1alpha1";
pub const KIND: &str = "Sandbox";

/// An agent-sandbox `Sandbox`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: SandboxSpec,
}

/// `spec`: only the pod template.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    pub pod_template: PodTemplate,
}

/// `spec.podTemplate`.
#[derive(Debug, Clone, Serialize)]
pub struct PodTemplate {
    pub metadata: PodMetadata,
    pub spec: PodSpec,
}

/// `spec.podTemplate.metadata`: the CRD keeps only labels and annotations.
#[derive(Debug, Clone, Serialize)]
pub struct PodMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The Sandbox whose pod has `metadata`'s labels and annotations and
/// `spec`.
pub fn sandbox(metadata: ObjectMeta, spec: PodSpec) -> Sandbox {
    let pod_metadata = PodMetadata {
        labels: metadata.labels.clone().unwrap_or_default(),
        annotations: metadata.annotations.clone().unwrap_or_default(),
    };
    Sandbox {
        api_version: API_VERSION,
        kind: KIND,
        metadata,
        spec: SandboxSpec {
            pod_template: PodTemplate {
                metadata: pod_metadata,
                spec,
            },
        },
    }
}
