//! Secret values: read from the host at apply time, held only in memory,
//! and never printed (their `Debug` is masked and they have no `Display`).

use std::fmt;
use std::fs;

use super::error::Problem;
use super::values::EnvKey;
use super::{SecretRef, SecretSource};

/// The shortest secret bottle accepts: shorter values cannot be masked in
/// output without garbling it.
pub const MIN_SECRET_LEN: usize = 4;

/// A secret's value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(********)")
    }
}

/// A secret with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: EnvKey,
    pub value: SecretValue,
}

/// Read a secret's value from the host.
pub fn read(r: &SecretRef) -> Result<Secret, Problem> {
    let problem = |message: String| Problem {
        at: r.at.clone(),
        key: format!("secrets.{}", r.name),
        message,
    };
    let bytes = match &r.source {
        SecretSource::Env(var) => std::env::var_os(var.as_str())
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| problem(format!("host variable `{var}` is not set")))?,
        SecretSource::File(path) => fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => problem(format!("{} does not exist", path.display())),
            _ => problem(format!("cannot read {}: {e}", path.display())),
        })?,
    };
    let text = String::from_utf8_lossy(&bytes);
    if text.trim().chars().count() < MIN_SECRET_LEN {
        return Err(problem(format!(
            "the value is shorter than {MIN_SECRET_LEN} characters, too short to be masked in output"
        )));
    }
    Ok(Secret {
        name: r.name.clone(),
        value: SecretValue(bytes),
    })
}
