//! `ps ID [ps options]`: the container's processes, as `ps` shows them
//! (runc's table) or their pids as a JSON array (`--format json`, what
//! containerd's shim reads).

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::record::{Record, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Options for ps (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// The lines of `ps` output whose PID column is one of `pids` (with the
/// header).
pub fn filter(table: &str, pids: &[i32]) -> Result<Vec<String>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps output has no PID column");
    };
    let mut out = vec![header.to_string()];
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push(l.to_string());
        }
    }
    Ok(out)
}

pub fn run(cli: &Cli, a: &Args) -> Result<()> {
    let rec = Record::load(&cli.root, &a.id)?;
    let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
    let mut pids: Vec<i32> = cg.pids()?.into_iter().map(|p| p.as_raw()).collect();
    pids.sort();
    match a.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if a.ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                a.ps_args.clone()
            };
            let out = Command::new("ps").args(&args).output().context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            for l in filter(&String::from_utf8_lossy(&out.stdout), &pids)? {
                println!("{l}");
            }
            Ok(())
        }
        f => bail!("invalid format option {f:?}: table or json"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_header_and_the_container_s_lines() {
        let t = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sleep 60\n";
        let got = super::filter(t, &[42]).unwrap();
        assert_eq!(
            got,
            vec![
                "UID PID PPID C STIME TTY TIME CMD",
                "root 42 1 0 10:00 ? 00:00:00 sleep 60"
            ]
        );
        assert!(super::filter("USER CMD\n", &[1]).is_err());
    }
}
