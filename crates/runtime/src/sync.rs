//! The channel between `create` and the container's init process.
//!
//! A SOCK_SEQPACKET pair, close-on-exec on both ends. The child first sends
//! one `JOINED` byte once it has put itself in its cgroup (or a failure).
//! The parent sends one `GO` byte once the child is in its cgroup (and its
//! id maps are written). When
//! the container has a terminal, the child sends the master side of the pty it
//! opened inside the container (one `PTY` byte carrying the descriptor). The
//! child then either executes its program, which closes its end (the parent
//! reads EOF: started), or sends one JSON [`StartFailure`] and exits.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};

use crate::error::{Error, Result, StartFailure, StartFailureKind};
use crate::paths::owned;

const GO: u8 = b'g';
/// The child is in its cgroup (it wrote itself into it).
const JOINED: u8 = b'j';
const PTY: u8 = b'p';
/// The init is ready and waits for `start` (a create/start barrier).
const CREATED: u8 = b'c';

pub(crate) struct Channel(OwnedFd);

pub(crate) fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::sys("socketpair"))?;
    Ok((Channel(a), Channel(b)))
}

fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

impl Channel {
    /// Parent: let the child go on.
    pub(crate) fn send_go(&self) -> Result<()> {
        retry(|| send(self.0.as_raw_fd(), &[GO], MsgFlags::empty()))
            .map_err(Error::sys("signal container init"))?;
        Ok(())
    }

    /// Child: wait for the parent's go. `false` if the parent went away.
    pub(crate) fn wait_go(&self) -> bool {
        let mut buf = [0u8; 1];
        matches!(retry(|| recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty())), Ok(1) if buf[0] == GO)
    }

    /// Child: tell the parent it is in its cgroup.
    pub(crate) fn send_joined(&self) -> Result<()> {
        retry(|| send(self.0.as_raw_fd(), &[JOINED], MsgFlags::empty()))
            .map(|_| ())
            .map_err(Error::sys("report the cgroup joined"))
    }

    /// Parent: wait until the child is in its cgroup, or for its failure.
    pub(crate) fn wait_joined(&self) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = retry(|| recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()))
            .map_err(Error::sys("wait for container init"))?;
        match &buf[..n] {
            [JOINED] => Ok(()),
            [] => Err(StartFailure {
                kind: StartFailureKind::Setup,
                message: "the container's process ended before it joined its cgroup".into(),
            }
            .into()),
            report => Err(failure(report).into()),
        }
    }

    /// Tells the parent the container is created; its program runs later.
    pub(crate) fn send_created(&self) -> Result<()> {
        retry(|| send(self.0.as_raw_fd(), &[CREATED], MsgFlags::empty()))
            .map(|_| ())
            .map_err(Error::sys("report the container created"))
    }

    pub(crate) fn send_failure(&self, failure: &StartFailure) {
        let msg = serde_json::to_vec(failure).unwrap_or_else(|_| b"{}".to_vec());
        let _ = retry(|| send(self.0.as_raw_fd(), &msg, MsgFlags::empty()));
    }

    /// Child: hand the terminal's master side to the parent.
    pub(crate) fn send_pty(&self, master: &impl AsRawFd) -> nix::Result<()> {
        let fds = [master.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(&[PTY])];
        retry(|| sendmsg::<()>(self.0.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None))
            .map(|_| ())
    }

    /// Parent: wait for the child to exec (`Ok`) or to report a failure. The
    /// terminal's master side, if the child sent one, is returned.
    pub(crate) fn wait_started(&self) -> Result<Option<OwnedFd>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut pty = None;
        loop {
            let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let (n, fds) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = loop {
                    match recvmsg::<()>(
                        self.0.as_raw_fd(),
                        &mut iov,
                        Some(&mut cmsg),
                        MsgFlags::MSG_CMSG_CLOEXEC,
                    ) {
                        Err(Errno::EINTR) => continue,
                        other => break other.map_err(Error::sys("wait for container init"))?,
                    }
                };
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(r) = c {
                            fds.extend(r.into_iter().map(owned));
                        }
                    }
                }
                (msg.bytes, fds)
            };
            if n == 0 {
                return Ok(pty);
            }
            if n == 1 && buf[0] == JOINED {
                continue;
            }
            if n == 1 && buf[0] == CREATED {
                return Ok(pty);
            }
            if n == 1 && buf[0] == PTY {
                pty = fds.into_iter().next();
                continue;
            }
            return Err(failure(&buf[..n]).into());
        }
    }
}

/// The child's failure report.
fn failure(report: &[u8]) -> StartFailure {
    serde_json::from_slice::<StartFailure>(report).unwrap_or(StartFailure {
        kind: StartFailureKind::Setup,
        message: "container init sent an unreadable report".into(),
    })
}
