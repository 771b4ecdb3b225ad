//! Capability sets from the spec applied to the container's init process.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

pub(crate) fn available_names() -> Vec<String> {
    available().iter().map(|c| c.to_string()).collect()
}

/// What this process holds in its bounding set: no container can get more.
fn available() -> CapsHashSet {
    caps::read(None, CapSet::Bounding).unwrap_or_default()
}

/// Converts spec capability names into the `caps` crate's set, skipping ones
/// the running kernel does not know (as runc does, with a debug log).
fn to_set(names: &HashSet<oci_spec::runtime::Capability>) -> CapsHashSet {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    names
        .iter()
        .filter_map(|c| {
            let name = c.to_string();
            let name = if name.starts_with("CAP_") {
                name
            } else {
                format!("CAP_{name}")
            };
            match Capability::from_str(&name) {
                Ok(cap) if known.contains(&cap) => Some(cap),
                _ => {
                    tracing::debug!("capability {name} unknown to this kernel, skipped");
                    None
                }
            }
        })
        .collect()
}

pub(crate) struct Plan {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl Plan {
    pub(crate) fn new(spec: Option<&LinuxCapabilities>) -> Plan {
        let get =
            |f: Option<&HashSet<oci_spec::runtime::Capability>>| f.map(to_set).unwrap_or_default();
        Plan {
            bounding: get(spec.and_then(|c| c.bounding().as_ref())),
            effective: get(spec.and_then(|c| c.effective().as_ref())),
            permitted: get(spec.and_then(|c| c.permitted().as_ref())),
            inheritable: get(spec.and_then(|c| c.inheritable().as_ref())),
            ambient: get(spec.and_then(|c| c.ambient().as_ref())),
        }
    }

    /// Drops every capability outside the bounding set. Needs CAP_SETPCAP, so it
    /// runs before the switch to the container's user.
    pub(crate) fn drop_bounding(&self) -> Result<(), String> {
        let held = available();
        let mut missing: Vec<String> = self
            .bounding
            .iter()
            .chain(&self.effective)
            .chain(&self.permitted)
            .filter(|c| !held.contains(c))
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(format!(
                "capabilities not available to the runtime (missing from its bounding set): {}",
                missing.join(", ")
            ));
        }
        let current =
            caps::read(None, CapSet::Bounding).map_err(|e| format!("read bounding set: {e}"))?;
        for cap in current.difference(&self.bounding) {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|e| format!("drop {cap} from bounding set: {e}"))?;
        }
        Ok(())
    }

    /// Sets the remaining sets, after the switch to the container's user.
    pub(crate) fn apply(&self) -> Result<(), String> {
        // Effective first: it must stay a subset of permitted at every step.
        caps::set(None, CapSet::Effective, &self.effective)
            .map_err(|e| format!("set effective capabilities: {e}"))?;
        caps::set(None, CapSet::Permitted, &self.permitted)
            .map_err(|e| format!("set permitted capabilities: {e}"))?;
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .map_err(|e| format!("set inheritable capabilities: {e}"))?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| format!("clear ambient capabilities: {e}"))?;
        // The kernel raises an ambient capability only if it is permitted
        // and inheritable; others are left out, as runc leaves them (runc's
        // own `spec` lists ambient capabilities it does not make inheritable).
        for cap in self
            .ambient
            .iter()
            .filter(|c| self.permitted.contains(c) && self.inheritable.contains(c))
        {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| format!("raise ambient {cap}: {e}"))?;
        }
        Ok(())
    }
}
