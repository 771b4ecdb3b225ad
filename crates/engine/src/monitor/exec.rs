//! The container's exec processes, as its monitor runs them: started from the
//! monitor's own clean state, with pipes or a terminal of the monitor's,
//! streamed to the client that asked, and recorded (pid, exit code) in the
//! exec's record when they start and end.

use std::os::fd::AsFd;

use berth_runtime::{ExecOptions, ExecProcess};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::Signal;

use super::{proto, read_some, set_nonblocking, Io, Monitor};
use crate::error::{Error, Result};
use crate::exec::{ExecRecord, ExecReply};
use crate::{Engine, Running};

pub(super) struct Exec {
    record: ExecRecord,
    /// The client streaming it; `None` once detached or gone.
    pub(super) client: Option<u64>,
    process: ExecProcess,
    io: Io,
}

/// Where one exec's descriptors sit in a poll: pidfd, out, err, stdin
/// (counted from the first of them).
pub(super) type Slots = [Option<usize>; 4];

impl Exec {
    pub(super) fn has_pidfd(&self) -> bool {
        self.process.pidfd().is_some()
    }

    /// Adds what to wait for: its end, its output (unless a client is
    /// behind), and room in its input when input is waiting.
    pub(super) fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>, backlog: bool) -> Slots {
        let base = fds.len();
        let mut slots = [None; 4];
        let mut push = |i: usize, fd: PollFd<'a>| {
            slots[i] = Some(fds.len() - base);
            fds.push(fd);
        };
        if let Some(p) = self.process.pidfd() {
            push(0, PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if !backlog {
            if let Some(o) = &self.io.out {
                push(1, PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            if let Some(e) = &self.io.err {
                push(2, PollFd::new(e.as_fd(), PollFlags::POLLIN));
            }
        }
        if let (Some(i), false) = (&self.io.stdin, self.io.stdin_buf.is_empty()) {
            push(3, PollFd::new(i.as_fd(), PollFlags::POLLOUT));
        }
        slots
    }

    /// A frame from its client: input, end of input, terminal size, signal.
    pub(super) fn input(&mut self, kind: u8, payload: &[u8]) {
        match kind {
            proto::STDIN if self.record.open_stdin => {
                self.io.stdin_buf.extend_from_slice(payload);
                self.io.write_stdin();
            }
            proto::STDIN_EOF if !self.io.tty => {
                self.io.stdin_eof = true;
                self.io.write_stdin();
            }
            proto::RESIZE => {
                if let (true, Some(m), [a, b, c, d]) = (self.io.tty, &self.io.out, payload) {
                    let rows = u16::from_be_bytes([*a, *b]);
                    let cols = u16::from_be_bytes([*c, *d]);
                    let _ = berth_runtime::set_winsize(m.as_fd(), rows, cols);
                }
            }
            proto::SIGNAL => {
                let sig = proto::exit_code(payload).and_then(|n| Signal::try_from(n).ok());
                if let Some(sig) = sig {
                    let _ = self.process.signal(sig);
                }
            }
            _ => {}
        }
    }
}

impl Monitor {
    pub(super) fn client_id(&mut self) -> u64 {
        self.next_client += 1;
        self.next_client
    }

    /// Sends a frame to one client, if it is still there.
    pub(super) fn send_to(&mut self, client: Option<u64>, kind: u8, payload: &[u8]) {
        let Some(id) = client else { return };
        if let Some(cl) = self.clients.iter_mut().find(|c| c.id == id && !c.gone) {
            cl.outbuf
                .extend_from_slice(&proto::header(kind, payload.len()));
            cl.outbuf.extend_from_slice(payload);
            cl.flush();
        }
    }

    /// Starts the execs clients asked for since the last round.
    pub(super) fn start_pending_execs(&mut self, engine: &Engine, running: &Running) {
        for (client, exec_id, detach) in std::mem::take(&mut self.pending_execs) {
            let reply = match spawn(engine, running, &exec_id) {
                Ok(exec) => {
                    let reply = ExecReply::Started {
                        pid: exec.process.pid().as_raw(),
                    };
                    self.execs.push(Exec {
                        client: (!detach).then_some(client),
                        ..exec
                    });
                    reply
                }
                Err(e) => {
                    let code = if e.start_failure().is_some() {
                        crate::exit_code_for(&e).max(126)
                    } else {
                        126
                    };
                    if let Ok(mut rec) = engine.load_exec(&running.id, &exec_id) {
                        if !rec.running && rec.exit_code.is_none() {
                            rec.exit_code = Some(code);
                            let _ = engine.save_exec(&rec);
                        }
                    }
                    ExecReply::Failed {
                        message: e.to_string(),
                        code,
                    }
                }
            };
            let payload = serde_json::to_vec(&reply).unwrap_or_default();
            self.send_to(Some(client), proto::EXEC_REPLY, &payload);
        }
    }

    /// Handles what the last poll found on the execs' descriptors.
    pub(super) fn exec_events(&mut self, revents: &[PollFlags], all_slots: &[Slots]) {
        let mut base = 0;
        for (i, slots) in all_slots.iter().enumerate().take(self.execs.len()) {
            let slots = *slots;
            let count = slots.iter().flatten().count();
            let ready = |slot: Option<usize>| {
                slot.is_some_and(|s| revents.get(base + s).is_some_and(|r| !r.is_empty()))
            };
            for (slot, stdout) in [(slots[1], true), (slots[2], false)] {
                if ready(slot) {
                    self.exec_output(i, stdout);
                }
            }
            if ready(slots[3]) {
                self.execs[i].io.write_stdin();
            }
            base += count;
        }
    }

    /// Reads one output stream of exec `i` and sends it to its client.
    fn exec_output(&mut self, i: usize, stdout: bool) {
        let e = &mut self.execs[i];
        let fd = if stdout { &mut e.io.out } else { &mut e.io.err };
        let Some(f) = fd else { return };
        match read_some(f.as_fd(), &mut self.buf) {
            None => *fd = None,
            Some(0) => {}
            Some(n) => {
                let kind = if stdout { proto::STDOUT } else { proto::STDERR };
                let client = e.client;
                let data = self.buf[..n].to_vec();
                self.send_to(client, kind, &data);
            }
        }
    }

    /// Records and reports every exec that ended.
    pub(super) fn reap_execs(&mut self, engine: &Engine) {
        let mut i = 0;
        while i < self.execs.len() {
            match self.execs[i].process.try_wait() {
                Ok(Some(status)) => {
                    let exec = self.execs.swap_remove(i);
                    self.finish_exec(engine, exec, status.code());
                }
                _ => i += 1,
            }
        }
    }

    /// The container ended, and with its pid namespace every exec in it:
    /// wait for each, and record and report how it ended.
    pub(super) fn end_execs(&mut self, engine: &Engine) {
        for exec in std::mem::take(&mut self.execs) {
            let _ = exec.process.signal(Signal::SIGKILL);
            let code = exec.process.wait().map_or(137, |s| s.code());
            self.finish_exec(engine, exec, code);
        }
        self.flush_all();
        for cl in &mut self.clients {
            if matches!(cl.request, Some(proto::Request::Exec { .. })) {
                cl.gone = true;
            }
        }
    }

    fn finish_exec(&mut self, engine: &Engine, mut exec: Exec, code: i32) {
        // What it wrote before it ended.
        for stdout in [true, false] {
            let fd = if stdout {
                exec.io.out.take()
            } else {
                exec.io.err.take()
            };
            let Some(fd) = fd else { continue };
            set_nonblocking(fd.as_fd());
            while let Some(n) = read_some(fd.as_fd(), &mut self.buf) {
                if n == 0 {
                    break;
                }
                let kind = if stdout { proto::STDOUT } else { proto::STDERR };
                let data = self.buf[..n].to_vec();
                self.send_to(exec.client, kind, &data);
            }
        }
        exec.record.running = false;
        exec.record.exit_code = Some(code);
        if let Err(e) = engine.save_exec(&exec.record) {
            tracing::warn!("record the end of exec {}: {e}", exec.record.id);
        }
        self.send_to(exec.client, proto::EXIT, &proto::exit_payload(code));
        // Starting it brought code and buffers in: give them back again.
        self.trimmed = false;
        self.trim_at = std::time::Instant::now() + std::time::Duration::from_secs(1);
    }
}

/// Starts a recorded exec in the running container, with stdio of the
/// monitor's own.
fn spawn(engine: &Engine, running: &Running, exec_id: &str) -> Result<Exec> {
    let mut record = engine.load_exec(&running.id, exec_id)?;
    if record.running || record.exit_code.is_some() {
        return Err(Error::Conflict(format!(
            "exec {exec_id} has already been started"
        )));
    }
    let (stdio, mut io) = Io::new(record.tty, record.open_stdin)?;
    let mut process = berth_runtime::exec(ExecOptions {
        pid: running.container.pid(),
        process: record.process.clone(),
        stdio,
        cgroup_root: engine.config.cgroup_root.clone(),
        cgroup_path: engine.cgroup_path(&running.id),
        seccomp_program: engine.exec_seccomp(&running.id)?,
        preserve_fds: 0,
        program: None,
    })?;
    if let Some(master) = process.take_pty_master() {
        if record.open_stdin {
            io.stdin = master.try_clone().ok();
        }
        io.out = Some(master);
    }
    for fd in [&io.out, &io.err, &io.stdin].into_iter().flatten() {
        set_nonblocking(fd.as_fd());
    }
    record.running = true;
    record.pid = process.pid().as_raw();
    if let Err(e) = engine.save_exec(&record) {
        tracing::warn!("record the start of exec {exec_id}: {e}");
    }
    Ok(Exec {
        record,
        client: None,
        process,
        io,
    })
}
