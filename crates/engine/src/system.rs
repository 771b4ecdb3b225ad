//! What the engine and its host are: docker's `info` document, shared by the
//! CLI's `info` and the API's `GET /info`.

use serde_json::{json, Value};

use crate::error::Result;
use crate::{Engine, Status};

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The running kernel's release.
pub fn kernel_version() -> String {
    read_trimmed("/proc/sys/kernel/osrelease")
}

/// The host's memory, in bytes.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `/etc/os-release`'s value of `key`.
fn os_release(key: &str) -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The filesystem the state root lives on, as docker names it.
fn backing_filesystem(path: &std::path::Path) -> &'static str {
    let Ok(st) = nix::sys::statfs::statfs(path) else {
        return "unknown";
    };
    match st.filesystem_type().0 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        _ => "unknown",
    }
}

impl Engine {
    /// docker's `GET /info` document (`server_version`: the program's).
    pub fn system_info(&self, server_version: &str, debug: bool) -> Result<Value> {
        let containers = self.containers()?;
        let count = |f: fn(Status) -> bool| containers.iter().filter(|c| f(c.state.status)).count();
        let running = count(|s| matches!(s, Status::Running | Status::Restarting));
        let paused = count(|s| s == Status::Paused);
        let images = self
            .images()
            .list()?
            .iter()
            .filter(|i| !i.intermediate)
            .count();
        let cgroup_version = match berth_runtime::cgroups::detect(&self.config.cgroup_root) {
            Ok(berth_runtime::cgroups::Version::V2) => "2",
            _ => "1",
        };
        let root = self.root();
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(json!({
            "ID": "",
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", backing_filesystem(root)], ["Supports d_type", "true"]],
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "DefaultRuntime": "berth",
            "Runtimes": {"berth": {"path": "berth"}},
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_release("PRETTY_NAME"),
            "OSVersion": os_release("VERSION_ID"),
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": ncpu,
            "MemTotal": host_memory(),
            "Name": read_trimmed("/proc/sys/kernel/hostname"),
            "DockerRootDir": root.display().to_string(),
            "Debug": debug,
            "ServerVersion": server_version,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": []},
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file", "local", "none"]},
            "Swarm": {"LocalNodeState": "inactive"},
            "Labels": [],
            "Warnings": [],
        }))
    }
}
