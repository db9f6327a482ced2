//! Manifests as YAML text: one document per object, `---` between them,
//! each string on one line (quoted where YAML 1.1 readers such as kubectl
//! would read it as something else: `"yes"`, `"0400"`, `"1.5"`).

use serde_saphyr::SerializerOptions;
use serde_saphyr::ser::Error;

use super::Manifest;

/// `manifests` as YAML documents.
pub fn documents(manifests: &[Manifest]) -> Result<String, Error> {
    let docs = manifests
        .iter()
        .map(|m| serde_saphyr::to_string_with_options(m, options()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(docs.join("---\n"))
}

fn options() -> SerializerOptions {
    let mut o = SerializerOptions::default();
    o.prefer_block_scalars = false;
    o
}
