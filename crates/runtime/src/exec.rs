//! Running another process in a running container (`exec`): it joins every
//! namespace of the container's init and its cgroup, then takes the process
//! spec's user, capabilities and environment, as the init did.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::cgroups::Cgroup;
use crate::child;
use crate::clone::Forked;
use crate::container::{
    clone_in, kill_and_reap, process_config, send_signal, status, wait_pid, ExitStatus, Stdio,
};
use crate::error::{Error, Result};
use crate::paths::owned;
use crate::sync;

pub struct ExecOptions {
    /// The container's init, as the host sees it.
    pub pid: Pid,
    pub process: Process,
    pub stdio: Stdio,
    /// Where the cgroup hierarchies are mounted, and the container's cgroup.
    pub cgroup_root: PathBuf,
    pub cgroup_path: PathBuf,
    /// The container's compiled seccomp filter, which the process gets too.
    pub seccomp_program: Option<Vec<u8>>,
    /// Descriptors 3 .. 3+n of the caller that the process inherits.
    pub preserve_fds: u32,
    /// The program, opened by the caller (in its mount namespace), to run
    /// instead of resolving `process.args[0]` in the container's.
    pub program: Option<OwnedFd>,
}

/// A process started in a running container; our child.
pub struct ExecProcess {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    pty_master: Option<OwnedFd>,
}

/// The namespaces joined, in order: the user namespace first (it owns the
/// others), the mount namespace last (it changes our root).
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn ns_file(pid: Pid, name: &str) -> Result<OwnedFd> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
    open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map(owned)
        .map_err(|e| Error::Io {
            op: "open namespace",
            path,
            source: e.into(),
        })
}

/// Whether `pid`'s namespace `name` differs from ours (joining our own user
/// namespace is refused by the kernel).
fn differs(pid: Pid, name: &str) -> bool {
    let a = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok();
    let b = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
    a != b
}

/// Starts `opts.process` inside the container whose init is `opts.pid`.
///
/// Refused in a multi-threaded process: for the pid namespace, the caller's
/// own children-namespace is switched for the clone and back.
pub fn exec(opts: ExecOptions) -> Result<ExecProcess> {
    crate::container::ensure_single_threaded("start a process in a container")?;
    let pid = opts.pid;
    let mut join = Vec::new();
    for (name, flag) in NAMESPACES {
        if differs(pid, name) {
            join.push((ns_file(pid, name)?, flag));
        }
    }
    let target_pidns = ns_file(pid, "pid")?;
    let own_pidns = ns_file(Pid::this(), "pid")?;
    let mut config = process_config(&opts.process, &opts.stdio, join, None)?;
    config.seccomp = opts.seccomp_program;
    config.preserve_fds = opts.preserve_fds;
    config.program_fd = opts.program.as_ref().map(|f| f.as_raw_fd());
    let cgroup = Cgroup::new(&opts.cgroup_root, &opts.cgroup_path)?;
    let entry = cgroup.entry()?;
    config.cgroup_tasks = entry.tasks();

    let (parent_chan, child_chan) = sync::pair()?;
    setns(&target_pidns, CloneFlags::CLONE_NEWPID).map_err(Error::sys("join pid namespace"))?;
    let (forked, parent_moves) = clone_in(0, &entry);
    if let Ok(Forked::Child) = forked {
        drop(parent_chan);
        child::run(&config, &child_chan)
    }
    drop(entry);
    // Our own future children belong to our namespace again.
    let restored = setns(&own_pidns, CloneFlags::CLONE_NEWPID);
    drop(child_chan);
    drop(config);
    let Forked::Parent { pid, pidfd } = forked.map_err(Error::sys("clone exec process"))? else {
        unreachable!("the child never returns here")
    };
    let started = (|| {
        restored.map_err(Error::sys("restore pid namespace"))?;
        parent_chan.wait_joined()?;
        if parent_moves {
            cgroup.add(pid)?;
        }
        parent_chan.send_go()?;
        parent_chan.wait_started()
    })();
    match started {
        Ok(pty_master) => Ok(ExecProcess {
            pid,
            pidfd,
            pty_master,
        }),
        Err(e) => {
            let _ = kill_and_reap(pid, pidfd.as_ref());
            Err(match parent_chan.wait_started() {
                Err(child_err @ Error::Start(_)) => child_err,
                _ => e,
            })
        }
    }
}

impl ExecProcess {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn pidfd(&self) -> Option<&OwnedFd> {
        self.pidfd.as_ref()
    }

    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    pub fn signal(&self, sig: Signal) -> Result<()> {
        send_signal(self.pid, self.pidfd.as_ref(), sig)
    }

    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(ws) => Ok(status(ws)),
            Err(nix::errno::Errno::EINTR) => Ok(None),
            Err(e) => Err(Error::sys("wait for exec process")(e)),
        }
    }

    pub fn wait(&self) -> Result<ExitStatus> {
        wait_pid(self.pid)
    }
}
