//! Copies never follow links on the host: a link in a copied tree reaches
//! the guest as a link (by archive and by `cp`), what it points to never
//! does, `plan` shows every link that leaves its tree, special files are
//! refused where the spec names them, and a file that changes while it is
//! archived fails the upload (and the apply tears down) instead of making
//! a corrupt archive.

use std::path::Path;

use crate::support::Bottle;

/// What the canary file outside the workspace holds.
const CANARY: &str = "CANARY-aws-credentials-7f3a";

/// A workspace `ws` with a file, an executable and `notes.txt ->
/// ../secret.txt`, the secret (a canary) next to it, and a spec copying
/// `ws` to `/workspace` by `via` whose exec step checks, in the guest,
/// that `notes.txt` is a link.
fn workspace_with_escaping_link(b: &Bottle, via: &str) -> String {
    b.write("secret.txt", CANARY);
    b.write("ws/README.md", "# hello\n");
    b.write("ws/src/main.sh", "echo main\n");
    std::os::unix::fs::symlink("../secret.txt", b.path("ws/notes.txt")).unwrap();
    let spec = format!(
        r#"name = "agent"
copy_via = "{via}"

[image]
ref = "img:1"

[[copy]]
src = "ws"
dest = "/workspace"

[[exec]]
run = ["test", "-L", "/workspace/notes.txt"]
"#
    );
    b.write("spec.toml", &spec).to_string_lossy().into_owned()
}

/// Every regular file under `dir`, links not followed.
fn regular_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::symlink_metadata(&p).unwrap().file_type();
        if t.is_dir() {
            out.extend(regular_files(&p));
        } else if t.is_file() {
            out.push(p);
        }
    }
    out
}

/// The guest holds the link with its target text, the workspace's files,
/// and the canary nowhere.
#[track_caller]
fn assert_link_arrived_and_the_secret_did_not(b: &Bottle) {
    let guest = b.path("sim/guests/agent");
    let notes = guest.join("workspace/notes.txt");
    assert!(std::fs::symlink_metadata(&notes).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_link(&notes).unwrap(),
        Path::new("../secret.txt")
    );
    assert_eq!(
        b.guest("agent", "/workspace/README.md").as_deref(),
        Some("# hello\n")
    );
    let files = regular_files(&guest);
    assert!(files.len() >= 2, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "the secret reached the guest in {}",
            f.display()
        );
    }
}

#[test]
fn an_escaping_link_arrives_as_a_link_and_its_target_never_does() {
    let b = Bottle::new();
    let spec = workspace_with_escaping_link(&b, "archive");
    b.run(&["apply", &spec])
        .status(0)
        .stderr_has("upload 2 files and 1 link: ok");
    assert_link_arrived_and_the_secret_did_not(&b);
}

#[test]
fn with_cp_a_link_is_made_by_ln_and_arrives_as_a_link() {
    let b = Bottle::new();
    let spec = workspace_with_escaping_link(&b, "cp");
    b.run(&["apply", &spec])
        .status(0)
        .stderr_has("link /workspace/notes.txt -> ../secret.txt: ok");
    assert_link_arrived_and_the_secret_did_not(&b);
    let ln = "smolvm machine exec --name agent -- sh -c 'mkdir -p \"$1\" && ln -sfn -- \"$2\" \"$3\"' \
              bottle-link /workspace ../secret.txt /workspace/notes.txt";
    assert!(b.calls().iter().any(|c| c == ln), "{:#?}", b.calls());
    assert!(
        !b.calls()
            .iter()
            .any(|c| c.contains("cp [TMP]/ws/notes.txt")),
        "a link is never given to cp, which follows it"
    );
}

/// `plan` of a workspace with a link leaving it, and of a `src` that is a
/// symlink to a tree with an absolute link: files, links and bytes per
/// copy, where the symlinked `src` points, and each leaving link.
#[test]
fn plan_shows_each_copy_and_every_link_that_leaves_its_tree() {
    for via in ["archive", "cp"] {
        let b = Bottle::new();
        let spec = workspace_with_escaping_link(&b, via);
        b.write("tools/bin/run", "#!/bin/sh\n");
        std::os::unix::fs::symlink("/usr/bin/python3", b.path("tools/bin/python")).unwrap();
        std::os::unix::fs::symlink("run", b.path("tools/bin/again")).unwrap();
        std::os::unix::fs::symlink("tools", b.path("current")).unwrap();
        let text = std::fs::read_to_string(&spec).unwrap();
        let more = "[[copy]]\nsrc = \"current\"\ndest = \"/opt/tools\"\n";
        std::fs::write(
            &spec,
            text.replace("[[exec]]", &format!("{more}\n[[exec]]")),
        )
        .unwrap();
        let run = b.run(&["plan", &spec]);
        run.status(0);
        insta::assert_snapshot!(format!("plan_with_links_{via}"), b.normalize(&run.stdout));
    }
}

#[test]
fn a_fifo_in_a_source_is_refused_where_the_spec_names_it() {
    let b = Bottle::new();
    let spec = workspace_with_escaping_link(&b, "archive");
    let made = std::process::Command::new("mkfifo")
        .arg(b.path("ws/src/pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let run = b.run(&["apply", &spec]);
    run.status(2);
    assert!(b.calls().is_empty(), "{:#?}", b.calls());
    insta::assert_snapshot!(b.normalize(&run.stderr));
}

#[test]
fn a_changed_link_target_is_sent_again_in_place() {
    let b = Bottle::new();
    let spec = workspace_with_escaping_link(&b, "archive");
    b.run(&["apply", &spec]).status(0);
    let notes = b.path("ws/notes.txt");
    std::fs::remove_file(&notes).unwrap();
    std::os::unix::fs::symlink("README.md", &notes).unwrap();
    b.run(&["plan", &spec])
        .status(0)
        .stdout_has("agent: update in place: copy /workspace (1 file changed)");
    b.run(&["apply", &spec]).status(0);
    let guest = b.path("sim/guests/agent/workspace/notes.txt");
    assert_eq!(std::fs::read_link(guest).unwrap(), Path::new("README.md"));
}

/// A file whose content does not match its size when archived (a `/proc`
/// file says 0 bytes and reads more, as a file growing under bottle
/// would): the upload fails naming it, the machine is torn down, and no
/// archive is left.
#[test]
fn a_file_that_changes_while_archived_fails_the_upload_and_tears_down() {
    let b = Bottle::new();
    let spec = b.write(
        "spec.toml",
        "name = \"agent\"\n[image]\nref = \"img:1\"\n[[copy]]\nsrc = \"/proc/version\"\ndest = \"/v\"\n\
         [[copy]]\nsrc = \"spec.toml\"\ndest = \"/s\"\n",
    );
    let run = b.run(&["apply", spec.to_str().unwrap()]);
    run.status(1);
    assert!(b.world().machines.is_empty(), "{:?}", b.world().machines);
    assert_eq!(b.record("agent"), None);
    let left = std::fs::read_dir(b.path("cache/uploads")).unwrap().count();
    assert_eq!(left, 0, "an archive was left");
    assert!(
        !b.calls().iter().any(|c| c.contains(" cp ")),
        "{:#?}",
        b.calls()
    );
    let id = b.copy_id(&spec);
    insta::assert_snapshot!(b.normalize(&run.stderr).replace(&id, "[ID]"));
}

/// A link target cannot drive the reviewer's terminal or fake a line of
/// `plan`: control characters, newlines included, are shown escaped.
#[test]
fn a_link_target_cannot_hide_itself_in_plan_output() {
    let b = Bottle::new();
    let spec = workspace_with_escaping_link(&b, "archive");
    let target = "../x\x1b[1A\x1b[2K\n  copy ok";
    std::os::unix::fs::symlink(target, b.path("ws/y")).unwrap();
    let run = b.run(&["plan", &spec]);
    run.status(0).stdout_has(
        "     link /workspace/y -> ../x\\x1b[1A\\x1b[2K\\n  copy ok leaves /workspace\n",
    );
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
}
