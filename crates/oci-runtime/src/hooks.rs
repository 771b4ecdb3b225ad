//! OCI hooks: each runs with the container's state document on its stdin,
//! its own args and env, and its timeout (seconds); a hook that fails or
//! runs out of time fails the step it belongs to (except poststart and
//! poststop, whose failures are only logged, as the spec says).

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::Hook;

/// Runs `hooks` in order; the first failure stops them.
pub fn run_all(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    let input = serde_json::to_vec(state)?;
    for h in hooks {
        run_one(h, &input).with_context(|| format!("{kind} hook {}", h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, input: &[u8]) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((first, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for e in h.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    // The hook's output goes where this runtime's stderr goes: stdout may
    // be the container's (a pipe the caller reads for it).
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
        .stderr(Stdio::inherit())
        .spawn()
        .context("start")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state closes the pipe: not an error.
        let _ = stdin.write_all(input);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(st) = child.try_wait().context("wait")? {
            if !st.success() {
                bail!("failed: {st}");
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `hooks` inside the created container whose init is `container.pid`:
/// each joins the container's namespaces and cgroup as an `exec` does, with
/// the container's user and capabilities. With `path_on_host` (createContainer)
/// the hook's path resolves in this runtime's mount namespace and the
/// program runs through a descriptor; otherwise (startContainer) it
/// resolves in the container, as the spec says of each.
pub fn run_in_container(
    kind: &str,
    hooks: &[Hook],
    state: &serde_json::Value,
    container: &crate::exec::Target,
    path_on_host: bool,
) -> Result<()> {
    let input = serde_json::to_vec(state)?;
    for h in hooks {
        run_one_inside(h, &input, container, path_on_host)
            .with_context(|| format!("{kind} hook {}", h.path().display()))?;
    }
    Ok(())
}

fn run_one_inside(
    h: &Hook,
    input: &[u8],
    target: &crate::exec::Target,
    path_on_host: bool,
) -> Result<()> {
    let program = if path_on_host {
        let f = std::fs::File::open(h.path()).context("open")?;
        Some(std::os::fd::OwnedFd::from(f))
    } else {
        None
    };
    let mut process = target.process.clone();
    let mut args = h.args().clone().unwrap_or_default();
    let path = h.path().to_string_lossy().into_owned();
    if args.is_empty() {
        args.push(path.clone());
    }
    // The program is the hook's path; argv[0] is its args[0].
    args[0] = path;
    process.set_args(Some(args));
    process.set_env(h.env().clone());
    process.set_terminal(Some(false));
    let (read, mut write) = std::io::pipe().context("pipe")?;
    write.write_all(input).context("write the state")?;
    drop(write);
    let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
    let p = berth_runtime::exec(berth_runtime::ExecOptions {
        pid: nix::unistd::Pid::from_raw(target.pid),
        process,
        stdio: berth_runtime::Stdio {
            stdin: Some(read.into()),
            stdout: Some(stderr.try_clone()?),
            stderr: Some(stderr),
        },
        cgroup_root: crate::record::CGROUP_ROOT.into(),
        cgroup_path: target.cgroup_path.clone(),
        seccomp_program: None,
        preserve_fds: 0,
        program,
    })?;
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(st) = p.try_wait()? {
            if st.code() != 0 {
                bail!("failed: exit status {}", st.code());
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = p.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = p.wait();
            bail!("timed out after {}s", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
