//! The errors of rendering. A spec that smolvm can run but the target
//! cannot is refused with located problems, printed like every spec
//! problem; the rest are the files rendering reads and writes.

use std::io;
use std::path::PathBuf;

use crate::spec::SpecError;

/// Why a spec could not be rendered, or its manifests not written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The spec cannot run on the target; each problem is located in it.
    #[error(transparent)]
    Refused(SpecError),
    /// A file to copy could not be read into the copy archive.
    #[error("cannot read {} into the copy archive", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The manifests could not be written where `-o` said.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The YAML serialiser refused a manifest (a bug in bottle).
    #[error("cannot write the manifests of {name} as YAML")]
    Yaml {
        name: String,
        #[source]
        source: serde_saphyr::ser::Error,
    },
}
