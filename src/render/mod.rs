//! `bottle render`: the same spec, run by an engine other than smolvm on
//! this host. One target today: Kubernetes (`render k8s`), whose nodes boot
//! every pod of the `smolvm` RuntimeClass as its own smolvm microVM.
//!
//! Owns turning a resolved spec ([`Desired`](crate::spec::Desired)) into
//! that engine's manifests (`k8s`, which only reads the files to copy) and
//! the command that prints or writes them (`command`). Must not call
//! smolvm, read or write bottle's records or cache, or talk to a cluster:
//! rendering is text out, nothing is run.

mod command;
mod error;
pub mod k8s;

pub use command::{K8sArgs, Target, run};
pub use error::RenderError;
