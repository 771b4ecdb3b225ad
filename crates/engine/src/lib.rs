//! The engine: containers, their state and their lifecycle, on top of the image
//! store and the runtime. The CLI and the API server are thin faces of it.

mod build_ops;
mod check;
mod config;
mod containers;
mod cp;
mod distribution;
mod error;
mod etc;
pub mod events;
mod exec;
pub mod filters;
pub mod health;
mod image_ops;
mod inspect;
mod lifecycle;
mod links;
pub mod logs;
pub mod monitor;
pub mod mounts;
pub mod names;
mod networks;
pub mod seccomp;
pub mod security;
mod spec;
pub mod system;
pub mod units;
mod update;
mod user;
pub mod userns;
mod volumes;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_image::{Image, Store};
use berth_runtime::oci_spec::runtime::LinuxNamespaceType;
use berth_runtime::{RootfsMount, Stdio};
use nix::fcntl::{Flock, FlockArg};

/// What the faces (the CLI, the API server, the builder) use of the image
/// store: names, archives and configurations. The store itself is the
/// engine's.
pub mod image {
    pub use berth_image::{
        host_arch, ArchiveFormat, Digest, Error, Image, ImportOptions, Reference, RuntimeConfigJson,
    };
}

/// What the faces use of the network crate: docker's `-p` syntax.
pub mod network {
    /// Published ports as `-p` writes them.
    pub mod ports {
        pub use berth_network::ports::parse_publish;
    }
}

/// What the faces use of the registry client: credentials, pull policy and
/// the progress they show.
pub mod registry {
    /// The registry client's types that a face passes or shows.
    pub mod client {
        pub use berth_registry::client::{
            Credentials, Progress, PullPolicy, Pulled, Quiet, Status,
        };
    }
}

/// What the builder uses of the runtime: confined file operations inside a
/// container's root, for COPY and ADD.
pub mod runtime {
    pub use berth_runtime::{create_dir_in_root, open_in_root, reopen_dir};
    /// Copying files into a root without leaving it.
    pub mod copyup {
        pub use berth_runtime::copyup::{copy_entry, copy_tree, CopyOptions};
    }
}
pub use build_ops::Stream;
pub use check::{Check, ContainerFinding, ContainerProblem, Repair, Severity};
pub use config::{
    format_cpuset, parse_expose, ContainerOptions, DeviceMapping, DeviceRate, LogDriver,
    LogOptions, NamespaceMode, NetworkMode, Resources, RestartPolicy, Ulimit,
};
pub use containers::{ContainerRecord, State, Status, EXIT_UNKNOWN};
pub use cp::CopyDirection;
pub use error::{Error, ErrorKind, Result};
pub use exec::ExecRequest;
pub use image_ops::named_refs;
pub use image_ops::{CommitRequest, DiskUsage, ImageUsage, Removed, VolumeUsage};
pub use lifecycle::{parse_signal, ContainerStats};
pub use links::Link;
pub use networks::{Endpoint, Network, NetworkRequest, PublishedPort, DEFAULT_NETWORK};
pub use update::UpdateRequest;
pub use user::{resolve as resolve_user, ExecUser};
pub use volumes::{Volume, VolumeRequest, ANONYMOUS_LABEL};

use containers::ContainerStore;
use networks::NetworkStore;
use volumes::VolumeStore;

/// Where the engine keeps its state, and the program its monitors run:
/// everything the engine and each container's monitor work from (a monitor
/// gets it whole, as JSON, and nothing of its caller's process).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EngineConfig {
    /// Persistent state: images, containers (`/var/lib/berth`).
    pub root: PathBuf,
    /// Runtime state that does not survive a reboot (`/run/berth`).
    pub runroot: PathBuf,
    /// Where the cgroup hierarchies are mounted.
    pub cgroup_root: PathBuf,
    /// The cgroup (relative to each hierarchy's root) containers go under.
    pub cgroup_parent: String,
    /// The default network's bridge interface.
    pub bridge: String,
    /// docker's client config directory (`~/.docker`): registry credentials
    /// in `config.json`, CA certificates in `certs.d/<registry>/`.
    pub client_config: PathBuf,
    /// Registries reached over plain http besides localhost.
    pub insecure_registries: Vec<String>,
    /// The executable each container's monitor runs: Berth's own program
    /// (`berth`), started as `berth-monitor` (see [`monitor`]).
    pub monitor_program: PathBuf,
    /// The init `--init` runs as PID 1 (a static tini); `None` looks in the
    /// places distributions install one.
    pub init_program: Option<PathBuf>,
    /// The user namespace of containers created without `--userns`
    /// (`--userns-remap`, docker's daemon option): empty or `host`, or
    /// `auto[:size=N]` (see [`userns`]).
    #[serde(default)]
    pub userns_remap: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            root: PathBuf::from("/var/lib/berth"),
            runroot: PathBuf::from("/run/berth"),
            cgroup_root: PathBuf::from(berth_runtime::cgroups::DEFAULT_ROOT),
            cgroup_parent: "berth".into(),
            bridge: "berth0".into(),
            client_config: PathBuf::from("/root/.docker"),
            insecure_registries: Vec::new(),
            monitor_program: PathBuf::from("/usr/local/bin/berth"),
            init_program: None,
            userns_remap: String::new(),
        }
    }
}

pub struct Engine {
    config: EngineConfig,
    images: Store,
    containers: ContainerStore,
    volumes: VolumeStore,
    networks: NetworkStore,
}

/// A started container, owned by the process that started it.
pub struct Running {
    pub id: String,
    pub container: berth_runtime::Container,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(Error::io("read", "/dev/urandom"))?;
    Ok(buf)
}

/// The CPUs this process may run on, for validating limits.
fn online_cpus() -> Vec<u32> {
    fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| units::parse_cpuset(s.trim()).ok())
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1))
                .collect()
        })
}

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Engine> {
        // The engine never resolves paths against its caller's working
        // directory: a face makes them absolute first.
        for (what, d) in [("root", &config.root), ("runroot", &config.runroot)] {
            if !d.is_absolute() {
                return Err(Error::InvalidArgument(format!(
                    "the {what} directory {} is not an absolute path",
                    d.display()
                )));
            }
        }
        for d in [&config.root, &config.runroot] {
            fs::create_dir_all(d).map_err(Error::io("create", d))?;
            // Root's alone: records and logs hold environment values, and
            // layers and writable layers hold setuid and capability-bearing
            // files no host user may reach. Tightened on every open, so a
            // store made by an older Berth is too.
            use std::os::unix::fs::PermissionsExt;
            let private = fs::Permissions::from_mode(0o700);
            if fs::metadata(d)
                .map(|m| m.permissions().mode() & 0o777 != 0o700)
                .unwrap_or(true)
            {
                fs::set_permissions(d, private).map_err(Error::io("make private", d))?;
            }
        }
        Ok(Engine {
            images: Store::open(&config.root)?,
            containers: ContainerStore::open(&config.root)?,
            volumes: VolumeStore::open(&config.root)?,
            networks: NetworkStore::open(&config.root)?,
            config,
        })
    }

    pub fn images(&self) -> &Store {
        &self.images
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn lock_containers(&self) -> Result<Flock<fs::File>> {
        lock_file(&self.containers.lock_path())
    }

    /// Creates a container: validates the options, resolves the image and
    /// writes the record and the container's directories. Nothing runs yet.
    pub fn create(&self, opts: ContainerOptions) -> Result<ContainerRecord> {
        opts.resources.validate(&online_cpus())?;
        opts.validate()?;
        if let Some(w) = &opts.workdir {
            if !w.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        if let Some(n) = &opts.name {
            if !names::valid(n) {
                return Err(Error::InvalidArgument(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        spec::capabilities(&opts)?;
        self.check_network(&opts)?;
        let mut opts = opts;
        if opts.userns.is_empty() {
            opts.userns = self.config.userns_remap.clone();
        }
        let userns_mode = userns::parse(&opts.userns)?;
        if userns_mode != userns::Mode::Host {
            userns::check_compatible(&opts)?;
        }
        let image = self.images.resolve(&opts.image)?;
        let cfg = image.config.config().clone().unwrap_or_default();
        let args = spec::command(
            &opts,
            cfg.entrypoint().as_deref().unwrap_or_default(),
            cfg.cmd().as_deref().unwrap_or_default(),
        )?;

        for (k, v) in cfg.labels().clone().unwrap_or_default() {
            opts.labels.entry(k).or_insert(v);
        }
        opts.healthcheck = health::HealthConfig::merged(
            opts.healthcheck.as_ref(),
            self.image_healthcheck(&image).as_ref(),
        );
        let _lock = self.lock_containers()?;
        self.collect_orphans().delete();
        self.sweep_removed();
        let existing = self.containers.list()?;
        let name = match &opts.name {
            Some(n) => {
                if let Some(other) = existing.iter().find(|r| &r.name == n) {
                    return Err(Error::NameInUse {
                        name: n.clone(),
                        id: other.id.clone(),
                    });
                }
                n.clone()
            }
            None => {
                let r = random_bytes::<3>()?;
                (0..)
                    .map(|i| names::generate(&r, i))
                    .find(|n| !existing.iter().any(|e| &e.name == n))
                    .unwrap_or_default()
            }
        };
        let image_volumes: Vec<String> = cfg
            .volumes()
            .as_ref()
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let mut created = Vec::new();
        let mounts = match self.resolve_mounts(&opts, &image_volumes, &mut created) {
            Ok(m) => m,
            Err(e) => {
                self.remove_created_volumes(&created);
                return Err(e);
            }
        };
        let id_map = match userns_mode {
            userns::Mode::Host => None,
            userns::Mode::Auto { size } => {
                let taken: Vec<userns::IdRange> =
                    existing.iter().filter_map(|r| r.id_map).collect();
                match userns::allocate(&taken, size) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.remove_created_volumes(&created);
                        return Err(e);
                    }
                }
            }
        };
        let id = hex::encode(random_bytes::<32>()?);
        let dir = self.containers.dir(&id);
        let rec = ContainerRecord {
            schema: containers::SCHEMA,
            id: id.clone(),
            name,
            created: now(),
            image: opts.image.clone(),
            image_id: image.id.to_string(),
            options: opts,
            args,
            state: State::new(),
            mounts,
            id_map,
            damaged: None,
        };
        let made = (|| {
            etc::shared_init_layer(&self.config.root)?;
            for d in ["upper", "work", "rootfs"] {
                let p = dir.join(d);
                fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
                // The writable layer is the remapped root's, as its `/`.
                if let (Some(r), "upper" | "work") = (&id_map, d) {
                    userns::chown_to_root(&p, r)?;
                }
            }
            self.containers.save(&rec)
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&dir);
            self.remove_created_volumes(&created);
            return Err(e);
        }
        self.emit_container(&rec, "create", &[]);
        Ok(rec)
    }

    pub fn container(&self, key: &str) -> Result<ContainerRecord> {
        self.containers.find(key)
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.containers.list()
    }

    /// Reads a record, changes it and writes it back, under the containers
    /// lock: concurrent commands and monitors never lose each other's writes.
    pub(crate) fn update<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut ContainerRecord) -> Result<T>,
    ) -> Result<(ContainerRecord, T)> {
        let _lock = self.lock_containers()?;
        let mut rec = self.containers.find(key)?;
        let out = f(&mut rec)?;
        self.containers.save(&rec)?;
        Ok((rec, out))
    }

    pub(crate) fn not_startable(&self, rec: &ContainerRecord) -> Error {
        match rec.state.status {
            Status::Paused => Error::Conflict(format!(
                "cannot start a paused container {}, try unpause instead",
                rec.name
            )),
            Status::Dead => Error::Conflict(format!(
                "container {} is marked for removal and cannot be started",
                rec.name
            )),
            _ => Error::Conflict(format!("container {} is already running", rec.name)),
        }
    }

    /// Starts a created or exited container's process; called by its monitor,
    /// which owns the process from then on. `console_size` is the terminal
    /// size (rows, columns) for containers with a tty. `restarting` lets the
    /// monitor start the container it is restarting.
    pub(crate) fn start(
        &self,
        key: &str,
        stdio: Stdio,
        console_size: Option<(u16, u16)>,
        restarting: bool,
    ) -> Result<Running> {
        let me = std::process::id() as i32;
        let (rec, go) = self.update(key, |rec| {
            let ours =
                restarting && rec.state.status == Status::Restarting && rec.state.monitor_pid == me;
            if ours && rec.state.manually_stopped {
                // Stopped while it waited to restart.
                rec.state.status = Status::Exited;
                rec.state.monitor_pid = 0;
                return Ok(false);
            }
            if !ours && !rec.state.status.can_start() {
                return Err(self.not_startable(rec));
            }
            rec.state.status = Status::Running;
            rec.state.pid = 0;
            rec.state.monitor_pid = me;
            rec.state.error.clear();
            rec.state.health = rec
                .options
                .healthcheck
                .as_ref()
                .and_then(|h| h.command())
                .map(|_| health::Health::starting());
            if !restarting {
                rec.state.restart_count = 0;
                rec.state.manually_stopped = false;
            }
            Ok(true)
        })?;
        if !go {
            return Err(Error::Conflict(format!(
                "container {} was stopped",
                rec.name
            )));
        }
        let started = self
            .images
            .resolve(&rec.image_id)
            .map_err(Error::from)
            .and_then(|image| self.start_process(&rec, &image, stdio, console_size));
        match started {
            Ok((container, copied)) => {
                self.volumes_copied(&copied);
                let pid = container.pid().as_raw();
                let running = Running {
                    id: rec.id.clone(),
                    container,
                };
                let saved = self.update(&rec.id, |r| {
                    r.state.pid = pid;
                    r.state.started_at = Some(now());
                    r.state.oom_killed = false;
                    Ok(())
                });
                if let Err(e) = saved {
                    let _ = running.container.signal(nix::sys::signal::Signal::SIGKILL);
                    let _ = running.container.wait();
                    let _ = running.container.destroy();
                    self.remove_run_dir(&rec.id);
                    return Err(e);
                }
                self.emit_container(&rec, "start", &[]);
                Ok(running)
            }
            Err(e) => {
                self.remove_run_dir(&rec.id);
                let _ = self.update(&rec.id, |r| {
                    r.state.status = if r.state.started_at.is_some() {
                        Status::Exited
                    } else {
                        Status::Created
                    };
                    r.state.pid = 0;
                    r.state.monitor_pid = 0;
                    r.state.exit_code = exit_code_for(&e);
                    r.state.error = e.to_string();
                    Ok(())
                });
                Err(e)
            }
        }
    }

    /// Resolves a user spec (`name`, `uid:gid`, ...) with the container's
    /// /etc/passwd and /etc/group, as its writable layer and image have them.
    /// `group_add` (`--group-add`) adds groups to every process of the
    /// container, as docker does.
    pub(crate) fn resolve_user(
        &self,
        id: &str,
        image: &Image,
        spec: &str,
        group_add: &[String],
    ) -> Result<ExecUser> {
        let mut lookup_dirs = vec![self.containers.dir(id).join("upper")];
        lookup_dirs.extend(self.images.layer_dirs(image));
        let group = etc::read_from_layers(&lookup_dirs, "etc/group");
        let mut u = user::resolve(
            spec,
            &etc::read_from_layers(&lookup_dirs, "etc/passwd"),
            &group,
        )?;
        for g in user::extra_groups(group_add, &group)? {
            if !u.additional_gids.contains(&g) {
                u.additional_gids.push(g);
            }
        }
        Ok(u)
    }

    fn start_process(
        &self,
        rec: &ContainerRecord,
        image: &Image,
        stdio: Stdio,
        console_size: Option<(u16, u16)>,
    ) -> Result<(berth_runtime::Container, Vec<String>)> {
        let opts = &rec.options;
        let cfg = image.config.config().clone().unwrap_or_default();

        let user_spec = opts
            .user
            .clone()
            .or_else(|| cfg.user().clone())
            .unwrap_or_default();
        let user = self.resolve_user(&rec.id, image, &user_spec, &opts.group_add)?;
        let hostname = match (&opts.hostname, &opts.network) {
            (Some(h), _) => h.clone(),
            (None, NetworkMode::Host) => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| rec.id[..12].to_string()),
            (None, _) => rec.id[..12].to_string(),
        };
        let cwd = opts
            .workdir
            .clone()
            .or_else(|| cfg.working_dir().clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        let mut extra = vec![
            ("PATH", spec::DEFAULT_PATH.to_string()),
            ("HOSTNAME", hostname.clone()),
        ];
        if opts.tty {
            extra.push(("TERM", "xterm".into()));
        }
        extra.push(("HOME", user.home.clone()));
        // Link variables come first: the image's and the user's win.
        let mut base_env = self.link_env(rec)?;
        base_env.extend(cfg.env().clone().unwrap_or_default());
        let env = spec::environment(&base_env, &opts.env, &extra);
        // Files regenerated at every start live in the runtime state directory.
        let run_dir = self.run_dir(&rec.id);
        fs::create_dir_all(&run_dir).map_err(Error::io("create", &run_dir))?;
        let mut exposed: Vec<String> = cfg.exposed_ports().clone().unwrap_or_default();
        for e in &opts.expose {
            for p in config::parse_expose(e)? {
                if !exposed.contains(&p) {
                    exposed.push(p);
                }
            }
        }
        let lease = self.lease(rec, &exposed)?;
        let (endpoints, ports) = (lease.endpoints.clone(), lease.ports.clone());
        let published = lease.published.clone();
        let wired = self.start_wired(
            rec,
            image,
            stdio,
            console_size,
            StartInputs {
                hostname,
                cwd,
                env,
                user,
                run_dir,
                lease,
            },
        );
        if wired.is_err() {
            let _ = self.update(&rec.id, |r| {
                r.state.endpoints.clear();
                r.state.ports.clear();
                Ok(())
            });
            // Ports a refused publish never added may be another root's.
            let ports = if published.load(std::sync::atomic::Ordering::SeqCst) {
                ports
            } else {
                Vec::new()
            };
            self.release(&endpoints, &ports);
        } else {
            let nets: Vec<String> = endpoints.iter().map(|e| e.network_id.clone()).collect();
            self.refresh_hosts(&nets);
        }
        wired
    }

    fn start_wired(
        &self,
        rec: &ContainerRecord,
        image: &Image,
        stdio: Stdio,
        console_size: Option<(u16, u16)>,
        i: StartInputs,
    ) -> Result<(berth_runtime::Container, Vec<String>)> {
        let opts = &rec.options;
        let dir = self.containers.dir(&rec.id);
        let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
        let StartInputs {
            hostname,
            cwd,
            env,
            user,
            run_dir,
            lease,
        } = i;
        let mut view = rec.clone();
        view.state.endpoints = lease.endpoints.clone();
        // Under the state lock, like every rewrite of peers' hosts files, so
        // that a peer starting meanwhile is either listed here or adds itself.
        let etc_files = {
            let _lock = self.lock_containers()?;
            let hosts = self.hosts_entries(&view, &hostname);
            etc::write_files(&run_dir, &hostname, opts, &hosts)?
        };
        if let Some(r) = &rec.id_map {
            // The container's root may rewrite its hosts, hostname and
            // resolv.conf, as it may in the host's user namespace.
            for (_, file) in &etc_files {
                userns::chown_to_root(file, r)?;
            }
            for m in &rec.mounts {
                if m.typ == mounts::MountType::Volume {
                    userns::adopt_volume(&m.source, r)?;
                }
            }
        }
        let (mounts, copied) = self.runtime_mounts(rec)?;
        let net_ns = match &opts.network {
            NetworkMode::Container(c) => Some(PathBuf::from(format!(
                "/proc/{}/ns/net",
                self.running_pid(c, "network")?
            ))),
            _ => None,
        };
        let mut join_ns = Vec::new();
        let mut shm_source = None;
        for (mode, typ, file, what) in [
            (&opts.ipc, LinuxNamespaceType::Ipc, "ipc", "IPC namespace"),
            (&opts.pid, LinuxNamespaceType::Pid, "pid", "PID namespace"),
        ] {
            match mode {
                NamespaceMode::Container(c) => {
                    let pid = self.running_pid(c, what)?;
                    join_ns.push((typ, PathBuf::from(format!("/proc/{pid}/ns/{file}"))));
                    if typ == LinuxNamespaceType::Ipc {
                        shm_source = Some(self.donor_shm(c)?);
                    }
                }
                NamespaceMode::Host if typ == LinuxNamespaceType::Ipc => {
                    shm_source = Some(PathBuf::from("/dev/shm"));
                }
                NamespaceMode::Shareable => {
                    shm_source = Some(self.mount_shareable_shm(&run_dir, opts.shm_size)?);
                }
                _ => {}
            }
        }
        let init = if opts.init {
            Some(self.init_program()?)
        } else {
            None
        };
        let spec = spec::build(
            opts,
            spec::SpecInputs {
                args: rec.args.clone(),
                env,
                cwd,
                user: &user,
                hostname,
                rootfs: &rootfs,
                cgroup_path: self.cgroup_path(&rec.id),
                etc_files,
                console_size,
                mounts,
                net_ns,
                join_ns,
                shm_source,
                init,
                id_map: rec.id_map,
            },
        )?;
        let spec_path = run_dir.join("config.json");
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Corrupt {
            path: spec_path.clone(),
            message: e.to_string(),
        })?;
        berth_image::replace_file(&spec_path, &json)?;
        let overlay = self
            .images
            .overlay(image, Some(&self.init_layer(&dir)?), &upper, &work)?;
        let seccomp_program = self.seccomp_program_of(&spec)?;
        let container = berth_runtime::create(berth_runtime::CreateOptions {
            seccomp_program,
            start_fifo: None,
            spec,
            rootfs_mount: Some(RootfsMount {
                fstype: "overlay".into(),
                source: "overlay".into(),
                data: Some(volatile_if(overlay.data, opts.auto_remove)),
                workdir: Some(overlay.workdir),
            }),
            stdio,
            cgroup_root: self.config.cgroup_root.clone(),
            default_cgroup_path: self.cgroup_path(&rec.id),
            prestart: Engine::prestart(lease),
            preserve_fds: 0,
            no_pivot: false,
        })?;
        Ok((container, copied))
    }

    /// The pid of running container `key`'s init, whose namespace (`what`)
    /// another container joins.
    fn running_pid(&self, key: &str, what: &str) -> Result<i32> {
        let other = self.containers.find(key)?;
        if other.state.status != Status::Running || self.container_pidfd(&other).is_none() {
            return Err(Error::Conflict(format!(
                "cannot join the {what} of container {}: it is not running",
                other.name
            )));
        }
        Ok(other.state.pid)
    }

    /// A shareable container's /dev/shm lives on the host (under its run
    /// directory), where containers that join its IPC namespace find it.
    fn mount_shareable_shm(&self, run_dir: &Path, size: Option<i64>) -> Result<PathBuf> {
        let dir = run_dir.join("shm");
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let size = size.filter(|s| *s > 0).unwrap_or(64 << 20);
        let data = format!("mode=1777,size={}k", size / 1024);
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&*dir.to_string_lossy()));
        if !mounted {
            nix::mount::mount(
                Some("shm"),
                &dir,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV
                    | nix::mount::MsFlags::MS_NOEXEC,
                Some(data.as_str()),
            )
            .map_err(|e| Error::io("mount shm on", &dir)(e.into()))?;
        }
        Ok(dir)
    }

    /// The /dev/shm of container `key`, which another joins with `--ipc
    /// container:NAME`: the donor must be shareable (or share the host's).
    fn donor_shm(&self, key: &str) -> Result<PathBuf> {
        let other = self.containers.find(key)?;
        match other.options.ipc {
            NamespaceMode::Shareable => Ok(self.run_dir(&other.id).join("shm")),
            NamespaceMode::Host => Ok(PathBuf::from("/dev/shm")),
            _ => Err(Error::Conflict(format!(
                "cannot join the IPC namespace of container {}: non-shareable IPC (hint: use --ipc shareable for the donor container)",
                other.name
            ))),
        }
    }

    /// The compiled seccomp filter of a container's spec, if it has one
    /// (cached under the state root).
    pub(crate) fn seccomp_program_of(
        &self,
        spec: &berth_runtime::oci_spec::runtime::Spec,
    ) -> Result<Option<Vec<u8>>> {
        match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Ok(Some(seccomp::program(&self.config.root, s)?)),
            None => Ok(None),
        }
    }

    /// The image's HEALTHCHECK: a field of docker's config that the OCI
    /// config type does not carry, read from the stored document.
    fn image_healthcheck(&self, image: &Image) -> Option<health::HealthConfig> {
        let raw: serde_json::Value =
            serde_json::from_slice(&self.images.content().get(&image.id).ok()?).ok()?;
        serde_json::from_value(raw.get("config")?.get("Healthcheck")?.clone()).ok()
    }

    /// The init binary for `--init`.
    fn init_program(&self) -> Result<PathBuf> {
        const PLACES: [&str; 4] = [
            "/usr/bin/tini-static",
            "/usr/bin/docker-init",
            "/usr/libexec/docker/docker-init",
            "/usr/local/bin/docker-init",
        ];
        let found = match &self.config.init_program {
            Some(p) => p.is_file().then(|| p.clone()),
            None => PLACES.iter().map(PathBuf::from).find(|p| p.is_file()),
        };
        found.ok_or_else(|| {
            Error::InvalidArgument(
                "--init needs a static init program: install tini (apt-get install tini gives /usr/bin/tini-static)".into(),
            )
        })
    }

    /// Records how the container's process ended; `None` if the container
    /// was removed meanwhile.
    pub(crate) fn record_exit(
        &self,
        id: &str,
        code: i32,
        oom_killed: bool,
    ) -> Result<Option<ContainerRecord>> {
        let held = self.held_network(id);
        self.remove_run_dir(id);
        // Network resources go before the exit is recorded: once the record
        // says exited, waiters may go on and expect them gone.
        // A damaged record (or one removed meanwhile) no longer says what
        // the container held: its run directory did.
        match self.containers.find(id) {
            Ok(r) if r.damaged.is_none() => {
                self.release_at_exit(id, &r.state.endpoints, &r.state.ports)
            }
            _ => self.release_at_exit(id, &held.0, &held.1),
        }
        let updated = self.update(id, |r| {
            let again = r.options.restart.should_restart(
                code,
                r.state.restart_count,
                r.state.manually_stopped,
            );
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            if code == EXIT_UNKNOWN {
                r.state.error = containers::EXIT_UNKNOWN_WHY.into();
            }
            r.state.oom_killed = oom_killed;
            r.state.finished_at = Some(now());
            if !again {
                r.state.monitor_pid = 0;
            }
            Ok((
                std::mem::take(&mut r.state.endpoints),
                std::mem::take(&mut r.state.ports),
            ))
        });
        match updated {
            Ok((rec, (eps, _))) => {
                let nets: Vec<String> = eps.iter().map(|e| e.network_id.clone()).collect();
                self.refresh_hosts(&nets);
                self.emit_container(&rec, "die", &[("exitCode", code.to_string())]);
                Ok(Some(rec))
            }
            Err(Error::ContainerNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The monitor waits before it starts the container again.
    pub(crate) fn mark_restarting(&self, id: &str) -> Result<()> {
        let me = std::process::id() as i32;
        self.update(id, |r| {
            if r.state.manually_stopped || r.state.status != Status::Exited {
                return Err(Error::Conflict("stopped while restarting".into()));
            }
            r.state.status = Status::Restarting;
            r.state.monitor_pid = me;
            r.state.restart_count += 1;
            Ok(())
        })
        .map(|_| ())
    }

    fn still_active(&self, rec: &ContainerRecord) -> Error {
        Error::Conflict(format!(
            "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
            rec.name,
            rec.state.status.as_str()
        ))
    }

    /// Removes a container that is not running, and with `volumes` its
    /// anonymous volumes no other container uses.
    /// Removes a stopped container from the store: under the records lock
    /// its directories are renamed out of sight (one step each, so no
    /// listing sees half a container), and the returned [`RemovedDirs`] deletes
    /// them. A monitor answers its client first and deletes after.
    pub(crate) fn remove_stopped(&self, id: &str, volumes: bool) -> Result<RemovedDirs> {
        let _lock = self.lock_containers()?;
        self.collect_orphans().delete();
        let rec = match self.containers.find(id) {
            Ok(r) => r,
            Err(Error::ContainerNotFound(_)) => return Ok(RemovedDirs::default()),
            Err(e) => return Err(e),
        };
        if !rec.state.status.can_remove() {
            return Err(self.still_active(&rec));
        }
        let mut removed = RemovedDirs::default();
        for dir in [self.containers.dir(&rec.id), self.run_dir(&rec.id)] {
            let Some(parent) = dir.parent() else { continue };
            let trash = parent.join(format!("{REMOVED_PREFIX}{}", rec.id));
            match fs::rename(&dir, &trash) {
                Ok(()) => removed.dirs.push(trash),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &dir)(e)),
            }
        }
        if volumes {
            self.remove_anonymous_volumes(&rec)?;
        }
        self.emit_container(&rec, "destroy", &[]);
        Ok(removed)
    }

    /// Removes a container and its writable layer; a running one only with
    /// `force`, which kills it first; with `volumes`, its anonymous volumes too.
    pub fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let rec = self.containers.find(key)?;
        if rec.damaged.is_some() {
            self.end_damaged(&rec, force)?;
        }
        if rec.state.status.is_active() {
            if !force {
                return Err(self.still_active(&rec));
            }
            self.kill_all(&rec.id)?;
        }
        self.remove_stopped(&rec.id, volumes)?.delete();
        self.sweep_removed();
        Ok(())
    }

    /// Before a container whose record is damaged is removed: what its
    /// cgroup still holds is killed (only with `force`) and the cgroup goes;
    /// its network namespace, and the veths in it, go with its processes.
    fn end_damaged(&self, rec: &ContainerRecord, force: bool) -> Result<()> {
        // Read first: its monitor removes the run directory at the exit.
        let (endpoints, ports) = self.held_network(&rec.id);
        let Ok(cg) = self.cgroup(&rec.id) else {
            return Ok(());
        };
        let live = cg.pids().is_ok_and(|p| !p.is_empty());
        if live && !force {
            return Err(Error::Conflict(format!(
                "cannot remove container \"/{}\": its record is damaged and its processes still run: force remove",
                rec.name
            )));
        }
        if live {
            let _ = cg.freeze(false);
            let _ = cg.kill_all();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while cg.pids().is_ok_and(|p| !p.is_empty()) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if let Err(e) = cg.remove() {
                tracing::warn!("remove cgroup of {}: {e}", rec.id);
            }
        } else {
            let _ = cg.remove();
        }
        // Its published ports, as its run directory kept them (its address
        // leases were its record's and go with it).
        self.release(&endpoints, &ports);
        Ok(())
    }

    /// Under the records lock: renames away the directories a create killed
    /// before it wrote its record left (a create holds the lock from making
    /// the directory to writing the record, so none is in progress).
    fn collect_orphans(&self) -> RemovedDirs {
        let mut removed = RemovedDirs::default();
        for id in self.containers.orphan_dirs() {
            for dir in [self.containers.dir(&id), self.run_dir(&id)] {
                let Some(parent) = dir.parent() else { continue };
                let trash = parent.join(format!("{REMOVED_PREFIX}{id}"));
                if fs::rename(&dir, &trash).is_ok() {
                    removed.dirs.push(trash);
                }
            }
        }
        removed
    }

    /// Bytes of what interrupted container work left and the next create
    /// or removal collects: directories without a record, and removed
    /// containers' directories not deleted yet.
    pub(crate) fn container_leftovers(&self) -> u64 {
        let mut total = 0;
        for id in self.containers.orphan_dirs() {
            total += berth_image::dir_size(&self.containers.dir(&id));
        }
        for parent in [
            self.config.root.join("containers"),
            self.config.runroot.join("containers"),
        ] {
            for e in fs::read_dir(&parent).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(REMOVED_PREFIX) {
                    total += berth_image::dir_size(&e.path());
                }
            }
        }
        total
    }

    /// Deletes what removals renamed away and did not get to delete (their
    /// process was killed). Deleting one another process is still deleting
    /// is harmless: each ignores what the other took.
    fn sweep_removed(&self) {
        let dirs = [
            self.config.root.join("containers"),
            self.config.runroot.join("containers"),
        ];
        let mut left = RemovedDirs::default();
        for parent in dirs {
            let Ok(rd) = fs::read_dir(&parent) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(REMOVED_PREFIX) {
                    left.dirs.push(e.path());
                }
            }
        }
        left.delete();
    }

    /// Where a running container's regenerated files live (the OCI bundle's
    /// config.json, /etc/hostname, /etc/hosts, /etc/resolv.conf).
    /// The init layer of the container whose directory is `cdir`: its own
    /// where an older Berth made one per container, else the shared one.
    pub(crate) fn init_layer(&self, cdir: &Path) -> Result<PathBuf> {
        let own = cdir.join("init");
        if own.is_dir() {
            return Ok(own);
        }
        etc::shared_init_layer(&self.config.root)
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.config.runroot.join("containers").join(id)
    }

    fn remove_run_dir(&self, id: &str) {
        let dir = self.run_dir(id);
        // A shareable container's /dev/shm (see mount_shareable_shm).
        if let Err(e) = nix::mount::umount2(&dir.join("shm"), nix::mount::MntFlags::MNT_DETACH) {
            if !matches!(e, nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) {
                tracing::warn!("unmount {}: {e}", dir.join("shm").display());
            }
        }
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("remove {}: {e}", dir.display());
            }
        }
    }

    /// A container's cgroup, relative to each hierarchy's root.
    pub fn cgroup_path(&self, id: &str) -> PathBuf {
        Path::new(self.config.cgroup_parent.trim_matches('/')).join(id)
    }

    /// The root directory of the engine's state.
    pub fn root(&self) -> &Path {
        &self.config.root
    }
}

/// A removed container's directories, renamed to `.removed-<id>` beside
/// where they were: no listing shows them, and [`RemovedDirs::delete`] (or, after
/// a crash, the next removal) deletes them.
#[derive(Debug, Default)]
#[must_use = "the renamed directories stay on disk until deleted"]
pub(crate) struct RemovedDirs {
    dirs: Vec<PathBuf>,
}

pub(crate) const REMOVED_PREFIX: &str = ".removed-";

impl RemovedDirs {
    pub(crate) fn delete(self) {
        for dir in self.dirs {
            if let Err(e) = fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("remove {}: {e}", dir.display());
                }
            }
        }
    }
}

/// Takes an exclusive lock on `path` (created if missing) until dropped.
pub(crate) fn lock_file(path: &Path) -> Result<Flock<fs::File>> {
    let f = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::io("lock", path)(e.into()))
}

/// What `start_process` worked out for `start_wired`.
struct StartInputs {
    hostname: String,
    cwd: String,
    env: Vec<String>,
    user: ExecUser,
    run_dir: PathBuf,
    lease: networks::Lease,
}

/// Docker's exit codes for a failed `run`: 127 when the command does not
/// exist, 126 when it cannot be executed, 125 for every other failure.
pub fn exit_code_for(e: &Error) -> i32 {
    use berth_runtime::StartFailureKind;
    if let Error::StartFailed { code, .. } = e {
        return *code;
    }
    match e.start_failure().map(|f| f.kind) {
        Some(StartFailureKind::NotFound) => 127,
        Some(StartFailureKind::NotExecutable) => 126,
        _ => 125,
    }
}

/// Overlay options for a container's root: a container removed when it ends
/// (`--rm`) gets overlay's `volatile` option, as podman gives its `--rm`
/// containers: its writable layer is never synced to disk (without it, the
/// unmount at the container's exit syncs the whole filesystem under the store
/// and the exit waits for that), and nothing is lost that would have been
/// kept.
fn volatile_if(data: String, auto_remove: bool) -> String {
    if auto_remove {
        format!("{data},volatile")
    } else {
        data
    }
}
