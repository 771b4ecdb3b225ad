//! berth-runtime under the engines that drive runc: containerd (as a
//! Kubernetes node runs it, through its runc v2 shim with berth-runtime as
//! the shim's binary) and dockerd (`--add-runtime`). Each daemon is started
//! by the test with its own root, state and socket, and the image is the
//! OCI archive `berth save --format oci` writes (or `berth save` for
//! `docker load`), made from Debian's busybox-static.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// `berth`, built beside berth-runtime (by the workspace's build, or here).
fn berth() -> PathBuf {
    let path = Path::new(RUNTIME).with_file_name("berth");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "berth"])
            .status()
            .unwrap();
        assert!(st.success(), "cargo build -p berth failed");
    }
    path
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A busybox image saved by `berth save --format FORMAT` into `dir`.
fn busybox_archive(dir: &Path, format: &str) -> PathBuf {
    let tar = dir.join("busybox-rootfs.tar");
    if !tar.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        ok(Command::new("bash")
            .arg(&script)
            .arg(&tar)
            .output()
            .unwrap());
    }
    let root = dir.join("berth-root");
    let run = dir.join("berth-run");
    let b = |args: &[&str]| {
        Command::new(berth())
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&run)
            .args(args)
            .output()
            .unwrap()
    };
    ok(b(&["import", tar.to_str().unwrap(), "busybox:latest"]));
    let out = dir.join(format!("busybox-{format}.tar"));
    ok(b(&[
        "save",
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
        "busybox:latest",
    ]));
    out
}

fn wait_for_socket(sock: &Path, daemon: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sock.exists() {
        if let Ok(Some(st)) = daemon.try_wait() {
            panic!(
                "daemon exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no socket after 60s: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A daemon this test started; stopped (TERM, then KILL) when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// containerd with everything of its own under `dir`.
struct Containerd {
    _daemon: Daemon,
    sock: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let sock = dir.join("c.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        let log = dir.join("containerd.log");
        let mut child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("containerd.err")).unwrap())
            .spawn()
            .expect("containerd (apt-get install containerd)");
        wait_for_socket(&sock, &mut child, &dir.join("containerd.err"));
        Containerd {
            _daemon: Daemon(child),
            sock,
        }
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.sock)
            .args(["--namespace", "berth-rt-interop"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `ctr ARGS` under a terminal (`ctr run -t` takes its own stdin's):
    /// util-linux's `script`, which exits with the command's code.
    fn ctr_tty(&self, args: &[&str]) -> Output {
        let line: Vec<String> = ["ctr", "--address", self.sock.to_str().unwrap()]
            .iter()
            .chain(&["--namespace", "berth-rt-interop"])
            .chain(args)
            .map(|a| format!("'{a}'"))
            .collect();
        Command::new("script")
            .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

const IMAGE: &str = "docker.io/library/busybox:latest";

#[test]
fn containerd_runs_containers_with_berth_runtime() {
    let dir = tempfile::Builder::new()
        .prefix("bi-")
        .tempdir_in("/tmp")
        .unwrap();
    let archive = busybox_archive(dir.path(), "oci");
    let c = Containerd::start(dir.path());
    let imported = ok(c.ctr(&[
        "images",
        "import",
        "--base-name",
        "docker.io/library/busybox",
        archive.to_str().unwrap(),
    ]));
    let list = ok(c.ctr(&["images", "ls", "-q"]));
    assert!(list.contains(IMAGE), "{imported}\n{list}");

    // Output and exit code, as a user types them.
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        RUNTIME,
        IMAGE,
        "c1",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    // A terminal: the shim's console socket gets the pty's master.
    let out = c.ctr_tty(&[
        "run",
        "--rm",
        "-t",
        "--runc-binary",
        RUNTIME,
        IMAGE,
        "c2",
        "sh",
        "-c",
        "tty; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out)
    );

    // exec in a running container (the shim's `exec --process --detach`).
    ok(c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        RUNTIME,
        IMAGE,
        "c3",
        "sleep",
        "600",
    ]));
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c3",
        "sh",
        "-c",
        "echo in as $(id -u); exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in as 0\n");
    let ps = ok(c.ctr(&["task", "ps", "c3"]));
    assert!(ps.lines().count() >= 2, "{ps}");
    ok(c.ctr(&["task", "pause", "c3"]));
    let tasks = ok(c.ctr(&["task", "ls"]));
    assert!(tasks.contains("PAUSED"), "{tasks}");
    ok(c.ctr(&["task", "resume", "c3"]));
    ok(c.ctr(&["task", "kill", "-s", "KILL", "c3"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = ok(c.ctr(&["task", "ls"]));
        if tasks.contains("STOPPED") {
            break;
        }
        assert!(Instant::now() < deadline, "{tasks}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(c.ctr(&["task", "delete", "c3"]));
    ok(c.ctr(&["container", "delete", "c3"]));
    assert_eq!(ok(c.ctr(&["containers", "ls", "-q"])), "");
}

/// dockerd with its own data root, exec root and socket, no bridge and no
/// firewall rules (nothing on the host changes), and berth-runtime added
/// as runtime `berth`.
struct Dockerd {
    _daemon: Daemon,
    sock: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        let sock = dir.join("d.sock");
        let config = dir.join("daemon.json");
        std::fs::write(&config, "{}").unwrap();
        let log = dir.join("dockerd.log");
        let mut child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--storage-driver=vfs",
            ])
            .arg(format!("--add-runtime=berth={RUNTIME}"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("dockerd (apt-get install docker.io)");
        wait_for_socket(&sock, &mut child, &log);
        Dockerd {
            _daemon: Daemon(child),
            sock,
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("--host")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn docker_tty(&self, args: &[&str]) -> Output {
        let host = format!("unix://{}", self.sock.display());
        let line: Vec<String> = ["docker", "--host", &host]
            .iter()
            .chain(args)
            .map(|a| format!("'{a}'"))
            .collect();
        Command::new("script")
            .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn dockerd_runs_containers_with_berth_runtime() {
    let dir = tempfile::Builder::new()
        .prefix("bd-")
        .tempdir_in("/tmp")
        .unwrap();
    let archive = busybox_archive(dir.path(), "docker");
    let d = Dockerd::start(dir.path());
    ok(d.docker(&["load", "-i", archive.to_str().unwrap()]));

    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "berth",
        "busybox:latest",
        "sh",
        "-c",
        "echo hi from $(hostname); exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("hi from "),
        "{}",
        text(&out)
    );

    let out = d.docker_tty(&[
        "run",
        "--rm",
        "-t",
        "--runtime",
        "berth",
        "busybox:latest",
        "sh",
        "-c",
        "tty; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out)
    );

    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "d1",
        "--runtime",
        "berth",
        "--memory",
        "64m",
        "busybox:latest",
        "sleep",
        "600",
    ]));
    let out = d.docker(&["exec", "d1", "sh", "-c", "echo exec ok; exit 6"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec ok\n");
    let top = ok(d.docker(&["top", "d1"]));
    assert!(top.contains("sleep 600"), "{top}");
    ok(d.docker(&["pause", "d1"]));
    let status = ok(d.docker(&["inspect", "-f", "{{.State.Status}}", "d1"]));
    assert_eq!(status.trim(), "paused");
    ok(d.docker(&["unpause", "d1"]));
    ok(d.docker(&["update", "--memory", "128m", "--memory-swap", "256m", "d1"]));
    ok(d.docker(&["rm", "-f", "d1"]));

    // What berth-runtime cannot do is refused by the spec field's name,
    // which the user sees through docker.
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "berth",
        "--kernel-memory",
        "64m",
        "busybox:latest",
        "true",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("linux.resources.memory.kernel"),
        "{}",
        text(&out)
    );
    ok(d.docker(&["container", "prune", "-f"]));
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
}

/// podman with its own root, runroot and tmpdir (cgroupfs, vfs, no event
/// log), berth-runtime as its runtime.
fn podman(dir: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args([
            "--cgroup-manager",
            "cgroupfs",
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
            "--runtime",
            RUNTIME,
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn podman_runs_containers_with_berth_runtime() {
    let dir = tempfile::Builder::new()
        .prefix("bp-")
        .tempdir_in("/tmp")
        .unwrap();
    let archive = busybox_archive(dir.path(), "oci");
    ok(podman(
        dir.path(),
        &["load", "-i", archive.to_str().unwrap()],
    ));
    // podman asks for RLIMIT_NOFILE/NPROC 1048576 by default; raising a
    // hard limit needs CAP_SYS_RESOURCE, which root lacks on these
    // machines (runc fails the same way): limits below the host's are given.
    let limits = [
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(limits);
        args.extend(extra);
        podman(dir.path(), &args)
    };
    ok(run(&["docker.io/library/busybox:latest", "true"]));
    let out = run(&[
        "docker.io/library/busybox:latest",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    // A terminal: conmon's console socket gets the pty's master.
    let mut line = format!(
        "podman --root {d}/root --runroot {d}/run --tmpdir {d}/tmp --cgroup-manager cgroupfs \
         --storage-driver vfs --events-backend none --runtime {RUNTIME} run --rm -t",
        d = dir.path().display()
    );
    for a in limits {
        line.push(' ');
        line.push_str(a);
    }
    line.push_str(" docker.io/library/busybox:latest sh -c 'tty; exit 4'");
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out)
    );

    let mut args = vec!["run", "-d", "--name", "p1"];
    args.extend(limits);
    args.extend(["docker.io/library/busybox:latest", "sleep", "600"]);
    ok(podman(dir.path(), &args));
    let out = podman(dir.path(), &["exec", "p1", "sh", "-c", "echo ex; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ex\n");
    ok(podman(dir.path(), &["rm", "-f", "-t", "0", "p1"]));
    assert_eq!(ok(podman(dir.path(), &["ps", "-aq"])), "");
}
