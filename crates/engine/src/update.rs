//! `update`: a container's limits and restart policy, changed in its record
//! and, while it runs, in its cgroup.

use crate::config::{Resources, RestartPolicy};
use crate::containers::ContainerRecord;
use crate::error::{Error, Result};
use crate::Engine;

/// What `update` changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub restart: Option<RestartPolicy>,
}

impl UpdateRequest {
    /// `r` with this request's values in place.
    fn apply_to(&self, r: &Resources) -> Resources {
        let mut out = r.clone();
        macro_rules! set {
            ($($f:ident),*) => {$(
                if let Some(v) = &self.$f {
                    out.$f = Some(v.clone());
                }
            )*};
        }
        set!(
            memory,
            memory_swap,
            memory_reservation,
            cpu_period,
            cpu_quota,
            cpu_shares,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            blkio_weight,
            cpu_rt_period,
            cpu_rt_runtime
        );
        if let Some(n) = self.nano_cpus {
            out.nano_cpus = Some(n);
        }
        out
    }
}

impl Engine {
    /// Changes container `key`'s limits and restart policy; a running
    /// container's cgroup gets the new limits at once.
    pub fn update_container(&self, key: &str, req: &UpdateRequest) -> Result<ContainerRecord> {
        let (rec, ()) = self.update(key, |rec| {
            let new = req.apply_to(&rec.options.resources);
            if new.nano_cpus.is_some_and(|n| n > 0)
                && (req.cpu_period.is_some() || req.cpu_quota.is_some())
            {
                return Err(Error::InvalidArgument(
                    "Conflicting options: CPU Quota and Nano CPUs cannot both be set".into(),
                ));
            }
            new.validate(&crate::online_cpus())?;
            if let Some(w) = new.blkio_weight.filter(|w| !(10..=1000).contains(w)) {
                return Err(Error::InvalidArgument(format!(
                    "Range of blkio weight is from 10 to 1000, got {w}"
                )));
            }
            if let Some(policy) = &req.restart {
                if rec.options.auto_remove && *policy != RestartPolicy::No {
                    return Err(Error::InvalidArgument(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                    ));
                }
                rec.options.restart = policy.clone();
            }
            if rec.state.status.is_active() {
                let cgroup = berth_runtime::cgroups::Cgroup::new(
                    &self.config.cgroup_root,
                    &self.cgroup_path(&rec.id),
                )?;
                cgroup
                    .update(&crate::spec::update_limits(&new)?)
                    .map_err(|e| {
                        Error::InvalidArgument(format!("Cannot update container {}: {e}", rec.name))
                    })?;
            }
            rec.options.resources = new;
            Ok(())
        })?;
        Ok(rec)
    }
}
