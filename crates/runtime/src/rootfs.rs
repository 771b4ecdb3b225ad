//! Building the container's root filesystem inside its new mount namespace, then
//! entering it with pivot_root. Runs in the container's init process only.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{chdir, chroot, pivot_root};
use oci_spec::runtime::Mount;

use crate::cgroupfs;
use crate::container::RootfsMount;
use crate::copyup;
use crate::detached;
use crate::devices::{self, Node};
use crate::mounts::MountOptions;
use crate::paths::{open_existing, open_or_create, owned, proc_fd, Create};

/// Everything the child needs to build its root, prepared by the parent.
pub(crate) struct RootfsPlan {
    pub rootfs: PathBuf,
    pub rootfs_mount: Option<RootfsMount>,
    pub propagation: MsFlags,
    pub mounts: Vec<Mount>,
    pub devices: Vec<Node>,
    /// The container has a terminal: /dev/console will be its pty.
    pub console: bool,
    pub readonly_root: bool,
    pub masked: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub userns: bool,
    /// `linux.sysctl`, written through the container's /proc before it is
    /// made read-only.
    pub sysctls: Vec<(String, String)>,
    /// Where the host mounts its cgroup hierarchies (for a `cgroup` mount).
    pub cgroup_root: PathBuf,
    /// The root filesystem, already mounted detached by the parent (a
    /// container in a user namespace): attached instead of `rootfs_mount`.
    pub prepared_root: Option<RawFd>,
    /// Per entry of `mounts`: the bind source, opened by the parent as a
    /// detached tree (a container in a user namespace cannot reach sources
    /// under root-only host directories).
    pub bind_trees: Vec<Option<RawFd>>,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
}

pub(crate) type Res<T = ()> = Result<T, String>;

pub(crate) fn ctx<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> Res<T> {
    r.map_err(|e| format!("{}: {}", what(), e.desc()))
}

fn open_dir(path: &Path) -> Res<OwnedFd> {
    ctx(
        open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(owned),
        || format!("open {}", path.display()),
    )
}

/// Mount flags that an unprivileged remount must keep (the kernel locks them).
fn locked_flags(fd: &OwnedFd) -> MsFlags {
    let Ok(st) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (st_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(st_flag) {
            out |= ms_flag;
        }
    }
    out
}

/// Remounts the mount at `path` (inside `root`) with `flags` added.
fn remount(root: &OwnedFd, path: &Path, flags: MsFlags) -> Res {
    let fd = ctx(open_existing(root.as_raw_fd(), path), || {
        format!("open {}", path.display())
    })?
    .ok_or_else(|| format!("remount {}: mount point vanished", path.display()))?;
    remount_fd(&fd, path, flags)
}

/// Remounts the mount whose root `fd` is (at `path`, for messages) with
/// `flags` added to those the kernel locks.
pub(crate) fn remount_fd(fd: &OwnedFd, path: &Path, flags: MsFlags) -> Res {
    let flags = flags | locked_flags(fd);
    ctx(
        mount(
            None::<&str>,
            &proc_fd(fd),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
            None::<&str>,
        ),
        || format!("remount {} read-only", path.display()),
    )
}

fn set_propagation(root: &OwnedFd, path: &Path, propagation: MsFlags) -> Res {
    if propagation.is_empty() {
        return Ok(());
    }
    let fd = ctx(open_existing(root.as_raw_fd(), path), || {
        format!("open {}", path.display())
    })?
    .ok_or_else(|| format!("{}: mount point vanished", path.display()))?;
    ctx(
        mount(
            None::<&str>,
            &proc_fd(&fd),
            None::<&str>,
            propagation,
            None::<&str>,
        ),
        || format!("set propagation of {}", path.display()),
    )
}

fn mount_one(root: &OwnedFd, m: &Mount, userns: bool, tree: Option<RawFd>) -> Res {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let bind = opts.bind || typ == "bind";
    let source_is_dir = match tree {
        Some(fd) => nix::sys::stat::fstat(fd)
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .unwrap_or(false),
        None => source.is_dir(),
    };
    let create = if bind && !source_is_dir {
        Create::File
    } else {
        Create::Dir
    };
    let target = ctx(open_or_create(root.as_raw_fd(), dest, create), || {
        format!("create mount point {}", dest.display())
    })?;
    if bind {
        if opts.copy_up {
            copy_up(&target, &source, tree, dest)?;
        }
        let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        let bound = match tree {
            Some(fd) => detached::attach(fd, target.as_raw_fd(), None),
            None => mount(
                Some(&source),
                &proc_fd(&target),
                None::<&str>,
                flags,
                None::<&str>,
            ),
        };
        ctx(bound, || {
            format!("bind mount {} on {}", source.display(), dest.display())
        })?;
        drop(target);
        let extra = opts.remount_flags();
        if !extra.is_empty() {
            remount(root, dest, extra)?;
        }
        return set_propagation(root, dest, opts.propagation);
    }
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    let result = mount(
        Some(&source),
        &proc_fd(&target),
        Some(typ),
        opts.flags,
        data,
    );
    match result {
        Err(Errno::EPERM) if typ == "sysfs" && userns => {
            // Without a network namespace of our own, sysfs cannot be mounted in
            // a user namespace: bind the host's read-only instead.
            ctx(
                mount(
                    Some("/sys"),
                    &proc_fd(&target),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                ),
                || "bind mount /sys".to_string(),
            )?;
            drop(target);
            remount(
                root,
                dest,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )?;
        }
        other => ctx(other, || format!("mount {typ} on {}", dest.display()))?,
    }
    set_propagation(root, dest, opts.propagation)
}

/// Fills the empty directory `source` with the contents of the mount point
/// `target` (a directory in the container's root) before it is mounted there.
fn copy_up(target: &OwnedFd, source: &Path, tree: Option<RawFd>, dest: &Path) -> Res {
    let dir = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let from = match nix::fcntl::openat(Some(target.as_raw_fd()), ".", dir, Mode::empty()) {
        Ok(fd) => owned(fd),
        // Not a directory: nothing to copy.
        Err(Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(format!("open {}: {}", dest.display(), e.desc())),
    };
    let into = match tree {
        Some(fd) => nix::fcntl::openat(Some(fd), ".", dir, Mode::empty()),
        None => open(source, dir | OFlag::O_NOFOLLOW, Mode::empty()),
    };
    let into = ctx(into.map(owned), || {
        format!("open volume {}", source.display())
    })?;
    if !ctx(copyup::is_empty(&into), || {
        format!("read volume {}", source.display())
    })? {
        return Ok(());
    }
    copyup::copy_up(&from, &into)
        .map_err(|e| format!("copy {} into its volume: {e}", dest.display()))
}

/// Mounts the root filesystem and everything on it, then pivots into it.
/// The cgroup mount, if the spec has one, is only prepared: the caller
/// finishes it once the process is in its cgroup namespace.
pub(crate) fn setup(plan: &RootfsPlan) -> Res<Option<cgroupfs::Pending>> {
    // Nothing mounted from here on may propagate back to the host.
    ctx(
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            plan.propagation | MsFlags::MS_REC,
            None::<&str>,
        ),
        || "make / private to the container".into(),
    )?;
    match (plan.prepared_root, &plan.rootfs_mount) {
        (Some(fd), _) => {
            // The mount point under the state root is out of this
            // unprivileged root's reach: the root goes on top of `/`, where
            // it stays out of the way of absolute paths until `enter`
            // pivots into it through its descriptor.
            ctx(
                detached::attach(fd, libc::AT_FDCWD, Some(Path::new("/"))),
                || "attach the root filesystem".into(),
            )?;
        }
        (None, Some(rm)) => {
            if let Some(dir) = &rm.workdir {
                // Overlay lowerdirs may be given relative to this directory, which
                // keeps the option string short for images with many layers.
                ctx(chdir(dir.as_path()), || format!("chdir {}", dir.display()))?;
            }
            let data = rm.data.as_deref();
            ctx(
                mount(
                    Some(rm.source.as_str()),
                    &plan.rootfs,
                    Some(rm.fstype.as_str()),
                    MsFlags::empty(),
                    data,
                ),
                || {
                    format!(
                        "mount {} root filesystem on {}",
                        rm.fstype,
                        plan.rootfs.display()
                    )
                },
            )?;
        }
        (None, None) => ctx(
            mount(
                Some(&plan.rootfs),
                &plan.rootfs,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
            || format!("bind mount root filesystem {}", plan.rootfs.display()),
        )?,
    }
    let root = match plan.prepared_root {
        Some(fd) => ctx(nix::unistd::dup(fd).map(owned), || {
            "reopen the root filesystem".into()
        })?,
        None => open_dir(&plan.rootfs)?,
    };
    let mut cgroups = None;
    for (i, m) in plan.mounts.iter().enumerate() {
        if cgroupfs::is_cgroup_mount(m) {
            cgroups = Some(cgroupfs::prepare(&root, m, &plan.cgroup_root)?);
            continue;
        }
        let tree = plan.bind_trees.get(i).copied().flatten();
        mount_one(&root, m, plan.userns, tree)?;
    }
    if plan
        .mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev"))
    {
        ctx(
            devices::create_nodes(&root, &plan.devices, plan.userns),
            || "create /dev nodes".into(),
        )?;
        ctx(devices::create_symlinks(&root), || {
            "create /dev symlinks".into()
        })?;
    }
    if plan.console {
        // Created now, bind-mounted from the container's own pty later.
        ctx(
            open_or_create(root.as_raw_fd(), Path::new("/dev/console"), Create::File),
            || "create /dev/console".into(),
        )?;
    }
    match plan.prepared_root {
        Some(_) => enter_fd(&root, plan.no_pivot)?,
        None => {
            drop(root);
            enter(&plan.rootfs, plan.no_pivot)?
        }
    }
    let root = open_dir(Path::new("/"))?;
    for (key, value) in &plan.sysctls {
        write_sysctl(key, value)?;
    }
    for p in &plan.masked {
        mask(&root, p)?;
    }
    for p in &plan.readonly_paths {
        readonly(&root, p)?;
    }
    if plan.readonly_root {
        remount(&root, Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(cgroups)
}

/// Writes `net.ipv4.ip_forward` to /proc/sys/net/ipv4/ip_forward of the
/// container's own /proc (its namespaces' values).
fn write_sysctl(key: &str, value: &str) -> Res {
    let rel = key.replace('.', "/");
    if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == "..") {
        return Err(format!("invalid sysctl name {key:?}"));
    }
    let path = Path::new("/proc/sys").join(rel);
    std::fs::write(&path, value).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("sysctl {key} does not exist in this kernel"),
        _ => format!("set sysctl {key}={value}: {e}"),
    })
}

/// pivot_root into the mount whose root is `root` and detach the old root.
fn enter_fd(root: &OwnedFd, no_pivot: bool) -> Res {
    ctx(nix::unistd::fchdir(root.as_raw_fd()), || {
        "change into the root filesystem".into()
    })?;
    pivot_here(None, no_pivot)
}

/// pivot_root into `rootfs` and detach the old root; chroot where pivot_root
/// cannot work (a rootfs on the initramfs) or was not wanted (`no_pivot`).
fn enter(rootfs: &Path, no_pivot: bool) -> Res {
    ctx(chdir(rootfs), || format!("chdir {}", rootfs.display()))?;
    pivot_here(Some(rootfs), no_pivot)
}

/// pivot_root into the working directory, a mount's root; where pivot_root
/// cannot work or is not wanted (`no_pivot`), move the mount at `rootfs` (if
/// named) on `/` and chroot.
fn pivot_here(rootfs: Option<&Path>, no_pivot: bool) -> Res {
    let pivoted = if no_pivot {
        Err(Errno::EINVAL)
    } else {
        pivot_root(".", ".")
    };
    match pivoted {
        Ok(()) => {
            // The old root is now stacked under the new one at "/": detach it
            // without letting the unmount propagate anywhere.
            ctx(
                mount(
                    None::<&str>,
                    ".",
                    None::<&str>,
                    MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    None::<&str>,
                ),
                || "make old root a slave".into(),
            )?;
            ctx(umount2(".", MntFlags::MNT_DETACH), || {
                "detach old root".into()
            })?;
        }
        Err(Errno::EINVAL) if rootfs.is_some() => {
            let rootfs = rootfs.unwrap_or(Path::new("/"));
            tracing::debug!("no pivot_root (not wanted, or not possible here): MS_MOVE and chroot");
            ctx(
                mount(
                    Some(rootfs),
                    "/",
                    None::<&str>,
                    MsFlags::MS_MOVE,
                    None::<&str>,
                ),
                || "move root filesystem to /".into(),
            )?;
            ctx(chroot("."), || "chroot".into())?;
        }
        Err(_) if no_pivot => {
            return Err(
                "--no-pivot is not supported for a container in a user namespace of its own".into(),
            );
        }
        Err(e) => {
            let what = rootfs.map(|p| p.display().to_string());
            let what = what.as_deref().unwrap_or("into the root filesystem");
            return Err(format!("pivot_root {what}: {}", e.desc()));
        }
    }
    ctx(chdir("/"), || "chdir /".into())
}

fn mask(root: &OwnedFd, path: &Path) -> Res {
    let Some(fd) = ctx(open_existing(root.as_raw_fd(), path), || {
        format!("open {}", path.display())
    })?
    else {
        return Ok(());
    };
    let is_dir = nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false);
    let r = if is_dir {
        mount(
            Some("tmpfs"),
            &proc_fd(&fd),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            &proc_fd(&fd),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    ctx(r, || format!("mask {}", path.display()))
}

fn readonly(root: &OwnedFd, path: &Path) -> Res {
    let Some(fd) = ctx(open_existing(root.as_raw_fd(), path), || {
        format!("open {}", path.display())
    })?
    else {
        return Ok(());
    };
    ctx(
        mount(
            Some(&proc_fd(&fd)),
            &proc_fd(&fd),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("bind {} read-only", path.display()),
    )?;
    drop(fd);
    remount(
        root,
        path,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )
}
