//! The `bottle render` command: reads and resolves the specs as `apply`
//! does, renders each, and prints the manifests on stdout (or writes one
//! file per spec with `-o DIR`) and what the user must do by hand on
//! stderr. All or nothing: when any spec cannot be rendered, nothing is
//! printed or written and the exit code is the worst one (a refused spec
//! is 2, as every invalid spec).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::cli::{self, Exit, term};
use crate::spec::Desired;

use super::RenderError;
use super::k8s::{self, Flavor, Options, Rendered, SecretValues};

/// What to render for.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// Kubernetes manifests that run each spec's machine on a cluster whose
    /// nodes have smolvm's RuntimeClass (`... | kubectl apply -f -`).
    K8s(K8sArgs),
}

/// `bottle render k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// The spec files; each becomes its own set of manifests.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    /// Write one file per spec, DIR/NAME.yaml, instead of printing.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The RuntimeClass that boots each pod as a smolvm microVM.
    #[arg(long, value_name = "NAME", default_value = "smolvm", value_parser = runtime_class)]
    pub runtime_class: String,
    /// Render a bare Pod, or an agent-sandbox Sandbox.
    #[arg(long, value_enum, default_value_t = Flavor::Pod)]
    pub flavor: Flavor,
    /// Render the Secret with the secret values (base64, not encrypted)
    /// instead of printing the command that creates it.
    #[arg(long)]
    pub include_secret_values: bool,
}

fn runtime_class(s: &str) -> Result<String, String> {
    match k8s::subdomain_problem(s) {
        None => Ok(s.to_string()),
        Some(why) => Err(format!(
            "a RuntimeClass name is a DNS-1123 subdomain: it {why}"
        )),
    }
}

impl K8sArgs {
    fn options(&self) -> Options {
        Options {
            flavor: self.flavor,
            runtime_class: self.runtime_class.clone(),
            secret_values: match self.include_secret_values {
                true => SecretValues::Included,
                false => SecretValues::Referenced,
            },
        }
    }
}

/// Run `bottle render`; returns the exit code.
pub fn run(target: &Target) -> Exit {
    match target {
        Target::K8s(args) => k8s(args),
    }
}

/// One spec rendered: its manifests and the text that carries them.
struct Output {
    rendered: Rendered,
    text: String,
}

fn k8s(args: &K8sArgs) -> Exit {
    let desired = match cli::load_all(&args.specs, None) {
        Ok(d) => d,
        Err(exit) => return exit,
    };
    let opts = args.options();
    let mut outputs = Vec::new();
    let mut worst = Exit::Ok;
    for d in &desired {
        match output(d, &opts) {
            Ok(o) => outputs.push(o),
            Err(e) => worst = worst.max(cli::report(e.into(), &desired)),
        }
    }
    if worst != Exit::Ok {
        return worst;
    }
    let written = match &args.output {
        None => {
            term::out(&stream(&outputs));
            Ok(())
        }
        Some(dir) => write_all(dir, &outputs),
    };
    if let Err(e) = written {
        return cli::report(e.into(), &desired);
    }
    for note in outputs.iter().flat_map(|o| &o.rendered.notes) {
        term::err(&format!("{note}\n"));
    }
    Exit::Ok
}

fn output(d: &Desired, opts: &Options) -> Result<Output, RenderError> {
    let rendered = k8s::render(d, opts)?;
    let header = format!(
        "# {}: `bottle render k8s {}`\n",
        d.spec.name,
        d.spec.file.display()
    );
    let text = header + &rendered.yaml()?;
    Ok(Output { rendered, text })
}

/// Every spec's documents as one YAML stream.
fn stream(outputs: &[Output]) -> String {
    let texts: Vec<&str> = outputs.iter().map(|o| o.text.as_str()).collect();
    texts.join("---\n")
}

/// Write `DIR/NAME.yaml` for every output, each atomically; a file holding
/// secret values is readable by its owner only.
fn write_all(dir: &Path, outputs: &[Output]) -> Result<(), RenderError> {
    fs::create_dir_all(dir).map_err(|source| RenderError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for o in outputs {
        let path = dir.join(format!("{}.yaml", o.rendered.name));
        let mode = match o.rendered.holds_secret_values() {
            true => 0o600,
            false => 0o644,
        };
        write_file(&path, &o.text, mode).map_err(|source| RenderError::Write {
            path: path.clone(),
            source,
        })?;
        term::err(&format!("{}: wrote {}\n", o.rendered.name, path.display()));
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".render-")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
