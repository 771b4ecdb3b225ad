//! Resolving paths inside the container's root without ever leaving it.
//!
//! Every mount destination is opened with `openat2(RESOLVE_IN_ROOT)` relative to
//! the rootfs directory, so a symlink planted in the image (`/proc -> /etc` or
//! `-> ../../../host`) resolves inside the rootfs; the mount then goes through
//! `/proc/self/fd/N`, the very inode that was checked.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// What to create at the destination when it does not exist.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Create {
    Dir,
    File,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Takes ownership of a descriptor a nix call returned.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor they just received from the kernel and own.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_in(root: RawFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(root, path, how(flags)).map(owned)
}

/// Relative form of a container path ("/dev/pts" -> "dev/pts"), rejecting "..".
pub(crate) fn relative(path: &Path) -> Result<PathBuf, Errno> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(Errno::EINVAL),
        }
    }
    Ok(out)
}

/// `a/b/../c` -> `a/c`, never above the root (as the kernel resolves `..`
/// at a root): used for the targets of links, which stay inside anyway.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Opens `path` inside `root` as an O_PATH descriptor, creating missing
/// directories (and the last component as `create`) on the way. A link to
/// something missing is followed inside the root and what it names is
/// created there, as other runtimes do for mount points.
pub(crate) fn open_or_create(root: RawFd, path: &Path, create: Create) -> nix::Result<OwnedFd> {
    open_or_create_at_depth(root, path, create, 0)
}

fn open_or_create_at_depth(
    root: RawFd,
    path: &Path,
    create: Create,
    links: u32,
) -> nix::Result<OwnedFd> {
    if links > 40 {
        return Err(Errno::ELOOP);
    }
    let rel = relative(path)?;
    if rel.as_os_str().is_empty() {
        return open_in(root, Path::new("."), OFlag::O_PATH);
    }
    match open_in(root, &rel, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut dir = open_in(root, Path::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    let mut sofar = PathBuf::new();
    let count = rel.components().count();
    for (i, comp) in rel.components().enumerate() {
        sofar.push(comp);
        let last = i + 1 == count;
        match open_in(root, &sofar, OFlag::O_PATH) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        match readlinkat(Some(dir.as_raw_fd()), comp.as_os_str()) {
            Ok(target) => {
                // A dangling link: create what it points to, in the root.
                let base = match Path::new(&target).is_absolute() {
                    true => PathBuf::new(),
                    false => sofar.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                let mut next = lexical(&base.join(&target));
                next.extend(rel.components().skip(i + 1));
                return open_or_create_at_depth(root, &next, create, links + 1);
            }
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if last && create == Create::File {
            let fd = nix::fcntl::openat(
                Some(dir.as_raw_fd()),
                comp.as_os_str(),
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            )?;
            drop(owned(fd));
        } else {
            match mkdirat(
                Some(dir.as_raw_fd()),
                comp.as_os_str(),
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        dir = open_in(root, &sofar, OFlag::O_PATH)?;
    }
    Ok(dir)
}

/// Opens an existing path inside `root` (O_PATH), `None` if it does not exist.
pub(crate) fn open_existing(root: RawFd, path: &Path) -> nix::Result<Option<OwnedFd>> {
    let rel = relative(path)?;
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    match open_in(root, &rel, OFlag::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens directory `path` inside the directory `root`, creating missing
/// directories (mode 0755) on the way; links resolve inside the root.
pub fn create_dir_in_root(root: &OwnedFd, path: &Path) -> nix::Result<OwnedFd> {
    let fd = open_or_create(root.as_raw_fd(), path, Create::Dir)?;
    reopen_dir(&fd)
}

/// Opens `path` inside the directory `root` (links resolve inside it) as an
/// O_PATH descriptor; `None` if nothing is there.
pub fn open_in_root(root: &OwnedFd, path: &Path) -> nix::Result<Option<OwnedFd>> {
    open_existing(root.as_raw_fd(), path)
}

/// A readable directory descriptor for the directory behind an O_PATH one.
pub fn reopen_dir(fd: &OwnedFd) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        Some(fd.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)
}

/// The magic-link path through which a mount reaches the inode behind `fd`.
pub(crate) fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn relative_rejects_parent_components() {
        assert_eq!(
            relative(Path::new("/dev/pts")).unwrap(),
            PathBuf::from("dev/pts")
        );
        assert_eq!(relative(Path::new("/")).unwrap(), PathBuf::new());
        assert!(relative(Path::new("/a/../b")).is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("inside")).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink("/inside", root.join("abs")).unwrap();
        symlink("../../..", root.join("esc")).unwrap();
        // A link to a host path: inside the root it does not exist.
        symlink(&outside, root.join("dangling")).unwrap();
        let rootfd = std::fs::File::open(&root).unwrap();
        open_or_create(rootfd.as_raw_fd(), Path::new("abs/x"), Create::Dir).unwrap();
        open_or_create(rootfd.as_raw_fd(), Path::new("esc/y"), Create::Dir).unwrap();
        // What a dangling link names is made inside the root, never outside.
        open_or_create(rootfd.as_raw_fd(), Path::new("dangling/z"), Create::Dir).unwrap();
        let inside = root.join(outside.strip_prefix("/").unwrap());
        assert!(inside.join("z").is_dir());
        symlink("../up/../../file", root.join("inside/rel")).unwrap();
        open_or_create(rootfd.as_raw_fd(), Path::new("inside/rel"), Create::File).unwrap();
        assert!(root.join("file").is_file());
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            open_or_create(rootfd.as_raw_fd(), Path::new("loop/x"), Create::Dir).unwrap_err(),
            Errno::ELOOP
        );
        assert!(root.join("inside/x").is_dir());
        assert!(root.join("y").is_dir());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        assert!(!tmp.path().join("y").exists());
    }

    #[test]
    fn creates_files_and_finds_existing() {
        let tmp = tempfile::tempdir().unwrap();
        let rootfd = std::fs::File::open(tmp.path()).unwrap();
        open_or_create(rootfd.as_raw_fd(), Path::new("/dev/console"), Create::File).unwrap();
        assert!(tmp.path().join("dev/console").is_file());
        assert!(open_existing(rootfd.as_raw_fd(), Path::new("/dev/console"))
            .unwrap()
            .is_some());
        assert!(open_existing(rootfd.as_raw_fd(), Path::new("/nope"))
            .unwrap()
            .is_none());
    }
}
