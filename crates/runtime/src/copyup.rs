//! Filling an empty volume with what the image has at its mount point
//! ("copy-up"), before the volume is mounted there.
//!
//! Both trees are walked through directory descriptors and every entry is
//! opened relative to its parent with O_NOFOLLOW, so a symlink in the image
//! is copied as a symlink and never followed out of the container's root.
//! Ownership, modes, timestamps, extended attributes, hard links and special
//! files are kept.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};

type Res<T = ()> = Result<T, String>;

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor they just received from the kernel.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn fail<'a>(what: &'a str, path: &'a std::path::Path) -> impl FnOnce(Errno) -> String + 'a {
    let what = what.to_string();
    move |e| format!("{what} {}: {}", path.display(), e.desc())
}

fn open_at(dir: &OwnedFd, name: &CStr, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )
    .map(owned)
}

fn entries(dir: &OwnedFd) -> nix::Result<Vec<CString>> {
    let mut d = Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// Whether the directory behind `dir` has no entries.
pub(crate) fn is_empty(dir: &OwnedFd) -> nix::Result<bool> {
    entries(dir).map(|e| e.is_empty())
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn ids(st: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

/// Copies the extended attributes of `src` to `dst` (both real descriptors).
/// A filesystem without xattr support on either side is not an error.
fn copy_xattrs(src: &OwnedFd, dst: &OwnedFd) -> Result<(), Errno> {
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length; the kernel writes at most that much.
    let n = unsafe { libc::flistxattr(src.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return match Errno::last() {
            Errno::ENOTSUP => Ok(()),
            e => Err(e),
        };
    }
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 65536];
        // SAFETY: the name is NUL-terminated and the buffer valid for its length.
        let len = unsafe {
            libc::fgetxattr(
                src.as_raw_fd(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: as above; `len` bytes of the buffer are initialised.
        let r = unsafe {
            libc::fsetxattr(
                dst.as_raw_fd(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if r < 0 {
            match Errno::last() {
                Errno::ENOTSUP => return Ok(()),
                e => return Err(e),
            }
        }
    }
    Ok(())
}

/// How [`copy_tree`] copies.
#[derive(Default)]
pub struct CopyOptions<'a> {
    /// Replace what is at the destination (a directory is merged into, and
    /// keeps its own owner and mode); otherwise existing entries are kept.
    pub overwrite: bool,
    /// Owner (uid, gid) of everything copied, instead of the source's.
    pub owner: Option<(u32, u32)>,
    /// Permission bits of every file and directory copied, instead of the source's.
    pub mode: Option<u32>,
    /// Only entries (paths relative to the source directory, and whether
    /// each is a directory) it accepts are copied.
    #[allow(clippy::type_complexity)]
    pub filter: Option<&'a dyn Fn(&std::path::Path, bool) -> bool>,
}

impl CopyOptions<'_> {
    fn ids(&self, st: &FileStat) -> (Option<Uid>, Option<Gid>) {
        match self.owner {
            Some((u, g)) => (Some(Uid::from_raw(u)), Some(Gid::from_raw(g))),
            None => ids(st),
        }
    }

    fn mode(&self, st: &FileStat) -> Mode {
        Mode::from_bits_truncate(self.mode.unwrap_or(st.st_mode & 0o7777))
    }
}

/// Gives `dst` the owner, mode, xattrs and times of `st`/`src`.
fn finish(
    src: &OwnedFd,
    dst: &OwnedFd,
    st: &FileStat,
    path: &std::path::Path,
    opts: &CopyOptions<'_>,
) -> Res {
    let (uid, gid) = opts.ids(st);
    fchown(dst.as_raw_fd(), uid, gid).map_err(fail("chown", path))?;
    // After chown, which clears set-id bits.
    fchmod(dst.as_raw_fd(), opts.mode(st)).map_err(fail("chmod", path))?;
    copy_xattrs(src, dst).map_err(fail("copy xattrs of", path))?;
    let (a, m) = times(st);
    futimens(dst.as_raw_fd(), &a, &m).map_err(fail("set times of", path))
}

struct Copier<'a> {
    /// (device, inode) of files with several links -> path of the first copy.
    links: HashMap<(u64, u64), PathBuf>,
    dst_root: RawFd,
    opts: &'a CopyOptions<'a>,
}

/// Whether what `name` in `dir` is (a directory or not) allows a new entry
/// there: `Ok(true)` when it was removed (or was a directory to merge into
/// for `want_dir`), `Ok(false)` when it must be kept.
fn make_room(dir: &OwnedFd, name: &CStr, want_dir: bool, path: &std::path::Path) -> Res<bool> {
    let st = fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(fail("stat", path))?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
    if is_dir {
        if want_dir {
            return Ok(true);
        }
        return Err(format!(
            "cannot replace directory {} with a file",
            path.display()
        ));
    }
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    )
    .map_err(fail("remove", path))?;
    Ok(true)
}

impl Copier<'_> {
    fn dir(&mut self, src: &OwnedFd, dst: &OwnedFd, rel: &std::path::Path) -> Res {
        for name in entries(src).map_err(fail("read directory", rel))? {
            let path = rel.join(OsStr::from_bytes(name.to_bytes()));
            self.entry(src, dst, &name, &name, &path)?;
        }
        Ok(())
    }

    /// Creates an entry with `create` (which may fail with EEXIST); with
    /// `overwrite`, what is in the way goes first. `Ok(false)`: it exists
    /// and is kept.
    fn create(
        &self,
        dst: &OwnedFd,
        name: &CStr,
        path: &std::path::Path,
        is_dir: bool,
        create: impl Fn() -> nix::Result<()>,
    ) -> Res<bool> {
        match create() {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) if self.opts.overwrite => {
                if !make_room(dst, name, is_dir, path)? {
                    return Ok(false);
                }
                match create() {
                    Ok(()) => Ok(true),
                    Err(Errno::EEXIST) if is_dir => Ok(true),
                    Err(e) => Err(fail("create", path)(e)),
                }
            }
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(fail("create", path)(e)),
        }
    }

    fn entry(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &CStr,
        dst_name: &CStr,
        path: &std::path::Path,
    ) -> Res {
        let st = fstatat(Some(src.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(fail("stat", path))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if let Some(filter) = self.opts.filter {
            if !filter(path, kind == SFlag::S_IFDIR) {
                return Ok(());
            }
        }
        let dst_path = path.with_file_name(OsStr::from_bytes(dst_name.to_bytes()));
        let key = (st.st_dev, st.st_ino);
        let dfd = Some(dst.as_raw_fd());
        if kind != SFlag::S_IFDIR && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                let link = || {
                    linkat(
                        Some(self.dst_root),
                        first.as_path(),
                        dfd,
                        std::path::Path::new(OsStr::from_bytes(dst_name.to_bytes())),
                        AtFlags::empty(),
                    )
                };
                self.create(dst, dst_name, path, false, link)?;
                return Ok(());
            }
            self.links.insert(key, dst_path.clone());
        }
        let opts = self.opts;
        let set_link_meta = |what: &str| -> Res {
            let (uid, gid) = opts.ids(&st);
            fchownat(dfd, dst_name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(fail("chown", path))?;
            if what != "symlink" {
                nix::sys::stat::fchmodat(
                    dfd,
                    dst_name,
                    opts.mode(&st),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(fail("chmod", path))?;
            }
            let (a, m) = times(&st);
            utimensat(dfd, dst_name, &a, &m, UtimensatFlags::NoFollowSymlink)
                .map_err(fail("set times of", path))
        };
        match kind {
            SFlag::S_IFDIR => {
                let mkdir = || mkdirat(dfd, dst_name, Mode::from_bits_truncate(0o700));
                let made = match mkdir() {
                    Ok(()) => true,
                    // Another container filling the same volume got here first.
                    Err(Errno::EEXIST) if !self.opts.overwrite => return Ok(()),
                    Err(Errno::EEXIST) => {
                        make_room(dst, dst_name, true, path)?;
                        match mkdir() {
                            Ok(()) => true,
                            Err(Errno::EEXIST) => false,
                            Err(e) => return Err(fail("create", path)(e)),
                        }
                    }
                    Err(e) => return Err(fail("create", path)(e)),
                };
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
                let s = open_at(src, name, flags, Mode::empty()).map_err(fail("open", path))?;
                let d = open_at(dst, dst_name, flags, Mode::empty()).map_err(fail("open", path))?;
                self.dir(&s, &d, path)?;
                // A directory merged into keeps its own owner and mode.
                match made {
                    true => finish(&s, &d, &st, path, self.opts),
                    false => Ok(()),
                }
            }
            SFlag::S_IFREG => {
                let s = open_at(src, name, OFlag::O_RDONLY, Mode::empty())
                    .map_err(fail("open", path))?;
                let open = || {
                    open_at(
                        dst,
                        dst_name,
                        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                        Mode::from_bits_truncate(0o600),
                    )
                };
                let d = match open() {
                    Ok(d) => d,
                    Err(Errno::EEXIST) if self.opts.overwrite => {
                        make_room(dst, dst_name, false, path)?;
                        open().map_err(fail("create", path))?
                    }
                    Err(Errno::EEXIST) => return Ok(()),
                    Err(e) => return Err(fail("create", path)(e)),
                };
                let mut input = File::from(s.try_clone().map_err(|e| e.to_string())?);
                let mut output = File::from(d.try_clone().map_err(|e| e.to_string())?);
                std::io::copy(&mut input, &mut output)
                    .map_err(|e| format!("copy {}: {e}", path.display()))?;
                finish(&s, &d, &st, path, self.opts)
            }
            SFlag::S_IFLNK => {
                let target =
                    readlinkat(Some(src.as_raw_fd()), name).map_err(fail("readlink", path))?;
                let link = || symlinkat(target.as_os_str(), dfd, dst_name);
                if self.create(dst, dst_name, path, false, link)? {
                    set_link_meta("symlink")?;
                }
                Ok(())
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                let node = || {
                    mknodat(
                        dfd,
                        dst_name,
                        kind,
                        Mode::from_bits_truncate(0o600),
                        st.st_rdev,
                    )
                };
                if self.create(dst, dst_name, path, false, node)? {
                    set_link_meta("node")?;
                }
                Ok(())
            }
            // Sockets belong to a process; they are not copied.
            _ => Ok(()),
        }
    }
}

/// Copies the contents of directory `src` into the empty directory `dst`
/// and gives `dst` the owner and mode of `src`, as docker does for a volume
/// first mounted over image content. Both are directory descriptors.
pub(crate) fn copy_up(src: &OwnedFd, dst: &OwnedFd) -> Res {
    let st = fstat(src.as_raw_fd()).map_err(|e| format!("stat mount point: {}", e.desc()))?;
    let opts = CopyOptions::default();
    copy_tree(src, dst, &opts)?;
    finish(src, dst, &st, std::path::Path::new("."), &opts)
}

/// Copies the contents of directory `src` into directory `dst` (both
/// directory descriptors), walking both through descriptors with
/// O_NOFOLLOW: no symlink on either side is ever followed.
pub fn copy_tree(src: &OwnedFd, dst: &OwnedFd, opts: &CopyOptions<'_>) -> Res {
    Copier {
        links: HashMap::new(),
        dst_root: dst.as_raw_fd(),
        opts,
    }
    .dir(src, dst, std::path::Path::new(""))
}

/// Copies the entry `name` of directory `src` (a file, link, special file or
/// a whole directory, never following a symlink) into directory `dst` as
/// `dst_name`.
pub fn copy_entry(
    src: &OwnedFd,
    name: &OsStr,
    dst: &OwnedFd,
    dst_name: &OsStr,
    opts: &CopyOptions<'_>,
) -> Res {
    let cname = CString::new(name.as_bytes()).map_err(|e| e.to_string())?;
    let dname = CString::new(dst_name.as_bytes()).map_err(|e| e.to_string())?;
    Copier {
        links: HashMap::new(),
        dst_root: dst.as_raw_fd(),
        opts,
    }
    .entry(src, dst, &cname, &dname, std::path::Path::new(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn dir_fd(p: &std::path::Path) -> OwnedFd {
        owned(
            nix::fcntl::open(
                p,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn copies_a_tree_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::create_dir(&dst).unwrap();
        fs::write(src.join("sub/file"), "content").unwrap();
        fs::set_permissions(src.join("sub/file"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(src.join("sub/file"), Some(1000), Some(1001)).unwrap();
        fs::hard_link(src.join("sub/file"), src.join("hard")).unwrap();
        // A link to a host file is copied as a link, never as the file.
        let secret = t.path().join("secret");
        fs::write(&secret, "host").unwrap();
        symlink(&secret, src.join("leak")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        fs::set_permissions(src.join("fifo"), fs::Permissions::from_mode(0o620)).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::chown(&src, Some(7), Some(8)).unwrap();

        assert!(is_empty(&dir_fd(&dst)).unwrap());
        copy_up(&dir_fd(&src), &dir_fd(&dst)).unwrap();

        let f = fs::metadata(dst.join("sub/file")).unwrap();
        assert_eq!(fs::read_to_string(dst.join("sub/file")).unwrap(), "content");
        assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1000, 1001, 0o640));
        assert_eq!(f.ino(), fs::metadata(dst.join("hard")).unwrap().ino());
        assert!(dst.join("sub/deeper").is_dir());
        let l = fs::symlink_metadata(dst.join("leak")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(fs::read_link(dst.join("leak")).unwrap(), secret);
        let fifo = fs::symlink_metadata(dst.join("fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        assert_eq!(fifo.mode() & 0o7777, 0o620);
        let root = fs::metadata(&dst).unwrap();
        assert_eq!(
            (root.uid(), root.gid(), root.mode() & 0o7777),
            (7, 8, 0o1777)
        );
        assert!(!is_empty(&dir_fd(&dst)).unwrap());
    }
}
