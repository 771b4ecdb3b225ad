//! A foreground `run` or `exec` passes the signals it gets (Ctrl-C's
//! SIGINT, a supervisor's SIGTERM, ...) to the container's process, as runc
//! does, and returns when that process exits.

use nix::sys::signal::{SigSet, Signal};

use anyhow::Result;
use berth_runtime::ExitStatus;

const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
];

/// Blocks the signals to pass on (and SIGCHLD) from now on: one that comes
/// while the container is made waits, and goes to it once it runs. Called
/// first thing; the container's process starts with an empty mask.
pub fn block() -> Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

/// Waits for the process `try_wait` reaps, passing the signals of `set`
/// (from [`block`]) on through `send`. They are taken with sigwait, so none
/// is lost between two checks; an exit before the wait is seen by the first
/// `try_wait`.
pub fn wait_forwarding(
    set: &SigSet,
    try_wait: impl Fn() -> Result<Option<ExitStatus>>,
    send: impl Fn(Signal),
) -> Result<ExitStatus> {
    loop {
        if let Some(st) = try_wait()? {
            return Ok(st);
        }
        match set.wait()? {
            Signal::SIGCHLD => {}
            s => send(s),
        }
    }
}
