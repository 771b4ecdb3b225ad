//! A container's record under `--root`: `<root>/<id>/state.json` (replaced
//! atomically), and the start fifo `<root>/<id>/exec.fifo` while the
//! container is created but not started.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat): a pid reused
    /// by another process is never mistaken for the container's.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub annotations: std::collections::HashMap<String, String>,
    /// Frozen by `pause` (until `resume`).
    #[serde(default)]
    pub paused: bool,
}

/// The container's status, as runc names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

/// What a verb may do to a container in each status (youki's
/// `container/state.rs`): checked before every operation.
impl Status {
    pub fn can_start(self) -> bool {
        self == Status::Created
    }

    /// runc signals created, running and paused containers alike.
    pub fn can_kill(self) -> bool {
        self != Status::Stopped
    }

    /// Without --force, only what has stopped.
    pub fn can_delete(self) -> bool {
        self == Status::Stopped
    }

    pub fn can_pause(self) -> bool {
        self == Status::Running
    }

    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }

    pub fn can_exec(self) -> bool {
        self == Status::Running
    }

    /// New limits for anything not yet gone.
    pub fn can_update(self) -> bool {
        self != Status::Stopped
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The version of the runtime spec whose state documents this writes.
pub const OCI_VERSION: &str = "1.2.0";

/// A container id runc accepts: letters, digits, `_`, `-`, `.`, `+`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c));
    if !ok {
        bail!("invalid container id format: {id:?}");
    }
    Ok(())
}

/// Keeps the spec the container is created with beside its record.
pub fn save_spec(root: &Path, id: &str, spec: &Spec) -> Result<()> {
    let dir = dir(root, id);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("write in {}", dir.display()))?;
    serde_json::to_writer(&mut tmp, spec)?;
    tmp.persist(dir.join("config.json"))
        .map_err(|e| anyhow::anyhow!("save the spec: {}", e.error))?;
    Ok(())
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn fifo(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join("exec.fifo")
}

/// Start time and state letter of `pid`, if it exists.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

impl Record {
    pub fn load(root: &Path, id: &str) -> Result<Record> {
        check_id(id)?;
        let path = dir(root, id).join("state.json");
        let data = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("container {id} does not exist")
            } else {
                anyhow::anyhow!("read {}: {e}", path.display())
            }
        })?;
        serde_json::from_slice(&data).with_context(|| format!("{} is damaged", path.display()))
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = dir(root, &self.id);
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("write in {}", dir.display()))?;
        serde_json::to_writer(&mut tmp, self)?;
        tmp.persist(dir.join("state.json"))
            .map_err(|e| anyhow::anyhow!("save state: {}", e.error))?;
        Ok(())
    }

    /// The spec the container was created with.
    pub fn spec(&self, root: &Path) -> Result<Spec> {
        let path = dir(root, &self.id).join("config.json");
        Spec::load(&path).with_context(|| format!("load {}", path.display()))
    }

    /// The state document for a hook, with `status` as given.
    pub fn hook_state(&self, status: &str) -> serde_json::Value {
        let mut v = self.state_json_with(status);
        v["pid"] = self.pid.into();
        v
    }

    /// Whether the init still runs (a zombie does not).
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((t, s)) if t == self.start_time && s != 'Z' && s != 'X')
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            Status::Stopped
        } else if fifo(root, &self.id).exists() {
            Status::Created
        } else if self.paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The state document runc's `state` prints.
    pub fn state_json(&self, root: &Path) -> serde_json::Value {
        let status = self.status(root);
        let mut v = self.state_json_with(status.as_str());
        if status == Status::Stopped {
            v["pid"] = 0.into();
        }
        v
    }

    fn state_json_with(&self, status: &str) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations,
        })
    }
}

pub fn all(root: &Path) -> Vec<Record> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<Record> = rd
        .flatten()
        .filter_map(|e| Record::load(root, &e.file_name().to_string_lossy()).ok())
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created));
    out
}

#[cfg(test)]
mod tests {
    use super::Status::{self, *};

    #[test]
    fn permitted_transitions() {
        let all = [Created, Running, Paused, Stopped];
        let which = |f: fn(Status) -> bool| -> Vec<Status> {
            all.iter().copied().filter(|s| f(*s)).collect()
        };
        assert_eq!(which(Status::can_start), [Created]);
        assert_eq!(which(Status::can_kill), [Created, Running, Paused]);
        assert_eq!(which(Status::can_delete), [Stopped]);
        assert_eq!(which(Status::can_pause), [Running]);
        assert_eq!(which(Status::can_resume), [Paused]);
        assert_eq!(which(Status::can_exec), [Running]);
        assert_eq!(which(Status::can_update), [Created, Running, Paused]);
    }
}
