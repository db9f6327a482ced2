//! The simulator's specification, in process: the grammar of each release
//! (`grammar.rs`) and what each command does and prints (`semantics.rs`).
//! The same promises are checked end to end through the `smolvm-sim`
//! binary in `tests/runner/sim.rs`.

mod grammar;
mod semantics;
