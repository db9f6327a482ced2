//! End-to-end tests: the real `bottle` binary against the real
//! `smolvm-sim` binary, through real processes. One test binary.

mod support;

mod apply;
mod down_status;
mod egress;
mod failures;
mod fault_matrix;
mod gc_locks;
mod invalid;
mod packs;
mod parallel;
mod reapply;
mod secrets;
mod signals;
mod sim;
