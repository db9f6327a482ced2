//! Text and JSON views printed on stdout. Pure: each returns the text and
//! must not print it or compute what it shows (the plan's calls come from
//! the plan).

use std::fmt::Write;

use serde_json::json;

use crate::plan::{Observed, Plan, Step};
use crate::reconcile::describe;
use crate::smolvm::Cli;
use crate::smolvm::argv::format_duration;
use crate::state::{Record, RecordPhase};

/// `bottle plan` output for one spec: every step that makes smolvm calls,
/// with the calls exactly as the executor runs them.
pub fn plan(plan: &Plan<'_>, cli: &Cli) -> String {
    let desired = plan.inputs.desired;
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}", plan.name(), describe(&plan.decision));
    let _ = writeln!(s, "  egress: {}", plan.egress_line());
    let shown = plan.shown(cli);
    let with_calls = shown.iter().filter(|st| !st.calls.is_empty());
    for (i, st) in with_calls.enumerate() {
        let note = match st.step {
            Step::WaitReady => format!(
                " (repeated until it exits 0, up to {})",
                format_duration(desired.spec.ready_timeout)
            ),
            _ => String::new(),
        };
        let _ = writeln!(s, "  {}. {}{note}", i + 1, st.doing);
        for call in &st.calls {
            let _ = writeln!(s, "     $ {call}");
        }
    }
    if plan.steps.contains(&Step::Create) {
        let _ = writeln!(s, "  on failure after create:");
        for call in plan.teardown(cli) {
            let _ = writeln!(s, "     $ {call}");
        }
    }
    s
}

pub fn phase_word(p: RecordPhase) -> &'static str {
    match p {
        RecordPhase::Creating => "creating",
        RecordPhase::Complete => "complete",
        RecordPhase::Failed => "failed",
    }
}

fn state_word(o: &Observed) -> &str {
    match o {
        Observed::Missing => "missing",
        Observed::Present(s) => s.as_str(),
    }
}

/// `bottle status` as one line.
pub fn status_line(name: &str, record: Option<&Record>, observed: &Observed) -> String {
    match record {
        Some(r) => format!(
            "{name}: {}, managed by bottle (last apply {}; spec {})",
            state_word(observed),
            phase_word(r.phase),
            r.spec_file.display()
        ),
        None => format!("{name}: {}, not managed by bottle", state_word(observed)),
    }
}

/// `bottle status --json`.
pub fn status_json(name: &str, record: Option<&Record>, observed: &Observed) -> String {
    let record = record.map(|r| {
        json!({
            "phase": phase_word(r.phase),
            "spec_file": r.spec_file,
            "spec_hash": r.spec_hash,
            "completed": r.completed,
            "pack": r.pack,
            "smolvm_version": r.smolvm_version,
        })
    });
    let v = json!({
        "name": name,
        "exists": matches!(observed, Observed::Present(_)),
        "state": state_word(observed),
        "managed": record.is_some(),
        "record": record,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
