//! Text and JSON views printed on stdout. Pure: each returns the text and
//! must not print it or compute what it shows (the plan's calls come from
//! the plan).

use std::fmt::Write;

use serde_json::json;

use crate::plan::{Observed, Plan, Step};
use crate::reconcile::describe;
use crate::smolvm::Cli;
use crate::smolvm::argv::format_duration;
use crate::spec::CopySummary;
use crate::state::{Record, RecordPhase};

use super::term::escape_controls;

/// `bottle plan` output for one spec: what each copy puts in the guest,
/// and every step that makes smolvm calls, with the calls exactly as the
/// executor runs them. Control characters (from file names and link
/// targets in a copied tree) are shown escaped.
pub fn plan(plan: &Plan<'_>, cli: &Cli) -> String {
    let desired = plan.inputs.desired;
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}", plan.name(), describe(&plan.decision));
    let _ = writeln!(s, "  egress: {}", plan.egress_line());
    for c in &desired.copies {
        s.push_str(&copy_lines(c));
    }
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
    escape_controls(&s)
}

/// What one `[[copy]]` puts in the guest: where a `src` that is a symlink
/// points, the number of files, links and bytes, and every link whose
/// target leaves the copied tree. Names from the host are shown with every
/// control character escaped, newlines too, so none can hide a line.
fn copy_lines(c: &CopySummary) -> String {
    let src = shown(&c.src.display().to_string());
    let via = match &c.resolved {
        Some(real) => format!(" (a symlink to {})", shown(&real.display().to_string())),
        None => String::new(),
    };
    let mut s = format!(
        "  copy {src}{via} to {}: {}, {}, {}\n",
        shown(c.dest.as_str()),
        count(c.files as u64, "file"),
        count(c.links as u64, "link"),
        count(c.bytes, "byte"),
    );
    for l in &c.leaving {
        let _ = writeln!(
            s,
            "     link {} -> {} leaves {}",
            shown(l.link.as_str()),
            shown(&l.target),
            shown(c.dest.as_str())
        );
    }
    s
}

/// `1 file`, `2 files`.
fn count(n: u64, one: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    }
}

/// `text` with newline and tab escaped (`\n`, `\t`); [`plan`] escapes
/// every other control character.
fn shown(text: &str) -> String {
    text.replace('\n', "\\n").replace('\t', "\\t")
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

/// `bottle status` as one line (the spec's path shown with control
/// characters escaped).
pub fn status_line(name: &str, record: Option<&Record>, observed: &Observed) -> String {
    let line = match record {
        Some(r) => format!(
            "{name}: {}, managed by bottle (last apply {}; spec {})",
            state_word(observed),
            phase_word(r.phase),
            r.spec_file.display()
        ),
        None => format!("{name}: {}, not managed by bottle", state_word(observed)),
    };
    escape_controls(&line)
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
