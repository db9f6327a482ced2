//! The command line, as clap reads it: flags, subcommands, defaults and
//! help text. Must not act on them; `cli` does.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Launch sandboxed smolvm microVMs from declarative TOML specs.
#[derive(Debug, Parser)]
#[command(name = "bottle", version, about, max_term_width = 100)]
pub struct Args {
    /// The smolvm binary (default: `smolvm` on PATH).
    #[arg(long, global = true, env = "BOTTLE_SMOLVM", value_name = "PATH")]
    pub smolvm: Option<PathBuf>,
    /// Use the bundled simulator `smolvm-sim` instead of smolvm: no VM
    /// runs and egress is not enforced. For trying specs without smolvm.
    #[arg(long, global = true)]
    pub sim: bool,
    /// Where bottle keeps its machine records (default: $XDG_STATE_HOME/bottle).
    #[arg(long, global = true, env = "BOTTLE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where bottle caches packs (default: $XDG_CACHE_HOME/bottle).
    #[arg(long, global = true, env = "BOTTLE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Kill any single smolvm call that runs longer than this (e.g. `90s`),
    /// then tear down as for any failure. Default: a limit per kind of call.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub step_timeout: Option<Duration>,
    /// Wait for another bottle working on the same machine: `--wait-lock`
    /// (up to 10m) or `--wait-lock=DURATION`; without it, bottle fails at
    /// once (exit 3).
    #[arg(long, global = true, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "10m", value_parser = parse_duration)]
    pub wait_lock: Option<Duration>,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::spec::values::duration(s).map_err(|e| e.to_string())
}

/// What the user allows an apply to do to a machine it keeps or replaces.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct AllowArgs {
    /// Replace a machine whose spec changed in a field that forces it
    /// (image, network, env), or that another spec owns, without asking.
    /// Its disk, and all work in it, is lost.
    #[arg(long)]
    pub replace: bool,
    /// Take over a machine that another spec file owns (as when the
    /// project moved), then apply this spec to it as a re-apply.
    #[arg(long)]
    pub adopt: bool,
    /// Run every exec step again, even those that already ran on the
    /// machine.
    #[arg(long)]
    pub rerun_exec: bool,
    /// Leave in the guest the copied files and links that the copies no
    /// longer make (removed from a source, or a removed [[copy]]), rather
    /// than remove them; bottle forgets them.
    #[arg(long)]
    pub no_prune: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring each spec's machine to the state its spec describes.
    Apply {
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
        /// Leave a new machine whose apply failed as it is, for inspection
        /// (an in-place update that fails always keeps its machine).
        #[arg(long)]
        keep_on_failure: bool,
        /// Create machines with an allow-list even where the installed
        /// smolvm cannot enforce it (egress is then unrestricted).
        #[arg(long)]
        allow_unenforced_egress: bool,
        /// Pack images again even if bottle's cache holds them.
        #[arg(long)]
        repack: bool,
        /// Apply up to N specs at once (each machine's lines are prefixed
        /// by its name; one spec's failure tears down only that spec).
        #[arg(short = 'j', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: u16,
        #[command(flatten)]
        allow: AllowArgs,
    },
    /// Show what `apply` would do and the exact smolvm calls; changes nothing.
    Plan {
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<PathBuf>,
        #[arg(long)]
        allow_unenforced_egress: bool,
        #[arg(long)]
        repack: bool,
        #[command(flatten)]
        allow: AllowArgs,
    },
    /// Stop a machine bottle owns, keeping its disk (`start` or `apply`
    /// starts it again).
    Stop {
        /// A spec file or a machine name.
        #[arg(value_name = "SPEC|NAME")]
        target: String,
    },
    /// Start a machine bottle owns that is stopped, and wait until it
    /// answers. Runs no exec step.
    Start {
        /// A spec file (its `ready.timeout` applies) or a machine name.
        #[arg(value_name = "SPEC|NAME")]
        target: String,
    },
    /// Stop and delete a machine bottle created, and forget it.
    Down {
        /// A spec file or a machine name.
        #[arg(value_name = "SPEC|NAME")]
        target: String,
    },
    /// Remove every machine bottle owns whose apply never completed, and
    /// the copy archives and secret temp files killed bottles left.
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Also remove cached packs that no machine bottle owns was created
        /// from.
        #[arg(long)]
        packs: bool,
    },
    /// Show a machine's state and bottle's record of it.
    Status {
        /// A spec file or a machine name.
        #[arg(value_name = "SPEC|NAME")]
        target: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print manifests that run each spec's machine elsewhere; runs nothing.
    #[command(subcommand)]
    Render(crate::render::Target),
}
