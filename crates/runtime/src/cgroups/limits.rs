//! Resource limits in the shape the cgroup files want them.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, LinuxThrottleDevice};

/// One device cgroup rule (`c 1:3 rwm`, `a *:* rwm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a`, `c` or `b`.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl DeviceRule {
    /// The line devices.allow / devices.deny take.
    pub fn line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Bytes; -1 unlimited.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes (v1 semantics); -1 unlimited.
    pub memory_swap: Option<i64>,
    /// Soft limit in bytes (`--memory-reservation`).
    pub memory_reservation: Option<i64>,
    /// `--oom-kill-disable` (cgroup v1 only).
    pub disable_oom_killer: bool,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Maximum processes; -1 or 0 unlimited.
    pub pids: Option<i64>,
    pub devices: Vec<DeviceRule>,
    /// `memory.swappiness` (cgroup v1 only).
    pub swappiness: Option<u64>,
    /// Real-time scheduling budget and period, in microseconds (v1 only).
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    /// Block IO weight (10..1000), overall and per device (major, minor).
    pub blkio_weight: Option<u16>,
    pub blkio_weight_device: Vec<(i64, i64, u16)>,
    /// Block IO throttles per device (major, minor, rate).
    pub read_bps: Vec<(i64, i64, u64)>,
    pub write_bps: Vec<(i64, i64, u64)>,
    pub read_iops: Vec<(i64, i64, u64)>,
    pub write_iops: Vec<(i64, i64, u64)>,
}

impl Limits {
    /// A zero (or empty) value means "not set", as runc reads the spec:
    /// docker writes `"shares": 0` and `"weight": 0` for what it leaves alone.
    pub fn from_spec(r: &LinuxResources) -> Limits {
        let mem = r.memory().as_ref();
        let cpu = r.cpu().as_ref();
        let blkio = r.block_io().as_ref();
        fn set<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
            v.filter(|v| *v != T::default())
        }
        Limits {
            memory: set(mem.and_then(|m| m.limit())),
            memory_swap: set(mem.and_then(|m| m.swap())),
            memory_reservation: set(mem.and_then(|m| m.reservation())),
            disable_oom_killer: mem.and_then(|m| m.disable_oom_killer()).unwrap_or(false),
            cpu_shares: set(cpu.and_then(|c| c.shares())),
            cpu_quota: set(cpu.and_then(|c| c.quota())),
            cpu_period: set(cpu.and_then(|c| c.period())),
            cpuset_cpus: set(cpu.and_then(|c| c.cpus().clone())),
            cpuset_mems: set(cpu.and_then(|c| c.mems().clone())),
            pids: r.pids().as_ref().map(|p| p.limit()),
            swappiness: mem.and_then(|m| m.swappiness()),
            cpu_rt_runtime: set(cpu.and_then(|c| c.realtime_runtime())),
            cpu_rt_period: set(cpu.and_then(|c| c.realtime_period())),
            blkio_weight: set(blkio.and_then(|b| b.weight())),
            blkio_weight_device: blkio
                .and_then(|b| b.weight_device().clone())
                .unwrap_or_default()
                .iter()
                .filter_map(|d| Some((d.major(), d.minor(), d.weight()?)))
                .collect(),
            read_bps: throttle(blkio.and_then(|b| b.throttle_read_bps_device().clone())),
            write_bps: throttle(blkio.and_then(|b| b.throttle_write_bps_device().clone())),
            read_iops: throttle(blkio.and_then(|b| b.throttle_read_iops_device().clone())),
            write_iops: throttle(blkio.and_then(|b| b.throttle_write_iops_device().clone())),
            devices: r
                .devices()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(device_rule)
                .collect(),
        }
    }
}

fn throttle(v: Option<Vec<LinuxThrottleDevice>>) -> Vec<(i64, i64, u64)> {
    v.unwrap_or_default()
        .iter()
        .map(|d| (d.major(), d.minor(), d.rate()))
        .collect()
}

fn device_rule(d: &LinuxDeviceCgroup) -> DeviceRule {
    let kind = match d.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::B) => 'b',
        _ => 'a',
    };
    DeviceRule {
        allow: d.allow(),
        kind,
        major: d.major(),
        minor: d.minor(),
        access: d.access().clone().unwrap_or_else(|| "rwm".into()),
    }
}

/// cpu.shares (2..262144) on the cgroup v2 weight scale (1..10000), with the
/// conversion runc and crun use: 1024 shares (the default) is weight 100.
pub fn cpu_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let l = (shares.clamp(2, 262_144) as f64).log2();
    // The small epsilon keeps exact powers (1024 shares: 10^2) from rounding up.
    let w = (10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0) - 1e-9).ceil();
    (w as u64).clamp(1, 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(cpu_weight(1024), 100);
        assert_eq!(cpu_weight(512), 59);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(262_144), 10_000);
    }

    #[test]
    fn rule_lines() {
        let r = DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(136),
            minor: None,
            access: "rwm".into(),
        };
        assert_eq!(r.line(), "c 136:* rwm");
    }

    #[test]
    fn zeros_are_unset_as_docker_writes_them() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 0, "swappiness": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": ""},
            "blockIO": {"weight": 0},
            "pids": {"limit": 0},
        }))
        .unwrap();
        let l = Limits::from_spec(&r);
        assert_eq!(
            (l.memory, l.cpu_shares, l.cpu_quota, l.cpu_period),
            (None, None, None, None)
        );
        assert_eq!((l.cpuset_cpus, l.blkio_weight), (None, None));
        // A swappiness of 0 is a value (never swap), and pids 0 unlimited.
        assert_eq!((l.swappiness, l.pids), (Some(0), Some(0)));
    }
}
