//! The test builder: a temporary world (simulator home, state, cache,
//! specs) and helpers to run bottle in it and look at what it left.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use bottle::plan::pack_key;
use bottle::sim::{Home, World};
use bottle::smolvm::{Argv, Version};

pub const SIM: &str = env!("CARGO_BIN_EXE_smolvm-sim");
pub const BOTTLE: &str = env!("CARGO_BIN_EXE_bottle");

/// Both argv dialects: the oldest positional one and the current one.
pub const VERSIONS: [&str; 2] = ["0.8.0", "1.9.3"];

/// One bottle invocation's result.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn status(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// A temporary world for bottle and the simulator.
pub struct Bottle {
    pub tmp: tempfile::TempDir,
    version: String,
}

impl Bottle {
    pub fn new() -> Self {
        Self::on("1.9.3")
    }

    /// A world whose simulator claims smolvm `version`.
    pub fn on(version: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        Bottle {
            tmp,
            version: version.into(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Write a file under the world, creating directories.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        p
    }

    /// The standard agent spec, [`AGENT_SPEC`], as `spec.toml`, with a
    /// two-file workspace.
    pub fn agent(&self) -> PathBuf {
        self.write("ws/README.md", "# hello\n");
        let script = self.write("ws/src/main.sh", "echo main\n");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        self.write("spec.toml", AGENT_SPEC)
    }

    /// A bottle command in this world, not yet run.
    pub fn bottle_command(&self, args: &[&str]) -> Command {
        self.command(BOTTLE, args, &[])
    }

    /// `text` as a snapshot shows it: the world's directory as `[TMP]`,
    /// the simulator's path as `smolvm`, step timings as `(N ms)`.
    pub fn normalize(&self, text: &str) -> String {
        let root = self.tmp.path().to_string_lossy().into_owned();
        let text = text.replace(SIM, "smolvm").replace(&root, "[TMP]");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find('(') {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 && rest[digits..].starts_with(" ms)") {
                out.push('N');
                rest = &rest[digits..];
            }
        }
        out.push_str(rest);
        out
    }

    fn command(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("BOTTLE_SMOLVM", SIM)
            .env("BOTTLE_STATE_DIR", self.path("state"))
            .env("BOTTLE_CACHE_DIR", self.path("cache"))
            .env("SMOLVM_SIM_HOME", self.path("sim"))
            .env("SMOLVM_SIM_VERSION", &self.version)
            .env_remove("SMOLVM_SIM_FAIL")
            .env_remove("SMOLVM_SIM_HANG")
            .stdin(Stdio::null());
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }

    fn output(mut c: Command) -> Run {
        let out = c.output().expect("spawn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Run bottle with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(&[], args)
    }

    /// Run bottle with extra environment (e.g. fault injection).
    pub fn run_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Run {
        Self::output(self.command(BOTTLE, args, extra))
    }

    /// Start bottle without waiting for it.
    pub fn spawn(&self, extra: &[(&str, &str)], args: &[&str]) -> std::process::Child {
        let mut c = self.command(BOTTLE, args, extra);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("spawn bottle")
    }

    /// Wait (up to 20 s) until a logged smolvm call contains `text`.
    #[track_caller]
    pub fn wait_for_call(&self, text: &str) {
        for _ in 0..2000 {
            if self.calls().iter().any(|c| c.contains(text)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no call containing {text:?}: {:#?}", self.calls());
    }

    /// Run the simulator directly, as a user's own smolvm call would.
    pub fn sim(&self, args: &[&str]) -> Run {
        self.sim_with(&[], args)
    }

    /// Run the simulator directly with extra environment.
    pub fn sim_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Run {
        Self::output(self.command(SIM, args, extra))
    }

    /// Every smolvm call so far as a shell line (quoted as bottle prints
    /// argv), shown as [`Bottle::normalize`] shows text: the program as
    /// `smolvm`, the world's directory as `[TMP]`.
    pub fn calls(&self) -> Vec<String> {
        let home = Home::new(&self.path("sim"));
        home.calls_made()
            .expect("calls")
            .into_iter()
            .map(|mut argv| {
                argv[0] = "smolvm".into();
                self.normalize(&Argv(argv).to_string())
            })
            .collect()
    }

    /// Forget the calls so far.
    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.path("sim/calls.jsonl"));
    }

    /// The simulator's world.
    pub fn world(&self) -> World {
        Home::new(&self.path("sim")).read().expect("world")
    }

    /// A file in a machine's guest filesystem.
    pub fn guest(&self, machine: &str, path: &str) -> Option<String> {
        let p = Home::new(&self.path("sim"))
            .guest(machine)
            .join(path.trim_start_matches('/'));
        std::fs::read_to_string(p).ok()
    }

    /// The permission bits of a file in a machine's guest filesystem.
    pub fn guest_mode(&self, machine: &str, path: &str) -> u32 {
        let p = Home::new(&self.path("sim"))
            .guest(machine)
            .join(path.trim_start_matches('/'));
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(p).expect("guest file").permissions(),
        ) & 0o7777
    }

    /// bottle's record of a machine.
    pub fn record(&self, name: &str) -> Option<serde_json::Value> {
        let text =
            std::fs::read_to_string(self.path(&format!("state/machines/{name}.json"))).ok()?;
        Some(serde_json::from_str(&text).expect("record json"))
    }

    /// The id of the copy archive of a first apply of the spec at `path`
    /// (the hash of every path it sends).
    pub fn copy_id(&self, path: &std::path::Path) -> String {
        let d = bottle::spec::load(path)
            .and_then(bottle::spec::resolve)
            .expect("spec");
        let all = bottle::plan::transfer(&d.fingerprint.copies, &[], true);
        bottle::plan::upload_id(&d.fingerprint.copies, &all)
    }

    /// The pack cache key bottle uses for `image` on this world's version.
    pub fn pack_key(&self, image: &str) -> String {
        pack_key(image, &Version::parse(&self.version).expect("version"))
    }

    /// Files in the pack cache (not its lock files).
    pub fn cached_packs(&self) -> Vec<String> {
        let dir = self.path("cache/packs");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Live processes whose command line mentions this world: pid and
    /// command line, its arguments joined by spaces.
    fn processes(&self) -> Vec<(i32, String)> {
        let root = self.tmp.path().to_string_lossy().into_owned();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&root) {
                found.push((pid, cmdline));
            }
        }
        found
    }

    /// Kill what a SIGKILLed bottle left running (a hung smolvm call).
    pub fn kill_leftovers(&self) {
        for (pid, _) in self.processes() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    /// The command lines of live processes that mention this world.
    pub fn processes_left(&self) -> Vec<String> {
        self.processes().into_iter().map(|(_, c)| c).collect()
    }
}

/// The `delete` call of machine `name` as smolvm `version` spells it:
/// positional before 1.0.2, `--name` after.
pub fn delete_line(version: &str, name: &str) -> String {
    if version == "0.8.0" {
        format!("smolvm machine delete -f {name}")
    } else {
        format!("smolvm machine delete -f --name {name}")
    }
}

/// Wait (up to 30 s) for a spawned bottle to exit.
#[track_caller]
pub fn finish(mut child: std::process::Child) -> Run {
    for _ in 0..3000 {
        if child.try_wait().expect("try_wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into(),
                stderr: String::from_utf8_lossy(&out.stderr).into(),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("bottle did not exit within 30 s");
}

/// Send signal `sig` to a spawned bottle.
pub fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

/// The standard agent spec: image `img:1`, egress only to its proxy at
/// 192.168.50.2:8888, the workspace `ws` copied to `/workspace`, a 2 s
/// readiness timeout, and one step that writes `/done`.
pub const AGENT_SPEC: &str = r#"name = "agent"

[image]
ref = "img:1"

[network]
allow_cidrs = ["192.168.50.2/32"]

[env]
HTTPS_PROXY = "http://192.168.50.2:8888"

[[copy]]
src = "ws"
dest = "/workspace"

[ready]
timeout = "2s"

[[exec]]
run = ["sh", "-c", "cat README.md > /done; printenv HTTPS_PROXY >> /done"]
workdir = "/workspace"
"#;
