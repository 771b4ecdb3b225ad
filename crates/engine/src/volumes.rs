//! Volumes: directories Berth manages under `<root>/volumes/<name>/_data`
//! (docker's layout), each with its record (`volume.json`) beside it.
//!
//! A volume is in use while a container record names it; that count is
//! taken from the container records themselves, under the same lock that
//! creating and removing containers and volumes hold, so a `volume rm` racing
//! a `run -v` either sees the new container or runs before it is created.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;

use berth_runtime::oci_spec::runtime::Mount;
use serde::{Deserialize, Serialize};

use crate::containers::ContainerRecord;
use crate::error::{Error, Result};
use crate::mounts::{self, MountPoint, MountRequest, MountType};
use crate::{ContainerOptions, Engine};

/// The label docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Options the local driver understands (`volume create -o`, `volume-opt=`).
const LOCAL_OPTIONS: [&str; 3] = ["type", "device", "o"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Not yet filled with the image's content at its first mount point.
    #[serde(default)]
    pub needs_copy_up: bool,
    /// The directory containers see (`.../_data`).
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

impl Volume {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// What a container mounts for this volume: its data directory, or what
    /// the local driver's `type`/`device`/`o` options describe.
    fn source(&self) -> (String, String, Vec<String>) {
        let o: Vec<String> = self
            .options
            .get("o")
            .map(|o| o.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        match self.options.get("type").map(String::as_str) {
            None => (
                "bind".into(),
                self.mountpoint.to_string_lossy().into_owned(),
                vec!["rbind".into()],
            ),
            Some(t) if t == "none" || o.iter().any(|x| x == "bind" || x == "rbind") => {
                let dev = self.options.get("device").cloned().unwrap_or_default();
                let mut opts = o;
                if !opts.iter().any(|x| x == "bind" || x == "rbind") {
                    opts.push("rbind".into());
                }
                ("bind".into(), dev, opts)
            }
            Some(t) => {
                let dev = self
                    .options
                    .get("device")
                    .cloned()
                    .unwrap_or_else(|| t.to_string());
                (t.to_string(), dev, o)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct VolumeStore {
    root: PathBuf,
}

impl VolumeStore {
    pub(crate) fn open(root: &std::path::Path) -> Result<VolumeStore> {
        let root = root.join("volumes");
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        Ok(VolumeStore { root })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn record(&self, name: &str) -> PathBuf {
        self.dir(name).join("volume.json")
    }

    pub(crate) fn load(&self, name: &str) -> Result<Volume> {
        let path = self.record(name);
        let data = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::VolumeNotFound(name.to_string()),
            _ => Error::io("read", &path)(e),
        })?;
        let mut v: Volume = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path,
            message: e.to_string(),
        })?;
        v.mountpoint = self.dir(name).join("_data");
        Ok(v)
    }

    pub(crate) fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(Error::io("read", &self.root))? {
            let entry = entry.map_err(Error::io("read", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A directory without a record is a create or remove half done.
            if let Ok(v) = self.load(&name) {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(crate) fn save(&self, v: &Volume) -> Result<()> {
        let path = self.record(&v.name);
        let json = serde_json::to_vec_pretty(v).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(berth_image::write_atomic(&path, &json)?)
    }

    /// Creates the directories, then the record: a volume exists once its
    /// record does.
    fn create(&self, mut v: Volume) -> Result<Volume> {
        let data = self.dir(&v.name).join("_data");
        fs::create_dir_all(&data).map_err(Error::io("create", &data))?;
        v.mountpoint = data;
        if let Err(e) = self.save(&v) {
            let _ = fs::remove_dir_all(self.dir(&v.name));
            return Err(e);
        }
        Ok(v)
    }

    /// Removes the record first, so a removal cut short leaves no volume
    /// that looks whole.
    fn remove(&self, name: &str) -> Result<()> {
        let rec = self.record(name);
        fs::remove_file(&rec).map_err(Error::io("remove", &rec))?;
        let dir = self.dir(name);
        fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))
    }
}

/// What `volume create` and `--mount volume-*` ask for.
#[derive(Debug, Clone, Default)]
pub struct VolumeRequest {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

fn check_driver(req: &VolumeRequest) -> Result<()> {
    match req.driver.as_deref() {
        None | Some("local") => {}
        Some(d) => {
            return Err(Error::InvalidArgument(format!(
                "error looking up volume plugin {d}: plugin \"{d}\" not found"
            )))
        }
    }
    if let Some(k) = req
        .options
        .keys()
        .find(|k| !LOCAL_OPTIONS.contains(&k.as_str()))
    {
        return Err(Error::InvalidArgument(format!(
            "invalid option: \"{k}\" (the local driver takes type, device and o)"
        )));
    }
    if req.options.contains_key("device") && !req.options.contains_key("type") {
        return Err(Error::InvalidArgument(
            "invalid option: \"device\" needs \"type\"".into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// Creates (or, if it exists, returns) a volume. Takes the state lock.
    pub fn volume_create(&self, req: VolumeRequest) -> Result<Volume> {
        let _lock = self.lock_containers()?;
        let (v, new) = self.volume_create_locked(req)?;
        if new {
            self.emit_volume(&v.name, "create");
        }
        Ok(v)
    }

    /// Creates a volume; the flag says whether it is new.
    fn volume_create_locked(&self, req: VolumeRequest) -> Result<(Volume, bool)> {
        check_driver(&req)?;
        let name = match &req.name {
            Some(n) => {
                mounts::check_volume_name(n)?;
                match self.volumes.load(n) {
                    Ok(v) => return Ok((v, false)),
                    Err(Error::VolumeNotFound(_)) => n.clone(),
                    Err(e) => return Err(e),
                }
            }
            None => hex::encode(crate::random_bytes::<32>()?),
        };
        let mut labels = req.labels.clone();
        if req.name.is_none() {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let v = self.volumes.create(Volume {
            name,
            driver: "local".into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            needs_copy_up: req.options.is_empty(),
            options: req.options,
            mountpoint: PathBuf::new(),
        })?;
        Ok((v, true))
    }

    pub fn volumes(&self) -> Result<Vec<Volume>> {
        self.volumes.list()
    }

    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.volumes.load(name)
    }

    /// The containers (IDs) whose records name the volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(users(&self.containers.list()?, name))
    }

    /// Removes a volume no container uses; `force` ignores a missing one.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _lock = self.lock_containers()?;
        match self.volumes.load(name) {
            Ok(_) => {}
            Err(Error::VolumeNotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        }
        let using = users(&self.containers.list()?, name);
        if !using.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                using.join(", ")
            )));
        }
        self.volumes.remove(name)?;
        self.emit_volume(name, "destroy");
        Ok(())
    }

    fn emit_volume(&self, name: &str, action: &str) {
        let attrs = std::collections::BTreeMap::from([("driver".to_string(), "local".to_string())]);
        self.emit("volume", action, name, attrs);
    }

    /// Removes the unused volumes `keep` does not keep: anonymous ones only
    /// unless `all`. Returns their names and the bytes freed.
    /// The bytes a volume's files hold (`system df -v`).
    pub fn volume_size(&self, v: &Volume) -> u64 {
        berth_image::dir_size(&v.mountpoint)
    }

    pub fn volume_prune(
        &self,
        all: bool,
        keep: impl Fn(&Volume) -> bool,
    ) -> Result<(Vec<String>, u64)> {
        let _lock = self.lock_containers()?;
        let records = self.containers.list()?;
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in self.volumes.list()? {
            if (!all && !v.anonymous()) || keep(&v) || !users(&records, &v.name).is_empty() {
                continue;
            }
            let size = berth_image::dir_size(&v.mountpoint);
            self.volumes.remove(&v.name)?;
            freed += size;
            removed.push(v.name);
        }
        Ok((removed, freed))
    }

    /// Resolves a new container's mounts: `--volumes-from`, then the user's
    /// mounts (which win on the same destination), then an anonymous volume
    /// for each of the image's VOLUMEs nothing else covers. Volumes it creates
    /// are added to `created`. Called under the state lock.
    pub(crate) fn resolve_mounts(
        &self,
        opts: &ContainerOptions,
        image_volumes: &[String],
        created: &mut Vec<String>,
    ) -> Result<Vec<MountPoint>> {
        mounts::check_duplicates(opts.mounts.iter().map(|m| m.target.as_str()))?;
        let mut out: Vec<MountPoint> = Vec::new();
        let put = |out: &mut Vec<MountPoint>, mp: MountPoint| {
            out.retain(|m| m.destination != mp.destination);
            out.push(mp);
        };
        for spec in &opts.volumes_from {
            let (key, ro) = mounts::parse_volumes_from(spec)?;
            let from = self.containers.find(&key)?;
            for mp in from.mounts.iter().filter(|m| m.typ != MountType::Tmpfs) {
                let mut mp = mp.clone();
                if let Some(ro) = ro {
                    mp.rw = !ro;
                    mp.mode = if ro { "ro".into() } else { "rw".into() };
                }
                put(&mut out, mp);
            }
        }
        // Check every bind source before anything is created.
        for req in opts.mounts.iter().filter(|m| m.typ == MountType::Bind) {
            let src = req.source.as_deref().unwrap_or_default();
            if !req.create_source && fs::symlink_metadata(src).is_err() {
                return Err(Error::InvalidArgument(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                )));
            }
        }
        for req in &opts.mounts {
            let mp = self.resolve_one(req, created)?;
            put(&mut out, mp);
        }
        for path in image_volumes {
            let target = mounts::clean_target(path, MountType::Volume)?;
            if out.iter().any(|m| m.destination == target) {
                continue;
            }
            let req = MountRequest::new(MountType::Volume, target);
            let mp = self.resolve_one(&req, created)?;
            put(&mut out, mp);
        }
        Ok(out)
    }

    fn resolve_one(&self, req: &MountRequest, created: &mut Vec<String>) -> Result<MountPoint> {
        let mut mp = MountPoint {
            typ: req.typ,
            name: None,
            source: PathBuf::new(),
            destination: req.target.clone(),
            rw: !req.read_only,
            mode: req.mode.clone(),
            propagation: String::new(),
            copy_up: false,
            anonymous: false,
            tmpfs_options: req.tmpfs_options.clone(),
        };
        match req.typ {
            MountType::Bind => {
                let src = PathBuf::from(req.source.as_deref().unwrap_or_default());
                if req.create_source && fs::symlink_metadata(&src).is_err() {
                    // `-v` makes a missing host directory, as docker does.
                    fs::create_dir_all(&src).map_err(Error::io("create", &src))?;
                }
                mp.source = src;
                mp.propagation = req.propagation.clone().unwrap_or_else(|| "rprivate".into());
            }
            MountType::Volume => {
                let (v, new) = self.volume_create_locked(VolumeRequest {
                    name: req.source.clone(),
                    driver: req.volume_driver.clone(),
                    labels: req.volume_labels.clone(),
                    options: req.volume_options.clone(),
                })?;
                if new {
                    created.push(v.name.clone());
                }
                mp.anonymous = v.anonymous();
                mp.source = v.mountpoint.clone();
                mp.name = Some(v.name);
                mp.copy_up = !req.nocopy;
            }
            MountType::Tmpfs => {}
        }
        Ok(mp)
    }

    /// Removes volumes a failed create made.
    pub(crate) fn remove_created_volumes(&self, created: &[String]) {
        for name in created {
            if let Err(e) = self.volumes.remove(name) {
                tracing::warn!("remove volume {name}: {e}");
            }
        }
    }

    /// Removes the anonymous volumes of a removed container that no other
    /// container uses (`rm -v`, `run --rm`). Called under the state lock.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &ContainerRecord) -> Result<()> {
        let records = self.containers.list()?;
        let mut done = HashSet::new();
        for mp in rec.mounts.iter().filter(|m| m.anonymous) {
            let Some(name) = &mp.name else { continue };
            if !done.insert(name) || !users(&records, name).is_empty() {
                continue;
            }
            self.volumes.remove(name)?;
        }
        Ok(())
    }

    /// The runtime mounts for a container's mount points (volumes that still
    /// need their first copy-up get the `copyup` option), and the volumes
    /// that will have been filled once the container has started.
    pub(crate) fn runtime_mounts(
        &self,
        rec: &ContainerRecord,
    ) -> Result<(Vec<Mount>, Vec<String>)> {
        let mut out = Vec::new();
        let mut copied = Vec::new();
        for mp in &rec.mounts {
            let mut opts: Vec<String> = Vec::new();
            let (typ, source) = match mp.typ {
                MountType::Bind => {
                    opts.push("rbind".into());
                    opts.push(mp.propagation.clone());
                    ("bind".to_string(), mp.source.to_string_lossy().into_owned())
                }
                MountType::Volume => {
                    let name = mp.name.as_deref().unwrap_or_default();
                    let v = self.volumes.load(name)?;
                    let (typ, source, vopts) = v.source();
                    opts.extend(vopts);
                    if typ == "bind" {
                        opts.push("rprivate".into());
                    }
                    if mp.copy_up && v.needs_copy_up {
                        opts.push("copyup".into());
                        copied.push(v.name.clone());
                    }
                    (typ, source)
                }
                MountType::Tmpfs => {
                    opts.extend(["nosuid", "nodev", "noexec"].map(String::from));
                    opts.extend(mp.tmpfs_options.iter().cloned());
                    ("tmpfs".to_string(), "tmpfs".to_string())
                }
            };
            if !mp.rw {
                opts.push("ro".into());
            }
            out.push(crate::spec::mount(&mp.destination, &typ, &source, &opts)?);
        }
        Ok((out, copied))
    }

    /// Marks volumes as filled after the container that filled them started.
    pub(crate) fn volumes_copied(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let Ok(_lock) = self.lock_containers() else {
            return;
        };
        for name in names {
            if let Ok(mut v) = self.volumes.load(name) {
                v.needs_copy_up = false;
                if let Err(e) = self.volumes.save(&v) {
                    tracing::warn!("update volume {name}: {e}");
                }
            }
        }
    }
}

/// IDs of the containers whose mounts name volume `name`.
fn users(records: &[ContainerRecord], name: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.mounts.iter().any(|m| m.name.as_deref() == Some(name)))
        .map(|r| r.id.clone())
        .collect()
}
