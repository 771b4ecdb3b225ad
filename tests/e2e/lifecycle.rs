//! Detached containers and their monitor: run -d, ps, logs, stop, start,
//! restart, kill, wait, pause, rename, attach, restart policies, and the
//! refusals the state machine makes.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{eventually, wait_timeout, Env};

fn alive(pid: i32) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn status(env: &Env, c: &str) -> String {
    env.inspect(c, "{{.State.Status}}")
}

/// A counter that prints one line every 50 ms.
const TICKER: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done";

#[test]
fn detached_container_logs_stop_and_remove() {
    let env = Env::new();
    let r = env.berth(&["run", "-d", "--name", "web", "busybox", "sh", "-c", TICKER]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{r:?}"
    );

    // From the host: the container's init runs, owned by a monitor that is
    // not the (exited) CLI.
    let pid: i32 = env.inspect("web", "{{.State.Pid}}").parse().unwrap();
    assert!(alive(pid));
    assert_eq!(status(&env, "web"), "running");
    let ps = env.berth(&["ps"]);
    let header = ps.stdout.lines().next().unwrap().to_string();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{ps:?}");
    }
    assert!(
        ps.stdout.contains(&id[..12]) && ps.stdout.contains(" Up "),
        "{ps:?}"
    );

    eventually(Duration::from_secs(10), "log lines", || {
        let l = env.berth(&["logs", "web"]);
        (l.stdout.lines().count() >= 5).then_some(())
    });
    let logs = env.berth(&["logs", "web"]).stdout;
    let lines: Vec<&str> = logs.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("tick {i}"));
    }
    let tail = env.berth(&["logs", "--tail", "2", "web"]).stdout;
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let ts = env.berth(&["logs", "-t", "--tail", "1", "web"]).stdout;
    let (time, text) = ts.trim_end().split_once(' ').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{ts}");
    assert!(text.starts_with("tick"), "{ts}");
    assert_eq!(
        env.berth(&["logs", "--since", "1h", "--tail", "1", "web"])
            .stdout
            .lines()
            .count(),
        1
    );
    // docker's json-file lines on disk.
    let log_path = env.inspect("web", "{{.LogPath}}");
    let first = std::fs::read_to_string(&log_path).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(v["log"], "tick 0\n");
    assert_eq!(v["stream"], "stdout");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));

    // `logs -f` follows until the container stops.
    let mut follow = env.spawn(&["logs", "-f", "--tail", "1", "web"]);
    std::thread::sleep(Duration::from_millis(300));
    // sh as PID 1 ignores SIGTERM: SIGKILL after the timeout.
    let r = env.berth(&["stop", "-t", "1", "web"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "web"), "{r:?}");
    assert!(!alive(pid));
    let f = wait_timeout(&mut follow, Duration::from_secs(10));
    assert_eq!(f.code, 0, "{f:?}");
    assert!(f.stdout.lines().count() >= 3, "{f:?}");
    assert_eq!(status(&env, "web"), "exited");
    assert_eq!(env.inspect("web", "{{.State.ExitCode}}"), "137");
    let ps = env.berth(&["ps", "-a"]).stdout;
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(!env.berth(&["ps"]).stdout.contains(&id[..12]));

    let r = env.berth(&["rm", "web"]);
    assert_eq!(r.code, 0, "{r:?}");
    env.assert_clean();
}

#[test]
fn stop_uses_sigterm_first() {
    let env = Env::new();
    let script = "trap 'echo bye; exit 3' TERM; while true; do sleep 0.05; done";
    let r = env.berth(&["run", "-d", "--name", "t", "busybox", "sh", "-c", script]);
    assert_eq!(r.code, 0, "{r:?}");
    let start = std::time::Instant::now();
    let r = env.berth(&["stop", "-t", "10", "t"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "stop waited for the timeout"
    );
    assert_eq!(env.inspect("t", "{{.State.ExitCode}}"), "3");
    assert_eq!(env.berth(&["logs", "t"]).stdout, "bye\n");
    // --stop-signal is used by stop.
    let script = "trap 'echo usr1; exit 4' USR1; while true; do sleep 0.05; done";
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "u",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    env.berth(&["stop", "u"]);
    assert_eq!(env.inspect("u", "{{.State.ExitCode}}"), "4");
    env.berth(&["rm", "t", "u"]);
    env.assert_clean();
}

#[test]
fn container_outlives_a_killed_cli() {
    let env = Env::new();
    let mut cli = env.spawn(&["run", "--name", "fg", "busybox", "sh", "-c", TICKER]);
    let pid: i32 = eventually(Duration::from_secs(10), "the container to run", || {
        let r = env.berth(&["inspect", "--format", "{{.State.Pid}}", "fg"]);
        r.stdout.trim().parse().ok().filter(|p| *p > 0)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(cli.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = cli.wait();
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid), "the container died with its CLI");
    assert_eq!(status(&env, "fg"), "running");
    // Its output still goes to the log.
    let before = env.berth(&["logs", "fg"]).stdout.lines().count();
    eventually(Duration::from_secs(10), "more log lines", || {
        (env.berth(&["logs", "fg"]).stdout.lines().count() > before).then_some(())
    });
    let r = env.berth(&["rm", "-f", "fg"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!alive(pid));
    env.assert_clean();
}

#[test]
fn refusals_change_nothing() {
    let env = Env::new();
    assert_eq!(
        env.berth(&["run", "-d", "--name", "web", "busybox", "sleep", "100"])
            .code,
        0
    );
    assert_eq!(
        env.berth(&["create", "--name", "idle", "busybox", "true"])
            .code,
        0
    );
    let before = env.berth(&["ps", "-a", "--no-trunc"]).stdout;
    let pid = env.inspect("web", "{{.State.Pid}}");

    let cases: &[(&[&str], &str)] = &[
        (&["start", "web"], "already running"),
        (&["pause", "idle"], "is not running"),
        (&["unpause", "web"], "is not paused"),
        (&["kill", "idle"], "is not running"),
        (
            &["rm", "web"],
            "stop the container before removing or force remove",
        ),
        (&["rename", "idle", "web"], "already in use"),
        (&["logs", "nosuch"], "No such container: nosuch"),
    ];
    for (args, message) in cases {
        let r = env.berth(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(message), "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:?}");
    }
    let r = env.berth(&["run", "-d", "--name", "web", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("is already in use"), "{r:?}");
    let r = env.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert_eq!(env.berth(&["ps", "-a", "--no-trunc"]).stdout, before);
    assert_eq!(env.inspect("web", "{{.State.Pid}}"), pid);

    // Unique ID prefixes work everywhere.
    let id = env.inspect("idle", "{{.Id}}");
    let r = env.berth(&["rename", &id[..10], "idle2"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.inspect(&id[..8], "{{.Name}}"), "/idle2");
    assert_eq!(env.berth(&["rm", "-f", "web", "idle2"]).code, 0);
    env.assert_clean();
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let env = Env::new();
    assert_eq!(
        env.berth(&["run", "-d", "--name", "p", "busybox", "sh", "-c", TICKER])
            .code,
        0
    );
    let id = env.inspect("p", "{{.Id}}");
    let r = env.berth(&["pause", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(status(&env, "p"), "paused");
    assert_eq!(env.inspect("p", "{{.State.Paused}}"), "true");
    // The freezer says so, from the host.
    let frozen = env
        .cgroup_dirs()
        .into_iter()
        .filter(|d| d.ends_with(&id))
        .any(|d| {
            std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
                || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        });
    assert!(frozen, "no frozen cgroup for {id}");
    assert!(env.berth(&["ps"]).stdout.contains("(Paused)"));
    std::thread::sleep(Duration::from_millis(200));
    let n = env.berth(&["logs", "p"]).stdout.lines().count();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        env.berth(&["logs", "p"]).stdout.lines().count(),
        n,
        "output while paused"
    );
    assert_eq!(env.berth(&["pause", "p"]).code, 1);
    assert_eq!(env.berth(&["unpause", "p"]).code, 0);
    eventually(Duration::from_secs(10), "output after unpause", || {
        (env.berth(&["logs", "p"]).stdout.lines().count() > n).then_some(())
    });
    // Stopping a paused container works too.
    assert_eq!(env.berth(&["pause", "p"]).code, 0);
    let r = env.berth(&["stop", "-t", "1", "p"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(status(&env, "p"), "exited");
    env.berth(&["rm", "p"]);
    env.assert_clean();
}

#[test]
fn create_start_wait_restart_kill() {
    let env = Env::new();
    let r = env.berth(&[
        "create",
        "--name",
        "c",
        "busybox",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim().len(), 64);
    assert_eq!(status(&env, "c"), "created");
    assert!(env.berth(&["ps", "-a"]).stdout.contains("Created"));
    let r = env.berth(&["start", "-a", "c"]);
    assert_eq!((r.code, r.stdout.as_str()), (7, "hi\n"), "{r:?}");
    let r = env.berth(&["start", "c"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "c"), "{r:?}");
    let r = env.berth(&["wait", "c"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "7"), "{r:?}");
    assert_eq!(env.berth(&["logs", "c"]).stdout, "hi\nhi\n");
    let r = env.berth(&[
        "ps",
        "-a",
        "-q",
        "--no-trunc",
        "--filter",
        "exited=7",
        "--filter",
        "name=c",
    ]);
    assert_eq!(r.stdout.trim(), env.inspect("c", "{{.Id}}"));

    // kill -s delivers the signal; restart gives a new process.
    let script = "trap 'echo got HUP' HUP; while true; do sleep 0.05; done";
    assert_eq!(
        env.berth(&["run", "-d", "--name", "k", "busybox", "sh", "-c", script])
            .code,
        0
    );
    let pid1 = env.inspect("k", "{{.State.Pid}}");
    assert_eq!(env.berth(&["kill", "-s", "HUP", "k"]).code, 0);
    eventually(Duration::from_secs(10), "the HUP trap", || {
        env.berth(&["logs", "k"])
            .stdout
            .contains("got HUP")
            .then_some(())
    });
    let r = env.berth(&["restart", "-t", "1", "k"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "k"), "{r:?}");
    assert_eq!(status(&env, "k"), "running");
    assert_ne!(env.inspect("k", "{{.State.Pid}}"), pid1);
    // wait blocks until the container ends.
    let mut waiter = env.spawn(&["wait", "k"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(waiter.try_wait().unwrap().is_none());
    assert_eq!(env.berth(&["kill", "k"]).code, 0);
    let w = wait_timeout(&mut waiter, Duration::from_secs(10));
    assert_eq!(w.stdout.trim(), "137", "{w:?}");
    let r = env.berth(&[
        "ps",
        "-a",
        "--filter",
        "status=exited",
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["c exited", "k exited"], "{r:?}");
    let r = env.berth(&["container", "prune", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    env.assert_clean();
}

#[test]
fn restart_policy_on_failure() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "rf",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    eventually(Duration::from_secs(20), "three restarts", || {
        let s = env.inspect("rf", "{{.State.Status}} {{.RestartCount}}");
        (s == "exited 3").then_some(())
    });
    assert_eq!(env.berth(&["logs", "rf"]).stdout, "run\nrun\nrun\nrun\n");
    assert_eq!(
        env.inspect(
            "rf",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure 3"
    );
    // always: restarted after a clean exit too, until stopped.
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "al",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 0.2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    eventually(Duration::from_secs(20), "a restart", || {
        (env.inspect("al", "{{.RestartCount}}") != "0").then_some(())
    });
    let r = env.berth(&["stop", "-t", "1", "al"]);
    assert_eq!(r.code, 0, "{r:?}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(status(&env, "al"), "exited");
    assert_eq!(env.berth(&["rm", "rf", "al"]).code, 0);
    env.assert_clean();
}

#[test]
fn logs_rotate() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 400 ]; do echo line $i; i=$((i+1)); done",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.berth(&["wait", "chatty"]).stdout.trim(), "0");
    let path = env.inspect("chatty", "{{.LogPath}}");
    for f in [path.clone(), format!("{path}.1"), format!("{path}.2")] {
        let len = std::fs::metadata(&f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .len();
        assert!(len <= 2048, "{f} has {len} bytes");
    }
    assert!(!std::path::Path::new(&format!("{path}.3")).exists());
    // `logs` reads across the rotated files: the newest lines, in order.
    let out = env.berth(&["logs", "chatty"]).stdout;
    let nums: Vec<u32> = out.lines().map(|l| l[5..].parse().unwrap()).collect();
    assert_eq!(*nums.last().unwrap(), 400);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{out}");
    assert!(nums.len() > 40 && nums[0] > 1, "{nums:?}");
    env.berth(&["rm", "chatty"]);
    env.assert_clean();
}

#[test]
fn attach_and_interactive_stdin() {
    let env = Env::new();
    // run -i: our stdin reaches the container, its end closes the container's.
    let mut c = env.command(&["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let r = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "one\ntwo\ndone\n"),
        "{r:?}"
    );

    // attach to a detached -i container.
    let r = env.berth(&[
        "run",
        "-d",
        "-i",
        "--name",
        "cat",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got $l; done; exit 5",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut child = env
        .command(&["attach", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x\ny\n").unwrap();
    let r = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!((r.code, r.stdout.as_str()), (5, "got x\ngot y\n"), "{r:?}");
    assert_eq!(env.inspect("cat", "{{.State.ExitCode}}"), "5");
    let r = env.berth(&["attach", "cat"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("You cannot attach to a stopped container"),
        "{r:?}"
    );
    env.berth(&["rm", "cat"]);
    env.assert_clean();
}

#[test]
fn concurrent_detached_runs() {
    let env = Env::new();
    let children: Vec<_> = (0..20)
        .map(|i| {
            env.command(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "busybox",
                "sleep",
                "60",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for mut c in children {
        let r = wait_timeout(&mut c, Duration::from_secs(60));
        assert_eq!(r.code, 0, "{r:?}");
        ids.push(r.stdout.trim().to_string());
    }
    let listed = env.berth(&["ps", "-q", "--no-trunc"]).stdout;
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    let names = env.berth(&["ps", "--format", "{{.Names}}"]).stdout;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    // One name, five racing runs: exactly one wins.
    let racers: Vec<_> = (0..5)
        .map(|_| {
            env.command(&["run", "-d", "--name", "same", "busybox", "sleep", "60"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let won = racers
        .into_iter()
        .map(|mut c| wait_timeout(&mut c, Duration::from_secs(60)).code)
        .filter(|c| *c == 0)
        .count();
    assert_eq!(won, 1);
    let mut args = vec!["rm", "-f", "same"];
    args.extend(ids.iter().map(String::as_str));
    let r = env.berth(&args);
    assert_eq!(r.code, 0, "{r:?}");
    env.assert_clean();
}

#[test]
fn store_survives_kill_9() {
    let env = Env::new();
    assert_eq!(
        env.berth(&["run", "-d", "--name", "keep", "busybox", "sleep", "60"])
            .code,
        0
    );
    // Commands killed at every point of their writes.
    for i in 0..30u64 {
        let mut c = env
            .command(&["run", "-d", "busybox", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(i % 10 * 3));
        let _ = c.kill();
        let _ = c.wait();
        let mut r = env
            .command(&["rename", "keep", if i % 2 == 0 { "keep2" } else { "keep" }])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(i % 7));
        let _ = r.kill();
        let _ = r.wait();
    }
    let ps = env.berth(&["ps", "-a", "-q", "--no-trunc"]);
    assert_eq!(ps.code, 0, "{ps:?}");
    for id in ps.stdout.lines() {
        let r = env.berth(&["inspect", id]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let name = env
        .berth(&["ps", "--filter", "status=running", "--format", "{{.Names}}"])
        .stdout;
    assert!(name.lines().any(|n| n == "keep" || n == "keep2"), "{name}");
    let ids: Vec<&str> = ps.stdout.lines().collect();
    let mut args = vec!["rm", "-f"];
    args.extend(ids);
    let r = env.berth(&args);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn monitor_memory() {
    let env = Env::new();
    assert_eq!(
        env.berth(&["run", "-d", "--name", "m", "busybox", "sleep", "60"])
            .code,
        0
    );
    let id = env.inspect("m", "{{.Id}}");
    let rec = std::fs::read_to_string(env.root.join("containers").join(&id).join("container.json"))
        .unwrap();
    let rec: serde_json::Value = serde_json::from_str(&rec).unwrap();
    let monitor = rec["state"]["monitor_pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).unwrap();
    let rss: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("Rss"))
        .collect();
    let threads = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    eprintln!("monitor {monitor}: {rss:?} {threads}");
    assert_eq!(
        threads.split_whitespace().nth(1),
        Some("1"),
        "the monitor must stay single-threaded"
    );
    env.berth(&["rm", "-f", "m"]);
    env.assert_clean();
}

#[test]
fn exec_joins_the_running_container() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "FROM_RUN=yes",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let init: i32 = env.inspect("web", "{{.State.Pid}}").parse().unwrap();

    let r = env.berth(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "web",
        "sh",
        "-c",
        "echo $X $FROM_RUN; pwd; id",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "1 yes\n/tmp\nuid=65534(nobody) gid=65534(nogroup)\n"),
        "{r:?}"
    );
    assert_eq!(env.berth(&["exec", "web", "sh", "-c", "exit 5"]).code, 5);
    let r = env.berth(&["exec", "web", "nosuchcommand"]);
    assert_eq!(r.code, 127, "{r:?}");

    // Same namespaces as the init (seen from the host), same cgroup, the
    // container's capabilities and no_new_privs.
    let mut child = env
        .command(&[
            "exec",
            "web",
            "sh",
            "-c",
            "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; echo $$; exec sleep 30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut out, &mut l).unwrap();
        lines.push(l.trim().to_string());
    }
    assert_eq!(lines[0], "CapEff:\t00000000a80425fb", "{lines:?}");
    assert_eq!(lines[1], "CapBnd:\t00000000a80425fb", "{lines:?}");
    assert_eq!(lines[2], "NoNewPrivs:\t0", "{lines:?}");
    let inner_pid: i32 = lines[3].parse().unwrap();
    assert!(
        inner_pid > 1 && inner_pid < 100,
        "pid in the container's namespace: {inner_pid}"
    );
    // The exec'd process is the container's monitor's child (the init's
    // parent's), never the CLI's.
    let cli = child.id();
    let cli_children = std::fs::read_to_string(format!("/proc/{cli}/task/{cli}/children")).unwrap();
    assert_eq!(cli_children.trim(), "", "the CLI has children");
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let monitor: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let host_pid: i32 = std::fs::read_to_string(format!("/proc/{monitor}/task/{monitor}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .find(|p: &i32| *p != init)
        .expect("the exec'd process");
    for ns in ["pid", "mnt", "net", "uts", "ipc", "cgroup"] {
        let a = std::fs::read_link(format!("/proc/{host_pid}/ns/{ns}")).unwrap();
        let b = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(a, b, "{ns} namespace differs");
    }
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(host_pid), cg(init));
    // The exec'd process is killed with the container.
    let _ = env.berth(&["stop", "-t", "0", "web"]);
    let r = wait_timeout(&mut child, Duration::from_secs(10));
    assert_ne!(r.code, 0);

    let r = env.berth(&["exec", "web", "true"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is not running"), "{r:?}");
    env.berth(&["start", "web"]);
    let r = env.berth(&["exec", "-t", "web", "tty"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("/dev/pts/"), "{r:?}");
    let r = env.berth(&["exec", "-d", "web", "sh", "-c", "echo bg > /tmp/bg"]);
    assert_eq!(r.code, 0, "{r:?}");
    eventually(Duration::from_secs(5), "the detached exec", || {
        (env.berth(&["exec", "web", "cat", "/tmp/bg"]).stdout == "bg\n").then_some(())
    });
    assert_eq!(env.berth(&["rm", "-f", "web"]).code, 0);
    env.assert_clean();
}

#[test]
fn top_and_stats_read_the_container() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "sleep 60 & while true; do :; done",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let init = env.inspect("busy", "{{.State.Pid}}");
    let top = eventually(Duration::from_secs(5), "two processes in top", || {
        let t = env.berth(&["top", "busy"]);
        (t.stdout.lines().count() == 3).then_some(t)
    });
    assert!(
        top.stdout.lines().next().unwrap().contains("PID"),
        "{top:?}"
    );
    assert!(top.stdout.contains("sleep 60"), "{top:?}");
    assert!(
        top.stdout
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(init.as_str())),
        "{top:?}"
    );
    let r = env.berth(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
        "busy",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let f: Vec<&str> = r.stdout.trim().split('|').collect();
    assert_eq!(f[0], "busy");
    // A busy loop: well above zero CPU (one core is 100%).
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 20.0, "{r:?}");
    // docker's binary units: -m 64m is 64MiB.
    assert!(f[2].ends_with("/ 64MiB"), "{r:?}");
    assert_eq!(f[3], "2", "{r:?}");
    let r = env.berth(&["stats", "--no-stream", "busy"]);
    assert!(r.stdout.starts_with("CONTAINER ID"), "{r:?}");
    assert_eq!(env.berth(&["rm", "-f", "busy"]).code, 0);
    env.assert_clean();
}

#[test]
fn cp_stays_inside_the_container() {
    let env = Env::new();
    let r = env.berth(&["run", "-d", "--name", "web", "busybox", "sh", "-c", "mkdir -p /data/sub; echo deep > /data/sub/f; ln -s / /up; ln -s /etc/hostname /data/link; sleep 60"]);
    assert_eq!(r.code, 0, "{r:?}");
    let short = env.inspect("web", "{{.Id}}")[..12].to_string();
    eventually(Duration::from_secs(5), "the setup", || {
        (env.berth(&["exec", "web", "test", "-L", "/data/link"]).code == 0).then_some(())
    });
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    // Out of a running container: a file into a directory, a whole tree.
    let r = env.berth(&["cp", "web:/etc/hostname", h.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(h.join("hostname")).unwrap(),
        format!("{short}\n")
    );
    let r = env.berth(&["cp", "web:/data", h.join("data").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(h.join("data/sub/f")).unwrap(),
        "deep\n"
    );
    assert!(std::fs::symlink_metadata(h.join("data/link"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Through a link to "/": still the container's /etc/hostname, not the host's.
    let r = env.berth(&[
        "cp",
        "web:/up/etc/hostname",
        h.join("via-link").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(h.join("via-link")).unwrap(),
        format!("{short}\n")
    );
    // Into the container, also through the link; the host's /tmp is untouched.
    let marker = format!("berth-cp-{}", std::process::id());
    let file = h.join(&marker);
    std::fs::write(&file, "from host\n").unwrap();
    let r = env.berth(&["cp", file.to_str().unwrap(), "web:/up/tmp/"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    let r = env.berth(&["exec", "web", "cat", &format!("/tmp/{marker}")]);
    assert_eq!(r.stdout, "from host\n", "{r:?}");
    let r = env.berth(&["cp", "web:/nonexistent", h.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    // A stopped container: its filesystem is mounted privately for the copy.
    assert_eq!(env.berth(&["stop", "-t", "0", "web"]).code, 0);
    let r = env.berth(&["cp", "web:/data/sub/f", h.join("stopped").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(h.join("stopped")).unwrap(),
        "deep\n"
    );
    let r = env.berth(&["cp", file.to_str().unwrap(), "web:/data/copied"]);
    assert_eq!(r.code, 0, "{r:?}");
    env.berth(&["start", "web"]);
    let r = env.berth(&["exec", "web", "cat", "/data/copied"]);
    assert_eq!(r.stdout, "from host\n", "{r:?}");
    assert_eq!(env.berth(&["rm", "-f", "web"]).code, 0);
    env.assert_clean();
}
