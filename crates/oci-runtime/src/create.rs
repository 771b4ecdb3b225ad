//! `create`: the container is set up from its bundle and its init waits on
//! the start fifo; this process exits and leaves it to `start`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::Spec;
use berth_runtime::{CreateOptions, Stdio};

use crate::record::{self, Record, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The bundle: config.json and its root filesystem (default: the working directory)
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// Where to write the init's pid
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A unix socket that takes the terminal's master side (not supported yet)
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Descriptors beyond stdio to pass on (only 0 is supported)
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Do not use pivot_root (refused: berth-runtime always pivots)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring (berth-runtime never does)
    #[arg(long)]
    pub no_new_keyring: bool,
    pub id: String,
}

/// The bundle's spec, checked for what berth-runtime cannot honour, with
/// its root made absolute.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let mut spec = Spec::load(&path).with_context(|| format!("load {}", path.display()))?;
    if !spec.version().starts_with("1.") {
        bail!("unsupported ociVersion {}", spec.version());
    }
    if spec.hooks().is_some() {
        bail!("spec field hooks is not supported by berth-runtime yet");
    }
    if let Some(p) = spec.process() {
        if p.terminal().unwrap_or(false) {
            bail!("process.terminal is true: a terminal needs --console-socket, which berth-runtime does not support yet");
        }
        if p.apparmor_profile()
            .as_deref()
            .is_some_and(|a| !a.is_empty())
        {
            bail!(
                "spec field process.apparmorProfile is not supported (this host has no AppArmor)"
            );
        }
        if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) {
            bail!("spec field process.selinuxLabel is not supported (this host has no SELinux)");
        }
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            bail!("spec field linux.intelRdt is not supported");
        }
        if l.personality().is_some() {
            bail!("spec field linux.personality is not supported");
        }
    }
    let mut root = spec.root().clone().context("config.json has no root")?;
    if root.path().is_relative() {
        root.set_path(bundle.join(root.path()));
    }
    spec.set_root(Some(root));
    Ok(spec)
}

pub fn bundle_dir(given: &Option<PathBuf>) -> Result<PathBuf> {
    let b = match given {
        Some(b) => b.clone(),
        None => std::env::current_dir().context("the working directory")?,
    };
    std::path::absolute(&b).with_context(|| format!("bundle {}", b.display()))
}

/// Creates the container; returns its record and the runtime's handle (the
/// init is this process's child until this process exits).
pub fn create(cli: &Cli, a: &CreateArgs) -> Result<(Record, berth_runtime::Container)> {
    record::check_id(&a.id)?;
    if a.console_socket.is_some() {
        bail!("--console-socket is not supported by berth-runtime yet");
    }
    if a.preserve_fds > 0 {
        bail!("--preserve-fds is not supported by berth-runtime yet");
    }
    if a.no_pivot {
        bail!("--no-pivot is not supported: berth-runtime always uses pivot_root");
    }
    let bundle = bundle_dir(&a.bundle)?;
    let spec = load_spec(&bundle)?;
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let annotations = spec.annotations().clone().unwrap_or_default();
    std::fs::create_dir_all(&cli.root).with_context(|| format!("create {}", cli.root.display()))?;
    let dir = record::dir(&cli.root, &a.id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {}", a.id)
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
    }
    let made = (|| -> Result<(Record, berth_runtime::Container)> {
        let fifo = record::fifo(&cli.root, &a.id);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .with_context(|| format!("create {}", fifo.display()))?;
        let cgroup_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .unwrap_or_else(|| Path::new("/berth-runtime").join(&a.id));
        let container = berth_runtime::create(CreateOptions {
            spec,
            rootfs_mount: None,
            stdio: Stdio::default(),
            cgroup_root: CGROUP_ROOT.into(),
            default_cgroup_path: cgroup_path.clone(),
            prestart: None,
            seccomp_program: None,
            start_fifo: Some(fifo),
        })?;
        let pid = container.pid().as_raw();
        let start_time = record::proc_stat(pid).map_or(0, |(t, _)| t);
        let rec = Record {
            id: a.id.clone(),
            pid,
            start_time,
            bundle,
            rootfs,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            cgroup_path,
            annotations,
        };
        rec.save(&cli.root)?;
        if let Some(p) = &a.pid_file {
            std::fs::write(p, pid.to_string())
                .with_context(|| format!("write pid file {}", p.display()))?;
        }
        Ok((rec, container))
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

pub fn run(cli: &Cli, a: &CreateArgs) -> Result<()> {
    // The init waits on the fifo; this process leaves it (reparented to the
    // nearest subreaper, as runc's is).
    let (_, container) = create(cli, a)?;
    std::mem::forget(container);
    Ok(())
}
