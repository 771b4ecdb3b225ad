//! `exec` against a hostile container: a process in the container watches
//! /proc for every process that joins it and tries to reach the host through
//! it (its executable, its descriptors, its environment) while the host runs
//! `berth exec` with a secret in its environment and a host directory open.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{eventually, Env};

/// Builds tests/e2e/data/NAME.c as a static program `dir/out`.
pub(crate) fn build_static(name: &str, dir: &Path, out: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/data")
        .join(format!("{name}.c"));
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(dir.join(out))
        .arg(&src)
        .status()
        .expect("gcc (scripts/setup.sh installs it)");
    assert!(st.success(), "building {name} failed");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_hostile_container_cannot_reach_the_host_through_exec() {
    let env = Env::new();
    let work = env.workdir();
    let bin = work.join("bin");
    std::fs::create_dir(&bin).unwrap();
    build_static("proc_watch", &bin, "watch");
    let secret = work.join("host-secret-dir");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("data"), "host only").unwrap();
    let berth_before = sha256(Path::new(crate::common::BERTH));
    let volume = format!("{}:/x:ro", bin.display());
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "none",
        "-v",
        &volume,
        "busybox",
        "/x/watch",
        "6",
        "HOST_TOKEN",
        "host-secret-dir",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // Execs as a user's shell runs them: a secret in the environment, a
    // host directory open on descriptor 5, the terminal's stdio.
    let dir = std::fs::File::open(&secret).unwrap();
    let dir_fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut ran = 0;
    for _ in 0..120 {
        let mut cmd = env.command(&["exec", "victim", "true"]);
        cmd.env("HOST_TOKEN", "topsecret-4711")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: dup2 only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(dir_fd, 5) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let st = cmd.status().unwrap();
        if !st.success() {
            break; // the watcher's time is up and the container is gone
        }
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} execs ran");
    let summary = eventually(Duration::from_secs(20), "the watcher's report", || {
        let r = env.berth(&["logs", "victim"]);
        r.stdout
            .lines()
            .find(|l| l.starts_with("pids="))
            .map(str::to_string)
    });
    let counts: std::collections::HashMap<&str, i64> = summary
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    // The watcher saw the exec'd processes...
    assert!(counts["pids"] >= 20, "{summary}");
    // ...and reached nothing of the host through them.
    for k in ["exe_write", "exe_host", "fd_host", "fd_open", "env_token"] {
        assert_eq!(counts[k], 0, "{k}: {summary}");
    }
    assert_eq!(sha256(Path::new(crate::common::BERTH)), berth_before);
    assert_eq!(
        std::fs::read_to_string(secret.join("data")).unwrap(),
        "host only"
    );
    assert_eq!(env.berth(&["rm", "-f", "victim"]).code, 0);
    env.assert_clean();
}
