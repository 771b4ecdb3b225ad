//! Commands on a container's process: stop, kill, pause, wait, rename, logs,
//! and the connection to its monitor.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use berth_runtime::cgroups::Cgroup;
use berth_runtime::pidfd;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::logs::{LogEntry, LogsOptions};
use crate::monitor::{proto, SocketDir};
use crate::{now, ContainerRecord, Engine, Status, EXIT_UNKNOWN};

/// How long commands wait for a monitor to record an exit and go away.
const MONITOR_GRACE: Duration = Duration::from_secs(30);

/// Parses a signal as docker does: `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || Error::InvalidArgument(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Whether process `pid` runs: it exists and is not a zombie (a container's
/// init whose monitor was killed is reparented and stays a zombie until
/// PID 1 reaps it; it runs no more).
pub(crate) fn alive(pid: i32) -> bool {
    pid > 0
        && nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
            .is_some_and(|(state, _)| matches!(state, 'Z' | 'X'))
}

/// Whether `pid` is a live container monitor: a process started as
/// [`crate::monitor::PROGRAM_NAME`], not another that took its pid (after a
/// reboot, records name pids of processes that are not theirs).
pub(crate) fn monitor_alive(pid: i32) -> bool {
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let arg0 = c.split(|b| *b == 0).next().unwrap_or_default();
            arg0.rsplit(|b| *b == b'/').next() == Some(crate::monitor::PROGRAM_NAME.as_bytes())
        })
}

/// The exit status of `pid` if it is a zombie nobody has reaped yet, as
/// docker reports it (the code, or 128 + the signal that ended it).
pub(crate) fn zombie_exit_code(pid: i32) -> Option<i32> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    match parse_stat(&stat)? {
        ('Z', Some(status)) => Some(pidfd::exit_code_of_status(status)),
        _ => None,
    }
}

/// How a container's init `pid` that is not this process's child ended, as
/// far as the host lets it be seen: its status while it is a zombie, or
/// what the kernel kept for `fd` (a pidfd of it opened before it ended)
/// once its parent reaped it. `None`: not seen (no pidfd and already
/// reaped, or a kernel before 6.15), so unknown; never a guess.
pub(crate) fn observed_exit(pid: i32, fd: Option<&OwnedFd>) -> Option<i32> {
    // Between its end and its reaping there is a moment it is neither a
    // zombie with a status nor reaped: look again for a little while.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(code) = zombie_exit_code(pid) {
            return Some(code);
        }
        if let Some(status) = fd.and_then(pidfd::exit_status) {
            return Some(pidfd::exit_code_of_status(status));
        }
        let gone = fd.is_none() || std::time::Instant::now() >= deadline;
        if gone {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The state letter and the exit status (field 52, in waitpid's form) of a
/// `/proc/<pid>/stat` line. The command name may hold spaces and
/// parentheses: the fields start after its last `)`.
fn parse_stat(stat: &str) -> Option<(char, Option<i32>)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 3.. are here from index 0; exit_code is field 52.
    let exit = fields.nth(52 - 4).and_then(|f| f.parse().ok());
    Some((state, exit))
}

impl Engine {
    /// `container prune`: removes every container that is not running (and
    /// that `filter` picks by creation time and labels). Returns their IDs
    /// and the bytes their writable layers held.
    pub fn prune_containers(
        &self,
        filter: &crate::filters::PruneFilter,
    ) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        for c in self.containers.list()? {
            if !c.state.status.can_remove() || !filter.matches(&c.created, &c.options.labels) {
                continue;
            }
            let size = self.container_size(&c.id);
            self.remove(&c.id, false, false)?;
            freed += size;
            removed.push(c.id);
        }
        Ok((removed, freed))
    }
}

#[cfg(test)]
mod stat_tests {
    #[test]
    fn state_and_exit_status_of_a_stat_line() {
        let mut line = String::from("42 (a) b)) Z 1 42 42 0 -1 4194316");
        for i in 10..=51 {
            line.push_str(&format!(" {i}"));
        }
        line.push_str(" 1280\n");
        assert_eq!(super::parse_stat(&line), Some(('Z', Some(1280))));
        assert_eq!(super::parse_stat("7 (sh) S 1 7"), Some(('S', None)));
        assert_eq!(super::parse_stat("garbage"), None);
    }
}

impl Engine {
    pub(crate) fn cgroup(&self, id: &str) -> Result<Cgroup> {
        Ok(Cgroup::new(
            &self.config.cgroup_root,
            &self.cgroup_path(id),
        )?)
    }

    /// Whether the container's init still runs: alive, and the container's
    /// (not another process that took its pid after a reboot).
    pub(crate) fn init_runs(&self, rec: &ContainerRecord) -> bool {
        alive(rec.state.pid) && self.container_pidfd(rec).is_some()
    }

    /// A pidfd for the container's init, if that process still runs and is
    /// the container's (its pid is in the container's cgroup).
    pub(crate) fn container_pidfd(&self, rec: &ContainerRecord) -> Option<OwnedFd> {
        if rec.state.pid <= 0 {
            return None;
        }
        let fd = pidfd::open(Pid::from_raw(rec.state.pid)).ok().flatten()?;
        let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", rec.state.pid)).ok()?;
        cg.contains(&rec.id).then_some(fd)
    }

    /// Kills every process of the container and waits for its monitor to
    /// record the exit. Restart policies do not bring it back.
    pub(crate) fn kill_all(&self, id: &str) -> Result<()> {
        let (rec, ()) = self.update(id, |r| {
            r.state.manually_stopped = true;
            Ok(())
        })?;
        self.adopt_orphan(&rec.id);
        let cg = self.cgroup(&rec.id)?;
        let init = self.container_pidfd(&rec);
        if let Some(fd) = &init {
            let _ = pidfd::signal(fd, Signal::SIGKILL);
        }
        let _ = cg.freeze(false);
        let _ = cg.kill_all();
        // A monitor that was restarting it may have started it again just
        // before the stop was recorded: kill what runs until it gives up.
        let monitor = pidfd::open(Pid::from_raw(rec.state.monitor_pid))
            .ok()
            .flatten()
            .filter(|_| monitor_alive(rec.state.monitor_pid));
        if let Some(m) = &monitor {
            let deadline = std::time::Instant::now() + MONITOR_GRACE;
            while !pidfd::wait_exit(m, Some(Duration::from_millis(200))).unwrap_or(true)
                && std::time::Instant::now() < deadline
            {
                match self.containers.find(&rec.id) {
                    Ok(r) if r.state.status.is_active() => {
                        if let Some(fd) = self.container_pidfd(&r) {
                            let _ = pidfd::signal(&fd, Signal::SIGKILL);
                        }
                        let _ = cg.kill_all();
                    }
                    _ => break,
                }
            }
        }
        // The cgroup can go once the monitor has reaped the init: an
        // unreaped process still counts as the cgroup's (so removing it
        // first fails while a busy host delays the monitor).
        self.wait_monitor(&rec.id, init.as_ref())?;
        cg.remove()?;
        Ok(())
    }

    /// Waits for the container's monitor to finish; if it is gone without
    /// recording the exit (killed, and no other took over), records it: the
    /// code as seen through `init` (a pidfd of the init opened before it
    /// ended), else unknown.
    fn wait_monitor(&self, id: &str, init: Option<&OwnedFd>) -> Result<()> {
        let rec = match self.containers.find(id) {
            Ok(r) => r,
            Err(Error::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if monitor_alive(rec.state.monitor_pid) {
            if let Ok(Some(fd)) = pidfd::open(Pid::from_raw(rec.state.monitor_pid)) {
                let _ = pidfd::wait_exit(&fd, Some(MONITOR_GRACE));
            }
        }
        let settled = self.update(id, |r| {
            if r.state.status.is_active()
                && !monitor_alive(r.state.monitor_pid)
                && !self.init_runs(r)
            {
                // One that waited to restart keeps the code of its last run.
                if r.state.status != Status::Restarting {
                    r.state.exit_code = observed_exit(r.state.pid, init).unwrap_or(EXIT_UNKNOWN);
                    if r.state.exit_code == EXIT_UNKNOWN {
                        r.state.error = crate::containers::EXIT_UNKNOWN_WHY.into();
                    }
                }
                r.state.status = Status::Exited;
                r.state.pid = 0;
                r.state.monitor_pid = 0;
                r.state.finished_at = Some(now());
                return Ok(Some((
                    std::mem::take(&mut r.state.endpoints),
                    std::mem::take(&mut r.state.ports),
                )));
            }
            Ok(None)
        });
        match settled {
            Ok((_, Some((eps, ports)))) => {
                self.release(&eps, &ports);
                self.clean_after_monitor(id);
                Ok(())
            }
            Ok(_) | Err(Error::ContainerNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn stop_signal(&self, rec: &ContainerRecord) -> Result<Signal> {
        let from_image = || {
            self.images
                .resolve(&rec.image_id)
                .ok()
                .and_then(|i| i.config.config().clone())
                .and_then(|c| c.stop_signal().clone())
        };
        match rec.options.stop_signal.clone().or_else(from_image) {
            Some(s) => parse_signal(&s),
            None => Ok(Signal::SIGTERM),
        }
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds (default: its --stop-timeout, else 10; negative: no limit).
    /// Stopping a container that is not running is not an error.
    pub fn stop(
        &self,
        key: &str,
        signal: Option<Signal>,
        timeout: Option<i64>,
    ) -> Result<ContainerRecord> {
        let (rec, ()) = self.update(key, |r| {
            if r.state.status.is_active() {
                r.state.manually_stopped = true;
            }
            Ok(())
        })?;
        if !rec.state.status.is_active() {
            return Ok(rec);
        }
        let sig = match signal {
            Some(s) => s,
            None => self.stop_signal(&rec)?,
        };
        let timeout = timeout.or(rec.options.stop_timeout).unwrap_or(10);
        // One whose monitor was killed gets a new one, which records how it ends.
        self.adopt_orphan(&rec.id);
        // A restarting container has no process until its monitor notices the stop.
        let mut rec = rec;
        while rec.state.status.is_active()
            && rec.state.pid <= 0
            && monitor_alive(rec.state.monitor_pid)
        {
            std::thread::sleep(Duration::from_millis(20));
            rec = self.containers.find(&rec.id)?;
        }
        let init = self.container_pidfd(&rec);
        if let Some(fd) = &init {
            pidfd::signal(fd, sig).map_err(|e| Error::io("signal", &rec.id)(e.into()))?;
            if rec.state.status == Status::Paused {
                let _ = self.cgroup(&rec.id)?.freeze(false);
            }
            let limit = (timeout >= 0).then(|| Duration::from_secs(timeout as u64));
            let exited = pidfd::wait_exit(fd, limit).unwrap_or(false);
            if !exited {
                // Every process of the container, not only its init.
                let _ = pidfd::signal(fd, Signal::SIGKILL);
                if let Ok(cg) = self.cgroup(&rec.id) {
                    let _ = cg.freeze(false);
                    let _ = cg.kill_all();
                }
                let _ = pidfd::wait_exit(fd, Some(MONITOR_GRACE));
            }
        }
        self.wait_monitor(&rec.id, init.as_ref())?;
        let rec = self.containers.find(&rec.id)?;
        self.emit_container(&rec, "stop", &[]);
        Ok(rec)
    }

    /// Sends a signal to the container's init.
    pub fn kill(&self, key: &str, sig: Signal) -> Result<ContainerRecord> {
        let rec = self.containers.find(key)?;
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict(format!(
                    "cannot kill container: {}: Container {} is paused. Unpause the container before stopping or killing",
                    rec.name, rec.id
                )))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "cannot kill container: {}: Container {} is not running",
                    rec.name, rec.id
                )))
            }
        }
        let fd = self
            .container_pidfd(&rec)
            .ok_or_else(|| Error::Conflict(format!("Container {} is not running", rec.id)))?;
        pidfd::signal(&fd, sig).map_err(|e| Error::io("signal", &rec.id)(e.into()))?;
        self.emit_container(&rec, "kill", &[("signal", (sig as i32).to_string())]);
        Ok(rec)
    }

    /// Freezes (`true`) or thaws every process of the container.
    pub fn pause(&self, key: &str, paused: bool) -> Result<ContainerRecord> {
        let (rec, ()) = self.update(key, |r| {
            match (r.state.status, paused) {
                (Status::Running, true) | (Status::Paused, false) => {}
                (Status::Paused, true) => {
                    return Err(Error::Conflict(format!(
                        "Container {} is already paused",
                        r.id
                    )))
                }
                (Status::Running, false) => {
                    return Err(Error::Conflict(format!("Container {} is not paused", r.id)))
                }
                _ => {
                    return Err(Error::Conflict(format!(
                        "Container {} is not running",
                        r.id
                    )))
                }
            }
            self.cgroup(&r.id)?.freeze(paused)?;
            r.state.status = if paused {
                Status::Paused
            } else {
                Status::Running
            };
            Ok(())
        })?;
        Ok(rec)
    }

    /// Connects to the container's monitor; `None` when it has none.
    pub fn connect_monitor(&self, id: &str) -> Result<Option<UnixStream>> {
        let dir = SocketDir::open(self)?;
        match UnixStream::connect(dir.path(id)) {
            Ok(s) => Ok(Some(s)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io("connect to the monitor of", id)(e)),
        }
    }

    /// Sends a request to the container's monitor.
    pub fn monitor_request(&self, id: &str, req: &proto::Request) -> Result<Option<UnixStream>> {
        let Some(mut sock) = self.connect_monitor(id)? else {
            return Ok(None);
        };
        proto::write_frame(&mut sock, proto::REQUEST, &proto::encode_request(req))
            .map_err(Error::io("talk to the monitor of", id))?;
        Ok(Some(sock))
    }

    /// Waits for the container to stop; returns its exit code.
    pub fn wait(&self, key: &str) -> Result<i32> {
        loop {
            if let Some(code) = self.wait_while(key, &|| true)? {
                return Ok(code);
            }
        }
    }

    /// [`Engine::wait`] for a waiter that may go away (a client of the
    /// API): `keep_waiting` is asked every quarter second, and once it says
    /// no the wait ends with `None`, leaving nothing open.
    pub fn wait_while(&self, key: &str, keep_waiting: &dyn Fn() -> bool) -> Result<Option<i32>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let rec = self.containers.find(key)?;
        if !rec.state.status.is_active() {
            return Ok(Some(rec.state.exit_code));
        }
        self.adopt_orphan(&rec.id);
        if let Some(mut sock) = self.monitor_request(&rec.id, &proto::Request::Wait)? {
            loop {
                let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(250u16)) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => {
                        if !keep_waiting() {
                            return Ok(None);
                        }
                        continue;
                    }
                    Ok(_) | Err(_) => {}
                }
                // The monitor writes each frame whole: a readable socket
                // holds one.
                match proto::read_frame(&mut sock) {
                    Ok(Some((kind, payload))) if kind == proto::EXIT => {
                        if let Some(code) = proto::exit_code(&payload) {
                            return Ok(Some(code));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
        // No monitor to ask: watch the record.
        loop {
            match self.containers.find(&rec.id) {
                Ok(r) if r.state.status.is_active() && monitor_alive(r.state.monitor_pid) => {
                    if !keep_waiting() {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(r) => return Ok(Some(r.state.exit_code)),
                Err(Error::ContainerNotFound(_)) => return Ok(Some(rec.state.exit_code)),
                Err(e) => return Err(e),
            }
        }
    }

    pub fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !crate::names::valid(new_name) {
            return Err(Error::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let _lock = self.lock_containers()?;
        let mut rec = self.containers.find(key)?;
        if rec.name == new_name {
            return Err(Error::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if let Some(other) = self
            .containers
            .list()?
            .into_iter()
            .find(|r| r.name == new_name)
        {
            return Err(Error::NameInUse {
                name: new_name.to_string(),
                id: other.id,
            });
        }
        rec.name = new_name.to_string();
        self.containers.save(&rec)
    }

    /// Streams a container's log entries to `sink`.
    pub fn logs(
        &self,
        key: &str,
        opts: &LogsOptions,
        sink: impl FnMut(&LogEntry) -> std::io::Result<()>,
    ) -> Result<()> {
        let rec = self.containers.find(key)?;
        self.adopt_orphan(&rec.id);
        // Followed while a monitor writes the log.
        let running = || {
            self.containers
                .load(&rec.id)
                .map(|r| r.state.status.is_active() && monitor_alive(r.state.monitor_pid))
                .unwrap_or(false)
        };
        let path = self
            .containers
            .log_path(&rec.id, rec.options.log.driver)
            .ok_or_else(|| {
                Error::InvalidArgument("configured logging driver does not support reading".into())
            })?;
        let unmonitored = || {
            self.containers.load(&rec.id).is_ok_and(|r| {
                r.state.status.is_active() && r.state.pid > 0 && !monitor_alive(r.state.monitor_pid)
            })
        };
        if unmonitored() {
            tracing::warn!(
                "container {}: its monitor is gone (killed) and none took over: what it writes from now on is not logged (restart it)",
                rec.name
            );
        }
        let done = crate::logs::read(&path, rec.options.log.max_file, opts, running, sink);
        if opts.follow && unmonitored() {
            tracing::warn!(
                "container {}: its monitor is gone (killed): the log ends here while the container runs on (restart it)",
                rec.name
            );
        }
        done
    }

    pub fn log_path(&self, id: &str) -> Option<std::path::PathBuf> {
        let driver = self.containers.load(id).ok()?.options.log.driver;
        self.containers.log_path(id, driver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sighup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}

/// A running container's resource use.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ContainerStats {
    pub cgroup: berth_runtime::cgroups::Stats,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
}

/// Sums the bytes received and sent on every interface but loopback, from
/// a /proc/<pid>/net/dev table.
fn net_bytes(table: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in table.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

impl Engine {
    /// The processes of a running container, as the host sees them.
    pub fn top_pids(&self, key: &str) -> Result<Vec<i32>> {
        let rec = self.containers.find(key)?;
        if !matches!(rec.state.status, Status::Running | Status::Paused) {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                rec.name
            )));
        }
        Ok(self
            .cgroup(&rec.id)?
            .pids()?
            .into_iter()
            .map(|p| p.as_raw())
            .collect())
    }

    /// Accounting of a running container: its cgroup's and its network's.
    pub fn stats(&self, key: &str) -> Result<(ContainerRecord, ContainerStats)> {
        let rec = self.containers.find(key)?;
        let mut st = ContainerStats::default();
        if rec.state.status.is_active() {
            st.cgroup = self.cgroup(&rec.id)?.stats();
            if rec.state.pid > 0 {
                let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid))
                    .unwrap_or_default();
                (st.net_rx_bytes, st.net_tx_bytes) = net_bytes(&dev);
            }
        }
        Ok((rec, st))
    }
}

#[cfg(test)]
mod stats_tests {
    #[test]
    fn net_dev_sums_all_but_loopback() {
        let t = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    2000      10    0    0    0     0          0         0      300       3    0    0    0     0       0          0\n";
        assert_eq!(super::net_bytes(t), (2000, 300));
    }
}
