//! `pause ID` / `resume ID`: the container's cgroup frozen and thawed
//! (the freezer controller on cgroup v1, cgroup.freeze on v2).

use anyhow::{bail, Result};

use crate::record::{Record, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args, freeze: bool) -> Result<()> {
    let mut rec = Record::load(&cli.root, &a.id)?;
    let status = rec.status(&cli.root);
    match freeze {
        true if !status.can_pause() => {
            bail!("cannot pause container {}: it is {}", a.id, status.as_str())
        }
        false if !status.can_resume() => bail!(
            "cannot resume container {}: it is {}, not paused",
            a.id,
            status.as_str()
        ),
        _ => {}
    }
    let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
    cg.freeze(freeze)?;
    rec.paused = freeze;
    rec.save(&cli.root)
}
