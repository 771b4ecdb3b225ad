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
    /// `--memory-reservation`: a soft limit in bytes.
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    /// `--oom-kill-disable`.
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// `--memory-swappiness` (0..100).
    #[serde(default)]
    pub memory_swappiness: Option<u64>,
    /// `--cpu-rt-runtime` and `--cpu-rt-period`, in microseconds.
    #[serde(default)]
    pub cpu_rt_runtime: Option<i64>,
    #[serde(default)]
    pub cpu_rt_period: Option<u64>,
    /// `--blkio-weight` (10..1000).
    #[serde(default)]
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device DEVICE:WEIGHT`.
    #[serde(default)]
    pub blkio_weight_device: Vec<DeviceRate>,
    /// `--device-read-bps` and friends: DEVICE:RATE.
    #[serde(default)]
    pub device_read_bps: Vec<DeviceRate>,
    #[serde(default)]
    pub device_write_bps: Vec<DeviceRate>,
    #[serde(default)]
    pub device_read_iops: Vec<DeviceRate>,
    #[serde(default)]
    pub device_write_iops: Vec<DeviceRate>,
}

/// A host device path and a rate or weight for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRate {
    pub path: String,
    pub rate: u64,
}

impl DeviceRate {
    /// Parses `/dev/sda:1mb` (`bytes`: a size with units) or `/dev/sda:1000`.
    pub fn parse(flag: &str, s: &str, bytes: bool) -> Result<DeviceRate> {
        let bad = || {
            Error::InvalidArgument(format!(
                "invalid value {s:?} for {flag}: expected DEVICE:{}",
                if bytes {
                    "RATE (e.g. /dev/sda:1mb)"
                } else {
                    "NUMBER"
                }
            ))
        };
        let (path, v) = s.rsplit_once(':').ok_or_else(bad)?;
        if !path.starts_with("/dev/") {
            return Err(bad());
        }
        let rate = if bytes {
            crate::units::parse_bytes(v)
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(bad)? as u64
        } else {
            v.parse::<u64>().map_err(|_| bad())?
        };
        Ok(DeviceRate {
            path: path.to_string(),
            rate,
        })
    }
}

/// `--device /dev/fuse`, `--device /dev/sdc:/dev/xvdc:r`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host: String,
    pub container: String,
    /// Any of `r`, `w`, `m`.
    pub permissions: String,
}

impl DeviceMapping {
    pub fn parse(s: &str) -> Result<DeviceMapping> {
        let bad = |why: &str| Error::InvalidArgument(format!("invalid device {s:?}: {why}"));
        let parts: Vec<&str> = s.split(':').collect();
        let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
        let (host, container, permissions) = match parts[..] {
            [h] => (h, h, "rwm"),
            [h, p] if perms_ok(p) => (h, h, p),
            [h, c] => (h, c, "rwm"),
            [h, c, p] if perms_ok(p) => (h, c, p),
            [_, _, _] => return Err(bad("permissions are any of r, w and m")),
            _ => return Err(bad("expected HOST[:CONTAINER[:PERMISSIONS]]")),
        };
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(bad("device paths are absolute"));
        }
        Ok(DeviceMapping {
            host: host.to_string(),
            container: container.to_string(),
            permissions: permissions.to_string(),
        })
    }
}

/// Parses a `--device-cgroup-rule` (`c 1:3 rwm`, `b *:* r`): (kind, major,
/// minor, access).
pub fn parse_device_rule(s: &str) -> Result<(char, Option<i64>, Option<i64>, String)> {
    let bad = || {
        Error::InvalidArgument(format!("invalid device cgroup rule {s:?}: expected 'TYPE MAJOR:MINOR ACCESS', e.g. 'c 1:3 rwm'"))
    };
    let f: Vec<&str> = s.split_whitespace().collect();
    let [kind, numbers, access] = f[..] else {
        return Err(bad());
    };
    let kind = match kind {
        "a" | "b" | "c" => kind.chars().next().ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    let num = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            Ok(None)
        } else {
            n.parse().map(Some).map_err(|_| bad())
        }
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    Ok((kind, num(major)?, num(minor)?, access.to_string()))
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
    /// `--ulimit NAME=SOFT[:HARD]`.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl KEY=VALUE` (namespaced ones only).
    #[serde(default)]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--oom-score-adj`.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// `--shm-size` in bytes (else 64 MiB).
    #[serde(default)]
    pub shm_size: Option<i64>,
    /// `--group-add`: group names or ids, resolved in the container's /etc/group.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// `--dns-search`.
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--ipc`, `--pid`, `--uts`: the namespaces shared with the host or
    /// another container.
    #[serde(default)]
    pub ipc: NamespaceMode,
    #[serde(default)]
    pub pid: NamespaceMode,
    #[serde(default)]
    pub uts: NamespaceMode,
    /// `--init`: a small init as the container's PID 1 reaps zombies and
    /// forwards signals.
    #[serde(default)]
    pub init: bool,
    /// `--expose PORT[/PROTO]` (ranges allowed), besides the image's.
    #[serde(default)]
    pub expose: Vec<String>,
    /// `--device HOST[:CONTAINER[:PERMS]]`.
    #[serde(default)]
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule 'c 1:3 rwm'`.
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
    /// `--domainname`.
    #[serde(default)]
    pub domainname: Option<String>,
    /// `--cgroupns host`: the host's cgroup namespace (else its own).
    #[serde(default)]
    pub cgroupns_host: bool,
    /// `--annotation KEY=VALUE`: OCI annotations for the runtime.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `--security-opt`, as docker keeps them (HostConfig.SecurityOpt; a
    /// custom seccomp profile's text in place of its file name).
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// `--health-*` / `--no-healthcheck`, merged with the image's
    /// HEALTHCHECK at create.
    #[serde(default)]
    pub healthcheck: Option<crate::health::HealthConfig>,
    /// `--ip`: the container's address on its user network.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--mac-address`: its MAC address on its first network.
    #[serde(default)]
    pub mac_address: Option<String>,
    /// `-l/--label`, `--label-file`; the image's labels are merged in at
    /// create (the container's win), as docker does.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
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
    /// The container lives only for the client attached at its start (a
    /// build's RUN step): if that client goes away before the container
    /// ends (killed, or cancelled), its monitor kills it and removes it.
    #[serde(default)]
    pub ends_with_client: bool,
    /// `--userns` (docker's HostConfig.UsernsMode): empty or `host` for the
    /// host's user namespace, `auto[:size=N]` for one of its own (see
    /// [`crate::userns`]); at create an empty one takes the engine's
    /// `userns_remap`.
    #[serde(default)]
    pub userns: String,
    /// `--link NAME[:ALIAS]` (docker's legacy links).
    #[serde(default)]
    pub links: Vec<crate::links::Link>,
    /// `network connect --ip`: the address asked for on a connected network
    /// (by the network's name).
    #[serde(default)]
    pub extra_ips: std::collections::BTreeMap<String, std::net::Ipv4Addr>,
}

/// Whether a container gets a namespace of its own (`--ipc`, `--pid`,
/// `--uts`), shares the host's, or shares another container's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    #[default]
    Private,
    /// `--ipc shareable`: its own, which other containers may join.
    Shareable,
    Host,
    Container(String),
}

impl NamespaceMode {
    /// Parses a `--ipc`/`--pid`/`--uts` value; `flag` names it in errors.
    pub fn parse(flag: &str, s: &str) -> Result<NamespaceMode> {
        let bad = || Error::InvalidArgument(format!("--{flag}: invalid {flag} mode: {s}"));
        match s {
            "" | "private" => Ok(NamespaceMode::Private),
            "shareable" if flag == "ipc" => Ok(NamespaceMode::Shareable),
            "host" => Ok(NamespaceMode::Host),
            _ => match s.strip_prefix("container:") {
                Some(c) if !c.is_empty() && flag != "uts" => {
                    Ok(NamespaceMode::Container(c.to_string()))
                }
                _ => Err(bad()),
            },
        }
    }

    /// docker's spelling (`HostConfig.IpcMode`, `PidMode`, `UTSMode`).
    pub fn as_docker(&self, flag: &str) -> String {
        match self {
            NamespaceMode::Private if flag == "ipc" => "private".into(),
            NamespaceMode::Private => String::new(),
            NamespaceMode::Shareable => "shareable".into(),
            NamespaceMode::Host => "host".into(),
            NamespaceMode::Container(c) => format!("container:{c}"),
        }
    }
}

/// One `--ulimit`: docker's name (`nofile`), soft and hard limits (-1:
/// unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// Parses docker's `NAME=SOFT[:HARD]`.
    pub fn parse(s: &str) -> Result<Ulimit> {
        let bad = |m: String| Error::InvalidArgument(m);
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid ulimit argument: {s}")))?;
        if berth_runtime::rlimit_type(name).is_none() {
            return Err(bad(format!("invalid ulimit type: {name}")));
        }
        let parts: Vec<&str> = values.split(':').collect();
        if parts.len() > 2 {
            return Err(bad(format!(
                "too many limit value arguments - {values}, can only have up to two, `soft[:hard]`"
            )));
        }
        let num = |v: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= -1)
                .ok_or_else(|| bad(format!("invalid ulimit value {v:?} in {s}: a number or -1")))
        };
        let soft = num(parts[0])?;
        let hard = match parts.get(1) {
            Some(h) => num(h)?,
            None => soft,
        };
        let unl = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        if unl(soft) > unl(hard) {
            return Err(bad(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

/// Sysctls a container may set: those of the namespaces it owns (docker's
/// list); not those of a namespace it shares with the host.
pub fn validate_sysctl(key: &str, host_net: bool, host_ipc: bool, host_uts: bool) -> Result<()> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let bad = |m: String| Err(Error::InvalidArgument(m));
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        if host_ipc {
            return bad(format!(
                "sysctl {key:?} is not allowed in host IPC namespace"
            ));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if host_net {
            return bad(format!(
                "sysctl {key:?} not allowed in host network namespace"
            ));
        }
        return Ok(());
    }
    if key == "kernel.domainname" {
        if host_uts {
            return bad(format!(
                "sysctl {key:?} is not allowed in host UTS namespace"
            ));
        }
        return Ok(());
    }
    bad(format!(
        "sysctl '{key}' is not allowed: only namespaced sysctls (net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*, kernel.domainname) can be set"
    ))
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

/// Where a container's output goes (`--log-driver`): docker's json-file
/// log, docker's `local` driver (a file of its own under `local-logs/`,
/// 20 MiB by 5 files by default), or nowhere (`none`; `logs` then refuses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    #[default]
    JsonFile,
    Local,
    None,
}

impl LogDriver {
    pub fn parse(name: &str) -> Result<LogDriver> {
        match name {
            "json-file" | "" => Ok(LogDriver::JsonFile),
            "local" => Ok(LogDriver::Local),
            "none" => Ok(LogDriver::None),
            other => Err(Error::InvalidArgument(format!(
                "failed to create container: logger: no log driver named '{other}' is registered (json-file, local and none are)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::None => "none",
        }
    }
}

/// The log driver and its rotation (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Records written before the driver was a choice are json-file's.
    #[serde(default)]
    pub driver: LogDriver,
    /// Rotate when the file would grow past this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_file: u32,
}

impl Default for LogOptions {
    /// Rotation is on by default: 10 MiB, 3 files.
    fn default() -> LogOptions {
        LogOptions::for_driver(LogDriver::JsonFile)
    }
}

impl LogOptions {
    /// A driver with docker's defaults for it.
    pub fn for_driver(driver: LogDriver) -> LogOptions {
        let (max_size, max_file) = match driver {
            LogDriver::JsonFile => (10 * 1024 * 1024, 3),
            LogDriver::Local => (20 * 1024 * 1024, 5),
            LogDriver::None => (0, 1),
        };
        LogOptions {
            driver,
            max_size,
            max_file,
        }
    }

    /// Applies one `--log-opt key=value`.
    pub fn set(&mut self, opt: &str) -> Result<()> {
        let bad = |m: String| Error::InvalidArgument(m);
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid log opt '{opt}': expected key=value")))?;
        match k {
            "max-size" if self.driver != LogDriver::None => {
                let n = if v == "-1" {
                    0
                } else {
                    crate::units::parse_bytes(v)
                        .map_err(|_| bad(format!("invalid max-size '{v}'")))?
                };
                self.max_size = n.max(0) as u64;
            }
            "max-file" if self.driver != LogDriver::None => {
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
                    "unknown log opt '{k}' for {} log driver",
                    self.driver.name()
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
            ulimits: Vec::new(),
            sysctls: Default::default(),
            oom_score_adj: None,
            shm_size: None,
            group_add: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            ipc: NamespaceMode::Private,
            pid: NamespaceMode::Private,
            uts: NamespaceMode::Private,
            init: false,
            expose: Vec::new(),
            devices: Vec::new(),
            device_cgroup_rules: Vec::new(),
            domainname: None,
            cgroupns_host: false,
            userns: String::new(),
            annotations: Default::default(),
            labels: Default::default(),
            healthcheck: None,
            ip: None,
            mac_address: None,
            security_opt: Vec::new(),
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
            ends_with_client: false,
            links: Vec::new(),
            extra_ips: Default::default(),
        }
    }
}

impl ContainerOptions {
    /// Checks the options beyond resources, in docker's words.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        for u in &self.ulimits {
            Ulimit::parse(&format!("{}={}:{}", u.name, u.soft, u.hard))?;
        }
        let host_net = self.network == NetworkMode::Host;
        for key in self.sysctls.keys() {
            validate_sysctl(
                key,
                host_net,
                self.ipc == NamespaceMode::Host,
                self.uts == NamespaceMode::Host,
            )?;
        }
        if let Some(adj) = self.oom_score_adj {
            if !(-1000..=1000).contains(&adj) {
                return bad(format!(
                    "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
                ));
            }
        }
        if self.shm_size.is_some_and(|s| s < 0) {
            return bad("SHM size can not be less than 0".into());
        }
        if self.uts == NamespaceMode::Host && self.hostname.is_some() {
            return bad("Conflicting options: hostname and the UTS mode".into());
        }
        if let Some(h) = &self.hostname {
            if !h.is_empty() && !valid_hostname(h) {
                return bad(format!("invalid hostname format: {h}"));
            }
        }
        for e in &self.env {
            if e.is_empty() || e.starts_with('=') {
                return bad(format!("invalid environment variable: {e}"));
            }
        }
        for o in &self.dns_options {
            if o.is_empty() || o.contains(char::is_whitespace) {
                return bad(format!("invalid DNS option {o:?}"));
            }
        }
        for d in &self.dns_search {
            let ok = d == "."
                || (!d.is_empty()
                    && d.len() <= 255
                    && !d.starts_with('.')
                    && !d.starts_with('-')
                    && d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            if !ok {
                return bad(format!("{d} is not a valid domain"));
            }
        }
        for e in &self.expose {
            parse_expose(e)?;
        }
        for r in &self.device_cgroup_rules {
            parse_device_rule(r)?;
        }
        if let Some(d) = &self.domainname {
            if d.len() > 255 || d.contains(char::is_whitespace) {
                return bad(format!("invalid domainname {d:?}"));
            }
            if self.uts == NamespaceMode::Host {
                return bad("Conflicting options: domainname and the UTS mode".into());
            }
        }
        let r = &self.resources;
        if r.memory_swappiness.is_some_and(|v| v > 100) {
            return bad(format!(
                "Invalid value: {}, valid memory swappiness range is 0-100",
                r.memory_swappiness.unwrap_or_default()
            ));
        }
        let weights = r
            .blkio_weight
            .iter()
            .map(|w| u64::from(*w))
            .chain(r.blkio_weight_device.iter().map(|d| d.rate));
        for w in weights {
            if !(10..=1000).contains(&w) {
                return bad(format!("Range of blkio weight is from 10 to 1000, got {w}"));
            }
        }
        check_env(&self.env)?;
        if self.ip.is_some() && !matches!(self.network, NetworkMode::Named(_)) {
            return bad(
                "user specified IP address is supported on user defined networks only".into(),
            );
        }
        if let Some(m) = &self.mac_address {
            let parts: Vec<&str> = m.split(':').collect();
            let ok = parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
            // A multicast address (low bit of the first byte) cannot be a host's.
            let multicast = u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 1);
            if !ok || multicast {
                return bad(format!("{m} is not a valid mac address"));
            }
            if matches!(
                self.network,
                NetworkMode::Host | NetworkMode::None | NetworkMode::Container(_)
            ) {
                return bad("conflicting options: mac-address and the network mode".into());
            }
        }
        let security = crate::security::SecurityOptions::parse(&self.security_opt)?;
        if let crate::security::Seccomp::Profile(json) = &security.seccomp {
            crate::seccomp::resolve(json, &crate::spec::capabilities(self)?)?;
        }
        for g in &self.group_add {
            if g.is_empty() || g.contains(':') || g.contains(char::is_whitespace) {
                return bad(format!("invalid group {g:?} for --group-add"));
            }
        }
        Ok(())
    }
}

/// `-e` entries: a name is required (`-e =value` is refused, as docker).
pub fn check_env(env: &[String]) -> Result<()> {
    for e in env {
        if e.is_empty() || e.starts_with('=') {
            return Err(Error::InvalidArgument(format!(
                "invalid environment variable: {e}"
            )));
        }
    }
    Ok(())
}

/// `--expose 80`, `--expose 8000-8002/udp`: the ports as `80/tcp` keys.
pub fn parse_expose(s: &str) -> Result<Vec<String>> {
    let bad = || Error::InvalidArgument(format!("invalid range format for --expose: {s}"));
    let (ports, proto) = match s.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (s, "tcp"),
    };
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(Error::InvalidArgument(format!(
            "invalid proto {proto:?} for --expose: {s}"
        )));
    }
    let num = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(ports)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
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
        if let Some(r) = self.memory_reservation.filter(|r| *r != 0) {
            if r < MIN_MEMORY {
                return bad("Minimum memory reservation allowed is 6MB".into());
            }
            if self.memory.is_some_and(|m| m > 0 && m < r) {
                return bad(
                    "Minimum memory limit can not be less than memory reservation limit, see usage"
                        .into(),
                );
            }
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

/// Docker's check of `--hostname`: dot-separated labels of letters, digits
/// and inner hyphens, at most 64 bytes (the kernel's HOST_NAME_MAX).
fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostnames_as_docker_checks_them() {
        for ok in ["web", "a-b.example", "x1", &"a".repeat(64)] {
            assert!(super::valid_hostname(ok), "{ok}");
        }
        for bad in [
            "bad host/name",
            "-a",
            "a-",
            "a..b",
            ".a",
            &"a".repeat(65),
            "a_b",
        ] {
            assert!(!super::valid_hostname(bad), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn env_and_hostname_checks() {
        assert!(check_env(&["A=1".into(), "B".into()]).is_ok());
        assert_eq!(
            check_env(&["=value".into()]).unwrap_err().to_string(),
            "invalid environment variable: =value"
        );
        assert!(valid_hostname("web-1.example.org"));
        for bad in ["bad host/name", "-x", "x-", "", "a..b"] {
            assert!(!valid_hostname(bad), "{bad}");
        }
    }

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
        let mut l = LogOptions::for_driver(LogDriver::parse("local").unwrap());
        assert_eq!((l.max_size, l.max_file), (20 * 1024 * 1024, 5));
        l.set("max-file=2").unwrap();
        let mut n = LogOptions::for_driver(LogDriver::parse("none").unwrap());
        assert!(n.set("max-size=1k").is_err());
        assert!(LogDriver::parse("syslog").is_err());
    }
}
