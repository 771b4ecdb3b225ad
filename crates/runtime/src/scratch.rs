//! Running work against a mount that only exists in a private mount namespace
//! of a short-lived child process (`export` reads a container's merged root this
//! way without ever mounting anything in the host's namespace).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, fchdir, fork, ForkResult};

use crate::container::RootfsMount;
use crate::error::{Error, Result};

/// Forks a child that mounts `m` on `target` in a new mount namespace and runs
/// `work(target)` there, in the caller's working directory (the overlay's
/// short relative layer paths need a `chdir` for the mount itself; `work` gets
/// the caller's directory back, so its relative paths mean what the caller
/// meant). `target` must be absolute. Must be called from a single-threaded
/// process.
pub fn with_private_mount(
    m: &RootfsMount,
    target: &Path,
    readonly: bool,
    work: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    if !target.is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "mount target {} is not an absolute path",
            target.display()
        )));
    }
    // The child's error message comes back through this pipe.
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
    // SAFETY: the caller is single-threaded; the child only mounts, runs
    // `work` and leaves with _exit.
    match unsafe { fork() }.map_err(Error::sys("fork"))? {
        ForkResult::Child => {
            drop(err_r);
            let r = (|| {
                unshare(CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("unshare mount namespace: {e}"))?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| format!("make mounts private: {e}"))?;
                let flags = if readonly {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
                in_dir(m.workdir.as_deref(), || {
                    mount(
                        Some(m.source.as_str()),
                        target,
                        Some(m.fstype.as_str()),
                        flags,
                        m.data.as_deref(),
                    )
                    .map_err(|e| format!("mount {} on {}: {e}", m.fstype, target.display()))
                })?;
                work(target)
            })();
            let code = match r {
                Ok(()) => 0,
                Err(e) => {
                    let _ = std::fs::File::from(err_w).write_all(e.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            let mut message = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut message);
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                    Ok(WaitStatus::Exited(_, _)) | Ok(WaitStatus::Signaled(..)) => {
                        if message.is_empty() {
                            message = format!("work on the mount at {} failed", target.display());
                        }
                        return Err(Error::Helper {
                            target: target.to_path_buf(),
                            message,
                        });
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("wait")(e)),
                }
            }
        }
    }
}

/// Runs `f` in `dir` (an overlay's short layer paths are relative to it),
/// then back in the working directory it was called in, so that nothing
/// after it resolves a caller's relative path against `dir`. Only for a
/// single-threaded process, such as `with_private_mount`'s child: the working
/// directory belongs to the whole process.
pub fn in_dir<T>(
    dir: Option<&Path>,
    f: impl FnOnce() -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    let Some(dir) = dir else {
        return f();
    };
    let cwd = open(
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open the working directory: {e}"))?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let cwd = unsafe { OwnedFd::from_raw_fd(cwd) };
    chdir(dir).map_err(|e| format!("chdir {}: {e}", dir.display()))?;
    let r = f();
    fchdir(cwd.as_raw_fd()).map_err(|e| format!("return to the working directory: {e}"))?;
    r
}
