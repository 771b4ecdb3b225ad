//! `inspect` documents shaped like docker's (the fields docker users and
//! tools read), for images and containers.

use std::collections::BTreeMap;

use berth_image::Image;
use serde_json::{json, Value};

use crate::error::Result;
use crate::{ContainerRecord, Engine, NetworkMode};

/// `["80/tcp"]` -> `{"80/tcp": {}}`, docker's set-as-map shape.
fn set_map(items: Option<&Vec<String>>) -> Value {
    match items {
        Some(v) if !v.is_empty() => {
            Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
        }
        _ => Value::Null,
    }
}

/// `HostConfig.Binds`: the `-v` mounts as given (`src:dst[:mode]`).
fn binds(rec: &ContainerRecord) -> Value {
    let v: Vec<String> = rec
        .options
        .mounts
        .iter()
        .filter(|m| m.create_source && m.source.is_some())
        .map(|m| {
            let mut s = format!("{}:{}", m.source.as_deref().unwrap_or(""), m.target);
            if !m.mode.is_empty() {
                s = format!("{s}:{}", m.mode);
            }
            s
        })
        .collect();
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// `HostConfig.Tmpfs`: destination -> options.
fn tmpfs(rec: &ContainerRecord) -> Value {
    let m: BTreeMap<&str, String> = rec
        .options
        .mounts
        .iter()
        .filter(|m| m.typ == crate::mounts::MountType::Tmpfs)
        .map(|m| (m.target.as_str(), m.tmpfs_options.join(",")))
        .collect();
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

/// `HostConfig`: what the user asked of the host for the container.
fn host_config(rec: &ContainerRecord, network: String) -> Value {
    let o = &rec.options;
    let r = &o.resources;
    let mut v = json!({
        "LogConfig": {
            "Type": o.log.driver.name(),
            "Config": if o.log.driver == crate::LogDriver::None {
                json!({})
            } else {
                json!({
                    "max-size": o.log.max_size.to_string(),
                    "max-file": o.log.max_file.to_string(),
                })
            },
        },
        "RestartPolicy": {
            "Name": o.restart.name(),
            "MaximumRetryCount": o.restart.max_retries(),
        },
        "NetworkMode": network,
        "Links": (!o.links.is_empty()).then(|| {
            o.links
                .iter()
                .map(|l| format!("/{}:/{}/{}", l.name, rec.name, l.alias))
                .collect::<Vec<_>>()
        }),
        "AutoRemove": o.auto_remove,
        "Privileged": o.privileged,
        "ReadonlyRootfs": o.read_only,
        "CapAdd": o.cap_add,
        "CapDrop": o.cap_drop,
        "Memory": r.memory.unwrap_or(0),
        "MemorySwap": r.memory_swap.unwrap_or(0),
        "NanoCpus": r.nano_cpus.unwrap_or(0),
        "CpuPeriod": r.cpu_period.unwrap_or(0),
        "CpuQuota": r.cpu_quota.unwrap_or(0),
        "CpuShares": r.cpu_shares.unwrap_or(0),
        "CpusetCpus": r.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": r.cpuset_mems.clone().unwrap_or_default(),
        "PidsLimit": r.pids_limit,
        "Binds": binds(rec),
        "Tmpfs": tmpfs(rec),
        "VolumesFrom": (!o.volumes_from.is_empty()).then_some(&o.volumes_from),
        "MemoryReservation": r.memory_reservation.unwrap_or(0),
        "OomKillDisable": r.oom_kill_disable,
        "OomScoreAdj": o.oom_score_adj.unwrap_or(0),
        "ShmSize": o.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20),
        "Ulimits": o.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
        "Sysctls": (!o.sysctls.is_empty()).then_some(&o.sysctls),
        "GroupAdd": (!o.group_add.is_empty()).then_some(&o.group_add),
        "Dns": o.dns,
        "DnsSearch": o.dns_search,
        "DnsOptions": o.dns_options,
        "ExtraHosts": (!o.add_hosts.is_empty()).then_some(&o.add_hosts),
        "IpcMode": o.ipc.as_docker("ipc"),
        "PidMode": o.pid.as_docker("pid"),
        "UTSMode": o.uts.as_docker("uts"),
        "Init": o.init.then_some(true),
        "SecurityOpt": (!o.security_opt.is_empty()).then_some(&o.security_opt),
    });
    // Devices and block IO, in a second object: one json! of all the keys
    // passes the macro recursion limit.
    let devices = json!({
        "Devices": o.devices.iter().map(|d| json!({"PathOnHost": d.host, "PathInContainer": d.container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
        "DeviceCgroupRules": (!o.device_cgroup_rules.is_empty()).then_some(&o.device_cgroup_rules),
        "CgroupnsMode": if o.cgroupns_host { "host" } else { "private" },
        "UsernsMode": o.userns,
        // podman's form of the ranges: container:host:size.
        "IDMappings": rec.id_map.map(|m| json!({"UidMap": [m.uid_map()], "GidMap": [m.gid_map()]})),
        "Annotations": (!o.annotations.is_empty()).then_some(&o.annotations),
        "MemorySwappiness": r.memory_swappiness,
        "CpuRealtimeRuntime": r.cpu_rt_runtime.unwrap_or(0),
        "CpuRealtimePeriod": r.cpu_rt_period.unwrap_or(0),
        "BlkioWeight": r.blkio_weight.unwrap_or(0),
        "BlkioWeightDevice": r.blkio_weight_device.iter().map(|d| json!({"Path": d.path, "Weight": d.rate})).collect::<Vec<_>>(),
        "BlkioDeviceReadBps": rates(&r.device_read_bps),
        "BlkioDeviceWriteBps": rates(&r.device_write_bps),
        "BlkioDeviceReadIOps": rates(&r.device_read_iops),
        "BlkioDeviceWriteIOps": rates(&r.device_write_iops),
        "Runtime": "runc",
    });
    if let (Some(all), Value::Object(more)) = (v.as_object_mut(), devices) {
        all.extend(more);
    }
    v
}

/// docker's `[{"Path": ..., "Rate": ...}]` lists.
fn rates(list: &[crate::DeviceRate]) -> Value {
    json!(list
        .iter()
        .map(|d| json!({"Path": d.path, "Rate": d.rate}))
        .collect::<Vec<_>>())
}

impl Engine {
    /// The ports a container exposes (`80/tcp`): its image's and `--expose`'s.
    pub fn exposed_ports(&self, rec: &ContainerRecord) -> Vec<String> {
        let mut out: Vec<String> = self
            .images
            .resolve(&rec.image_id)
            .ok()
            .and_then(|i| i.config.config().clone())
            .and_then(|c| c.exposed_ports().clone())
            .unwrap_or_default();
        for e in &rec.options.expose {
            for p in crate::config::parse_expose(e).unwrap_or_default() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// `Config.ExposedPorts` as `--expose` gave them (`{"80/tcp": {}}`).
fn exposed_ports(o: &crate::ContainerOptions) -> Value {
    let m: BTreeMap<String, Value> = o
        .expose
        .iter()
        .flat_map(|e| crate::config::parse_expose(e).unwrap_or_default())
        .map(|p| (p, json!({})))
        .collect();
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

/// `NetworkSettings.Ports`: `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "4000"}]}`.
fn ports_doc(rec: &ContainerRecord) -> Value {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &rec.state.ports {
        m.entry(format!("{}/{}", p.container_port, p.proto.as_str()))
            .or_default()
            .push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": p.host_port.to_string(),
            }));
    }
    json!(m)
}

impl Engine {
    /// docker's `network inspect` document.
    pub fn inspect_network(&self, n: &crate::Network) -> Result<Value> {
        let mut containers = serde_json::Map::new();
        for c in self.containers()? {
            for e in c.state.endpoints.iter().filter(|e| e.network_id == n.id) {
                containers.insert(
                    c.id.clone(),
                    json!({
                        "Name": c.name,
                        "MacAddress": e.mac,
                        "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                        "IPv6Address": "",
                    }),
                );
            }
        }
        let mut options = n.options.clone();
        options.insert("com.docker.network.bridge.name".into(), n.bridge.clone());
        Ok(json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv6": false,
            "IPAM": {
                "Driver": "default",
                "Options": {},
                "Config": [ipam_config(n)],
            },
            "Internal": n.internal,
            "Attachable": false,
            "Containers": containers,
            "Options": options,
            "Labels": n.labels,
        }))
    }

    /// docker's `network inspect` document of the built-in `host` or `none`
    /// network (found by name or by its ID): no IPAM, the containers that
    /// use it.
    pub fn inspect_builtin_network(&self, key: &str) -> Result<Option<Value>> {
        for name in ["host", "none"] {
            let id = self.builtin_network_id(name)?;
            if key != name && (key.len() < 12 || !id.starts_with(key)) {
                continue;
            }
            let mode = if name == "host" {
                NetworkMode::Host
            } else {
                NetworkMode::None
            };
            let mut containers = serde_json::Map::new();
            for c in self.containers()? {
                if c.options.network == mode && c.state.status.is_active() {
                    containers.insert(
                        c.id.clone(),
                        json!({"Name": c.name, "MacAddress": "", "IPv4Address": "", "IPv6Address": ""}),
                    );
                }
            }
            return Ok(Some(json!({
                "Name": name,
                "Id": id,
                "Created": "0001-01-01T00:00:00Z",
                "Scope": "local",
                "Driver": if name == "host" { "host" } else { "null" },
                "EnableIPv6": false,
                "IPAM": {"Driver": "default", "Options": null, "Config": null},
                "Internal": false,
                "Attachable": false,
                "Containers": containers,
                "Options": {},
                "Labels": {},
            })));
        }
        Ok(None)
    }

    /// docker's `volume inspect` document.
    pub fn inspect_volume(&self, v: &crate::Volume) -> Value {
        json!({
            "CreatedAt": v.created_at,
            "Driver": v.driver,
            "Labels": (!v.labels.is_empty()).then_some(&v.labels),
            "Mountpoint": v.mountpoint,
            "Name": v.name,
            "Options": (!v.options.is_empty()).then_some(&v.options),
            "Scope": "local",
        })
    }

    pub fn inspect_image(&self, image: &Image) -> Result<Value> {
        let c = image.config.config().clone().unwrap_or_default();
        let history = image.config.history().clone().unwrap_or_default();
        let labels: Option<BTreeMap<_, _>> = c.labels().as_ref().map(|l| l.iter().collect());
        // Docker's fields the OCI config type does not carry, from the stored document.
        let raw: Value = self
            .images
            .content()
            .get(&image.id)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let extra = |k: &str| raw.get("config").and_then(|c| c.get(k)).cloned();
        let mut out = json!({
            "Id": image.id.to_string(),
            "RepoTags": image.refs.iter().filter(|r| r.tag().is_some()).map(|r| r.familiar()).collect::<Vec<_>>(),
            "RepoDigests": image.repo_digests,
            "Parent": "",
            "Comment": history.last().and_then(|h| h.comment().clone()).unwrap_or_default(),
            "Created": image.config.created().clone().unwrap_or_else(|| image.created.clone()),
            "Author": image.config.author().clone().unwrap_or_default(),
            "Config": {
                "User": c.user().clone().unwrap_or_default(),
                "ExposedPorts": set_map(c.exposed_ports().as_ref()),
                "Env": c.env(),
                "Cmd": c.cmd(),
                "Volumes": set_map(c.volumes().as_ref()),
                "WorkingDir": c.working_dir().clone().unwrap_or_default(),
                "Entrypoint": c.entrypoint(),
                "OnBuild": Value::Null,
                "Labels": labels,
                "StopSignal": c.stop_signal(),
            },
            "Architecture": image.config.architecture().to_string(),
            "Os": image.config.os().to_string(),
            "Size": self.images.size(image),
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "LowerDir": self.images.layer_dirs(image).iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                },
            },
            "RootFS": {
                "Type": "layers",
                "Layers": image.config.rootfs().diff_ids(),
            },
            "Metadata": { "LastTagTime": image.created },
        });
        for k in ["Healthcheck", "OnBuild", "Shell"] {
            if let Some(v) = extra(k) {
                out["Config"][k] = v;
            }
        }
        if let Some(p) = &image.parent {
            out["Parent"] = json!(p.to_string());
        }
        Ok(out)
    }

    pub fn inspect_container(&self, rec: &ContainerRecord) -> Result<Value> {
        let o = &rec.options;
        let s = &rec.state;
        let dir = self.containers.dir(&rec.id);
        let network = match &o.network {
            NetworkMode::None => "none".to_string(),
            NetworkMode::Host => "host".to_string(),
            NetworkMode::Bridge => "bridge".to_string(),
            NetworkMode::Container(c) => format!("container:{c}"),
            NetworkMode::Named(n) => n.clone(),
        };
        Ok(json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": rec.args.first(),
            "Args": rec.args.get(1..).unwrap_or_default(),
            "State": {
                "Status": s.status.as_str(),
                "Running": matches!(s.status, crate::Status::Running | crate::Status::Paused),
                "Paused": s.status == crate::Status::Paused,
                "Restarting": s.status == crate::Status::Restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.status == crate::Status::Dead,
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": s.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "FinishedAt": s.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "Health": s.health,
            },
            "Image": rec.image_id,
            "LogPath": self.containers.log_path(&rec.id, rec.options.log.driver).unwrap_or_default(),
            "Name": format!("/{}", rec.name),
            "RestartCount": s.restart_count,
            "Driver": "overlay",
            "HostConfig": host_config(rec, network),
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "UpperDir": dir.join("upper"),
                    "WorkDir": dir.join("work"),
                },
            },
            "Config": {
                "Hostname": o.hostname.clone().unwrap_or_else(|| rec.id[..12].to_string()),
                "Domainname": o.domainname.clone().unwrap_or_default(),
                "Labels": o.labels,
                "Healthcheck": o.healthcheck,
                "User": o.user.clone().unwrap_or_default(),
                "Tty": o.tty,
                "OpenStdin": o.interactive,
                "Env": o.env,
                "Cmd": o.cmd,
                "Image": rec.image,
                "WorkingDir": o.workdir.clone().unwrap_or_default(),
                "Entrypoint": o.entrypoint.as_ref().map(|e| vec![e.clone()]),
                "StopSignal": o.stop_signal,
                "StopTimeout": o.stop_timeout,
                "ExposedPorts": exposed_ports(o),
            },
            "Mounts": rec.mounts.iter().map(|m| json!({
                "Type": m.typ.as_str(),
                "Name": m.name,
                "Source": m.source,
                "Destination": m.destination,
                "Driver": m.name.as_ref().map(|_| "local"),
                "Mode": m.mode,
                "RW": m.rw,
                "Propagation": m.propagation,
            })).map(|mut v| {
                if let Value::Object(o) = &mut v {
                    o.retain(|_, x| !x.is_null());
                }
                v
            }).collect::<Vec<_>>(),
            "NetworkSettings": {
                "IPAddress": s.endpoints.first().map(|e| e.ip.to_string()).unwrap_or_default(),
                "Gateway": s.endpoints.first().map(|e| e.gateway.to_string()).unwrap_or_default(),
                "MacAddress": s.endpoints.first().map(|e| e.mac.clone()).unwrap_or_default(),
                "Ports": ports_doc(rec),
                "Networks": networks_doc(rec),
            },
        }))
    }
}

/// `NetworkSettings.Networks`: the endpoints of a running container; the
/// networks a container not running will join, without addresses. On a
/// user network its aliases carry its short ID too, as docker's do
/// (docker-compose looks for it to tell a container it already connected).
fn networks_doc(rec: &ContainerRecord) -> Value {
    let short = &rec.id[..12.min(rec.id.len())];
    let aliases = |user: bool, given: &[String]| -> Vec<String> {
        let mut a = given.to_vec();
        if user && !a.iter().any(|x| x == short) {
            a.push(short.to_string());
        }
        a
    };
    let mut out = serde_json::Map::new();
    if !rec.state.endpoints.is_empty() {
        for e in &rec.state.endpoints {
            let user = e.network != crate::DEFAULT_NETWORK;
            out.insert(
                e.network.clone(),
                json!({
                    "NetworkID": e.network_id,
                    "IPAddress": e.ip.to_string(),
                    "IPPrefixLen": e.prefix,
                    "Gateway": e.gateway.to_string(),
                    "MacAddress": e.mac,
                    "Aliases": aliases(user, &e.aliases),
                }),
            );
        }
        return Value::Object(out);
    }
    let o = &rec.options;
    let primary = match &o.network {
        NetworkMode::Bridge => Some(crate::DEFAULT_NETWORK.to_string()),
        NetworkMode::Named(n) => Some(n.clone()),
        _ => None,
    };
    for n in primary.iter().chain(o.extra_networks.iter()) {
        let user = n != crate::DEFAULT_NETWORK;
        out.insert(
            n.clone(),
            json!({
                "NetworkID": "",
                "IPAddress": "",
                "IPPrefixLen": 0,
                "Gateway": "",
                "MacAddress": "",
                "Aliases": aliases(user, &o.network_aliases),
            }),
        );
    }
    Value::Object(out)
}

/// A network's IPAM config entry as docker shows it: the range and the
/// auxiliary addresses only where they were given.
fn ipam_config(n: &crate::networks::Network) -> Value {
    let mut c = json!({"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()});
    if let Some(r) = n.ip_range {
        c["IPRange"] = json!(r.to_string());
    }
    if !n.aux_addresses.is_empty() {
        c["AuxiliaryAddresses"] = json!(n.aux_addresses);
    }
    c
}
