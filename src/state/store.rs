//! Where records live and how they are written.

use std::cmp::Ordering;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;

use super::lock::MachineLock;
use super::record::{RECORD_SCHEMA, Record, RecordV1};

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use state directory {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read record {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("record {} is corrupt ({detail}); inspect or remove it by hand", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "record {} is of schema {schema}, written by a newer bottle (this one reads up to \
         schema {RECORD_SCHEMA}); use that bottle, or remove the record by hand",
        path.display()
    )]
    Newer { path: PathBuf, schema: u64 },
    #[error(
        "record {} was read from schema 1 and not yet compared with its spec; not written",
        path.display()
    )]
    Unmigrated { path: PathBuf },
    #[error("cannot write record {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no state directory: set BOTTLE_STATE_DIR or HOME")]
    NoHome,
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "machine `{name}` is being changed by another bottle{}{}",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        match waited {
            Some(w) => format!("; waited {}", humantime::format_duration(*w)),
            None => "; pass --wait-lock to wait for it".to_string(),
        }
    )]
    Locked {
        name: String,
        pid: Option<u32>,
        waited: Option<std::time::Duration>,
    },
    #[error("stopped waiting for another bottle working on machine `{name}`: signal {signal}")]
    Interrupted { name: String, signal: i32 },
}

/// The default state directory: `$XDG_STATE_HOME/bottle`.
pub fn default_state_dir() -> Result<PathBuf, StateError> {
    let base = etcetera::choose_base_strategy().map_err(|_| StateError::NoHome)?;
    let dir = base.state_dir().unwrap_or_else(|| base.data_dir());
    Ok(dir.join("bottle"))
}

/// The default cache directory: `$XDG_CACHE_HOME/bottle`.
pub fn default_cache_dir() -> Result<PathBuf, StateError> {
    let base = etcetera::choose_base_strategy().map_err(|_| StateError::NoHome)?;
    Ok(base.cache_dir().join("bottle"))
}

/// The record directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Records under `dir/machines/`. Nothing is created until a write; then
    /// missing directories are made 0700 (an existing `dir` is left as it
    /// is, `machines/` is always set to 0700).
    pub fn new(dir: &Path) -> Self {
        Store {
            dir: dir.join("machines"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Where the output of machine `name`'s exec steps is logged:
    /// `STATE_DIR/logs/NAME.log` (written by the executor).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.with_file_name("logs").join(format!("{name}.log"))
    }

    /// Lock machine `name` against other bottles, waiting up to `wait`
    /// unless `stopped` names a signal first.
    pub fn lock(
        &self,
        name: &str,
        wait: Option<std::time::Duration>,
        stopped: &dyn Fn() -> Option<i32>,
    ) -> Result<MachineLock, StateError> {
        let dir = self.dir.with_file_name("locks");
        make_private_dir(&dir).map_err(|source| StateError::Dir {
            path: dir.clone(),
            source,
        })?;
        super::lock::acquire(dir.join(format!("{name}.lock")), name, wait, stopped)
    }

    /// The names of every machine bottle has a record of.
    pub fn names(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Dir {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The record of `name`, if bottle has one.
    pub fn load(&self, name: &str) -> Result<Option<Record>, StateError> {
        let path = self.path(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let record = parse(&path, &text)?;
        if record.name != name {
            return Err(StateError::Corrupt {
                path,
                detail: format!("it names machine `{}`", record.name),
            });
        }
        Ok(Some(record))
    }

    /// Write `record` atomically. A migrated record not yet compared with
    /// its spec (its fingerprint still in the first form) is refused: it
    /// would be written without it.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let path = self.path(&record.name);
        if record.legacy.is_some() {
            return Err(StateError::Unmigrated { path });
        }
        self.ensure_dir()?;
        let write_err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(record).map_err(|e| write_err(io::Error::other(e)))?;
        let tmp = self
            .dir
            .join(format!(".{}.json.{}.tmp", record.name, std::process::id()));
        replace_file(&tmp, &path, &json, Durable::Yes).map_err(write_err)?;
        sync_dir(&self.dir).map_err(write_err)
    }

    /// Forget `name`. Forgetting a machine without a record is not an error.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir).map_err(|source| StateError::Write { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Write { path, source }),
        }
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        make_private_dir(&self.dir).map_err(|source| StateError::Dir {
            path: self.dir.clone(),
            source,
        })
    }
}

/// Read a record of any schema this bottle knows into the current one.
fn parse(path: &Path, text: &str) -> Result<Record, StateError> {
    let corrupt = |e: serde_json::Error| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
    let schema = match value.get("schema") {
        None => 1,
        Some(v) => v.as_u64().ok_or_else(|| StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("its schema is `{v}`, not a number"),
        })?,
    };
    match (schema, schema.cmp(&u64::from(RECORD_SCHEMA))) {
        (1, _) => Ok(serde_json::from_value::<RecordV1>(value)
            .map_err(corrupt)?
            .migrate()),
        // Schema 2 is schema 3 without the `prune` step, which it never
        // holds: read as it is, written back as 3.
        (2, _) => {
            let r: Record = serde_json::from_value(value).map_err(corrupt)?;
            Ok(Record {
                schema: RECORD_SCHEMA,
                ..r
            })
        }
        (_, Ordering::Equal) => serde_json::from_value(value).map_err(corrupt),
        (s, Ordering::Greater) => Err(StateError::Newer {
            path: path.to_path_buf(),
            schema: s,
        }),
        (s, Ordering::Less) => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("schema {s} was never written by any bottle"),
        }),
    }
}

/// Create `dir` (and missing parents) as 0700, and make `dir` itself 0700.
pub(crate) fn make_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Whether a file must reach the disk before it replaces another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durable {
    /// A record: synced before the rename.
    Yes,
    /// A cache: losing it costs only work.
    No,
}

/// Write `bytes` to `tmp` (0600) and rename it over `path`, so `path` is
/// the old file or the new one, never part of one; `tmp` is removed if
/// that fails.
pub(crate) fn replace_file(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    durable: Durable,
) -> io::Result<()> {
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            match durable {
                Durable::Yes => f.sync_all(),
                Durable::No => Ok(()),
            }
        })
        .and_then(|()| fs::rename(tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;
    use crate::spec::Fingerprint;
    use crate::state::RecordPhase;

    fn record(name: &str) -> Record {
        Record {
            schema: RECORD_SCHEMA,
            name: name.into(),
            spec_file: "/p/s.toml".into(),
            spec_hash: "h".into(),
            fingerprint: Fingerprint {
                image: "i".into(),
                network: "n".into(),
                env: "e".into(),
                secrets: String::new(),
                copies: Vec::new(),
                execs: vec!["x".into()],
            },
            phase: RecordPhase::Creating,
            completed: vec![crate::plan::Step::Create],
            pack: None,
            smolvm_version: crate::smolvm::Version::new(1, 9, 3),
            legacy: None,
        }
    }

    #[test]
    fn records_round_trip_with_private_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let store = Store::new(&state);
        assert_eq!(store.load("a").unwrap(), None);
        assert!(!state.exists(), "reading creates nothing");
        store.save(&record("a")).unwrap();
        assert_eq!(store.load("a").unwrap(), Some(record("a")));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store.path("a")), 0o600);
        assert_eq!(mode(&state.join("machines")), 0o700);
        assert_eq!(mode(&state), 0o700);
        store.remove("a").unwrap();
        store.remove("a").unwrap();
        assert_eq!(store.load("a").unwrap(), None);
        let leftovers: Vec<_> = fs::read_dir(state.join("machines")).unwrap().collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        fs::create_dir_all(tmp.path().join("machines")).unwrap();
        fs::write(store.path("a"), "{not json").unwrap();
        let err = store.load("a").unwrap_err().to_string();
        assert!(err.contains("a.json") && err.contains("corrupt"), "{err}");
        store.save(&record("b")).unwrap();
        fs::rename(store.path("b"), store.path("c")).unwrap();
        let err = store.load("c").unwrap_err().to_string();
        assert!(err.contains("names machine `b`"), "{err}");
    }

    /// A record as bottle 0.1.0 wrote it (schema 1: no `schema` key).
    const V1: &str = r#"{
  "name": "a",
  "spec_file": "specs/a.toml",
  "spec_hash": "h1",
  "fingerprint": { "image": "i1", "network": "n1", "env": "e1", "copy": "c1", "exec": "x1", "secrets": "s1" },
  "phase": "complete",
  "completed": ["record", "create", "start", "wait-ready", "exec[0]"],
  "pack": "/cache/packs/k.smolmachine",
  "smolvm_version": "1.9.3"
}"#;

    #[test]
    fn a_schema_1_record_is_migrated_when_read_and_written_in_the_current_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        fs::create_dir_all(tmp.path().join("machines")).unwrap();
        fs::write(store.path("a"), V1).unwrap();
        let r = store.load("a").unwrap().unwrap();
        assert_eq!(r.schema, RECORD_SCHEMA);
        assert_eq!(r.phase, RecordPhase::Complete);
        assert_eq!(r.spec_file, Path::new("specs/a.toml"));
        assert_eq!(
            r.pack.as_deref(),
            Some(Path::new("/cache/packs/k.smolmachine"))
        );
        let legacy = r.legacy.clone().expect("the first form is kept");
        assert_eq!(
            [
                &legacy.image,
                &legacy.network,
                &legacy.env,
                &legacy.copy,
                &legacy.exec,
                &legacy.secrets
            ],
            ["i1", "n1", "e1", "c1", "x1", "s1"]
        );
        let refused = store.save(&r).unwrap_err();
        assert!(
            matches!(refused, StateError::Unmigrated { .. }),
            "{refused:?}"
        );
        assert_eq!(
            fs::read_to_string(store.path("a")).unwrap(),
            V1,
            "untouched"
        );
        let r = Record { legacy: None, ..r };
        store.save(&r).unwrap();
        let text = fs::read_to_string(store.path("a")).unwrap();
        assert!(text.contains("\"schema\": 3"), "{text}");
        let again = store.load("a").unwrap().unwrap();
        assert_eq!(again.legacy, None, "written in the current form");
    }

    #[test]
    fn a_schema_2_record_is_read_as_it_is_and_written_back_as_schema_3() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let mut r = record("a");
        r.completed = vec![Step::Record, Step::Create, Step::Unpack];
        store.save(&r).unwrap();
        let text = fs::read_to_string(store.path("a")).unwrap();
        let v2 = text.replace("\"schema\": 3", "\"schema\": 2");
        assert_ne!(v2, text);
        fs::write(store.path("a"), &v2).unwrap();
        let read = store.load("a").unwrap().unwrap();
        assert_eq!(read, r, "the same record, in the current schema");
        store.save(&read).unwrap();
        assert_eq!(fs::read_to_string(store.path("a")).unwrap(), text);
    }

    #[test]
    fn a_record_from_a_newer_bottle_is_refused_naming_its_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        fs::create_dir_all(tmp.path().join("machines")).unwrap();
        fs::write(
            store.path("a"),
            r#"{"schema": 4, "name": "a", "future": true}"#,
        )
        .unwrap();
        let err = store.load("a").unwrap_err();
        assert!(
            matches!(err, StateError::Newer { schema: 4, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("schema 4, written by a newer bottle"),
            "{text}"
        );
        for (bad, says) in [
            (
                r#"{"schema": 0, "name": "a"}"#,
                "schema 0 was never written",
            ),
            (r#"{"schema": "2", "name": "a"}"#, "not a number"),
        ] {
            fs::write(store.path("a"), bad).unwrap();
            let text = store.load("a").unwrap_err().to_string();
            assert!(text.contains("corrupt") && text.contains(says), "{text}");
        }
    }
}
