//! bottle: launch sandboxed smolvm microVMs from a declarative TOML spec.
//!
//! The crate is a functional core with an imperative shell:
//!
//! - [`spec`] parses and validates spec files into domain types (pure), and
//!   resolves what they name on the host (copy sources, pack files).
//! - [`smolvm`] is the thin wrapper over the `smolvm` CLI: pure argv
//!   construction per subcommand and dialect, behind the [`smolvm::Smolvm`]
//!   trait that is the only place a process is spawned.
//! - [`plan`] decides what to do (desired vs observed vs recorded) and
//!   lists each step with its smolvm calls (pure).
//! - [`lifecycle`] is the apply and teardown state machine as a pure
//!   transition function.
//! - [`reconcile`] executes a plan, or a teardown, through the wrapper and
//!   keeps bottle's records.
//! - [`state`] stores bottle's per-machine ownership records on disk.
//! - [`render`] turns a spec into another engine's manifests (Kubernetes),
//!   running nothing.
//! - [`cli`] maps user commands to the above and errors to exit codes.
//! - [`sim`] is `smolvm-sim`, a simulator of the smolvm CLI for tests and for
//!   trying bottle where no smolvm is installed. It shares no code with the
//!   wrapper, and the wrapper does not know it exists.

pub mod cli;
pub mod lifecycle;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod sim;
pub mod smolvm;
pub mod spec;
pub mod state;
