//! `berth daemon` driven by the docker CLI (28, at /usr/local/bin/docker or
//! Debian's), as a docker user drives dockerd.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{eventually, wait_timeout, Env, Run};

/// A daemon on its own socket, stopped (SIGTERM) when dropped.
pub struct Daemon {
    child: Child,
    pub socket: PathBuf,
}

impl Daemon {
    pub fn start(env: &Env) -> Daemon {
        Daemon::start_with(env, &[])
    }

    /// A daemon with more options (another `-H`, TLS).
    pub fn start_with(env: &Env, extra: &[&str]) -> Daemon {
        Daemon::start_on(env, env.runroot.join("api.sock"), extra)
    }

    /// A daemon on the unix socket `socket`, with more options.
    pub fn start_on(env: &Env, socket: PathBuf, extra: &[&str]) -> Daemon {
        Daemon::launch(env, socket, &[], extra)
    }

    /// A daemon started as `berth [global...] daemon`.
    pub fn start_global(env: &Env, global: &[&str]) -> Daemon {
        Daemon::launch(env, env.runroot.join("api.sock"), global, &[])
    }

    /// `berth [global...] daemon -H unix://SOCKET [extra...]`, once it answers.
    fn launch(env: &Env, socket: PathBuf, global: &[&str], extra: &[&str]) -> Daemon {
        let host = format!("unix://{}", socket.display());
        let mut args = global.to_vec();
        args.extend(["daemon", "-H", &host]);
        args.extend(extra);
        let child = env
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { child, socket };
        eventually(Duration::from_secs(10), "the daemon's socket", || {
            (d.docker(&["version", "--format", "{{.Server.Version}}"])
                .code
                == 0)
                .then_some(())
        });
        d
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_cli());
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.socket.with_extension("docker-config"));
        c
    }

    /// `docker args...` from directory `dir`, as a user types it there
    /// (the classic builder: `DOCKER_BUILDKIT=0`).
    pub fn docker_in(&self, dir: &std::path::Path, args: &[&str]) -> Run {
        let mut child = self
            .command(args)
            .current_dir(dir)
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_timeout(&mut child, Duration::from_secs(60))
    }

    pub fn docker(&self, args: &[&str]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_timeout(&mut child, Duration::from_secs(30))
    }

    /// The daemon's open file descriptors (sockets to clients and monitors).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let r = wait_timeout(&mut self.child, Duration::from_secs(10));
        assert_eq!(r.code, 0, "the daemon's exit: {r:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_cli() -> &'static str {
    if std::path::Path::new("/usr/local/bin/docker").exists() {
        "/usr/local/bin/docker"
    } else {
        "docker"
    }
}

pub fn ok(r: Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

#[test]
fn the_docker_cli_drives_berth_daemon() {
    let env = Env::new();
    let d = Daemon::start(&env);
    // The socket is root's, 0660.
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let version = ok(d.docker(&["version"]));
    assert!(version.contains("Server: Berth Engine"), "{version}");
    let api = ok(d.docker(&["version", "--format", "{{.Server.APIVersion}}"]));
    assert_eq!(api.trim(), "1.47");
    let info = ok(d.docker(&["info", "--format", "{{.Driver}} {{.Images}}"]));
    assert_eq!(info.trim(), "overlay2 1");
    // run, attached: output, exit codes, --rm.
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"])),
        "hi\n"
    );
    let r = d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "fail",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    assert!(ok(d.docker(&["ps", "-a"])).contains("Exited (3)"));
    ok(d.docker(&["rm", "fail"]));
    // run -d, ps, exec, logs, top, stop, rm.
    let id = ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 100",
    ]));
    let ps = ok(d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.starts_with("web Up"), "{ps}");
    // The daemonless CLI sees the same container.
    let here = ok(env.berth(&["ps", "-q", "--no-trunc"]));
    assert_eq!(here.trim(), id.trim());
    let r = d.docker(&["exec", "web", "sh", "-c", "echo in exec; exit 4"]);
    assert_eq!((r.code, r.stdout.as_str()), (4, "in exec\n"));
    let mut cat = d
        .command(&["exec", "-i", "web", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    assert_eq!(
        wait_timeout(&mut cat, Duration::from_secs(20)).stdout,
        "piped\n"
    );
    eventually(Duration::from_secs(10), "the log line", || {
        (d.docker(&["logs", "web"]).stdout == "started\n").then_some(())
    });
    let top = ok(d.docker(&["top", "web"]));
    assert!(top.contains("sleep 100"), "{top}");
    // docker cp, both ways, typed in a working directory.
    let work = env.workdir();
    let cp = |args: &[&str]| {
        let mut c = d.command(args);
        c.current_dir(&work).stdin(Stdio::null());
        let out = c.output().unwrap();
        Run::from(out)
    };
    ok(cp(&["cp", "web:/etc/hostname", "."]));
    assert_eq!(
        std::fs::read_to_string(work.join("hostname"))
            .unwrap()
            .trim(),
        &id.trim()[..12]
    );
    std::fs::write(work.join("local.txt"), "from the host\n").unwrap();
    ok(cp(&["cp", "./local.txt", "web:/tmp/"]));
    assert_eq!(
        ok(d.docker(&["exec", "web", "cat", "/tmp/local.txt"])),
        "from the host\n"
    );
    let r = cp(&["cp", "web:/nonexistent", "."]);
    assert_ne!(r.code, 0, "{r:?}");
    let stats = ok(d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "web",
    ]));
    let fields: Vec<&str> = stats.split_whitespace().collect();
    // sh runs its last command in its own place: one process.
    assert_eq!(&fields[..2], ["web", "1"], "{stats}");
    assert!(stats.contains(" / "), "{stats}");
    ok(d.docker(&["stop", "-t", "1", "web"]));
    assert!(ok(d.docker(&["inspect", "-f", "{{.State.Status}}", "web"])).contains("exited"));
    ok(d.docker(&["rm", "web"]));
    // Errors come back as docker's.
    let r = d.docker(&["rm", "nosuch"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("No such container: nosuch"), "{r:?}");
    d.stop();
    assert!(!PathBuf::from(&env.runroot.join("api.sock")).exists());
    env.assert_clean();
}

#[test]
fn docker_volumes_and_networks() {
    let env = Env::new();
    let d = Daemon::start(&env);
    ok(d.docker(&["volume", "create", "data"]));
    assert!(ok(d.docker(&["volume", "ls", "-q"]))
        .lines()
        .any(|l| l == "data"));
    let mp = ok(d.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]));
    assert!(mp.trim().ends_with("/volumes/data/_data"), "{mp}");
    assert_eq!(
        ok(d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "data:/d",
            "busybox",
            "sh",
            "-c",
            "echo kept > /d/f; cat /d/f",
        ])),
        "kept\n"
    );
    // The daemonless CLI sees the volume and its content.
    assert!(ok(env.berth(&["volume", "ls", "-q"])).contains("data"));
    // system df counts what the volume holds, and -v shows it by volume.
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "head -c 1048576 /dev/zero > /d/mib; sleep 60",
    ]));
    eventually(Duration::from_secs(20), "the volume filled", || {
        let df = ok(d.docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}",
        ]));
        df.lines()
            .any(|l| l.starts_with("Local Volumes 1 1 1.049MB"))
            .then_some(())
    });
    let verbose = ok(d.docker(&["system", "df", "-v"]));
    let row = verbose
        .lines()
        .skip_while(|l| !l.starts_with("Local Volumes space usage"))
        .find(|l| l.starts_with("data "))
        .unwrap_or_default();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["data", "1", "1.049MB"],
        "{verbose}"
    );
    ok(d.docker(&["rm", "-f", "user"]));
    ok(d.docker(&["volume", "rm", "data"]));
    let r = d.docker(&["volume", "inspect", "data"]);
    assert_ne!(r.code, 0, "{r:?}");
    ok(d.docker(&["network", "create", "--subnet", "10.231.7.0/24", "appnet"]));
    let subnet = ok(d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        "appnet",
    ]));
    assert_eq!(subnet.trim(), "10.231.7.0/24");
    assert!(ok(d.docker(&["network", "ls", "--format", "{{.Name}}"])).contains("appnet"));
    ok(d.docker(&["network", "rm", "appnet"]));
    assert!(!ok(d.docker(&["network", "ls", "--format", "{{.Name}}"])).contains("appnet"));
    d.stop();
    env.assert_clean();
}

#[test]
fn docker_pulls_tags_and_removes_images() {
    let reg = crate::distribution::DockerRegistry::start(None);
    let env = Env::new();
    let d = Daemon::start(&env);
    let v1 = format!("{}/me/bb:v1", reg.addr);
    let v2 = format!("{}/me/bb:v2", reg.addr);
    ok(d.docker(&["tag", "busybox", &v1]));
    ok(d.docker(&["tag", "busybox", &v2]));
    assert_eq!(env.berth(&["push", &v1]).code, 0);
    assert_eq!(env.berth(&["push", &v2]).code, 0);
    let rmi = ok(d.docker(&["rmi", &v1, &v2]));
    assert!(rmi.contains(&format!("Untagged: {v1}")), "{rmi}");
    d.stop();
    // Another root, empty: docker pull, and docker run pulling what is missing.
    let other = Env::empty();
    let d = Daemon::start(&other);
    let pull = d.docker(&["pull", &v1]);
    assert_eq!(pull.code, 0, "{pull:?}");
    let all = format!("{}{}", pull.stdout, pull.stderr);
    assert!(all.contains(&v1), "{pull:?}");
    let r = d.docker(&["run", "--rm", "--network", "none", &v2, "echo", "pulled"]);
    assert_eq!(r.stdout, "pulled\n", "{r:?}");
    assert!(r.stderr.contains("Unable to find image"), "{r:?}");
    let images = ok(d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(images.contains(&v1) && images.contains(&v2), "{images}");
    d.stop();
    other.assert_clean();
}

#[test]
fn containers_outlive_the_daemon() {
    let env = Env::new();
    let d = Daemon::start(&env);
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "keep",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]));
    d.stop();
    // No daemon: the container runs on, and berth sees it.
    assert_eq!(env.inspect("keep", "{{.State.Status}}"), "running");
    let d = Daemon::start(&env);
    let ps = ok(d.docker(&["ps", "--format", "{{.Names}}"]));
    assert_eq!(ps.trim(), "keep");
    let r = d.docker(&["exec", "keep", "echo", "still here"]);
    assert_eq!(r.stdout, "still here\n", "{r:?}");
    ok(d.docker(&["rm", "-f", "keep"]));
    d.stop();
    env.assert_clean();
}

#[test]
fn docker_run_it_on_a_terminal() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let mut t = crate::tty::on_terminal_cmd(d.command(&[
        "run",
        "-it",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
    ]));
    t.wait_for("/ # ");
    t.master.write_all(b"echo $((6*7)); tty; exit 5\n").unwrap();
    t.wait_for("42");
    let r = wait_timeout(&mut t.child, Duration::from_secs(20));
    assert_eq!(r.code, 5);
    assert!(t.screen.lock().unwrap().contains("/dev/pts/0"));
    drop(t.master);
    let _ = t.reader.join();
    d.stop();
    env.assert_clean();
}

#[test]
fn many_clients_at_once() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let runs: Vec<Child> = (0..20)
        .map(|i| {
            d.command(&[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "echo",
                &format!("n{i}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, mut c) in runs.into_iter().enumerate() {
        let r = wait_timeout(&mut c, Duration::from_secs(60));
        assert_eq!((r.code, r.stdout), (0, format!("n{i}\n")));
    }
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
    d.stop();
    env.assert_clean();
}

#[test]
fn a_client_that_leaves_mid_attach_leaves_nothing() {
    let env = Env::new();
    let d = Daemon::start(&env);
    // What the daemon opens once, at its first container, is not a session's.
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "warm",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]));
    ok(d.docker(&["exec", "warm", "true"]));
    ok(d.docker(&["rm", "-f", "warm"]));
    let before = d.open_fds();
    let spawn = |args: &[&str]| {
        d.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let running = |name: &str| {
        eventually(Duration::from_secs(20), name, || {
            (env.berth(&["inspect", "-f", "{{.State.Status}}", name])
                .stdout
                == "running\n")
                .then_some(())
        })
    };
    // `run --rm -i`: the client dies, the container's stdin ends, it exits
    // and is removed.
    let mut client = spawn(&[
        "run",
        "--rm",
        "-i",
        "--name",
        "cat",
        "--network",
        "none",
        "busybox",
        "cat",
    ]);
    running("cat");
    client.kill().unwrap();
    let _ = client.wait();
    eventually(Duration::from_secs(20), "the --rm container gone", || {
        (env.berth(&["ps", "-aq"]).stdout.is_empty()).then_some(())
    });
    // `attach` and `exec -i` to a long-running container: the container
    // runs on, the exec's process ends with its stdin.
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "long",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]));
    let mut attach = spawn(&["attach", "long"]);
    let mut exec = spawn(&["exec", "-i", "long", "cat"]);
    eventually(Duration::from_secs(20), "the exec's cat", || {
        ok(d.docker(&["top", "long"])).contains("cat").then_some(())
    });
    attach.kill().unwrap();
    exec.kill().unwrap();
    let _ = (attach.wait(), exec.wait());
    eventually(Duration::from_secs(20), "the exec's cat gone", || {
        (!ok(d.docker(&["top", "long"])).contains("cat")).then_some(())
    });
    assert_eq!(env.inspect("long", "{{.State.Status}}"), "running");
    ok(d.docker(&["rm", "-f", "long"]));
    // Nothing of the sessions is left open in the daemon.
    eventually(
        Duration::from_secs(20),
        "the daemon's sockets closed",
        || (d.open_fds() <= before).then_some(()),
    );
    d.stop();
    env.assert_clean();
}

/// docker-py from scripts/setup.sh's virtual environment
/// (`BERTH_TEST_PYTHON`, or the one it makes in `target/test-venv`).
pub fn test_python() -> String {
    if let Ok(p) = std::env::var("BERTH_TEST_PYTHON") {
        return p;
    }
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "no docker-py: run the tests with scripts/test.sh (its setup makes a venv with docker-py)"
    );
    venv.to_string_lossy().into_owned()
}

#[test]
fn docker_py_drives_berth_daemon() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/data/docker_py.py");
    let mut child = Command::new(test_python())
        .arg(&script)
        .arg(format!("unix://{}", d.socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = wait_timeout(&mut child, Duration::from_secs(60));
    assert_eq!((r.code, r.stdout.as_str()), (0, "docker-py ok\n"), "{r:?}");
    d.stop();
    env.assert_clean();
}

#[test]
fn tcp_without_tls_is_refused() {
    let env = Env::new();
    let r = env.berth(&["daemon", "-H", "tcp://127.0.0.1:2375"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("tcp:// needs TLS"), "{r:?}");
    // A group cannot reach a socket in the private state directories.
    let private = format!("unix://{}/group.sock", env.runroot.display());
    let r = env.berth(&["daemon", "-H", &private, "-G", "0"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is private"), "{r:?}");
}

#[test]
fn docker_run_options_reach_the_container_through_the_api() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let out = ok(d.docker(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "--sysctl",
        "net.core.somaxconn=77",
        "--shm-size",
        "128m",
        "--group-add",
        "4242",
        "--dns-search",
        "corp.example",
        "--domainname",
        "corp.example",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; cat /proc/sys/net/core/somaxconn; df -k /dev/shm | tail -1 | awk '{print $2}'; id -G; grep search /etc/resolv.conf; cat /proc/sys/kernel/domainname",
    ]));
    assert_eq!(
        out,
        "1024\n77\n131072\n0 4242\nsearch corp.example\ncorp.example\n"
    );
    ok(d.docker(&[
        "run", "-d", "--name", "web", "-l", "tier=web", "--init", "--expose", "7000", "busybox",
        "sleep", "60",
    ]));
    ok(d.docker(&[
        "run", "-d", "--name", "db", "-l", "tier=db", "busybox", "sleep", "60",
    ]));
    assert_eq!(
        ok(d.docker(&["ps", "--filter", "label=tier=web", "--format", "{{.Names}}"])),
        "web\n"
    );
    assert_eq!(
        ok(d.docker(&["ps", "--filter", "name=^d", "--format", "{{.Names}}"])),
        "db\n"
    );
    assert_eq!(
        ok(d.docker(&[
            "inspect",
            "-f",
            "{{.Config.Labels.tier}} {{.HostConfig.Init}} {{json .Config.ExposedPorts}}",
            "web"
        ])),
        "web true {\"7000/tcp\":{}}\n"
    );
    ok(d.docker(&["update", "--memory", "64m", "--memory-swap", "128m", "web"]));
    assert_eq!(
        ok(d.docker(&["inspect", "-f", "{{.HostConfig.Memory}}", "web"])),
        format!("{}\n", 64 << 20)
    );
    ok(d.docker(&["rm", "-f", "web", "db"]));
    // Seccomp as docker's CLI sends it: the default, unconfined, and a
    // profile file it reads (relative to its working directory).
    let seccomp = |opts: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(opts);
        args.extend([
            "busybox",
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/d",
        ]);
        let out = d
            .command(&args)
            .current_dir(env.workdir())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    assert!(
        seccomp(&[]).starts_with("Seccomp:\t2\n"),
        "{}",
        seccomp(&[])
    );
    assert!(seccomp(&["--security-opt", "seccomp=unconfined"]).starts_with("Seccomp:\t0\n"));
    std::fs::write(
        env.workdir().join("no-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let out = seccomp(&["--security-opt", "seccomp=no-mkdir.json"]);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(ok(d.docker(&["info", "--format", "{{.SecurityOptions}}"]))
        .contains("name=seccomp,profile=builtin"));
    // Health checks: ps shows the status, and its change is an event.
    let since = chrono::Utc::now().timestamp().to_string();
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "60",
    ]));
    eventually(Duration::from_secs(20), "healthy", || {
        ok(d.docker(&["ps", "--format", "{{.Status}}", "--filter", "name=hc"]))
            .contains("(healthy)")
            .then_some(())
    });
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let events = ok(d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=hc",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]));
    assert!(events.contains("health_status: healthy"), "{events}");
    ok(d.docker(&["rm", "-f", "hc"]));
    d.stop();
    env.assert_clean();
}
