//! `pause ID` / `resume ID`: the container's cgroup frozen and thawed
//! (the freezer controller on cgroup v1, cgroup.freeze on v2).

use anyhow::{bail, Result};

use crate::record::{Record, Status, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args, freeze: bool) -> Result<()> {
    let mut rec = Record::load(&cli.root, &a.id)?;
    match (rec.status(&cli.root), freeze) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => bail!("container {} is already paused", a.id),
        (s, true) => bail!("cannot pause a container that is {}", s.as_str()),
        (s, false) => bail!(
            "cannot resume a container that is {}: it is not paused",
            s.as_str()
        ),
    }
    let cg = berth_runtime::cgroups::Cgroup::new(CGROUP_ROOT.as_ref(), &rec.cgroup_path)?;
    cg.freeze(freeze)?;
    rec.paused = freeze;
    rec.save(&cli.root)
}
