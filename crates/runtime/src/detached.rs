//! Mounts the parent prepares for a container in a user namespace, as
//! detached mount trees its init attaches (runc's mount fds, crun's
//! open_tree sources).
//!
//! The init of such a container is root only in its own namespace: it cannot
//! reach sources under root-only host directories (the state root is 0700),
//! and an overlay it mounted itself would use its unprivileged credentials
//! and the `user.` xattrs. So the parent, still the host's root, opens every
//! bind source as a detached tree (`open_tree(OPEN_TREE_CLONE)`) and builds
//! the root overlay as a detached mount (`fsopen`/`fsmount`) whose lower
//! layers are idmapped to the container's ranges (`mount_setattr(
//! MOUNT_ATTR_IDMAP)`): the image layers stay shared on disk, and inside the
//! container their root-owned files are its root's. The init inherits the
//! descriptors across clone and `move_mount`s them into place.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{pipe, read};
use oci_spec::runtime::LinuxIdMapping;

use crate::clone::{clone_into, Forked};
use crate::error::{Error, Result};
use crate::paths::owned;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidSpec(format!("path has a NUL byte: {}", p.display())))
}

fn ret_fd(r: libc::c_long, op: &'static str) -> Result<OwnedFd> {
    if r < 0 {
        return Err(Error::sys(op)(Errno::last()));
    }
    Ok(owned(r as RawFd))
}

/// A detached copy of the mount tree at `source` (of the mount at `source`
/// alone unless `recursive`).
pub(crate) fn clone_tree(source: &Path, recursive: bool) -> Result<OwnedFd> {
    let c = cpath(source)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree reads a NUL-terminated path that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    ret_fd(r, "open_tree").map_err(|e| match e {
        Error::Sys { source: errno, .. } => Error::Io {
            op: "open bind source",
            path: source.to_path_buf(),
            source: errno.into(),
        },
        e => e,
    })
}

/// Makes the detached tree `tree` show its files through the id maps of the
/// user namespace `userns`.
fn idmap(tree: &OwnedFd, userns: &OwnedFd, what: &Path) -> Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr reads one struct mount_attr of the size given,
    // from our stack, and an empty NUL-terminated path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        let e = Errno::last();
        return Err(Error::Refused(format!(
            "idmap the image layer {}: {} (idmapped mounts need Linux 5.12 and a filesystem that supports them)",
            what.display(),
            e.desc()
        )));
    }
    Ok(())
}

/// A detached view of the directory tree at `path` whose ids show through
/// these maps (a file whose id is a map's inside id shows as its outside
/// id): the engine reads a remapped container's writable layer with the
/// range's ids shifted back to the container's own.
pub fn idmapped_view(
    path: &Path,
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<OwnedFd> {
    let userns = userns_with_maps(uid_maps, gid_maps)?;
    let tree = clone_tree(path, true)?;
    idmap(&tree, &userns, path)?;
    Ok(tree)
}

/// A user namespace with these id maps, held by its descriptor only: the
/// maps an idmapped mount takes. A short-lived child creates it; between
/// the clone and its exit it only reads a pipe, so this is sound in a
/// multi-threaded caller too.
pub(crate) fn userns_with_maps(
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<OwnedFd> {
    let (rd, wr) = pipe().map_err(Error::sys("pipe"))?;
    let forked = clone_into(libc::CLONE_NEWUSER, None);
    if let Ok(Forked::Child) = forked {
        drop(wr);
        let mut b = [0u8; 1];
        // Wait until the parent has what it needs (or went away).
        let _ = read(rd.as_raw_fd(), &mut b);
        // SAFETY: ends the helper without running the parent's destructors.
        unsafe { libc::_exit(0) }
    }
    let Forked::Parent { pid, .. } = forked.map_err(Error::sys("clone user namespace helper"))?
    else {
        unreachable!("the helper never returns here")
    };
    drop(rd);
    let made = (|| {
        crate::container::write_id_map(pid, "uid_map", uid_maps)?;
        crate::container::write_id_map(pid, "gid_map", gid_maps)?;
        let path = PathBuf::from(format!("/proc/{pid}/ns/user"));
        open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map(owned)
            .map_err(|e| Error::Io {
                op: "open",
                path,
                source: e.into(),
            })
    })();
    drop(wr);
    let _ = crate::container::wait_pid(pid);
    made
}

/// The directories of an overlay's option string (`lowerdir=a:b,upperdir=u,
/// workdir=w`), relative ones resolved against `base`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OverlayDirs {
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    /// Other options, as given (`volatile`, `index=off`).
    pub other: Vec<(String, Option<String>)>,
}

pub(crate) fn parse_overlay(data: &str, base: Option<&Path>) -> Result<OverlayDirs> {
    let abs = |p: &str| match base {
        Some(b) if !p.starts_with('/') => b.join(p),
        _ => PathBuf::from(p),
    };
    let mut dirs = OverlayDirs {
        lower: Vec::new(),
        upper: None,
        work: None,
        other: Vec::new(),
    };
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("lowerdir", v)) => dirs.lower = v.split(':').map(abs).collect(),
            Some(("upperdir", v)) => dirs.upper = Some(abs(v)),
            Some(("workdir", v)) => dirs.work = Some(abs(v)),
            Some((k, v)) => dirs.other.push((k.to_string(), Some(v.to_string()))),
            None => dirs.other.push((opt.to_string(), None)),
        }
    }
    if dirs.lower.is_empty() {
        return Err(Error::InvalidSpec("overlay without lowerdir".into()));
    }
    Ok(dirs)
}

fn fsconfig_string(fs: &OwnedFd, key: &str, value: &str) -> Result<()> {
    fsconfig_set(fs, key, Some(value))
}

/// Sets option `key` to `value`, or the flag `key` when `value` is `None`.
fn fsconfig_set(fs: &OwnedFd, key: &str, value: Option<&str>) -> Result<()> {
    let nul = |_| Error::InvalidSpec("NUL in overlay option".into());
    let k = CString::new(key).map_err(nul)?;
    let v = value.map(CString::new).transpose().map_err(nul)?;
    let (cmd, vp) = match &v {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: fsconfig reads a NUL-terminated key and value (or no value for
    // a flag) that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, k.as_ptr(), vp, 0) };
    if r < 0 {
        return Err(Error::Refused(format!(
            "overlay option {key}{}: {}",
            value.map(|v| format!("={v}")).unwrap_or_default(),
            Errno::last().desc()
        )));
    }
    Ok(())
}

/// The root overlay, mounted detached by this (host-root) process, with
/// its lower layers idmapped through `userns`.
pub(crate) fn overlay(dirs: &OverlayDirs, userns: &OwnedFd) -> Result<OwnedFd> {
    let mut lowers = Vec::with_capacity(dirs.lower.len());
    for l in &dirs.lower {
        let tree = clone_tree(l, false)?;
        idmap(&tree, userns, l)?;
        lowers.push(tree);
    }
    // SAFETY: fsopen reads a NUL-terminated filesystem name.
    let fs = ret_fd(
        unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) },
        "fsopen overlay",
    )?;
    // Each layer by its descriptor's path, one at a time (`lowerdir+`, Linux
    // 6.7): a value of fsconfig is limited to 256 bytes.
    for l in &lowers {
        fsconfig_string(
            &fs,
            "lowerdir+",
            &format!("/proc/self/fd/{}", l.as_raw_fd()),
        )?;
    }
    let mut keep = Vec::new();
    for (key, dir) in [("upperdir", &dirs.upper), ("workdir", &dirs.work)] {
        if let Some(d) = dir {
            let fd = open(
                d,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(owned)
            .map_err(|e| Error::Io {
                op: "open",
                path: d.clone(),
                source: e.into(),
            })?;
            fsconfig_string(&fs, key, &format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
            keep.push(fd);
        }
    }
    for (k, v) in &dirs.other {
        fsconfig_set(&fs, k, v.as_deref())?;
    }
    // SAFETY: fsconfig with a command and no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(Error::Refused(format!(
            "create the overlay over idmapped layers: {}",
            Errno::last().desc()
        )));
    }
    // SAFETY: fsmount on the configured filesystem context, no pointers.
    ret_fd(
        unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) },
        "fsmount overlay",
    )
}

/// Attaches the detached tree `tree` on `target` (a path, or with `None` the
/// O_PATH descriptor `target_fd`).
pub(crate) fn attach(tree: RawFd, target_fd: RawFd, target: Option<&Path>) -> nix::Result<()> {
    let path = match target {
        Some(p) => cpath(p).map_err(|_| Errno::EINVAL)?,
        None => CString::default(),
    };
    let mut flags = MOVE_MOUNT_F_EMPTY_PATH;
    if target.is_none() {
        flags |= MOVE_MOUNT_T_EMPTY_PATH;
    }
    // SAFETY: move_mount reads two NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            target_fd,
            path.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_dirs_resolve_against_the_layer_store() {
        let d = parse_overlay(
            "lowerdir=/c/init:l/abc:l/def,upperdir=/c/upper,workdir=/c/work",
            Some(Path::new("/store/layers")),
        )
        .unwrap();
        assert_eq!(
            d,
            OverlayDirs {
                lower: vec![
                    PathBuf::from("/c/init"),
                    PathBuf::from("/store/layers/l/abc"),
                    PathBuf::from("/store/layers/l/def"),
                ],
                upper: Some(PathBuf::from("/c/upper")),
                work: Some(PathBuf::from("/c/work")),
                other: Vec::new(),
            }
        );
        let d = parse_overlay(
            "lowerdir=/a,upperdir=/u,workdir=/w,volatile,index=off",
            None,
        )
        .unwrap();
        assert_eq!(
            d.other,
            [
                ("volatile".to_string(), None),
                ("index".to_string(), Some("off".to_string()))
            ]
        );
        let ro = parse_overlay("lowerdir=a:b", None).unwrap();
        assert_eq!(ro.lower, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(ro.upper, None);
        assert!(parse_overlay("upperdir=/u", None).is_err());
    }
}
