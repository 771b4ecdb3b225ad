//! `update ID`: new resource limits for a running container, from
//! `-r resources.json` (the spec's `linux.resources`; `-` reads stdin) and
//! runc's flags, which override the file.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::record::{Record, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The resources as JSON (`-` for stdin)
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a k, m, g suffix; -1 unlimited)
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap (-1 unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum processes (-1 unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Kernel memory (refused: the kernel no longer has it)
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// Intel RDT (refused: not supported)
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

/// Bytes from "1024", "100k", "64m", "1g" (runc's units); -1 is unlimited.
pub fn bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some((i, 't')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

fn set(v: &mut Value, section: &str, key: &str, val: Value) {
    if !v[section].is_object() {
        v[section] = Value::Object(Map::new());
    }
    v[section][key] = val;
}

pub fn resources(a: &Args) -> Result<LinuxResources> {
    if a.kernel_memory.is_some() {
        bail!("--kernel-memory is not supported: the kernel dropped kernel memory limits");
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema and --mem-bw-schema are not supported: berth-runtime has no Intel RDT");
    }
    let mut v: Value = match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            serde_json::from_reader(std::io::stdin()).context("read resources from stdin")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("{} is not JSON", p.display()))?,
        None => json!({}),
    };
    if !v.is_object() {
        bail!("resources must be a JSON object");
    }
    if let Some(w) = a.blkio_weight {
        set(&mut v, "blockIO", "weight", w.into());
    }
    for (key, val) in [
        ("period", a.cpu_period.map(Value::from)),
        ("quota", a.cpu_quota.map(Value::from)),
        ("shares", a.cpu_share.map(Value::from)),
        ("realtimePeriod", a.cpu_rt_period.map(Value::from)),
        ("realtimeRuntime", a.cpu_rt_runtime.map(Value::from)),
        ("cpus", a.cpuset_cpus.clone().map(Value::from)),
        ("mems", a.cpuset_mems.clone().map(Value::from)),
    ] {
        if let Some(val) = val {
            set(&mut v, "cpu", key, val);
        }
    }
    for (key, val) in [
        ("limit", &a.memory),
        ("reservation", &a.memory_reservation),
        ("swap", &a.memory_swap),
    ] {
        if let Some(s) = val {
            set(&mut v, "memory", key, bytes(s)?.into());
        }
    }
    if let Some(p) = a.pids_limit {
        set(&mut v, "pids", "limit", p.into());
    }
    let mut r: LinuxResources = serde_json::from_value(v)
        .context("resources are not the runtime spec's linux.resources")?;
    // Device rules stay as they were: running processes keep their devices.
    r.set_devices(None);
    Ok(r)
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let rec = Record::load(&cli.root, &a.id)?;
    if !rec.status(&cli.root).can_update() {
        bail!("cannot update a container that has stopped");
    }
    let r = resources(a)?;
    let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
    cg.update(&r)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn sizes_as_runc_reads_them() {
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert_eq!(bytes("64m").unwrap(), 64 << 20);
        assert_eq!(bytes("1G").unwrap(), 1 << 30);
        assert_eq!(bytes("100kb").unwrap(), 100 << 10);
        assert_eq!(bytes("-1").unwrap(), -1);
        assert!(bytes("lots").is_err());
        assert!(bytes("-5m").is_err());
    }
}
