//! What `render` makes of a spec, object by object, and what it refuses,
//! on specs written to a temporary directory and resolved as `apply` does.
//! The YAML, its strict schema check and its snapshots are in
//! `tests/runner/render.rs`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec};

use super::copies::{Root, RootKind};
use super::*;
use crate::spec::{self, EnvKey, SecretRef, SecretSource};

/// A spec world: the spec at `spec.toml`, its files, resolved.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, rel: &str, content: &[u8], mode: u32) -> &Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    fn desired(&self, text: &str) -> Desired {
        let path = self.dir.path().join("spec.toml");
        std::fs::write(&path, text).unwrap();
        spec::load(&path).and_then(spec::resolve).unwrap()
    }
}

fn options(flavor: Flavor, secret_values: SecretValues) -> Options {
    Options {
        flavor,
        runtime_class: "smolvm".into(),
        secret_values,
    }
}

fn pod_options() -> Options {
    options(Flavor::Pod, SecretValues::Referenced)
}

/// The problems of a refused render, as `line:col key: message`.
fn refused(d: &Desired) -> Vec<String> {
    match render(d, &pod_options()) {
        Ok(r) => panic!("rendered {:?}", r.name),
        Err(RenderError::Refused(e)) => e
            .problems()
            .iter()
            .map(|p| format!("{}:{} {}: {}", p.at.line, p.at.column, p.key, p.message))
            .collect(),
        Err(e) => panic!("not a refusal: {e}"),
    }
}

fn pod_spec_of(r: &Rendered) -> PodSpec {
    r.manifests
        .iter()
        .find_map(|m| match m {
            Manifest::Pod(p) => p.spec.clone(),
            Manifest::Sandbox(s) => Some(s.spec.pod_template.spec.clone()),
            Manifest::NetworkPolicy(_) | Manifest::Secret(_) | Manifest::ConfigMap(_) => None,
        })
        .unwrap()
}

fn config_map_of(r: &Rendered) -> ConfigMap {
    r.manifests
        .iter()
        .find_map(|m| match m {
            Manifest::ConfigMap(c) => Some(c.clone()),
            Manifest::NetworkPolicy(_)
            | Manifest::Secret(_)
            | Manifest::Pod(_)
            | Manifest::Sandbox(_) => None,
        })
        .unwrap()
}

/// Every entry of the rendered copy archive: path, mode, mtime, owner,
/// content.
fn archive_entries(r: &Rendered) -> Vec<(String, u32, u64, u64, String)> {
    let cm = config_map_of(r);
    let bytes = &cm.binary_data.unwrap()[ARCHIVE_KEY].0;
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut body = String::new();
        e.read_to_string(&mut body).unwrap();
        out.push((
            e.path().unwrap().display().to_string(),
            h.mode().unwrap(),
            h.mtime().unwrap(),
            h.uid().unwrap(),
            body,
        ));
    }
    out
}

/// A link in a copied tree goes into the ConfigMap as a link: what it
/// points to on the host (here a canary outside the tree) never does.
#[test]
fn a_link_in_a_copied_tree_is_archived_as_a_link_never_followed() {
    let w = World::new();
    w.file("secret.txt", b"CANARY-k8s-link", 0o600);
    w.file("ws/a.txt", b"a\n", 0o644);
    std::os::unix::fs::symlink("../secret.txt", w.dir.path().join("ws/notes.txt")).unwrap();
    let d =
        w.desired("name = \"vm\"\n[image]\nref = \"a:1\"\n[[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n");
    let r = render(&d, &pod_options()).unwrap();
    let cm = config_map_of(&r);
    let bytes = &cm.binary_data.unwrap()[ARCHIVE_KEY].0;
    let needle = b"CANARY-k8s-link";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    let mut archive = tar::Archive::new(bytes.as_slice());
    let links: Vec<(String, String)> = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.header().entry_type() == tar::EntryType::Symlink)
        .map(|e| {
            let target = e.link_name().unwrap().unwrap().display().to_string();
            (e.path().unwrap().display().to_string(), target)
        })
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].0.ends_with("/notes.txt"), "{links:?}");
    assert_eq!(links[0].1, "../secret.txt");
}

const COPIES: &str = r#"name = "vm"
[image]
ref = "alpine:3.20"
[[copy]]
src = "ws"
dest = "/w"
[[copy]]
src = "extra.txt"
dest = "/w/sub/extra.txt"
[[copy]]
src = "agent.conf"
dest = "/etc/agent.conf"
[[copy]]
src = "ws"
dest = "/w"
"#;

fn copies_world() -> World {
    let w = World::new();
    w.file("ws/a.txt", b"a\n", 0o640)
        .file("ws/bin/run.sh", b"echo run\n", 0o755)
        .file("extra.txt", b"extra\n", 0o600)
        .file("agent.conf", b"conf\n", 0o644);
    w
}

#[test]
fn each_outermost_copy_destination_is_one_volume_and_a_file_is_mounted_alone() {
    let w = copies_world();
    let d = w.desired(COPIES);
    let roots = copies::roots(&d).unwrap();
    let root = |volume: &str, dest: &str, kind| Root {
        volume: volume.into(),
        dest: spec::GuestPath::parse(dest).unwrap(),
        kind,
    };
    let conf = RootKind::File {
        name: "agent.conf".into(),
    };
    assert_eq!(
        roots,
        [
            root("copy-0", "/w", RootKind::Dir),
            root("copy-1", "/etc/agent.conf", conf)
        ]
    );
    let r = render(&d, &pod_options()).unwrap();
    let main = &pod_spec_of(&r).containers[0];
    let mounts: Vec<_> = main
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            (
                m.name.as_str(),
                m.mount_path.as_str(),
                m.sub_path.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("copy-0", "/w", None),
            ("copy-1", "/etc/agent.conf", Some("agent.conf"))
        ]
    );
}

#[test]
fn the_archive_puts_each_file_in_its_volume_with_its_mode_owned_by_root_in_1970() {
    let w = copies_world();
    let d = w.desired(COPIES);
    let r = render(&d, &pod_options()).unwrap();
    let entry = |p: &str, mode, body: &str| (p.to_string(), mode, 0, 0, body.to_string());
    let once = [
        entry("copy-0/a.txt", 0o640, "a\n"),
        entry("copy-0/bin/run.sh", 0o755, "echo run\n"),
        entry("copy-0/sub/extra.txt", 0o600, "extra\n"),
        entry("copy-1/agent.conf", 0o644, "conf\n"),
    ];
    let twice: Vec<_> = once.iter().chain(&once[..2]).cloned().collect();
    assert_eq!(archive_entries(&r), twice);
    let again = render(&w.desired(COPIES), &pod_options()).unwrap();
    assert_eq!(config_map_of(&again), config_map_of(&r), "not reproducible");
}

#[test]
fn the_copy_container_unpacks_into_the_volumes_before_every_step() {
    let text = format!("{COPIES}[[exec]]\nrun = [\"true\"]\n");
    let w = copies_world();
    let d = w.desired(&text);
    let spec = pod_spec_of(&render(&d, &pod_options()).unwrap());
    let init = spec.init_containers.unwrap();
    let names: Vec<_> = init.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["copy", "exec-0"]);
    assert_eq!(
        init[0].command.as_deref().unwrap(),
        [
            "tar",
            "-xf",
            "/bottle/archive/copy.tar",
            "-C",
            "/bottle/copies"
        ]
    );
    let staged: Vec<_> = init[0]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only))
        .collect();
    assert_eq!(
        staged,
        [
            ("copy-archive", "/bottle/archive", Some(true)),
            ("copy-0", "/bottle/copies/copy-0", None),
            ("copy-1", "/bottle/copies/copy-1", None)
        ]
    );
    assert_eq!(init[1].volume_mounts, spec.containers[0].volume_mounts);
}

#[test]
fn copies_to_the_root_or_onto_the_secrets_are_refused_where_the_copy_is() {
    let w = World::new();
    w.file("f", b"x", 0o644)
        .file("token", b"token-value", 0o600);
    let to_root = "name = \"vm\"\n[image]\nref = \"a\"\n[[copy]]\nsrc = \"f\"\ndest = \"/\"\n";
    assert_eq!(
        refused(&w.desired(to_root)),
        ["5:7 copy[0]: a copy to `/` cannot be a volume on Kubernetes"]
    );
    let onto_secrets = "name = \"vm\"\n[image]\nref = \"a\"\n[secrets]\nT = { from_file = \"token\" }\n[[copy]]\nsrc = \"f\"\ndest = \"/run/bottle/secrets/x\"\n";
    assert_eq!(
        refused(&w.desired(onto_secrets)),
        ["7:7 copy[0]: /run/bottle/secrets is where the secrets are mounted"]
    );
}

#[test]
fn copies_over_a_config_map_are_refused_naming_the_size() {
    let w = World::new();
    let big = w.dir.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 * 1024 * 1024)
        .unwrap();
    let text = "name = \"vm\"\n[image]\nref = \"a\"\n[[copy]]\nsrc = \"big\"\ndest = \"/big\"\n";
    assert_eq!(
        refused(&w.desired(text)),
        [
            "5:7 copy: the files to copy hold 2.0 MiB (2097152 bytes); a ConfigMap holds at most 1 MiB (1048576 bytes)"
        ]
    );
    // Files that fit, but not with the archive's headers.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1024 * 1024 - 100)
        .unwrap();
    let problems = refused(&w.desired(text));
    assert!(
        problems[0].contains("make an archive of 1.0 MiB (1050120 bytes)"),
        "{problems:?}"
    );
}

#[test]
fn a_pack_and_a_name_kubernetes_cannot_take_are_refused_together() {
    let w = World::new();
    w.file("a.smolmachine", b"pack", 0o644);
    let text = "name = \"Agent_1\"\n[image]\npack = \"a.smolmachine\"\n";
    assert_eq!(
        refused(&w.desired(text)),
        [
            "1:8 name: Kubernetes needs the machine name as a DNS-1123 label: it may contain only lowercase letters, digits and `-` (found 'A')",
            "3:8 image.pack: a pack is not an OCI image: a cluster pulls `image.ref` from a registry"
        ]
    );
}

/// Host names are part of a host's allow-list, but a NetworkPolicy cannot
/// say them: such a spec is refused rather than rendered narrower.
#[test]
fn allow_hosts_are_refused_where_the_spec_names_them() {
    let w = World::new();
    let text = "name = \"vm\"\n[image]\nref = \"a:1\"\n[network]\nallow_cidrs = [\"10.0.0.0/8\"]\nallow_hosts = [\"pypi.org\"]\n";
    assert_eq!(
        refused(&w.desired(text)),
        [
            "6:16 network.allow_hosts: a NetworkPolicy allows addresses, not host names: list the hosts' networks in `network.allow_cidrs` to run this spec on Kubernetes"
        ]
    );
}

const STEPS: &str = r#"name = "vm"
[image]
ref = "alpine:3.20"
[env]
A = "spec"
B = "spec"
[secrets]
TOKEN = { from_file = "token" }
[[exec]]
run = ["agent", "--login"]
env = { B = "step", C = "step" }
workdir = "/w"
timeout = "1500ms"
secrets = ["TOKEN"]
[[exec]]
run = ["true"]
"#;

#[test]
fn a_step_runs_with_its_secrets_read_as_on_a_host_under_timeout() {
    let w = World::new();
    w.file("token", b"token-value\n", 0o600);
    let spec = pod_spec_of(&render(&w.desired(STEPS), &pod_options()).unwrap());
    let steps = spec.init_containers.unwrap();
    let first = &steps[0];
    assert_eq!(first.name, "exec-0");
    assert_eq!(
        first.command.as_deref().unwrap(),
        [
            "timeout",
            "2",
            "sh",
            "-c",
            "export TOKEN=\"$(cat /run/bottle/secrets/TOKEN)\" && exec \"$@\"",
            "bottle-secrets",
            "agent",
            "--login"
        ]
    );
    assert_eq!(first.working_dir.as_deref(), Some("/w"));
    let env: Vec<_> = first
        .env
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v.value.as_deref().unwrap()))
        .collect();
    assert_eq!(env, [("A", "spec"), ("B", "step"), ("C", "step")]);
    assert_eq!(steps[1].command.as_deref().unwrap(), ["true"]);
    assert_eq!(steps[1].working_dir, None);
}

#[test]
fn secrets_are_a_0400_volume_at_the_host_path_in_every_step_and_the_main_container() {
    let w = World::new();
    w.file("token", b"token-value\n", 0o600);
    let r = render(&w.desired(STEPS), &pod_options()).unwrap();
    let spec = pod_spec_of(&r);
    let volume = &spec.volumes.as_ref().unwrap()[0];
    let source = volume.secret.as_ref().unwrap();
    assert_eq!(
        (source.secret_name.as_deref(), source.default_mode),
        (Some("vm"), Some(0o400))
    );
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for c in containers {
        let m = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (m.name.as_str(), m.mount_path.as_str(), m.read_only),
            ("secrets", "/run/bottle/secrets", Some(true)),
            "{}",
            c.name
        );
    }
    assert!(!r.holds_secret_values());
}

#[test]
fn the_secret_command_names_where_values_come_from_never_a_value() {
    let w = World::new();
    w.file("my token", b"token-value\n", 0o600);
    let mut d = w.desired(&STEPS.replace("\"token\"", "\"my token\""));
    d.spec.secrets.push(SecretRef {
        name: EnvKey::parse("API_KEY").unwrap(),
        source: SecretSource::Env(EnvKey::parse("HOST_API_KEY").unwrap()),
        at: d.spec.secrets[0].at.clone(),
    });
    let dir = w.dir.path().display();
    assert_eq!(
        secrets::create_command(&d),
        format!(
            "kubectl create secret generic vm '--from-file=TOKEN={dir}/my token' \
             --from-file=API_KEY=<(printf %s \"$HOST_API_KEY\")"
        )
    );
}

#[test]
fn secret_values_are_rendered_only_when_asked_and_then_said() {
    let w = World::new();
    w.file("token", b"token-value\n", 0o600);
    let d = w.desired(STEPS);
    let referenced = render(&d, &pod_options()).unwrap();
    assert!(matches!(&referenced.notes[..], [Note::CreateSecret { .. }]));
    let included = render(&d, &options(Flavor::Pod, SecretValues::Included)).unwrap();
    assert!(included.holds_secret_values());
    let Some(Manifest::Secret(s)) = included.manifests.get(1) else {
        panic!("{:?}", included.manifests)
    };
    assert_eq!(s.data.as_ref().unwrap()["TOKEN"].0, b"token-value");
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(included.notes, [Note::SecretValues { name: "vm".into() }]);
}

#[test]
fn the_pod_gets_no_token_no_service_links_and_never_restarts() {
    let w = World::new();
    let spec = pod_spec_of(
        &render(
            &w.desired("name = \"vm\"\n[image]\nref = \"a\"\n"),
            &Options {
                runtime_class: "kata.fc".into(),
                ..pod_options()
            },
        )
        .unwrap(),
    );
    assert_eq!(spec.runtime_class_name.as_deref(), Some("kata.fc"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.enable_service_links, Some(false));
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.containers[0].command, None, "the image's own command");
    assert_eq!((spec.init_containers, spec.volumes), (None, None));
}

#[test]
fn a_sandbox_holds_the_same_pod_spec_and_pod_labels() {
    let w = copies_world();
    let d = w.desired(COPIES);
    let pod = render(&d, &pod_options()).unwrap();
    let sandbox = render(&d, &options(Flavor::AgentSandbox, SecretValues::Referenced)).unwrap();
    assert_eq!(pod_spec_of(&sandbox), pod_spec_of(&pod));
    let Some(Manifest::Sandbox(s)) = sandbox.manifests.last() else {
        panic!("{:?}", sandbox.manifests)
    };
    assert_eq!(s.api_version, "agents.x-k8s.io/v1alpha1");
    assert_eq!(
        Some(&s.spec.pod_template.metadata.labels),
        s.metadata.labels.as_ref()
    );
    let kinds = |r: &Rendered| -> Vec<&'static str> {
        r.manifests
            .iter()
            .map(|m| match m {
                Manifest::NetworkPolicy(_) => "NetworkPolicy",
                Manifest::Secret(_) => "Secret",
                Manifest::ConfigMap(_) => "ConfigMap",
                Manifest::Pod(_) => "Pod",
                Manifest::Sandbox(_) => "Sandbox",
            })
            .collect()
    };
    assert_eq!(kinds(&pod), ["NetworkPolicy", "ConfigMap", "Pod"]);
    assert_eq!(kinds(&sandbox), ["NetworkPolicy", "ConfigMap", "Sandbox"]);
}

#[test]
fn copy_via_cp_and_archives_too_big_for_client_side_apply_are_said() {
    let w = copies_world();
    let d = w.desired(&COPIES.replace("name = \"vm\"", "name = \"vm\"\ncopy_via = \"cp\""));
    let r = render(&d, &pod_options()).unwrap();
    assert_eq!(r.notes, [Note::CopyVia { name: "vm".into() }]);
    assert!(!note::too_big_for_client_side_apply(180 * 1024));
    assert!(note::too_big_for_client_side_apply(200 * 1024));
}

#[test]
fn the_fingerprint_annotation_follows_the_spec() {
    let w = World::new();
    let fingerprint = |text: &str| {
        let r = render(&w.desired(text), &pod_options()).unwrap();
        let Some(Manifest::Pod(p)) = r.manifests.last() else {
            panic!()
        };
        p.metadata.annotations.clone().unwrap()[FINGERPRINT].clone()
    };
    let base = "name = \"vm\"\n[image]\nref = \"a\"\n";
    assert_eq!(fingerprint(base), fingerprint(base));
    let changed = format!("{base}[env]\nK = \"v\"\n");
    assert_ne!(fingerprint(base), fingerprint(&changed));
}
