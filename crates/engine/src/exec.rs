//! `exec`: another process in a running container, with the container's
//! namespaces, cgroup, environment and capabilities (and no more).

use berth_runtime::oci_spec::runtime::{Box as ConsoleBox, BoxBuilder, Process, Spec, UserBuilder};
use berth_runtime::{ExecOptions, ExecProcess, Stdio};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::{spec, Engine, Status};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// `-e`: `KEY=value` (a face gives `-e KEY` its caller's value first).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    /// Terminal size (rows, columns) with `tty`.
    pub console_size: Option<(u16, u16)>,
}

impl Engine {
    /// Starts a process in a running container; the caller owns it.
    pub fn exec(&self, key: &str, req: &ExecRequest, stdio: Stdio) -> Result<ExecProcess> {
        let rec = self.containers.find(key)?;
        match rec.state.status {
            Status::Running if rec.state.pid > 0 => {}
            Status::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                )))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        }
        if req.cmd.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command to run".into()));
        }
        if let Some(w) = &req.workdir {
            if !w.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
        }
        // The process the container's init got, as the template.
        let path = self.run_dir(&rec.id).join("config.json");
        let data = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let container_spec: Spec = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut process: Process =
            container_spec
                .process()
                .clone()
                .ok_or_else(|| Error::Corrupt {
                    path,
                    message: "no process".into(),
                })?;
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
            let user = self.resolve_user(&rec.id, &image, u)?;
            let built = UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids)
                .build()
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            process.set_user(built);
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
        Ok(berth_runtime::exec(ExecOptions {
            pid: Pid::from_raw(rec.state.pid),
            process,
            stdio,
            cgroup_root: self.config.cgroup_root.clone(),
            cgroup_path: self.cgroup_path(&rec.id),
        })?)
    }
}
