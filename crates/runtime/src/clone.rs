//! `clone3` with namespace flags, used like `fork`: the child continues on a copy of
//! the caller's stack. Only called from a single-threaded process.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// The kernel's `struct clone_args` (the fields up to `cgroup`, CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Not in libc's c_int-typed flags: bit 33.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub(crate) enum Forked {
    Child,
    Parent { pid: Pid, pidfd: Option<OwnedFd> },
}

/// Clones the calling process into new namespaces (`flags` are `CLONE_NEW*` bits).
///
/// With `cgroup_fd` the child starts in that cgroup v2 directory (`CLONE_INTO_CGROUP`).
/// Falls back to the legacy `clone` syscall where `clone3` is missing.
pub(crate) fn clone_into(flags: libc::c_int, cgroup_fd: Option<RawFd>) -> Result<Forked, Errno> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: (flags as u64) | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with no stack behaves like fork: the child gets a copy of the
    // address space. The caller is single-threaded, so no lock can be held by a
    // thread that does not exist in the child. `args` and `pidfd` outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let ret = if ret == -1 && Errno::last() == Errno::ENOSYS && cgroup_fd.is_none() {
        // SAFETY: as above, the legacy clone with a null stack is fork-like.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
                0 as libc::c_ulong,
            )
        }
    } else {
        ret
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => {
            let pidfd = (pidfd >= 0).then(|| {
                // SAFETY: the kernel wrote a fresh pidfd that nothing else owns.
                unsafe { OwnedFd::from_raw_fd(pidfd) }
            });
            Ok(Forked::Parent {
                pid: Pid::from_raw(pid as libc::pid_t),
                pidfd,
            })
        }
    }
}
