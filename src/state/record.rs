//! The record of one machine bottle created.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::Step;
use crate::smolvm::Version;
use crate::spec::Fingerprint;

/// How far the apply that wrote the record got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordPhase {
    /// `create` is about to be or was issued; the apply has not finished.
    Creating,
    /// Every step succeeded.
    Complete,
    /// The apply failed and the machine may still exist (teardown failed or
    /// was skipped with `--keep-on-failure`).
    Failed,
}

/// One machine bottle owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub name: String,
    pub spec_file: PathBuf,
    pub spec_hash: String,
    pub fingerprint: Fingerprint,
    pub phase: RecordPhase,
    /// Steps completed by the apply that wrote this record, in order.
    pub completed: Vec<Step>,
    /// The pack the machine was created from.
    pub pack: Option<PathBuf>,
    /// The smolvm that created it.
    pub smolvm_version: Version,
}
