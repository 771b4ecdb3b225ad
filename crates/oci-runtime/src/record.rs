//! A container's record under `--root`: `<root>/<id>/state.json` (replaced
//! atomically), and the start fifo `<root>/<id>/exec.fifo` while the
//! container is created but not started.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
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
}

/// The container's status, as runc names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

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

    /// Whether the init still runs (a zombie does not).
    pub fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((t, s)) if t == self.start_time && s != 'Z' && s != 'X')
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            Status::Stopped
        } else if fifo(root, &self.id).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The state document runc's `state` prints.
    pub fn state_json(&self, root: &Path) -> serde_json::Value {
        let status = self.status(root);
        serde_json::json!({
            "ociVersion": "1.2.0",
            "id": self.id,
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "status": status.as_str(),
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
