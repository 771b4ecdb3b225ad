//! The container's cgroup on cgroup v1 or v2, detected at run time. Both
//! hierarchies implement [`Backend`]; both are tested against fake cgroupfs
//! trees with the same checks, and for real by the end-to-end tests.
//!
//! Written here rather than taken from libcgroups: its v1 manager re-reads
//! /proc/self/mountinfo for every controller, which cost ~1.7 ms of a ~7 ms
//! container start (measured); one parse per container is enough.

pub mod devicefilter;
mod limits;
pub(crate) mod v1;
mod v2;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
pub use limits::{cpu_weight, DeviceRule, Limits};

/// The default mount point of the cgroup hierarchies.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Which cgroup version the host runs (hybrid hosts count as v1: their v2
/// mount has no controllers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

pub fn detect(root: &Path) -> Result<Version> {
    let st = nix::sys::statfs::statfs(root).map_err(|e| Error::Cgroup {
        path: root.to_path_buf(),
        message: format!("cannot tell the cgroup version: {}", e.desc()),
    })?;
    Ok(if st.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC {
        Version::V2
    } else {
        Version::V1
    })
}

/// What a cgroup implementation does for a container.
pub(crate) trait Backend: Send + Sync {
    /// Creates the cgroup (every level, where missing).
    fn create(&self) -> std::io::Result<()>;
    /// Moves `pid` into the cgroup.
    fn add(&self, pid: Pid) -> std::io::Result<()>;
    /// What a process about to be cloned needs to start out in the cgroup
    /// with nobody moving it afterwards.
    fn entry(&self) -> std::io::Result<Entry>;
    /// Writes the limits into the cgroup's files.
    fn apply(&self, limits: &Limits) -> std::io::Result<()>;
    fn freeze(&self, frozen: bool) -> std::io::Result<()>;
    fn pids(&self) -> std::io::Result<Vec<Pid>>;
    /// The cgroup directories, one per hierarchy.
    fn dirs(&self) -> Vec<PathBuf>;
    /// Kills every process in the cgroup (cgroup.kill where there is one).
    fn kill_all(&self) -> std::io::Result<()>;
}

/// How a process about to be cloned gets into the container's cgroup.
///
/// Moving another process in (its pid written to `cgroup.procs`) takes the
/// kernel's global threadgroup lock for writing, which waits for an RCU
/// grace period: 7-11 ms on this kind of host, measured, most of a
/// container's start. Neither way here takes that lock.
pub(crate) enum Entry {
    /// cgroup v1: the new process, still single-threaded, writes "0" (itself)
    /// to each hierarchy's `tasks` file, opened here before the clone; a
    /// thread moving itself needs no global lock. It closes them at once.
    SelfJoin(Vec<std::os::fd::OwnedFd>),
    /// cgroup v2: the process is born in the cgroup (`CLONE_INTO_CGROUP`,
    /// Linux 5.7). Where the kernel refuses that, the caller moves it.
    CloneInto(std::os::fd::OwnedFd),
}

impl Entry {
    /// The `tasks` descriptors the new process writes itself into.
    pub(crate) fn tasks(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Entry::SelfJoin(fds) => fds.iter().map(|f| f.as_raw_fd()).collect(),
            Entry::CloneInto(_) => Vec::new(),
        }
    }

    /// The cgroup directory to clone into.
    pub(crate) fn clone_into(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Entry::SelfJoin(_) => None,
            Entry::CloneInto(dir) => Some(dir.as_raw_fd()),
        }
    }
}

/// Opens `path` for the [`Entry`] of a new process (close-on-exec).
fn open_entry(path: &Path, flags: nix::fcntl::OFlag) -> std::io::Result<std::os::fd::OwnedFd> {
    nix::fcntl::open(
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(crate::paths::owned)
    .map_err(|e| {
        let e = std::io::Error::from(e);
        std::io::Error::new(e.kind(), format!("open {}: {e}", path.display()))
    })
}

/// A container's cgroup: created on [`Cgroup::add`], removed on [`Cgroup::remove`].
pub struct Cgroup {
    path: PathBuf,
    backend: Box<dyn Backend>,
}

impl Cgroup {
    /// `path` is relative to each hierarchy's root (e.g. `berth/<id>`).
    pub fn new(root: &Path, path: &Path) -> Result<Cgroup> {
        let path = path.strip_prefix("/").unwrap_or(path).to_path_buf();
        if path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
            || path.as_os_str().is_empty()
        {
            return Err(Error::Cgroup {
                path,
                message: "cgroup path must be relative and without ..".into(),
            });
        }
        let backend: Box<dyn Backend> = match detect(root)? {
            Version::V2 => Box::new(v2::V2::new(root, &path)),
            Version::V1 => {
                let mountinfo =
                    fs::read_to_string("/proc/self/mountinfo").map_err(|source| Error::Io {
                        op: "read",
                        path: "/proc/self/mountinfo".into(),
                        source,
                    })?;
                Box::new(v1::V1::new(v1::hierarchies(&mountinfo, root), &path))
            }
        };
        Ok(Cgroup { path, backend })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Cgroup {
            path: self.path.clone(),
            message: format!("{what}: {e}"),
        }
    }

    /// Creates the cgroup and writes the spec's limits into its files, before
    /// any process is in it (so no process ever runs under partial rules).
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        self.backend.create().map_err(|e| self.err("create", e))?;
        if let Some(r) = resources {
            self.backend
                .apply(&Limits::from_spec(r))
                .map_err(|e| self.err("apply limits", e))?;
        }
        Ok(())
    }

    /// Writes new limits into a live cgroup (`update`); device rules are
    /// the caller's to leave out, so running processes keep their devices.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.backend
            .apply(&Limits::from_spec(resources))
            .map_err(|e| self.err("update limits", e))
    }

    /// Moves `pid` into the (created) cgroup.
    pub fn add(&self, pid: Pid) -> Result<()> {
        self.backend
            .add(pid)
            .map_err(|e| self.err("add process", e))
    }

    /// Prepares a process's way into the (created) cgroup, before its clone.
    pub(crate) fn entry(&self) -> Result<Entry> {
        self.backend
            .entry()
            .map_err(|e| self.err("prepare a process's entry", e))
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        self.backend
            .freeze(frozen)
            .map_err(|e| self.err("freeze", e))
    }

    pub fn pids(&self) -> Result<Vec<Pid>> {
        self.backend
            .pids()
            .map_err(|e| self.err("list processes", e))
    }

    /// Kills what is left in the cgroup and removes it from every hierarchy.
    /// Every directory is tried even when one fails.
    /// SIGKILLs every process in the cgroup.
    pub fn kill_all(&self) -> Result<()> {
        self.backend
            .kill_all()
            .map_err(|e| self.err("kill processes", e))
    }

    pub fn remove(&self) -> Result<()> {
        let _ = self.backend.kill_all();
        let mut first_err = None;
        for dir in self.backend.dirs() {
            if let Err(e) = remove_dir(&dir) {
                first_err.get_or_insert(self.err(&format!("remove {}", dir.display()), e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many times the kernel's OOM killer struck in the cgroup: one
    /// file, not the whole accounting (a container's end reads only this).
    pub fn oom_kills(&self) -> u64 {
        self.backend
            .dirs()
            .iter()
            .find_map(|dir| {
                fs::read_to_string(dir.join("memory.oom_control"))
                    .or_else(|_| fs::read_to_string(dir.join("memory.events")))
                    .ok()
                    .and_then(|t| stat_key(&t, "oom_kill"))
            })
            .unwrap_or(0)
    }

    /// Resource accounting, from whichever hierarchy holds each figure (the
    /// v1 controllers' files or the v2 unified ones).
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for dir in self.backend.dirs() {
            let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
            let num = |f: &str| read(f).and_then(|s| s.trim().parse::<u64>().ok());
            let key = stat_key;
            if let Some(v) = num("cpuacct.usage") {
                st.cpu_usage_ns = v;
            }
            if let Some(v) = read("cpu.stat").and_then(|t| key(&t, "usage_usec")) {
                st.cpu_usage_ns = v * 1000;
            }
            if let Some(v) = num("memory.usage_in_bytes").or_else(|| num("memory.current")) {
                st.memory_usage = v;
            }
            // v1 writes "no limit" as a huge number, v2 as "max".
            if let Some(v) = num("memory.limit_in_bytes").or_else(|| num("memory.max")) {
                st.memory_limit = (v < i64::MAX as u64 / 2).then_some(v);
            }
            if let Some(t) = read("memory.stat") {
                if let Some(v) = key(&t, "total_inactive_file").or_else(|| key(&t, "inactive_file"))
                {
                    st.memory_cache = v;
                }
            }
            if let Some(v) = num("pids.current") {
                st.pids = v;
            }
            if let Some(t) = read("blkio.throttle.io_service_bytes") {
                for l in t.lines() {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if let [_, op, n] = f[..] {
                        let n = n.parse::<u64>().unwrap_or(0);
                        match op {
                            "Read" => st.io_read_bytes += n,
                            "Write" => st.io_write_bytes += n,
                            _ => {}
                        }
                    }
                }
            }
            if let Some(t) = read("io.stat") {
                for f in t.split_whitespace() {
                    if let Some(n) = f.strip_prefix("rbytes=") {
                        st.io_read_bytes += n.parse::<u64>().unwrap_or(0);
                    } else if let Some(n) = f.strip_prefix("wbytes=") {
                        st.io_write_bytes += n.parse::<u64>().unwrap_or(0);
                    }
                }
            }
            if let Some(v) = read("memory.oom_control")
                .and_then(|t| key(&t, "oom_kill"))
                .or_else(|| read("memory.events").and_then(|t| key(&t, "oom_kill")))
            {
                st.oom_kills = v;
            }
        }
        st
    }
}

/// The number after `k ` on one line of a flat-keyed cgroup file.
fn stat_key(text: &str, k: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix(k)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<u64>().ok())
    })
}

/// A cgroup's accounting, as `stats` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    /// Inactive page cache, which docker subtracts from the usage it shows.
    pub memory_cache: u64,
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub oom_kills: u64,
}

/// Removes a cgroup directory, waiting briefly for its dying processes.
fn remove_dir(dir: &Path) -> std::io::Result<()> {
    for attempt in 0..100 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 99 => {
                kill_procs(dir);
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// SIGKILLs every process listed in `dir/cgroup.procs`.
fn kill_procs(dir: &Path) {
    for pid in read_pids(&dir.join("cgroup.procs")).unwrap_or_default() {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
}

fn read_pids(file: &Path) -> std::io::Result<Vec<Pid>> {
    Ok(fs::read_to_string(file)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(Pid::from_raw)
        .collect())
}

/// Writes a value into an existing cgroup file (never creates one).
fn write(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    let path = dir.join(file);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("write {value:?} to {}: {e}", path.display()),
            )
        })
}

#[cfg(test)]
mod conformance;
