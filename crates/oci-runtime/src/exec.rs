//! `exec`: another process in a running container, from `--process
//! p.json` (containerd's shim) or from the container's own process with
//! the command and flags given (a user's `exec -t ID sh`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::{Process, Spec};

use crate::record::{Record, Status, CGROUP_ROOT};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A unix socket that takes the terminal's master side
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// The working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set an environment variable (NAME=value)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Give the process a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// The user: UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// The process as a JSON document (runtime spec's `process`)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Do not wait for the process
    #[arg(short, long)]
    pub detach: bool,
    /// Where to write the process's pid
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability (CAP_*) to the process's sets
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Descriptors beyond stdio to pass on (3 .. 3+N)
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run even if the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// A container to run a process in: its init, cgroup and process spec.
pub struct Target {
    pub pid: i32,
    pub cgroup_path: PathBuf,
    pub process: Process,
}

impl Target {
    pub fn of(rec: &Record, spec: &Spec) -> Result<Target> {
        Ok(Target {
            pid: rec.pid,
            cgroup_path: rec.cgroup_path.clone(),
            process: spec
                .process()
                .clone()
                .context("config.json has no process")?,
        })
    }
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .with_context(|| format!("--user {s}: a numeric UID[:GID] is needed"))?;
    let gid = g
        .map(|g| g.parse())
        .transpose()
        .with_context(|| format!("--user {s}: a numeric UID[:GID] is needed"))?;
    Ok((uid, gid))
}

fn process_of(a: &Args, spec: &Spec) -> Result<Process> {
    if let Some(path) = &a.process {
        let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        return serde_json::from_slice(&data)
            .with_context(|| format!("{} is not a process document", path.display()));
    }
    if a.command.is_empty() {
        bail!("exec needs a command (or --process)");
    }
    let mut p = spec
        .process()
        .clone()
        .context("config.json has no process")?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for e in &a.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p.set_env(Some(env));
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.cap {
            let cap: berth_runtime::oci_spec::runtime::Capability = c
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown capability {c}"))?;
            let add = |s: Option<std::collections::HashSet<_>>| {
                let mut s = s.unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
            caps.set_ambient(add(caps.ambient().clone()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

pub fn pid_file(path: &Path, pid: i32) -> Result<()> {
    // Written whole or not at all: the shim reads it as soon as we exit.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("write pid file {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, pid.to_string().as_bytes())?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("write pid file {}: {}", path.display(), e.error))?;
    Ok(())
}

pub fn run(cli: &Cli, a: &Args) -> Result<i32> {
    let rec = Record::load(&cli.root, &a.id)?;
    let status = rec.status(&cli.root);
    if !(status.can_exec() || (status == Status::Paused && a.ignore_paused)) {
        match status {
            Status::Paused => {
                bail!("cannot exec in a paused container (use --ignore-paused to override)")
            }
            Status::Created => bail!("cannot exec in a container that has not started"),
            _ => bail!("cannot exec in a stopped container"),
        }
    }
    let signals = crate::signals::block()?;
    let spec = rec.spec(&cli.root)?;
    let process = process_of(a, &spec)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.detach && a.console_socket.is_none() {
        bail!("cannot allocate tty if berth-runtime will detach without setting console socket");
    }
    if !terminal && a.console_socket.is_some() {
        bail!("cannot use console socket if berth-runtime will not detach or allocate tty");
    }
    let mut process = process;
    if terminal && a.console_socket.is_none() {
        crate::console::size_from_own(&mut process);
    }
    let seccomp_program = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(berth_runtime::seccomp::compile)
        .transpose()?;
    let mut p = berth_runtime::exec(berth_runtime::ExecOptions {
        pid: nix::unistd::Pid::from_raw(rec.pid),
        process,
        stdio: berth_runtime::Stdio::default(),
        cgroup_root: CGROUP_ROOT.into(),
        cgroup_path: rec.cgroup_path.clone(),
        seccomp_program,
        preserve_fds: a.preserve_fds,
        program: None,
    })?;
    let pid = p.pid().as_raw();
    let master = p.take_pty_master();
    if let (Some(sock), Some(m)) = (&a.console_socket, &master) {
        if let Err(e) = crate::console::send(sock, m) {
            let _ = p.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = p.wait();
            return Err(e);
        }
    }
    if let Some(path) = &a.pid_file {
        pid_file(path, pid)?;
    }
    if a.detach {
        // Reparented to the nearest subreaper (containerd's shim), which
        // reaps it, as runc's are.
        std::mem::forget(p);
        return Ok(0);
    }
    if let (None, Some(m)) = (&a.console_socket, &master) {
        crate::console::proxy(m, &|| {
            crate::record::proc_stat(pid).is_none_or(|(_, s)| s == 'Z')
        });
    }
    let status = crate::signals::wait_forwarding(
        &signals,
        || Ok(p.try_wait()?),
        |s| {
            let _ = p.signal(s);
        },
    )?;
    Ok(status.code())
}
