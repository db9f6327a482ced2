//! From TOML text to a validated [`Spec`]: pure, no file system access
//! beyond making the spec's directory absolute.
//!
//! Collects every problem it finds rather than stopping at the first, and
//! returns them in source order.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{Problem, SpecError};
use super::location::Location;
use std::collections::BTreeMap;

use super::raw::{RawCopy, RawExec, RawImage, RawSecret, RawSpec, SpannedMap};
use super::values::{self, EnvKey, EnvVar, GuestPath, ImageRef, MachineName, ValueError};
use super::{
    CopyEntry, CopyVia, DEFAULT_READY_TIMEOUT, ExecStep, Image, SecretRef, SecretSource, Spec,
};

/// Parse and validate spec `text` that was read from `file`.
pub fn parse(file: &Path, text: &str) -> Result<Spec, SpecError> {
    let raw: RawSpec = toml::from_str(text).map_err(|e| syntax_problem(file, text, &e))?;
    let mut v = Validator {
        file,
        text,
        dir: spec_dir(file),
        problems: Vec::new(),
    };
    let spec = v.spec(raw);
    match (spec, v.problems.is_empty()) {
        (Some(spec), true) => Ok(spec),
        _ => Err(SpecError::invalid(v.problems)),
    }
}

fn spec_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    normalize(&std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf()))
}

/// Resolve `.` and `..` lexically (without following symlinks).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn syntax_problem(file: &Path, text: &str, e: &toml::de::Error) -> SpecError {
    let span = e.span();
    let at = Location::of_span(file, text, span.clone());
    let message = e.message().trim().to_string();
    let field = field_in_message(&message);
    let key = match (&field, span.map(|s| s.start)) {
        // A field missing from the root table is reported at offset 0.
        (Some(f), Some(0)) if message.starts_with("missing") => f.clone(),
        _ => key_of(text, at.line, field.as_deref()),
    };
    SpecError::Invalid(vec![Problem { at, key, message }])
}

/// The field named in serde's "unknown field `x`" / "missing field `x`".
fn field_in_message(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_string)
}

/// The table header (`[a]`, or `[[a]]` as `a[n]`) in force at 1-based
/// `line`.
fn table_at(text: &str, line: usize) -> String {
    let mut current = String::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for l in text.lines().take(line).map(str::trim) {
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = seen.entry(name.clone()).or_insert(0);
            current = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            current = name.trim().to_string();
        }
    }
    current
}

/// Best-effort dotted key of a syntax or shape error on 1-based `line`,
/// given the field serde named, if any.
fn key_of(text: &str, line: usize, field: Option<&str>) -> String {
    let src = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim();
    let table = table_at(text, line);
    if src.starts_with('[') {
        return match field {
            Some(f) if src.contains(&format!("[{f}]")) || src.contains(&format!("[[{f}]]")) => {
                f.to_string()
            }
            Some(f) => join_key(&table, f),
            None => table,
        };
    }
    let own = src
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    match (field, own) {
        (Some(f), Some(own)) if src.contains('{') && own != f => {
            join_key(&join_key(&table, &own), f)
        }
        (Some(f), _) => join_key(&table, f),
        (None, Some(own)) => join_key(&table, &own),
        (None, None) => table,
    }
}

fn join_key(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => table.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    dir: PathBuf,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    fn at<T>(&self, s: &Spanned<T>) -> Location {
        Location::at(self.file, self.text, s.span().start)
    }

    fn problem<T>(&mut self, s: &Spanned<T>, key: impl Into<String>, message: impl Into<String>) {
        let at = self.at(s);
        self.problems.push(Problem {
            at,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Apply `rule` to a spanned string, recording a located problem on error.
    fn check<T>(
        &mut self,
        s: &Spanned<String>,
        key: &str,
        rule: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        match rule(s.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(s, key, e.to_string());
                None
            }
        }
    }

    fn spec(&mut self, raw: RawSpec) -> Option<Spec> {
        let name = self.check(&raw.name, "name", MachineName::parse);
        let image = self.image(&raw.image);
        let allow_cidrs = raw.network.map_or_else(Vec::new, |n| {
            let cidrs = n.allow_cidrs.iter().enumerate();
            let checked: Vec<_> = cidrs
                .map(|(i, c)| self.check(c, &format!("network.allow_cidrs[{i}]"), values::cidr))
                .collect();
            checked.into_iter().flatten().collect()
        });
        let env = self.env(&raw.env, "env");
        let copies = self.copies(&raw.copy);
        let copy_via = match &raw.copy_via {
            None => Some(CopyVia::Archive),
            Some(v) => match v.get_ref().as_str() {
                "archive" => Some(CopyVia::Archive),
                "cp" => Some(CopyVia::Cp),
                other => {
                    let message = format!("`{other}` is not one of \"archive\" or \"cp\"");
                    self.problem(v, "copy_via", message);
                    None
                }
            },
        };
        let ready_timeout = raw
            .ready
            .and_then(|r| r.timeout)
            .map_or(Some(DEFAULT_READY_TIMEOUT), |t| {
                self.check(&t, "ready.timeout", values::duration)
            });
        let secrets = self.secrets(&raw.secrets);
        let execs = self.execs(&raw.exec, &secrets);
        Some(Spec {
            file: self.file.to_path_buf(),
            name: name?,
            image: image?,
            allow_cidrs,
            env,
            copies,
            copy_via: copy_via?,
            ready_timeout: ready_timeout?,
            execs,
            secrets,
        })
    }

    fn image(&mut self, raw: &Spanned<RawImage>) -> Option<Image> {
        match (&raw.get_ref().reference, &raw.get_ref().pack) {
            (Some(r), None) => self.check(r, "image.ref", ImageRef::parse).map(Image::Ref),
            (None, Some(p)) => {
                let path = self.host_path(p, "image.pack")?;
                if !p.get_ref().ends_with(".smolmachine") {
                    self.problem(p, "image.pack", "must name a `.smolmachine` pack file");
                    return None;
                }
                let at = self.at(p);
                Some(Image::Pack { path, at })
            }
            (Some(_), Some(p)) => {
                self.problem(p, "image", "give exactly one of `ref` and `pack`, not both");
                None
            }
            (None, None) => {
                self.problem(raw, "image", "give exactly one of `ref` or `pack`");
                None
            }
        }
    }

    /// A host path relative to the spec's directory, made absolute.
    fn host_path(&mut self, p: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let rel = p.get_ref();
        if rel.is_empty() || rel.contains('\0') {
            self.problem(p, key, "must be a non-empty path");
            return None;
        }
        Some(normalize(&self.dir.join(rel)))
    }

    fn env(&mut self, map: &SpannedMap, table: &str) -> Vec<EnvVar> {
        let mut out = Vec::new();
        for (k, v) in map {
            let key = format!("{table}.{}", k.get_ref());
            let name = self.check(k, &key, EnvKey::parse);
            let value = self.check(v, &key, values::env_value);
            if let (Some(name), Some(value)) = (name, value) {
                out.push(EnvVar { key: name, value });
            }
        }
        out
    }

    fn copies(&mut self, raw: &[Spanned<RawCopy>]) -> Vec<CopyEntry> {
        let mut out = Vec::new();
        for (i, c) in raw.iter().enumerate() {
            let c = c.get_ref();
            let key = format!("copy[{i}].src");
            let src = self.host_path(&c.src, &key);
            let dest = self.check(&c.dest, &format!("copy[{i}].dest"), GuestPath::parse);
            if let (Some(src), Some(dest)) = (src, dest) {
                let at = self.at(&c.src);
                out.push(CopyEntry { src, dest, at, key });
            }
        }
        out
    }

    fn secrets(&mut self, raw: &BTreeMap<Spanned<String>, Spanned<RawSecret>>) -> Vec<SecretRef> {
        let mut out = Vec::new();
        for (name, source) in raw {
            let key = format!("secrets.{}", name.get_ref());
            let Some(valid) = self.check(name, &key, EnvKey::parse) else {
                continue;
            };
            let source = match (&source.get_ref().from_env, &source.get_ref().from_file) {
                (Some(var), None) => self.check(var, &key, EnvKey::parse).map(SecretSource::Env),
                (None, Some(file)) => self.host_path(file, &key).map(SecretSource::File),
                (Some(_), Some(_)) | (None, None) => {
                    self.problem(
                        source,
                        &key,
                        "give exactly one of `from_env` or `from_file`",
                    );
                    None
                }
            };
            if let Some(source) = source {
                let at = self.at(name);
                out.push(SecretRef {
                    name: valid,
                    source,
                    at,
                });
            }
        }
        out
    }

    fn execs(&mut self, raw: &[Spanned<RawExec>], secrets: &[SecretRef]) -> Vec<ExecStep> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, e)| self.exec(i, e.get_ref(), secrets))
            .collect()
    }

    fn exec_secrets(&mut self, i: usize, e: &RawExec, secrets: &[SecretRef]) -> Vec<EnvKey> {
        let mut out = Vec::new();
        for s in &e.secrets {
            if let Some(d) = secrets.iter().find(|d| d.name.as_str() == s.get_ref()) {
                out.push(d.name.clone());
            } else {
                let msg = format!("`{}` is not declared in [secrets]", s.get_ref());
                self.problem(s, format!("exec[{i}].secrets"), msg);
            }
        }
        out
    }

    fn exec(&mut self, i: usize, e: &RawExec, secrets: &[SecretRef]) -> Option<ExecStep> {
        let run: Vec<String> = e
            .run
            .get_ref()
            .iter()
            .map(|a| a.get_ref().clone())
            .collect();
        let mut ok = true;
        if run.is_empty() || run[0].is_empty() {
            self.problem(&e.run, format!("exec[{i}].run"), "must name a command");
            ok = false;
        }
        if let Some(arg) = e.run.get_ref().iter().find(|a| a.get_ref().contains('\0')) {
            self.problem(
                arg,
                format!("exec[{i}].run"),
                "must not contain a NUL character",
            );
            ok = false;
        }
        let workdir = match &e.workdir {
            Some(w) => Some(self.check(w, &format!("exec[{i}].workdir"), GuestPath::parse)?),
            None => None,
        };
        let before = self.problems.len();
        let env = self.env(&e.env, &format!("exec[{i}].env"));
        let step_secrets = self.exec_secrets(i, e, secrets);
        let timeout = match &e.timeout {
            Some(t) => Some(self.check(t, &format!("exec[{i}].timeout"), values::duration)?),
            None => None,
        };
        (ok && self.problems.len() == before).then_some(ExecStep {
            run,
            workdir,
            env,
            timeout,
            secrets: step_secrets,
        })
    }
}
