//! `delete [-f] ID`: removes a stopped container's cgroup and state; with
//! --force a running one is killed first.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use crate::record::{self, Record, Status, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

/// Removes the container's cgroup (killing what it still holds) and its
/// state directory.
/// The poststop hooks run last; their failures are reported, not fatal
/// (the spec's rule).
pub fn remove(cli: &Cli, rec: &Record) -> Result<()> {
    let poststop = rec
        .spec(&cli.root)
        .ok()
        .and_then(|s| s.hooks().clone())
        .and_then(|h| h.poststop().clone())
        .unwrap_or_default();
    let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
    if rec.paused {
        // A frozen process cannot die: thaw it for the kill.
        let _ = cg.freeze(false);
    }
    cg.remove()?;
    std::fs::remove_dir_all(record::dir(&cli.root, &rec.id))?;
    if let Err(e) = crate::hooks::run_all("poststop", &poststop, &rec.hook_state("stopped")) {
        eprintln!("berth-runtime: warning: {e:#}");
    }
    Ok(())
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let rec = match Record::load(&cli.root, &a.id) {
        Ok(r) => r,
        // As runc: deleting what is not there is an error, unless forced.
        Err(_) if a.force => return Ok(()),
        Err(e) => return Err(e),
    };
    let status = rec.status(&cli.root);
    if !status.can_delete() {
        // As runc: a created container (its program never ran) goes
        // without --force.
        if !a.force && status != Status::Created {
            bail!(
                "cannot delete container {} that is not stopped: {}",
                rec.id,
                status.as_str()
            );
        }
        if rec.paused {
            let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
            let _ = cg.freeze(false);
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while rec.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    remove(cli, &rec)
}
