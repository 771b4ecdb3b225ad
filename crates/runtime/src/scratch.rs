//! Running work against a mount that only exists in a private mount namespace
//! of a short-lived thread (`export`, `cp`, `commit` and build steps read or
//! write a container's merged root this way without ever mounting anything in
//! the host's namespace). A thread, not a forked process: the engine is
//! called from any thread of any process, and forking a multi-threaded
//! process to run more than async-signal-safe code is not sound. The thread
//! unshares its filesystem context and its mount namespace from the rest of
//! the process, so its mounts and its working directory are its own.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, fchdir};

use crate::container::RootfsMount;
use crate::error::{Error, Result};

/// Mounts `m` on `target` in a mount namespace of a thread of its own and
/// runs `work(target)` there, in the caller's working directory (the
/// overlay's short relative layer paths need a `chdir` for the mount itself;
/// `work` gets the caller's directory back, so its relative paths mean what
/// the caller meant). `target` must be absolute. The mount is gone when this
/// returns. Safe to call from any thread.
pub fn with_private_mount(
    m: &RootfsMount,
    target: &Path,
    readonly: bool,
    work: impl FnOnce(&Path) -> std::result::Result<(), String> + Send,
) -> Result<()> {
    if !target.is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "mount target {} is not an absolute path",
            target.display()
        )));
    }
    let run = || -> std::result::Result<(), String> {
        // This thread's own working directory and mount namespace: nothing
        // it mounts or changes is seen by the rest of the process.
        unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS)
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
        let done = work(target);
        // Gone before the caller goes on (the namespace itself goes with the
        // thread, a moment after the caller sees it end).
        let _ = umount2(target, MntFlags::MNT_DETACH);
        done
    };
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("berth-mount".into())
            .spawn_scoped(scope, run)
            .map(|t| t.join())
    });
    let message = match outcome {
        Ok(Ok(Ok(()))) => return Ok(()),
        Ok(Ok(Err(message))) => message,
        Ok(Err(_)) => format!("work on the mount at {} panicked", target.display()),
        Err(e) => format!("start a thread for the mount at {}: {e}", target.display()),
    };
    Err(Error::Helper {
        target: target.to_path_buf(),
        message,
    })
}

/// Runs `f` in `dir` (an overlay's short layer paths are relative to it),
/// then back in the working directory it was called in, so that nothing
/// after it resolves a caller's relative path against `dir`. Only for a
/// thread with a filesystem context of its own (`with_private_mount`'s) or a
/// single-threaded process: elsewhere the working directory is shared.
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
