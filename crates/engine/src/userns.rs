//! User namespaces (`--userns=auto[:size=N]`, podman's behaviour): the
//! container's root is an unprivileged range of host ids, allocated from the
//! subordinate ids `/etc/subuid` and `/etc/subgid` give the user `berth`.
//!
//! Ranges never overlap between containers of one store: a container's range
//! is kept in its record, allocated under the containers lock while the
//! record is written, and free again once the record is gone (`rm`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The user whose subordinate ids Berth hands out (docker's `dockremap`,
/// podman's `containers`).
pub const SUBID_USER: &str = "berth";
/// A container's range unless `--userns=auto:size=N` says (podman's default).
pub const DEFAULT_SIZE: u32 = 65536;
const SUBUID: &str = "/etc/subuid";
const SUBGID: &str = "/etc/subgid";

/// The host ids a container's ids 0..size map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

impl IdRange {
    /// `container:host:size`, as podman's inspect writes a mapping.
    pub fn uid_map(&self) -> String {
        format!("0:{}:{}", self.uid, self.size)
    }
    pub fn gid_map(&self) -> String {
        format!("0:{}:{}", self.gid, self.size)
    }
}

/// A `--userns` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The host's user namespace (docker's default).
    Host,
    /// A namespace of its own with a free range of this size.
    Auto { size: u32 },
}

/// Parses `--userns` (and `--userns-remap`): empty or `host`, `auto`,
/// `auto:size=N`; docker's `default` (remap to its own user) is `auto`.
pub fn parse(s: &str) -> Result<Mode> {
    let bad = || {
        Error::InvalidArgument(format!(
            "invalid user namespace mode {s:?}: use host, auto or auto:size=N"
        ))
    };
    match s {
        "" | "host" => Ok(Mode::Host),
        "auto" | "default" => Ok(Mode::Auto { size: DEFAULT_SIZE }),
        _ => {
            let opts = s.strip_prefix("auto:").ok_or_else(bad)?;
            let mut size = DEFAULT_SIZE;
            for opt in opts.split(',') {
                match opt.split_once('=') {
                    Some(("size", n)) => {
                        size = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
                    }
                    _ => return Err(bad()),
                }
            }
            Ok(Mode::Auto { size })
        }
    }
}

/// Refuses what a container in a user namespace of its own cannot have:
/// namespaces of the host's or of another container, which its namespace
/// does not own (its root could not mount /proc, mqueue or cgroups there, nor
/// join them). Sharing the host's network and UTS namespaces works.
pub(crate) fn check_compatible(opts: &crate::ContainerOptions) -> Result<()> {
    use crate::{NamespaceMode, NetworkMode};
    let whose = |m: &NamespaceMode| match m {
        NamespaceMode::Host => Some("the host's"),
        NamespaceMode::Container(_) => Some("another container's"),
        _ => None,
    };
    let conflict = [
        (whose(&opts.pid), "PID"),
        (whose(&opts.ipc), "IPC"),
        (
            matches!(opts.network, NetworkMode::Container(_)).then_some("another container's"),
            "network",
        ),
        (opts.cgroupns_host.then_some("the host's"), "cgroup"),
        (
            matches!(opts.uts, NamespaceMode::Container(_)).then_some("another container's"),
            "UTS",
        ),
    ]
    .into_iter()
    .find_map(|(w, ns)| w.map(|w| (w, ns)));
    match conflict {
        // docker's wording for the same refusal under userns-remap.
        Some((whose, ns)) => Err(Error::InvalidArgument(format!(
            "cannot share {whose} {ns} namespace when user namespaces are enabled (--userns={}; use --userns=host)",
            opts.userns
        ))),
        None => Ok(()),
    }
}

/// The ranges `/etc/subuid`-style `text` gives `user` (by name or uid):
/// (first id, count).
pub(crate) fn subids(text: &str, user: &str, uid: Option<u32>) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            let mine = who == user || uid.is_some_and(|u| who == u.to_string());
            let (start, count) = (start.parse::<u64>().ok()?, count.parse::<u64>().ok()?);
            (mine && count > 0).then_some((start, count))
        })
        .collect()
}

/// The lowest first id of `size` ids inside one of `available` that meets
/// none of `used` (first id, count).
pub(crate) fn first_fit(available: &[(u64, u64)], used: &[(u64, u64)], size: u64) -> Option<u32> {
    let mut used = used.to_vec();
    used.sort();
    for &(start, count) in available {
        let end = start + count;
        let mut at = start;
        for &(u, n) in &used {
            if u + n <= at {
                continue;
            }
            if u >= at + size {
                break;
            }
            at = u + n;
        }
        // Ids are 32-bit and (u32)-1 is "no id".
        if at + size <= end && at + size <= u32::MAX as u64 {
            return u32::try_from(at).ok();
        }
    }
    None
}

fn berth_uid() -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == SUBID_USER).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

fn read(path: &str) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// Allocates `size` ids for a new container, avoiding the ranges of
/// `taken` (the store's other containers). Call under the containers lock.
pub(crate) fn allocate(taken: &[IdRange], size: u32) -> Result<IdRange> {
    let uid = berth_uid();
    let (subuid, subgid) = (read(SUBUID)?, read(SUBGID)?);
    let (uids, gids) = (
        subids(&subuid, SUBID_USER, uid),
        subids(&subgid, SUBID_USER, uid),
    );
    if uids.is_empty() || gids.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "--userns=auto needs subordinate ids for the user {SUBID_USER} in {SUBUID} and {SUBGID} \
             (e.g. `useradd --system {SUBID_USER}` and the line `{SUBID_USER}:1000000000:1000000000` in both)"
        )));
    }
    let used_u: Vec<(u64, u64)> = taken
        .iter()
        .map(|r| (r.uid as u64, r.size as u64))
        .collect();
    let used_g: Vec<(u64, u64)> = taken
        .iter()
        .map(|r| (r.gid as u64, r.size as u64))
        .collect();
    let exhausted = |what: &str| {
        Error::Conflict(format!(
            "no free range of {size} {what}s left for user {SUBID_USER}: every one is in use by a container"
        ))
    };
    Ok(IdRange {
        uid: first_fit(&uids, &used_u, size as u64).ok_or_else(|| exhausted("uid"))?,
        gid: first_fit(&gids, &used_g, size as u64).ok_or_else(|| exhausted("gid"))?,
        size,
    })
}

/// A view of a remapped container's `dir` (its writable layer) in which
/// the range's ids show as the container's own (host uid+N as N), the way
/// an image layer records them; what the range does not cover shows as the
/// overflow id. Read it through `/proc/self/fd/N` while the descriptor lives.
pub(crate) fn container_view(dir: &Path, range: &IdRange) -> Result<std::os::fd::OwnedFd> {
    let map = |host: u32| {
        berth_runtime::oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(host)
            .host_id(0u32)
            .size(range.size)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("id map: {e}")))
    };
    Ok(berth_runtime::idmapped_view(
        dir,
        &[map(range.uid)?],
        &[map(range.gid)?],
    )?)
}

/// Gives what overlay left in a remapped container's `work` directory (its
/// `work/` and `index/`, made as the host's root by the container's mount)
/// to the range's root: through a view (see [`container_view`]) the host's
/// root is no id at all, and overlay, unable to clear them, would mount
/// read-only.
pub(crate) fn adopt_work_dir(work: &Path, range: &IdRange) -> Result<()> {
    let mut stack = vec![work.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(Error::io("read", &d))?;
        for e in entries {
            let e = e.map_err(Error::io("read", &d))?;
            let path = e.path();
            let md = std::fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
            if md.uid() == 0 {
                chown_to_root(&path, range)?;
            }
            if md.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(())
}

/// Where to read `dir`: through `view` when there is one.
pub(crate) fn view_path(dir: &Path, view: Option<&std::os::fd::OwnedFd>) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    match view {
        Some(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()).into(),
        None => dir.to_path_buf(),
    }
}

/// Gives `path` (not what is in it) to the range's root, as docker does for
/// what a remapped root must write.
pub(crate) fn chown_to_root(path: &Path, range: &IdRange) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(range.uid), Some(range.gid))
        .map_err(Error::io("chown", path))
}

/// Gives a volume's directory to the range's root on the first use by a
/// remapped container (while it still belongs to the host's root), as
/// docker does; a directory another range owns is left alone.
pub(crate) fn adopt_volume(path: &Path, range: &IdRange) -> Result<()> {
    let md = std::fs::metadata(path).map_err(Error::io("stat", path))?;
    if md.uid() == 0 && md.gid() == 0 {
        chown_to_root(path, range)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse("").unwrap(), Mode::Host);
        assert_eq!(parse("host").unwrap(), Mode::Host);
        assert_eq!(parse("auto").unwrap(), Mode::Auto { size: 65536 });
        assert_eq!(parse("default").unwrap(), Mode::Auto { size: 65536 });
        assert_eq!(parse("auto:size=1000").unwrap(), Mode::Auto { size: 1000 });
        for bad in [
            "keep-id",
            "auto:size=0",
            "auto:size=x",
            "auto:uidmapping=0:1:1",
            "private",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces_it_cannot_own_are_refused() {
        use crate::{ContainerOptions, NamespaceMode, NetworkMode};
        let mut o = ContainerOptions::new("busybox");
        o.userns = "auto".into();
        o.network = NetworkMode::Host;
        o.uts = NamespaceMode::Host;
        assert!(check_compatible(&o).is_ok());
        o.pid = NamespaceMode::Host;
        let e = check_compatible(&o).unwrap_err().to_string();
        assert!(e.contains("cannot share the host's PID namespace"), "{e}");
        o.pid = NamespaceMode::Private;
        o.network = NetworkMode::Container("db".into());
        let e = check_compatible(&o).unwrap_err().to_string();
        assert!(e.contains("another container's network namespace"), "{e}");
        o.network = NetworkMode::Bridge;
        o.cgroupns_host = true;
        assert!(check_compatible(&o).is_err());
    }

    #[test]
    fn subordinate_ids_of_one_user_by_name_or_uid() {
        let text =
            "alice:100000:65536\nberth:1000000000:1000000000\n998:5000:10\nbad line\nberth:x:1\n";
        assert_eq!(
            subids(text, "berth", Some(998)),
            [(1_000_000_000, 1_000_000_000), (5000, 10)]
        );
        assert!(subids(text, "bob", None).is_empty());
    }

    #[test]
    fn ranges_never_overlap() {
        let avail = [(1000, 300)];
        assert_eq!(first_fit(&avail, &[], 100), Some(1000));
        assert_eq!(first_fit(&avail, &[(1000, 100)], 100), Some(1100));
        // A hole that is too small is skipped; one that fits is used.
        assert_eq!(
            first_fit(&avail, &[(1000, 50), (1100, 100)], 100),
            Some(1200)
        );
        assert_eq!(
            first_fit(&avail, &[(1000, 100), (1200, 100)], 100),
            Some(1100)
        );
        assert_eq!(first_fit(&avail, &[(1000, 300)], 1), None);
        // The next range of the user when the first is full.
        assert_eq!(first_fit(&[(0, 10), (50, 10)], &[(0, 10)], 10), Some(50));
        // Never past the last valid id.
        assert_eq!(first_fit(&[(u32::MAX as u64 - 5, 10)], &[], 10), None);
    }
}
