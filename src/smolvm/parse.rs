//! What smolvm's output means: its known error messages and JSON views.
//!
//! Pure functions over text, tested against the messages the contract
//! (`../shared/smolvm-cli.md`) records from the real smolvm 0.8.0 and
//! 1.9.3. A message is recognised by its exact form on smolvm's `Error:`
//! line, never by a word found anywhere in stderr: `create from
//! .smolmachine: file not found: P` does not mean the machine is missing.
//! Unknown fields are ignored; unknown messages stay [`Known::Other`].

use serde::Deserialize;

/// A failure smolvm reports in a recognisable way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// `… machine 'NAME' already exists` (0.8) or `… already exists or is
    /// being created` (1.x), from `create`.
    AlreadyExists,
    /// `vm not found: NAME`, or `config operation failed: machine status:
    /// machine 'NAME' not found` from `status`.
    NotFound,
    /// `agent operation failed: connect: machine 'NAME' is not running. …`
    NotRunning,
    /// Anything else.
    Other,
}

/// Remove ANSI escape sequences (smolvm colours its log lines even when
/// piped).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// The message of smolvm's last `Error: …` line, if it printed one (log
/// lines and warnings may come before it).
pub fn error_message(stderr: &str) -> Option<String> {
    strip_ansi(stderr)
        .lines()
        .rev()
        .find_map(|l| l.trim_end().strip_prefix("Error: ").map(str::to_string))
}

/// A quoted machine name in smolvm's messages: `'NAME'`, nothing else.
fn quoted_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with('\'')
        && s.ends_with('\'')
        && !s[1..s.len() - 1].contains(['\'', ' '])
}

/// Classify smolvm's stderr by its `Error:` line.
pub fn classify(stderr: &str) -> Known {
    let Some(m) = error_message(stderr) else {
        return Known::Other;
    };
    if already_exists(&m) {
        Known::AlreadyExists
    } else if not_running(&m) {
        Known::NotRunning
    } else if not_found(&m) {
        Known::NotFound
    } else {
        Known::Other
    }
}

/// `[PREFIX: ]machine 'N' already exists[ or is being created]`
fn already_exists(m: &str) -> bool {
    let rest = m
        .strip_suffix(" already exists or is being created")
        .or_else(|| m.strip_suffix(" already exists"));
    let Some(rest) = rest else { return false };
    let tail = rest.rsplit_once("machine ");
    match tail {
        Some((head, name)) => (head.is_empty() || head.ends_with(": ")) && quoted_name(name),
        None => false,
    }
}

/// `vm not found: NAME` or `config operation failed: machine status: machine 'N' not found`
fn not_found(m: &str) -> bool {
    if let Some(name) = m.strip_prefix("vm not found: ") {
        return !name.is_empty() && !name.contains(' ');
    }
    m.strip_prefix("config operation failed: machine status: machine ")
        .and_then(|r| r.strip_suffix(" not found"))
        .is_some_and(quoted_name)
}

/// `agent operation failed: connect: machine 'N' is not running. Use …`
fn not_running(m: &str) -> bool {
    m.strip_prefix("agent operation failed: connect: machine ")
        .and_then(|r| r.split_once(" is not running."))
        .is_some_and(|(name, _)| quoted_name(name))
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
    /// A state this version of bottle does not know (e.g. `failed`,
    /// `frozen`).
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
pub fn status(json: &str) -> Result<MachineStatus, serde_json::Error> {
    serde_json::from_str::<RawStatus>(json).map(MachineStatus::from)
}

/// Parse `machine ls --json` output.
pub fn list(json: &str) -> Result<Vec<MachineStatus>, serde_json::Error> {
    serde_json::from_str::<Vec<RawStatus>>(json)
        .map(|v| v.into_iter().map(MachineStatus::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message the contract records, with what it means.
    #[test]
    fn recorded_messages_are_classified() {
        let cases = [
            (
                "Error: config operation failed: create machine: machine 'a' already exists",
                Known::AlreadyExists,
            ),
            (
                "Error: config operation failed: create machine: machine 'a' already exists or is being created",
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
            (
                "Error: create from .smolmachine: file not found: /c/p.smolmachine",
                Known::Other,
            ),
            (
                "Error: agent operation failed: verify rootfs: agent rootfs not found: /x/rootfs",
                Known::Other,
            ),
            ("Error: libkrun/libkrunfw not found", Known::Other),
            (
                "Error: read .smolmachine: I/O error: sidecar file too small to contain footer",
                Known::Other,
            ),
            (
                "Starting machine 'a'...\nError: vm not found: a",
                Known::NotFound,
            ),
            (
                "\x1b[2m2026-11-25\x1b[0m \x1b[33m WARN\x1b[0m image already exists in cache\nError: vm not found: a\n",
                Known::NotFound,
            ),
            ("the machine is not running and was not found", Known::Other),
            // Close to a known form, but not it: the name must be quoted
            // (and hold no quote or space), and nothing may precede
            // `machine` but an `…: ` prefix.
            ("Error: machine a already exists", Known::Other),
            ("Error: machine 'a already exists", Known::Other),
            ("Error: machine a' already exists", Known::Other),
            ("Error: machine 'a b' already exists", Known::Other),
            ("Error: machine ' already exists", Known::Other),
            ("Error: the machine 'a' already exists", Known::Other),
            ("Error: vm not found: a b", Known::Other),
            ("Error: vm not found: ", Known::Other),
            (
                "Error: config operation failed: machine status: machine a not found",
                Known::Other,
            ),
            (
                "Error: agent operation failed: connect: machine a is not running. Use it.",
                Known::Other,
            ),
            ("", Known::Other),
        ];
        for (msg, want) in cases {
            assert_eq!(classify(msg), want, "{msg}");
        }
    }

    #[test]
    fn states_read_back_what_they_print() {
        for word in ["created", "running", "stopped", "unreachable", "frozen"] {
            assert_eq!(MachineState::from_word(word).as_str(), word);
        }
        assert_eq!(MachineState::from_word("running"), MachineState::Running);
    }

    #[test]
    fn the_error_line_is_found_after_log_lines() {
        let stderr = "\x1b[2mlog\x1b[0m line\nError: vm not found: a\n";
        assert_eq!(error_message(stderr).as_deref(), Some("vm not found: a"));
        assert_eq!(error_message("no error here"), None);
        assert_eq!(strip_ansi("\x1b[33m WARN\x1b[0m x"), " WARN x");
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
  "mounts": 0,
  "ports": 0,
  "labels": {"a": "b"}
}"#;
        let s = status(json).unwrap();
        assert_eq!(s.state, MachineState::Running);
        assert!(s.network);
        assert_eq!(s.pid, Some(4242));
        let odd = status(r#"{"name":"a","state":"frozen"}"#).unwrap();
        assert_eq!(odd.state, MachineState::Other("frozen".into()));
        assert!(status("not json").is_err());
        let all = list(r#"[{"name":"a","state":"stopped"}]"#).unwrap();
        assert_eq!(all[0].state, MachineState::Stopped);
    }
}
