//! One smolvm invocation as a value: its argv, the variables its process
//! gets in its environment, and what kind of call it is.
//!
//! Built only by `argv`; run by a [`Smolvm`](super::Smolvm) implementation
//! and shown to humans through its `Display` (the argv shell-quoted, so it
//! can be pasted into a terminal). The environment carries secret values
//! (for `exec --secret-env`): they are never shown, not by `Display` (argv
//! only) nor by `Debug` (masked by [`SecretValue`]).

use std::fmt;
use std::time::Duration;

use crate::spec::SecretValue;

/// Which smolvm subcommand a call is: decides its time limit and how its
/// result is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Version,
    Pack,
    Create,
    Start,
    Stop,
    Delete,
    /// A guest command: its exit code is a result, not a failure. Its own
    /// `--timeout`, if any, bounds the call.
    Exec {
        timeout: Option<Duration>,
    },
    /// `exec -- true`, the readiness probe.
    Probe,
    Cp,
    Status,
    Ls,
}

/// What a call does to the world; after bottle was asked to stop, only
/// observation and teardown calls still run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Reads state only (`--version`, `status`, `ls`).
    Observe,
    /// Makes or changes something (`pack`, `create`, `start`, `exec`, `cp`).
    Mutate,
    /// Removes what was made (`stop`, `delete`).
    Teardown,
}

impl Op {
    pub fn kind(self) -> Kind {
        match self {
            Op::Version | Op::Status | Op::Ls => Kind::Observe,
            Op::Pack | Op::Create | Op::Start | Op::Exec { .. } | Op::Probe | Op::Cp => {
                Kind::Mutate
            }
            Op::Stop | Op::Delete => Kind::Teardown,
        }
    }
}

/// A smolvm call: what it is, its full argv (program first), and the
/// variables set in the smolvm process's environment besides bottle's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub argv: Vec<String>,
    pub env: Vec<ChildVar>,
}

impl Call {
    pub fn kind(&self) -> Kind {
        self.op.kind()
    }
}

/// A variable of the smolvm process's own environment (never on its
/// command line): the value a `--secret-env GUEST_VAR=HOST_VAR` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildVar {
    /// The variable's name, e.g. `BOTTLE_SECRET_API_KEY`.
    pub name: String,
    pub value: SecretValue,
}

/// The whole call, shell-quoted: what `plan` prints and a hint tells a
/// human to run, never shortened.
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_line(&self.argv))
    }
}

/// An argv as an error message names it: shell-quoted, and cut to its
/// first [`SHOWN_HEAD`] bytes and its length when it is longer than
/// [`MAX_SHOWN`] (see [`shorten`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shorten(&shell_line(&self.0)))
    }
}

/// The longest text a message shows whole.
pub const MAX_SHOWN: usize = 512;
/// How much of a longer text a message shows.
pub const SHOWN_HEAD: usize = 300;

/// `text`, or, when it is longer than [`MAX_SHOWN`] bytes, its first
/// [`SHOWN_HEAD`] bytes (to a character boundary) and `…(N bytes)`, its
/// whole length.
pub fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_SHOWN {
        return text.into();
    }
    let mut end = SHOWN_HEAD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len()).into()
}

fn shell_line(words: &[String]) -> String {
    let words: Vec<String> = words.iter().map(|w| quote(w)).collect();
    words.join(" ")
}

impl From<&Call> for Argv {
    fn from(c: &Call) -> Self {
        Argv(c.argv.clone())
    }
}

/// Quote `w` for a POSIX shell when it needs it.
pub fn quote(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decide_what_runs_after_a_signal() {
        assert_eq!(Op::Status.kind(), Kind::Observe);
        assert_eq!(Op::Version.kind(), Kind::Observe);
        assert_eq!(Op::Ls.kind(), Kind::Observe);
        assert_eq!(Op::Stop.kind(), Kind::Teardown);
        assert_eq!(Op::Delete.kind(), Kind::Teardown);
        for op in [Op::Pack, Op::Create, Op::Start, Op::Probe, Op::Cp] {
            assert_eq!(op.kind(), Kind::Mutate, "{op:?}");
        }
        assert_eq!(Op::Exec { timeout: None }.kind(), Kind::Mutate);
    }

    #[test]
    fn argv_is_shown_shell_quoted() {
        let c = Call {
            env: Vec::new(),
            op: Op::Exec { timeout: None },
            argv: [
                "smolvm",
                "machine",
                "exec",
                "--",
                "sh",
                "-c",
                "echo 'hi' > /x",
            ]
            .map(String::from)
            .to_vec(),
        };
        assert_eq!(
            c.to_string(),
            r#"smolvm machine exec -- sh -c 'echo '\''hi'\'' > /x'"#
        );
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary_and_says_its_length() {
        let short = "x".repeat(MAX_SHOWN);
        assert_eq!(shorten(&short), short.as_str());
        // Byte 300 falls inside an `é`: the cut moves back to 299.
        let text = format!("a{}", "é".repeat(400));
        let want = format!("a{}…(801 bytes)", "é".repeat(149));
        assert_eq!(shorten(&text), want.as_str());
    }

    #[test]
    fn a_long_argv_is_shortened_in_messages_but_not_as_a_call() {
        let value = format!("A={}", "é".repeat(100_000));
        let argv = ["smolvm", "machine", "create", "-e", &value].map(String::from);
        let call = Call {
            op: Op::Create,
            argv: argv.to_vec(),
            env: Vec::new(),
        };
        let whole = call.to_string();
        assert_eq!(whole.len(), 200_029);
        let shown = Argv::from(&call).to_string();
        assert!(
            shown.starts_with("smolvm machine create -e 'A=éé"),
            "{shown}"
        );
        assert!(shown.ends_with("é…(200029 bytes)"), "{shown}");
        assert!(shown.len() <= SHOWN_HEAD + 20, "{}", shown.len());
        let short = Argv(["smolvm", "--version"].map(String::from).to_vec());
        assert_eq!(short.to_string(), "smolvm --version");
        let edge = "x".repeat(MAX_SHOWN);
        assert_eq!(shorten(&edge), edge);
        assert_eq!(
            shorten(&format!("{edge}y")),
            format!("{}…(513 bytes)", "x".repeat(SHOWN_HEAD))
        );
    }
}
