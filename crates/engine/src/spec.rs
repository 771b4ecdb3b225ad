//! The OCI runtime spec for a container: the image's config, the user's options
//! and Berth's defaults (docker's mounts, namespaces, capabilities, masks).

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use berth_runtime::oci_spec::runtime::{
    Capability, LinuxBlockIo, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder,
    LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use berth_runtime::{DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};

use crate::config::{ContainerOptions, NamespaceMode, NetworkMode, Resources};
use crate::error::{Error, Result};
use crate::security::{Seccomp, SecurityOptions};
use crate::user::ExecUser;

/// The PATH docker gives containers whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn spec_err(e: berth_runtime::oci_spec::OciSpecError) -> Error {
    Error::InvalidArgument(format!("building runtime spec: {e}"))
}

pub(crate) fn mount(
    dest: &str,
    typ: &str,
    source: &str,
    options: &[impl AsRef<str>],
) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(
            options
                .iter()
                .map(|s| s.as_ref().to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(spec_err)
}

/// Docker's /dev/shm size when `--shm-size` is not given.
const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// Docker's standard mounts, read-only /sys and /sys/fs/cgroup unless
/// privileged; /dev/shm of `shm_size` bytes, or bound from `shm_source` (the
/// host's or another container's, with `--ipc`).
fn default_mounts(
    privileged: bool,
    shm_size: Option<i64>,
    shm_source: Option<&Path>,
) -> Result<Vec<Mount>> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    let shm_size = format!(
        "size={}k",
        shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE) / 1024
    );
    let shm = match shm_source {
        Some(src) => mount(
            "/dev/shm",
            "bind",
            &src.to_string_lossy(),
            &["rbind", "rprivate"],
        )?,
        None => mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        )?,
    };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
        // The container's own cgroups (the runtime roots them there), so
        // that programs find their memory and CPU limits as under docker.
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[sys_mode, "nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        shm,
    ])
}

/// `NET_ADMIN`, `cap_net_admin` and `CAP_NET_ADMIN` all name one capability.
fn parse_cap(name: &str) -> Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare)
        .map_err(|_| Error::InvalidArgument(format!("unknown capability: \"{name}\"")))
}

/// The capability set after `--cap-add` / `--cap-drop` (both accept `ALL`).
pub fn capabilities(opts: &ContainerOptions) -> Result<HashSet<Capability>> {
    let all = || -> Result<HashSet<Capability>> {
        berth_runtime::all_capabilities()
            .iter()
            .map(|c| parse_cap(c))
            .collect()
    };
    if opts.privileged {
        return all();
    }
    let mut caps: HashSet<Capability> = DEFAULT_CAPABILITIES
        .iter()
        .map(|c| parse_cap(c))
        .collect::<Result<_>>()?;
    let is_all = |c: &String| c.eq_ignore_ascii_case("ALL");
    if opts.cap_drop.iter().any(is_all) {
        caps.clear();
    } else {
        for c in &opts.cap_drop {
            caps.remove(&parse_cap(c)?);
        }
    }
    if opts.cap_add.iter().any(is_all) {
        caps = all()?;
    } else {
        for c in &opts.cap_add {
            caps.insert(parse_cap(c)?);
        }
    }
    Ok(caps)
}

/// Docker's device cgroup rules: nothing but the standard nodes, the
/// terminals and mknod; everything for privileged containers.
fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    use berth_runtime::devices::{cgroup_rule, default_cgroup_rules};
    // Everything allowed, or denied before the defaults allow some.
    let all = cgroup_rule(privileged, LinuxDeviceType::A, None, None, "rwm").map_err(spec_err)?;
    if privileged {
        return Ok(vec![all]);
    }
    let mut rules = vec![all];
    rules.extend(default_cgroup_rules().map_err(spec_err)?);
    Ok(rules)
}

fn resources(opts: &ContainerOptions, devices: &[HostDevice]) -> Result<LinuxResources> {
    let mut rules = device_rules(opts.privileged)?;
    for d in devices {
        rules.push(d.rule.clone());
    }
    for r in &opts.device_cgroup_rules {
        let (kind, major, minor, access) = crate::config::parse_device_rule(r)?;
        let typ = match kind {
            'b' => LinuxDeviceType::B,
            'c' => LinuxDeviceType::C,
            _ => LinuxDeviceType::A,
        };
        rules.push(
            berth_runtime::devices::cgroup_rule(true, typ, major, minor, &access)
                .map_err(spec_err)?,
        );
    }
    limits(
        &opts.resources,
        LinuxResourcesBuilder::default().devices(rules),
    )
}

/// A host device given to the container (`--device`): its node in the
/// container and the cgroup rule that lets the container use it.
struct HostDevice {
    node: LinuxDevice,
    rule: LinuxDeviceCgroup,
}

/// The type and numbers of a host device node.
fn device_numbers(path: &str) -> Result<(LinuxDeviceType, i64, i64, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::InvalidArgument(format!(
            "error gathering device information while adding device {path:?}: {e}"
        ))
    })?;
    let typ = if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(Error::InvalidArgument(format!(
            "{path} is not a device node"
        )));
    };
    let rdev = meta.rdev();
    Ok((
        typ,
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
        meta.mode() & 0o7777,
    ))
}

fn host_devices(opts: &ContainerOptions) -> Result<Vec<HostDevice>> {
    opts.devices
        .iter()
        .map(|d| {
            let (typ, major, minor, mode) = device_numbers(&d.host)?;
            let node = LinuxDeviceBuilder::default()
                .path(&d.container)
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(mode)
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(spec_err)?;
            let rule = LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(major)
                .minor(minor)
                .access(d.permissions.clone())
                .build()
                .map_err(spec_err)?;
            Ok(HostDevice { node, rule })
        })
        .collect()
}

/// The block IO settings of `r`, device paths resolved to their numbers.
fn block_io(r: &Resources) -> Result<Option<LinuxBlockIo>> {
    let throttle = |list: &[crate::config::DeviceRate]| -> Result<Vec<LinuxThrottleDevice>> {
        list.iter()
            .map(|d| {
                let (_, major, minor, _) = device_numbers(&d.path)?;
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(d.rate)
                    .build()
                    .map_err(spec_err)
            })
            .collect()
    };
    if r.blkio_weight.is_none()
        && r.blkio_weight_device.is_empty()
        && r.device_read_bps.is_empty()
        && r.device_write_bps.is_empty()
        && r.device_read_iops.is_empty()
        && r.device_write_iops.is_empty()
    {
        return Ok(None);
    }
    let mut b = LinuxBlockIoBuilder::default()
        .throttle_read_bps_device(throttle(&r.device_read_bps)?)
        .throttle_write_bps_device(throttle(&r.device_write_bps)?)
        .throttle_read_iops_device(throttle(&r.device_read_iops)?)
        .throttle_write_iops_device(throttle(&r.device_write_iops)?)
        .weight_device(
            r.blkio_weight_device
                .iter()
                .map(|d| {
                    let (_, major, minor, _) = device_numbers(&d.path)?;
                    LinuxWeightDeviceBuilder::default()
                        .major(major)
                        .minor(minor)
                        .weight(d.rate as u16)
                        .build()
                        .map_err(spec_err)
                })
                .collect::<Result<Vec<_>>>()?,
        );
    if let Some(w) = r.blkio_weight {
        b = b.weight(w);
    }
    Ok(Some(b.build().map_err(spec_err)?))
}

/// The limits of `r` alone, without device rules: what `update` writes
/// into a running container's cgroup.
pub(crate) fn update_limits(r: &Resources) -> Result<LinuxResources> {
    limits(r, LinuxResourcesBuilder::default())
}

fn limits(r: &Resources, mut b: LinuxResourcesBuilder) -> Result<LinuxResources> {
    if let Some(io) = block_io(r)? {
        b = b.block_io(io);
    }
    if r.memory.is_some()
        || r.memory_swap.is_some()
        || r.memory_reservation.is_some()
        || r.oom_kill_disable
        || r.memory_swappiness.is_some()
    {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(v) = r.memory_swappiness {
            m = m.swappiness(v);
        }
        if let Some(v) = r.memory_reservation.filter(|v| *v > 0) {
            m = m.reservation(v);
        }
        if r.oom_kill_disable {
            m = m.disable_oom_killer(true);
        }
        if let Some(v) = r.memory.filter(|v| *v > 0) {
            m = m.limit(v);
        }
        // Docker's default: as much swap as memory (memory+swap = 2x memory).
        let swap = r
            .memory_swap
            .or_else(|| r.memory.filter(|v| *v > 0).map(|v| v * 2));
        if let Some(v) = swap.filter(|v| *v != 0) {
            m = m.swap(v);
        }
        b = b.memory(m.build().map_err(spec_err)?);
    }
    let (period, quota) = r.cfs();
    if period.is_some()
        || quota.is_some()
        || r.cpu_shares.is_some()
        || r.cpuset_cpus.is_some()
        || r.cpuset_mems.is_some()
        || r.cpu_rt_runtime.is_some()
        || r.cpu_rt_period.is_some()
    {
        let mut c = LinuxCpuBuilder::default();
        if let Some(v) = r.cpu_rt_runtime {
            c = c.realtime_runtime(v);
        }
        if let Some(v) = r.cpu_rt_period {
            c = c.realtime_period(v);
        }
        if let Some(p) = period {
            c = c.period(p);
        }
        if let Some(q) = quota {
            c = c.quota(q);
        }
        if let Some(s) = r.cpu_shares.filter(|s| *s > 0) {
            c = c.shares(s);
        }
        if let Some(s) = &r.cpuset_cpus {
            c = c.cpus(s.clone());
        }
        if let Some(s) = &r.cpuset_mems {
            c = c.mems(s.clone());
        }
        b = b.cpu(c.build().map_err(spec_err)?);
    }
    if let Some(p) = r.pids_limit.filter(|p| *p != 0) {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(spec_err)?,
        );
    }
    b.build().map_err(spec_err)
}

/// The command line: docker's Entrypoint + Cmd rules.
pub fn command(
    opts: &ContainerOptions,
    image_entrypoint: &[String],
    image_cmd: &[String],
) -> Result<Vec<String>> {
    let args: Vec<String> = match &opts.entrypoint {
        Some(ep) if ep.is_empty() => opts.cmd.clone(),
        Some(ep) => std::iter::once(ep.clone())
            .chain(opts.cmd.iter().cloned())
            .collect(),
        None => {
            let cmd = if opts.cmd.is_empty() {
                image_cmd
            } else {
                &opts.cmd[..]
            };
            image_entrypoint.iter().chain(cmd.iter()).cloned().collect()
        }
    };
    if args.is_empty() {
        return Err(Error::InvalidArgument("No command specified".into()));
    }
    Ok(args)
}

/// Merges the image's env with the user's `-e` (user wins, by name). A face
/// gives `-e NAME` its caller's value before the engine sees it; a name still
/// without a value (its caller had none) is left out, as docker does.
pub fn environment(
    image_env: &[String],
    user_env: &[String],
    extra: &[(&str, String)],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or("").to_string();
        match out
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(e) => *e = entry,
            None => out.push(entry),
        }
    };
    for e in image_env {
        set(e.clone());
    }
    for e in user_env.iter().filter(|e| e.contains('=')) {
        set(e.clone());
    }
    let have = |out: &Vec<String>, k: &str| out.iter().any(|e| e.split('=').next() == Some(k));
    for (k, v) in extra {
        if !have(&out, k) {
            out.push(format!("{k}={v}"));
        }
    }
    out
}

/// Everything about the container that is not in its options.
pub struct SpecInputs<'a> {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: &'a ExecUser,
    pub hostname: String,
    pub rootfs: &'a Path,
    /// The container's cgroup, relative to each hierarchy's root.
    pub cgroup_path: std::path::PathBuf,
    /// Files bind-mounted over /etc/hostname, /etc/hosts, /etc/resolv.conf.
    pub etc_files: Vec<(String, std::path::PathBuf)>,
    pub console_size: Option<(u16, u16)>,
    /// The user's mounts and volumes.
    pub mounts: Vec<Mount>,
    /// The network namespace to join (`--network container:NAME`).
    pub net_ns: Option<std::path::PathBuf>,
    /// Other namespaces to join (`--ipc`/`--pid container:NAME`).
    pub join_ns: Vec<(LinuxNamespaceType, std::path::PathBuf)>,
    /// Where /dev/shm comes from with `--ipc host|container:NAME`.
    pub shm_source: Option<std::path::PathBuf>,
    /// The host's init binary, for `--init`.
    pub init: Option<std::path::PathBuf>,
    /// The host ids of its user namespace (`--userns=auto`).
    pub id_map: Option<crate::userns::IdRange>,
}

/// Where `--init` puts its init in the container, as docker does.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// `--ulimit`s as the spec's rlimits (-1: unlimited).
fn rlimits(ulimits: &[crate::config::Ulimit]) -> Result<Vec<PosixRlimit>> {
    let v = |n: i64| if n < 0 { u64::MAX } else { n as u64 };
    ulimits
        .iter()
        .map(|u| {
            let typ = berth_runtime::rlimit_type(&u.name).ok_or_else(|| {
                Error::InvalidArgument(format!("invalid ulimit type: {}", u.name))
            })?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(v(u.soft))
                .hard(v(u.hard))
                .build()
                .map_err(spec_err)
        })
        .collect()
}

pub fn build(opts: &ContainerOptions, inputs: SpecInputs<'_>) -> Result<Spec> {
    let caps = capabilities(opts)?;
    let security = SecurityOptions::parse(&opts.security_opt)?;
    // docker's rule: --privileged runs without a filter.
    let seccomp = match (&security.seccomp, opts.privileged) {
        (_, true) | (Seccomp::Unconfined, _) => None,
        (Seccomp::Default, false) => Some(crate::seccomp::resolve(
            crate::seccomp::DEFAULT_PROFILE,
            &caps,
        )?),
        (Seccomp::Profile(json), false) => Some(crate::seccomp::resolve(json, &caps)?),
    };
    let args = match &inputs.init {
        Some(_) => [INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(inputs.args)
            .collect(),
        None => inputs.args,
    };
    let mut process = ProcessBuilder::default()
        .terminal(opts.tty)
        .args(args)
        .rlimits(rlimits(&opts.ulimits)?)
        .env(inputs.env)
        .cwd(inputs.cwd)
        .no_new_privileges(security.no_new_privileges)
        .user(
            UserBuilder::default()
                .uid(inputs.user.uid)
                .gid(inputs.user.gid)
                .additional_gids(inputs.user.additional_gids.clone())
                .build()
                .map_err(spec_err)?,
        )
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(spec_err)?,
        )
        .build()
        .map_err(spec_err)?;
    process.set_oom_score_adj(opts.oom_score_adj);
    if let Some((rows, cols)) = inputs.console_size {
        process.set_console_size(Some(
            berth_runtime::oci_spec::runtime::BoxBuilder::default()
                .height(rows as u64)
                .width(cols as u64)
                .build()
                .map_err(spec_err)?,
        ));
    }

    let mut ns_types = vec![LinuxNamespaceType::Mount];
    if !opts.cgroupns_host {
        ns_types.push(LinuxNamespaceType::Cgroup);
    }
    for (mode, typ) in [
        (&opts.pid, LinuxNamespaceType::Pid),
        (&opts.ipc, LinuxNamespaceType::Ipc),
        (&opts.uts, LinuxNamespaceType::Uts),
    ] {
        if matches!(mode, NamespaceMode::Private | NamespaceMode::Shareable) {
            ns_types.push(typ);
        }
    }
    if !matches!(opts.network, NetworkMode::Host | NetworkMode::Container(_)) {
        ns_types.push(LinuxNamespaceType::Network);
    }
    if inputs.id_map.is_some() {
        ns_types.push(LinuxNamespaceType::User);
    }
    let mut namespaces: Vec<LinuxNamespace> = ns_types
        .into_iter()
        .map(|t| {
            LinuxNamespaceBuilder::default()
                .typ(t)
                .build()
                .map_err(spec_err)
        })
        .collect::<Result<_>>()?;
    let joined = inputs
        .net_ns
        .iter()
        .map(|p| (LinuxNamespaceType::Network, p))
        .chain(inputs.join_ns.iter().map(|(t, p)| (*t, p)));
    for (typ, path) in joined {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .path(path)
                .build()
                .map_err(spec_err)?,
        );
    }

    let mut mounts = default_mounts(opts.privileged, opts.shm_size, inputs.shm_source.as_deref())?;
    if let Some(init) = &inputs.init {
        mounts.push(mount(
            INIT_PATH,
            "bind",
            &init.to_string_lossy(),
            &["bind", "ro", "nosuid", "nodev"],
        )?);
    }
    for (dest, src) in &inputs.etc_files {
        mounts.push(mount(
            dest,
            "bind",
            &src.to_string_lossy(),
            &["rbind", "rprivate"],
        )?);
    }
    // The user's mounts replace Berth's on the same destination; parents are
    // mounted before what is mounted inside them.
    mounts.retain(|m| {
        !inputs
            .mounts
            .iter()
            .any(|u| u.destination() == m.destination())
    });
    mounts.extend(inputs.mounts);
    mounts.sort_by_key(|m| m.destination().components().count());
    let (masked, readonly): (Vec<String>, Vec<String>) =
        if opts.privileged || security.unconfined_paths {
            (Vec::new(), Vec::new())
        } else {
            (
                DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
                DEFAULT_READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            )
        };
    let devices = host_devices(opts)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources(opts, &devices)?)
        .devices(devices.into_iter().map(|d| d.node).collect::<Vec<_>>())
        .cgroups_path(Path::new("/").join(&inputs.cgroup_path))
        .masked_paths(masked)
        .readonly_paths(readonly)
        .sysctl(
            opts.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .map_err(spec_err)?;
    if let Some(r) = &inputs.id_map {
        let map = |host: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(r.size)
                .build()
                .map_err(spec_err)
        };
        linux.set_uid_mappings(Some(vec![map(r.uid)?]));
        linux.set_gid_mappings(Some(vec![map(r.gid)?]));
    }
    linux.set_seccomp(seccomp);
    let mut spec = SpecBuilder::default()
        .version("1.2.0")
        .process(process)
        .root(
            RootBuilder::default()
                .path(inputs.rootfs)
                .readonly(opts.read_only)
                .build()
                .map_err(spec_err)?,
        )
        .hostname(inputs.hostname)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(spec_err)?;
    spec.set_domainname(opts.domainname.clone());
    spec.set_annotations(Some(
        opts.annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd() {
        let mut o = ContainerOptions::new("img");
        assert_eq!(
            command(&o, &s(&["/ep"]), &s(&["a"])).unwrap(),
            s(&["/ep", "a"])
        );
        o.cmd = s(&["b"]);
        assert_eq!(
            command(&o, &s(&["/ep"]), &s(&["a"])).unwrap(),
            s(&["/ep", "b"])
        );
        o.entrypoint = Some("/other".into());
        assert_eq!(
            command(&o, &s(&["/ep"]), &s(&["a"])).unwrap(),
            s(&["/other", "b"])
        );
        let o = ContainerOptions::new("img");
        assert_eq!(
            command(&o, &[], &[]).unwrap_err().to_string(),
            "No command specified"
        );
    }

    #[test]
    fn env_merge() {
        let env = environment(
            &s(&["PATH=/bin", "A=1"]),
            &s(&["A=2", "FROM_HOST=h", "MISSING"]),
            &[("HOSTNAME", "x".into()), ("PATH", "/default".into())],
        );
        assert_eq!(env, s(&["PATH=/bin", "A=2", "FROM_HOST=h", "HOSTNAME=x"]));
    }

    #[test]
    fn capability_arithmetic() {
        let mut o = ContainerOptions::new("img");
        assert_eq!(capabilities(&o).unwrap().len(), 14);
        o.cap_drop = s(&["chown", "CAP_KILL"]);
        o.cap_add = s(&["NET_ADMIN"]);
        let c = capabilities(&o).unwrap();
        assert_eq!(c.len(), 13);
        assert!(c.contains(&Capability::NetAdmin) && !c.contains(&Capability::Chown));
        o.cap_drop = s(&["ALL"]);
        o.cap_add = s(&["KILL"]);
        assert_eq!(capabilities(&o).unwrap().len(), 1);
        o.cap_add = s(&["NOPE"]);
        assert!(capabilities(&o)
            .unwrap_err()
            .to_string()
            .contains("unknown capability"));
    }

    #[test]
    fn limits_reach_the_spec() {
        let r = Resources {
            memory: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(50),
            ..Default::default()
        };
        let mut o = ContainerOptions::new("img");
        o.resources = r;
        let lr = resources(&o, &[]).unwrap();
        assert_eq!(lr.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(lr.memory().as_ref().unwrap().swap(), Some(128 << 20));
        let devices = lr.devices().as_ref().unwrap();
        assert!(!devices[0].allow() && devices.iter().skip(1).all(|d| d.allow()));
        let cpu = lr.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.period(), cpu.quota(), cpu.shares()),
            (Some(100_000), Some(50_000), Some(512))
        );
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(lr.pids().as_ref().unwrap().limit(), 50);
    }
}
