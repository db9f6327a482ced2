//! The guest side of the simulator: a directory per machine as its root
//! filesystem, and a small built-in command set for `exec`. Nothing here
//! ever runs a host program; every path stays inside the guest root: paths
//! are resolved by `rootfs` (links followed inside the root only) and
//! `tar -x` is `untar`'s.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::rootfs::{self, Last};
use super::untar;

use super::stream::GuestStream;

/// The most `head -c N` prints inside `sh -c`, whose output the simulator
/// holds in memory (as the whole command it is streamed, without limit).
const HELD_HEAD_MAX: u64 = 16 * 1024 * 1024;

/// What a guest command printed and returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn ok(stdout: String) -> Self {
        Ran {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }
    fn err(code: i32, stderr: String) -> Self {
        Ran {
            code,
            stdout: String::new(),
            stderr,
        }
    }
    /// Exit 0 if `yes`, else 1, saying nothing.
    fn status(yes: bool) -> Self {
        Ran {
            code: if yes { 0 } else { 1 },
            ..Ran::default()
        }
    }
}

/// A guest: its root directory, working directory and environment.
#[derive(Debug, Clone)]
pub struct Guest<'a> {
    pub root: &'a Path,
    pub cwd: String,
    pub env: BTreeMap<String, String>,
}

impl Guest<'_> {
    /// The host path of guest path `p`, links followed (inside the root).
    fn path(&self, p: &str) -> Result<PathBuf, String> {
        rootfs::resolve(self.root, &self.cwd, p, Last::Follow)
    }

    /// The host path of guest path `p` itself: a last link is not followed.
    fn entry(&self, p: &str) -> Result<PathBuf, String> {
        rootfs::resolve(self.root, &self.cwd, p, Last::Keep)
    }

    /// Run one command.
    pub fn run(&self, argv: &[String]) -> Ran {
        let Some((cmd, args)) = argv.split_first() else {
            return Ran::err(127, "sh: empty command\n".into());
        };
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        match (cmd.as_str(), a.as_slice()) {
            ("true", _) => Ran::ok(String::new()),
            ("false", _) => Ran::err(1, String::new()),
            ("echo", words) => Ran::ok(format!("{}\n", words.join(" "))),
            ("pwd", []) => Ran::ok(format!("{}\n", self.cwd)),
            ("printenv", []) => {
                Ran::ok(self.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect())
            }
            ("printenv", [k]) => match self.env.get(*k) {
                Some(v) => Ran::ok(format!("{v}\n")),
                None => Ran::err(1, String::new()),
            },
            ("cat", files) => self.cat(files),
            ("test", ["-n", text]) => Ran::status(!text.is_empty()),
            ("test", ["-z", text]) => Ran::status(text.is_empty()),
            ("test", [a, "=", b]) => Ran::status(a == b),
            ("test", [a, "!=", b]) => Ran::status(a != b),
            ("test", [flag, p]) => self.test(flag, p),
            ("mkdir", ["-p", dirs @ ..]) => {
                self.each(dirs, |p| fs::create_dir_all(p).map_err(|e| e.to_string()))
            }
            ("rm", rest) => self.rm(rest),
            ("rmdir", rest) => self.rmdir(rest),
            ("ln", rest) => self.ln(rest),
            ("tar", rest) => self.tar(rest),
            ("head", ["-c", n, file]) => self.head(n, file),
            ("sh", ["-c", script, params @ ..]) => {
                let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
                self.sh(script, &params)
            }
            ("chmod", [mode, paths @ ..]) => match u32::from_str_radix(mode, 8) {
                Ok(m) => self.each(paths, |p| {
                    fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m))
                        .map_err(|e| e.to_string())
                }),
                Err(_) => Ran::err(1, format!("chmod: invalid mode '{mode}'\n")),
            },
            (other, _) => Ran::err(127, format!("sh: {other}: not found\n")),
        }
    }

    /// A command whose output is streamed rather than held, when `argv`
    /// is one (`head -c N FILE` as the whole command), or why it fails.
    pub fn streamed(&self, argv: &[String]) -> Option<Result<GuestStream, Ran>> {
        match argv {
            [head, c, n, file] if head == "head" && c == "-c" => Some(self.head_stream(n, file)),
            _ => None,
        }
    }

    /// `head -c N FILE`: the first N bytes of a guest file, or N NUL bytes
    /// of `/dev/zero`.
    fn head_stream(&self, n: &str, file: &str) -> Result<GuestStream, Ran> {
        let Ok(len) = n.parse::<u64>() else {
            return Err(Ran::err(1, format!("head: invalid number '{n}'\n")));
        };
        let path = self
            .path(file)
            .map_err(|e| Ran::err(1, format!("head: {e}\n")))?;
        if path == self.root.join("dev/zero") {
            return Ok(GuestStream::Zeros(len));
        }
        match path.is_file() {
            true => Ok(GuestStream::File { path, len }),
            false => Err(Ran::err(
                1,
                format!("head: {file}: No such file or directory\n"),
            )),
        }
    }

    /// `head -c N FILE` inside `sh -c`, where output is held: at most
    /// [`HELD_HEAD_MAX`] bytes.
    fn head(&self, n: &str, file: &str) -> Ran {
        match self.head_stream(n, file) {
            Err(r) => r,
            Ok(s) if s.clone().capped(HELD_HEAD_MAX) != s => Ran::err(
                1,
                format!(
                    "head: smolvm-sim holds output inside `sh -c`: at most {HELD_HEAD_MAX} bytes \
                     (run head as the whole exec command to stream more)\n"
                ),
            ),
            Ok(s) => match s.to_text() {
                Ok(text) => Ran::ok(text),
                Err(e) => Ran::err(1, format!("head: {file}: {e}\n")),
            },
        }
    }

    fn each(&self, paths: &[&str], f: impl Fn(&Path) -> Result<(), String>) -> Ran {
        for p in paths {
            if let Err(e) = self.path(p).and_then(|h| f(&h)) {
                return Ran::err(1, format!("{p}: {e}\n"));
            }
        }
        Ran::ok(String::new())
    }

    /// As [`Guest::each`], on each path itself (a last link not followed).
    fn each_entry(&self, paths: &[&str], f: impl Fn(&Path) -> Result<(), String>) -> Ran {
        for p in paths {
            if let Err(e) = self.entry(p).and_then(|h| f(&h)) {
                return Ran::err(1, format!("{p}: {e}\n"));
            }
        }
        Ran::ok(String::new())
    }

    fn cat(&self, files: &[&str]) -> Ran {
        let mut out = String::new();
        for f in files {
            match self
                .path(f)
                .and_then(|p| fs::read_to_string(p).map_err(|e| e.to_string()))
            {
                Ok(t) => out.push_str(&t),
                Err(_) => {
                    return Ran::err(
                        1,
                        format!("cat: can't open '{f}': No such file or directory\n"),
                    );
                }
            }
        }
        Ran::ok(out)
    }

    fn test(&self, flag: &str, p: &str) -> Ran {
        let found = match flag {
            "-L" | "-h" => self.entry(p),
            _ => self.path(p),
        };
        let Ok(h) = found else {
            return Ran::err(1, String::new());
        };
        let yes = match flag {
            "-e" => h.exists(),
            "-f" => h.is_file(),
            "-d" => h.is_dir(),
            "-L" | "-h" => h.is_symlink(),
            _ => return Ran::err(2, format!("test: unknown operator {flag}\n")),
        };
        Ran::status(yes)
    }

    /// `ln -s[f][n] [--] TARGET PATH`: a symbolic link with `TARGET` as
    /// its text (never resolved here). `-f` replaces what is at `PATH`;
    /// `PATH` an existing directory (not a link to one, with `-n`) gets
    /// the link inside it, named as the target's last component.
    fn ln(&self, args: &[&str]) -> Ran {
        let (flags, rest) = ln_args(args);
        let [target, path] = rest.as_slice() else {
            return Ran::err(1, "ln: usage: ln -s[fn] TARGET PATH\n".into());
        };
        if !flags.contains('s') {
            return Ran::err(1, "ln: only symbolic links (-s) are supported\n".into());
        }
        let made = self.entry(path).and_then(|mut at| {
            let keep_link = flags.contains('n') && at.is_symlink();
            let followed = self.path(path)?;
            if followed.is_dir() && !keep_link {
                let name = Path::new(target).file_name().ok_or("no link name")?;
                at = followed.join(name);
            }
            if flags.contains('f') && (at.is_symlink() || at.is_file()) {
                fs::remove_file(&at).map_err(|e| e.to_string())?;
            }
            std::os::unix::fs::symlink(target, &at).map_err(|e| e.to_string())
        });
        match made {
            Ok(()) => Ran::ok(String::new()),
            Err(e) => Ran::err(1, format!("ln: {path}: {e}\n")),
        }
    }

    /// `tar -x[z]f ARCHIVE [-C DIR]`: unpack inside the guest root only,
    /// keeping modes and links (see `untar`).
    fn tar(&self, args: &[&str]) -> Ran {
        let (flags, archive, dir) = match args {
            [flags, archive] => (*flags, *archive, None),
            [flags, archive, "-C", dir] => (*flags, *archive, Some(*dir)),
            _ => return Ran::err(1, "tar: usage: tar -x[z]f ARCHIVE [-C DIR]\n".into()),
        };
        let flags = flags.trim_start_matches('-');
        if !flags.contains('x') || !flags.ends_with('f') {
            return Ran::err(1, format!("tar: unsupported flags '{flags}'\n"));
        }
        let unpacked = self.path(archive).and_then(|a| {
            let file = fs::File::open(a).map_err(|e| e.to_string())?;
            let reader: Box<dyn std::io::Read> = match flags.contains('z') {
                true => Box::new(flate2::read::GzDecoder::new(file)),
                false => Box::new(file),
            };
            untar::unpack(self.root, &self.cwd, dir.unwrap_or(&self.cwd), reader)
        });
        match unpacked {
            Ok(()) => Ran::ok(String::new()),
            Err(e) => Ran::err(1, format!("tar: {archive}: {e}\n")),
        }
    }

    fn rm(&self, args: &[&str]) -> Ran {
        let (flags, paths): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| a.starts_with('-'));
        let force = flags.iter().any(|f| f.contains('f'));
        let recursive = flags.iter().any(|f| f.contains('r') || f.contains('R'));
        self.each_entry(&paths, |h| {
            let r = if h.is_dir() && !h.is_symlink() && recursive {
                fs::remove_dir_all(h)
            } else {
                fs::remove_file(h)
            };
            match r {
                Err(e) if !(force && e.kind() == std::io::ErrorKind::NotFound) => {
                    Err(e.to_string())
                }
                _ => Ok(()),
            }
        })
    }

    /// `rmdir [--] DIR…`: each must be an empty directory; every one is
    /// tried, and the status is 1 if any could not be removed.
    fn rmdir(&self, args: &[&str]) -> Ran {
        let mut stderr = String::new();
        for dir in args.iter().filter(|a| **a != "--") {
            let removed = self.entry(dir).and_then(|h| {
                fs::remove_dir(h).map_err(|e| match e.kind() {
                    std::io::ErrorKind::DirectoryNotEmpty => "Directory not empty".to_string(),
                    std::io::ErrorKind::NotADirectory => "Not a directory".to_string(),
                    std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
                    _ => e.to_string(),
                })
            });
            if let Err(e) = removed {
                stderr.push_str(&format!("rmdir: '{dir}': {e}\n"));
            }
        }
        match stderr.is_empty() {
            true => Ran::ok(String::new()),
            false => Ran::err(1, stderr),
        }
    }

    /// A tiny `sh -c SCRIPT [NAME ARGS…]`: commands split on `;`, `&&` and
    /// `||` (each runs after the last one's status, left to right);
    /// words split on spaces with '…' and "…" quoting; `$VAR`, `${VAR}`,
    /// `$0`…`$9`, `"$@"` and `$(command)` expansion; `export K=V`,
    /// `exec CMD…` and `exit N`; `> file`, `>> file` and `>&2`.
    fn sh(&self, script: &str, params: &[String]) -> Ran {
        let mut env = self.env.clone();
        let mut all = Ran::ok(String::new());
        for (part, after) in split_script(script) {
            let skip = match after {
                After::Any => false,
                After::Success => all.code != 0,
                After::Failure => all.code == 0,
            };
            if skip {
                continue;
            }
            let g = Guest {
                root: self.root,
                cwd: self.cwd.clone(),
                env: env.clone(),
            };
            let words = g.words(&part, params);
            let r = match words.first().map(String::as_str) {
                Some("exit") => {
                    all.code = words.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                    return all;
                }
                Some("export") => {
                    env.extend(
                        words[1..]
                            .iter()
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_string(), v.to_string())),
                    );
                    Ran::ok(String::new())
                }
                Some("exec") => {
                    let r = g.redirected(&words[1..]);
                    all.stdout.push_str(&r.stdout);
                    all.stderr.push_str(&r.stderr);
                    all.code = r.code;
                    return all;
                }
                _ => g.redirected(&words),
            };
            all.stdout.push_str(&r.stdout);
            all.stderr.push_str(&r.stderr);
            all.code = r.code;
        }
        all
    }

    fn redirected(&self, words: &[String]) -> Ran {
        if let Some(pos) = words.iter().position(|w| w == ">&2") {
            let rest: Vec<String> = words
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != pos)
                .map(|(_, w)| w.clone())
                .collect();
            let r = self.redirected(&rest);
            return Ran {
                stdout: String::new(),
                stderr: format!("{}{}", r.stderr, r.stdout),
                code: r.code,
            };
        }
        let pos = words.iter().position(|w| w == ">" || w == ">>");
        let Some(pos) = pos else {
            return self.run(words);
        };
        let Some(target) = words.get(pos + 1) else {
            return Ran::err(2, "sh: syntax error: missing redirection target\n".into());
        };
        let r = self.run(&words[..pos]);
        let append = words[pos] == ">>";
        let written = self.path(target).and_then(|p| {
            let mut f = fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(p)
                .map_err(|e| e.to_string())?;
            f.write_all(r.stdout.as_bytes()).map_err(|e| e.to_string())
        });
        match written {
            Ok(()) => Ran {
                stdout: String::new(),
                ..r
            },
            Err(e) => Ran::err(1, format!("sh: can't create {target}: {e}\n")),
        }
    }

    /// What follows a `$`: `$(…)`, `$@` (a marker [`Guest::words`] splices),
    /// `$0`…`$9`, `$NAME` or `${NAME}`.
    fn expand(
        &self,
        chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
        params: &[String],
    ) -> String {
        if chars.next_if_eq(&'(').is_some() {
            let mut inner = String::new();
            let mut depth = 1;
            for n in chars.by_ref() {
                depth += match n {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                if depth == 0 {
                    break;
                }
                inner.push(n);
            }
            return self
                .sh(&inner, params)
                .stdout
                .trim_end_matches('\n')
                .to_string();
        }
        if chars.next_if_eq(&'@').is_some() {
            return ALL_PARAMS.to_string();
        }
        if let Some(d) = chars.next_if(char::is_ascii_digit) {
            let n = d.to_digit(10).unwrap_or(0) as usize;
            return params.get(n).cloned().unwrap_or_default();
        }
        let braced = chars.next_if_eq(&'{').is_some();
        let mut name = String::new();
        while let Some(n) = chars.next_if(|n| n.is_ascii_alphanumeric() || *n == '_') {
            name.push(n);
        }
        if braced {
            chars.next_if_eq(&'}');
        }
        self.env.get(&name).cloned().unwrap_or_default()
    }

    /// Split `s` into words, expanding as `sh` would (see [`Guest::sh`]).
    fn words(&self, s: &str, params: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut has = false;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '\'' | '"') => {
                    quote = Some(c);
                    has = true;
                }
                (Some('\''), c) => cur.push(c),
                (_, '$') => {
                    has = true;
                    cur.push_str(&self.expand(&mut chars, params));
                }
                (None, c) if c.is_whitespace() => {
                    if has || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    has = false;
                }
                (_, c) => cur.push(c),
            }
        }
        if has || !cur.is_empty() {
            out.push(cur);
        }
        out.into_iter()
            .flat_map(|w| match w == ALL_PARAMS {
                true => params.iter().skip(1).cloned().collect(),
                false => vec![w],
            })
            .collect()
    }
}

/// The single-letter flags of `ln` run together (`-sfn`), and its other
/// words (after `--`, all words are operands).
fn ln_args<'a>(args: &[&'a str]) -> (String, Vec<&'a str>) {
    let mut flags = String::new();
    let mut rest = Vec::new();
    let mut operands = false;
    for a in args {
        match (operands, a.strip_prefix('-')) {
            (false, Some("-")) => operands = true,
            (false, Some(f)) if !f.is_empty() => flags.push_str(f),
            _ => rest.push(*a),
        }
    }
    (flags, rest)
}

/// The marker `$@` expands to before the words are spliced.
const ALL_PARAMS: &str = "\u{0}@\u{0}";

/// Split a script into commands; the flag says the command follows `&&`.
/// When a part of a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// First, or after `;`.
    Any,
    /// After `&&`: if the last status is 0.
    Success,
    /// After `||`: if it is not.
    Failure,
}

/// A script's parts, split on `;`, `&&` and `||` (not inside quotes, which
/// these scripts never need), each with when it runs.
fn split_script(script: &str) -> Vec<(String, After)> {
    let mut out = Vec::new();
    for seq in script.split(';') {
        let mut after = After::Any;
        let mut rest = seq;
        loop {
            let next = [("&&", After::Success), ("||", After::Failure)]
                .into_iter()
                .filter_map(|(op, a)| rest.find(op).map(|at| (at, a)))
                .min_by_key(|(at, _)| *at);
            let part = next.map_or(rest, |(at, _)| &rest[..at]);
            if !part.trim().is_empty() {
                out.push((part.trim().to_string(), after));
            }
            let Some((at, then)) = next else {
                break;
            };
            after = then;
            rest = &rest[at + 2..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(root: &Path) -> Guest<'_> {
        let env = [("GREETING".to_string(), "hi there".to_string())].into();
        Guest {
            root,
            cwd: "/work".into(),
            env,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn lists_run_on_the_last_status_and_rmdir_tries_every_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let g = guest(tmp.path());
        let run = |script: &str| g.run(&s(&["sh", "-c", script]));
        assert_eq!(run("false || echo ran").stdout, "ran\n");
        assert_eq!(run("true || echo ran").stdout, "");
        assert_eq!(run("false && echo no || echo yes").stdout, "yes\n");
        assert_eq!(run("false; echo next").stdout, "next\n");
        assert_eq!(g.run(&s(&["mkdir", "-p", "/a", "/b/c"])).code, 0);
        let r = g.run(&s(&["rmdir", "--", "/b", "/a", "/gone"]));
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("'/b': Directory not empty"), "{r:?}");
        assert!(r.stderr.contains("'/gone': No such file"), "{r:?}");
        assert!(!tmp.path().join("a").exists(), "the empty one went");
        let tolerant = g.run(&s(&["sh", "-c", "rmdir -- \"$@\" || true", "x", "/b"]));
        assert_eq!(tolerant.code, 0);
    }

    #[test]
    fn builtins_act_on_the_guest_filesystem() {
        let tmp = tempfile::tempdir().unwrap();
        let g = guest(tmp.path());
        assert_eq!(g.run(&s(&["mkdir", "-p", "/work/d"])).code, 0);
        let r = g.run(&s(&[
            "sh",
            "-c",
            "echo $GREETING > /work/d/f && echo more >> d/f",
        ]));
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(g.run(&s(&["cat", "/work/d/f"])).stdout, "hi there\nmore\n");
        assert_eq!(g.run(&s(&["test", "-f", "/work/d/f"])).code, 0);
        assert_eq!(g.run(&s(&["test", "-d", "/work/d/f"])).code, 1);
        assert_eq!(g.run(&s(&["sh", "-c", "exit 42"])).code, 42);
        assert_eq!(
            g.run(&s(&["sh", "-c", "false && echo no; echo yes"]))
                .stdout,
            "yes\n"
        );
        assert_eq!(g.run(&s(&["rm", "-rf", "/work/d"])).code, 0);
        assert_eq!(g.run(&s(&["test", "-e", "/work/d"])).code, 1);
        assert_eq!(g.run(&s(&["test", "-n", "x"])).code, 0);
        assert_eq!(g.run(&s(&["test", "-n", ""])).code, 1);
        assert_eq!(g.run(&s(&["test", "-z", ""])).code, 0);
        assert_eq!(g.run(&s(&["test", "a", "=", "a"])).code, 0);
        assert_eq!(g.run(&s(&["test", "a", "!=", "a"])).code, 1);
        let empty = g.run(&s(&["sh", "-c", "test -z \"$NOPE\" && echo empty"]));
        assert_eq!(empty.stdout, "empty\n");
        let unknown = g.run(&s(&["curl", "x"]));
        assert_eq!(
            (unknown.code, unknown.stderr.as_str()),
            (127, "sh: curl: not found\n")
        );
        assert_eq!(g.run(&s(&["printenv", "GREETING"])).stdout, "hi there\n");
        assert_eq!(
            g.run(&s(&["sh", "-c", "echo 'a  b' \"$GREETING\""])).stdout,
            "a  b hi there\n"
        );
    }

    #[test]
    fn tar_unpacks_inside_the_root_keeping_modes() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let g = guest(tmp.path());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o751);
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header, "w/x.sh", &b"hi\n"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        std::fs::create_dir_all(tmp.path().join("tmp")).unwrap();
        std::fs::write(tmp.path().join("tmp/a.tar"), &bytes).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        std::fs::write(tmp.path().join("tmp/a.tgz"), gz.finish().unwrap()).unwrap();
        assert_eq!(g.run(&s(&["tar", "-xf", "/tmp/a.tar", "-C", "/"])).code, 0);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("w/x.sh")).unwrap(),
            "hi\n"
        );
        let mode = std::fs::metadata(tmp.path().join("w/x.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o751);
        assert_eq!(
            g.run(&s(&["tar", "-xzf", "/tmp/a.tgz", "-C", "/z"])).code,
            0
        );
        assert!(tmp.path().join("z/w/x.sh").is_file());
        assert_eq!(g.run(&s(&["tar", "-tf", "/tmp/a.tar"])).code, 1);
    }

    #[test]
    fn ln_makes_links_that_builtins_follow_inside_the_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("guest");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), "guest\n").unwrap();
        let g = guest(&root);
        let ok = |argv: &[&str]| assert_eq!(g.run(&s(argv)), Ran::ok(String::new()), "{argv:?}");
        ok(&["mkdir", "-p", "/w/d"]);
        ok(&["ln", "-sfn", "--", "/etc/hostname", "/w/name"]);
        ok(&["ln", "-s", "/", "/w/top"]);
        ok(&["ln", "-s", "-f", "-n", "../w/d", "/w/dir"]);
        assert_eq!(
            std::fs::read_link(root.join("w/name")).unwrap(),
            Path::new("/etc/hostname"),
            "the target text is kept"
        );
        assert_eq!(g.run(&s(&["cat", "/w/name"])).stdout, "guest\n");
        assert_eq!(g.run(&s(&["test", "-L", "/w/name"])).code, 0);
        assert_eq!(g.run(&s(&["test", "-h", "/w/d"])).code, 1);
        assert_eq!(g.run(&s(&["test", "-f", "/w/name"])).code, 0);
        ok(&[
            "sh",
            "-c",
            "echo in > /w/top/escape-check && echo x > /w/dir/f",
        ]);
        assert!(root.join("escape-check").is_file());
        assert!(!tmp.path().join("escape-check").exists());
        assert!(!Path::new("/escape-check").exists());
        assert!(root.join("w/d/f").is_file());
        let exists = g.run(&s(&["ln", "-s", "x", "/w/name"]));
        assert_eq!(exists.code, 1, "{exists:?}");
        ok(&["ln", "-sf", "x", "/w/name"]);
        assert_eq!(
            std::fs::read_link(root.join("w/name")).unwrap(),
            Path::new("x")
        );
        ok(&["ln", "-s", "/etc/hostname", "/w/d"]);
        assert!(root.join("w/d/hostname").is_symlink(), "into a directory");
        ok(&["rm", "-rf", "/w/dir"]);
        assert!(
            root.join("w/d/f").is_file(),
            "rm removes the link, not its target"
        );
        assert_eq!(g.run(&s(&["ln", "/a", "/b"])).code, 1, "hard links");
    }

    #[test]
    fn head_streams_as_a_whole_command_and_is_held_inside_sh() {
        let tmp = tempfile::tempdir().unwrap();
        let g = guest(tmp.path());
        std::fs::write(tmp.path().join("f"), "hello world").unwrap();
        let big = g.streamed(&s(&["head", "-c", "300000000", "/dev/zero"]));
        assert_eq!(big, Some(Ok(GuestStream::Zeros(300_000_000))));
        let file = g.streamed(&s(&["head", "-c", "5", "/f"])).unwrap().unwrap();
        assert_eq!(file.to_text().unwrap(), "hello");
        assert_eq!(g.streamed(&s(&["echo", "x"])), None);
        let missing = g.streamed(&s(&["head", "-c", "5", "/nope"])).unwrap();
        assert_eq!(missing.unwrap_err().code, 1);
        let held = g.run(&s(&["sh", "-c", "head -c 3 /dev/zero; echo !"]));
        assert_eq!(held.stdout, "\0\0\0!\n");
        let too_big = g.run(&s(&["sh", "-c", "head -c 20000000 /dev/zero"]));
        assert_eq!(too_big.code, 1, "{too_big:?}");
        assert_eq!(g.run(&s(&["head", "-c", "x", "/f"])).code, 1);
    }

    #[test]
    fn the_secrets_wrapper_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let g = guest(tmp.path());
        g.run(&s(&[
            "sh",
            "-c",
            "mkdir -p /s && echo s3cr3t > /s/K && chmod 400 /s/K",
        ]));
        let mode = std::fs::metadata(tmp.path().join("s/K")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o400
        );
        let script = "export K=\"$(cat /s/K)\" && exec \"$@\"";
        let r = g.run(&s(&[
            "sh",
            "-c",
            script,
            "wrapper",
            "sh",
            "-c",
            "echo got $K $0 $1",
            "zero",
            "one",
        ]));
        assert_eq!(r.stdout, "got s3cr3t zero one\n", "{r:?}");
        let e = g.run(&s(&["sh", "-c", "echo oops >&2; exit 4"]));
        assert_eq!((e.code, e.stderr.as_str()), (4, "oops\n"));
    }
}
