//! What a user asks for when creating a container (the CLI's flags, the API's
//! body), validated into limits the runtime understands.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::units;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes (`-m`).
    pub memory: Option<i64>,
    /// Memory + swap limit in bytes (`--memory-swap`, -1 unlimited).
    pub memory_swap: Option<i64>,
    /// CPUs in billionths (`--cpus`).
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
}

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    None,
    Host,
    Bridge,
    Container(String),
    /// A user-defined network.
    Named(String),
}

impl NetworkMode {
    pub fn parse(s: &str) -> Result<NetworkMode> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "bridge" | "default" => Ok(NetworkMode::Bridge),
            "" => Err(Error::InvalidArgument("network name is empty".into())),
            _ => match s.strip_prefix("container:") {
                Some(c) if !c.is_empty() => Ok(NetworkMode::Container(c.to_string())),
                Some(_) => Err(Error::InvalidArgument(format!("invalid network mode: {s}"))),
                None => Ok(NetworkMode::Named(s.to_string())),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerOptions {
    pub image: String,
    pub name: Option<String>,
    /// The command after the image name (replaces the image's Cmd).
    pub cmd: Vec<String>,
    /// `--entrypoint` (replaces the image's Entrypoint and Cmd).
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub network: NetworkMode,
    pub resources: Resources,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub auto_remove: bool,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub log: LogOptions,
    /// `--stop-signal` (else the image's StopSignal, else SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (else 10).
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    /// `-v`, `--mount`, `--tmpfs`.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountRequest>,
    /// `--volumes-from CONTAINER[:ro|rw]`.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// `-p`.
    #[serde(default)]
    pub publish: Vec<berth_network::ports::PortMapping>,
    /// `-P`: publish every port the image exposes.
    #[serde(default)]
    pub publish_all: bool,
    /// `--network-alias`.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `--dns`.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--add-host NAME:IP`.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// User networks joined with `network connect`, besides `network`.
    #[serde(default)]
    pub extra_networks: Vec<String>,
}

/// When the monitor starts a container again after it exits (`--restart`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most this many times (0: no limit).
    OnFailure(u32),
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let policy = match name {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure(match count {
                Some(c) => c.parse().map_err(|_| {
                    Error::InvalidArgument(format!("invalid restart policy format: maximum retry count must be an integer: {c}"))
                })?,
                None => 0,
            }),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "invalid restart policy '{s}': use no, always, unless-stopped or on-failure[:max-retries]"
                )))
            }
        };
        if count.is_some() && !matches!(policy, RestartPolicy::OnFailure(_)) {
            return Err(Error::InvalidArgument(format!(
                "invalid restart policy format: maximum retry count can only be used with 'on-failure': {s}"
            )));
        }
        Ok(policy)
    }

    /// Docker's name for the policy (`HostConfig.RestartPolicy.Name`).
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure(_) => "on-failure",
        }
    }

    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure(n) => *n,
            _ => 0,
        }
    }

    /// Whether a container that exited with `exit_code`, restarted
    /// `restarts` times so far, starts again.
    pub fn should_restart(&self, exit_code: i32, restarts: u32, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => exit_code != 0 && (*max == 0 || restarts < *max),
        }
    }
}

/// The json-file log's rotation (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Rotate when the file would grow past this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_file: u32,
}

impl Default for LogOptions {
    /// Rotation is on by default: 10 MiB, 3 files.
    fn default() -> LogOptions {
        LogOptions {
            max_size: 10 * 1024 * 1024,
            max_file: 3,
        }
    }
}

impl LogOptions {
    /// Applies one `--log-opt key=value`.
    pub fn set(&mut self, opt: &str) -> Result<()> {
        let bad = |m: String| Error::InvalidArgument(m);
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid log opt '{opt}': expected key=value")))?;
        match k {
            "max-size" => {
                let n = if v == "-1" {
                    0
                } else {
                    crate::units::parse_bytes(v)
                        .map_err(|_| bad(format!("invalid max-size '{v}'")))?
                };
                self.max_size = n.max(0) as u64;
            }
            "max-file" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| bad(format!("invalid max-file '{v}': must be a number")))?;
                if n < 1 {
                    return Err(bad("max-file cannot be less than 1".into()));
                }
                self.max_file = n;
            }
            _ => {
                return Err(bad(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )))
            }
        }
        Ok(())
    }
}

impl ContainerOptions {
    pub fn new(image: impl Into<String>) -> ContainerOptions {
        ContainerOptions {
            image: image.into(),
            name: None,
            cmd: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            tty: false,
            interactive: false,
            network: NetworkMode::None,
            resources: Resources::default(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            read_only: false,
            auto_remove: false,
            restart: RestartPolicy::No,
            log: LogOptions::default(),
            stop_signal: None,
            stop_timeout: None,
            mounts: Vec::new(),
            volumes_from: Vec::new(),
            publish: Vec::new(),
            publish_all: false,
            network_aliases: Vec::new(),
            dns: Vec::new(),
            add_hosts: Vec::new(),
            extra_networks: Vec::new(),
        }
    }
}

/// Minimum memory limit docker accepts.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

impl Resources {
    /// Checks the values the way docker's daemon does, with its messages.
    pub fn validate(&self, online_cpus: &[u32]) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if let Some(m) = self.memory {
            if m != 0 && m < MIN_MEMORY {
                return bad("Minimum memory limit allowed is 6MB".into());
            }
            if let Some(s) = self.memory_swap {
                if s > 0 && s < m {
                    return bad(
                        "Minimum memoryswap limit should be larger than memory limit, see usage"
                            .into(),
                    );
                }
            }
        } else if self.memory_swap.is_some_and(|s| s > 0) {
            return bad(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            );
        }
        if let Some(n) = self.nano_cpus {
            let max = online_cpus.len() as i64 * 1_000_000_000;
            if n != 0 && (n < 10_000_000 || n > max) {
                return bad(format!(
                    "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                    online_cpus.len(),
                    online_cpus.len()
                ));
            }
        }
        if let Some(p) = self.cpu_period {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into());
            }
        }
        if let Some(q) = self.cpu_quota {
            if q > 0 && q < 1000 {
                return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
            }
        }
        if let Some(c) = &self.cpuset_cpus {
            let wanted = units::parse_cpuset(c)?;
            let missing: Vec<String> = wanted
                .iter()
                .filter(|c| !online_cpus.contains(c))
                .map(u32::to_string)
                .collect();
            if !missing.is_empty() {
                return bad(format!(
                    "Requested CPUs are not available - requested {c}, available: {}",
                    format_cpuset(online_cpus)
                ));
            }
        }
        if let Some(p) = self.pids_limit {
            if p < -1 {
                return bad(format!("invalid pids limit {p}"));
            }
        }
        Ok(())
    }

    /// The period and quota the cgroup gets: explicit `--cpu-period/--cpu-quota`
    /// win over `--cpus`, which means a 100ms period.
    pub fn cfs(&self) -> (Option<u64>, Option<i64>) {
        match (self.cpu_period, self.cpu_quota, self.nano_cpus) {
            (None, None, Some(n)) if n > 0 => (Some(100_000), Some(n * 100_000 / 1_000_000_000)),
            (p, q, _) => (p.filter(|p| *p > 0), q.filter(|q| *q != 0)),
        }
    }
}

/// `0-3,6` from a sorted CPU list.
pub fn format_cpuset(cpus: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        parts.push(if start == cpus[i] {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_become_a_100ms_period() {
        let r = Resources {
            nano_cpus: Some(500_000_000),
            ..Default::default()
        };
        assert_eq!(r.cfs(), (Some(100_000), Some(50_000)));
        let r = Resources {
            nano_cpus: Some(500_000_000),
            cpu_period: Some(100_000),
            cpu_quota: Some(20_000),
            ..Default::default()
        };
        assert_eq!(r.cfs(), (Some(100_000), Some(20_000)));
    }

    #[test]
    fn validation_messages() {
        let cpus = [0, 1];
        let err = |r: Resources| r.validate(&cpus).unwrap_err().to_string();
        assert!(err(Resources {
            memory: Some(1024),
            ..Default::default()
        })
        .contains("Minimum memory limit"));
        assert!(err(Resources {
            nano_cpus: Some(3_000_000_000),
            ..Default::default()
        })
        .contains("0.01 to 2.00"));
        assert!(err(Resources {
            cpuset_cpus: Some("5".into()),
            ..Default::default()
        })
        .contains("available: 0-1"));
        assert!(err(Resources {
            cpu_period: Some(10),
            ..Default::default()
        })
        .contains("cfs period"));
        assert!(Resources {
            memory: Some(64 << 20),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        }
        .validate(&cpus)
        .is_ok());
        assert_eq!(format_cpuset(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn network_modes() {
        assert_eq!(NetworkMode::parse("none").unwrap(), NetworkMode::None);
        assert_eq!(
            NetworkMode::parse("container:web").unwrap(),
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            NetworkMode::parse("appnet").unwrap(),
            NetworkMode::Named("appnet".into())
        );
        assert!(NetworkMode::parse("container:").is_err());
        assert!(NetworkMode::parse("").is_err());
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure(3)
        );
        assert!(RestartPolicy::parse("always:3").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
        let p = RestartPolicy::OnFailure(3);
        assert!(p.should_restart(1, 2, false));
        assert!(!p.should_restart(1, 3, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
    }

    #[test]
    fn log_options() {
        let mut o = LogOptions::default();
        o.set("max-size=1k").unwrap();
        o.set("max-file=2").unwrap();
        assert_eq!((o.max_size, o.max_file), (1024, 2));
        assert!(o.set("max-file=0").is_err());
        assert!(o.set("compress=true").is_err());
        assert!(o.set("max-size").is_err());
    }
}
