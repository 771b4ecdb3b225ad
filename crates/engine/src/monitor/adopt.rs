//! A new monitor for a running container whose monitor was killed.
//!
//! The container's init is no child of this process (it was reparented to
//! the nearest subreaper or to PID 1 when its monitor died), so it cannot be
//! waited for. The adopting monitor instead
//! - holds a pidfd of the init, which becomes readable when it ends, and
//!   through which the kernel keeps its exit status once its new parent
//!   reaps it (Linux 6.15+); a zombie's status is read from /proc meanwhile;
//! - reads the container's output again: `/proc/<init>/fd/1` and `/2`, when
//!   they are pipes, open new read ends of the same pipes (what the
//!   container wrote while no monitor read it ended it with SIGPIPE, as its
//!   exit code then says);
//! - serves `attach` and `wait` on the container's socket (an `exec` needs
//!   the original monitor, which owned the container's processes: it is
//!   refused with a reason);
//! - when the init ends: kills what is left in the container's cgroup,
//!   removes it, records the exit (or that its code is unknown) and
//!   releases the network, then follows the restart policy as a monitor
//!   does.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{become_monitor, Client, Io, Monitor, Report, SocketDir};
use crate::error::{Error, Result};
use crate::lifecycle::{monitor_alive, observed_exit};
use crate::logs::{LogWriter, Stream};
use crate::{Engine, EXIT_UNKNOWN};

impl Engine {
    /// Gives container `id` a new monitor if it runs without one (its
    /// monitor was killed). Quietly does nothing when it needs none, or
    /// when another command adopted it first.
    pub(crate) fn adopt_orphan(&self, id: &str) {
        let Ok(rec) = self.containers.find(id) else {
            return;
        };
        if rec.damaged.is_some()
            || !rec.state.status.is_active()
            || monitor_alive(rec.state.monitor_pid)
            || !self.init_runs(&rec)
            || self.container_pidfd(&rec).is_none()
        {
            return;
        }
        match self.launch_monitor(&rec.id, None, None, "adopt") {
            Ok(_) => tracing::debug!("container {}: a new monitor took it over", rec.id),
            Err(e) => tracing::debug!("container {}: no new monitor: {e}", rec.id),
        }
    }

    /// The adopting monitor's life (see the module's description); returns
    /// its exit code.
    pub(super) fn adopt(&self, id: &str, report: OwnedFd) -> i32 {
        become_monitor(id);
        let mut report = File::from(report);
        let taken = self.take_over(id);
        let (pid, pidfd, listener, dir) = match taken {
            Ok(x) => x,
            Err(e) => {
                let r = Report::Failed {
                    message: e.to_string(),
                    code: 125,
                };
                let _ = report.write_all(&serde_json::to_vec(&r).unwrap_or_default());
                return 1;
            }
        };
        let _ = report.write_all(&serde_json::to_vec(&Report::Started { pid }).unwrap_or_default());
        drop(report);
        let rec = match self.containers.load(id) {
            Ok(r) => r,
            Err(_) => return 1,
        };
        let mut io = Io::empty(rec.options.tty);
        io.out = reopen_output(pid, 1);
        io.err = reopen_output(pid, 2);
        let path = self
            .containers
            .log_path(id, rec.options.log.driver)
            .unwrap_or_default();
        let mut log = match LogWriter::open(&path, rec.options.log.clone()) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("open log: {e}");
                None
            }
        };
        let mut m = Monitor::new(listener, true);
        m.serve_adopted(&pidfd, &mut io, log.as_mut());
        // The init has ended; with it, its PID namespace. What is left in
        // the cgroup (a container sharing the host's PID namespace) goes.
        let cg = self.cgroup(id);
        let oom = cg.as_ref().is_ok_and(|c| c.oom_kills() > 0);
        if let Ok(cg) = &cg {
            let _ = cg.freeze(false);
            let _ = cg.kill_all();
            let deadline = Instant::now() + Duration::from_secs(10);
            while cg.pids().is_ok_and(|p| !p.is_empty()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Err(e) = cg.remove() {
                tracing::warn!("remove cgroup: {e}");
            }
        }
        if let Some(log) = log.as_mut() {
            m.drain(&mut io, log);
            let _ = log.flush_partial();
        }
        drop(io);
        let code = observed_exit(pid, Some(&pidfd));
        let rec = self.record_exit(id, code.unwrap_or(EXIT_UNKNOWN), oom);
        let again = match &rec {
            Ok(Some(r)) => r.options.restart.should_restart(
                r.state.exit_code,
                r.state.restart_count,
                r.state.manually_stopped,
            ),
            _ => false,
        };
        let code = code.unwrap_or(EXIT_UNKNOWN);
        if again {
            m.end_streams(code);
            drop(m);
            if self.mark_restarting(id).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
                return self.monitor(id, None, None, None, true);
            }
            return 0;
        }
        let mut removed = None;
        if let Ok(Some(r)) = &rec {
            if r.options.auto_remove {
                match self.remove_stopped(id, true) {
                    Ok(r) => removed = Some(r),
                    Err(e) => tracing::warn!("remove container {id}: {e}"),
                }
            }
        }
        let _ = std::fs::remove_file(dir.path(id));
        m.finish_clients(Some(code));
        if let Some(r) = removed {
            r.delete();
        }
        0
    }

    /// Under the records lock: records this process as the container's
    /// monitor if it still runs without one; its init's pid and pidfd, and
    /// the container's socket, listening (its address lives as long as the
    /// directory's descriptor).
    fn take_over(&self, id: &str) -> Result<(i32, OwnedFd, UnixListener, SocketDir)> {
        let me = std::process::id() as i32;
        let dir = SocketDir::open(self)?;
        let path = dir.path(id);
        let (rec, taken) = self.update(id, |r| {
            if !r.state.status.is_active() || !self.init_runs(r) {
                return Err(Error::Conflict(format!(
                    "container {} is not running",
                    r.id
                )));
            }
            if monitor_alive(r.state.monitor_pid) {
                return Err(Error::Conflict(format!("container {} has a monitor", r.id)));
            }
            let fd = self
                .container_pidfd(r)
                .ok_or_else(|| Error::Conflict(format!("container {} is not running", r.id)))?;
            // Bound under the lock: a client that finds this monitor
            // recorded finds its socket too.
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).map_err(Error::io("listen on", &path))?;
            listener
                .set_nonblocking(true)
                .map_err(Error::io("listen on", &path))?;
            r.state.monitor_pid = me;
            Ok((fd, listener))
        })?;
        let (fd, listener) = taken;
        Ok((rec.state.pid, fd, listener, dir))
    }
}

/// A new read end of the pipe that is descriptor `fd` of process `pid`,
/// non-blocking; `None` if it is not a pipe (a terminal, /dev/null) or is
/// gone.
fn reopen_output(pid: i32, fd: i32) -> Option<OwnedFd> {
    let link = format!("/proc/{pid}/fd/{fd}");
    let target = std::fs::read_link(&link).ok()?;
    if !target.to_string_lossy().starts_with("pipe:") {
        return None;
    }
    let raw = nix::fcntl::open(
        link.as_str(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: open returned a fresh descriptor that nothing else owns.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

impl Monitor {
    /// Runs until the adopted init ends: its output to the log and the
    /// attached clients, and `attach`, `wait` and (refused) `exec` requests.
    fn serve_adopted(&mut self, pidfd: &OwnedFd, io: &mut Io, mut log: Option<&mut LogWriter>) {
        loop {
            for (client, _exec_id, _detach) in std::mem::take(&mut self.pending_execs) {
                let reply = crate::exec::ExecReply::Failed {
                    message: "the container's monitor was killed and another took it over: \
                              exec needs a monitor that started the container (restart it)"
                        .into(),
                    code: 126,
                };
                let payload = serde_json::to_vec(&reply).unwrap_or_default();
                self.send_to(Some(client), super::proto::EXEC_REPLY, &payload);
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == client) {
                    c.flush();
                    c.gone = true;
                }
            }
            self.clients.retain(|c| !c.gone);
            let backlog = self
                .clients
                .iter()
                .any(|c| c.outbuf.len() > super::CLIENT_BACKLOG);
            let mut fds = vec![
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            let mut slots = [usize::MAX; 2];
            if !backlog {
                for (i, fd) in [&io.out, &io.err].into_iter().enumerate() {
                    if let Some(f) = fd {
                        slots[i] = fds.len();
                        fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    }
                }
            }
            let first_client = fds.len();
            for cl in &self.clients {
                let mut f = PollFlags::POLLIN;
                if !cl.outbuf.is_empty() {
                    f |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(cl.sock.as_fd(), f));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            if !revents[1].is_empty() {
                return;
            }
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if slots[i] != usize::MAX && !revents[slots[i]].is_empty() {
                    match log.as_deref_mut() {
                        Some(l) => self.pump(io, l, stream),
                        // Nowhere to write: the pipe is read all the same,
                        // so the container never blocks on it.
                        None => {
                            let fd = if i == 0 { &mut io.out } else { &mut io.err };
                            if let Some(f) = fd {
                                if super::read_some(f.as_fd(), &mut self.buf).is_none() {
                                    *fd = None;
                                }
                            }
                        }
                    }
                }
            }
            for (i, r) in revents[first_client..].iter().enumerate() {
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.read_client(i, io);
                }
                if r.contains(PollFlags::POLLOUT) {
                    self.clients[i].flush();
                }
            }
            if !revents[0].is_empty() {
                while let Ok((sock, _)) = self.listener.accept() {
                    let id = self.client_id();
                    self.clients.push(Client::new(id, sock, None));
                }
            }
        }
    }
}
