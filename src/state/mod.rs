//! bottle's ownership records: one JSON file per machine it created.
//!
//! A record is the only proof that bottle owns a machine; without one, a
//! machine is never touched. Owns the record format and its storage
//! (atomic writes: temp file, fsync, rename, fsync of the directory; the
//! directory 0700, files 0600), and where the content-hash cache of copied
//! files is kept (`hashes`). Knows nothing of smolvm.

pub mod hashes;
mod lock;
mod record;
mod store;

pub use lock::{MachineLock, acquire as lock_file};
pub use record::{RECORD_SCHEMA, Record, RecordPhase};
pub(crate) use store::make_private_dir;
pub use store::{StateError, Store, default_cache_dir, default_state_dir};
