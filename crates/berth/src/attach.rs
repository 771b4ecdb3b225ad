//! Running a container in the foreground: its terminal wired to ours, and
//! signals sent to `berth` passed on to the container.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::{Context, Result};
use berth_engine::runtime::{set_winsize, ExitStatus};
use berth_engine::Running;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Signals passed on to the container, as docker's --sig-proxy does.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
];

/// Blocks the signals `berth run` handles, so none is lost between now and the
/// moment the loop reads them. The container's init unblocks them for itself.
pub fn block_signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .context("block signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("signalfd")
}

/// Puts our terminal in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enable(fd: BorrowedFd<'_>) -> Result<RawMode> {
        let saved = tcgetattr(fd).context("read terminal settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).context("set terminal raw")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Our terminal's size (rows, columns), if stdin or stdout is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        let mut ws: libc::winsize = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

fn write_all_fd(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Runs until the container's init exits: forwards signals, and with a
/// terminal copies our stdin to it and its output to our stdout.
pub fn supervise(
    running: &mut Running,
    sigfd: &mut SignalFd,
    interactive: bool,
) -> Result<ExitStatus> {
    let master = running.container.take_pty_master();
    let stdin = std::io::stdin();
    let mut stdin_open = interactive && master.is_some();
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let mut exited = None;
    loop {
        if exited.is_none() {
            exited = running.container.try_wait()?;
        }
        if let Some(status) = exited {
            if let Some(m) = &master {
                // Drain what the container wrote before it exited.
                let _ = nix::fcntl::fcntl(
                    m.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                loop {
                    match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                        Ok(n) if n > 0 => write_all_fd(std::io::stdout().as_fd(), &buf[..n]),
                        Err(Errno::EINTR) => continue,
                        _ => break,
                    }
                }
            }
            return Ok(status);
        }
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let stdin_idx = stdin_open.then(|| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let master_idx = match (&master, master_open) {
            (Some(m), true) => {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents()).is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (sig_ready, stdin_ready, master_ready) =
            (ready(Some(0)), ready(stdin_idx), ready(master_idx));
        drop(fds);
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let (Some(m), Some((rows, cols))) = (&master, terminal_size()) {
                            let _ = set_winsize(m.as_fd(), rows, cols);
                        }
                    }
                    other => running.container.signal(other)?,
                }
                // The fd is blocking: read only what poll reported, then loop.
                break;
            }
        }
        if stdin_ready {
            match nix::unistd::read(libc::STDIN_FILENO, &mut buf) {
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = &master {
                        write_all_fd(m.as_fd(), &buf[..n]);
                    }
                }
            }
        }
        if master_ready {
            if let Some(m) = &master {
                match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                    // EIO: every slave descriptor is closed.
                    _ => master_open = false,
                }
            }
        }
    }
}
