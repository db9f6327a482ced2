//! From TOML text to a validated [`Spec`]: pure, no file system access
//! beyond making the spec's directory absolute.
//!
//! Owns the meaning of a spec: required fields, exactly-one choices, value
//! rules (applied through `values`, whose messages it passes on unchanged)
//! and the dotted key of each problem it finds. Reading the TOML shape and
//! keying its errors is `raw`'s job; ordering and showing problems is
//! `error`'s. Must not print, touch smolvm, or look at the host beyond the
//! spec's own path.
//!
//! Collects every problem it finds rather than stopping at the first: the
//! shape problems `raw` reports (every syntax error; every unknown key and
//! value of the wrong type) and, when the shape read is faithful (see
//! `raw`), every validation problem; returned in source order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{Problem, SpecError};
use super::location::{Location, key_part};
use super::raw::{
    self, RawCopy, RawExec, RawImage, RawNetwork, RawSecret, RawSpec, ShapeProblem, SpannedMap,
};
use super::values::{self, EnvKey, EnvVar, GuestPath, HostName, ImageRef, MachineName, ValueError};
use super::{
    CopyEntry, CopyVia, DEFAULT_READY_TIMEOUT, Dns, ExecStep, Image, Places, SecretRef,
    SecretSource, Spec,
};

/// Parse and validate spec `text` that was read from `file`.
pub fn parse(file: &Path, text: &str) -> Result<Spec, SpecError> {
    let read = raw::read(text);
    let mut problems: Vec<Problem> = read
        .problems
        .into_iter()
        .map(|p| shape_problem(file, text, p))
        .collect();
    let spec = read.spec.and_then(|raw| {
        let mut v = Validator {
            file,
            text,
            dir: spec_dir(file),
            problems: Vec::new(),
        };
        let spec = v.spec(raw);
        problems.append(&mut v.problems);
        spec
    });
    match spec {
        Some(spec) if problems.is_empty() => Ok(spec),
        _ => Err(SpecError::invalid(problems)),
    }
}

fn shape_problem(file: &Path, text: &str, p: ShapeProblem) -> Problem {
    Problem {
        at: Location::of_span(file, text, p.span),
        key: p.key,
        message: p.message,
    }
}

/// The directory relative paths are read from: the real spec file's (its
/// symlinks resolved), the same file that owns the machine; for a spec
/// that is not on disk (text in a test), its path's, made absolute.
fn spec_dir(file: &Path) -> PathBuf {
    if let Some(dir) = std::fs::canonicalize(file)
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf))
    {
        return dir;
    }
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

/// The `[network]` table validated. A refused value is left out; its
/// problem is recorded, so the spec is refused.
#[derive(Default)]
struct Network {
    allow_cidrs: Vec<ipnet::IpNet>,
    allow_hosts: Vec<HostName>,
    dns: Option<Dns>,
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

    /// `field` of the table starting at byte `table` (whose key is
    /// `table_key`), or a problem there saying that it is missing.
    fn required<'f, T>(
        &mut self,
        field: &'f Option<Spanned<T>>,
        table: usize,
        table_key: &str,
        name: &str,
    ) -> Option<&'f Spanned<T>> {
        if field.is_none() {
            let key = match table_key {
                "" => name.to_string(),
                t => format!("{t}.{name}"),
            };
            self.problems.push(Problem {
                at: Location::at(self.file, self.text, table),
                key,
                message: format!("missing field `{name}`"),
            });
        }
        field.as_ref()
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
        let name = self
            .required(&raw.name, 0, "", "name")
            .and_then(|n| self.check(n, "name", MachineName::parse));
        let image = self
            .required(&raw.image, 0, "", "image")
            .and_then(|i| self.image(i));
        let network = raw
            .network
            .as_ref()
            .map(|n| self.network(n))
            .unwrap_or_default();
        let places = self.places(&raw);
        let env = self.env(&raw.env, "env");
        let copies = self.copies(&raw.copy);
        let copy_via = self.copy_via(raw.copy_via.as_ref());
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
            allow_cidrs: network.allow_cidrs,
            allow_hosts: network.allow_hosts,
            dns_written: network.dns,
            env,
            copies,
            copy_via: copy_via?,
            ready_timeout: ready_timeout?,
            execs,
            secrets,
            places,
        })
    }

    /// How copies travel: `archive` (the default) or `cp`.
    fn copy_via(&mut self, raw: Option<&Spanned<String>>) -> Option<CopyVia> {
        let Some(v) = raw else {
            return Some(CopyVia::Archive);
        };
        match v.get_ref().as_str() {
            "archive" => Some(CopyVia::Archive),
            "cp" => Some(CopyVia::Cp),
            other => {
                let message = format!("`{other}` is not one of \"archive\" or \"cp\"");
                self.problem(v, "copy_via", message);
                None
            }
        }
    }

    /// The `[network]` table: the allow-list and the DNS rule.
    fn network(&mut self, raw: &RawNetwork) -> Network {
        let cidrs = raw.allow_cidrs.iter().enumerate();
        let cidrs: Vec<_> = cidrs
            .map(|(i, c)| self.check(c, &format!("network.allow_cidrs[{i}]"), values::cidr))
            .collect();
        let hosts = raw.allow_hosts.iter().enumerate();
        let hosts: Vec<_> = hosts
            .map(|(i, h)| self.check(h, &format!("network.allow_hosts[{i}]"), HostName::parse))
            .collect();
        Network {
            allow_cidrs: cidrs.into_iter().flatten().collect(),
            allow_hosts: hosts.into_iter().flatten().collect(),
            dns: raw.dns.as_ref().and_then(|d| self.dns(d, raw)),
        }
    }

    /// `network.dns`: one of its words, and only where it means something.
    fn dns(&mut self, d: &Spanned<String>, raw: &RawNetwork) -> Option<Dns> {
        let dns = match d.get_ref().as_str() {
            "closed" => Dns::Closed,
            "open" => Dns::Open,
            other => {
                let message = format!("`{other}` is not one of \"closed\" or \"open\"");
                self.problem(d, "network.dns", message);
                return None;
            }
        };
        let message = match (dns, raw.allow_cidrs.is_empty(), raw.allow_hosts.is_empty()) {
            (_, true, true) => {
                "has no effect without an allow-list: a spec without `allow_cidrs` or \
                 `allow_hosts` has no network at all"
            }
            (Dns::Open, _, false) => {
                "cannot be \"open\" with `allow_hosts`: given host names, smolvm answers \
                 DNS queries for those names only"
            }
            (Dns::Closed, _, _) | (Dns::Open, false, true) => return Some(dns),
        };
        self.problem(d, "network.dns", message);
        None
    }

    /// Where the parts of `raw` that can make a command line long are.
    fn places(&self, raw: &RawSpec) -> Places {
        let network = raw.network.as_ref();
        let first = |v: &Vec<Spanned<String>>| v.first().map(|s| self.at(s));
        Places {
            file: Location::at(self.file, self.text, 0),
            env: (raw.env.keys())
                .filter_map(|k| EnvKey::parse(k.get_ref()).ok().map(|e| (e, self.at(k))))
                .collect(),
            allow_cidrs: network.and_then(|n| first(&n.allow_cidrs)),
            allow_hosts: network.and_then(|n| first(&n.allow_hosts)),
        }
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
            let key = format!("{table}.{}", key_part(k.get_ref()));
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
            let table = format!("copy[{i}]");
            let start = c.span().start;
            let RawCopy { src, dest } = c.get_ref();
            let src = self.required(src, start, &table, "src");
            let dest = self.required(dest, start, &table, "dest");
            let key = format!("{table}.src");
            let host = src.and_then(|s| self.host_path(s, &key));
            let dest = dest.and_then(|d| self.check(d, &format!("{table}.dest"), GuestPath::parse));
            if let (Some(src), Some(host), Some(dest)) = (src, host, dest) {
                let at = self.at(src);
                out.push(CopyEntry {
                    src: host,
                    dest,
                    at,
                    key,
                });
            }
        }
        out
    }

    fn secrets(&mut self, raw: &BTreeMap<Spanned<String>, Spanned<RawSecret>>) -> Vec<SecretRef> {
        let mut out = Vec::new();
        for (name, source) in raw {
            let key = format!("secrets.{}", key_part(name.get_ref()));
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
            .filter_map(|(i, e)| self.exec(i, e, secrets))
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

    fn exec(
        &mut self,
        i: usize,
        spanned: &Spanned<RawExec>,
        secrets: &[SecretRef],
    ) -> Option<ExecStep> {
        let e = spanned.get_ref();
        let before = self.problems.len();
        let run = self
            .required(&e.run, spanned.span().start, &format!("exec[{i}]"), "run")
            .and_then(|r| self.run(i, r));
        let workdir = e.workdir.as_ref().map(|w| {
            let key = format!("exec[{i}].workdir");
            self.check(w, &key, GuestPath::parse)
        });
        let env = self.env(&e.env, &format!("exec[{i}].env"));
        let step_secrets = self.exec_secrets(i, e, secrets);
        let timeout = e.timeout.as_ref().map(|t| {
            let key = format!("exec[{i}].timeout");
            self.check(t, &key, values::duration)
        });
        if self.problems.len() != before {
            return None;
        }
        Some(ExecStep {
            run: run?,
            workdir: workdir.flatten(),
            env,
            timeout: timeout.flatten(),
            secrets: step_secrets,
        })
    }

    /// The command of `exec[i]`: a non-empty first word, no NUL anywhere.
    fn run(&mut self, i: usize, run: &Spanned<Vec<Spanned<String>>>) -> Option<Vec<String>> {
        let words: Vec<String> = run.get_ref().iter().map(|a| a.get_ref().clone()).collect();
        let mut ok = true;
        if words.first().is_none_or(String::is_empty) {
            self.problem(run, format!("exec[{i}].run"), "must name a command");
            ok = false;
        }
        if let Some(arg) = run.get_ref().iter().find(|a| a.get_ref().contains('\0')) {
            self.problem(
                arg,
                format!("exec[{i}].run"),
                "must not contain a NUL character",
            );
            ok = false;
        }
        ok.then_some(words)
    }
}
