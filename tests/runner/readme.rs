//! README.md says what it means: every ```toml block in it is a spec
//! bottle reads and validates (and resolves, when it names no secrets),
//! and no example's `[env]` holds a key that belongs at the top of the
//! spec (TOML puts a key written after `[env]` into `[env]`).

use std::path::{Path, PathBuf};

use bottle::spec::{self, Spec};

const README: &str = include_str!("../../README.md");

/// The top-level keys of a spec: written after `[env]` (or in an exec's
/// `env`), one of these becomes an environment variable instead.
const TOP_LEVEL: [&str; 9] = [
    "name", "image", "network", "env", "copy", "copy_via", "ready", "exec", "secrets",
];

/// Every ```toml block of `text`, with the line its text starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.trim_end()) {
            (None, "```toml") => open = Some((i + 2, String::new())),
            (Some(_), "```") => blocks.extend(open.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(open.is_none(), "a ```toml block is never closed");
    blocks
}

/// Where an example is read from: `specs/`, so that its relative paths
/// (`../fixtures/workspace`) name this repository's fixtures.
fn example_path(line: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("specs/README.md-line-{line}.toml"))
}

/// The examples, read and validated.
fn examples() -> Vec<(usize, Spec)> {
    let blocks = toml_blocks(README);
    assert!(
        blocks.len() >= 3,
        "{} ```toml blocks in README.md",
        blocks.len()
    );
    let read = |(line, text): (usize, String)| match spec::parse(&example_path(line), &text) {
        Ok(s) => (line, s),
        Err(e) => panic!("README.md:{line}: the example is not a valid spec:\nerror: {e}"),
    };
    blocks.into_iter().map(read).collect()
}

#[test]
fn every_toml_example_in_the_readme_is_a_valid_spec() {
    for (line, s) in examples() {
        if s.secrets.is_empty() {
            let resolved = spec::resolve(s);
            assert!(resolved.is_ok(), "README.md:{line}: {:?}", resolved.err());
        }
    }
}

#[test]
fn no_readme_example_puts_a_top_level_key_in_an_env_table() {
    for (line, s) in examples() {
        let exec_env = s.execs.iter().flat_map(|e| e.env.iter());
        for var in s.env.iter().chain(exec_env) {
            assert!(
                !TOP_LEVEL.contains(&var.key.as_str()),
                "README.md:{line}: `{}` is read as an environment variable: \
                 write it before the first table",
                var.key
            );
        }
    }
}

/// The spec example's environment is the one variable it shows; its
/// `copy_via` is the spec's own.
#[test]
fn the_readme_spec_example_means_what_its_comments_say() {
    let (line, s) = examples().into_iter().next().expect("an example");
    let env: Vec<String> = s.env.iter().map(ToString::to_string).collect();
    assert_eq!(
        env,
        ["HTTPS_PROXY=http://192.168.50.2:8888"],
        "README.md:{line}"
    );
    assert_eq!(s.copy_via, spec::CopyVia::Archive, "README.md:{line}");
    assert_eq!(s.allow_cidrs.len(), 1, "README.md:{line}");
    assert_eq!(s.dns(), spec::Dns::Closed, "README.md:{line}");
}

/// The extraction itself: blocks are found with their lines, other
/// fences are not taken for TOML.
#[test]
fn toml_blocks_are_found_with_their_lines() {
    let text = "a\n```toml\nx = 1\n```\n```sh\nls\n```\n```toml\n[t]\ny = 2\n```\n";
    assert_eq!(
        toml_blocks(text),
        [(3, "x = 1\n".to_string()), (9, "[t]\ny = 2\n".to_string())]
    );
}
