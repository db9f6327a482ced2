//! The plan's own functions: what a record says was applied, and which
//! copies an apply sends.

use std::path::Path;

use super::*;
use crate::smolvm::MachineState;
use crate::spec::LegacyPrint;
use crate::state::{RECORD_SCHEMA, RecordPhase};

/// A spec with two copies and two exec steps, resolved in `dir`.
fn desired(dir: &Path, readme: &str) -> Desired {
    std::fs::create_dir_all(dir.join("ws")).unwrap();
    std::fs::write(dir.join("ws/README.md"), readme).unwrap();
    std::fs::write(dir.join("f"), "f\n").unwrap();
    let text = "name = \"vm\"\n[image]\nref = \"a:1\"\n[env]\nA = \"1\"\n\
                [[copy]]\nsrc = \"ws\"\ndest = \"/w\"\n[[copy]]\nsrc = \"f\"\ndest = \"/f\"\n\
                [[exec]]\nrun = [\"one\"]\n[[exec]]\nrun = [\"two\"]\n";
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    crate::spec::load(&path)
        .and_then(crate::spec::resolve)
        .unwrap()
}

/// A schema-1 record whose first-form fingerprint is `legacy`.
fn schema_1(legacy: LegacyPrint) -> Record {
    Record {
        schema: RECORD_SCHEMA,
        name: "vm".into(),
        spec_file: "spec.toml".into(),
        spec_hash: "old".into(),
        fingerprint: Fingerprint::nothing(),
        phase: RecordPhase::Complete,
        completed: Vec::new(),
        pack: None,
        smolvm_version: Version::new(1, 9, 3),
        legacy: Some(legacy),
    }
}

#[test]
fn a_schema_1_record_that_matches_its_spec_counts_as_all_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let r = schema_1(d.legacy().unwrap());
    assert_eq!(applied(&r, &d), d.fingerprint);
}

#[test]
fn each_field_of_a_schema_1_record_is_compared_on_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let fields: [fn(&mut LegacyPrint) -> &mut String; 6] = [
        |l| &mut l.image,
        |l| &mut l.network,
        |l| &mut l.env,
        |l| &mut l.secrets,
        |l| &mut l.copy,
        |l| &mut l.exec,
    ];
    for (i, field) in fields.iter().enumerate() {
        let mut old = d.legacy().unwrap();
        *field(&mut old) = "something else".into();
        let got = applied(&schema_1(old), &d);
        let now = &d.fingerprint;
        let same = [
            got.image == now.image,
            got.network == now.network,
            got.env == now.env,
            got.secrets == now.secrets,
            got.copies == now.copies,
            got.execs == now.execs,
        ];
        let want: Vec<bool> = (0..6).map(|j| j != i).collect();
        assert_eq!(same.to_vec(), want, "field {i}");
    }
    let mut old = d.legacy().unwrap();
    old.copy = "x".into();
    old.exec = "y".into();
    let got = applied(&schema_1(old), &d);
    assert!(got.copies.is_empty(), "no copy counts as sent");
    assert!(got.execs.is_empty(), "no step counts as run");
    let mut old = d.legacy().unwrap();
    old.image = "old image".into();
    assert_eq!(
        applied(&schema_1(old), &d).image,
        "schema 1: old image",
        "a value no spec has"
    );
}

#[test]
fn a_current_record_is_read_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let mut r = schema_1(d.legacy().unwrap());
    r.legacy = None;
    r.fingerprint.execs = vec!["ran".into()];
    assert_eq!(applied(&r, &d), r.fingerprint);
    let k = recorded(&r, &d);
    assert_eq!(k.owner, Path::new("spec.toml"));
    assert_eq!(k.phase, RecordPhase::Complete);
}

#[test]
fn a_new_machine_gets_every_path_an_update_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let paths = |t: &Transfer| -> Vec<String> { t.send.iter().map(|(_, p)| p.clone()).collect() };
    let create = Decision::Create {
        stale_record: false,
    };
    assert_eq!(paths(&transfer_of(&d, &create)), ["/w/README.md", "/f"]);
    let replace = Decision::Replace {
        reason: ReplaceReason::Incomplete,
        state: MachineState::Running,
        consent: Consent::NotNeeded,
    };
    assert_eq!(transfer_of(&d, &replace), transfer_of(&d, &create));
    assert_eq!(transfer_of(&d, &Decision::Unchanged), Transfer::default());
    let mut before = d.fingerprint.clone();
    before.copies[1] = crate::spec::CopyPrint::new("/f", Default::default());
    let update = |version: Version| {
        let Decision::Update { state, work } = decide(
            Want {
                fingerprint: &d.fingerprint,
                owner: &d.owner,
            },
            Some(&Recorded {
                phase: RecordPhase::Complete,
                owner: d.owner.clone(),
                applied: before.clone(),
            }),
            &Observed::Present(MachineState::Running),
            Allow::default(),
        ) else {
            panic!("an update");
        };
        let decision = Decision::Update { state, work };
        Plan::new(&d, decision, &version, tmp.path(), false).unwrap()
    };
    let plan = update(Version::new(1, 9, 3));
    assert_eq!(plan.steps, [Step::Copy(0)], "one file: one `cp --mode`");
    let guest: Vec<&str> = plan.inputs.files.iter().map(|f| f.guest.as_str()).collect();
    assert_eq!(guest, ["/f"], "only the changed file");
    let calls = plan
        .inputs
        .calls(plan_cli(), Step::Copy(0), &Staged::default());
    let argv = &calls[0].argv;
    assert_eq!(&argv[..4], ["smolvm", "machine", "cp", "--mode"]);
    let old = update(Version::new(1, 8, 0));
    assert_eq!(
        old.steps,
        [Step::Upload, Step::Unpack],
        "no `cp --mode` before 1.9.0: the archive keeps the mode"
    );
    assert_eq!(old.inputs.describe(Step::Unpack), "unpack /f");
}

fn plan_cli() -> &'static Cli {
    static CLI: std::sync::OnceLock<Cli> = std::sync::OnceLock::new();
    CLI.get_or_init(|| Cli::new("smolvm", crate::smolvm::Dialect::NameFlag))
}

#[test]
fn a_pack_step_comes_when_the_cache_lacks_the_pack_or_repack_is_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let v = Version::new(1, 9, 3);
    let create = || Decision::Create {
        stale_record: false,
    };
    let first = |repack| {
        Plan::new(&d, create(), &v, tmp.path(), repack)
            .unwrap()
            .steps[0]
    };
    assert_eq!(first(false), Step::Pack);
    let plan = Plan::new(&d, create(), &v, tmp.path(), false).unwrap();
    let out = plan.inputs.pack.clone().unwrap();
    std::fs::create_dir_all(out.sidecar.parent().unwrap()).unwrap();
    std::fs::write(&out.sidecar, "pack").unwrap();
    assert_eq!(first(false), Step::Record, "cached");
    assert_eq!(first(true), Step::Pack, "--repack");
}

#[test]
fn a_schema_1_record_owns_its_spec_only_while_it_matches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let matching = schema_1(d.legacy().unwrap());
    assert_eq!(
        recorded(&matching, &d).owner,
        d.owner,
        "the same spec, upgraded"
    );
    let mut elsewhere = schema_1(d.legacy().unwrap());
    elsewhere.spec_file = "other/spec.toml".into();
    assert_eq!(recorded(&elsewhere, &d).owner, Path::new("other/spec.toml"));
    let mut old = d.legacy().unwrap();
    old.exec = "another project's steps".into();
    let differs = schema_1(old);
    assert_eq!(
        recorded(&differs, &d).owner,
        Path::new("spec.toml"),
        "a spec of the same name that differs must be adopted"
    );
}

#[test]
fn a_schema_1_machine_that_ran_a_spec_s_first_steps_runs_only_the_added_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let d = desired(tmp.path(), "# a\n");
    let mut old = d.legacy().unwrap();
    old.exec = crate::spec::legacy::exec_hash(&d.spec.execs[..1]);
    let got = applied(&schema_1(old), &d);
    assert_eq!(
        got.execs,
        d.fingerprint.execs[..1],
        "step one ran, step two is new"
    );
    let mut none = d.legacy().unwrap();
    none.exec = crate::spec::legacy::exec_hash(&[]);
    assert!(applied(&schema_1(none), &d).execs.is_empty());
}
