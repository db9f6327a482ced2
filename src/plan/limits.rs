//! Whether a spec's `create` call fits the kernel's argument limit, told
//! as a located spec problem before any smolvm call (not even
//! `--version`).
//!
//! The call is built by the plan's own route ([`Inputs::create_call`]) in
//! both dialects (the longer counts), with the pack path the cache will
//! give: its key has the same length for every smolvm version, so the
//! version, unknown before smolvm is asked, does not matter. The blame
//! goes to the part of the spec that takes the most room: an `[env]`
//! entry, `[env]` as a whole, `network.allow_cidrs` or
//! `network.allow_hosts`. Pure, given the limit and the size of the
//! environment smolvm inherits.

use std::path::Path;

use crate::smolvm::arg_limit::{ArgLimit, EnvSize, MAX_ARG_STRLEN, TooLong, cost};
use crate::smolvm::version::OLDEST;
use crate::smolvm::{Call, Cli, Dialect};
use crate::spec::{Desired, EnvVar, Location, Problem, Spec, SpecError};

use super::inputs::Inputs;
use super::transfer::Transfer;

/// Refuse `desired` if its `create` call run as `program` (with bottle's
/// cache under `cache_dir`) would not start under `limit` with an
/// environment of `env`. When the inputs cannot be worked out, the plan
/// reports why later: this passes.
pub fn check_create(
    desired: &Desired,
    program: &str,
    cache_dir: &Path,
    limit: ArgLimit,
    env: EnvSize,
) -> Result<(), SpecError> {
    let Ok(inputs) = Inputs::new(desired, cache_dir, &OLDEST, Transfer::default()) else {
        return Ok(());
    };
    for dialect in [Dialect::NameFlag, Dialect::Positional] {
        let call = inputs.create_call(&Cli::new(program, dialect));
        if let Err(too_long) = limit.check(&call.argv, env) {
            let problem = blame(&desired.spec, &call, too_long, env);
            return Err(SpecError::invalid(vec![problem]));
        }
    }
    Ok(())
}

/// The located problem of a `create` call that is too long.
fn blame(spec: &Spec, call: &Call, too_long: TooLong, env: EnvSize) -> Problem {
    match too_long {
        TooLong::Arg { index, bytes } => one_argument(spec, call, index, bytes),
        TooLong::Total { bytes, limit } => {
            let (at, key, part) = largest_part(spec);
            Problem {
                at,
                key,
                message: format!(
                    "smolvm's `create` command line would take {bytes} bytes with bottle's \
                     environment ({} bytes), over this system's limit of {limit} bytes (a \
                     quarter of the stack size limit, `ulimit -s`); {part}",
                    env.bytes
                ),
            }
        }
    }
}

/// The problem of one argument over [`MAX_ARG_STRLEN`]: an `[env]` entry
/// (nothing else in `create` can be that long).
fn one_argument(spec: &Spec, call: &Call, index: usize, bytes: usize) -> Problem {
    let word = call.argv.get(index).map_or("", String::as_str);
    let flag = index.checked_sub(1).and_then(|i| call.argv.get(i));
    let env_key = (flag.map(String::as_str) == Some("-e"))
        .then(|| word.split_once('=').map(|(k, _)| k))
        .flatten();
    let place = env_key.and_then(|k| spec.places.env.iter().find(|(e, _)| e.as_str() == k));
    let (at, key, shown) = match place {
        Some((k, at)) => (at.clone(), format!("env.{k}"), format!("`-e {k}=…`")),
        None => (
            spec.places.file.clone(),
            String::new(),
            format!("argument {index}"),
        ),
    };
    Problem {
        at,
        key,
        message: format!(
            "{shown} would be one argument of {bytes} bytes to smolvm; Linux refuses any \
             single argument over {MAX_ARG_STRLEN} bytes"
        ),
    }
}

/// One part of the spec on the `create` command line: the room it takes,
/// where it is written, its key, and the words that say so.
struct Part {
    bytes: usize,
    at: Location,
    key: String,
    says: String,
}

/// Where the most room goes, its key, and the words that say so.
fn largest_part(spec: &Spec) -> (Location, String, String) {
    let parts = [
        env_part(spec),
        list_part(spec, Flag::Cidr),
        list_part(spec, Flag::Host),
    ];
    match parts.into_iter().flatten().max_by_key(|p| p.bytes) {
        Some(p) => (p.at, p.key, p.says),
        None => (
            spec.places.file.clone(),
            String::new(),
            "the spec adds little to it: bottle's own environment is the large part".into(),
        ),
    }
}

/// `[env]` as a whole, located at its largest entry.
fn env_part(spec: &Spec) -> Option<Part> {
    let entry = |e: &EnvVar| cost("-e") + cost(&e.to_string());
    let bytes = spec.env.iter().map(entry).sum();
    let largest = spec.env.iter().max_by_key(|e| entry(e))?;
    let (key, at) = spec.places.env.iter().find(|(k, _)| *k == largest.key)?;
    Some(Part {
        bytes,
        at: at.clone(),
        key: "env".into(),
        says: format!("`[env]` takes {bytes} bytes of it (its largest entry, `{key}`, is here)"),
    })
}

/// The two lists of the allow-list.
#[derive(Clone, Copy)]
enum Flag {
    Cidr,
    Host,
}

/// `network.allow_cidrs` or `network.allow_hosts` as a whole.
fn list_part(spec: &Spec, flag: Flag) -> Option<Part> {
    let (key, word, at, values): (&str, &str, _, Vec<String>) = match flag {
        Flag::Cidr => (
            "network.allow_cidrs",
            "--allow-cidr",
            &spec.places.allow_cidrs,
            spec.allow_cidrs.iter().map(ToString::to_string).collect(),
        ),
        Flag::Host => (
            "network.allow_hosts",
            "--allow-host",
            &spec.places.allow_hosts,
            spec.allow_hosts.iter().map(ToString::to_string).collect(),
        ),
    };
    let bytes = values.iter().map(|v| cost(word) + cost(v)).sum();
    Some(Part {
        bytes,
        at: at.clone()?,
        key: key.into(),
        says: format!("`{key}` takes {bytes} bytes of it"),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::smolvm::arg_limit::MAX_TOTAL;

    fn desired(dir: &Path, body: &str) -> Desired {
        let text = format!("name = \"vm\"\n[image]\nref = \"img:1\"\n{body}");
        let spec = crate::spec::parse(&dir.join("s.toml"), &text).unwrap();
        crate::spec::resolve(spec).unwrap()
    }

    fn check(d: &Desired, limit: usize, env: EnvSize) -> Result<(), Problem> {
        let limit = ArgLimit { total: limit };
        let cache = PathBuf::from("/cache");
        check_create(d, "/usr/bin/smolvm", &cache, limit, env).map_err(|e| e.problems()[0].clone())
    }

    #[test]
    fn a_spec_that_fits_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = desired(tmp.path(), "[env]\nA = \"1\"\n");
        assert_eq!(check(&d, MAX_TOTAL, EnvSize::default()), Ok(()));
    }

    #[test]
    fn an_env_value_over_the_string_limit_is_located_at_its_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let big = "v".repeat(200_000);
        let d = desired(tmp.path(), &format!("[env]\nA = \"1\"\nBIG = \"{big}\"\n"));
        let p = check(&d, MAX_TOTAL, EnvSize::default()).unwrap_err();
        assert_eq!((p.at.line, p.at.column, p.key.as_str()), (6, 1, "env.BIG"));
        assert_eq!(
            p.message,
            "`-e BIG=…` would be one argument of 200005 bytes to smolvm; Linux refuses any \
             single argument over 131072 bytes"
        );
    }

    #[test]
    fn a_total_over_the_limit_blames_the_largest_part() {
        let tmp = tempfile::tempdir().unwrap();
        let v = "v".repeat(1000);
        let body = format!(
            "[network]\nallow_cidrs = [\"10.0.0.0/8\"]\n[env]\nA = \"{v}\"\nB = \"{v}x\"\n"
        );
        let d = desired(tmp.path(), &body);
        let fits = check(&d, MAX_TOTAL, EnvSize::default());
        assert_eq!(fits, Ok(()));
        let env = EnvSize {
            count: 1,
            bytes: 100,
        };
        let p = check(&d, 2000, env).unwrap_err();
        assert_eq!((p.at.line, p.key.as_str()), (8, "env"));
        assert!(
            p.message
                .starts_with("smolvm's `create` command line would take "),
            "{}",
            p.message
        );
        assert!(
            p.message.contains(
                "with bottle's environment (100 bytes), over this system's limit of 2000 bytes"
            ),
            "{}",
            p.message
        );
        assert!(
            p.message.ends_with("(its largest entry, `B`, is here)"),
            "{}",
            p.message
        );
        // Each entry: `-e` and `K=V`, each with its NUL and its pointer.
        let entries = (2 + 1 + 8) * 2 + (1002 + 1 + 8) + (1003 + 1 + 8);
        assert!(
            p.message
                .contains(&format!("`[env]` takes {entries} bytes of it")),
            "{}",
            p.message
        );
    }

    #[test]
    fn many_cidrs_or_hosts_are_blamed_on_their_list() {
        let tmp = tempfile::tempdir().unwrap();
        let cidrs: Vec<String> = (0..200).map(|i| format!("\"10.0.{i}.0/24\"")).collect();
        let body = format!("[network]\nallow_cidrs = [{}]\n", cidrs.join(", "));
        let d = desired(tmp.path(), &body);
        let p = check(&d, 4000, EnvSize::default()).unwrap_err();
        assert_eq!((p.at.line, p.at.column), (5, 16));
        assert_eq!(p.key, "network.allow_cidrs");
        let hosts: Vec<String> = (0..200).map(|i| format!("\"h{i}.example\"")).collect();
        let body = format!(
            "[network]\nallow_cidrs = [\"10.0.0.0/8\"]\nallow_hosts = [{}]\n",
            hosts.join(", ")
        );
        let p = check(&desired(tmp.path(), &body), 4000, EnvSize::default()).unwrap_err();
        assert_eq!((p.at.line, p.key.as_str()), (6, "network.allow_hosts"));
        assert!(
            p.message
                .ends_with("`network.allow_hosts` takes 8290 bytes of it"),
            "{}",
            p.message
        );
    }

    #[test]
    fn the_longer_dialect_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = desired(tmp.path(), "");
        let cache = PathBuf::from("/cache");
        let inputs = Inputs::new(&d, &cache, &OLDEST, Transfer::default()).unwrap();
        let flag = inputs.create_call(&Cli::new("/usr/bin/smolvm", Dialect::NameFlag));
        let bytes = crate::smolvm::arg_limit::measure(&flag.argv, EnvSize::default());
        assert_eq!(check(&d, bytes, EnvSize::default()), Ok(()));
        let p = check(&d, bytes - 1, EnvSize::default()).unwrap_err();
        assert_eq!((p.at.line, p.key.as_str()), (1, ""));
        assert!(
            p.message
                .ends_with("bottle's own environment is the large part")
        );
    }
}
