//! The container's init process between clone and exec.
//!
//! Order: enter the cgroup (write itself into each v1 `tasks` file it was
//! handed; on v2 it was cloned into it) and report that, (in a user namespace,
//! wait for the id maps), join the namespaces to join, build and enter the
//! root filesystem, set up stdio; then wait for the parent's go (hooks run,
//! network set up), unshare the cgroup namespace,
//! mount the cgroup filesystems (rooted at the container's cgroup only now),
//! drop privileges, then exec. Any failure is reported to the parent over the
//! channel.

use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{
    chdir, dup2, execve, getcwd, sethostname, setresgid, setresuid, setsid, Gid, Uid,
};

use crate::capabilities;
use crate::error::{StartFailure, StartFailureKind};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::Channel;

pub(crate) struct ChildConfig {
    pub args: Vec<CString>,
    pub program: String,
    pub env: Vec<CString>,
    pub path_var: Option<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub new_net: bool,
    pub new_cgroup_ns: bool,
    pub userns: bool,
    pub join: Vec<(OwnedFd, CloneFlags)>,
    /// The cgroup v1 `tasks` files the process writes itself into first
    /// (see [`crate::cgroups::Entry`]); closed once written.
    pub cgroup_tasks: Vec<RawFd>,
    /// The root filesystem to build; `None` for a process joining a running
    /// container (exec), whose namespaces are all in `join`.
    pub plan: Option<RootfsPlan>,
    pub caps: capabilities::Plan,
    pub no_new_privs: bool,
    /// The compiled seccomp filter to install before the program runs.
    pub seccomp: Option<Vec<u8>>,
    /// A fifo (an O_PATH descriptor) the init opens for writing before it
    /// executes its program: it blocks there until `start` opens it for
    /// reading (runc's exec.fifo).
    pub start_fifo: Option<RawFd>,
    /// `process.rlimits`: (resource, soft, hard), set before privileges drop.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub stdio: [Option<RawFd>; 3],
    /// Open a terminal inside the container, with this size (rows, columns).
    pub terminal: Option<Option<(u16, u16)>>,
    /// Descriptors 3 .. 3+n pass to the program (made inheritable).
    pub preserve_fds: u32,
    /// The program as a descriptor the caller opened in its own mount
    /// namespace, executed through it instead of `program` (an OCI
    /// createContainer hook: its path resolves on the host, it runs in the
    /// container).
    pub program_fd: Option<RawFd>,
}

/// The PATH docker uses when the image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn setup_err(message: String) -> StartFailure {
    StartFailure {
        kind: StartFailureKind::Setup,
        message,
    }
}

fn sys(what: &str) -> impl FnOnce(Errno) -> StartFailure + '_ {
    move |e| setup_err(format!("{what}: {}", e.desc()))
}

/// Sets one resource limit; raising a hard limit needs CAP_SYS_RESOURCE,
/// which the error says.
fn set_rlimit(
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
) -> Result<(), StartFailure> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one struct rlimit, which lives on our stack.
    if unsafe { libc::setrlimit(resource, &lim) } == 0 {
        return Ok(());
    }
    let e = Errno::last();
    let name = crate::rlimits::name(resource);
    Err(setup_err(match e {
        Errno::EPERM => format!(
            "set {name} limit to {soft}:{hard}: raising a hard limit needs CAP_SYS_RESOURCE, which this host's root lacks"
        ),
        Errno::EINVAL => format!("set {name} limit to {soft}:{hard}: the soft limit exceeds the hard one"),
        e => format!("set {name} limit to {soft}:{hard}: {}", e.desc()),
    }))
}

/// Reports the container created, then blocks until `start` opens the
/// fifo (reopened for writing through the O_PATH descriptor).
fn wait_for_start(chan: &Channel, fifo: RawFd) -> Result<(), StartFailure> {
    chan.send_created().map_err(|e| setup_err(e.to_string()))?;
    let path = format!("/proc/self/fd/{fifo}");
    let fd = open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(crate::paths::owned)
    .map_err(sys("open the start fifo"))?;
    let _ = nix::unistd::write(&fd, b"0");
    Ok(())
}

/// Moves this (single-threaded) process into its cgroup: "0" written to a
/// `tasks` file is the writer itself. Each descriptor is closed after use,
/// before the process joins anything of the container's.
fn join_cgroup(tasks: &[RawFd]) -> Result<(), StartFailure> {
    for &fd in tasks {
        // SAFETY: `fd` is a descriptor the parent opened for this and that
        // nothing else in this process uses; the parent's copy is its own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::unistd::write(&fd, b"0").map_err(sys("join the container's cgroup"))?;
    }
    Ok(())
}

/// Runs in the cloned child; never returns.
pub(crate) fn run(cfg: &ChildConfig, chan: &Channel) -> ! {
    let failure = match setup_and_exec(cfg, chan) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    chan.send_failure(&failure);
    // SAFETY: _exit ends this process without running the parent's destructors
    // or atexit handlers, which belong to the parent's copy of the state.
    unsafe { libc::_exit(1) }
}

fn reset_signals() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL involves no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn loopback_up() -> Result<(), StartFailure> {
    // SAFETY: a plain socket call; the descriptor is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(sys("socket")(Errno::last()));
    }
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    let r = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &req)
        } else {
            -1
        }
    };
    let err = Errno::last();
    // SAFETY: closing the socket we opened above.
    unsafe { libc::close(sock) };
    if r != 0 {
        return Err(sys("bring up lo")(err));
    }
    Ok(())
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds the program the way docker's runtime does: a name with a slash is a
/// path, anything else is looked up in the container's PATH.
fn resolve_program(program: &str, path_var: Option<&str>) -> Result<PathBuf, StartFailure> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path_var = path_var.unwrap_or(DEFAULT_PATH);
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|p| is_executable_file(p))
        .ok_or_else(|| StartFailure {
            kind: StartFailureKind::NotFound,
            message: format!("exec: \"{program}\": not found in $PATH"),
        })
}

/// Opens a pty on the container's own devpts, hands its master to the parent,
/// and makes its slave our stdio, controlling terminal and /dev/console.
fn console(
    chan: &Channel,
    size: Option<(u16, u16)>,
    bind_console: bool,
) -> Result<(), StartFailure> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("open /dev/ptmx"))?;
    grantpt(&master).map_err(sys("grantpt"))?;
    unlockpt(&master).map_err(sys("unlockpt"))?;
    let slave_path = ptsname_r(&master).map_err(sys("ptsname"))?;
    let slave = open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open terminal"))?;
    let slave = crate::paths::owned(slave);
    if let Some((rows, cols)) = size {
        crate::container::set_winsize(&slave, rows, cols).map_err(|e| setup_err(e.to_string()))?;
    }
    if bind_console {
        mount(
            Some(slave_path.as_str()),
            "/dev/console",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("bind the terminal on /dev/console"))?;
    }
    chan.send_pty(&master)
        .map_err(sys("send the terminal to the runtime"))?;
    drop(master);
    for i in 0..3 {
        dup2(slave.as_raw_fd(), i).map_err(sys("set up terminal stdio"))?;
    }
    // SAFETY: TIOCSCTTY on our stdin, the terminal's slave side, with no pointer argument.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } == -1 {
        return Err(sys("make the terminal the controlling terminal")(
            Errno::last(),
        ));
    }
    Ok(())
}

fn setup_and_exec(cfg: &ChildConfig, chan: &Channel) -> Result<Infallible, StartFailure> {
    // Until it executes the container's program this process carries its
    // caller's memory (environment), descriptors and executable, while it
    // is already visible in the container's /proc: non-dumpable, none of
    // /proc/<pid>/{exe,fd,environ,mem} opens to the container's processes
    // (they lack CAP_SYS_PTRACE). execve makes the program dumpable again.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(sys("make the process non-dumpable")(Errno::last()));
    }
    reset_signals();
    join_cgroup(&cfg.cgroup_tasks)?;
    chan.send_joined().map_err(|e| setup_err(e.to_string()))?;
    let went_away = || setup_err("the runtime went away before the container started".into());
    if cfg.userns {
        // Nothing is allowed in the new user namespace before the id maps exist.
        if !chan.wait_go() {
            return Err(went_away());
        }
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(sys("become root in the user namespace"))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(sys("become root in the user namespace"))?;
    }
    for (fd, flag) in &cfg.join {
        setns(fd, *flag).map_err(sys("join namespace"))?;
    }
    if let Some(h) = &cfg.hostname {
        sethostname(h).map_err(sys("set hostname"))?;
    }
    if let Some(d) = &cfg.domainname {
        // SAFETY: setdomainname reads `len` bytes from a live string.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(sys("set domainname")(Errno::last()));
        }
    }
    if cfg.new_net {
        loopback_up()?;
    }
    umask(Mode::empty());
    let cgroup_mounts = match &cfg.plan {
        Some(plan) => rootfs::setup(plan).map_err(setup_err)?,
        None => None,
    };

    for (i, fd) in cfg.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            dup2(*fd, i as RawFd).map_err(sys("set up stdio"))?;
        }
    }
    setsid().map_err(sys("setsid"))?;
    if let Some(size) = cfg.terminal {
        console(chan, size, cfg.plan.is_some())?;
    }

    // Create a missing working directory, as docker does, while still root.
    if cfg.plan.is_some() && !cfg.cwd.exists() {
        std::fs::create_dir_all(&cfg.cwd).map_err(|e| {
            setup_err(format!(
                "create working directory {}: {e}",
                cfg.cwd.display()
            ))
        })?;
    }

    // From here on the process must be in its cgroup, with its limits.
    if !chan.wait_go() {
        return Err(went_away());
    }
    if cfg.new_cgroup_ns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare cgroup namespace"))?;
    }
    // Only now do the cgroup filesystems have the container's cgroup as root.
    if let Some(pending) = cgroup_mounts {
        pending.finish().map_err(setup_err)?;
    }
    for &(resource, soft, hard) in &cfg.rlimits {
        set_rlimit(resource, soft, hard)?;
    }
    if cfg.no_new_privs {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(sys("set no_new_privs")(Errno::last()));
        }
    }
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: it goes
    // in now, while the process has it (every later step's system calls are
    // ones a container's filter allows). With no_new_privs, just before the
    // program runs.
    if let (Some(prog), false) = (&cfg.seccomp, cfg.no_new_privs) {
        crate::seccomp::load(prog).map_err(sys("install the seccomp filter"))?;
    }
    cfg.caps.drop_bounding().map_err(setup_err)?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(sys("keep capabilities")(Errno::last()));
    }
    let groups: Vec<Gid> = cfg
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(sys("set supplementary groups"))?;
    let (uid, gid) = (Uid::from_raw(cfg.uid), Gid::from_raw(cfg.gid));
    setresgid(gid, gid, gid)
        .map_err(|e| setup_err(format!("set gid {}: {}", cfg.gid, e.desc())))?;
    setresuid(uid, uid, uid)
        .map_err(|e| setup_err(format!("set uid {}: {}", cfg.uid, e.desc())))?;
    cfg.caps.apply().map_err(setup_err)?;

    chdir(&cfg.cwd)
        .map_err(|e| setup_err(format!("chdir to {}: {}", cfg.cwd.display(), e.desc())))?;
    // The working directory must be inside the container: a descriptor leaked
    // from the host could otherwise place it outside the new root.
    match getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(setup_err(format!(
                "working directory {} is outside the container",
                cfg.cwd.display()
            )))
        }
    }
    umask(Mode::from_bits_truncate(cfg.umask as libc::mode_t));

    let program = match cfg.program_fd {
        Some(_) => PathBuf::new(),
        None => resolve_program(&cfg.program, cfg.path_var.as_deref())?,
    };
    // No descriptor other than stdio (and those the caller asked to
    // preserve) may reach the container's program.
    let first_closed = 3 + cfg.preserve_fds;
    for fd in 3..first_closed {
        // SAFETY: fcntl on a descriptor number with integer arguments only;
        // one that is not open fails with EBADF, which is ignored.
        unsafe { libc::fcntl(fd as RawFd, libc::F_SETFD, 0) };
    }
    // SAFETY: close_range only marks descriptors close-on-exec.
    if unsafe {
        libc::close_range(
            first_closed,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        )
    } != 0
    {
        return Err(sys("close inherited descriptors")(Errno::last()));
    }
    let cprog = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| setup_err("program path has a NUL byte".into()))?;
    if let Some(fifo) = cfg.start_fifo {
        wait_for_start(chan, fifo)?;
    }
    if let (Some(prog), true) = (&cfg.seccomp, cfg.no_new_privs) {
        crate::seccomp::load(prog).map_err(sys("install the seccomp filter"))?;
    }
    let executed = match cfg.program_fd {
        Some(fd) => {
            // Inheritable: a script's interpreter opens it as /dev/fd/N.
            // SAFETY: fcntl on our own descriptor with integer arguments only.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
            nix::unistd::execveat(
                Some(fd),
                c"",
                &cfg.args,
                &cfg.env,
                nix::fcntl::AtFlags::AT_EMPTY_PATH,
            )
        }
        None => execve(&cprog, &cfg.args, &cfg.env),
    };
    let err = match executed {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let shown = OsStr::new(&cfg.program).to_string_lossy();
    let kind = match err {
        Errno::ENOENT | Errno::ENOTDIR => StartFailureKind::NotFound,
        _ => StartFailureKind::NotExecutable,
    };
    let reason = match err {
        Errno::ENOENT => "no such file or directory",
        Errno::EACCES => "permission denied",
        other => other.desc(),
    };
    Err(StartFailure {
        kind,
        message: format!("exec: \"{shown}\": {reason}"),
    })
}
