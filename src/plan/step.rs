//! The steps of an apply. Each is one effect: a smolvm call (readiness: one
//! probe, repeated) or, for [`Step::Record`], bottle's own record.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One step of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// `pack create` of the spec's image into the cache.
    Pack,
    /// `stop` of the machine being replaced.
    StopOld,
    /// `delete -f` of the machine being replaced.
    DeleteOld,
    /// Write bottle's record of the machine as `creating`: the proof that
    /// bottle owns whatever `create` makes. No smolvm call; if it fails,
    /// nothing was created.
    Record,
    /// `machine create`.
    Create,
    /// `machine start`.
    Start,
    /// Probe `exec -- true` until it succeeds.
    WaitReady,
    /// Put the spec's secrets into the guest, on a smolvm without
    /// `exec --secret-env` (0.8.x): one `exec` to make their directory
    /// private, one `cp` each (from a host memfd), one `exec` to make them
    /// 0400.
    Secrets,
    /// `exec` of `rm -f` of the copied paths the guest no longer needs
    /// (and `rmdir` of the directories in the way of a sent path), before
    /// anything is sent.
    Prune,
    /// `cp` of the i-th path to send, one at a time (`copy_via = "cp"`, or
    /// an update that sends one file).
    Copy(usize),
    /// `cp` of one archive of every file to copy.
    Upload,
    /// `exec` of `tar -x` of that archive in the guest, then its removal.
    Unpack,
    /// The i-th `[[exec]]` step.
    Exec(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Pack => f.write_str("pack"),
            Step::StopOld => f.write_str("stop-old"),
            Step::DeleteOld => f.write_str("delete-old"),
            Step::Record => f.write_str("record"),
            Step::Create => f.write_str("create"),
            Step::Start => f.write_str("start"),
            Step::WaitReady => f.write_str("wait-ready"),
            Step::Secrets => f.write_str("secrets"),
            Step::Prune => f.write_str("prune"),
            Step::Copy(i) => write!(f, "copy[{i}]"),
            Step::Upload => f.write_str("upload"),
            Step::Unpack => f.write_str("unpack"),
            Step::Exec(i) => write!(f, "exec[{i}]"),
        }
    }
}

/// A word that names no step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a step")]
pub struct NotAStep(String);

impl FromStr for Step {
    type Err = NotAStep;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let indexed = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<usize>().ok())
        };
        Ok(match s {
            "pack" => Step::Pack,
            "stop-old" => Step::StopOld,
            "delete-old" => Step::DeleteOld,
            "record" => Step::Record,
            "create" => Step::Create,
            "start" => Step::Start,
            "wait-ready" => Step::WaitReady,
            "secrets" => Step::Secrets,
            "prune" => Step::Prune,
            "upload" => Step::Upload,
            "unpack" => Step::Unpack,
            _ => match (indexed("copy["), indexed("exec[")) {
                (Some(i), _) => Step::Copy(i),
                (_, Some(i)) => Step::Exec(i),
                (None, None) => return Err(NotAStep(s.to_string())),
            },
        })
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_back_what_they_print() {
        let all = [
            Step::Pack,
            Step::StopOld,
            Step::DeleteOld,
            Step::Record,
            Step::Create,
            Step::Start,
            Step::WaitReady,
            Step::Secrets,
            Step::Copy(3),
            Step::Upload,
            Step::Unpack,
            Step::Exec(12),
        ];
        for s in all {
            assert_eq!(s.to_string().parse::<Step>(), Ok(s));
        }
        for bad in ["", "exec[", "exec[x]", "copy[-1]", "Pack", "exec[1]x"] {
            assert_eq!(bad.parse::<Step>(), Err(NotAStep(bad.into())), "{bad}");
        }
    }
}
