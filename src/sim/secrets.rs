//! `--secret-env GUEST_VAR=HOST_VAR` and `--secret-file GUEST_VAR=/abs/path`
//! (smolvm 1.0.0 on, `exec` and `create`): references parsed from argv and
//! resolved on the host when a command runs.
//!
//! Owns the reference syntax and its resolution. A resolved value goes
//! only into the guest command's environment: it must never be written to
//! the world file, the call log or any output.

use std::fs;

use serde::{Deserialize, Serialize};

/// A guest variable whose value is a host variable of the simulator's own
/// environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEnv {
    pub guest: String,
    pub host: String,
}

/// A guest variable whose value is the contents of a host file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFile {
    pub guest: String,
    pub path: String,
}

fn split(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((g, h)) if !g.is_empty() && !h.is_empty() => Ok((g.to_string(), h.to_string())),
        _ => Err("expected GUEST_VAR=SOURCE".into()),
    }
}

/// Value parser of `--secret-env`.
pub fn parse_env(s: &str) -> Result<SecretEnv, String> {
    split(s).map(|(guest, host)| SecretEnv { guest, host })
}

/// Value parser of `--secret-file`: the path must be absolute.
pub fn parse_file(s: &str) -> Result<SecretFile, String> {
    let (guest, path) = split(s)?;
    match path.starts_with('/') {
        true => Ok(SecretFile { guest, path }),
        false => Err("the host path must be absolute".into()),
    }
}

/// The secret references of one command (of `create` or `exec`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    #[serde(default)]
    pub env: Vec<SecretEnv>,
    #[serde(default)]
    pub files: Vec<SecretFile>,
}

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.files.is_empty()
    }

    /// Every reference resolved to `(guest var, value)`, or the message
    /// (without `Error: `) of the first that cannot be.
    pub fn resolve(&self) -> Result<Vec<(String, String)>, String> {
        let envs = self.env.iter().map(|s| match std::env::var(&s.host) {
            Ok(v) => Ok((s.guest.clone(), v)),
            Err(_) => Err(format!(
                "--secret-env {}={}: host variable '{}' is not set",
                s.guest, s.host, s.host
            )),
        });
        let files = self
            .files
            .iter()
            .map(|s| match fs::read_to_string(&s.path) {
                Ok(v) => Ok((s.guest.clone(), v)),
                Err(e) => Err(format!(
                    "--secret-file {}={}: cannot read {}: {e}",
                    s.guest, s.path, s.path
                )),
            });
        envs.chain(files).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_both_sides_and_files_an_absolute_path() {
        assert_eq!(
            parse_env("TOKEN=HOST_TOKEN").unwrap(),
            SecretEnv {
                guest: "TOKEN".into(),
                host: "HOST_TOKEN".into()
            }
        );
        assert!(parse_env("TOKEN").is_err());
        assert!(parse_env("=H").is_err());
        assert!(parse_env("G=").is_err());
        assert!(parse_file("K=/run/k").is_ok());
        assert!(parse_file("K=run/k").is_err());
    }

    #[test]
    fn files_resolve_to_their_contents_and_missing_sources_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        fs::write(&path, "s3cr3t").unwrap();
        let path = path.to_string_lossy().into_owned();
        let ok = Secrets {
            env: vec![],
            files: vec![parse_file(&format!("K={path}")).unwrap()],
        };
        assert_eq!(
            ok.resolve().unwrap(),
            [("K".to_string(), "s3cr3t".to_string())]
        );
        let missing = Secrets {
            env: vec![parse_env("G=SMOLVM_SIM_TEST_SURELY_UNSET_VAR").unwrap()],
            files: vec![],
        };
        assert_eq!(
            missing.resolve().unwrap_err(),
            "--secret-env G=SMOLVM_SIM_TEST_SURELY_UNSET_VAR: host variable 'SMOLVM_SIM_TEST_SURELY_UNSET_VAR' is not set"
        );
    }
}
