//! The record of one machine bottle created, and its schema versions.
//!
//! A record says which spec file owns the machine, how far its last apply
//! got, and what was applied to it: the fingerprint of its create-time
//! fields, the copies sent and the exec steps that ran. Every change of
//! this format is a new [`RECORD_SCHEMA`]: older records are migrated when
//! read (schema 1, before the field existed, is read into the current form
//! with its fingerprint kept as [`Record::legacy`]); a record from a newer
//! bottle is refused, never guessed at.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::Step;
use crate::smolvm::Version;
use crate::spec::{Fingerprint, LegacyPrint};

/// The schema this bottle writes. Schema 2 had no `prune` step; schema 1
/// no `schema` key and the first fingerprint form.
pub const RECORD_SCHEMA: u32 = 3;

/// How far the apply that wrote the record got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordPhase {
    /// `create` is about to be or was issued; the apply has not finished.
    Creating,
    /// Every step of the machine's creation succeeded. A later in-place
    /// update that fails leaves it `complete`: the machine is whole, and
    /// what the update did not finish is retried by the next apply.
    Complete,
    /// The apply that created it failed and the machine may still exist
    /// (teardown failed or was skipped with `--keep-on-failure`).
    Failed,
}

/// One machine bottle owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// [`RECORD_SCHEMA`] when written by this bottle.
    pub schema: u32,
    pub name: String,
    /// The spec file that owns the machine: its canonical absolute path
    /// (a schema-1 record's path is as the user typed it).
    pub spec_file: PathBuf,
    /// The hash of the spec's fingerprint: of the spec being created while
    /// `creating`, then of the spec of the last apply that completed.
    pub spec_hash: String,
    /// What was applied to the machine (see [`Fingerprint`]).
    pub fingerprint: Fingerprint,
    pub phase: RecordPhase,
    /// Steps completed by the apply that last wrote this record, in order.
    pub completed: Vec<Step>,
    /// The pack the machine was created from.
    pub pack: Option<PathBuf>,
    /// The smolvm that created it.
    pub smolvm_version: Version,
    /// A migrated schema-1 record's fingerprint, in its first form; then
    /// `fingerprint` holds nothing yet (see `plan::applied`). Never
    /// written: the next write stores the current form.
    #[serde(skip)]
    pub legacy: Option<LegacyPrint>,
}

/// A record of schema 1 (bottle 0.1.0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordV1 {
    pub name: String,
    pub spec_file: PathBuf,
    pub spec_hash: String,
    pub fingerprint: LegacyPrint,
    pub phase: RecordPhase,
    pub completed: Vec<Step>,
    pub pack: Option<PathBuf>,
    pub smolvm_version: Version,
}

impl RecordV1 {
    /// The record in the current schema; what was applied is known only in
    /// the first fingerprint form until it is compared with a spec. The
    /// spec path, as typed then, is tidied: an absolute one resolved (if
    /// it still exists), a leading `./` dropped.
    pub fn migrate(self) -> Record {
        Record {
            schema: RECORD_SCHEMA,
            name: self.name,
            spec_file: tidy(self.spec_file),
            spec_hash: self.spec_hash,
            fingerprint: Fingerprint::nothing(),
            phase: self.phase,
            completed: self.completed,
            pack: self.pack,
            smolvm_version: self.smolvm_version,
            legacy: Some(self.fingerprint),
        }
    }
}

/// A spec path as bottle 0.1.0 recorded it, made comparable with canonical
/// paths where that is sure: an absolute path canonicalized, `./` dropped
/// from a relative one (one with `..` stays as it is: it names no file
/// bottle can know).
fn tidy(path: PathBuf) -> PathBuf {
    use std::path::Component;
    match path.is_absolute() {
        true => std::fs::canonicalize(&path).unwrap_or(path),
        false => path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_1_spec_path_is_tidied() {
        assert_eq!(tidy("./a.toml".into()), PathBuf::from("a.toml"));
        assert_eq!(
            tidy("./specs/./a.toml".into()),
            PathBuf::from("specs/a.toml")
        );
        assert_eq!(tidy("../p/a.toml".into()), PathBuf::from("../p/a.toml"));
        assert_eq!(
            tidy("/nowhere/x.toml".into()),
            PathBuf::from("/nowhere/x.toml")
        );
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("a.toml"), "").unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
        let canonical = std::fs::canonicalize(real.join("a.toml")).unwrap();
        assert_eq!(tidy(tmp.path().join("link/a.toml")), canonical);
    }
}
