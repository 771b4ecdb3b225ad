//! The container's cgroup, on cgroup v1 or v2 (detected at run time), through
//! `libcgroups`' managers, which share one trait.

use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager_with_root, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

/// The default mount point of the cgroup hierarchies.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// Which cgroup version the host runs (hybrid hosts count as v1: v2 has no controllers there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

pub fn detect(root: &Path) -> Result<Version> {
    use libcgroups::common::{get_cgroup_setup_with_root, CgroupSetup};
    match get_cgroup_setup_with_root(root) {
        Ok(CgroupSetup::Unified) => Ok(Version::V2),
        Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid) => Ok(Version::V1),
        Err(e) => Err(Error::Cgroup {
            path: root.to_path_buf(),
            message: format!("cannot tell the cgroup version: {e}"),
        }),
    }
}

/// A container's cgroup: created on [`Cgroup::add`], removed on [`Cgroup::remove`].
pub struct Cgroup {
    path: PathBuf,
    manager: AnyCgroupManager,
}

impl Cgroup {
    /// `path` is relative to each hierarchy's root (e.g. `berth/<id>`).
    pub fn new(root: &Path, path: &Path) -> Result<Cgroup> {
        let manager = create_cgroup_manager_with_root(
            Some(root),
            CgroupConfig {
                cgroup_path: path.to_path_buf(),
                systemd_cgroup: false,
                container_name: String::new(),
            },
        )
        .map_err(|e| Error::Cgroup {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Cgroup {
            path: path.to_path_buf(),
            manager,
        })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Cgroup {
            path: self.path.clone(),
            message: format!("{what}: {e}"),
        }
    }

    /// Creates the cgroup (where needed) and moves `pid` into it.
    pub fn add(&self, pid: Pid) -> Result<()> {
        self.manager
            .add_task(pid)
            .map_err(|e| self.err("add process", e))
    }

    /// Writes the resource limits into the cgroup's files.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        let opt = ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        self.manager
            .apply(&opt)
            .map_err(|e| self.err("apply limits", e))
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.manager
            .freeze(state)
            .map_err(|e| self.err("freeze", e))
    }

    pub fn pids(&self) -> Result<Vec<Pid>> {
        self.manager
            .get_all_pids()
            .map_err(|e| self.err("list processes", e))
    }

    /// Kills what is left in the cgroup and removes it from every hierarchy.
    pub fn remove(&self) -> Result<()> {
        self.manager.remove().map_err(|e| self.err("remove", e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcgroups::v2::manager::Manager as V2;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    /// A directory laid out like a cgroup2 mount with the controllers Berth uses.
    fn fake_v2(root: &Path, cgroup: &str) -> PathBuf {
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let dir = root.join(cgroup);
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "cgroup.procs",
            "cgroup.subtree_control",
            "cpu.max",
            "cpu.weight",
            "cpuset.cpus",
            "cpuset.mems",
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "pids.max",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        dir
    }

    #[test]
    fn v2_limits_land_in_the_unified_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fake_v2(tmp.path(), "berth/c1");
        let resources = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 * 1024 * 1024)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(20000)
                    .period(100000u64)
                    .shares(512u64)
                    .cpus("0")
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(50).build().unwrap())
            .build()
            .unwrap();
        let manager = V2::new(tmp.path().to_path_buf(), PathBuf::from("berth/c1")).unwrap();
        let opt = ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        manager.apply(&opt).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("cpu.max"), "20000 100000");
        // cpu.shares 512 maps onto the v2 weight scale (1..10000) with the
        // logarithmic conversion runc and crun use.
        assert_eq!(read("cpu.weight"), "59");
        assert_eq!(read("cpuset.cpus"), "0");
        assert_eq!(read("pids.max"), "50");
    }

    #[test]
    fn detect_matches_the_host_mounts() {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root_is_cgroup2 = mounts.lines().any(|l| {
            l.split(' ').nth(1) == Some(DEFAULT_ROOT) && l.split(' ').nth(2) == Some("cgroup2")
        });
        let expected = if root_is_cgroup2 {
            Version::V2
        } else {
            Version::V1
        };
        assert_eq!(detect(Path::new(DEFAULT_ROOT)).unwrap(), expected);
    }
}
