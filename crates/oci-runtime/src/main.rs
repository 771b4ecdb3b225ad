//! `berth-runtime`: Berth's runtime (crates/runtime) behind runc's command
//! line, so that anything that drives runc (containerd's shim, podman,
//! dockerd's `--add-runtime`, a user with an OCI bundle) can drive it. One
//! file per verb; the container's state is a record under `--root`.

mod check;
mod console;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod hooks;
mod kill;
mod list;
mod pause;
mod ps;
mod record;
mod run;
mod signals;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// runc's global flags.
#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "Berth's container runtime, with runc's command line"
)]
pub struct Cli {
    /// Where container state is kept
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Where errors are logged (as well as stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The log's format: text or json
    #[arg(long, global = true, default_value = "text")]
    pub log_format: String,
    /// Log more
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd (refused: Berth writes cgroupfs)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode (true, false or auto; only rootful runs)
    #[arg(long, global = true)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its program waits for `start`
    Create(create::CreateArgs),
    /// Run the program of a created container
    Start(start::Args),
    /// Create and start a container, and wait for it (unless --detach)
    Run(run::RunArgs),
    /// Output the state of a container
    State(state::Args),
    /// Send a signal to a container's init (or all its processes)
    Kill(kill::Args),
    /// Delete a container's state (and, with --force, stop it first)
    Delete(delete::Args),
    /// List containers
    List(list::Args),
    /// Write a new config.json for a bundle
    Spec(spec::Args),
    /// Run another process in a running container
    Exec(exec::Args),
    /// The processes of a container
    Ps(ps::Args),
    /// Freeze every process of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(pause::Args),
    /// Change a running container's resource limits
    Update(update::Args),
    /// A container's resource use, as JSON events
    Events(events::Args),
    /// What this runtime implements, as JSON
    Features,
}

fn log_error(cli: &Cli, e: &anyhow::Error) {
    eprintln!("berth-runtime: {e:#}");
    let Some(path) = &cli.log else { return };
    let line = if cli.log_format == "json" {
        serde_json::json!({
            "level": "error",
            "msg": format!("{e:#}"),
            "time": chrono::Utc::now().to_rfc3339(),
        })
        .to_string()
    } else {
        format!("{} error: {e:#}", chrono::Utc::now().to_rfc3339())
    };
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn main() {
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<i32> {
        if cli.systemd_cgroup {
            anyhow::bail!(
                "--systemd-cgroup is not supported: berth-runtime manages cgroupfs itself"
            );
        }
        if cli.rootless.as_deref() == Some("true") {
            anyhow::bail!("rootless mode is not supported yet");
        }
        match &cli.command {
            Command::Create(a) => create::run(&cli, a).map(|_| 0),
            Command::Start(a) => start::run(&cli, a).map(|_| 0),
            Command::Run(a) => run::run(&cli, a),
            Command::State(a) => state::run(&cli, a).map(|_| 0),
            Command::Kill(a) => kill::run(&cli, a).map(|_| 0),
            Command::Delete(a) => delete::run(&cli, a).map(|_| 0),
            Command::List(a) => list::run(&cli, a).map(|_| 0),
            Command::Spec(a) => spec::run(a).map(|_| 0),
            Command::Exec(a) => exec::run(&cli, a),
            Command::Ps(a) => ps::run(&cli, a).map(|_| 0),
            Command::Pause(a) => pause::run(&cli, a, true).map(|_| 0),
            Command::Resume(a) => pause::run(&cli, a, false).map(|_| 0),
            Command::Update(a) => update::run(&cli, a).map(|_| 0),
            Command::Events(a) => events::run(&cli, a).map(|_| 0),
            Command::Features => features::run().map(|_| 0),
        }
    })();
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log_error(&cli, &e);
            std::process::exit(1);
        }
    }
}
