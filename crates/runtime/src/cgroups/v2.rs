//! cgroup v2: one unified directory per cgroup.

use std::fs;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use super::devicefilter::{Bpf, DeviceFilter};
use super::{cpu_weight, kill_procs, read_pids, write, Backend, Limits};

/// Controllers enabled for containers where the host offers them.
const CONTROLLERS: [&str; 6] = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

pub(crate) struct V2 {
    root: PathBuf,
    dir: PathBuf,
    /// v2 has no devices.allow: the rules become an eBPF program.
    devices: Box<dyn DeviceFilter>,
}

impl V2 {
    pub(crate) fn new(root: &Path, path: &Path) -> V2 {
        V2::with_device_filter(root, path, Box::new(Bpf))
    }

    pub(crate) fn with_device_filter(
        root: &Path,
        path: &Path,
        devices: Box<dyn DeviceFilter>,
    ) -> V2 {
        V2 {
            root: root.to_path_buf(),
            dir: root.join(path),
            devices,
        }
    }

    /// Creates the cgroup, enabling the controllers in every ancestor's
    /// subtree_control on the way (a controller must be enabled in the parent
    /// for the child to have its files).
    fn make(&self) -> std::io::Result<()> {
        let available =
            fs::read_to_string(self.root.join("cgroup.controllers")).unwrap_or_default();
        let enable: Vec<String> = CONTROLLERS
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(&self.dir);
        let mut current = self.root.clone();
        for comp in rel.components() {
            let enabled =
                fs::read_to_string(current.join("cgroup.subtree_control")).unwrap_or_default();
            for c in &enable {
                if !enabled.split_whitespace().any(|e| e == &c[1..]) {
                    // Best effort: a parent with processes of its own cannot
                    // delegate; the limit needing it then fails when applied.
                    if let Err(e) = write(&current, "cgroup.subtree_control", c) {
                        tracing::debug!("{e}");
                    }
                }
            }
            current.push(comp);
            match fs::create_dir(&current) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Backend for V2 {
    fn create(&self) -> std::io::Result<()> {
        if self.dir.exists() {
            return Ok(());
        }
        self.make()
    }

    fn add(&self, pid: Pid) -> std::io::Result<()> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn entry(&self) -> std::io::Result<super::Entry> {
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY;
        super::open_entry(&self.dir, flags).map(super::Entry::CloneInto)
    }

    fn apply(&self, l: &Limits) -> std::io::Result<()> {
        let d = &self.dir;
        let max = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        if let Some(m) = l.memory {
            write(d, "memory.max", &max(m))?;
        }
        if let Some(r) = l.memory_reservation {
            write(d, "memory.low", &max(r))?;
        }
        if l.disable_oom_killer {
            tracing::warn!(
                "cgroup v2 cannot disable the OOM killer: --oom-kill-disable is ignored"
            );
        }
        if l.swappiness.is_some() {
            tracing::warn!("cgroup v2 has no memory.swappiness: --memory-swappiness is ignored");
        }
        if l.cpu_rt_period.is_some() || l.cpu_rt_runtime.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "cgroup v2 has no real-time group scheduling (--cpu-rt-runtime needs cgroup v1)",
            ));
        }
        if let Some(w) = l.blkio_weight {
            write(d, "io.weight", &format!("default {}", io_weight(w)))?;
        }
        for (major, minor, w) in &l.blkio_weight_device {
            write(
                d,
                "io.weight",
                &format!("{major}:{minor} {}", io_weight(*w)),
            )?;
        }
        for (key, list) in [
            ("rbps", &l.read_bps),
            ("wbps", &l.write_bps),
            ("riops", &l.read_iops),
            ("wiops", &l.write_iops),
        ] {
            for (major, minor, rate) in list {
                write(d, "io.max", &format!("{major}:{minor} {key}={rate}"))?;
            }
        }
        if let Some(s) = l.memory_swap {
            // v2 limits swap alone; the spec's value counts memory plus swap.
            if d.join("memory.swap.max").exists() {
                let swap = match (s, l.memory) {
                    (s, _) if s < 0 => -1,
                    (s, Some(m)) if m > 0 => (s - m).max(0),
                    (s, _) => s,
                };
                write(d, "memory.swap.max", &max(swap))?;
            } else {
                tracing::warn!("this kernel does not account swap: the swap limit is not applied");
            }
        }
        if l.cpu_quota.is_some() || l.cpu_period.is_some() {
            let quota = l
                .cpu_quota
                .filter(|q| *q > 0)
                .map_or("max".to_string(), |q| q.to_string());
            let period = l.cpu_period.unwrap_or(100_000);
            write(d, "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(s) = l.cpu_shares {
            write(d, "cpu.weight", &cpu_weight(s).to_string())?;
        }
        if let Some(c) = &l.cpuset_cpus {
            write(d, "cpuset.cpus", c)?;
        }
        if let Some(m) = &l.cpuset_mems {
            write(d, "cpuset.mems", m)?;
        }
        if let Some(p) = l.pids {
            write(
                d,
                "pids.max",
                &if p > 0 { p.to_string() } else { "max".into() },
            )?;
        }
        // No rules (an update) leaves the program in place, as v1 leaves
        // devices.allow alone.
        if !l.devices.is_empty() {
            self.devices.install(d, &l.devices)?;
        }
        Ok(())
    }

    fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        write(&self.dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for _ in 0..1000 {
            if fs::read_to_string(self.dir.join("cgroup.events"))?
                .lines()
                .any(|l| l == want)
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the cgroup did not freeze",
        ))
    }

    fn pids(&self) -> std::io::Result<Vec<Pid>> {
        read_pids(&self.dir.join("cgroup.procs"))
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn kill_all(&self) -> std::io::Result<()> {
        if self.dir.join("cgroup.kill").exists() {
            return write(&self.dir, "cgroup.kill", "1");
        }
        kill_procs(&self.dir);
        Ok(())
    }
}

/// blkio weight (10..1000) on io.weight's scale (1..10000), as runc
/// converts it.
fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}
