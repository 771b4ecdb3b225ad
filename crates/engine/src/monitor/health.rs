//! Health checks as the monitor runs them: the check command starts in the
//! container like an exec (its process template, output to a pipe of the
//! monitor's), at the interval (the start interval during the start
//! period), is killed at its timeout, and each result is recorded in the
//! container's state.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_runtime::{ExecOptions, ExecProcess, Stdio};
use nix::sys::signal::Signal;

use super::{pipe, read_some, set_nonblocking};
use crate::error::{Error, Result};
use crate::health::{HealthConfig, HealthLog, MAX_OUTPUT};
use crate::{now, Engine, Running};

pub(super) struct Checker {
    config: HealthConfig,
    command: Vec<String>,
    started: Instant,
    next: Instant,
    probe: Option<Probe>,
}

struct Probe {
    process: ExecProcess,
    out: Option<OwnedFd>,
    output: Vec<u8>,
    start: String,
    deadline: Instant,
}

impl Checker {
    /// A checker for the running container, if its options have checks.
    pub(super) fn new(engine: &Engine, id: &str) -> Option<Checker> {
        let rec = engine.containers.load(id).ok()?;
        let config = rec.options.healthcheck?;
        let command = config.command()?;
        let started = Instant::now();
        let first = if config.start_period() > Duration::ZERO {
            config.start_interval()
        } else {
            config.interval()
        };
        Some(Checker {
            config,
            command,
            started,
            next: started + first,
            probe: None,
        })
    }

    fn in_start_period(&self) -> bool {
        self.started.elapsed() < self.config.start_period()
    }

    /// How long the monitor may sleep before the next thing to do here.
    pub(super) fn wait(&self) -> Duration {
        match &self.probe {
            // A running check is looked at often: its end, its output.
            Some(_) => Duration::from_millis(50),
            None => self.next.saturating_duration_since(Instant::now()),
        }
    }

    /// Starts a check that is due; finishes one that ended or timed out.
    pub(super) fn tick(&mut self, engine: &Engine, running: &Running) {
        if let Some(p) = &mut self.probe {
            if let Some(out) = &p.out {
                let mut buf = [0u8; 4096];
                while let Some(n) = read_some(out.as_fd(), &mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = MAX_OUTPUT.saturating_sub(p.output.len());
                    p.output.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            let ended = p.process.try_wait().ok().flatten();
            let timed_out = ended.is_none() && Instant::now() >= p.deadline;
            if ended.is_none() && !timed_out {
                return;
            }
            let Some(p) = self.probe.take() else { return };
            let (code, output) = if timed_out {
                let _ = p.process.signal(Signal::SIGKILL);
                let _ = p.process.wait();
                (
                    -1,
                    format!(
                        "Health check exceeded timeout ({:?})",
                        self.config.timeout()
                    ),
                )
            } else {
                (
                    ended.map_or(-1, |s| s.code()),
                    String::from_utf8_lossy(&p.output).into_owned(),
                )
            };
            let result = HealthLog {
                start: p.start,
                end: now(),
                exit_code: code,
                output,
            };
            record(
                engine,
                &running.id,
                result,
                self.config.retries(),
                self.in_start_period(),
            );
            let interval = if self.in_start_period() {
                self.config.start_interval()
            } else {
                self.config.interval()
            };
            self.next = Instant::now() + interval;
            return;
        }
        if Instant::now() < self.next {
            return;
        }
        match self.start_probe(engine, running) {
            Ok(p) => self.probe = Some(p),
            Err(e) => {
                // A check that cannot start is a failed check, as docker has it.
                let result = HealthLog {
                    start: now(),
                    end: now(),
                    exit_code: -1,
                    output: e.to_string(),
                };
                record(
                    engine,
                    &running.id,
                    result,
                    self.config.retries(),
                    self.in_start_period(),
                );
                self.next = Instant::now() + self.config.interval();
            }
        }
    }

    fn start_probe(&self, engine: &Engine, running: &Running) -> Result<Probe> {
        let mut process = engine.process_template(&running.id)?;
        process.set_args(Some(self.command.clone()));
        process.set_terminal(Some(false));
        process.set_console_size(None);
        let (read, write) = pipe()?;
        let devnull = std::fs::File::open("/dev/null").map_err(Error::io("open", "/dev/null"))?;
        let stdio = Stdio {
            stdin: Some(devnull.into()),
            stdout: Some(
                write
                    .try_clone()
                    .map_err(|e| Error::io("duplicate", "pipe")(e))?,
            ),
            stderr: Some(write),
        };
        let start = now();
        let process = berth_runtime::exec(ExecOptions {
            pid: running.container.pid(),
            process,
            stdio,
            cgroup_root: engine.config.cgroup_root.clone(),
            cgroup_path: engine.cgroup_path(&running.id),
            seccomp_program: engine.exec_seccomp(&running.id)?,
            preserve_fds: 0,
            program: None,
        })?;
        set_nonblocking(read.as_fd());
        Ok(Probe {
            process,
            out: Some(read),
            output: Vec::new(),
            start,
            deadline: Instant::now() + self.config.timeout(),
        })
    }

    /// The container ended: a check still running ends with it.
    pub(super) fn stop(&mut self) {
        if let Some(p) = self.probe.take() {
            let _ = p.process.signal(Signal::SIGKILL);
            let _ = p.process.wait();
        }
    }
}

/// Adds a check's result to the container's state; a change of status is
/// an event (`health_status: healthy`), as docker reports it.
fn record(engine: &Engine, id: &str, result: HealthLog, retries: u32, early: bool) {
    let updated = engine.update(id, |r| {
        let Some(h) = &mut r.state.health else {
            return Ok(None);
        };
        let before = h.status.clone();
        h.record(result, retries, early);
        Ok((h.status != before).then(|| h.status.clone()))
    });
    if let Ok((rec, Some(status))) = updated {
        engine.emit_container(&rec, &format!("health_status: {status}"), &[]);
    }
}
