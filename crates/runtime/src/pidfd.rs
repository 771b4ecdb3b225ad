//! Process handles that survive pid reuse: signalling and waiting for a
//! process that is not our child (a container owned by its monitor).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// A pidfd for `pid`; `None` when the process no longer exists.
pub fn open(pid: Pid) -> nix::Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return match Errno::last() {
            Errno::ESRCH => Ok(None),
            e => Err(e),
        };
    }
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// Sends `sig` through a pidfd; a process that already exited is not an error.
pub fn signal(fd: impl AsFd, sig: Signal) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, null siginfo and no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_fd().as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match r {
        -1 => match Errno::last() {
            Errno::ESRCH => Ok(()),
            e => Err(e),
        },
        _ => Ok(()),
    }
}

/// Waits until the process exits (`true`) or `timeout` passes (`false`).
pub fn wait_exit(fd: impl AsFd, timeout: Option<Duration>) -> nix::Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis();
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `struct pidfd_info` of `<linux/pidfd.h>` as Linux 6.15 first defined it
/// (`PIDFD_INFO_SIZE_VER0`, 64 bytes): the kernel fills what it knows of the
/// fields the mask asks for and says which in the mask.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    creds: [u32; 8],
    exit_code: i32,
}

const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// `_IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// How the process ended, in waitpid's form, once it has been reaped by
/// whoever its parent is: the kernel keeps it for every pidfd opened before
/// (Linux 6.15 and later). `None` while it runs or is a zombie, or on older
/// kernels: a process that is not our child cannot be waited for, but this
/// reads its exit code all the same.
pub fn exit_status(fd: impl AsFd) -> Option<i32> {
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: the ioctl writes at most size_of::<PidfdInfo>() bytes (the size
    // encoded in the request) into `info`, which lives across the call.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), PIDFD_GET_INFO as _, &mut info) };
    (r == 0 && info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)
}

/// Docker's exit code for a waitpid status: the code, or 128 + the signal.
pub fn exit_code_of_status(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_read_as_docker_exit_codes() {
        assert_eq!(exit_code_of_status(5 << 8), 5);
        assert_eq!(exit_code_of_status(9), 137);
        assert_eq!(exit_code_of_status(15 | 0x80), 143);
        assert_eq!(exit_code_of_status(0), 0);
    }

    #[test]
    fn a_reaped_childs_exit_code_is_read_through_its_pidfd() {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 5"])
            .spawn()
            .unwrap();
        let fd = open(Pid::from_raw(child.id() as i32)).unwrap().unwrap();
        let mut child = child;
        assert_eq!(child.wait().unwrap().code(), Some(5));
        // Kernels before 6.15 keep no exit information: nothing to check.
        if let Some(status) = exit_status(&fd) {
            assert_eq!(exit_code_of_status(status), 5);
        }
    }
}
