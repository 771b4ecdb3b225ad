//! `kill ID [SIGNAL]`: a signal to the init, or with --all to every
//! process of the container's cgroup.

use std::str::FromStr;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::record::{Record, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the signal to every process of the container
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// A name (TERM, SIGKILL) or a number; TERM if none
    pub signal: Option<String>,
}

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow::anyhow!("invalid signal: {s}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| anyhow::anyhow!("invalid signal: {s}"))
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let rec = Record::load(&cli.root, &a.id)?;
    let sig = parse_signal(a.signal.as_deref().unwrap_or("TERM"))?;
    if !rec.status(&cli.root).can_kill() {
        bail!("container not running");
    }
    if a.all {
        let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
        for pid in cg.pids()? {
            let _ = nix::sys::signal::kill(pid, sig);
        }
        return Ok(());
    }
    nix::sys::signal::kill(Pid::from_raw(rec.pid), sig)?;
    Ok(())
}
