//! Creating a container from a spec, and the handle to it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::pty::Winsize;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Process, Spec};

use crate::capabilities;
use crate::cgroups::{Cgroup, Entry};
use crate::child::{self, ChildConfig};
use crate::clone::{clone_into, Forked};
use crate::detached;
use crate::devices;
use crate::error::{Error, Result};
use crate::paths::owned;
use crate::rootfs::RootfsPlan;
use crate::sync;

/// A mount that becomes the container's root filesystem, performed inside the
/// container's mount namespace onto `spec.root.path` (so it vanishes with the
/// container and never shows in the host's mount table).
#[derive(Debug, Clone)]
pub struct RootfsMount {
    pub fstype: String,
    pub source: String,
    /// The filesystem's options (e.g. overlay's lowerdir/upperdir/workdir).
    pub data: Option<String>,
    /// Directory to change into before mounting, for relative paths in `data`.
    pub workdir: Option<PathBuf>,
}

/// The container's stdio when it has no terminal: `None` inherits the caller's.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

pub struct CreateOptions {
    pub spec: Spec,
    pub rootfs_mount: Option<RootfsMount>,
    pub stdio: Stdio,
    /// Where the cgroup hierarchies are mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The cgroup path when the spec has none.
    pub default_cgroup_path: PathBuf,
    /// A fifo that holds the program back until something opens it for
    /// reading (`start`): `create` returns once the container is set up.
    pub start_fifo: Option<PathBuf>,
    /// `linux.seccomp` already compiled (see [`crate::seccomp::compile`]);
    /// `None` compiles the spec's filter, if it has one.
    pub seccomp_program: Option<Vec<u8>>,
    /// Called with the init's pid once its namespaces exist and before it
    /// runs anything of the container's (OCI's createRuntime hook): where
    /// the caller sets up the container's network.
    pub prestart: Option<Prestart>,
    /// Descriptors 3 .. 3+n of the caller that the program inherits (runc's
    /// `--preserve-fds`); every other one is closed at exec.
    pub preserve_fds: u32,
    /// Enter the root with MS_MOVE + chroot instead of pivot_root (runc's
    /// `--no-pivot`, for a root on the initramfs, where pivot_root fails).
    pub no_pivot: bool,
}

/// See [`CreateOptions::prestart`].
pub type Prestart = Box<dyn FnOnce(Pid) -> std::result::Result<(), String>>;

/// How the container's init process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(Signal),
}

impl ExitStatus {
    /// The shell's convention, which docker follows: 128 + signal number.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(c) => *c,
            ExitStatus::Signaled(s) => 128 + *s as i32,
        }
    }
}

/// A created container whose program is running.
pub struct Container {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    cgroup: Cgroup,
    pty_master: Option<OwnedFd>,
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec(format!("{what} contains a NUL byte: {s:?}")))
}

pub(crate) fn write_id_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let content: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::write(&path, content).map_err(|source| Error::Io {
        op: "write",
        path,
        source,
    })
}

/// For a container in a user namespace: the root overlay (lower layers
/// idmapped to the container's ranges) and every bind source, opened here by
/// the host's root as detached trees the init attaches (see [`detached`]).
fn prepare_detached(
    plan: &mut RootfsPlan,
    linux: &oci_spec::runtime::Linux,
    held: &mut Vec<OwnedFd>,
) -> Result<()> {
    if let Some(rm) = plan.rootfs_mount.as_ref().filter(|m| m.fstype == "overlay") {
        let dirs =
            detached::parse_overlay(rm.data.as_deref().unwrap_or(""), rm.workdir.as_deref())?;
        let userns = detached::userns_with_maps(
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )?;
        let root = detached::overlay(&dirs, &userns)?;
        plan.prepared_root = Some(root.as_raw_fd());
        held.push(root);
    }
    for m in &plan.mounts {
        let opts = crate::mounts::MountOptions::parse(m.options().as_deref().unwrap_or(&[]));
        let tree = match (&m.source(), opts.bind || m.typ().as_deref() == Some("bind")) {
            (Some(src), true) if !crate::cgroupfs::is_cgroup_mount(m) => {
                let t = detached::clone_tree(src, opts.flags.contains(MsFlags::MS_REC))?;
                let fd = t.as_raw_fd();
                held.push(t);
                Some(fd)
            }
            _ => None,
        };
        plan.bind_trees.push(tree);
    }
    Ok(())
}

/// Sets a terminal's window size (rows, columns).
pub fn set_winsize(fd: impl AsFd, rows: u16, cols: u16) -> Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize from the pointer, which is valid.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r == -1 {
        return Err(Error::sys("set terminal size")(Errno::last()));
    }
    Ok(())
}

/// The child's configuration for running `process` (args, environment,
/// user, capabilities, stdio, terminal); the caller adds the namespaces.
pub(crate) fn process_config(
    process: &Process,
    stdio: &Stdio,
    join: Vec<(OwnedFd, CloneFlags)>,
    plan: Option<RootfsPlan>,
) -> Result<ChildConfig> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::InvalidSpec(
            "process.args is empty: no command given".into(),
        ));
    }
    let env = process.env().as_deref().unwrap_or_default();
    let terminal = process.terminal().unwrap_or(false);
    let console_size = process
        .console_size()
        .as_ref()
        .map(|b| (b.height() as u16, b.width() as u16));
    let fd = |f: &Option<OwnedFd>| f.as_ref().filter(|_| !terminal).map(|f| f.as_raw_fd());
    let user = process.user();
    Ok(ChildConfig {
        args: args
            .iter()
            .map(|a| cstring("argument", a))
            .collect::<Result<_>>()?,
        program: args[0].clone(),
        env: env
            .iter()
            .map(|e| cstring("environment variable", e))
            .collect::<Result<_>>()?,
        path_var: env
            .iter()
            .find_map(|e| e.strip_prefix("PATH=").map(str::to_string)),
        cwd: PathBuf::from(process.cwd()),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        hostname: None,
        domainname: None,
        new_net: false,
        new_cgroup_ns: false,
        userns: false,
        join,
        cgroup_tasks: Vec::new(),
        plan,
        caps: capabilities::Plan::new(process.capabilities().as_ref()),
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        seccomp: None,
        start_fifo: None,
        rlimits: process
            .rlimits()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|r| (crate::rlimits::resource(r.typ()), r.soft(), r.hard()))
            .collect(),
        stdio: [fd(&stdio.stdin), fd(&stdio.stdout), fd(&stdio.stderr)],
        terminal: terminal.then_some(console_size),
        preserve_fds: 0,
        program_fd: None,
    })
}

/// Creates the container described by `opts.spec` and starts its program.
///
/// Must be called from a single-threaded process. On error nothing is left:
/// the init process is killed and reaped and the cgroup removed.
pub fn create(mut opts: CreateOptions) -> Result<Container> {
    ensure_single_threaded("create a container")?;
    let prestart = opts.prestart.take();
    let spec = &opts.spec;
    if !spec.version().starts_with("1.") {
        return Err(Error::InvalidSpec(format!(
            "unsupported ociVersion {}",
            spec.version()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("no process".into()))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("no root".into()))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("no linux section".into()))?;

    let mut clone_flags = CloneFlags::empty();
    let mut join = Vec::new();
    let mut new_cgroup_ns = false;
    // A pid namespace to join is entered by the clone itself (setns on a pid
    // namespace only places the caller's future children in it).
    let mut pid_ns = None;
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let flag = ns_flag(ns.typ());
        match ns.path() {
            Some(path) => {
                if ns.typ() == LinuxNamespaceType::User {
                    return Err(Error::InvalidSpec(
                        "joining an existing user namespace is not supported".into(),
                    ));
                }
                let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .map(owned)
                    .map_err(|e| Error::Io {
                        op: "open namespace",
                        path: path.clone(),
                        source: e.into(),
                    })?;
                if ns.typ() == LinuxNamespaceType::Pid {
                    pid_ns = Some(fd);
                } else {
                    join.push((fd, flag));
                }
            }
            // The cgroup namespace is unshared by the child once it is in its
            // cgroup, so that the cgroup becomes the namespace's root.
            None if flag == CloneFlags::CLONE_NEWCGROUP => new_cgroup_ns = true,
            None => clone_flags |= flag,
        }
    }
    let userns = clone_flags.contains(CloneFlags::CLONE_NEWUSER);

    let terminal = process.terminal().unwrap_or(false);
    let rootfs = std::fs::canonicalize(root.path()).map_err(|source| Error::Io {
        op: "resolve root",
        path: root.path().clone(),
        source,
    })?;
    let propagation = match linux.rootfs_propagation().as_deref() {
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE,
        Some("shared") | Some("rshared") => MsFlags::MS_SHARED,
        _ => MsFlags::MS_SLAVE,
    };
    let paths = |v: &Option<Vec<String>>| {
        v.as_deref()
            .unwrap_or_default()
            .iter()
            .map(PathBuf::from)
            .collect()
    };
    let mut plan = RootfsPlan {
        rootfs,
        rootfs_mount: opts.rootfs_mount.clone(),
        propagation,
        mounts: spec.mounts().clone().unwrap_or_default(),
        devices: devices::nodes(linux.devices().as_deref().unwrap_or_default()),
        console: terminal,
        readonly_root: root.readonly().unwrap_or(false),
        masked: paths(linux.masked_paths()),
        readonly_paths: paths(linux.readonly_paths()),
        userns,
        sysctls: linux
            .sysctl()
            .as_ref()
            .map(|m| {
                let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                v.sort();
                v
            })
            .unwrap_or_default(),
        cgroup_root: opts.cgroup_root.clone(),
        prepared_root: None,
        bind_trees: Vec::new(),
        no_pivot: opts.no_pivot,
    };
    // Held until the clone has given the init its copies.
    let mut prepared = Vec::new();
    if userns {
        prepare_detached(&mut plan, linux, &mut prepared)?;
    }
    let mut config = process_config(process, &opts.stdio, join, Some(plan))?;
    config.preserve_fds = opts.preserve_fds;
    config.hostname = spec
        .hostname()
        .clone()
        .filter(|_| clone_flags.contains(CloneFlags::CLONE_NEWUTS));
    config.domainname = spec
        .domainname()
        .clone()
        .filter(|d| !d.is_empty() && clone_flags.contains(CloneFlags::CLONE_NEWUTS));
    config.new_net = clone_flags.contains(CloneFlags::CLONE_NEWNET);
    config.new_cgroup_ns = new_cgroup_ns;
    config.userns = userns;
    let start_fifo = match &opts.start_fifo {
        Some(p) => Some(
            open(p, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .map(owned)
                .map_err(|e| Error::Io {
                    op: "open start fifo",
                    path: p.clone(),
                    source: e.into(),
                })?,
        ),
        None => None,
    };
    config.start_fifo = start_fifo.as_ref().map(|f| f.as_raw_fd());
    config.seccomp = match (opts.seccomp_program.take(), linux.seccomp()) {
        (Some(prog), _) => Some(prog),
        (None, Some(s)) => Some(crate::seccomp::compile(s)?),
        (None, None) => None,
    };

    let cgroup_path = linux
        .cgroups_path()
        .clone()
        .unwrap_or_else(|| opts.default_cgroup_path.clone());
    let cgroup_path = cgroup_path
        .strip_prefix("/")
        .map(Path::to_path_buf)
        .unwrap_or(cgroup_path);

    // The cgroup is made, with every limit written, before the clone, so
    // the init can enter it first thing (see `Entry`: no move by the parent,
    // which on v1 waits for an RCU grace period). Removed again if the start
    // fails from here on.
    let mut cgroup = CgroupGuard(Some(Cgroup::new(&opts.cgroup_root, &cgroup_path)?));
    cgroup.get().create(linux.resources().as_ref())?;
    let entry = cgroup.get().entry()?;
    config.cgroup_tasks = entry.tasks();

    let (parent_chan, child_chan) = sync::pair()?;
    let own_pid_ns = match &pid_ns {
        Some(target) => {
            let own = open(
                "/proc/self/ns/pid",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(owned)
            .map_err(Error::sys("open own pid namespace"))?;
            nix::sched::setns(target, CloneFlags::CLONE_NEWPID)
                .map_err(Error::sys("join pid namespace"))?;
            Some(own)
        }
        None => None,
    };
    let (forked, parent_moves) = clone_in(clone_flags.bits(), &entry);
    if let Ok(Forked::Child) = forked {
        drop(parent_chan);
        child::run(&config, &child_chan)
    }
    drop(entry);
    // Our own future children belong to our namespace again.
    let restored = match &own_pid_ns {
        Some(own) => nix::sched::setns(own, CloneFlags::CLONE_NEWPID),
        None => Ok(()),
    };
    let Forked::Parent { pid, pidfd } = forked.map_err(Error::sys("clone container init"))? else {
        unreachable!("the child never returns here")
    };
    drop(child_chan);
    drop(config);
    drop(prepared);
    if let Err(e) = restored {
        let _ = kill_and_reap(pid, pidfd.as_ref());
        return Err(Error::sys("restore pid namespace")(e));
    }

    // The child is in its cgroup (or moved there here) before it unshares
    // its cgroup namespace or executes anything of the container's.
    let prepared = (|| {
        if userns {
            write_id_map(
                pid,
                "uid_map",
                linux.uid_mappings().as_deref().unwrap_or_default(),
            )?;
            write_id_map(
                pid,
                "gid_map",
                linux.gid_mappings().as_deref().unwrap_or_default(),
            )?;
            parent_chan.send_go()?;
        }
        parent_chan.wait_joined()?;
        if parent_moves {
            cgroup.get().add(pid)?;
        }
        if let Some(adj) = process.oom_score_adj() {
            set_oom_score_adj(pid, adj)?;
        }
        if let Some(hook) = prestart {
            hook(pid).map_err(Error::Prestart)?;
        }
        parent_chan.send_go()
    })();
    let abort = |cgroup: Option<Cgroup>| {
        let _ = kill_and_reap(pid, pidfd.as_ref());
        if let Some(cg) = cgroup {
            if let Err(e) = cg.remove() {
                tracing::warn!("cleanup after failed start: {e}");
            }
        }
    };
    if let Err(e) = prepared {
        abort(cgroup.0.take());
        // The child may have failed first (and so made our step fail): its
        // report says what went wrong.
        return Err(match parent_chan.wait_started() {
            Err(child_err @ Error::Start(_)) => child_err,
            _ => e,
        });
    }
    let Some(cgroup) = cgroup.0.take() else {
        unreachable!("the guard holds the cgroup until here")
    };
    match parent_chan.wait_started() {
        Ok(pty_master) => Ok(Container {
            pid,
            pidfd,
            cgroup,
            pty_master,
        }),
        Err(e) => {
            abort(Some(cgroup));
            Err(e)
        }
    }
}

/// Clones a process that starts out in its cgroup by way of `entry`. The
/// flag says whether the caller must still move it in: the kernel refused
/// to clone into the cgroup (before Linux 5.7, or a cgroup it starts no
/// process in, where the move then fails with the reason).
pub(crate) fn clone_in(flags: libc::c_int, entry: &Entry) -> (nix::Result<Forked>, bool) {
    match entry.clone_into() {
        Some(dir) => match clone_into(flags, Some(dir)) {
            Err(_) => (clone_into(flags, None), true),
            forked => (forked, false),
        },
        None => (clone_into(flags, None), false),
    }
}

/// Writes the process's oom_score_adj; lowering it below the current value
/// needs CAP_SYS_RESOURCE, which the error names.
pub(crate) fn set_oom_score_adj(pid: Pid, adj: i32) -> Result<()> {
    if !(-1000..=1000).contains(&adj) {
        return Err(Error::InvalidSpec(format!(
            "oomScoreAdj {adj} is outside -1000..1000"
        )));
    }
    let path = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
    std::fs::write(&path, adj.to_string()).map_err(|source| {
        if matches!(source.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) {
            Error::Refused(format!(
                "oom_score_adj {adj} refused by the kernel: lowering it needs CAP_SYS_RESOURCE, which this host's root lacks"
            ))
        } else {
            Error::Io {
                op: "write",
                path,
                source,
            }
        }
    })
}

pub(crate) fn kill_and_reap(pid: Pid, pidfd: Option<&OwnedFd>) -> Result<ExitStatus> {
    send_signal(pid, pidfd, Signal::SIGKILL)?;
    wait_pid(pid)
}

pub(crate) fn send_signal(pid: Pid, pidfd: Option<&OwnedFd>, sig: Signal) -> Result<()> {
    let r = match pidfd {
        Some(fd) => {
            // SAFETY: pidfd_send_signal with a valid pidfd, null siginfo and no flags.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig as libc::c_int,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if r == -1 {
                Err(Errno::last())
            } else {
                Ok(())
            }
        }
        None => nix::sys::signal::kill(pid, sig),
    };
    match r {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(Error::sys("signal container")(e)),
    }
}

pub(crate) fn status(ws: WaitStatus) -> Option<ExitStatus> {
    match ws {
        WaitStatus::Exited(_, code) => Some(ExitStatus::Exited(code)),
        WaitStatus::Signaled(_, sig, _) => Some(ExitStatus::Signaled(sig)),
        _ => None,
    }
}

pub(crate) fn wait_pid(pid: Pid) -> Result<ExitStatus> {
    loop {
        match waitpid(pid, None) {
            Ok(ws) => {
                if let Some(s) = status(ws) {
                    return Ok(s);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for container")(e)),
        }
    }
}

impl Container {
    /// The init process's pid, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The master side of the container's terminal, when the spec asked for one.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// The init process's pidfd (absent where the kernel lacks CLONE_PIDFD).
    pub fn pidfd(&self) -> Option<&OwnedFd> {
        self.pidfd.as_ref()
    }

    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Sends `sig` to the init process (through its pidfd, immune to pid reuse).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        send_signal(self.pid, self.pidfd.as_ref(), sig)
    }

    /// Reaps the init process if it has exited.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(ws) => Ok(status(ws)),
            Err(Errno::EINTR) => Ok(None),
            Err(e) => Err(Error::sys("wait for container")(e)),
        }
    }

    /// Waits for the init process to exit and reaps it.
    pub fn wait(&self) -> Result<ExitStatus> {
        wait_pid(self.pid)
    }

    /// Removes the container's cgroup, killing anything still in it.
    pub fn destroy(self) -> Result<()> {
        self.cgroup.remove()
    }
}

/// Creating a container clones this process and, for `exec`, switches its
/// namespace for children around the clone: sound only with one thread (the
/// clone copies one thread's view of memory others may be changing). Berth
/// does both in a container's monitor; anything else is refused here.
pub(crate) fn ensure_single_threaded(what: &str) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| Error::Io {
        op: "read",
        path: "/proc/self/status".into(),
        source: e,
    })?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if threads > 1 {
        return Err(Error::InvalidSpec(format!(
            "cannot {what} from a process with {threads} threads: it must be single-threaded (a container's monitor)"
        )));
    }
    Ok(())
}

/// A container's cgroup while its start may still fail: removed (with
/// anything in it) unless taken out.
struct CgroupGuard(Option<Cgroup>);

impl CgroupGuard {
    fn get(&self) -> &Cgroup {
        match &self.0 {
            Some(cg) => cg,
            None => unreachable!("taken only at the end of a start"),
        }
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            if let Err(e) = cg.remove() {
                tracing::warn!("cleanup after failed start: {e}");
            }
        }
    }
}
