//! `start`: opens the start fifo, so the created container's init goes on
//! to execute its program.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::record::{self, Record, Status};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn start(cli: &Cli, id: &str) -> Result<()> {
    let rec = Record::load(&cli.root, id)?;
    let status = rec.status(&cli.root);
    if !status.can_start() {
        match status {
            Status::Stopped => bail!("cannot start a container that has stopped"),
            _ => bail!("cannot start an already running container"),
        }
    }
    let spec = rec.spec(&cli.root)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    let start_container = hooks.start_container().clone().unwrap_or_default();
    if !start_container.is_empty() {
        let target = crate::exec::Target::of(&rec, &spec)?;
        crate::hooks::run_in_container(
            "startContainer",
            &start_container,
            &rec.hook_state("created"),
            &target,
            false,
        )?;
    }
    let path = record::fifo(&cli.root, id);
    // Opened without blocking: if the init died meanwhile there is no
    // writer, and waiting for one would hang.
    let fd = open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: `open` returned a new descriptor that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(100u8));
        let mut b = [0u8; 1];
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut b) {
            Ok(1) => break,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                if !rec.alive() {
                    bail!("the container's init exited before it started");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => bail!("read {}: {e}", path.display()),
        }
    }
    std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    // The program runs: a failed poststart hook is reported, not undone.
    let poststart = hooks.poststart().clone().unwrap_or_default();
    if let Err(e) = crate::hooks::run_all("poststart", &poststart, &rec.hook_state("running")) {
        eprintln!("berth-runtime: warning: {e:#}");
    }
    Ok(())
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    start(cli, &a.id)
}
