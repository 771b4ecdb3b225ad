//! The container's /dev: the standard nodes and symlinks on the tmpfs the spec mounts there.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use crate::paths::{open_or_create, proc_fd, Create};

/// The nodes every container gets (runc's and Docker's default set).
pub(crate) const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A device cgroup rule as the spec writes it: a wildcard number is a
/// missing one.
pub fn cgroup_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, oci_spec::OciSpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build()
}

/// What every container may use (runc's and Docker's defaults): mknod of
/// any node, the nodes of [`DEFAULT_DEVICES`], /dev/console, /dev/ptmx and
/// the pty slaves.
pub fn default_cgroup_rules() -> Result<Vec<LinuxDeviceCgroup>, oci_spec::OciSpecError> {
    let mut rules = vec![
        cgroup_rule(true, LinuxDeviceType::C, None, None, "m")?,
        cgroup_rule(true, LinuxDeviceType::B, None, None, "m")?,
    ];
    let consoles = [(5, Some(1)), (5, Some(2)), (136, None)];
    let nodes = DEFAULT_DEVICES
        .iter()
        .map(|&(_, major, minor)| (major as i64, Some(minor as i64)));
    for (major, minor) in nodes.chain(consoles) {
        rules.push(cgroup_rule(
            true,
            LinuxDeviceType::C,
            Some(major),
            minor,
            "rwm",
        )?);
    }
    Ok(rules)
}

pub(crate) const DEFAULT_SYMLINKS: [(&str, &str); 6] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
    ("ptmx", "pts/ptmx"),
];

pub(crate) struct Node {
    pub path: String,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The default nodes plus the spec's `linux.devices`.
pub(crate) fn nodes(extra: &[LinuxDevice]) -> Vec<Node> {
    let mut out: Vec<Node> = DEFAULT_DEVICES
        .iter()
        .map(|(name, major, minor)| Node {
            path: format!("/dev/{name}"),
            kind: SFlag::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in extra {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let path = d.path().to_string_lossy().into_owned();
        out.retain(|n| n.path != path);
        out.push(Node {
            path,
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    out
}

/// Creates the nodes inside the rootfs (`root` is an fd on it). In a user
/// namespace mknod is not allowed, so the host's node is bind-mounted instead.
pub(crate) fn create_nodes(root: &impl AsRawFd, nodes: &[Node], bind: bool) -> nix::Result<()> {
    let root = root.as_raw_fd();
    for node in nodes {
        let rel = crate::paths::relative(Path::new(&node.path))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = open_or_create(root, parent, Create::Dir)?;
        let Some(name) = rel.file_name() else {
            return Err(Errno::EINVAL);
        };
        let bind_host_node = || -> nix::Result<()> {
            let target = open_or_create(root, &rel, Create::File)?;
            mount(
                Some(Path::new(&node.path)),
                &proc_fd(&target),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        if bind {
            bind_host_node()?;
            continue;
        }
        // An O_PATH descriptor serves as dirfd for the *at calls.
        match mknodat(
            Some(dir.as_raw_fd()),
            name,
            node.kind,
            Mode::from_bits_truncate(node.mode),
            makedev(node.major, node.minor),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            // The caller's devices cgroup may forbid mknod (podman's conmon
            // runs in one that does): the host's node, bound, as runc does.
            Err(Errno::EPERM) => {
                bind_host_node()?;
                continue;
            }
            Err(e) => return Err(e),
        }
        fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// The standard /dev symlinks (`/dev/fd`, `/dev/stdin`, ..., `/dev/ptmx`).
pub(crate) fn create_symlinks(root: &impl AsRawFd) -> nix::Result<()> {
    let dev = open_or_create(root.as_raw_fd(), Path::new("/dev"), Create::Dir)?;
    for (name, target) in DEFAULT_SYMLINKS {
        match symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
