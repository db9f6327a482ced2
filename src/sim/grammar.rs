//! The smolvm command line, declared with clap derive as real smolvm
//! declares it, so usage errors are clap's own: exit 2, `error: unexpected
//! argument 'X' found`, `Usage: smolvm …`, `For more information, try
//! '--help'.`
//!
//! One generic tree, [`Smolvm`], is instantiated once per grammar era
//! (see [`Era`](super::release::Era)): the era decides how `create` and
//! `delete` take the name (positional before 1.0.2, `-n/--name` from
//! 1.0.2) and which later flags exist at all (`--secret-env`/`--secret-file`
//! from 1.0.0, `cp --mode/--uid/--gid` and `exec -d` from 1.9.0). A flag
//! an era lacks is not declared in its tree, so using it fails exactly as
//! any unknown argument does.
//!
//! Owns the flags, their short forms, their value parsers and the
//! conversion into [`Cmd`]. It must not import the wrapper's argv builders
//! or dialect table: bottle's argv is what this grammar checks.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::cmd::{self, Cmd, Owner, PackSource};
use super::release::{Era, Release};
use super::secrets::{self, SecretEnv, SecretFile, Secrets};
use super::values;

/// Marks `--version` output as the simulator's.
pub const VERSION_MARK: &str = "smolvm-sim";

/// Parse a whole argv (`argv[0]` is the program) as `release` would. An
/// error is clap's, to be rendered as is; `--help` and `--version` come
/// back as clap's display "errors" (exit 0, on stdout).
pub fn parse(release: &Release, argv: &[String]) -> Result<Cmd, clap::Error> {
    match release.era() {
        Era::Positional => parse_as::<V0_8>(release, argv),
        Era::PositionalSecrets => parse_as::<V1_0>(release, argv),
        Era::NameFlag => parse_as::<V1_0_2>(release, argv),
        Era::NameFlagV1_9 => parse_as::<V1_9>(release, argv),
    }
}

/// `smolvm X.Y.Z (smolvm-sim: simulated, no VM runs)`, less the program.
/// clap takes a `&'static str`: each distinct text is leaked once.
fn version_text(release: &Release) -> &'static str {
    static TEXTS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let text = format!("{} ({VERSION_MARK}: simulated, no VM runs)", release.0);
    let mut texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    match texts.get(text.as_str()) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(text.into_boxed_str());
            texts.insert(leaked);
            leaked
        }
    }
}

fn parse_as<G: Grammar>(release: &Release, argv: &[String]) -> Result<Cmd, clap::Error> {
    let mut command = Smolvm::<G>::command().version(version_text(release));
    let mut matches = command.try_get_matches_from_mut(argv)?;
    Smolvm::<G>::from_arg_matches_mut(&mut matches)
        .map(Cmd::from)
        .map_err(|e| e.format(&mut command))
}

/// The parts of the grammar that differ between eras.
pub trait Grammar {
    /// How `create` names the new machine.
    type CreateName: NameArg;
    /// How `delete` names the machine.
    type DeleteName: NameArg;
    /// `--secret-env`/`--secret-file` on `create` and `exec`.
    type Secrets: SecretArgs;
    /// `cp --mode/--uid/--gid`.
    type Owner: OwnerArgs;
    /// `exec -d/--detach`.
    type Detach: DetachArg;
}

/// 0.8.0 – 0.9.x.
pub struct V0_8;
/// 1.0.0 – 1.0.1.
pub struct V1_0;
/// 1.0.2 – 1.8.x.
pub struct V1_0_2;
/// 1.9.x.
pub struct V1_9;

impl Grammar for V0_8 {
    type CreateName = NewPositional;
    type DeleteName = Positional;
    type Secrets = Absent;
    type Owner = Absent;
    type Detach = Absent;
}

impl Grammar for V1_0 {
    type CreateName = NewPositional;
    type DeleteName = Positional;
    type Secrets = SecretFlags;
    type Owner = Absent;
    type Detach = Absent;
}

impl Grammar for V1_0_2 {
    type CreateName = NewFlag;
    type DeleteName = Flag;
    type Secrets = SecretFlags;
    type Owner = Absent;
    type Detach = Absent;
}

impl Grammar for V1_9 {
    type CreateName = NewFlag;
    type DeleteName = Flag;
    type Secrets = SecretFlags;
    type Owner = OwnerFlags;
    type Detach = DetachFlag;
}

/// A machine name argument.
pub trait NameArg: Args + FromArgMatches {
    fn into_name(self) -> String;
}

/// The secret-reference flags (or their absence).
pub trait SecretArgs: Args + FromArgMatches {
    fn into_secrets(self) -> Secrets;
}

/// The `cp` ownership flags (or their absence).
pub trait OwnerArgs: Args + FromArgMatches {
    fn into_owner(self) -> Owner;
}

/// The `exec` detach flag (or its absence).
pub trait DetachArg: Args + FromArgMatches {
    fn detached(&self) -> bool;
}

/// `NAME`, positional.
#[derive(Args)]
#[group(skip)]
pub struct Positional {
    #[arg(value_name = "NAME")]
    name: String,
}

/// `-n/--name NAME`.
#[derive(Args)]
#[group(skip)]
pub struct Flag {
    /// Machine name
    #[arg(short = 'n', long)]
    name: String,
}

/// `NAME`, positional, of a machine to create (smolvm's name rule).
#[derive(Args)]
#[group(skip)]
pub struct NewPositional {
    #[arg(value_name = "NAME", value_parser = values::machine_name)]
    name: String,
}

/// `-n/--name NAME` of a machine to create (smolvm's name rule).
#[derive(Args)]
#[group(skip)]
pub struct NewFlag {
    /// Machine name
    #[arg(short = 'n', long, value_parser = values::machine_name)]
    name: String,
}

impl NameArg for Positional {
    fn into_name(self) -> String {
        self.name
    }
}

impl NameArg for Flag {
    fn into_name(self) -> String {
        self.name
    }
}

impl NameArg for NewPositional {
    fn into_name(self) -> String {
        self.name
    }
}

impl NameArg for NewFlag {
    fn into_name(self) -> String {
        self.name
    }
}

/// Flags a release does not have: nothing is declared.
#[derive(Args)]
#[group(skip)]
pub struct Absent {}

impl SecretArgs for Absent {
    fn into_secrets(self) -> Secrets {
        Secrets::default()
    }
}

impl OwnerArgs for Absent {
    fn into_owner(self) -> Owner {
        Owner::default()
    }
}

impl DetachArg for Absent {
    fn detached(&self) -> bool {
        false
    }
}

/// `--secret-env GUEST_VAR=HOST_VAR`…, `--secret-file GUEST_VAR=/abs/path`…
#[derive(Args)]
#[group(skip)]
pub struct SecretFlags {
    /// Set GUEST_VAR from the host variable HOST_VAR
    #[arg(long = "secret-env", value_name = "GUEST_VAR=HOST_VAR", value_parser = secrets::parse_env)]
    secret_env: Vec<SecretEnv>,
    /// Set GUEST_VAR from the contents of a host file
    #[arg(long = "secret-file", value_name = "GUEST_VAR=/abs/path", value_parser = secrets::parse_file)]
    secret_file: Vec<SecretFile>,
}

impl SecretArgs for SecretFlags {
    fn into_secrets(self) -> Secrets {
        Secrets {
            env: self.secret_env,
            files: self.secret_file,
        }
    }
}

/// `--mode OCTAL`, `--uid N`, `--gid N` (uploads only).
#[derive(Args)]
#[group(skip)]
pub struct OwnerFlags {
    /// Permission bits of the uploaded file, in octal
    #[arg(long, value_name = "OCTAL", value_parser = values::octal_mode)]
    mode: Option<u32>,
    /// Owner of the uploaded file
    #[arg(long)]
    uid: Option<u32>,
    /// Group of the uploaded file
    #[arg(long)]
    gid: Option<u32>,
}

impl OwnerArgs for OwnerFlags {
    fn into_owner(self) -> Owner {
        Owner {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// `-d/--detach`.
#[derive(Args)]
#[group(skip)]
pub struct DetachFlag {
    /// Run the command in the background
    #[arg(short = 'd', long)]
    detach: bool,
}

impl DetachArg for DetachFlag {
    fn detached(&self) -> bool {
        self.detach
    }
}

/// The whole command line of one era.
#[derive(Parser)]
#[command(name = "smolvm", bin_name = "smolvm")]
pub struct Smolvm<G: Grammar> {
    #[command(subcommand)]
    command: Top<G>,
}

#[derive(Subcommand)]
enum Top<G: Grammar> {
    /// Package images and machines
    #[command(subcommand)]
    Pack(PackCmd),
    /// Manage machines
    #[command(subcommand)]
    Machine(MachineCmd<G>),
}

#[derive(Subcommand)]
enum PackCmd {
    /// Write a packed machine: OUT (a stub) and OUT.smolmachine
    Create(PackCreate),
}

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["image", "from_vm"])))]
struct PackCreate {
    /// OCI image to pack
    #[arg(short = 'I', long)]
    image: Option<String>,
    /// Stopped machine to pack
    #[arg(long, value_name = "VM")]
    from_vm: Option<String>,
    /// The executable stub to write
    #[arg(short = 'o', long)]
    output: String,
}

#[derive(Subcommand)]
enum MachineCmd<G: Grammar> {
    /// Create a machine
    Create(Create<G>),
    /// Start a machine
    Start(Flag),
    /// Stop a machine
    Stop(Flag),
    /// Delete a machine
    Delete(Delete<G>),
    /// Run a command in a running machine
    Exec(Exec<G>),
    /// Copy one file into or out of a running machine
    Cp(Cp<G>),
    /// Show one machine
    Status(Status),
    /// List machines
    #[command(alias = "list")]
    Ls(Ls),
}

#[derive(Args)]
struct Create<G: Grammar> {
    #[command(flatten)]
    name: G::CreateName,
    /// Create from a packed machine (OUT.smolmachine)
    #[arg(long, value_name = "PACK", conflicts_with = "image")]
    from: Option<String>,
    /// OCI image
    #[arg(long)]
    image: Option<String>,
    /// Enable networking
    #[arg(long)]
    net: bool,
    /// Allow egress to this CIDR (or IP)
    #[arg(long = "allow-cidr", value_name = "CIDR", value_parser = values::cidr)]
    allow_cidr: Vec<String>,
    /// Allow egress to this host, resolved now (implies --net)
    #[arg(long = "allow-host", value_name = "HOST", value_parser = values::allow_host)]
    allow_host: Vec<String>,
    /// Environment variable
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = values::env)]
    env: Vec<String>,
    #[command(flatten)]
    secrets: G::Secrets,
}

#[derive(Args)]
struct Delete<G: Grammar> {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    #[command(flatten)]
    name: G::DeleteName,
}

#[derive(Args)]
struct Exec<G: Grammar> {
    /// Machine name
    #[arg(long)]
    name: String,
    /// Environment variable
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = values::env)]
    env: Vec<String>,
    /// Working directory in the guest
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Kill the command after this long (exit 124)
    #[arg(long, value_parser = values::timeout)]
    timeout: Option<Duration>,
    /// Keep stdin open
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    tty: bool,
    /// Print output as it arrives
    #[arg(long)]
    stream: bool,
    #[command(flatten)]
    secrets: G::Secrets,
    #[command(flatten)]
    detach: G::Detach,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args)]
struct Cp<G: Grammar> {
    /// HOST_PATH or NAME:/guest/path
    #[arg(value_name = "SRC")]
    src: String,
    /// HOST_PATH or NAME:/guest/path
    #[arg(value_name = "DST")]
    dst: String,
    #[command(flatten)]
    owner: G::Owner,
}

#[derive(Args)]
struct Status {
    /// Machine name
    #[arg(short = 'n', long)]
    name: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct Ls {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

impl<G: Grammar> From<Smolvm<G>> for Cmd {
    fn from(s: Smolvm<G>) -> Self {
        match s.command {
            Top::Pack(PackCmd::Create(p)) => Cmd::Pack(p.into()),
            Top::Machine(m) => m.into(),
        }
    }
}

impl From<PackCreate> for cmd::Pack {
    fn from(p: PackCreate) -> Self {
        // clap requires exactly one of the two (the `source` group).
        let source = match (p.image, p.from_vm) {
            (Some(image), _) => PackSource::Image(image),
            (None, vm) => PackSource::Vm(vm.unwrap_or_default()),
        };
        cmd::Pack {
            source,
            out: p.output,
        }
    }
}

impl<G: Grammar> From<MachineCmd<G>> for Cmd {
    fn from(m: MachineCmd<G>) -> Self {
        match m {
            MachineCmd::Create(c) => Cmd::Create(c.into()),
            MachineCmd::Start(f) => Cmd::Start { name: f.name },
            MachineCmd::Stop(f) => Cmd::Stop { name: f.name },
            MachineCmd::Delete(d) => Cmd::Delete {
                name: d.name.into_name(),
                force: d.force,
            },
            MachineCmd::Exec(e) => Cmd::Exec(e.into()),
            MachineCmd::Cp(c) => Cmd::Cp(cmd::Cp {
                src: c.src,
                dst: c.dst,
                owner: c.owner.into_owner(),
            }),
            MachineCmd::Status(s) => Cmd::Status {
                name: s.name,
                json: s.json,
            },
            MachineCmd::Ls(l) => Cmd::Ls { json: l.json },
        }
    }
}

impl<G: Grammar> From<Create<G>> for cmd::Create {
    fn from(c: Create<G>) -> Self {
        cmd::Create {
            name: c.name.into_name(),
            from: c.from,
            image: c.image,
            net: c.net,
            cidrs: c.allow_cidr,
            hosts: c.allow_host,
            env: c.env,
            secrets: c.secrets.into_secrets(),
        }
    }
}

impl<G: Grammar> From<Exec<G>> for cmd::Exec {
    fn from(e: Exec<G>) -> Self {
        cmd::Exec {
            name: e.name,
            env: e.env,
            workdir: e.workdir,
            timeout: e.timeout,
            detach: e.detach.detached(),
            interactive: e.interactive,
            tty: e.tty,
            stream: e.stream,
            secrets: e.secrets.into_secrets(),
            cmd: e.command,
        }
    }
}
