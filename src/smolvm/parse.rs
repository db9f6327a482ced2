//! What smolvm's output means: known error messages and the JSON views.
//!
//! Pure functions over text, tested against the messages recorded in the
//! contract. Unknown fields are ignored; unknown messages stay `Other`.

use serde::Deserialize;

/// A failure smolvm reports in a recognisable way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// `… machine 'NAME' already exists [or is being created]`
    AlreadyExists,
    /// `vm not found: NAME`, `machine 'NAME' not found`
    NotFound,
    /// `machine 'NAME' is not running`
    NotRunning,
    /// Anything else.
    Other,
}

/// Classify smolvm's stderr.
pub fn classify(stderr: &str) -> Known {
    if stderr.contains("already exists") {
        Known::AlreadyExists
    } else if stderr.contains("is not running") {
        Known::NotRunning
    } else if stderr.contains("not found") {
        Known::NotFound
    } else {
        Known::Other
    }
}

/// The lifecycle state smolvm reports for a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineState {
    /// Created, never started.
    Created,
    Running,
    Stopped,
    /// The VM process is alive but its agent does not answer.
    Unreachable,
    /// A state this version of bottle does not know.
    Other(String),
}

impl MachineState {
    fn from_word(s: &str) -> Self {
        match s {
            "created" => MachineState::Created,
            "running" => MachineState::Running,
            "stopped" => MachineState::Stopped,
            "unreachable" => MachineState::Unreachable,
            other => MachineState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MachineState::Created => "created",
            MachineState::Running => "running",
            MachineState::Stopped => "stopped",
            MachineState::Unreachable => "unreachable",
            MachineState::Other(s) => s,
        }
    }
}

/// The fields of `machine status --json` bottle reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineStatus {
    pub name: String,
    pub state: MachineState,
    pub network: bool,
    pub pid: Option<i64>,
}

#[derive(Deserialize)]
struct RawStatus {
    name: String,
    state: String,
    #[serde(default)]
    network: bool,
    #[serde(default)]
    pid: Option<i64>,
}

impl From<RawStatus> for MachineStatus {
    fn from(r: RawStatus) -> Self {
        MachineStatus {
            name: r.name,
            state: MachineState::from_word(&r.state),
            network: r.network,
            pid: r.pid,
        }
    }
}

/// Parse `machine status --json` output.
pub fn status(json: &str) -> Result<MachineStatus, String> {
    serde_json::from_str::<RawStatus>(json)
        .map(MachineStatus::from)
        .map_err(|e| e.to_string())
}

/// Parse `machine ls --json` output.
pub fn list(json: &str) -> Result<Vec<MachineStatus>, String> {
    serde_json::from_str::<Vec<RawStatus>>(json)
        .map(|v| v.into_iter().map(MachineStatus::from).collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_messages_are_classified() {
        let cases = [
            (
                "Error: config operation failed: create machine: machine 'a' already exists",
                Known::AlreadyExists,
            ),
            (
                "Error: machine 'a' already exists or is being created",
                Known::AlreadyExists,
            ),
            ("Error: vm not found: a", Known::NotFound),
            (
                "Error: config operation failed: machine status: machine 'a' not found",
                Known::NotFound,
            ),
            (
                "Error: agent operation failed: connect: machine 'a' is not running. Use 'smolvm machine start --name a' first.",
                Known::NotRunning,
            ),
            ("error: unexpected argument '--bogus' found", Known::Other),
        ];
        for (msg, want) in cases {
            assert_eq!(classify(msg), want, "{msg}");
        }
    }

    #[test]
    fn status_json_is_read_leniently() {
        let json = r#"{
  "name": "agent",
  "state": "running",
  "pid": 4242,
  "image": null,
  "network": true,
  "cpus": 4,
  "labels": {"a": "b"}
}"#;
        let s = status(json).unwrap();
        assert_eq!(s.state, MachineState::Running);
        assert!(s.network);
        assert_eq!(s.pid, Some(4242));
        let odd = status(r#"{"name":"a","state":"paused"}"#).unwrap();
        assert_eq!(odd.state, MachineState::Other("paused".into()));
        assert!(status("not json").is_err());
        let all = list(r#"[{"name":"a","state":"stopped"}]"#).unwrap();
        assert_eq!(all[0].state, MachineState::Stopped);
    }
}
