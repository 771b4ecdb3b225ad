//! berth-runtime driven as containerd's shim and a user drive runc: the
//! lifecycle of a bundle made with `berth-runtime spec` (runc's template),
//! with runc's exit codes, state documents and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RUNTIME: &str = env!("CARGO_BIN_EXE_berth-runtime");

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle with the busybox root filesystem the repository's script
    /// writes, and config.json from `berth-runtime spec` running `args`.
    fn new(args: &[&str]) -> Bundle {
        Bundle::with_spec_from(RUNTIME, args)
    }

    /// The same with config.json written by `SPEC_TOOL spec` (runc's
    /// own template, where runc is installed).
    fn with_spec_from(spec_tool: &str, args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-oci-")
            .tempdir()
            .unwrap();
        let tar = dir.path().join("rootfs.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let st = Command::new("tar")
            .arg("-C")
            .arg(dir.path().join("rootfs"))
            .arg("-xf")
            .arg(&tar)
            .status()
            .unwrap();
        assert!(st.success());
        let b = Bundle { dir };
        // As a user types it: in the bundle, relative paths.
        let out = Command::new(spec_tool)
            .arg("spec")
            .current_dir(b.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let path = b.path().join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["terminal"] = false.into();
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        b
    }

    /// Changes config.json.
    fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.path().join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut spec);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `berth-runtime --root STATE args...`, typed in the bundle. Its output
    /// goes to files: a created container's init keeps the stdio it was
    /// given (as runc's does), so pipes would stay open as long as it lives.
    fn rt(&self, args: &[&str]) -> Output {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let status = Command::new(RUNTIME)
            .arg("--root")
            .arg(self.state_root())
            .args(args)
            .current_dir(self.path())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .unwrap();
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    fn status(&self, id: &str) -> String {
        let out = self.rt(&["state", id]);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn run_exits_with_the_container_s_code() {
    let b = Bundle::new(&["sh", "-c", "echo hello from $(hostname); exit 3"]);
    let out = b.rt(&["run", "c1"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from berth\n");
    // Nothing is left: the state and the cgroup go with a foreground run.
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
    assert!(!Path::new("/sys/fs/cgroup/pids/berth-runtime/c1").exists());
}

#[test]
fn create_start_kill_delete() {
    let b = Bundle::new(&["sleep", "60"]);
    let out = b.rt(&["create", "--pid-file", "init.pid", "c2"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(b.status("c2"), "created");
    let pid: i32 = std::fs::read_to_string(b.path().join("init.pid"))
        .unwrap()
        .parse()
        .unwrap();
    // Created: the init exists, in the container's namespaces, and has not
    // run its program yet.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    let state: serde_json::Value = serde_json::from_slice(&b.rt(&["state", "c2"]).stdout).unwrap();
    assert_eq!(state["pid"], pid);
    assert_eq!(state["ociVersion"], "1.2.0");
    assert_eq!(state["bundle"], b.path().to_str().unwrap());

    assert!(b.rt(&["start", "c2"]).status.success());
    assert_eq!(b.status("c2"), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let out = b.rt(&["start", "c2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).contains("already running"), "{out:?}");
    let out = b.rt(&["delete", "c2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).contains("not stopped"), "{out:?}");
    let list = text(&b.rt(&["list"]));
    assert!(list.contains("c2") && list.contains("running"), "{list}");

    assert!(b.rt(&["kill", "c2", "KILL"]).status.success());
    for _ in 0..200 {
        if b.status("c2") == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(b.status("c2"), "stopped");
    assert!(b.rt(&["delete", "c2"]).status.success());
    let out = b.rt(&["state", "c2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("does not exist"), "{out:?}");

    // A created container (its program never ran) is deleted without -f.
    assert!(b.rt(&["create", "c5"]).status.success());
    assert!(b.rt(&["delete", "c5"]).status.success());

    // delete -f stops a running container.
    assert!(b.rt(&["run", "-d", "c3"]).status.success());
    assert_eq!(b.status("c3"), "running");
    assert!(b.rt(&["delete", "-f", "c3"]).status.success());
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
}

#[test]
fn what_it_cannot_honour_is_refused_by_name() {
    let b = Bundle::new(&["true"]);
    b.edit(|spec| {
        spec["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_FIFO", "priority": 1});
        spec["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"});
        // The current runtime-tools version is accepted.
        spec["ociVersion"] = "1.3.0".into();
    });
    let out = b.rt(&["run", "c4"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let t = text(&out);
    assert!(
        t.contains("process.scheduler") && t.contains("linux.personality"),
        "{t}"
    );
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
    let out = b.rt(&["--systemd-cgroup", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--systemd-cgroup"), "{out:?}");
    let out = b.rt(&["create", "bad/id"]);
    assert!(text(&out).contains("invalid container id"), "{out:?}");
    // containerd's shim reads the error from --log in JSON.
    let out = b.rt(&[
        "--log",
        "log.json",
        "--log-format",
        "json",
        "state",
        "nothing",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let log = std::fs::read_to_string(b.path().join("log.json")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"]
            .as_str()
            .unwrap()
            .contains("nothing does not exist"),
        "{log}"
    );
    let out = b.rt(&["spec"]);
    assert!(text(&out).contains("exists"), "{out:?}");
}

/// Receives the descriptor a runtime sends to a console socket.
fn recv_fd(listener: &std::os::unix::net::UnixListener) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the descriptor just arrived and nothing else owns it.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor in the console socket's message");
}

/// Reads `master` until `want` shows up (or 10 s pass).
fn read_until(master: &std::os::fd::OwnedFd, want: &str) -> String {
    use std::os::fd::AsFd;
    let mut got = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !got.contains(want) && std::time::Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u8));
        let mut buf = [0u8; 1024];
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(master), &mut buf) {
            Ok(n) if n > 0 => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    got
}

#[test]
fn console_socket_gets_the_terminal() {
    let b = Bundle::new(&["sh", "-c", "tty; read line; echo got $line; exit 2"]);
    b.edit(|spec| spec["process"]["terminal"] = true.into());
    // Without a socket, a detached container cannot have a terminal.
    let out = b.rt(&["create", "t0"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).contains("console socket"), "{out:?}");

    let sock = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || recv_fd(&listener));
    let out = b.rt(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--pid-file",
        "t1.pid",
        "t1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let master = receiver.join().unwrap();
    assert!(b.rt(&["start", "t1"]).status.success());
    let seen = read_until(&master, "/dev/pts/");
    assert!(seen.contains("/dev/pts/0"), "{seen:?}");
    nix::unistd::write(&master, b"hello\n").unwrap();
    let seen = read_until(&master, "got hello");
    assert!(seen.contains("got hello"), "{seen:?}");
    for _ in 0..200 {
        if b.status("t1") == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(b.status("t1"), "stopped");
    assert!(b.rt(&["delete", "t1"]).status.success());
}

#[test]
fn hooks_run_with_the_state_at_their_moments() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "cat /hook-start.json; echo; cat /hook-create.json",
    ]);
    let out_dir = b.path().join("hooks-out");
    std::fs::create_dir(&out_dir).unwrap();
    // A createContainer hook's path resolves on the host (this script is
    // not in the container); it runs in the container (its /bin/sh and the
    // file it writes are the container's).
    let create_hook = b.path().join("create-hook.sh");
    std::fs::write(&create_hook, "#!/bin/sh\ncat > /hook-create.json\n").unwrap();
    std::fs::set_permissions(
        &create_hook,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let host_hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}/{name}.json", out_dir.display())],
            "timeout": 10,
        })
    };
    b.edit(|spec| {
        spec["hooks"] = serde_json::json!({
            "createRuntime": [host_hook("createRuntime")],
            "prestart": [host_hook("prestart")],
            // Runs in the container: its /bin/sh is busybox's.
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hook-start.json"]}],
            "createContainer": [{"path": create_hook, "timeout": 10}],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        });
        spec["root"]["readonly"] = false.into();
    });
    let out = b.rt(&["run", "h1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The container printed what its startContainer and createContainer
    // hooks read.
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut docs = printed.lines();
    for status in ["created", "creating"] {
        let inside: serde_json::Value =
            serde_json::from_str(docs.next().unwrap_or_default()).unwrap();
        assert_eq!(inside["id"], "h1", "{printed}");
        assert_eq!(inside["status"], status, "{printed}");
    }
    assert!(!b.path().join("rootfs/create-hook.sh").exists());
    for (name, status) in [
        ("createRuntime", "creating"),
        ("prestart", "creating"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let path = out_dir.join(format!("{name}.json"));
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{name} hook wrote no state ({e}): {out:?}"));
        assert_eq!(state["id"], "h1", "{name}");
        assert_eq!(state["status"], status, "{name}");
        assert_eq!(state["bundle"], b.path().to_str().unwrap(), "{name}");
    }

    // A hook that fails, or outlives its timeout, fails the create, by name.
    b.edit(|spec| {
        spec["hooks"] = serde_json::json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1}],
        });
    });
    let started = std::time::Instant::now();
    let out = b.rt(&["create", "h2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out).contains("createRuntime hook /bin/sh: timed out"),
        "{out:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
}

#[test]
fn exec_ps_pause_update_events() {
    let b = Bundle::new(&["sleep", "600"]);
    assert!(b.rt(&["run", "-d", "e1"]).status.success());

    // The args form, as a user types it.
    let out = b.rt(&["exec", "e1", "sh", "-c", "echo in $(hostname); exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in berth\n");
    // The shim's form: a process document, detached, with a pid file.
    let p = serde_json::json!({
        "args": ["sleep", "500"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"],
    });
    std::fs::write(b.path().join("p.json"), p.to_string()).unwrap();
    let out = b.rt(&[
        "exec",
        "--process",
        "p.json",
        "--detach",
        "--pid-file",
        "e.pid",
        "e1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let pid: i32 = std::fs::read_to_string(b.path().join("e.pid"))
        .unwrap()
        .parse()
        .unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");

    let out = b.rt(&["ps", "--format", "json", "e1"]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 2, "{out:?}");
    assert!(pids.contains(&pid));
    let table = text(&b.rt(&["ps", "e1"]));
    assert!(
        table.contains("PID") && table.contains("sleep 500"),
        "{table}"
    );

    assert!(b.rt(&["pause", "e1"]).status.success());
    assert_eq!(b.status("e1"), "paused");
    let out = b.rt(&["exec", "e1", "true"]);
    assert!(text(&out).contains("paused"), "{out:?}");
    assert!(b.rt(&["resume", "e1"]).status.success());
    assert_eq!(b.status("e1"), "running");

    let out = b.rt(&["update", "--pids-limit", "7", "--memory", "64m", "e1"]);
    assert!(out.status.success(), "{out:?}");
    let out = b.rt(&["events", "--stats", "e1"]);
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 2);
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 64 << 20);

    assert!(b.rt(&["delete", "-f", "e1"]).status.success());
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err());

    let f: serde_json::Value = serde_json::from_slice(&b.rt(&["features"]).stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.3.0");
    assert!(f["hooks"].as_array().unwrap().contains(&"poststop".into()));
}

#[test]
fn preserved_descriptors_and_no_pivot() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "cat <&3; [ -e /proc/self/fd/4 ] && echo 4 leaked || echo 4 closed",
    ]);
    std::fs::write(b.path().join("passed"), "passed on\n").unwrap();
    // fd 3 given to berth-runtime, as a shim passes one.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3<passed 4<passed; {RUNTIME} --root state run --no-pivot --preserve-fds 1 p1"
        ))
        .current_dir(b.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 3 reached the program, 4 did not.
    assert_eq!(stdout, "passed on\n4 closed\n");
}

#[test]
fn runc_spec_bundle_with_a_terminal_in_the_foreground() {
    // runc's template: a read-only root, a devices cgroup that denies all
    // (the runtime adds the standard nodes and terminals, as runc does).
    let b = Bundle::with_spec_from(
        "runc",
        &["sh", "-c", "echo x > /dev/null && tty && stty size; exit 4"],
    );
    b.edit(|spec| spec["process"]["terminal"] = true.into());
    // Typed at a terminal (util-linux's script gives the command one).
    let out = Command::new("script")
        .args(["-q", "-e", "-c"])
        // The container's terminal takes the size of the user's.
        .arg(format!(
            "stty rows 31 cols 97; {RUNTIME} --root state run r1"
        ))
        .arg("/dev/null")
        .current_dir(b.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("/dev/pts/0"), "{out:?}");
    assert!(shown.contains("31 97"), "{out:?}");
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
}

#[test]
fn a_hostile_container_cannot_reach_the_host_through_exec() {
    // The container's program watches /proc for every process that joins it
    // and tries the CVE-2019-5736 / CVE-2024-21626 moves on it (write its
    // executable, follow its descriptors out, read its environment) while
    // the host runs `berth-runtime exec` with a secret in its environment
    // and a host directory open on descriptor 5.
    let b = Bundle::new(&["/watch", "6", "HOST_TOKEN", "host-secret-dir"]);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/data/proc_watch.c");
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(b.path().join("rootfs/watch"))
        .arg(&src)
        .status()
        .expect("gcc (scripts/setup.sh installs it)");
    assert!(st.success());
    let secret = b.path().join("host-secret-dir");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("data"), "host only").unwrap();
    let sha = |p: &str| {
        let out = Command::new("sha256sum").arg(p).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let runtime_before = sha(RUNTIME);
    // The watcher's report goes to a file the test reads at the end.
    let report = std::fs::File::create(b.path().join("report")).unwrap();
    let st = Command::new(RUNTIME)
        .arg("--root")
        .arg(b.state_root())
        .args(["run", "-d", "victim"])
        .current_dir(b.path())
        .stdin(std::process::Stdio::null())
        .stdout(report.try_clone().unwrap())
        .stderr(report)
        .status()
        .unwrap();
    assert!(st.success());
    let dir = std::fs::File::open(&secret).unwrap();
    let dir_fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut ran = 0;
    for _ in 0..120 {
        let mut cmd = Command::new(RUNTIME);
        cmd.arg("--root")
            .arg(b.state_root())
            .args(["exec", "victim", "true"])
            .env("HOST_TOKEN", "topsecret-4711")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: dup2 only, between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::dup2(dir_fd, 5) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if !cmd.status().unwrap().success() {
            break; // the watcher's time is up
        }
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} execs ran");
    let mut summary = String::new();
    for _ in 0..2000 {
        summary = std::fs::read_to_string(b.path().join("report")).unwrap();
        if summary.contains("pids=") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let counts: std::collections::HashMap<&str, i64> = summary
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    assert!(counts.get("pids").is_some_and(|p| *p >= 20), "{summary}");
    for k in ["exe_write", "exe_host", "fd_host", "fd_open", "env_token"] {
        assert_eq!(counts[k], 0, "{k}: {summary}");
    }
    assert_eq!(sha(RUNTIME), runtime_before);
    assert_eq!(
        std::fs::read_to_string(secret.join("data")).unwrap(),
        "host only"
    );
    assert!(b.rt(&["delete", "-f", "victim"]).status.success());
}

#[test]
fn a_foreground_run_passes_its_signals_on() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'echo got TERM; exit 9' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    let out_path = b.path().join("out");
    let mut child = Command::new(RUNTIME)
        .arg("--root")
        .arg(b.state_root())
        .args(["run", "s1"])
        .current_dir(b.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..1000 {
        if std::fs::read_to_string(&out_path)
            .unwrap()
            .contains("ready")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // As a supervisor stops it: SIGTERM to berth-runtime reaches the container.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(9));
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "ready\ngot TERM\n"
    );
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
}

/// `berth-runtime run ID` in a mount namespace where /sys/fs/cgroup is a
/// cgroup2 mount, so the runtime sees a pure cgroup v2 host (this machine
/// is v1 with an empty cgroup2 beside it; the kernel checks devices with the
/// v2 cgroup's eBPF program either way). The spec's cgroup is one level,
/// `/berth-devv2-test`, so no parent is left; prints `LEFT-CGROUP` when the
/// run leaves the cgroup behind.
fn run_on_cgroup_v2(b: &Bundle, id: &str) -> Output {
    let script = r#"mount -t cgroup2 none /sys/fs/cgroup || exit 99
"$0" --root "$1" run "$2"; rc=$?
[ -e /sys/fs/cgroup/berth-devv2-test ] && echo LEFT-CGROUP
exit $rc"#;
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(RUNTIME)
        .arg(b.state_root())
        .arg(id)
        .current_dir(b.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The attack on a cgroup v2 host: the container's root, with CAP_MKNOD,
/// makes a node for a host block device (loop0, b 7:0: this machine's
/// sandbox keeps even the host's root off its disk) and opens it. Under a
/// spec's `deny all` the device program refuses the open (mknod itself is
/// allowed, as runc allows it) while the standard devices stay usable. A
/// spec that allows the device is the control: the same open then works.
#[test]
fn on_cgroup_v2_the_container_s_root_cannot_open_a_denied_device() {
    let attack = "mknod /dev/hostblk b 7 0 || exit 10
head -c 512 /dev/hostblk >/dev/null && echo opened
echo null >/dev/null && head -c 3 /dev/zero | wc -c";
    let b = Bundle::new(&["sh", "-c", attack]);
    b.edit(|spec| {
        spec["linux"]["resources"]["devices"] =
            serde_json::json!([{"allow": false, "access": "rwm"}]);
        spec["linux"]["cgroupsPath"] = "/berth-devv2-test".into();
        for set in ["bounding", "effective", "permitted"] {
            spec["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_MKNOD".into());
        }
    });
    let out = run_on_cgroup_v2(&b, "devv2-attack");
    assert_ne!(out.status.code(), Some(99), "cannot mount cgroup2: {out:?}");
    let t = text(&out);
    assert!(
        t.contains("/dev/hostblk: Operation not permitted"),
        "the device opened: {t}"
    );
    // /dev/null and /dev/zero (runc's defaults) still work; the cgroup is gone.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n", "{t}");
    assert!(out.status.success(), "{t}");

    b.edit(|spec| {
        spec["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"allow": true, "type": "b", "major": 7,
                                     "minor": 0, "access": "r"}));
    });
    let out = run_on_cgroup_v2(&b, "devv2-control");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "opened\n3\n",
        "{}",
        text(&out)
    );
}
