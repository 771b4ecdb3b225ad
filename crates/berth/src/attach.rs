//! Attaching to a container through its monitor: its output to ours, our
//! input and terminal size to it, and signals sent to `berth` passed on.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use anyhow::{Context, Result};
use berth_engine::monitor::proto;
use berth_engine::Engine;
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

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses docker's `--detach-keys` ("ctrl-p,ctrl-q", "ctrl-a,x").
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let b = c.as_bytes()[0].to_ascii_lowercase();
                let code = match b {
                    b'a'..=b'z' => b - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => anyhow::bail!("invalid detach key: {k:?}"),
                };
                out.push(code);
            }
            None if k.len() == 1 => out.push(k.as_bytes()[0]),
            _ => anyhow::bail!("invalid detach keys {s:?}: use e.g. ctrl-p,ctrl-q"),
        }
    }
    Ok(out)
}

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The monitor went away without an exit code.
    Closed,
    /// Without --sig-proxy, a signal that ends this client (the container
    /// goes on).
    Interrupted(Signal),
}

impl End {
    /// What a session that ended this way exits with, or None when the
    /// monitor hung up and the record must tell.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            End::Exited(code) => Some(code),
            End::Detached => Some(0),
            End::Closed => None,
            End::Interrupted(sig) => Some(128 + sig as i32),
        }
    }
}

pub struct AttachOpts {
    pub stdin: bool,
    pub tty: bool,
    pub detach_keys: Vec<u8>,
    pub sig_proxy: bool,
    /// An exec's session: signals go to its process through the monitor,
    /// not to the container.
    pub exec: bool,
    /// Which of stdout and stderr to print (`run -a`); what is not shown
    /// still reaches the log.
    pub show: [bool; 2],
}

fn write_out(fd: i32, data: &[u8]) {
    let f = if fd == 2 {
        let mut e = std::io::stderr().lock();
        e.write_all(data).and_then(|_| e.flush())
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(data).and_then(|_| o.flush())
    };
    let _ = f;
}

/// Streams an attached container: its output to ours, our stdin to it, our
/// terminal size and signals to it, until it exits or we detach.
pub fn pump(
    engine: &Engine,
    id: &str,
    mut sock: UnixStream,
    sigfd: &mut SignalFd,
    o: &AttachOpts,
) -> Result<End> {
    let stdin = std::io::stdin();
    let mut stdin_open = o.stdin;
    let mut inbuf: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes that may start the detach sequence, held back until we know.
    let mut held: Vec<u8> = Vec::new();
    loop {
        let mut fds = vec![
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let ready = |i: usize| {
            fds.get(i).and_then(|f| f.revents()).is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (sig_ready, sock_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if sig_ready {
            if let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) | Err(_) => {}
                    Ok(Signal::SIGWINCH) => {
                        if let (true, Some((rows, cols))) = (o.tty, terminal_size()) {
                            let p = proto::resize_payload(rows, cols);
                            let _ = proto::write_frame(&mut sock, proto::RESIZE, &p);
                        }
                    }
                    Ok(sig) if o.sig_proxy && o.exec => {
                        let p = proto::exit_payload(sig as i32);
                        let _ = proto::write_frame(&mut sock, proto::SIGNAL, &p);
                    }
                    Ok(sig) if o.sig_proxy => {
                        let _ = engine.kill(id, sig);
                    }
                    // Not passed on: the signal ends this client, as it
                    // would any program that does not handle it.
                    Ok(sig) => return Ok(End::Interrupted(sig)),
                }
            }
        }
        if sock_ready {
            match sock.read(&mut buf) {
                Ok(0) => return Ok(End::Closed),
                Ok(n) => inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(End::Closed),
            }
            let mut used = 0;
            while let Some((kind, payload, n)) =
                proto::parse(&inbuf[used..]).context("read from the container's monitor")?
            {
                used += n;
                match kind {
                    proto::STDOUT if o.show[0] => write_out(1, payload),
                    proto::STDERR if o.show[1] => write_out(2, payload),
                    proto::EXIT => {
                        return Ok(proto::exit_code(payload).map_or(End::Closed, End::Exited))
                    }
                    _ => {}
                }
            }
            inbuf.drain(..used);
        }
        if stdin_ready {
            match nix::unistd::read(libc::STDIN_FILENO, &mut buf) {
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = proto::write_frame(&mut sock, proto::STDIN_EOF, &[]);
                }
                Ok(n) => {
                    let mut data = std::mem::take(&mut held);
                    data.extend_from_slice(&buf[..n]);
                    let keys = &o.detach_keys;
                    if !keys.is_empty() {
                        if let Some(pos) = data.windows(keys.len()).position(|w| w == &keys[..]) {
                            if pos > 0 {
                                let _ = proto::write_frame(&mut sock, proto::STDIN, &data[..pos]);
                            }
                            return Ok(End::Detached);
                        }
                        // Hold back a tail that could be the start of the sequence.
                        let keep = (1..keys.len())
                            .rev()
                            .find(|&k| data.len() >= k && data[data.len() - k..] == keys[..k])
                            .unwrap_or(0);
                        held = data.split_off(data.len() - keep);
                    }
                    if !data.is_empty()
                        && proto::write_frame(&mut sock, proto::STDIN, &data).is_err()
                    {
                        stdin_open = false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-foo").is_err());
    }
}
