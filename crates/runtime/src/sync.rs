//! The channel between `create` and the container's init process.
//!
//! A SOCK_SEQPACKET pair, close-on-exec on both ends. The parent sends one
//! `GO` byte once the child is in its cgroup (and its id maps are written). The
//! child either executes its program, which closes its end (the parent reads EOF:
//! started), or sends one JSON [`StartFailure`] and exits.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::error::{Error, Result, StartFailure, StartFailureKind};

const GO: u8 = b'g';

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

    /// Child: report a failure.
    pub(crate) fn send_failure(&self, failure: &StartFailure) {
        let msg = serde_json::to_vec(failure).unwrap_or_else(|_| b"{}".to_vec());
        let _ = retry(|| send(self.0.as_raw_fd(), &msg, MsgFlags::empty()));
    }

    /// Parent: wait for the child to exec (`Ok`) or to report a failure.
    pub(crate) fn wait_started(&self) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = retry(|| recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()))
            .map_err(Error::sys("wait for container init"))?;
        if n == 0 {
            return Ok(());
        }
        let failure = serde_json::from_slice::<StartFailure>(&buf[..n]).unwrap_or(StartFailure {
            kind: StartFailureKind::Setup,
            message: "container init sent an unreadable report".into(),
        });
        Err(failure.into())
    }
}
