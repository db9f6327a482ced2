//! The spec file as TOML gives it: plain serde structs with spans.
//!
//! Owns only the shape of the file (`deny_unknown_fields` everywhere, so a
//! misspelt key is an error). Meaning and validation live in `validate`;
//! later stages never see these types.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type SpannedMap = BTreeMap<Spanned<String>, Spanned<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub name: Spanned<String>,
    pub image: Spanned<RawImage>,
    #[serde(default)]
    pub network: Option<RawNetwork>,
    #[serde(default)]
    pub env: SpannedMap,
    #[serde(default)]
    pub copy: Vec<Spanned<RawCopy>>,
    pub copy_via: Option<Spanned<String>>,
    #[serde(default)]
    pub ready: Option<RawReady>,
    #[serde(default)]
    pub exec: Vec<Spanned<RawExec>>,
    #[serde(default)]
    pub secrets: BTreeMap<Spanned<String>, Spanned<RawSecret>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub from_env: Option<Spanned<String>>,
    pub from_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    #[serde(rename = "ref")]
    pub reference: Option<Spanned<String>>,
    pub pack: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    #[serde(default)]
    pub allow_cidrs: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCopy {
    pub src: Spanned<String>,
    pub dest: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub run: Spanned<Vec<Spanned<String>>>,
    pub workdir: Option<Spanned<String>>,
    #[serde(default)]
    pub env: SpannedMap,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub secrets: Vec<Spanned<String>>,
}
