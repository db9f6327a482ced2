//! `bottle render k8s`: what a user pipes to `kubectl apply`.
//!
//! Every rendered document is read back strictly ([`strict`]): into its
//! k8s-openapi type through `serde_path_to_error`, then serialised again
//! and compared with what was read, so a field Kubernetes does not know
//! (k8s-openapi skips those silently) or a value that does not survive the
//! round trip fails; the Sandbox is read into a `deny_unknown_fields`
//! mirror of agent-sandbox's published CRD, written here from the CRD, not
//! from the renderer. On top, the checks the API server makes that no type
//! can: DNS names, label syntax, unique container, volume and mount names,
//! mounts of declared volumes, CIDRs without host bits.
//!
//! One insta snapshot per spec under `specs/` and `fixtures/k8s/`, per
//! flavor, of stdout and stderr (`snapshots/render/`); fingerprints and the
//! copy archive's base64 are redacted there and checked by their own tests.
//! No cluster and no smolvm are involved.

use std::path::Path;
use std::process::Command;

use bottle::render::k8s::ARCHIVE_KEY;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::Value;

use crate::support::{Bottle, Run};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const CANARY: &str = "CANARY-k8s-31c9e0-do-not-leak";
const FILE_CANARY: &str = "FILECANARY-k8s-5d1e";

/// `bottle render k8s ARGS…` run in the repository, as a user would, with
/// the host variable `fixtures/k8s/everything.toml` reads.
fn render(b: &Bottle, args: &[&str]) -> Run {
    let mut c: Command = b.bottle_command(&[&["render", "k8s"], args].concat());
    c.current_dir(REPO).env("HOST_API_KEY", CANARY);
    let out = c.output().expect("spawn bottle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// The documents of a YAML stream, as JSON values.
fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("rendered YAML parses")
}

/// The one document of `kind`.
fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let mut of_kind = docs.iter().filter(|d| d["kind"] == kind);
    let doc = of_kind.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(of_kind.next().is_none(), "two of {kind}");
    doc
}

/// Every spec the issue names (`specs/*.toml`) and every fixture of this
/// test, relative to the repository.
fn all_specs() -> Vec<String> {
    let mut specs = Vec::new();
    for dir in ["specs", "fixtures/k8s"] {
        for e in std::fs::read_dir(Path::new(REPO).join(dir)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") {
                specs.push(format!("{dir}/{name}"));
            }
        }
    }
    specs.sort();
    assert!(specs.len() >= 3, "{specs:?}");
    specs
}

/// Render `rel` (a path in the repository) in both flavors: each document
/// strictly valid; the snapshot of what the user reads.
fn rendered_strictly(rel: &str) {
    let b = Bottle::new();
    for (flavor, args) in [
        ("pod", vec![rel]),
        ("sandbox", vec![rel, "--flavor", "agent-sandbox"]),
    ] {
        let run = render(&b, &args);
        assert_eq!(run.code, 0, "{rel}: {}", run.stderr);
        for doc in documents(&run.stdout) {
            if let Err(e) = strict::check(&doc) {
                panic!("{rel} ({flavor}): {e}\n{}", run.stdout);
            }
        }
        let shown = format!(
            "exit code: {}\n--- stdout\n{}--- stderr\n{}",
            run.code,
            run.stdout,
            run.stderr.replace(REPO, "[REPO]")
        );
        insta::assert_snapshot!(flavor, shown);
        assert!(b.calls().is_empty(), "smolvm was called: {:?}", b.calls());
    }
}

#[test]
fn every_spec_and_fixture_renders_strictly_valid_manifests() {
    insta::with_settings!({
        snapshot_path => "snapshots/render",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        filters => vec![
            (r"bottle/spec-fingerprint: [0-9a-f]{64}", "bottle/spec-fingerprint: [FINGERPRINT]"),
            (r"copy.tar: \S+", "copy.tar: [ARCHIVE]"),
        ],
    }, {
        insta::glob!("../..", "{specs,fixtures/k8s}/*.toml", |path| {
            rendered_strictly(&relative(path));
        });
    });
}

fn relative(path: &Path) -> String {
    path.strip_prefix(REPO)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn egress_is_exactly_the_allow_list_of_every_spec_and_nothing_comes_in() {
    let b = Bottle::new();
    for rel in all_specs() {
        let spec = bottle::spec::load(&Path::new(REPO).join(&rel)).unwrap();
        let run = render(&b, &[&rel]);
        assert_eq!(run.code, 0, "{rel}: {}", run.stderr);
        let docs = documents(&run.stdout);
        let policy = &find(&docs, "NetworkPolicy")["spec"];
        let allowed: Vec<String> = spec.allow_cidrs.iter().map(|c| c.to_string()).collect();
        let expected_egress = match allowed.is_empty() {
            true => serde_json::json!([]),
            false => serde_json::json!([{
                "to": allowed.iter().map(|c| serde_json::json!({"ipBlock": {"cidr": c}})).collect::<Vec<_>>()
            }]),
        };
        assert_eq!(policy["egress"], expected_egress, "{rel}");
        assert_eq!(policy["ingress"], serde_json::json!([]), "{rel}");
        assert_eq!(
            policy["policyTypes"],
            serde_json::json!(["Egress", "Ingress"])
        );
        let pod_labels = &find(&docs, "Pod")["metadata"]["labels"];
        assert_eq!(&policy["podSelector"]["matchLabels"], pod_labels, "{rel}");
        assert_eq!(
            pod_labels["app.kubernetes.io/name"].as_str(),
            Some(spec.name.as_str())
        );
    }
}

#[test]
fn no_secret_value_is_written_unless_asked_and_then_only_in_the_secret() {
    let b = Bottle::new();
    let spec = "fixtures/k8s/everything.toml";
    let encoded = |v: &str| serde_json::to_value(ByteString(v.as_bytes().to_vec())).unwrap();
    let leaks = |text: &str| -> Vec<String> {
        let mut found = Vec::new();
        for v in [CANARY.to_string(), format!("{FILE_CANARY}\n")] {
            let b64 = encoded(&v).as_str().unwrap().to_string();
            for needle in [v.trim().to_string(), b64] {
                if text.contains(&needle) {
                    found.push(needle);
                }
            }
        }
        found
    };
    let out = b.path("out");
    let out_arg = out.to_str().unwrap();
    for args in [vec![spec], vec![spec, "-o", out_arg]] {
        let run = render(&b, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(leaks(&run.stdout), Vec::<String>::new());
        assert_eq!(leaks(&run.stderr), Vec::<String>::new());
        assert!(
            run.stderr
                .contains("kubectl create secret generic k8s-everything"),
            "{}",
            run.stderr
        );
        assert!(documents(&run.stdout).iter().all(|d| d["kind"] != "Secret"));
    }
    let file = std::fs::read_to_string(out.join("k8s-everything.yaml")).unwrap();
    assert_eq!(leaks(&file), Vec::<String>::new());
    assert_eq!(mode(&out.join("k8s-everything.yaml")), 0o644);

    let run = render(&b, &[spec, "--include-secret-values", "-o", out_arg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: k8s-everything: the manifests hold the secret values")
    );
    assert!(!run.stderr.contains("kubectl create secret"));
    assert_eq!(leaks(&run.stderr), Vec::<String>::new());
    let file = out.join("k8s-everything.yaml");
    assert_eq!(mode(&file), 0o600);
    let docs = documents(&std::fs::read_to_string(&file).unwrap());
    let secret: Secret = serde_json::from_value(find(&docs, "Secret").clone()).unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["API_KEY"].0, CANARY.as_bytes());
    assert_eq!(data["TOKEN"].0, FILE_CANARY.as_bytes());
    for d in docs.iter().filter(|d| d["kind"] != "Secret") {
        assert_eq!(
            leaks(&serde_json::to_string(d).unwrap()),
            Vec::<String>::new()
        );
    }
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

#[test]
fn the_copy_archive_holds_each_workspace_file_with_its_mode_under_its_volume() {
    let b = Bottle::new();
    let run = render(&b, &["specs/agent.toml"]);
    let docs = documents(&run.stdout);
    let cm: ConfigMap = serde_json::from_value(find(&docs, "ConfigMap").clone()).unwrap();
    let bytes = cm.binary_data.unwrap().remove(ARCHIVE_KEY).unwrap().0;
    let mut entries = Vec::new();
    for e in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mode = e.header().mode().unwrap();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        entries.push((path, mode, body));
    }
    let workspace = Path::new(REPO).join("fixtures/workspace");
    let host = |rel: &str| {
        let p = workspace.join(rel);
        let m =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        (
            format!("copy-0/{rel}"),
            m & 0o7777,
            std::fs::read(&p).unwrap(),
        )
    };
    assert_eq!(entries, [host("README.md"), host("src/main.sh")]);
    let pod = find(&docs, "Pod");
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        serde_json::json!([{"mountPath": "/workspace", "name": "copy-0"}])
    );
}

#[test]
fn every_refused_spec_is_located_exits_2_and_nothing_is_printed_or_written() {
    let b = Bottle::new();
    b.write("a.smolmachine", "pack");
    b.write("f.txt", "file");
    let big = b.path("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(3 * 1024 * 1024)
        .unwrap();
    b.write(
        "refused.toml",
        "name = \"Agent_1\"\n[image]\npack = \"a.smolmachine\"\n[[copy]]\nsrc = \"f.txt\"\ndest = \"/\"\n",
    );
    b.write(
        "big.toml",
        "name = \"big\"\n[image]\nref = \"a\"\n[[copy]]\nsrc = \"big\"\ndest = \"/data/big\"\n",
    );
    let refused = b.path("refused.toml");
    let big_spec = b.path("big.toml");
    let ok = Path::new(REPO).join("specs/hello.toml");
    let out = b.path("out");
    let args: Vec<&str> = [&ok, &refused, &big_spec, &out]
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect();
    let run = render(&b, &[args[0], args[1], args[2]]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""));
    let with_dir = render(&b, &[args[0], args[1], args[2], "-o", args[3]]);
    assert_eq!((with_dir.code, &with_dir.stderr), (2, &run.stderr));
    assert!(!out.exists(), "something was written");
    let shown = b.normalize(&format!("exit code: {}\n{}", run.code, run.stderr));
    insta::with_settings!({snapshot_path => "snapshots/render", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("refused", shown);
    });
    assert!(b.calls().is_empty());
}

#[test]
fn output_dir_gets_one_file_per_spec_holding_what_is_printed() {
    let b = Bottle::new();
    let out = b.path("out");
    let specs = ["specs/agent.toml", "specs/hello.toml"];
    let run = render(&b, &[specs[0], specs[1], "-o", out.to_str().unwrap()]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    for (spec, name) in specs.iter().zip(["agent-xyz", "hello"]) {
        let file = out.join(format!("{name}.yaml"));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            render(&b, &[spec]).stdout,
            "{spec}"
        );
        assert!(
            run.stderr
                .contains(&format!("{name}: wrote {}", file.display()))
        );
    }
    let both = render(&b, &specs);
    let docs = documents(&both.stdout);
    for d in &docs {
        strict::check(d).unwrap();
    }
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["NetworkPolicy", "ConfigMap", "Pod", "NetworkPolicy", "Pod"]
    );
}

#[test]
fn render_needs_neither_smolvm_nor_a_cluster_and_checks_its_runtime_class() {
    let b = Bottle::new();
    let mut c = b.bottle_command(&[
        "render",
        "k8s",
        "specs/hello.toml",
        "--runtime-class",
        "kata.fc",
    ]);
    c.current_dir(REPO)
        .env("BOTTLE_SMOLVM", "/nonexistent/smolvm")
        .env("PATH", "/nonexistent")
        .env_remove("KUBECONFIG");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let docs = documents(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(find(&docs, "Pod")["spec"]["runtimeClassName"], "kata.fc");
    let bad = render(&b, &["specs/hello.toml", "--runtime-class", "Smol_VM"]);
    assert_eq!((bad.code, bad.stdout.as_str()), (2, ""));
    assert!(
        bad.stderr
            .contains("a RuntimeClass name is a DNS-1123 subdomain"),
        "{}",
        bad.stderr
    );
    assert!(b.calls().is_empty());
}

#[test]
fn the_strict_check_rejects_what_kubernetes_would_not_accept() {
    let good = documents(
        &render(
            &Bottle::new(),
            &["specs/agent.toml", "--flavor", "agent-sandbox"],
        )
        .stdout,
    );
    let sandbox = find(&good, "Sandbox").clone();
    strict::check(&sandbox).unwrap();
    let broken = |path: &[&str], value: Value| {
        let mut doc = sandbox.clone();
        let mut at = &mut doc;
        for key in &path[..path.len() - 1] {
            at = match key.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*key],
            };
        }
        at[path[path.len() - 1]] = value;
        strict::check(&doc).unwrap_err()
    };
    let spec = ["spec", "podTemplate", "spec"];
    let err = broken(
        &[&spec[..], &["containers", "0", "imagee"]].concat(),
        "x".into(),
    );
    assert!(err.contains("spec.podTemplate.spec"), "{err}");
    let err = broken(&[&spec[..], &["containers", "0", "env"]].concat(), 3.into());
    assert!(err.contains("containers[0].env"), "{err}");
    let err = broken(&["spec", "podTemplat"], serde_json::json!({}));
    assert!(err.contains("podTemplat"), "{err}");
    let err = broken(&["spec", "podTemplate", "metadata", "name"], "x".into());
    assert!(err.contains("name"), "{err}");
    let err = broken(&["metadata", "name"], "Agent_1".into());
    assert!(err.contains("DNS-1123"), "{err}");
    let err = broken(
        &[&spec[..], &["initContainers", "1", "name"]].concat(),
        "copy".into(),
    );
    assert!(err.contains("container `copy` twice"), "{err}");
    let err = broken(
        &[&spec[..], &["containers", "0", "volumeMounts", "0", "name"]].concat(),
        "nope".into(),
    );
    assert!(err.contains("no volume `nope`"), "{err}");
    let policy = find(&good, "NetworkPolicy").clone();
    let mut wide = policy.clone();
    wide["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "192.168.50.2/8".into();
    assert!(strict::check(&wide).unwrap_err().contains("host bits"));
    let mut unknown = policy;
    unknown["kind"] = "NetworkPolicyy".into();
    assert!(
        strict::check(&unknown)
            .unwrap_err()
            .contains("unknown kind")
    );
}

mod strict;
