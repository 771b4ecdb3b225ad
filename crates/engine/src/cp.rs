//! `cp` between a container and the host. Every path inside the container is
//! resolved with `openat2(RESOLVE_IN_ROOT)` against the container's root and
//! everything below it is opened relative to a directory descriptor with
//! O_NOFOLLOW, so a symlink in the container (even one to `/`) can never make
//! the copy read or write a host file.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};

use crate::error::{Error, Result};
use crate::{Engine, Status};

fn errno<'a>(what: &'a str, path: &'a str) -> impl FnOnce(nix::Error) -> String + 'a {
    move |e| format!("{what} {path}: {}", e.desc())
}

fn open_root(root: &Path) -> std::result::Result<OwnedFd, String> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .map_err(|e| format!("open container root: {}", e.desc()))
}

/// Opens `path` (absolute, inside the container) confined to `root`.
fn resolve(root: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root.as_raw_fd(), rel, how).map(|fd| {
        // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
}

/// Splits a container path into its parent and last component.
fn split(path: &str) -> (String, Option<String>) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() && name != "." && name != ".." => {
            let parent = if parent.is_empty() { "/" } else { parent };
            (parent.to_string(), Some(name.to_string()))
        }
        _ => (path.to_string(), None),
    }
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: the caller passes a descriptor it just received from the kernel.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Opens the entry `name` of directory `dir` without following a symlink.
fn open_entry(
    dir: &OwnedFd,
    name: &str,
    flags: OFlag,
    mode: Mode,
) -> std::result::Result<OwnedFd, String> {
    openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )
    .map(owned)
    .map_err(errno("open", name))
}

/// Copies the entry `name` of directory `dir` (never following a symlink)
/// to the host path `dest`.
fn copy_out_entry(dir: &OwnedFd, name: &str, dest: &Path) -> std::result::Result<(), String> {
    let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(errno("stat", name))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let mode = st.st_mode & 0o7777;
    if kind == SFlag::S_IFLNK {
        let target = readlinkat(Some(dir.as_raw_fd()), name).map_err(errno("readlink", name))?;
        let _ = fs::remove_file(dest);
        symlink(&target, dest).map_err(|e| format!("create {}: {e}", dest.display()))
    } else if kind == SFlag::S_IFDIR {
        let fd = open_entry(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )?;
        match fs::create_dir(dest) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(format!("create {}: {e}", dest.display()))
            }
            _ => {}
        }
        let mut entries = Vec::new();
        let dup = fd.try_clone().map_err(|e| e.to_string())?;
        // Dir owns the duplicate from here on and closes it.
        let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
            .map_err(errno("read directory", name))?;
        for e in d.iter().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                entries.push(n);
            }
        }
        for n in entries {
            copy_out_entry(&fd, &n, &dest.join(&n))?;
        }
        fs::set_permissions(dest, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", dest.display()))
    } else if kind == SFlag::S_IFREG {
        let fd = open_entry(dir, name, OFlag::O_RDONLY, Mode::empty())?;
        let mut src = fs::File::from(fd);
        let mut out =
            fs::File::create(dest).map_err(|e| format!("create {}: {e}", dest.display()))?;
        io::copy(&mut src, &mut out).map_err(|e| format!("copy {name}: {e}"))?;
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", dest.display()))
    } else {
        Err(format!("{name}: not a regular file, directory or symlink"))
    }
}

/// Copies the host path `src` into directory `dir` as `name`; nothing in the
/// container is followed (an existing symlink at a name is an error). What
/// it creates is the host root's, or `owner`'s: a remapped container's root.
fn copy_in_entry(
    src: &Path,
    dir: &OwnedFd,
    name: &str,
    owner: Option<(u32, u32)>,
) -> std::result::Result<(), String> {
    copy_in_made(src, dir, name, owner)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno("chown", name))?;
    }
    Ok(())
}

fn copy_in_made(
    src: &Path,
    dir: &OwnedFd,
    name: &str,
    owner: Option<(u32, u32)>,
) -> std::result::Result<(), String> {
    let meta = fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mode = Mode::from_bits_truncate(meta.permissions().mode() & 0o7777);
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
        nix::unistd::symlinkat(&target, Some(dir.as_raw_fd()), name).map_err(errno("symlink", name))
    } else if ft.is_dir() {
        match mkdirat(Some(dir.as_raw_fd()), name, mode) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(errno("mkdir", name)(e)),
        }
        let sub = open_entry(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )?;
        for e in fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
            let e = e.map_err(|e| format!("{}: {e}", src.display()))?;
            let n = e.file_name().to_string_lossy().into_owned();
            copy_in_entry(&e.path(), &sub, &n, owner)?;
        }
        Ok(())
    } else if ft.is_file() {
        let fd = open_entry(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
            mode,
        )?;
        fchmod(fd.as_fd().as_raw_fd(), mode).map_err(errno("chmod", name))?;
        let mut out = fs::File::from(fd);
        let mut input = fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
        io::copy(&mut input, &mut out).map_err(|e| format!("copy {}: {e}", src.display()))?;
        Ok(())
    } else {
        Err(format!(
            "{}: not a regular file, directory or symlink",
            src.display()
        ))
    }
}

/// Copies `src` (inside the container whose root is `root`) to the host.
fn copy_out(root: &Path, src: &str, dest: &Path) -> std::result::Result<(), String> {
    let rootfd = open_root(root)?;
    let (parent, name) = split(src);
    let Some(name) = name else {
        // The container's root itself: copy its contents.
        let fd = resolve(&rootfd, "/", OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(errno("open", src))?;
        let _ = fd;
        return Err("copying the whole root filesystem: use `berth export`".into());
    };
    let dir = resolve(&rootfd, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(errno("Could not find the file", src))?;
    fstatat(
        Some(dir.as_raw_fd()),
        name.as_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|_| format!("Could not find the file {src} in container"))?;
    let target = if dest.is_dir() {
        dest.join(&name)
    } else {
        dest.to_path_buf()
    };
    copy_out_entry(&dir, &name, &target)
}

/// Copies the host path `src` into the container at `dest`.
fn copy_in(
    root: &Path,
    src: &Path,
    dest: &str,
    owner: Option<(u32, u32)>,
) -> std::result::Result<(), String> {
    let rootfd = open_root(root)?;
    let src_name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: no file name", src.display()))?;
    // An existing directory receives the source under its own name.
    if let Ok(dir) = resolve(&rootfd, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        return copy_in_entry(src, &dir, &src_name, owner);
    }
    if dest.ends_with('/') {
        return Err(format!("no such directory in the container: {dest}"));
    }
    let (parent, name) = split(dest);
    let name = name.ok_or_else(|| format!("invalid destination {dest}"))?;
    let dir = resolve(&rootfd, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(|_| format!("no such directory in the container: {parent}"))?;
    copy_in_entry(src, &dir, &name, owner)
}

/// Which way `cp` goes.
pub enum CopyDirection<'a> {
    FromContainer { src: &'a str, dest: &'a Path },
    ToContainer { src: &'a Path, dest: &'a str },
}

impl Engine {
    /// Copies between the host and a container (running or not).
    pub fn copy(&self, key: &str, dir: CopyDirection<'_>) -> Result<()> {
        let rec = self.containers.find(key)?;
        if let CopyDirection::ToContainer { src, .. } = &dir {
            fs::symlink_metadata(src).map_err(Error::io("read", *src))?;
        }
        // What is copied in is the container's root's: a remapped one's is
        // its range's first id. (Through the idmapped view of a stopped one,
        // root's writes already are.)
        let work = |root: &Path, owner: Option<(u32, u32)>| match &dir {
            CopyDirection::FromContainer { src, dest } => copy_out(root, src, dest),
            CopyDirection::ToContainer { src, dest } => copy_in(root, src, dest, owner),
        };
        let failed = |m: String| Error::InvalidArgument(m);
        let running = matches!(rec.state.status, Status::Running | Status::Paused);
        if running && self.container_pidfd(&rec).is_some() {
            let root = PathBuf::from(format!("/proc/{}/root", rec.state.pid));
            let owner = rec.id_map.map(|r| (r.uid, r.gid));
            return work(&root, owner).map_err(failed);
        }
        // Not running: its overlay, mounted in a private mount namespace.
        let work = |root: &Path| work(root, None);
        let cdir = self.containers.dir(&rec.id);
        let (mount, _view) = self.rootfs_mount(&rec)?;
        let readonly = matches!(dir, CopyDirection::FromContainer { .. });
        berth_runtime::with_private_mount(&mount, &cdir.join("rootfs"), readonly, work)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_container_paths() {
        assert_eq!(
            split("/etc/hostname"),
            ("/etc".into(), Some("hostname".into()))
        );
        assert_eq!(split("/tmp/"), ("/".into(), Some("tmp".into())));
        assert_eq!(split("/"), ("/".into(), None));
    }

    #[test]
    fn symlinks_never_leave_the_root() {
        let host = tempfile::tempdir().unwrap();
        let root = host.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hostname"), "inside\n").unwrap();
        // Links planted to the host's root and to a host file.
        symlink("/", root.join("up")).unwrap();
        let secret = host.path().join("secret");
        fs::write(&secret, "host secret").unwrap();
        symlink(&secret, root.join("leak")).unwrap();
        let out = host.path().join("out");
        copy_out(&root, "/up/etc/hostname", &out).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "inside\n");
        // The link itself is copied, never what it points to.
        let leak = host.path().join("leak-copy");
        copy_out(&root, "/leak", &leak).unwrap();
        assert!(fs::symlink_metadata(&leak)
            .unwrap()
            .file_type()
            .is_symlink());
        // Writing through a planted link lands inside the root.
        let file = host.path().join("planted");
        fs::write(&file, "x").unwrap();
        let host_tmp = host.path().join("tmp");
        fs::create_dir(&host_tmp).unwrap();
        fs::create_dir(root.join("tmp")).unwrap();
        symlink(host_tmp.to_str().unwrap(), root.join("esc")).unwrap();
        copy_in(&root, &file, "/esc/", None).unwrap_err();
        assert!(!host_tmp.join("planted").exists());
        // A link at the final name is not followed either.
        symlink(&secret, root.join("tmp/planted")).unwrap();
        assert!(copy_in(&root, &file, "/tmp/planted", None).is_err());
        assert_eq!(fs::read_to_string(&secret).unwrap(), "host secret");
        // Through the link to "/", the copy lands in the root's /tmp.
        fs::remove_file(root.join("tmp/planted")).unwrap();
        copy_in(&root, &file, "/up/tmp/", None).unwrap();
        assert_eq!(fs::read_to_string(root.join("tmp/planted")).unwrap(), "x");
    }
}
