//! Container records: one JSON document per container, written atomically.
//!
//! Layout (schema 1): `<root>/containers/<id>/container.json` holds the
//! record; beside it the writable layer (`upper/`, `work/`) and `rootfs/`, the
//! mount point of its overlay. While it runs, `<runroot>/containers/<id>/`
//! holds what each start regenerates: the bundle's `config.json` (the OCI
//! spec) and the `hostname`, `hosts` and `resolv.conf` bind-mounted into it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ContainerOptions;
use crate::error::{Error, Result};

/// The version of `container.json` this build writes and the newest it
/// reads. A record without a version is version 1; a newer record is an
/// error ([`Error::IncompatibleSchema`]), never read as if it were this one.
pub const SCHEMA: u32 = 1;

fn schema_v1() -> u32 {
    1
}

/// A container's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    /// Partly removed: a removal failed half-way.
    Dead,
}

impl Status {
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }
    pub fn can_remove(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Dead)
    }
    /// Whether a monitor owns a process of this container.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// The exit code recorded for a container whose end nobody saw: its monitor
/// was killed, and the process that reaped its init kept the status to
/// itself. `ps` shows `Exited (unknown)`.
pub const EXIT_UNKNOWN: i32 = -1;

/// `.State.Error` of a container whose exit code is unknown.
pub(crate) const EXIT_UNKNOWN_WHY: &str =
    "exit code unknown: the container's monitor was killed and nobody saw how it ended";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the last start failed, if it did.
    pub error: String,
    /// The monitor process that owns the running container.
    #[serde(default)]
    pub monitor_pid: i32,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped by `stop` (restart policies leave it stopped).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Its network endpoints while it runs (the address leases).
    #[serde(default)]
    pub endpoints: Vec<crate::networks::Endpoint>,
    /// Its published ports while it runs.
    #[serde(default)]
    pub ports: Vec<crate::networks::PublishedPort>,
    /// Health check results, for a container that has checks.
    #[serde(default)]
    pub health: Option<crate::health::Health>,
}

impl State {
    pub fn new() -> State {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            started_at: None,
            finished_at: None,
            error: String::new(),
            monitor_pid: 0,
            oom_killed: false,
            restart_count: 0,
            manually_stopped: false,
            endpoints: Vec::new(),
            ports: Vec::new(),
            health: None,
        }
    }
}

impl Default for State {
    fn default() -> State {
        State::new()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub options: ContainerOptions,
    /// The command line the container runs.
    pub args: Vec<String>,
    pub state: State,
    /// Its mounts, with volumes resolved.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountPoint>,
    /// The host ids its root and users are (`--userns=auto`); `None` in the
    /// host's user namespace. Allocated at create, freed with the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_map: Option<crate::userns::IdRange>,
    /// Why its record could not be read (then this is a placeholder, status
    /// Dead): listed and removable by id, nothing else.
    #[serde(skip)]
    pub damaged: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ContainerStore {
    root: PathBuf,
}

impl ContainerStore {
    pub(crate) fn open(root: &Path) -> Result<ContainerStore> {
        let root = root.join("containers");
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        Ok(ContainerStore { root })
    }

    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Writes a record atomically. It is synced to disk when it must survive
    /// a crash: a container that is kept after it exits. The records of `--rm`
    /// containers and the transient "running" state are only replaced
    /// atomically (a crash ends their processes anyway).
    pub(crate) fn save(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.dir(&rec.id).join("container.json");
        let json = serde_json::to_vec_pretty(rec).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if rec.options.auto_remove || rec.state.status.is_active() {
            Ok(berth_image::replace_file(&path, &json)?)
        } else {
            Ok(berth_image::write_atomic(&path, &json)?)
        }
    }

    /// A container's log file where its driver keeps it: docker's json-file
    /// layout, or the `local` driver's `local-logs/container.log`; `none`
    /// keeps no file.
    pub(crate) fn log_path(&self, id: &str, driver: crate::LogDriver) -> Option<PathBuf> {
        match driver {
            crate::LogDriver::JsonFile => Some(self.dir(id).join(format!("{id}-json.log"))),
            crate::LogDriver::Local => Some(self.dir(id).join("local-logs").join("container.log")),
            crate::LogDriver::None => None,
        }
    }

    pub(crate) fn load(&self, id: &str) -> Result<ContainerRecord> {
        let path = self.dir(id).join("container.json");
        let data = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ContainerNotFound(id.to_string()),
            _ => Error::io("read", &path)(e),
        })?;
        parse_record(&path, &data)
    }

    /// Every container record, newest first. A record that cannot be read
    /// is listed as a Dead placeholder (see [`damaged_record`]) with a
    /// warning naming the file; a directory without a record (a create
    /// still writing, or one that was killed: see `orphan_dirs`) is skipped;
    /// a record of a newer schema is an error: this build cannot tell what
    /// it says.
    pub(crate) fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(Error::io("read", &self.root))? {
            let entry = entry.map_err(Error::io("read", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match self.load(&name) {
                Ok(rec) => out.push(rec),
                Err(e @ Error::IncompatibleSchema { .. }) => return Err(e),
                Err(Error::ContainerNotFound(_)) => {}
                Err(e) if is_container_id(&name) => {
                    let path = self.dir(&name).join("container.json");
                    tracing::warn!(
                        "container {} has a damaged record ({}): {e}; remove it with rm -f {name}",
                        &name[..12],
                        path.display()
                    );
                    out.push(damaged_record(&name, &path, &e));
                }
                Err(_) => {}
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Container directories without a record: what a create killed before
    /// it wrote the record left. Only meaningful under the records lock
    /// (a create holds it from making the directory to writing the record).
    pub(crate) fn orphan_dirs(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_container_id(n))
            .filter(|n| {
                matches!(
                    fs::symlink_metadata(self.dir(n).join("container.json")),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound
                )
            })
            .collect()
    }

    /// Finds a container by full ID, name, or unique ID prefix, as docker does.
    pub(crate) fn find(&self, key: &str) -> Result<ContainerRecord> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if key.len() == 64 {
            if let Ok(rec) = self.load(key) {
                return Ok(rec);
            }
        }
        let all = self.list()?;
        if let Some(rec) = all.iter().find(|r| r.name == key) {
            return Ok(rec.clone());
        }
        let matches: Vec<&ContainerRecord> = all
            .iter()
            .filter(|r| !key.is_empty() && r.id.starts_with(key))
            .collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(Error::ContainerNotFound(key.to_string())),
            _ => Err(Error::InvalidArgument(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }
}

/// Whether `name` is a container ID (64 lowercase hex digits).
pub(crate) fn is_container_id(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The placeholder for container `id` whose record at `path` cannot be
/// read: status Dead, its name salvaged from the damaged bytes when they
/// still hold one, created at the directory's time.
fn damaged_record(id: &str, path: &Path, e: &Error) -> ContainerRecord {
    let data = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&data);
    let name = text
        .find("\"name\": \"")
        .map(|i| &text[i + 9..])
        .and_then(|rest| rest.split('"').next())
        .filter(|n| crate::names::valid(n))
        .map(str::to_string)
        .unwrap_or_else(|| format!("damaged-{}", &id[..12]));
    let created = path
        .parent()
        .and_then(|d| fs::metadata(d).ok())
        .and_then(|m| m.modified().ok())
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        .unwrap_or_default();
    let mut state = State::new();
    state.status = Status::Dead;
    state.error = format!("damaged record: {e}");
    ContainerRecord {
        schema: SCHEMA,
        id: id.to_string(),
        name,
        created,
        image: String::new(),
        image_id: String::new(),
        options: ContainerOptions::new(""),
        args: Vec::new(),
        state,
        mounts: Vec::new(),
        id_map: None,
        damaged: Some(e.to_string()),
    }
}

/// A record read from `path`, checked for a schema version this build knows.
fn parse_record(path: &Path, data: &[u8]) -> Result<ContainerRecord> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(default = "schema_v1")]
        schema: u32,
    }
    let corrupt = |e: serde_json::Error| Error::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let newer = |found: u32| Error::IncompatibleSchema {
        path: path.to_path_buf(),
        found,
        supported: SCHEMA,
    };
    // One parse for a record this build reads (every listing reads them
    // all); the version alone only when that fails, since a newer record
    // may not parse as this one at all.
    match serde_json::from_slice::<ContainerRecord>(data) {
        Ok(rec) if rec.schema > SCHEMA => Err(newer(rec.schema)),
        Ok(rec) => Ok(rec),
        Err(e) => match serde_json::from_slice::<Version>(data) {
            Ok(v) if v.schema > SCHEMA => Err(newer(v.schema)),
            _ => Err(corrupt(e)),
        },
    }
}

impl ContainerRecord {
    /// Docker's STATUS column (`Up 3 minutes`, `Exited (0) 2 seconds ago`).
    pub fn status_text(&self) -> String {
        let c = self;
        let since = |t: &Option<String>| {
            t.as_deref()
                .map(crate::units::ago)
                .unwrap_or_default()
                .trim_end_matches(" ago")
                .to_string()
        };
        match c.state.status {
            Status::Created => "Created".to_string(),
            Status::Running => {
                let health = match c.state.health.as_ref().map(|h| h.status.as_str()) {
                    Some("starting") => " (health: starting)",
                    Some("healthy") => " (healthy)",
                    Some("unhealthy") => " (unhealthy)",
                    _ => "",
                };
                format!("Up {}{health}", since(&c.state.started_at))
            }
            Status::Paused => format!("Up {} (Paused)", since(&c.state.started_at)),
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                c.state.exit_code,
                since(&c.state.finished_at)
            ),
            Status::Exited if c.state.exit_code == EXIT_UNKNOWN => {
                format!("Exited (unknown) {} ago", since(&c.state.finished_at))
            }
            Status::Exited => format!(
                "Exited ({}) {} ago",
                c.state.exit_code,
                since(&c.state.finished_at)
            ),
            Status::Dead => "Dead".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> ContainerRecord {
        ContainerRecord {
            schema: SCHEMA,
            id: id.to_string(),
            name: format!("name-{id}"),
            created: "2024-01-01T00:00:00Z".into(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            options: ContainerOptions::new("busybox"),
            args: vec!["sh".into()],
            state: State::new(),
            mounts: Vec::new(),
            id_map: None,
            damaged: None,
        }
    }

    /// `rec` as JSON with `edit` applied, written as the record of its ID.
    fn write_edited(
        store: &ContainerStore,
        rec: &ContainerRecord,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        let mut v = serde_json::to_value(rec).unwrap();
        edit(&mut v);
        let dir = store.dir(&rec.id);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("container.json");
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        path
    }

    #[test]
    fn records_round_trip_with_their_version() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        let rec = record("a");
        fs::create_dir_all(store.dir("a")).unwrap();
        store.save(&rec).unwrap();
        let text = fs::read_to_string(store.dir("a").join("container.json")).unwrap();
        assert!(text.contains("\"schema\": 1"), "{text}");
        assert_eq!(store.load("a").unwrap().schema, SCHEMA);
    }

    #[test]
    fn a_record_without_a_version_is_version_1() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        write_edited(&store, &record("old"), |v| {
            v.as_object_mut().unwrap().remove("schema");
        });
        let rec = store.load("old").unwrap();
        assert_eq!(rec.schema, 1);
        assert_eq!(rec.name, "name-old");
    }

    #[test]
    fn a_newer_record_is_refused_naming_the_file_and_both_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        // A later schema may change fields this build relies on.
        let path = write_edited(&store, &record("new"), |v| {
            v["schema"] = serde_json::json!(SCHEMA + 1);
            v["state"] = serde_json::json!("a shape this build does not know");
        });
        let e = store.load("new").unwrap_err();
        assert!(
            matches!(&e, Error::IncompatibleSchema { path: p, found, supported }
                if *p == path && *found == SCHEMA + 1 && *supported == SCHEMA),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(&format!("version {}", SCHEMA + 1)), "{text}");
        assert!(text.contains(&format!("version {SCHEMA}")), "{text}");
        // One whose fields all still parse is refused just the same.
        write_edited(&store, &record("alike"), |v| {
            v["schema"] = serde_json::json!(SCHEMA + 1);
        });
        assert!(matches!(
            store.load("alike"),
            Err(Error::IncompatibleSchema { found, .. }) if found == SCHEMA + 1
        ));
        // Listing does not skip it silently, nor does finding another by name.
        store
            .save(&{
                let r = record("other");
                fs::create_dir_all(store.dir("other")).unwrap();
                r
            })
            .unwrap();
        assert!(matches!(
            store.list(),
            Err(Error::IncompatibleSchema { .. })
        ));
        assert!(matches!(
            store.find("name-other"),
            Err(Error::IncompatibleSchema { .. })
        ));
    }

    #[test]
    fn an_unreadable_record_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(tmp.path()).unwrap();
        fs::create_dir_all(store.dir("bad")).unwrap();
        fs::write(store.dir("bad").join("container.json"), b"{\"schema\": 1").unwrap();
        assert!(matches!(store.load("bad"), Err(Error::Corrupt { .. })));
        // A create still writing its record is skipped by a listing.
        assert!(store.list().unwrap().is_empty());
    }
}
