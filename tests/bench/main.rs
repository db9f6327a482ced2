//! The speed benchmark: `cargo bench --bench speed`.
//!
//! Runs the real `bottle` binary against the real `smolvm-sim` binary with
//! a per-call latency (`BENCH_LATENCY_MS`, default 20) and a `start` that
//! takes `BENCH_BOOT_MS` (default 250), and prints one table of ratios, each
//! measured within this run against a baseline on the same simulator: the
//! same smolvm calls replayed back to back without bottle, a one-file copy,
//! per-file copying, a single apply, an apply whose step prints nothing
//! (for bottle's peak memory, read from `/proc/PID/status` `VmHWM`). For
//! 32 converged specs re-applied (and planned) in one run: the calls bottle
//! made, replayed alone. For one edited file in a 2,000-file, 50 MiB
//! workspace: the bytes of the full first upload (as the simulator counts
//! what `cp` received), and a no-op re-apply plus one call's latency. It
//! measures and reports; it asserts nothing about time, so it never flakes.
//! Nothing here runs a real VM.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bottle::sim::Home;

const BOTTLE: &str = env!("CARGO_BIN_EXE_bottle");
const SIM: &str = env!("CARGO_BIN_EXE_smolvm-sim");

fn env_ms(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Where simulated guests live: `BENCH_SIM_DIR`, else `/dev/shm` when
/// there is one (a guest writes to its own disk, not to the host's), else
/// the temporary directory. bottle's state and cache stay on the host's
/// temporary directory, so its own writes pay the host disk.
fn sim_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BENCH_SIM_DIR") {
        return d.into();
    }
    let shm = Path::new("/dev/shm");
    if tempfile::tempdir_in(shm).is_ok() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// A world for bottle and the simulator: its own state, cache and
/// simulator home.
struct Lab {
    tmp: tempfile::TempDir,
    guests: tempfile::TempDir,
    latency: u64,
    boot: u64,
}

impl Lab {
    fn new(latency: u64, boot: u64) -> Lab {
        Lab {
            tmp: tempfile::tempdir().expect("tempdir"),
            guests: tempfile::tempdir_in(sim_dir()).expect("tempdir for guests"),
            latency,
            boot,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn sim_home(&self) -> PathBuf {
        self.guests.path().join("sim")
    }

    fn home(&self) -> Home {
        Home::new(&self.sim_home())
    }

    fn command(&self, program: &str, args: &[&str], sim_home: &Path) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("BOTTLE_SMOLVM", SIM)
            .env("BOTTLE_STATE_DIR", self.path("state"))
            .env("BOTTLE_CACHE_DIR", self.path("cache"))
            .env("SMOLVM_SIM_HOME", sim_home)
            .env("SMOLVM_SIM_LATENCY_MS", self.latency.to_string())
            .env("SMOLVM_SIM_BOOT_MS", self.boot.to_string())
            .env_remove("SMOLVM_SIM_VERSION")
            .env_remove("SMOLVM_SIM_FAIL")
            .env_remove("SMOLVM_SIM_HANG")
            .env_remove("SMOLVM_SIM_READY_AFTER")
            .env_remove("SMOLVM_SIM_READY_MS")
            .stdin(Stdio::null());
        c
    }

    /// Run bottle; the wall time and its output. Panics unless it exits 0.
    fn bottle(&self, args: &[&str], extra: &[(&str, String)]) -> (Duration, Output) {
        let mut c = self.command(BOTTLE, args, &self.sim_home());
        c.envs(extra.iter().map(|(k, v)| (k, v)));
        let t = Instant::now();
        let out = c.output().expect("run bottle");
        let wall = t.elapsed();
        assert!(
            out.status.success(),
            "bottle {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (wall, out)
    }

    /// Every smolvm call bottle made since the last `clear`.
    fn calls(&self) -> Vec<Vec<String>> {
        self.home().calls_made().expect("call log")
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(self.home().calls());
    }

    /// Run `calls` back to back against a fresh simulator home, as a
    /// hand-written script would: the sum of what smolvm itself costs.
    /// A copy archive bottle has since removed is rebuilt from `spec`.
    fn replay(&self, calls: &[Vec<String>], spec: Option<&Path>, run: usize) -> Duration {
        let home = self.guests.path().join(format!("replay-{run}"));
        let mut total = Duration::ZERO;
        for argv in calls {
            if let [_, m, cp, src, _] = argv.as_slice()
                && m == "machine"
                && cp == "cp"
                && !Path::new(src).exists()
            {
                rebuild_archive(Path::new(src), spec.expect("the spec of a copy"));
            }
            let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
            let mut c = self.command(SIM, &args, &home);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            let t = Instant::now();
            c.status().expect("run smolvm-sim");
            total += t.elapsed();
        }
        total
    }

    /// A spec file; `files` is the directory copied to `/workspace`.
    fn spec(&self, name: &str, files: Option<&str>, per_file: bool) -> PathBuf {
        let mut text = format!("name = \"{name}\"\n");
        if per_file {
            text.push_str("copy_via = \"cp\"\n");
        }
        text.push_str(
            "\n[image]\nref = \"agent:1\"\n\n[network]\nallow_cidrs = [\"192.168.50.2/32\"]\n\n\
             [env]\nHTTPS_PROXY = \"http://192.168.50.2:8888\"\n",
        );
        if let Some(dir) = files {
            let src = self.path(dir);
            writeln!(
                text,
                "\n[[copy]]\nsrc = \"{}\"\ndest = \"/workspace\"",
                src.display()
            )
            .expect("write");
        }
        text.push_str("\n[[exec]]\nrun = [\"sh\", \"-c\", \"echo provisioned > /provisioned\"]\n");
        let path = self.path(&format!("{name}.toml"));
        std::fs::write(&path, text).expect("write spec");
        path
    }

    /// A spec with no copies whose one exec step runs `run` (a TOML array).
    fn spec_running(&self, name: &str, run: &str) -> PathBuf {
        let text =
            format!("name = \"{name}\"\n[image]\nref = \"agent:1\"\n[[exec]]\nrun = {run}\n");
        let path = self.path(&format!("{name}.toml"));
        std::fs::write(&path, text).expect("write spec");
        path
    }

    /// Run bottle (it must exit 0), reading its `VmHWM` until it exits:
    /// its peak resident memory in KiB, and the wall time.
    fn bottle_peak_rss(&self, args: &[&str]) -> (u64, Duration) {
        let mut c = self.command(BOTTLE, args, &self.sim_home());
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        let mut child = c.spawn().expect("run bottle");
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak = 0;
        loop {
            let status = std::fs::read_to_string(&status_file).unwrap_or_default();
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
            if let Some(exit) = child.try_wait().expect("try_wait") {
                assert!(exit.success(), "bottle {args:?} failed");
                return (peak, t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A tree of `n` files of a few hundred bytes, 25 per directory.
    fn tree(&self, dir: &str, n: usize) {
        for i in 0..n {
            let p = self.path(&format!("{dir}/d{:02}/f{i:03}.txt", i / 25));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, format!("file {i}\n").repeat(40)).expect("write");
        }
    }

    /// A workspace of `dirs` directories of `per_dir` files of `size`
    /// pseudo-random (incompressible, deterministic) bytes each, every
    /// file last modified an hour ago, as in a workspace at rest.
    fn workspace(&self, dir: &str, dirs: usize, per_dir: usize, size: usize) {
        let old = SystemTime::now() - Duration::from_secs(3600);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = vec![0u8; size];
        for d in 0..dirs {
            let sub = self.path(&format!("{dir}/d{d:02}"));
            std::fs::create_dir_all(&sub).expect("mkdir");
            for f in 0..per_dir {
                for chunk in buf.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
                }
                let mut file =
                    std::fs::File::create(sub.join(format!("f{f:02}.bin"))).expect("create");
                file.write_all(&buf).expect("write");
                file.set_modified(old).expect("set mtime");
            }
        }
    }

    /// Append 7 bytes (`edit N\n`) to file `n` of a `workspace` `dir`,
    /// a different file for each `n` below the workspace's file count.
    fn edit(&self, dir: &str, n: usize) {
        let p = self.path(&format!("{dir}/d{:02}/f{:02}.bin", n % 40, (n * 7) % 50));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open for edit");
        f.write_all(format!("edit {}\n", n % 10).as_bytes())
            .expect("edit");
    }

    /// The machine's creation time and the bytes `cp` has uploaded into it.
    fn received(&self, name: &str) -> (u64, u64) {
        let w = self.home().read().expect("world");
        w.machines
            .get(name)
            .map_or((0, 0), |m| (m.created_at, m.received_bytes))
    }
}

/// Bytes uploaded between two `Lab::received` readings: all of a machine
/// created in between (a replacement), else the difference.
fn sent(before: (u64, u64), after: (u64, u64)) -> u64 {
    if before.0 == after.0 {
        after.1 - before.1
    } else {
        after.1
    }
}

fn is_copy(c: &str) -> bool {
    c.starts_with("machine cp") || c.contains("tar -x")
}

/// Calls grouped by kind (`--version`, `machine status`, ...): `N x KIND`.
fn kinds(calls: &[Vec<String>]) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for c in calls {
        let kind = match c.get(1).map(String::as_str) {
            Some("machine") => format!("machine {}", c.get(2).map_or("", String::as_str)),
            Some(first) => first.to_string(),
            None => String::new(),
        };
        match seen.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => seen.push((kind, 1)),
        }
    }
    let shown: Vec<String> = seen.iter().map(|(k, n)| format!("{n} x {k}")).collect();
    shown.join(", ")
}

fn rebuild_archive(path: &Path, spec: &Path) {
    let desired = bottle::spec::load(spec)
        .and_then(bottle::spec::resolve)
        .expect("spec");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("archive"));
    for f in &desired.files {
        b.append_path_with_name(f.host.as_path(), f.guest.as_str().trim_start_matches('/'))
            .expect("append");
    }
    b.into_inner().expect("finish archive");
}

/// The milliseconds bottle reports for steps whose description starts
/// with one of `kinds` (e.g. `upload`, `copy`).
fn step_ms(stderr: &[u8], kinds: &[&str]) -> f64 {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(": ")?;
            kinds.iter().find(|k| rest.starts_with(*k))?;
            let inner = rest.rsplit_once(": ok (")?.1.strip_suffix(" ms)")?;
            inner.parse::<f64>().ok()
        })
        .sum()
}

fn count(calls: &[Vec<String>], pred: impl Fn(&str) -> bool) -> usize {
    calls.iter().filter(|c| pred(&c[1..].join(" "))).count()
}

struct Row {
    metric: &'static str,
    measured: String,
    goal: &'static str,
    met: Option<bool>,
}

const TRIALS: usize = 5;

fn main() {
    let latency = env_ms("BENCH_LATENCY_MS", 20);
    let boot = env_ms("BENCH_BOOT_MS", 250);
    println!(
        "bottle speed benchmark: smolvm-sim with {latency} ms per call, {boot} ms per start, \
         guests under {}; medians of {TRIALS} runs unless said",
        sim_dir().display()
    );
    let mut rows = Vec::new();

    // Copy: 500 files vs 1, batched vs one cp per file.
    let lab = Lab::new(latency, boot);
    lab.tree("ws500", 500);
    lab.tree("ws1", 1);
    let warm = lab.spec("warm", None, false);
    lab.bottle(&["apply", warm.to_str().expect("utf-8")], &[]);
    let (mut one, mut many, mut copy_steps) = (Vec::new(), Vec::new(), Vec::new());
    let mut copy_calls = 0;
    for i in 0..TRIALS {
        let s1 = lab.spec(&format!("one{i}"), Some("ws1"), false);
        one.push(lab.bottle(&["apply", s1.to_str().expect("utf-8")], &[]).0);
        let s500 = lab.spec(&format!("many{i}"), Some("ws500"), false);
        lab.clear();
        let (wall, out) = lab.bottle(&["apply", s500.to_str().expect("utf-8")], &[]);
        many.push(wall);
        copy_steps.push(step_ms(&out.stderr, &["upload", "unpack"]));
        let calls = lab.calls();
        copy_calls = count(&calls, |c| {
            c.starts_with("machine cp") || c.contains("tar -x")
        });
    }
    let (one, many) = (median(one), median(many));
    let ratio = ms(many) / ms(one);
    rows.push(Row {
        metric: "copy 500 files vs 1 file",
        measured: format!(
            "{copy_calls} copy calls; {:.0} ms vs {:.0} ms = {ratio:.2}x",
            ms(many),
            ms(one)
        ),
        goal: "<= 3 copy calls; <= 1.5x",
        met: Some(copy_calls <= 3 && ratio <= 1.5),
    });
    let per_file = lab.spec("perfile", Some("ws500"), true);
    lab.clear();
    let (slow, out) = lab.bottle(&["apply", per_file.to_str().expect("utf-8")], &[]);
    let cps = count(&lab.calls(), |c| c.starts_with("machine cp"));
    let per_file_steps = step_ms(&out.stderr, &["copy"]);
    copy_steps.sort_by(f64::total_cmp);
    let batched_steps = copy_steps[copy_steps.len() / 2];
    rows.push(Row {
        metric: "batched vs per-file copy, 500 files",
        measured: format!(
            "apply {:.0} ms vs {:.0} ms = {:.1}x; copy steps {batched_steps:.0} ms vs \
             {per_file_steps:.0} ms ({cps} cp calls) = {:.0}x (one run)",
            ms(many),
            ms(slow),
            ms(slow) / ms(many),
            per_file_steps / batched_steps.max(1.0)
        ),
        goal: "report (expect >= 20x)",
        met: Some(ms(slow) / ms(many) >= 20.0),
    });
    drop(lab);

    rows.push(ready_lag(latency, boot));
    rows.push(converged(latency, boot));
    rows.push(fleet(latency, boot));
    rows.push(overhead(latency, boot));
    rows.push(memory(latency, boot));
    rows.extend(converged_fleet(latency, boot));
    rows.extend(workspace_edit(latency, boot));

    println!();
    println!("| metric | measured | goal | met |");
    println!("|---|---|---|---|");
    for r in &rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!("| {} | {} | {} | {met} |", r.metric, r.measured, r.goal);
    }
}

/// How long after the guest answers bottle's probe sees it, with the guest
/// becoming ready at different moments after `start` returns.
fn ready_lag(latency: u64, boot: u64) -> Row {
    let lab = Lab::new(latency, boot);
    let warm = lab.spec("warm", None, false);
    lab.bottle(&["apply", warm.to_str().expect("utf-8")], &[]);
    // One probe round-trip, measured directly.
    let mut rtt = Vec::new();
    for _ in 0..TRIALS * 2 {
        let mut c = lab.command(
            SIM,
            &["machine", "exec", "--name", "warm", "--", "true"],
            &lab.sim_home(),
        );
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        c.status().expect("probe");
        rtt.push(t.elapsed());
    }
    let rtt = median(rtt);
    let mut lags = Vec::new();
    for (i, after) in (0..12u64).map(|k| k * 23).enumerate() {
        let spec = lab.spec(&format!("boot{i}"), None, false);
        lab.bottle(
            &["apply", spec.to_str().expect("utf-8")],
            &[("SMOLVM_SIM_READY_MS", after.to_string())],
        );
        let m = &lab.home().read().expect("world").machines[&format!("boot{i}")];
        let (ready, seen) = (
            m.ready_at_us.expect("ready"),
            m.answered_at_us.expect("seen"),
        );
        lags.push(Duration::from_micros(seen.saturating_sub(ready)));
    }
    let worst = *lags.iter().max().expect("lags");
    let bound = rtt + Duration::from_millis(10);
    Row {
        metric: "ready-detection lag after the guest is ready",
        measured: format!(
            "worst {:.0} ms, median {:.0} ms over 12 boots (ready 0-253 ms after start); \
             probe round-trip {:.0} ms",
            ms(worst),
            ms(median(lags)),
            ms(rtt)
        ),
        goal: "<= one probe round-trip + 10 ms",
        met: Some(worst <= bound),
    }
}

/// A re-apply of an unchanged, running machine vs its own calls alone.
fn converged(latency: u64, boot: u64) -> Row {
    let lab = Lab::new(latency, boot);
    lab.tree("ws", 20);
    let spec = lab.spec("agent", Some("ws"), false);
    let spec = spec.to_str().expect("utf-8");
    lab.bottle(&["apply", spec], &[]);
    let (mut bottle, mut replayed) = (Vec::new(), Vec::new());
    let mut calls = Vec::new();
    for i in 0..TRIALS {
        lab.clear();
        bottle.push(lab.bottle(&["apply", spec], &[]).0);
        calls = lab.calls();
        replayed.push(lab.replay(&calls, None, i));
    }
    let (bottle, replayed) = (median(bottle), median(replayed));
    let ratio = ms(bottle) / ms(replayed);
    let shown: Vec<String> = calls.iter().map(|c| c[1..].join(" ")).collect();
    Row {
        metric: "converged re-apply",
        measured: format!(
            "{} calls ({}); {:.0} ms vs the same calls alone {:.0} ms = {ratio:.2}x",
            calls.len(),
            shown.join("; "),
            ms(bottle),
            ms(replayed)
        ),
        goal: "1 call + the version check; <= 1.3x two calls",
        met: Some(calls.len() == 2 && ratio <= 1.3),
    }
}

/// 32 specs with `-j 8` vs four rounds of one apply.
fn fleet(latency: u64, boot: u64) -> Row {
    let lab = Lab::new(latency, boot);
    lab.tree("ws", 5);
    let warm = lab.spec("warm", None, false);
    lab.bottle(&["apply", warm.to_str().expect("utf-8")], &[]);
    let single: Vec<Duration> = (0..TRIALS)
        .map(|i| {
            let s = lab.spec(&format!("single{i}"), Some("ws"), false);
            lab.bottle(&["apply", s.to_str().expect("utf-8")], &[]).0
        })
        .collect();
    let single = median(single);
    let specs: Vec<String> = (0..32)
        .map(|i| {
            lab.spec(&format!("fleet{i:02}"), Some("ws"), false)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["apply", "-j", "8"];
    args.extend(specs.iter().map(String::as_str));
    let (wall, _) = lab.bottle(&args, &[]);
    let ideal = single * 4;
    let ratio = ms(wall) / ms(ideal);
    Row {
        metric: "32 specs, -j 8 vs ceil(32/8) x one apply",
        measured: format!(
            "{:.0} ms vs 4 x {:.0} ms = {ratio:.2}x (one run)",
            ms(wall),
            ms(single)
        ),
        goal: "<= 1.25x",
        met: Some(ratio <= 1.25),
    }
}

/// A first apply (pack included) vs the same smolvm calls run back to back.
fn overhead(latency: u64, boot: u64) -> Row {
    let (mut bottle, mut replayed) = (Vec::new(), Vec::new());
    let mut n = 0;
    for i in 0..TRIALS {
        let lab = Lab::new(latency, boot);
        lab.tree("ws", 20);
        let spec = lab.spec("agent", Some("ws"), false);
        bottle.push(lab.bottle(&["apply", spec.to_str().expect("utf-8")], &[]).0);
        let calls = lab.calls();
        n = calls.len();
        replayed.push(lab.replay(&calls, Some(&spec), i));
    }
    let (bottle, replayed) = (median(bottle), median(replayed));
    let over = ms(bottle) - ms(replayed);
    let limit = ms(replayed) * 1.05 + 20.0;
    Row {
        metric: "apply overhead vs the sum of smolvm latencies",
        measured: format!(
            "{:.0} ms vs its {n} calls alone {:.0} ms = {:.3}x, +{over:.0} ms",
            ms(bottle),
            ms(replayed),
            ms(bottle) / ms(replayed)
        ),
        goal: "<= 1.05x + 20 ms",
        met: Some(ms(bottle) <= limit),
    }
}

/// bottle's peak resident memory applying a spec whose exec step prints
/// 200 MB, vs the same apply of a step that prints nothing.
fn memory(latency: u64, boot: u64) -> Row {
    let lab = Lab::new(latency, boot);
    let quiet = lab.spec_running("quiet", r#"["true"]"#);
    let loud = lab.spec_running("loud", r#"["head", "-c", "200000000", "/dev/zero"]"#);
    let (base, _) = lab.bottle_peak_rss(&["apply", quiet.to_str().expect("utf-8")]);
    let (peak, wall) = lab.bottle_peak_rss(&["apply", loud.to_str().expect("utf-8")]);
    let mib = |kib: u64| kib as f64 / 1024.0;
    Row {
        metric: "peak RSS of bottle, exec step printing 200 MB",
        measured: format!(
            "{:.1} MiB vs {:.1} MiB for a silent step = {:.2}x; apply took {:.0} ms (one run, VmHWM)",
            mib(peak),
            mib(base),
            mib(peak) / mib(base).max(0.1),
            ms(wall)
        ),
        goal: "<= 64 MiB",
        met: Some(peak <= 64 * 1024),
    }
}

/// 32 converged specs re-applied in one run vs the same calls alone, and
/// `plan` of the same 32.
fn converged_fleet(latency: u64, boot: u64) -> [Row; 2] {
    let lab = Lab::new(latency, boot);
    lab.tree("ws", 5);
    let specs: Vec<String> = (1..=32)
        .map(|i| {
            lab.spec(&format!("s{i}"), Some("ws"), false)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let with = |first: &[&'static str]| {
        let mut args: Vec<&str> = first.to_vec();
        args.extend(specs.iter().map(String::as_str));
        args
    };
    lab.bottle(&with(&["apply", "-j", "8"]), &[]);
    let again = with(&["apply"]);
    let (mut bottle, mut replayed) = (Vec::new(), Vec::new());
    let mut calls = Vec::new();
    for i in 0..TRIALS {
        lab.clear();
        bottle.push(lab.bottle(&again, &[]).0);
        calls = lab.calls();
        replayed.push(lab.replay(&calls, None, i));
    }
    let (bottle, replayed) = (median(bottle), median(replayed));
    let ratio = ms(bottle) / ms(replayed);
    let reapply = Row {
        metric: "converged re-apply, 32 specs",
        measured: format!(
            "{} calls ({}); {:.0} ms vs the same calls alone {:.0} ms = {ratio:.2}x",
            calls.len(),
            kinds(&calls),
            ms(bottle),
            ms(replayed)
        ),
        goal: "2 calls; <= 1.3x two calls",
        met: Some(calls.len() == 2 && ratio <= 1.3),
    };
    lab.clear();
    let (wall, _) = lab.bottle(&with(&["plan"]), &[]);
    let calls = lab.calls();
    let plan = Row {
        metric: "`plan`, 32 specs",
        measured: format!(
            "{} calls ({}); {:.0} ms (one run)",
            calls.len(),
            kinds(&calls),
            ms(wall)
        ),
        goal: "2 calls",
        met: Some(calls.len() == 2),
    };
    [reapply, plan]
}

/// One file edited (7 bytes appended) in a workspace of 2,000 files,
/// 50 MiB: the copy calls and bytes the update sends vs the full first
/// upload, its wall vs a no-op re-apply plus one call, and bottle's peak
/// memory doing it.
fn workspace_edit(latency: u64, boot: u64) -> [Row; 2] {
    const NAME: &str = "workspace";
    let lab = Lab::new(latency, boot);
    lab.workspace("ws2000", 40, 50, 50 * 1024 * 1024 / 2000);
    let spec = lab.spec(NAME, Some("ws2000"), false);
    let spec = spec.to_str().expect("utf-8");
    let before = lab.received(NAME);
    lab.bottle(&["apply", spec], &[]);
    let full = sent(before, lab.received(NAME));
    let noop = median(
        (0..TRIALS)
            .map(|_| lab.bottle(&["apply", spec], &[]).0)
            .collect(),
    );
    let version = [vec!["smolvm".to_string(), "--version".to_string()]];
    let one_call = median((0..TRIALS).map(|i| lab.replay(&version, None, i)).collect());
    let (mut walls, mut copies, mut bytes) = (Vec::new(), 0, 0);
    for i in 0..TRIALS {
        lab.edit("ws2000", i);
        let before = lab.received(NAME);
        lab.clear();
        walls.push(lab.bottle(&["apply", spec], &[]).0);
        copies = copies.max(count(&lab.calls(), is_copy));
        bytes = bytes.max(sent(before, lab.received(NAME)));
    }
    let wall = median(walls);
    let baseline = noop + one_call;
    let ratio = ms(wall) / ms(baseline);
    let pct = 100.0 * bytes as f64 / full.max(1) as f64;
    let update = Row {
        metric: "one edited file in a 2,000-file, 50 MB workspace",
        measured: format!(
            "{copies} copy calls; {bytes} bytes sent vs {full} for a full upload = {pct:.2}%; \
             {:.0} ms vs a no-op re-apply {:.0} ms + one call {:.0} ms = {ratio:.2}x \
             (worst calls and bytes of {TRIALS})",
            ms(wall),
            ms(noop),
            ms(one_call)
        ),
        goal: "<= 2 copy calls; <= 1% of a full upload; <= 1.2x",
        met: Some(copies <= 2 && pct <= 1.0 && ratio <= 1.2),
    };
    lab.edit("ws2000", TRIALS);
    let before = lab.received(NAME);
    let (peak, wall) = lab.bottle_peak_rss(&["apply", spec]);
    let bytes = sent(before, lab.received(NAME));
    let rss = Row {
        metric: "peak RSS of that update",
        measured: format!(
            "{:.1} MiB; apply took {:.0} ms, sent {bytes} bytes (one run, VmHWM)",
            peak as f64 / 1024.0,
            ms(wall)
        ),
        goal: "<= 64 MiB",
        met: Some(peak <= 64 * 1024),
    };
    [update, rss]
}
