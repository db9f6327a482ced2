//! The spec file as TOML gives it: plain serde structs with spans, and the
//! reading of TOML text into them.
//!
//! Owns only the shape of the file (`deny_unknown_fields` everywhere, so a
//! misspelt key is an error) and the problems of that shape: TOML syntax
//! errors, unknown keys and values of the wrong type, each with the dotted
//! key it is about. Meaning and validation live in `validate`; later
//! stages never see these types. No field is required here: a missing
//! field is a `validate` problem, reported with all the others.
//!
//! # How a problem gets its key
//!
//! - Unknown key or wrong type: the path that `serde_path_to_error` records
//!   while deserializing, with serde_spanned's private field names
//!   (`$__serde_spanned_private_*`) dropped. A map key read as
//!   `Spanned<String>` is not captured by that crate (the segment is
//!   unknown); it is taken from the parsed document instead: the entry of
//!   that table whose key or value holds the error's offset.
//! - TOML syntax error (no path): the deepest key whose key or value holds
//!   the error's offset (`ref = ` → `image.ref`); otherwise the table in
//!   force there (the last `[table]` or `[[array]]` header before it, empty
//!   at the top of the file), plus the key the error points at when that
//!   table already has it (a duplicate key: `name`).
//!
//! # How many problems one read reports
//!
//! - Syntax errors: all of them (`DeTable::parse_recoverable`); nothing
//!   else is checked then, since the recovered document is a guess.
//! - Shape errors: serde stops at the first, so after each one the entry it
//!   is about is removed from the document and the document is read again,
//!   until it reads (each round removes an entry, so this ends). An error
//!   about an array element itself (`allow_cidrs = ["a", 5]`) removes the
//!   whole array, since removing the element would shift the index of the
//!   next one: one wrong element per array is reported. (A key inside an
//!   element, `exec[1].workdri`, is removed alone.) When every shape
//!   error was an unknown key, the rest of
//!   the document is exactly what the user wrote, so the raw spec is
//!   returned to be validated too; after a value of the wrong type it is
//!   not (a removed value would look missing).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde_path_to_error::Segment;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::location::{Step, dotted};

pub type SpannedMap = BTreeMap<Spanned<String>, Spanned<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawSpec {
    pub name: Option<Spanned<String>>,
    pub image: Option<Spanned<RawImage>>,
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
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawSecret {
    pub from_env: Option<Spanned<String>>,
    pub from_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawImage {
    #[serde(rename = "ref")]
    pub reference: Option<Spanned<String>>,
    pub pack: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawNetwork {
    #[serde(default)]
    pub allow_cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_hosts: Vec<Spanned<String>>,
    pub dns: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawCopy {
    pub src: Option<Spanned<String>>,
    pub dest: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawReady {
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawExec {
    pub run: Option<Spanned<Vec<Spanned<String>>>>,
    pub workdir: Option<Spanned<String>>,
    #[serde(default)]
    pub env: SpannedMap,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub secrets: Vec<Spanned<String>>,
}

/// A problem with the shape of the file: its byte span, key and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

/// What reading the text gave.
#[derive(Debug)]
pub struct Read {
    /// The raw spec, when what was read is what the user wrote (apart from
    /// unknown keys, which are in `problems`).
    pub spec: Option<RawSpec>,
    pub problems: Vec<ShapeProblem>,
}

/// Read TOML `text` into a [`RawSpec`], collecting shape problems.
pub fn read(text: &str) -> Read {
    let (root, errors) = DeTable::parse_recoverable(text);
    let span = root.span();
    let mut doc = Spanned::new(span, DeValue::Table(root.into_inner()));
    if !errors.is_empty() {
        let problems = errors.iter().map(|e| syntax(&doc, text, e)).collect();
        return Read {
            spec: None,
            problems,
        };
    }
    let mut problems = Vec::new();
    let mut faithful = true;
    loop {
        let e = match deserialize(&doc) {
            Ok(spec) => {
                let spec = faithful.then_some(spec);
                return Read { spec, problems };
            }
            Err(e) => e,
        };
        let span = e.inner().span();
        let steps = steps_of(&doc, e.path(), span.clone());
        faithful &= names_key(&doc, &steps, span.clone());
        problems.push(ShapeProblem {
            span,
            key: dotted(&steps),
            message: e.inner().message().trim().to_string(),
        });
        if !remove(&mut doc, &steps) {
            return Read {
                spec: None,
                problems,
            };
        }
    }
}

/// A TOML syntax error, keyed by where it is in the recovered document.
fn syntax(doc: &Spanned<DeValue<'_>>, text: &str, e: &toml::de::Error) -> ShapeProblem {
    let span = e.span();
    let steps = span
        .clone()
        .map_or_else(Vec::new, |s| syntax_steps(doc, text, s));
    ShapeProblem {
        span,
        key: dotted(&steps),
        message: e.message().trim().to_string(),
    }
}

/// The deepest entry holding the error, else the table in force plus the
/// key the error points at if that table has it (see the module doc).
fn syntax_steps(doc: &Spanned<DeValue<'_>>, text: &str, span: Range<usize>) -> Vec<Step> {
    let offset = span.start;
    let mut holding = Vec::new();
    let mut table = (None, Vec::new());
    visit(doc, &mut Vec::new(), &mut |steps, key, value| {
        let held = key.is_some_and(|k| holds(&k, offset)) || holds(&value.span(), offset);
        if held && steps.len() > holding.len() {
            holding = steps.to_vec();
        }
        let start = value.span().start;
        let header = text.as_bytes().get(start) == Some(&b'[');
        let later = table.0.is_none_or(|s| s < start);
        if matches!(value.get_ref(), DeValue::Table(_)) && header && start <= offset && later {
            table = (Some(start), steps.to_vec());
        }
    });
    if !holding.is_empty() {
        return holding;
    }
    let mut steps = table.1;
    let named = text.get(span).map(|s| s.trim().trim_matches(['"', '\'']));
    let in_force = steps.iter().try_fold(doc, child).map(Spanned::get_ref);
    if let (Some(name), Some(DeValue::Table(t))) = (named, in_force)
        && !name.is_empty()
        && t.contains_key(name)
    {
        steps.push(Step::Key(name.to_string()));
    }
    steps
}

/// Call `f` with every entry below `node`: its steps, its key's span (none
/// for an array element) and its value. Keys with an empty span are what
/// syntax recovery made up (even `""` spans its quotes): they are skipped.
fn visit<'a, 'i, F>(node: &'a Spanned<DeValue<'i>>, steps: &mut Vec<Step>, f: &mut F)
where
    F: FnMut(&[Step], Option<Range<usize>>, &'a Spanned<DeValue<'i>>),
{
    match node.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter().filter(|(k, _)| !k.span().is_empty()) {
                let step = Step::Key(k.get_ref().to_string());
                enter(step, Some(k.span()), v, steps, f);
            }
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                enter(Step::Index(i), None, v, steps, f);
            }
        }
        _ => {}
    }
}

/// Call `f` with one entry, then visit what is below it.
fn enter<'a, 'i, F>(
    step: Step,
    key: Option<Range<usize>>,
    value: &'a Spanned<DeValue<'i>>,
    steps: &mut Vec<Step>,
    f: &mut F,
) where
    F: FnMut(&[Step], Option<Range<usize>>, &'a Spanned<DeValue<'i>>),
{
    steps.push(step);
    f(steps, key, value);
    visit(value, steps, f);
    steps.pop();
}

type PathError = serde_path_to_error::Error<toml::de::Error>;

fn deserialize(doc: &Spanned<DeValue<'_>>) -> Result<RawSpec, PathError> {
    let table = match doc.get_ref() {
        DeValue::Table(t) => t.clone(),
        _ => DeTable::new(),
    };
    let de = toml::de::Deserializer::from(Spanned::new(doc.span(), table));
    serde_path_to_error::deserialize(de)
}

/// The steps of serde's `path`, without serde_spanned's private fields and
/// with the map keys it could not capture looked up in `doc`.
fn steps_of(
    doc: &Spanned<DeValue<'_>>,
    path: &serde_path_to_error::Path,
    span: Option<Range<usize>>,
) -> Vec<Step> {
    let offset = span.map(|s| s.start);
    let mut node = Some(doc);
    let mut steps = Vec::new();
    for segment in path {
        let step = match segment {
            Segment::Map { key } if key.starts_with("$__serde_spanned_private_") => continue,
            Segment::Map { key } | Segment::Enum { variant: key } => Step::Key(key.clone()),
            Segment::Seq { index } => Step::Index(*index),
            Segment::Unknown => {
                let found = node.zip(offset).and_then(|(n, o)| entry_holding(n, o));
                Step::Key(found.map_or_else(|| "?".to_string(), str::to_string))
            }
        };
        node = node.and_then(|n| child(n, &step));
        steps.push(step);
    }
    steps
}

/// The value one step below `node`.
fn child<'a, 'i>(node: &'a Spanned<DeValue<'i>>, step: &Step) -> Option<&'a Spanned<DeValue<'i>>> {
    match (node.get_ref(), step) {
        (DeValue::Table(t), Step::Key(k)) => t.get(k.as_str()),
        (DeValue::Array(a), Step::Index(i)) => a.get(*i),
        _ => None,
    }
}

fn child_mut<'a, 'i>(
    node: &'a mut Spanned<DeValue<'i>>,
    step: &Step,
) -> Option<&'a mut Spanned<DeValue<'i>>> {
    match (node.get_mut(), step) {
        (DeValue::Table(t), Step::Key(k)) => t.get_mut(k.as_str()),
        (DeValue::Array(a), Step::Index(i)) => a.get_mut(*i),
        _ => None,
    }
}

/// The key of the entry of table `node` whose key or value holds `offset`.
fn entry_holding<'a>(node: &'a Spanned<DeValue<'_>>, offset: usize) -> Option<&'a str> {
    let DeValue::Table(t) = node.get_ref() else {
        return None;
    };
    t.iter()
        .find(|(k, v)| holds(&k.span(), offset) || covers(v, offset))
        .map(|(k, _)| k.get_ref().as_ref())
}

/// Whether `span` holds `offset`, counting the place just after it (where
/// an unterminated string or array is found wanting).
fn holds(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

/// Whether `offset` is inside `value` or any key or value below it.
fn covers(value: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    holds(&value.span(), offset)
        || match value.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .any(|(k, v)| holds(&k.span(), offset) || covers(v, offset)),
            DeValue::Array(a) => a.iter().any(|v| covers(v, offset)),
            _ => false,
        }
}

/// Whether the error at `span` is about the key `steps` ends in (an
/// unknown key) rather than about a value.
fn names_key(doc: &Spanned<DeValue<'_>>, steps: &[Step], span: Option<Range<usize>>) -> bool {
    let Some((Step::Key(last), parent)) = steps.split_last() else {
        return false;
    };
    match parent.iter().try_fold(doc, child).map(Spanned::get_ref) {
        Some(DeValue::Table(t)) => t
            .get_key_value(last.as_str())
            .is_some_and(|(k, _)| Some(k.span()) == span),
        _ => false,
    }
}

/// Remove the entry of the last key in `steps`. An array element is not
/// removed alone (the indices after it would shift): the entry holding the
/// array goes. False when there is no such entry.
fn remove(doc: &mut Spanned<DeValue<'_>>, steps: &[Step]) -> bool {
    let Some(last) = steps.iter().rposition(|s| matches!(s, Step::Key(_))) else {
        return false;
    };
    let Step::Key(key) = &steps[last] else {
        return false;
    };
    let parent = steps[..last].iter().try_fold(doc, child_mut);
    match parent.map(Spanned::get_mut) {
        Some(DeValue::Table(t)) => t.remove(key.as_str()).is_some(),
        _ => false,
    }
}
