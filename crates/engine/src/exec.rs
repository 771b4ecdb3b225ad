//! `exec`: another process in a running container, with the container's
//! namespaces, cgroup, environment and capabilities (and no more).
//!
//! An exec is made in two steps, as docker's API has them: [`Engine::exec_create`]
//! checks the request and records it (`containers/<id>/execs/<exec-id>.json`,
//! private to root: it holds the process's environment) with the process it
//! will run; [`Engine::exec_start`] asks the container's monitor to run it.
//! The monitor owns the process: it starts it from its own clean state (no
//! descriptor, environment or file of the caller's reaches the container),
//! hands it pipes or a terminal of its own, streams them to the caller, and
//! records its pid and exit code in the exec's record.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use berth_runtime::oci_spec::runtime::{Box as ConsoleBox, BoxBuilder, Process, Spec, UserBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::monitor::proto;
use crate::{spec, Engine, Status};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// `-e`: `KEY=value` (a face gives `-e KEY` its caller's value first).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    /// `-i`: the process reads what the caller sends.
    pub stdin: bool,
    /// Terminal size (rows, columns) with `tty`.
    pub console_size: Option<(u16, u16)>,
    /// `--privileged`: every capability for this process (the container's
    /// seccomp filter still applies, as docker has it).
    pub privileged: bool,
}

/// An exec's record: what it runs and how it went (docker's ExecInspect).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub process: Process,
    pub open_stdin: bool,
    pub tty: bool,
    pub running: bool,
    /// Set once it ended (or failed to start).
    pub exit_code: Option<i32>,
    /// As the host sees it; 0 before it started.
    pub pid: i32,
    pub created: String,
}

/// A started exec streaming through its monitor: frames as in
/// [`proto`] (STDOUT/STDERR, then EXIT); STDIN, STDIN_EOF, RESIZE and SIGNAL
/// frames go to the process.
pub struct ExecSession {
    pub sock: UnixStream,
    pub pid: i32,
}

/// The monitor's answer to an exec request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ExecReply {
    Started { pid: i32 },
    Failed { message: String, code: i32 },
}

impl Engine {
    /// The process the running container's init got: the template of each
    /// process started in it later (execs, health checks).
    pub(crate) fn process_template(&self, id: &str) -> Result<Process> {
        let path = self.run_dir(id).join("config.json");
        self.container_spec(id)?
            .process()
            .clone()
            .ok_or_else(|| Error::Corrupt {
                path,
                message: "no process".into(),
            })
    }

    /// The running container's OCI spec, as its start wrote it.
    pub(crate) fn container_spec(&self, id: &str) -> Result<Spec> {
        let path = self.run_dir(id).join("config.json");
        let data = std::fs::read(&path).map_err(Error::io("read", &path))?;
        serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })
    }

    /// The running container's seccomp filter, which every process started
    /// in it gets too.
    pub(crate) fn exec_seccomp(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.seccomp_program_of(&self.container_spec(id)?)
    }

    /// Checks an exec request against a running container and records it;
    /// nothing runs yet (see [`Engine::exec_start`]).
    pub fn exec_create(&self, key: &str, req: &ExecRequest) -> Result<ExecRecord> {
        let rec = self.containers.find(key)?;
        check_running(&rec)?;
        if req.cmd.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command to run".into()));
        }
        crate::config::check_env(&req.env)?;
        if let Some(w) = &req.workdir {
            if !w.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        let mut process = self.process_template(&rec.id)?;
        process.set_args(Some(req.cmd.clone()));
        let base = process.env().clone().unwrap_or_default();
        let mut extra: Vec<(&str, String)> = Vec::new();
        if req.tty && !base.iter().any(|e| e.starts_with("TERM=")) {
            extra.push(("TERM", "xterm".into()));
        }
        process.set_env(Some(spec::environment(&base, &req.env, &extra)));
        if let Some(w) = &req.workdir {
            process.set_cwd(w.into());
        }
        if let Some(u) = &req.user {
            let image = self.images.resolve(&rec.image_id)?;
            let user = self.resolve_user(&rec.id, &image, u, &rec.options.group_add)?;
            let built = UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids)
                .build()
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            process.set_user(built);
        }
        if req.privileged {
            let all: std::collections::HashSet<_> =
                crate::spec::capabilities(&crate::ContainerOptions {
                    privileged: true,
                    ..crate::ContainerOptions::new("")
                })?;
            let caps = berth_runtime::oci_spec::runtime::LinuxCapabilitiesBuilder::default()
                .bounding(all.clone())
                .effective(all.clone())
                .permitted(all)
                .build()
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            process.set_capabilities(Some(caps));
        }
        process.set_terminal(Some(req.tty));
        let size: Option<ConsoleBox> = match (req.tty, req.console_size) {
            (true, Some((rows, cols))) => BoxBuilder::default()
                .height(rows as u32)
                .width(cols as u32)
                .build()
                .ok(),
            _ => None,
        };
        process.set_console_size(size);
        let id = hex::encode(crate::random_bytes::<32>()?);
        let exec = ExecRecord {
            id,
            container_id: rec.id.clone(),
            process,
            open_stdin: req.stdin,
            tty: req.tty,
            running: false,
            exit_code: None,
            pid: 0,
            created: crate::now(),
        };
        let dir = self.execs_dir(&rec.id);
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        self.save_exec(&exec)?;
        Ok(exec)
    }

    /// Runs a recorded exec under its container's monitor. With `detach` the
    /// monitor keeps it and this returns once it started; otherwise the
    /// session streams it.
    pub fn exec_start(&self, exec_id: &str, detach: bool) -> Result<Option<ExecSession>> {
        let exec = self.exec_inspect(exec_id)?;
        if exec.running || exec.exit_code.is_some() {
            return Err(Error::Conflict(format!(
                "exec {exec_id} has already been started"
            )));
        }
        let rec = self.containers.load(&exec.container_id)?;
        check_running(&rec)?;
        let request = proto::Request::Exec {
            exec_id: exec.id.clone(),
            detach,
        };
        let Some(mut sock) = self.monitor_request(&rec.id, &request)? else {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        };
        let reply =
            proto::read_frame(&mut sock).map_err(Error::io("talk to the monitor of", &rec.id))?;
        let reply = match reply {
            Some((proto::EXEC_REPLY, payload)) => serde_json::from_slice::<ExecReply>(&payload)
                .map_err(|e| Error::io("talk to the monitor of", &rec.id)(e.into()))?,
            Some((proto::ERROR, why)) => {
                return Err(Error::Conflict(String::from_utf8_lossy(&why).into_owned()))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        };
        match reply {
            ExecReply::Started { .. } if detach => {
                let _ = sock.flush();
                Ok(None)
            }
            ExecReply::Started { pid } => Ok(Some(ExecSession { sock, pid })),
            ExecReply::Failed { message, code } => Err(Error::StartFailed { message, code }),
        }
    }

    /// An exec's record, by its ID (or a unique prefix of it).
    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecRecord> {
        let not_found = || Error::ExecNotFound(exec_id.to_string());
        if exec_id.is_empty() || !exec_id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let mut found = None;
        for rec in self.containers.list()? {
            let dir = self.execs_dir(&rec.id);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(".json") else {
                    continue;
                };
                if id.starts_with(exec_id) {
                    if found.is_some() {
                        return Err(Error::InvalidArgument(format!(
                            "exec ID {exec_id} is ambiguous"
                        )));
                    }
                    found = Some(e.path());
                }
            }
        }
        let path = found.ok_or_else(not_found)?;
        self.load_exec_file(&path)
    }

    /// The execs recorded for a container, oldest first.
    pub fn execs(&self, key: &str) -> Result<Vec<ExecRecord>> {
        let rec = self.containers.find(key)?;
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.execs_dir(&rec.id)) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".json") {
                    out.push(self.load_exec_file(&e.path())?);
                }
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    pub(crate) fn execs_dir(&self, container_id: &str) -> PathBuf {
        self.containers.dir(container_id).join("execs")
    }

    pub(crate) fn load_exec(&self, container_id: &str, exec_id: &str) -> Result<ExecRecord> {
        if !crate::names::valid_id(exec_id) {
            return Err(Error::ExecNotFound(exec_id.to_string()));
        }
        let path = self.execs_dir(container_id).join(format!("{exec_id}.json"));
        self.load_exec_file(&path).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::ExecNotFound(exec_id.to_string())
            }
            e => e,
        })
    }

    fn load_exec_file(&self, path: &std::path::Path) -> Result<ExecRecord> {
        let data = std::fs::read(path).map_err(Error::io("read", path))?;
        serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Replaces an exec's record atomically; private (mode 0600): it holds
    /// the process's environment.
    pub(crate) fn save_exec(&self, exec: &ExecRecord) -> Result<()> {
        let dir = self.execs_dir(&exec.container_id);
        let path = dir.join(format!("{}.json", exec.id));
        let json = serde_json::to_vec(exec).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(&dir).map_err(Error::io("create in", &dir))?;
        tmp.write_all(&json).map_err(Error::io("write", &path))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("replace", &path)(e.error))?;
        Ok(())
    }
}

fn check_running(rec: &crate::ContainerRecord) -> Result<()> {
    match rec.state.status {
        Status::Running if rec.state.pid > 0 => Ok(()),
        Status::Paused => Err(Error::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            rec.id
        ))),
        _ => Err(Error::Conflict(format!(
            "Container {} is not running",
            rec.id
        ))),
    }
}
