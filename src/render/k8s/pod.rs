//! The machine as a pod spec: the spec's image under the smolvm
//! RuntimeClass, the copies unpacked first, then each exec step, in order,
//! as an init container of the same image, then the main container running
//! the image's own command.
//!
//! Every container gets the environment bottle gives on a host and nothing
//! more Kubernetes could add on its own: no service-account token and no
//! service links. Pods never restart (`restartPolicy: Never`): exec steps
//! run once per machine, and a failed one fails the pod, as it fails an
//! apply. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, VolumeMount};

use crate::plan::with_secrets;
use crate::spec::{Desired, ExecStep, ImageRef};

use super::copies::{self, Root};
use super::secrets;

/// The name of the container that runs the image's own command.
pub const MAIN: &str = "main";

/// What a pod spec is built from.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub desired: &'a Desired,
    pub image: &'a ImageRef,
    pub roots: &'a [Root],
    pub runtime_class: &'a str,
}

/// The pod spec of the machine.
pub fn pod_spec(p: Parts<'_>) -> PodSpec {
    let d = p.desired;
    let unpack = copies::unpack_container(p.image, p.roots);
    let steps = d.spec.execs.iter().enumerate().map(|(i, e)| step(p, i, e));
    let volumes = copies::volumes(d, p.roots)
        .into_iter()
        .chain(secrets::volume(d));
    PodSpec {
        runtime_class_name: Some(p.runtime_class.to_string()),
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        init_containers: non_empty(unpack.into_iter().chain(steps).collect()),
        containers: vec![main(p)],
        volumes: non_empty(volumes.collect()),
        ..PodSpec::default()
    }
}

/// The main container: the image's own command, the spec's environment.
fn main(p: Parts<'_>) -> Container {
    Container {
        name: MAIN.into(),
        image: Some(p.image.to_string()),
        env: non_empty(env(p.desired, &BTreeMap::new())),
        volume_mounts: non_empty(shared_mounts(p)),
        ..Container::default()
    }
}

/// Exec step `i` as init container `exec-i`.
fn step(p: Parts<'_>, i: usize, e: &ExecStep) -> Container {
    let own: BTreeMap<&str, &str> = e
        .env
        .iter()
        .map(|v| (v.key.as_str(), v.value.as_str()))
        .collect();
    Container {
        name: format!("exec-{i}"),
        image: Some(p.image.to_string()),
        command: Some(step_command(e)),
        env: non_empty(env(p.desired, &own)),
        working_dir: e.workdir.as_ref().map(|w| w.to_string()),
        volume_mounts: non_empty(shared_mounts(p)),
        ..Container::default()
    }
}

/// A step's command: its secrets read into its environment as on a host,
/// under `timeout` if it has one (whole seconds, rounded up; 124 on
/// expiry, as smolvm's `exec --timeout`).
pub fn step_command(e: &ExecStep) -> Vec<String> {
    let command = with_secrets(&e.run, &e.secrets);
    match e.timeout {
        Some(t) => ["timeout".to_string(), seconds(t)]
            .into_iter()
            .chain(command)
            .collect(),
        None => command,
    }
}

fn seconds(t: Duration) -> String {
    let whole = t.as_secs() + u64::from(t.subsec_nanos() > 0);
    whole.max(1).to_string()
}

/// The spec's environment with a step's own on top (a step's value wins,
/// as `exec -e` does over `create -e`), by name.
fn env(d: &Desired, own: &BTreeMap<&str, &str>) -> Vec<EnvVar> {
    let mut all: BTreeMap<&str, &str> = d
        .spec
        .env
        .iter()
        .map(|v| (v.key.as_str(), v.value.as_str()))
        .collect();
    all.extend(own);
    all.into_iter()
        .map(|(k, v)| EnvVar {
            name: k.to_string(),
            value: Some(v.to_string()),
            ..EnvVar::default()
        })
        .collect()
}

/// What the exec steps and the main container share: the copy
/// destinations and the secrets.
fn shared_mounts(p: Parts<'_>) -> Vec<VolumeMount> {
    let mut mounts = copies::mounts(p.roots);
    mounts.extend(secrets::mount(p.desired));
    mounts
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    match v.is_empty() {
        true => None,
        false => Some(v),
    }
}
