//! The terminal of a container with `process.terminal`: its master side
//! goes to the caller's `--console-socket` (runc's protocol: one message
//! carrying the descriptor over SCM_RIGHTS), or, for a foreground `run` or
//! `exec` without a socket, is copied to and from this process's stdio.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Sends `master` to the unix socket at `socket`, as runc does: the
/// message's bytes are the terminal's name, its one descriptor the master.
pub fn send(socket: &Path, master: &OwnedFd) -> Result<()> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connect to console socket {}", socket.display()))?;
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .with_context(|| format!("send the terminal to {}", socket.display()))?;
    Ok(())
}

/// Puts this process's stdin in raw mode while it lives, if it is a terminal.
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn new() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(old) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = old.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ =
            nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode(Some(old))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                old,
            );
        }
    }
}

/// The size of this process's terminal (rows, columns), if stdin is one.
pub fn own_size() -> Option<(u16, u16)> {
    let mut ws = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize, which lives on our stack.
    let r = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Copies stdin to the terminal and the terminal to stdout until the
/// terminal closes (its last slave is gone: the container exited) or
/// `done` says so. The container's terminal follows the size of ours.
pub fn proxy(master: &OwnedFd, done: &dyn Fn() -> bool) {
    let _raw = RawMode::new();
    let mut size = None;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let now = own_size();
        if now.is_some() && now != size {
            size = now;
            if let Some((rows, cols)) = now {
                let _ = berth_runtime::set_winsize(master, rows, cols);
            }
        }
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::from(100u8));
        let m = fds[0].revents().unwrap_or(PollFlags::empty());
        let i = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if m.contains(PollFlags::POLLIN) {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = nix::unistd::write(stdout.as_fd(), &buf[..n]);
                }
                _ => return,
            }
        } else if m.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            return;
        }
        if i.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = nix::unistd::write(master.as_fd(), &buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
        if done() {
            return;
        }
    }
}

/// For a terminal this process copies (no console socket): the process
/// starts with the size of this process's terminal, before the proxy runs.
pub fn size_from_own(process: &mut berth_runtime::oci_spec::runtime::Process) {
    if let Some((rows, cols)) = own_size() {
        let size = berth_runtime::oci_spec::runtime::BoxBuilder::default()
            .height(u64::from(rows))
            .width(u64::from(cols))
            .build();
        if let Ok(b) = size {
            process.set_console_size(Some(b));
        }
    }
}
