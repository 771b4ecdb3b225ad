//! `events ID`: the container's resource use as runc's JSON events, once
//! with `--stats`, else every `--interval` until the container stops.

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use crate::record::{Record, Status, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Between two statistics events (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

fn interval(s: &str) -> Result<Duration> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid interval {s:?}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => bail!("invalid interval {s:?}"),
    })
}

/// One stats event, with runc's field names for what Berth measures.
pub fn stats_event(rec: &Record) -> Result<serde_json::Value> {
    let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
    let s = cg.stats();
    Ok(json!({
        "type": "stats",
        "id": rec.id,
        "data": {
            "cpu": {"usage": {"total": s.cpu_usage_ns}},
            "memory": {
                "usage": {"usage": s.memory_usage, "limit": s.memory_limit.unwrap_or(0)},
                "cache": s.memory_cache,
            },
            "pids": {"current": s.pids},
            "blkio": {"ioServiceBytesRecursive": [
                {"op": "Read", "value": s.io_read_bytes},
                {"op": "Write", "value": s.io_write_bytes},
            ]},
            "oom_kills": s.oom_kills,
        }
    }))
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let every = interval(&a.interval)?;
    let rec = Record::load(&cli.root, &a.id)?;
    if rec.status(&cli.root) == Status::Stopped {
        bail!("container {} is not running", a.id);
    }
    loop {
        println!("{}", stats_event(&rec)?);
        if a.stats {
            return Ok(());
        }
        std::thread::sleep(every);
        if rec.status(&cli.root) == Status::Stopped {
            return Ok(());
        }
    }
}
