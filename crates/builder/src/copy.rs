//! COPY and ADD inside the step container's mounted filesystem: the
//! destination is resolved inside the container's root (its links cannot
//! lead out of it) and every entry is copied through directory descriptors.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_engine::runtime::copyup::{copy_entry, copy_tree, CopyOptions};
use berth_engine::runtime::{create_dir_in_root, open_in_root, reopen_dir};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::context::Source;

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .map_err(|e| format!("open {}: {}", path.display(), e.desc()))
}

fn is_dir(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false)
}

/// What to copy where, with which owner and mode.
pub struct CopyPlan<'a> {
    pub sources: Vec<Source>,
    /// Absolute, cleaned; `dest_is_dir` when it ended with `/` (or several
    /// sources go there).
    pub dest: PathBuf,
    pub dest_is_dir: bool,
    /// `--chown` as written, resolved against the container's passwd/group.
    pub chown: Option<String>,
    /// Owner when there is no `--chown` (root for the context; the source's
    /// own for `--from`).
    pub default_owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
    /// Filter for a source's entries (source root relative paths).
    pub keep: &'a dyn Fn(&Path, bool) -> bool,
}

/// Reads a file of the container (links resolved inside its root).
fn read_in_root(root: &OwnedFd, path: &str) -> String {
    let Ok(Some(fd)) = open_in_root(root, Path::new(path)) else {
        return String::new();
    };
    std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// `--chown=user[:group]`: names from the container's files; a user
/// without a group takes the same number as group, as docker does.
fn owner(root: &OwnedFd, spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in_root(root, "/etc/passwd");
    let groups = read_in_root(root, "/etc/group");
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            berth_engine::resolve_user(user, &passwd, &groups)
                .map_err(|e| {
                    format!("unable to convert uid/gid chown string to host mapping: {e}")
                })?
                .uid
        }
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    format!(
                        "unable to convert uid/gid chown string to host mapping: unable to find group {g}: no matching entries in group file"
                    )
                })?,
        },
    };
    Ok((uid, gid))
}

/// Performs `plan` in the container whose root is mounted at `root`.
pub fn copy_into(root: &Path, plan: &CopyPlan<'_>) -> Result<(), String> {
    let rootfd = open_dir(root)?;
    let owner = match &plan.chown {
        Some(spec) => Some(owner(&rootfd, spec)?),
        None => plan.default_owner,
    };
    let fail =
        |what: &str, p: &Path, e: nix::Error| format!("{what} {}: {}", p.display(), e.desc());
    // A destination that exists as a directory takes the sources inside it.
    let existing_dir = match open_in_root(&rootfd, &plan.dest) {
        Ok(Some(fd)) => is_dir(&fd),
        _ => false,
    };
    let into_dir = plan.dest_is_dir || existing_dir || plan.sources.iter().any(|s| s.is_dir);
    for s in &plan.sources {
        let prefix = s.rel.clone();
        let keep = |p: &Path, d: bool| (plan.keep)(&prefix.join(p), d);
        let opts = CopyOptions {
            overwrite: true,
            owner,
            mode: plan.mode,
            filter: Some(&keep),
        };
        let src_root = open_dir(&s.root)?;
        if s.is_dir {
            // A directory's contents go into the destination directory.
            let dst = create_dir_in_root(&rootfd, &plan.dest)
                .map_err(|e| fail("create", &plan.dest, e))?;
            let src = match s.rel.as_os_str().is_empty() {
                true => src_root,
                false => {
                    let fd = open_in_root(&src_root, &s.rel)
                        .map_err(|e| fail("open", &s.rel, e))?
                        .ok_or_else(|| format!("{} vanished", s.rel.display()))?;
                    reopen_dir(&fd).map_err(|e| fail("open", &s.rel, e))?
                }
            };
            copy_tree(&src, &dst, &opts)?;
            continue;
        }
        let (dir, name): (PathBuf, &OsStr) = match into_dir {
            true => (plan.dest.clone(), &s.name),
            false => (
                plan.dest.parent().unwrap_or(Path::new("/")).to_path_buf(),
                plan.dest.file_name().unwrap_or(&s.name),
            ),
        };
        let dst = create_dir_in_root(&rootfd, &dir).map_err(|e| fail("create", &dir, e))?;
        let parent = s.rel.parent().unwrap_or(Path::new(""));
        let src_dir = open_in_root(&src_root, parent)
            .map_err(|e| fail("open", parent, e))?
            .ok_or_else(|| format!("{} vanished", parent.display()))?;
        let src_dir = reopen_dir(&src_dir).map_err(|e| fail("open", parent, e))?;
        let src_name = s.rel.file_name().unwrap_or(&s.name);
        copy_entry(&src_dir, src_name, &dst, name, &opts)?;
    }
    Ok(())
}
