//! The pack cache: one `pack create` per image and smolvm version, written
//! under a temporary name, forced with `--repack`, pruned by `gc --packs`.

use rustix::process::Signal;

use crate::support::{Bottle, finish, signal};

/// Machine `one` on image `img:1`.
const ONE: &str = r#"name = "one"
[image]
ref = "img:1"
"#;

/// Machine `two` on the same image as `one`.
const TWO: &str = r#"name = "two"
[image]
ref = "img:1"
"#;

/// Machine `three` on the same image as `one`.
const THREE: &str = r#"name = "three"
[image]
ref = "img:1"
"#;

/// Machine `two` on another image, `img:2`.
const TWO_ON_IMG_2: &str = r#"name = "two"
[image]
ref = "img:2"
"#;

/// Write `text` as `{file}.toml`; its path.
fn spec(b: &Bottle, file: &str, text: &str) -> String {
    b.write(&format!("{file}.toml"), text)
        .to_string_lossy()
        .into_owned()
}

fn packs_made(b: &Bottle) -> usize {
    b.calls()
        .iter()
        .filter(|c| c.contains("pack create"))
        .count()
}

#[test]
fn a_second_spec_with_the_same_image_issues_no_pack() {
    let b = Bottle::new();
    let (one, two) = (spec(&b, "one", ONE), spec(&b, "two", TWO));
    b.run(&["apply", &one]).status(0);
    b.run(&["apply", &two]).status(0);
    assert_eq!(packs_made(&b), 1);
    let key = b.pack_key("img:1");
    assert_eq!(
        b.cached_packs(),
        [key.clone(), format!("{key}.smolmachine")]
    );
    b.clear_calls();
    b.run(&["apply", "--repack", &spec(&b, "three", THREE)])
        .status(0);
    assert_eq!(packs_made(&b), 1, "--repack packs again");
    b.run(&["plan", "--repack", &two]).status(0);
}

#[test]
fn an_interrupted_pack_never_poisons_the_cache() {
    let b = Bottle::new();
    let one = spec(&b, "one", ONE);
    let child = b.spawn(&[("SMOLVM_SIM_HANG", "pack")], &["apply", &one]);
    b.wait_for_call("pack create");
    signal(&child, Signal::KILL);
    finish(child);
    b.kill_leftovers();
    assert!(
        b.cached_packs()
            .iter()
            .all(|p| !p.ends_with(".smolmachine") || p.contains(".partial")),
        "{:?}",
        b.cached_packs()
    );
    b.clear_calls();
    b.run(&["apply", &one]).status(0);
    assert_eq!(packs_made(&b), 1, "the next apply packs again");
}

#[test]
fn gc_packs_prunes_only_what_no_machine_was_created_from() {
    let b = Bottle::new();
    let (one, two) = (spec(&b, "one", ONE), spec(&b, "two", TWO_ON_IMG_2));
    b.run(&["apply", &one, &two]).status(0);
    b.run(&["down", "two"]).status(0);
    let unused = format!("{}.smolmachine", b.pack_key("img:2"));
    let dry = b.run(&["gc", "--packs", "--dry-run"]);
    dry.status(0).stdout_has(&format!("{unused}: would remove"));
    assert!(!dry.stdout.contains(&b.pack_key("img:1")), "{}", dry.stdout);
    assert!(b.cached_packs().contains(&unused));
    b.run(&["gc", "--packs"])
        .status(0)
        .stdout_has(&format!("{unused}: removed"));
    let key1 = b.pack_key("img:1");
    assert_eq!(
        b.cached_packs(),
        [key1.clone(), format!("{key1}.smolmachine")]
    );
    b.run(&["apply", &one]).status(0).stderr_has("unchanged");
}
