//! Request bodies as docker's clients send them, and their translation into
//! the engine's types. Only what the engine takes is read; the rest of
//! docker's fields are accepted and ignored.

use std::collections::HashMap;

use berth_engine::{
    mounts, ContainerOptions, DeviceMapping, DeviceRate, ExecRequest, NamespaceMode, NetworkMode,
    Resources, RestartPolicy, Ulimit, UpdateRequest,
};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// A command as a list, or (docker-py) a string run by the shell.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Command {
    List(Vec<String>),
    Shell(String),
}

impl Command {
    fn into_vec(self) -> Vec<String> {
        match self {
            Command::List(v) => v,
            Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s],
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: Option<String>,
    pub host_port: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicyBody {
    pub name: Option<String>,
    pub maximum_retry_count: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub typ: Option<String>,
    pub config: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub network_mode: Option<String>,
    pub port_bindings: Option<HashMap<String, Option<Vec<PortBinding>>>>,
    pub publish_all_ports: bool,
    pub restart_policy: Option<RestartPolicyBody>,
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub tmpfs: Option<HashMap<String, String>>,
    pub volumes_from: Option<Vec<String>>,
    pub log_config: Option<LogConfig>,
    pub memory_reservation: i64,
    pub oom_kill_disable: Option<bool>,
    pub oom_score_adj: Option<i32>,
    pub shm_size: i64,
    pub ulimits: Option<Vec<UlimitBody>>,
    pub sysctls: Option<HashMap<String, String>>,
    pub group_add: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub ipc_mode: Option<String>,
    pub pid_mode: Option<String>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: Option<String>,
    pub init: Option<bool>,
    pub security_opt: Option<Vec<String>>,
    pub devices: Option<Vec<DeviceBody>>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub cgroupns_mode: Option<String>,
    pub userns_mode: Option<String>,
    pub annotations: Option<HashMap<String, String>>,
    pub memory_swappiness: Option<i64>,
    pub cpu_realtime_runtime: i64,
    pub cpu_realtime_period: i64,
    pub blkio_weight: u16,
    pub blkio_weight_device: Option<Vec<WeightDeviceBody>>,
    pub blkio_device_read_bps: Option<Vec<RateDeviceBody>>,
    pub blkio_device_write_bps: Option<Vec<RateDeviceBody>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<RateDeviceBody>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<RateDeviceBody>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceBody {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDeviceBody {
    pub path: String,
    pub weight: u16,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RateDeviceBody {
    pub path: String,
    pub rate: u64,
}

fn rate_devices(v: Option<Vec<RateDeviceBody>>) -> Vec<DeviceRate> {
    v.unwrap_or_default()
        .into_iter()
        .map(|d| DeviceRate {
            path: d.path,
            rate: d.rate,
        })
        .collect()
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UlimitBody {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `POST /containers/create`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateBody {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Command>,
    pub entrypoint: Option<Command>,
    pub image: String,
    pub working_dir: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub domainname: Option<String>,
    pub labels: Option<HashMap<String, String>>,
    pub mac_address: Option<String>,
    pub healthcheck: Option<berth_engine::health::HealthConfig>,
    pub exposed_ports: Option<HashMap<String, serde_json::Value>>,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
}

/// `NetworkingConfig` of a create: each network's endpoint settings.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<HashMap<String, Option<EndpointSettings>>>,
}

/// One endpoint's settings (of a create, or `network connect`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
    pub mac_address: Option<String>,
}

/// An endpoint's requested address (`--ip`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<String>,
}

/// docker's `filters` query: `{"name": ["web"], "status": ["running"]}`.
pub fn parse_filters(raw: &Option<String>) -> ApiResult<HashMap<String, Vec<String>>> {
    let Some(raw) = raw.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(HashMap::new());
    };
    // Old clients send {"name": {"web": true}}.
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid filters: {e}")))?;
    let mut out = HashMap::new();
    if let Value::Object(m) = v {
        for (k, vals) in m {
            let list = match vals {
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            out.insert(k, list);
        }
    }
    Ok(out)
}

/// Docker's booleans in queries: `1`, `true`, `True`.
pub fn truthy(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("1" | "true" | "True" | "TRUE"))
}

/// An RFC 3339 time as the Unix seconds docker's lists carry.
pub fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

/// `?h=ROWS&w=COLS` of the resize routes.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResizeQuery {
    h: Option<u16>,
    w: Option<u16>,
}

impl ResizeQuery {
    /// A RESIZE frame's payload for the monitor.
    pub fn payload(&self) -> [u8; 4] {
        berth_engine::monitor::proto::resize_payload(self.h.unwrap_or(0), self.w.unwrap_or(0))
    }
}

fn positive(v: i64) -> Option<i64> {
    (v > 0).then_some(v)
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl CreateBody {
    pub fn into_options(self, name: Option<String>) -> ApiResult<ContainerOptions> {
        if self.image.is_empty() {
            return Err(ApiError::BadRequest("no image given".into()));
        }
        let mut o = ContainerOptions::new(self.image);
        o.name = name.filter(|n| !n.is_empty());
        o.hostname = nonempty(self.hostname);
        o.user = nonempty(self.user);
        o.tty = self.tty;
        o.interactive = self.open_stdin;
        o.env = self.env.unwrap_or_default();
        o.workdir = nonempty(self.working_dir);
        o.stop_signal = nonempty(self.stop_signal);
        o.stop_timeout = self.stop_timeout;
        let cmd = self.cmd.map(Command::into_vec).unwrap_or_default();
        match self.entrypoint.map(Command::into_vec) {
            // The engine's entrypoint is one word, docker's a list: the rest
            // of the list goes before the command.
            Some(ep) if !ep.is_empty() => {
                o.entrypoint = Some(ep[0].clone());
                o.cmd = ep[1..].iter().cloned().chain(cmd).collect();
            }
            Some(_) => {
                o.entrypoint = Some(String::new());
                o.cmd = cmd;
            }
            None => o.cmd = cmd,
        }
        let h = self.host_config.unwrap_or_default();
        o.network = match h.network_mode.as_deref() {
            None | Some("") | Some("default") => NetworkMode::Bridge,
            Some(m) => NetworkMode::parse(m)?,
        };
        // Each network's aliases (the engine keeps one list for all of
        // them); networks besides the primary one are joined too.
        let endpoints = self
            .networking_config
            .and_then(|n| n.endpoints_config)
            .unwrap_or_default();
        let mut names: Vec<&String> = endpoints.keys().collect();
        names.sort();
        for name in names {
            let primary = match &o.network {
                NetworkMode::Named(p) => p == name,
                NetworkMode::Bridge => name == "bridge" || name == "default",
                _ => true,
            };
            if !primary {
                o.extra_networks.push(name.clone());
            }
            if primary {
                let ep = endpoints[name].as_ref();
                if let Some(ip) = ep
                    .and_then(|e| e.ipam_config.as_ref())
                    .and_then(|c| c.ipv4_address.as_deref())
                    .filter(|a| !a.is_empty())
                {
                    o.ip = Some(ip.parse().map_err(|_| {
                        ApiError::BadRequest(format!("invalid IPv4 address: {ip}"))
                    })?);
                }
                if let Some(mac) = ep
                    .and_then(|e| e.mac_address.clone())
                    .filter(|m| !m.is_empty())
                {
                    o.mac_address = Some(mac);
                }
            }
            let given = endpoints[name].as_ref().and_then(|e| e.aliases.clone());
            for a in given.unwrap_or_default() {
                if !o.network_aliases.contains(&a) {
                    o.network_aliases.push(a);
                }
            }
        }
        for bind in h.binds.unwrap_or_default() {
            o.mounts.push(mounts::parse_volume_flag(&bind)?);
        }
        for (target, opts) in h.tmpfs.unwrap_or_default() {
            let spec = if opts.is_empty() {
                target
            } else {
                format!("{target}:{opts}")
            };
            o.mounts.push(mounts::parse_tmpfs_flag(&spec)?);
        }
        mounts::check_duplicates(o.mounts.iter().map(|m| m.target.as_str()))?;
        o.volumes_from = h.volumes_from.unwrap_or_default();
        for (port, bindings) in h.port_bindings.unwrap_or_default() {
            for b in bindings.unwrap_or_default() {
                let ip = b.host_ip.filter(|i| !i.is_empty());
                let host = b.host_port.unwrap_or_default();
                let spec = match ip {
                    Some(ip) => format!("{ip}:{host}:{port}"),
                    None => format!("{host}:{port}"),
                };
                o.publish.extend(
                    berth_engine::network::ports::parse_publish(&spec)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                );
            }
        }
        o.publish_all = h.publish_all_ports;
        o.restart = match h.restart_policy {
            Some(RestartPolicyBody {
                name: Some(n),
                maximum_retry_count,
            }) if n == "on-failure" && maximum_retry_count.unwrap_or(0) > 0 => {
                RestartPolicy::parse(&format!("on-failure:{}", maximum_retry_count.unwrap_or(0)))?
            }
            Some(RestartPolicyBody { name: Some(n), .. }) => RestartPolicy::parse(&n)?,
            _ => RestartPolicy::No,
        };
        o.auto_remove = h.auto_remove;
        if o.auto_remove && o.restart != RestartPolicy::No {
            return Err(ApiError::BadRequest(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        o.cap_add = h.cap_add.unwrap_or_default();
        o.cap_drop = h.cap_drop.unwrap_or_default();
        o.dns = h.dns.unwrap_or_default();
        o.add_hosts = h.extra_hosts.unwrap_or_default();
        // docker's CLI sends `--link db:alias` as "db:alias"; the API's own
        // form is "/db:/web/alias".
        for l in h.links.unwrap_or_default() {
            let l = match l.split_once(':') {
                Some((n, a)) => format!("{n}:{}", a.rsplit('/').next().unwrap_or(a)),
                None => l,
            };
            o.links.push(berth_engine::Link::parse(&l)?);
        }
        o.privileged = h.privileged;
        o.read_only = h.readonly_rootfs;
        if let Some(log) = h.log_config {
            if let Some(t) = log.typ.filter(|t| !t.is_empty()) {
                o.log = berth_engine::LogOptions::for_driver(berth_engine::LogDriver::parse(&t)?);
            }
            for (k, v) in log.config.unwrap_or_default() {
                o.log.set(&format!("{k}={v}"))?;
            }
        }
        o.expose = self
            .exposed_ports
            .map(|m| m.into_keys().collect())
            .unwrap_or_default();
        o.ulimits = h
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit::parse(&format!("{}={}:{}", u.name, u.soft, u.hard)))
            .collect::<Result<_, _>>()?;
        o.sysctls = h.sysctls.unwrap_or_default().into_iter().collect();
        o.oom_score_adj = h.oom_score_adj.filter(|v| *v != 0);
        o.shm_size = positive(h.shm_size);
        o.group_add = h.group_add.unwrap_or_default();
        o.dns_search = h.dns_search.unwrap_or_default();
        o.dns_options = h.dns_options.unwrap_or_default();
        o.ipc = NamespaceMode::parse("ipc", h.ipc_mode.as_deref().unwrap_or(""))?;
        o.pid = NamespaceMode::parse("pid", h.pid_mode.as_deref().unwrap_or(""))?;
        o.uts = NamespaceMode::parse("uts", h.uts_mode.as_deref().unwrap_or(""))?;
        o.init = h.init.unwrap_or(false);
        o.domainname = nonempty(self.domainname);
        o.labels = self.labels.unwrap_or_default().into_iter().collect();
        o.healthcheck = self.healthcheck;
        if let Some(mac) = nonempty(self.mac_address) {
            o.mac_address = Some(mac);
        }
        for d in h.devices.unwrap_or_default() {
            let container = if d.path_in_container.is_empty() {
                d.path_on_host.clone()
            } else {
                d.path_in_container
            };
            let perms = if d.cgroup_permissions.is_empty() {
                "rwm".to_string()
            } else {
                d.cgroup_permissions
            };
            o.devices.push(DeviceMapping::parse(&format!(
                "{}:{container}:{perms}",
                d.path_on_host
            ))?);
        }
        o.device_cgroup_rules = h.device_cgroup_rules.unwrap_or_default();
        o.security_opt = h.security_opt.unwrap_or_default();
        o.cgroupns_host = h.cgroupns_mode.as_deref() == Some("host");
        o.userns = h.userns_mode.clone().unwrap_or_default();
        o.annotations = h.annotations.unwrap_or_default().into_iter().collect();
        o.resources = Resources {
            memory_reservation: positive(h.memory_reservation),
            oom_kill_disable: h.oom_kill_disable.unwrap_or(false),
            // -1 (docker's "unset") or absent: the kernel's default.
            memory_swappiness: h.memory_swappiness.filter(|v| *v >= 0).map(|v| v as u64),
            cpu_rt_runtime: positive(h.cpu_realtime_runtime),
            cpu_rt_period: positive(h.cpu_realtime_period).map(|v| v as u64),
            blkio_weight: (h.blkio_weight > 0).then_some(h.blkio_weight),
            blkio_weight_device: h
                .blkio_weight_device
                .unwrap_or_default()
                .into_iter()
                .map(|d| DeviceRate {
                    path: d.path,
                    rate: u64::from(d.weight),
                })
                .collect(),
            device_read_bps: rate_devices(h.blkio_device_read_bps),
            device_write_bps: rate_devices(h.blkio_device_write_bps),
            device_read_iops: rate_devices(h.blkio_device_read_iops),
            device_write_iops: rate_devices(h.blkio_device_write_iops),
            memory: positive(h.memory),
            memory_swap: match h.memory_swap {
                0 => None,
                v => Some(v),
            },
            nano_cpus: positive(h.nano_cpus),
            cpu_period: positive(h.cpu_period).map(|v| v as u64),
            cpu_quota: positive(h.cpu_quota),
            cpu_shares: positive(h.cpu_shares).map(|v| v as u64),
            cpuset_cpus: nonempty(h.cpuset_cpus),
            cpuset_mems: nonempty(h.cpuset_mems),
            pids_limit: h.pids_limit.filter(|p| *p != 0),
        };
        Ok(o)
    }
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecBody {
    pub attach_stdin: bool,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Command>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub console_size: Option<Vec<u16>>,
    pub privileged: bool,
}

impl ExecBody {
    pub fn into_request(self) -> ExecRequest {
        ExecRequest {
            cmd: self.cmd.map(Command::into_vec).unwrap_or_default(),
            env: self.env.unwrap_or_default(),
            workdir: nonempty(self.working_dir),
            user: nonempty(self.user),
            tty: self.tty,
            stdin: self.attach_stdin,
            privileged: self.privileged,
            console_size: match self.console_size.as_deref() {
                Some([h, w]) if *h > 0 && *w > 0 => Some((*h, *w)),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_cli_create_body() {
        let body = r#"{"Hostname":"","User":"","AttachStdout":true,"Tty":false,"OpenStdin":false,
            "Env":["A=1"],"Cmd":["echo","hi"],"Image":"busybox","Entrypoint":null,
            "HostConfig":{"Binds":["/tmp:/t:ro"],"NetworkMode":"default","AutoRemove":true,
              "PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
              "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"Memory":67108864,"PidsLimit":null}}"#;
        let b: CreateBody = serde_json::from_str(body).unwrap();
        let o = b.into_options(Some("web".into())).unwrap();
        assert_eq!(o.image, "busybox");
        assert_eq!(o.cmd, ["echo", "hi"]);
        assert_eq!(o.env, ["A=1"]);
        assert_eq!(o.network, NetworkMode::Bridge);
        assert!(o.auto_remove);
        assert_eq!(o.publish.len(), 1);
        assert_eq!(o.mounts.len(), 1);
        assert_eq!(o.resources.memory, Some(67108864));
        assert_eq!(o.name.as_deref(), Some("web"));
    }

    #[test]
    fn a_compose_create_body_names_its_aliases() {
        let body = r#"{"Image":"busybox","HostConfig":{"NetworkMode":"shop_default"},
            "NetworkingConfig":{"EndpointsConfig":{"shop_default":{"Aliases":["web"]},
              "other":{"Aliases":["w2","web"]},"third":null}}}"#;
        let b: CreateBody = serde_json::from_str(body).unwrap();
        let o = b.into_options(None).unwrap();
        assert_eq!(o.network, NetworkMode::Named("shop_default".into()));
        assert_eq!(o.extra_networks, ["other", "third"]);
        assert_eq!(o.network_aliases, ["w2", "web"]);
    }

    #[test]
    fn entrypoint_lists_and_shell_strings() {
        let b: CreateBody =
            serde_json::from_str(r#"{"Image":"i","Entrypoint":["sh","-c"],"Cmd":"echo hi"}"#)
                .unwrap();
        let o = b.into_options(None).unwrap();
        assert_eq!(o.entrypoint.as_deref(), Some("sh"));
        assert_eq!(o.cmd, ["-c", "/bin/sh", "-c", "echo hi"]);
        assert!(serde_json::from_str::<CreateBody>(r#"{"Image":""}"#)
            .unwrap()
            .into_options(None)
            .is_err());
    }
}

/// `POST /containers/{id}/update`: docker's UpdateConfig; zero means "keep".
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateBody {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_shares: i64,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub restart_policy: Option<RestartPolicyBody>,
}

impl UpdateBody {
    pub fn into_request(self) -> ApiResult<UpdateRequest> {
        Ok(UpdateRequest {
            memory: positive(self.memory),
            memory_swap: match self.memory_swap {
                0 => None,
                v => Some(v),
            },
            memory_reservation: positive(self.memory_reservation),
            nano_cpus: positive(self.nano_cpus),
            cpu_period: positive(self.cpu_period).map(|v| v as u64),
            cpu_quota: positive(self.cpu_quota),
            cpu_shares: positive(self.cpu_shares).map(|v| v as u64),
            cpuset_cpus: nonempty(self.cpuset_cpus),
            cpuset_mems: nonempty(self.cpuset_mems),
            pids_limit: self.pids_limit.filter(|p| *p != 0),
            blkio_weight: (self.blkio_weight > 0).then_some(self.blkio_weight),
            cpu_rt_period: positive(self.cpu_realtime_period).map(|v| v as u64),
            cpu_rt_runtime: positive(self.cpu_realtime_runtime),
            restart: match self.restart_policy {
                Some(RestartPolicyBody {
                    name: Some(n),
                    maximum_retry_count,
                }) if !n.is_empty() => Some(RestartPolicy::parse(&match maximum_retry_count {
                    Some(c) if c > 0 && n == "on-failure" => format!("{n}:{c}"),
                    _ => n,
                })?),
                _ => None,
            },
        })
    }
}
