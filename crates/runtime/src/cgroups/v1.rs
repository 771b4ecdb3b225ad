//! cgroup v1: one directory per hierarchy (memory, cpu, cpuset, pids, ...).

use std::fs;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use super::{kill_procs, read_pids, write, Backend, Limits};

/// Options of a v1 cgroup mount that are not hierarchies' names: what is
/// left (`memory`, `cpu`, `name=systemd`, ...) names the hierarchy.
const MOUNT_FLAGS: [&str; 9] = [
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "none",
    "favordynmods",
    "nofavordynmods",
];

/// A v1 cgroup mount of the host: its mount point and its superblock options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostMount {
    pub mount: PathBuf,
    pub options: Vec<String>,
}

/// The v1 cgroup mounts under `root`, from /proc/self/mountinfo text (one
/// per mount point).
pub(crate) fn host_mounts(mountinfo: &str, root: &Path) -> Vec<HostMount> {
    let mut out: Vec<HostMount> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        if r.next() != Some("cgroup") {
            continue;
        }
        let super_opts = r.nth(1).unwrap_or("");
        let Some(mount) = left.split(' ').nth(4).map(PathBuf::from) else {
            continue;
        };
        if !mount.starts_with(root) || out.iter().any(|h| h.mount == mount) {
            continue;
        }
        out.push(HostMount {
            mount,
            options: super_opts.split(',').map(str::to_string).collect(),
        });
    }
    out
}

/// One mounted hierarchy: its mount point and the controllers bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

/// The v1 hierarchies mounted under `root`, from /proc/self/mountinfo text.
/// Named ones (`name=systemd`) count too: the container gets a cgroup in
/// every hierarchy, as runc gives it, so that each one it sees at
/// /sys/fs/cgroup is rooted at its own cgroup and never shows the host's.
pub(crate) fn hierarchies(mountinfo: &str, root: &Path) -> Vec<Hierarchy> {
    host_mounts(mountinfo, root)
        .into_iter()
        .filter_map(|m| {
            let controllers: Vec<String> = m
                .options
                .into_iter()
                .filter(|o| !MOUNT_FLAGS.contains(&o.as_str()) && !o.starts_with("release_agent="))
                .collect();
            (!controllers.is_empty()).then_some(Hierarchy {
                mount: m.mount,
                controllers,
            })
        })
        .collect()
}

pub(crate) struct V1 {
    /// (controllers, directory of the container's cgroup)
    dirs: Vec<(Vec<String>, PathBuf)>,
}

impl V1 {
    pub(crate) fn new(hierarchies: Vec<Hierarchy>, path: &Path) -> V1 {
        V1 {
            dirs: hierarchies
                .into_iter()
                .map(|h| (h.controllers, h.mount.join(path)))
                .collect(),
        }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == controller))
            .map(|(_, d)| d.as_path())
    }

    fn apply_blkio(&self, l: &Limits) -> std::io::Result<()> {
        let throttles = [
            ("blkio.throttle.read_bps_device", &l.read_bps),
            ("blkio.throttle.write_bps_device", &l.write_bps),
            ("blkio.throttle.read_iops_device", &l.read_iops),
            ("blkio.throttle.write_iops_device", &l.write_iops),
        ];
        if l.blkio_weight.is_none()
            && l.blkio_weight_device.is_empty()
            && throttles.iter().all(|(_, v)| v.is_empty())
        {
            return Ok(());
        }
        let dir = self.need("blkio")?;
        let weight_file = if dir.join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        if (l.blkio_weight.is_some() || !l.blkio_weight_device.is_empty())
            && !dir.join(weight_file).exists()
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this kernel's IO scheduler has no blkio weight (needs BFQ)",
            ));
        }
        if let Some(w) = l.blkio_weight {
            write(dir, weight_file, &w.to_string())?;
        }
        for (major, minor, w) in &l.blkio_weight_device {
            write(
                dir,
                &format!("{weight_file}_device"),
                &format!("{major}:{minor} {w}"),
            )?;
        }
        for (file, list) in throttles {
            for (major, minor, rate) in list {
                write(dir, file, &format!("{major}:{minor} {rate}"))?;
            }
        }
        Ok(())
    }

    fn need(&self, controller: &str) -> std::io::Result<&Path> {
        self.dir(controller).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the {controller} cgroup controller is not mounted on this host"),
            )
        })
    }
}

/// A new cpuset cgroup starts with empty cpus/mems and refuses tasks: fill
/// them in from the nearest ancestor, creating each level on the way down.
/// A level that exists is checked too: another process may have made it and
/// not filled it in yet.
fn create_cpuset(dir: &Path) -> std::io::Result<()> {
    let filled = |d: &Path| {
        ["cpuset.cpus", "cpuset.mems"]
            .iter()
            .all(|f| fs::read_to_string(d.join(f)).map_or(true, |v| !v.trim().is_empty()))
    };
    if dir.exists() && filled(dir) {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_cpuset(parent)?;
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let read = |d: &Path| match fs::read_to_string(d.join(f)) {
                Ok(v) => Ok(Some(v.trim().to_string())),
                // Not a cpuset directory (above the hierarchy's root).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
            if read(dir)?.is_some_and(|v| v.is_empty()) {
                if let Some(v) = read(parent)? {
                    write(dir, f, &v)?;
                }
            }
        }
    }
    Ok(())
}

impl Backend for V1 {
    fn create(&self) -> std::io::Result<()> {
        for (controllers, dir) in &self.dirs {
            if controllers.iter().any(|c| c == "cpuset") {
                create_cpuset(dir)?;
            } else {
                fs::create_dir_all(dir)?;
            }
        }
        Ok(())
    }

    fn add(&self, pid: Pid) -> std::io::Result<()> {
        for (_, dir) in &self.dirs {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn entry(&self) -> std::io::Result<super::Entry> {
        let tasks = self
            .dirs
            .iter()
            .map(|(_, dir)| super::open_entry(&dir.join("tasks"), nix::fcntl::OFlag::O_WRONLY))
            .collect::<std::io::Result<_>>()?;
        Ok(super::Entry::SelfJoin(tasks))
    }

    fn apply(&self, l: &Limits) -> std::io::Result<()> {
        if l.memory.is_some() || l.memory_swap.is_some() {
            let dir = self.need("memory")?;
            let limit = l.memory.unwrap_or(-1);
            // memsw must stay >= the limit at every step: raise it first, lower it last.
            let swap = l
                .memory_swap
                .filter(|_| dir.join("memory.memsw.limit_in_bytes").exists());
            if l.memory_swap.is_some() && swap.is_none() {
                tracing::warn!("this kernel does not account swap: the swap limit is not applied");
            }
            if let Some(s) = swap {
                let _ = write(dir, "memory.memsw.limit_in_bytes", &s.to_string());
            }
            write(dir, "memory.limit_in_bytes", &limit.to_string())?;
            if let Some(s) = swap {
                write(dir, "memory.memsw.limit_in_bytes", &s.to_string())?;
            }
        }
        if let Some(r) = l.memory_reservation {
            write(
                self.need("memory")?,
                "memory.soft_limit_in_bytes",
                &r.to_string(),
            )?;
        }
        if l.disable_oom_killer {
            write(self.need("memory")?, "memory.oom_control", "1")?;
        }
        if let Some(v) = l.swappiness {
            write(self.need("memory")?, "memory.swappiness", &v.to_string())?;
        }
        if l.cpu_rt_period.is_some() || l.cpu_rt_runtime.is_some() {
            let dir = self.need("cpu")?;
            if !dir.join("cpu.rt_runtime_us").exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "this kernel does not support real-time group scheduling (cpu.rt_runtime_us)",
                ));
            }
            if let Some(p) = l.cpu_rt_period {
                write(dir, "cpu.rt_period_us", &p.to_string())?;
            }
            if let Some(r) = l.cpu_rt_runtime {
                write(dir, "cpu.rt_runtime_us", &r.to_string()).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidInput {
                        std::io::Error::new(
                            e.kind(),
                            format!("{e}: the real-time runtime must fit in the parent cgroup's budget (its cpu.rt_runtime_us)"),
                        )
                    } else {
                        e
                    }
                })?;
            }
        }
        self.apply_blkio(l)?;
        if l.cpu_shares.is_some() || l.cpu_quota.is_some() || l.cpu_period.is_some() {
            let dir = self.need("cpu")?;
            if let Some(s) = l.cpu_shares {
                write(dir, "cpu.shares", &s.to_string())?;
            }
            if let Some(p) = l.cpu_period {
                write(dir, "cpu.cfs_period_us", &p.to_string())?;
            }
            if let Some(q) = l.cpu_quota {
                write(dir, "cpu.cfs_quota_us", &q.to_string())?;
            }
        }
        if l.cpuset_cpus.is_some() || l.cpuset_mems.is_some() {
            let dir = self.need("cpuset")?;
            if let Some(c) = &l.cpuset_cpus {
                write(dir, "cpuset.cpus", c)?;
            }
            if let Some(m) = &l.cpuset_mems {
                write(dir, "cpuset.mems", m)?;
            }
        }
        if let Some(p) = l.pids {
            let v = if p > 0 { p.to_string() } else { "max".into() };
            write(self.need("pids")?, "pids.max", &v)?;
        }
        if !l.devices.is_empty() {
            if let Some(dir) = self.dir("devices") {
                for rule in &l.devices {
                    let file = if rule.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    write(dir, file, &rule.line())?;
                }
            }
        }
        Ok(())
    }

    fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        let dir = self.need("freezer")?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            write(dir, "freezer.state", want)?;
            if fs::read_to_string(dir.join("freezer.state"))?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the cgroup did not become {want}"),
        ))
    }

    fn pids(&self) -> std::io::Result<Vec<Pid>> {
        let (_, dir) = self
            .dirs
            .first()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let dir = self.dir("pids").unwrap_or(dir);
        read_pids(&dir.join("cgroup.procs"))
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn kill_all(&self) -> std::io::Result<()> {
        for (_, dir) in &self.dirs {
            kill_procs(dir);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_fills_a_level_another_process_made_but_left_empty() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cpuset.cpus"), "0-1\n").unwrap();
        fs::write(root.path().join("cpuset.mems"), "0\n").unwrap();
        // The parent exists (made concurrently) with nothing in it yet.
        let parent = root.path().join("berth");
        fs::create_dir(&parent).unwrap();
        fs::write(parent.join("cpuset.cpus"), "").unwrap();
        fs::write(parent.join("cpuset.mems"), "").unwrap();
        create_cpuset(&parent.join("c1")).unwrap();
        assert_eq!(
            fs::read_to_string(parent.join("cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(fs::read_to_string(parent.join("cpuset.mems")).unwrap(), "0");
        assert!(parent.join("c1").is_dir());
    }

    #[test]
    fn parses_mountinfo() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
            50 23 0:40 / /elsewhere/cpuset rw - cgroup cgroup rw,cpuset\n";
        let h = hierarchies(text, Path::new("/sys/fs/cgroup"));
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].mount, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h[1].controllers, ["memory"]);
        assert_eq!(h[2].controllers, ["name=systemd"]);
    }
}
