//! The container's view of its cgroups at `/sys/fs/cgroup`, mounted as runc
//! mounts it: read-only unless the spec's mount says `rw`, with the
//! container's own cgroup as the root of every hierarchy, so that the JVM,
//! Go, .NET and `nproc` find the container's limits where they look.
//!
//! A cgroup filesystem mounted inside a cgroup namespace is rooted at the
//! cgroup the mounter was in when the namespace was made. The init joins its
//! cgroup (the parent's work) and then unshares its cgroup namespace, after
//! the parent's go; so the mounts are done in two steps. [`prepare`] runs
//! while the root filesystem is built, overlapping the parent's cgroup setup:
//! it reads the host's hierarchies and, on v1, mounts the tmpfs with one
//! directory per hierarchy and the links for combined ones. [`Pending::finish`]
//! runs after the unshare: the cgroup mounts themselves, then the tmpfs
//! becomes read-only.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;
use oci_spec::runtime::Mount;

use crate::cgroups::{self, v1::HostMount, Version};
use crate::mounts::MountOptions;
use crate::paths::{open_existing, open_or_create, owned, proc_fd, Create};
use crate::rootfs::{ctx, remount_fd, Res};

/// Whether `m` asks for the container's cgroups (docker's `type: cgroup`).
pub(crate) fn is_cgroup_mount(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2"))
}

/// The cgroup mounts left for after the init has unshared its cgroup
/// namespace. Its descriptors stay valid across pivot_root.
pub(crate) struct Pending {
    /// The flags of every cgroup mount (`ro`, `nosuid`, ...).
    flags: MsFlags,
    /// The mount point, for messages.
    dest: PathBuf,
    kind: Kind,
}

enum Kind {
    /// cgroup2 right on the mount point.
    V2 { target: OwnedFd },
    /// A tmpfs on the mount point with one directory per v1 hierarchy.
    V1 {
        tmpfs: OwnedFd,
        hierarchies: Vec<(OwnedFd, Hierarchy)>,
    },
}

/// One v1 hierarchy as it is mounted in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// The directory under the tmpfs, named as on the host (`cpu,cpuacct`).
    pub dir: String,
    /// The mount's data: what names the hierarchy (`cpu,cpuacct`,
    /// `xattr,name=systemd`).
    pub data: String,
}

/// The v1 hierarchies to mount, from the host's mounts under its cgroup root,
/// plus the links for combined ones (`cpu` -> `cpu,cpuacct`).
pub(crate) fn v1_layout(
    host: &[HostMount],
    root: &Path,
) -> (Vec<Hierarchy>, Vec<(String, String)>) {
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    for m in host {
        // Only hierarchies mounted directly under the root have a place here.
        let Ok(rel) = m.mount.strip_prefix(root) else {
            continue;
        };
        let mut comps = rel.components();
        let (Some(std::path::Component::Normal(dir)), None) = (comps.next(), comps.next()) else {
            continue;
        };
        let dir = dir.to_string_lossy().into_owned();
        if hierarchies.iter().any(|h| h.dir == dir) {
            continue;
        }
        // A release agent may only be given in the initial cgroup namespace
        // (and the host's stays in force anyway).
        let data: Vec<&str> = m
            .options
            .iter()
            .map(String::as_str)
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent="))
            .collect();
        hierarchies.push(Hierarchy {
            dir,
            data: data.join(","),
        });
    }
    let mut links = Vec::new();
    for h in &hierarchies {
        if !h.dir.contains(',') {
            continue;
        }
        for part in h.dir.split(',') {
            let taken = hierarchies.iter().any(|o| o.dir == part)
                || links
                    .iter()
                    .any(|(name, _): &(String, String)| name == part);
            if !part.is_empty() && !taken {
                links.push((part.to_string(), h.dir.clone()));
            }
        }
    }
    (hierarchies, links)
}

/// First step, before pivot_root (see the module's comment). `root` is the
/// container's root directory; `cgroup_root` where the host mounts its
/// hierarchies.
pub(crate) fn prepare(root: &OwnedFd, m: &Mount, cgroup_root: &Path) -> Res<Pending> {
    let dest = m.destination().clone();
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
    let target = ctx(open_or_create(root.as_raw_fd(), &dest, Create::Dir), || {
        format!("create mount point {}", dest.display())
    })?;
    let version = cgroups::detect(cgroup_root).map_err(|e| e.to_string())?;
    let kind = match version {
        Version::V2 => Kind::V2 { target },
        Version::V1 => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
            let host = cgroups::v1::host_mounts(&mountinfo, cgroup_root);
            let (hierarchies, links) = v1_layout(&host, cgroup_root);
            v1_tmpfs(root, &target, &dest, opts.flags, &hierarchies, &links)?
        }
    };
    Ok(Pending {
        flags: opts.flags,
        dest,
        kind,
    })
}

/// Mounts the (still writable) tmpfs and makes its directories and links.
fn v1_tmpfs(
    root: &OwnedFd,
    target: &OwnedFd,
    dest: &Path,
    flags: MsFlags,
    hierarchies: &[Hierarchy],
    links: &[(String, String)],
) -> Res<Kind> {
    ctx(
        mount(
            Some("tmpfs"),
            &proc_fd(target),
            Some("tmpfs"),
            flags - MsFlags::MS_RDONLY,
            Some("mode=755"),
        ),
        || format!("mount tmpfs on {}", dest.display()),
    )?;
    // The tmpfs, not the directory under it that `target` still names.
    let tmpfs = ctx(open_existing(root.as_raw_fd(), dest), || {
        format!("open {}", dest.display())
    })?
    .ok_or_else(|| format!("{}: mount point vanished", dest.display()))?;
    let mut dirs = Vec::with_capacity(hierarchies.len());
    for h in hierarchies {
        ctx(
            mkdirat(
                Some(tmpfs.as_raw_fd()),
                h.dir.as_str(),
                Mode::from_bits_truncate(0o755),
            ),
            || format!("create {}/{}", dest.display(), h.dir),
        )?;
        let fd = ctx(
            nix::fcntl::openat(
                Some(tmpfs.as_raw_fd()),
                h.dir.as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(owned),
            || format!("open {}/{}", dest.display(), h.dir),
        )?;
        dirs.push((fd, h.clone()));
    }
    for (name, to) in links {
        ctx(
            symlinkat(to.as_str(), Some(tmpfs.as_raw_fd()), name.as_str()),
            || format!("link {}/{name}", dest.display()),
        )?;
    }
    Ok(Kind::V1 {
        tmpfs,
        hierarchies: dirs,
    })
}

impl Pending {
    /// Second step: the init is in its cgroup and its own cgroup namespace.
    pub(crate) fn finish(self) -> Res {
        let dest = self.dest.display();
        match self.kind {
            Kind::V2 { target } => ctx(
                mount(
                    Some("cgroup2"),
                    &proc_fd(&target),
                    Some("cgroup2"),
                    self.flags,
                    None::<&str>,
                ),
                || format!("mount cgroup2 on {dest}"),
            ),
            Kind::V1 { tmpfs, hierarchies } => {
                for (fd, h) in &hierarchies {
                    ctx(
                        mount(
                            Some("cgroup"),
                            &proc_fd(fd),
                            Some("cgroup"),
                            self.flags,
                            Some(h.data.as_str()),
                        ),
                        || format!("mount cgroup {} on {dest}/{}", h.data, h.dir),
                    )?;
                }
                if self.flags.contains(MsFlags::MS_RDONLY) {
                    remount_fd(&tmpfs, &self.dest, MsFlags::MS_RDONLY)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(mount: &str, options: &[&str]) -> HostMount {
        HostMount {
            mount: PathBuf::from(mount),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn v1_layout_names_hierarchies_and_links_combined_ones() {
        let root = Path::new("/sys/fs/cgroup");
        let host = [
            host("/sys/fs/cgroup/cpu,cpuacct", &["rw", "cpu", "cpuacct"]),
            host("/sys/fs/cgroup/memory", &["rw", "memory"]),
            host(
                "/sys/fs/cgroup/systemd",
                &[
                    "rw",
                    "xattr",
                    "release_agent=/lib/systemd/x",
                    "name=systemd",
                ],
            ),
            host(
                "/sys/fs/cgroup/net_cls,net_prio",
                &["rw", "net_cls", "net_prio"],
            ),
            // Not directly under the root: no place for it.
            host("/sys/fs/cgroup/deep/pids", &["rw", "pids"]),
            host("/elsewhere/blkio", &["rw", "blkio"]),
        ];
        let (h, links) = v1_layout(&host, root);
        let dirs: Vec<(&str, &str)> = h
            .iter()
            .map(|h| (h.dir.as_str(), h.data.as_str()))
            .collect();
        assert_eq!(
            dirs,
            [
                ("cpu,cpuacct", "cpu,cpuacct"),
                ("memory", "memory"),
                ("systemd", "xattr,name=systemd"),
                ("net_cls,net_prio", "net_cls,net_prio"),
            ]
        );
        let links: Vec<(&str, &str)> = links
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("cpu", "cpu,cpuacct"),
                ("cpuacct", "cpu,cpuacct"),
                ("net_cls", "net_cls,net_prio"),
                ("net_prio", "net_cls,net_prio"),
            ]
        );
    }

    #[test]
    fn separate_hierarchies_get_no_links() {
        let root = Path::new("/sys/fs/cgroup");
        let host = [
            host("/sys/fs/cgroup/cpu", &["rw", "cpu"]),
            host("/sys/fs/cgroup/cpuacct", &["rw", "cpuacct"]),
        ];
        let (h, links) = v1_layout(&host, root);
        assert_eq!(h.len(), 2);
        assert!(links.is_empty());
    }
}
