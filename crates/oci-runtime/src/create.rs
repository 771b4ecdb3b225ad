//! `create`: the container is set up from its bundle and its init waits on
//! the start fifo; this process exits and leaves it to `start`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::{Hook, Spec};
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
    /// A unix socket that takes the terminal's master side
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Descriptors beyond stdio to pass on (3 .. 3+N)
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Enter the root with MS_MOVE and chroot, not pivot_root (a root on the initramfs)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring (berth-runtime never creates one)
    #[arg(long)]
    pub no_new_keyring: bool,
    pub id: String,
}

/// The bundle's spec, checked for what berth-runtime cannot honour (every
/// such field named), with its root made absolute.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let mut spec = Spec::load(&path).with_context(|| format!("load {}", path.display()))?;
    if !spec.version().starts_with("1.") {
        bail!("unsupported ociVersion {}", spec.version());
    }
    let unsupported = crate::check::unsupported(&serde_json::to_value(&spec)?);
    if !unsupported.is_empty() {
        bail!(
            "config.json asks for what berth-runtime does not support: {}",
            unsupported.join(", ")
        );
    }
    let mut root = spec.root().clone().context("config.json has no root")?;
    if root.path().is_relative() {
        root.set_path(bundle.join(root.path()));
    }
    spec.set_root(Some(root));
    Ok(spec)
}

/// The device rules runc adds after the spec's own (a spec's `deny all`
/// would otherwise take the container's /dev/null and terminal away):
/// mknod of any node, the standard character devices, the terminals, and
/// every node `linux.devices` creates.
fn add_default_device_rules(spec: &mut Spec) -> Result<()> {
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(());
    };
    use berth_runtime::devices::{cgroup_rule, default_cgroup_rules};
    let mut extra = default_cgroup_rules()?;
    for d in linux.devices().as_deref().unwrap_or_default() {
        extra.push(cgroup_rule(
            true,
            d.typ(),
            Some(d.major()),
            Some(d.minor()),
            "rwm",
        )?);
    }
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    rules.extend(extra);
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    Ok(())
}

pub fn bundle_dir(given: &Option<PathBuf>) -> Result<PathBuf> {
    let b = match given {
        Some(b) => b.clone(),
        None => std::env::current_dir().context("the working directory")?,
    };
    std::path::absolute(&b).with_context(|| format!("bundle {}", b.display()))
}

/// The state document hooks get before the record exists.
fn early_state(id: &str, pid: i32, bundle: &Path, spec: &Spec) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": record::OCI_VERSION,
        "id": id,
        "status": "creating",
        "pid": pid,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    })
}

/// Creates the container; returns its record and the runtime's handle (the
/// init is this process's child until this process exits). With
/// `foreground`, a terminal without a console socket is the caller's to
/// copy (`run`); its master side is returned.
pub fn create(
    cli: &Cli,
    a: &CreateArgs,
    foreground: bool,
) -> Result<(Record, berth_runtime::Container, Option<OwnedFd>)> {
    record::check_id(&a.id)?;
    let bundle = bundle_dir(&a.bundle)?;
    let mut spec = load_spec(&bundle)?;
    if berth_runtime::cgroups::detect(CGROUP_ROOT.as_ref())? == berth_runtime::cgroups::Version::V2
    {
        let refused = crate::check::unsupported_on_cgroup_v2(&serde_json::to_value(&spec)?);
        if !refused.is_empty() {
            bail!(
                "config.json asks for what berth-runtime does not support on this cgroup v2 host: {}",
                refused.join(", ")
            );
        }
    }
    // On v2 the rules become the cgroup's eBPF device program.
    add_default_device_rules(&mut spec)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && a.console_socket.is_none() && !foreground {
        bail!("cannot allocate tty if berth-runtime will detach without setting console socket");
    }
    if !terminal && a.console_socket.is_some() {
        bail!("cannot use console socket if berth-runtime will not detach or allocate tty");
    }
    if terminal && a.console_socket.is_none() {
        if let Some(mut p) = spec.process().clone() {
            crate::console::size_from_own(&mut p);
            spec.set_process(Some(p));
        }
    }
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
    let made = (|| -> Result<(Record, berth_runtime::Container, Option<OwnedFd>)> {
        // The spec as created: later verbs (hooks, exec) read this copy,
        // not the bundle, which its owner may change.
        record::save_spec(&cli.root, &a.id, &spec)?;
        let fifo = record::fifo(&cli.root, &a.id);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .with_context(|| format!("create {}", fifo.display()))?;
        let cgroup_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .unwrap_or_else(|| Path::new("/berth-runtime").join(&a.id));
        let hooks = spec.hooks().clone().unwrap_or_default();
        let early_hooks: Vec<(&str, Vec<Hook>)> = vec![
            ("prestart", hooks.prestart().clone().unwrap_or_default()),
            (
                "createRuntime",
                hooks.create_runtime().clone().unwrap_or_default(),
            ),
        ];
        let prestart: Option<berth_runtime::Prestart> =
            if early_hooks.iter().all(|(_, h)| h.is_empty()) {
                None
            } else {
                let id = a.id.clone();
                let bundle = bundle.clone();
                let spec_for_state = spec.clone();
                Some(Box::new(move |pid: nix::unistd::Pid| {
                    let state = early_state(&id, pid.as_raw(), &bundle, &spec_for_state);
                    for (kind, list) in &early_hooks {
                        crate::hooks::run_all(kind, list, &state).map_err(|e| format!("{e:#}"))?;
                    }
                    Ok(())
                }))
            };
        let mut container = berth_runtime::create(CreateOptions {
            spec: spec.clone(),
            rootfs_mount: None,
            stdio: Stdio::default(),
            cgroup_root: CGROUP_ROOT.into(),
            default_cgroup_path: cgroup_path.clone(),
            prestart,
            seccomp_program: None,
            start_fifo: Some(fifo),
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
        })?;
        let pid = container.pid().as_raw();
        let abort = |container: &berth_runtime::Container| {
            let _ = container.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = container.wait();
            let _ = container.cgroup().remove();
        };
        let create_container = hooks.create_container().clone().unwrap_or_default();
        if !create_container.is_empty() {
            let target = crate::exec::Target {
                pid,
                cgroup_path: cgroup_path.clone(),
                process: spec.process().clone().unwrap_or_default(),
            };
            let state = early_state(&a.id, pid, &bundle, &spec);
            if let Err(e) = crate::hooks::run_in_container(
                "createContainer",
                &create_container,
                &state,
                &target,
                true,
            ) {
                abort(&container);
                return Err(e);
            }
        }
        let mut master = container.take_pty_master();
        if let (Some(sock), Some(m)) = (&a.console_socket, &master) {
            if let Err(e) = crate::console::send(sock, m) {
                abort(&container);
                return Err(e);
            }
            master = None;
        }
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
            paused: false,
        };
        let saved = rec.save(&cli.root).and_then(|()| match &a.pid_file {
            Some(p) => crate::exec::pid_file(p, pid),
            None => Ok(()),
        });
        if let Err(e) = saved {
            abort(&container);
            return Err(e);
        }
        Ok((rec, container, master))
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

pub fn run(cli: &Cli, a: &CreateArgs) -> Result<()> {
    // The init waits on the fifo; this process leaves it (reparented to the
    // nearest subreaper, as runc's is).
    let (_, container, _) = create(cli, a, false)?;
    std::mem::forget(container);
    Ok(())
}
