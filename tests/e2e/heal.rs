//! A store that heals: a reader that goes away, damaged records and blobs,
//! and hostile bytes in error text never leave the user stuck.

use std::process::Stdio;
use std::time::Duration;

use crate::common::Env;

/// Runs `berth args` with its stdout's reader closed before it writes: the
/// command ends quietly (docker's CLI dies of the SIGPIPE), no panic, no
/// error text.
fn reader_gone(env: &Env, args: &[&str]) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = env
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{args:?}: {:?}",
        out.status
    );
}

#[test]
fn a_reader_that_closes_early_ends_the_output() {
    let env = Env::new();
    let r = env.berth(&["create", "--name", "k", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    reader_gone(&env, &["ps", "-a", "--format", "{{.Names}}"]);
    reader_gone(&env, &["ps", "-a"]);
    reader_gone(&env, &["images"]);
    reader_gone(&env, &["images", "-q"]);
    reader_gone(&env, &["inspect", "busybox"]);
    reader_gone(&env, &["system", "df"]);
    reader_gone(&env, &["version"]);
    reader_gone(&env, &["history", "busybox"]);
    // As a user types it.
    let dir = env.workdir();
    let line = format!(
        "{} --root {} --runroot {} ps -a --format '{{{{.Names}}}}' | grep -q k; \
         echo status=${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_berth"),
        env.root.display(),
        env.runroot.display()
    );
    for _ in 0..20 {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&line)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{stderr}");
        assert!(
            stdout.trim() == "status=0" || stdout.trim() == "status=141",
            "{stdout}"
        );
    }
    assert_eq!(env.berth(&["rm", "k"]).code, 0);
}

#[test]
fn error_text_is_escaped_said_once_and_checked() {
    let env = Env::new();
    let dir = env.workdir();
    let hostile: Vec<u8> = b"hello\x1b[31m\x07world\x1b]0;owned\x07".repeat(60);
    std::fs::write(dir.join("notes.txt"), &hostile).unwrap();
    for args in [
        &["import", "notes.txt"][..],
        &["load", "-i", "notes.txt"][..],
    ] {
        let r = env.berth_in(&dir, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            !r.stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: control characters reach the terminal: {:?}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    }
    let r = env.berth_in(&dir, &["load", "-i", "missing.tar"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.matches("No such file or directory").count(),
        1,
        "{r:?}"
    );
    let r = env.berth_in(&dir, &["run", "--rm", "-e", "=value", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("invalid environment variable: =value"),
        "{r:?}"
    );
    let r = env.berth_in(
        &dir,
        &[
            "run",
            "--rm",
            "--hostname",
            "bad host/name",
            "busybox",
            "true",
        ],
    );
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("invalid hostname format: bad host/name"),
        "{r:?}"
    );
    let r = env.berth_in(&dir, &["--log-level", "bogus", "ps"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("Unable to parse logging level: bogus"),
        "{r:?}"
    );
    let r = env.berth_in(&dir, &["--log-level", "WARNING", "ps"]);
    assert_eq!(r.code, 0, "{r:?}");
    env.assert_clean();
}

/// Flips one byte of a file in the store, as a failing disk would.
fn flip_byte(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

fn image_blob(env: &Env, image: &str) -> std::path::PathBuf {
    let id = env.inspect(image, "{{.Id}}");
    let hex = id.trim().strip_prefix("sha256:").unwrap().to_string();
    env.root.join("image/blobs/sha256").join(hex)
}

#[test]
fn an_image_with_a_damaged_config_is_listed_and_removable() {
    let env = Env::new();
    env.image_from("touch /other", &[], "other");
    let blob = image_blob(&env, "busybox");
    let id = env.inspect("busybox", "{{.Id}}");
    let short = &id.trim()["sha256:".len()..][..12];
    flip_byte(&blob, 10);

    // Listings work around it, and a warning names the file.
    let r = env.berth(&["images"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("busybox") && r.stdout.contains("other"),
        "{r:?}"
    );
    assert!(r.stderr.contains(&blob.display().to_string()), "{r:?}");
    let r = env.berth(&["system", "df"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The other images still run; the damaged one does not.
    let r = env.berth(&["run", "--rm", "other", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["run", "--rm", "busybox", "true"]);
    assert_ne!(r.code, 0, "{r:?}");

    // It is removed by name and by id.
    let r = env.berth(&["tag", "other", "spare"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["rmi", "-f", short]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("busybox"), "{r:?}");
    assert!(r.stderr.is_empty(), "{r:?}");

    // And by a prune.
    let blob = image_blob(&env, "other");
    flip_byte(&blob, 3);
    let r = env.berth(&["image", "prune", "-a", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["images", "-q"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    env.assert_clean();
}

fn record_path(env: &Env, id: &str) -> std::path::PathBuf {
    env.root.join("containers").join(id).join("container.json")
}

#[test]
fn a_container_with_a_damaged_record_is_listed_dead_and_removable() {
    let env = Env::new();
    // A running container whose record is cut short mid-way.
    let r = env.berth(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"]);
    assert_eq!(r.code, 0, "{r:?}");
    let live = r.stdout.trim().to_string();
    let path = record_path(&env, &live);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    // An exited one whose record is empty.
    let r = env.berth(&["run", "--name", "done", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let done = env.inspect("done", "{{.Id}}").trim().to_string();
    std::fs::write(record_path(&env, &done), b"").unwrap();

    let r = env.berth(&["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("{} live Dead", &live[..12])),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!("{} damaged-", &done[..12])),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains(&record_path(&env, &live).display().to_string()),
        "the warning names the file: {r:?}"
    );

    // Its processes still run: rm refuses, rm -f kills them and removes it.
    let r = env.berth(&["rm", "live"]);
    assert_ne!(r.code, 0, "{r:?}");
    let r = env.berth(&["rm", "-f", "live"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["rm", "-f", &done]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["ps", "-a", "-q"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", ""),
        "{r:?}"
    );
    // The store runs containers as before.
    let r = env.berth(&["run", "--rm", "busybox", "echo", "ok"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:?}");
    env.assert_clean();
}

#[test]
fn a_directory_a_killed_create_left_is_collected_by_the_next_command() {
    let env = Env::new();
    let orphan = env.root.join("containers").join("ab".repeat(32));
    std::fs::create_dir_all(orphan.join("upper/etc")).unwrap();
    std::fs::create_dir_all(orphan.join("work")).unwrap();
    let r = env.berth(&["ps", "-a", "-q"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    let r = env.berth(&["run", "--rm", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!orphan.exists(), "the orphan directory is collected");
    env.assert_clean();
}

/// The monitor pid a container's record holds.
fn monitor_pid(env: &Env, id: &str) -> i32 {
    let text = std::fs::read_to_string(record_path(env, id)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["state"]["monitor_pid"].as_i64().unwrap() as i32
}

/// `berth run -d ...` under a child subreaper (python), which a container's
/// init is reparented to once its monitor is killed: one that never reaps
/// (as a host whose PID 1 does not reap promptly: the init stays a zombie),
/// or one that reaps at once (its status is then the reaper's alone). The
/// subreaper, and the container's ID.
fn run_under_subreaper(env: &Env, run_args: &[&str], reaps: bool) -> (std::process::Child, String) {
    let berth = env.command(&[]).get_program().to_owned();
    let mut args: Vec<String> = env
        .command(run_args)
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.insert(0, berth.to_string_lossy().into_owned());
    let reap = if reaps {
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
    } else {
        ""
    };
    let script = format!(
        "import ctypes, signal, subprocess, sys, time\n\
         ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n\
         p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n\
         print(p.stdout.read().strip(), flush=True)\n\
         {reap}\
         time.sleep(120)\n"
    );
    let mut holder = std::process::Command::new(crate::daemon::test_python())
        .arg("-c")
        .arg(script)
        .args(&args)
        .env("DOCKER_CONFIG", env.docker_config())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let id = line.trim().to_string();
    assert_eq!(id.len(), 64, "{line:?}");
    (holder, id)
}

fn kill_monitor(env: &Env, id: &str) {
    let monitor = monitor_pid(env, id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    crate::common::eventually(Duration::from_secs(10), "the monitor to die", || {
        (!std::path::Path::new(&format!("/proc/{monitor}")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
}

#[test]
fn a_killed_monitor_leaves_a_zombie_that_is_judged_exited() {
    let env = Env::new();
    let (mut holder, id) = run_under_subreaper(
        &env,
        &["run", "-d", "busybox", "sh", "-c", "sleep 2; exit 5"],
        false,
    );
    kill_monitor(&env, &id);
    std::thread::sleep(Duration::from_secs(4));
    // The init is a zombie now: the container has exited, with its code.
    let status = crate::common::eventually(
        Duration::from_secs(10),
        "the container to show as exited",
        || {
            let r = env.berth(&["ps", "-a", "--format", "{{.Status}}"]);
            r.stdout.starts_with("Exited").then_some(r.stdout)
        },
    );
    assert!(status.starts_with("Exited (5)"), "{status}");
    let r = env.berth(&["rm", "-f", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    let _ = holder.kill();
    let _ = holder.wait();
    env.assert_clean();
}

#[test]
fn a_container_whose_monitor_is_killed_gets_a_new_one() {
    let env = Env::new();
    // Its init is reaped at once by its new parent: only a pidfd held
    // before its end tells how it ended.
    let (mut holder, id) = run_under_subreaper(
        &env,
        &[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            "echo before; sleep 3; echo after; echo oops >&2; sleep 1; exit 5",
        ],
        true,
    );
    let first = monitor_pid(&env, &id);
    kill_monitor(&env, &id);
    // The next command gives it a new monitor.
    let r = env.berth(&["ps", "--format", "{{.Status}}"]);
    assert!(r.stdout.starts_with("Up"), "{r:?}");
    let second = monitor_pid(&env, &id);
    assert!(second != first && second > 0, "{first} {second}");
    // Its output is logged again, and `logs -f` ends with it.
    let mut logs = env.spawn(&["logs", "-f", &id]);
    let out = crate::common::wait_timeout(&mut logs, Duration::from_secs(20));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "before\nafter\n", "{out:?}");
    // Its real exit code is recorded, never a made-up one.
    let r = env.berth(&["wait", &id]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "5\n"), "{r:?}");
    let r = env.berth(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(r.stdout.starts_with("Exited (5)"), "{r:?}");
    let r = env.berth(&["logs", &id]);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("before\nafter\n", "oops\n"),
        "{r:?}"
    );
    assert_eq!(env.berth(&["rm", &id]).code, 0);
    let _ = holder.kill();
    let _ = holder.wait();
    env.assert_clean();
}

#[test]
fn an_exit_nobody_saw_is_recorded_unknown() {
    let env = Env::new();
    let (mut holder, id) = run_under_subreaper(
        &env,
        &["run", "-d", "busybox", "sh", "-c", "sleep 1; exit 5"],
        true,
    );
    kill_monitor(&env, &id);
    // No command runs while it ends; its new parent reaps it at once.
    std::thread::sleep(Duration::from_secs(3));
    let r = env.berth(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(r.stdout.starts_with("Exited (unknown)"), "{r:?}");
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "-1");
    assert!(
        env.inspect(&id, "{{.State.Error}}")
            .starts_with("exit code unknown: the container's monitor was killed"),
        "{}",
        env.inspect(&id, "{{.State.Error}}")
    );
    assert_eq!(env.berth(&["rm", &id]).code, 0);
    let _ = holder.kill();
    let _ = holder.wait();
    env.assert_clean();
}

#[test]
fn stop_and_restart_work_on_a_container_whose_monitor_was_killed() {
    let env = Env::new();
    let r = env.berth(&["run", "-d", "--name", "s", "busybox", "sleep", "1000"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    kill_monitor(&env, &id);
    // restart leaves it running, under a new monitor.
    let r = env.berth(&["restart", "-t", "1", "s"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(r.stdout.starts_with("s Up"), "{r:?}");
    let r = env.berth(&["exec", "s", "echo", "in"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "in\n"), "{r:?}");
    // stop really stops it: sleep as PID 1 ignores SIGTERM, so it is killed.
    kill_monitor(&env, &id);
    let r = env.berth(&["stop", "-t", "1", "s"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(r.stdout.starts_with("Exited (137)"), "{r:?}");
    assert!(env.cgroup_dirs().is_empty(), "{:?}", env.cgroup_dirs());
    assert_eq!(env.berth(&["rm", "s"]).code, 0);
    env.assert_clean();
}

fn nft_ports() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "map", "ip", "berth", "any_tcp"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn removing_a_running_container_with_a_damaged_record_withdraws_its_ports() {
    let env = Env::new();
    let r = env.berth(&[
        "run", "-d", "--name", "web", "-p", "80", "busybox", "sleep", "1000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    let ip = env.inspect("web", "{{.NetworkSettings.IPAddress}}");
    let r = env.berth(&["port", "web", "80"]);
    let port = r.stdout.trim().rsplit(':').next().unwrap().to_string();
    let element = format!("{port} : {ip} . 80");
    assert!(nft_ports().contains(&element), "{r:?}");
    std::fs::write(record_path(&env, &id), b"{\"id\": ").unwrap();
    // While it runs its address and port stay taken.
    let r = env.berth(&[
        "run",
        "--rm",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "true",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    let r = env.berth(&["run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains(&format!("inet {ip}/")), "{r:?}");
    let r = env.berth(&["rm", "-f", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!nft_ports().contains(&element), "{}", nft_ports());
    // Its address is free again: the next container gets it.
    let r = env.berth(&["run", "--rm", "busybox", "ip", "-4", "addr", "show", "eth0"]);
    assert!(r.stdout.contains(&format!("inet {ip}/")), "{r:?}");
    env.assert_clean();
}

/// `system df`'s SIZE and RECLAIMABLE for one TYPE.
fn df_row(env: &Env, kind: &str) -> (String, String) {
    let r = env.berth(&["system", "df"]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_string();
    let cols: Vec<&str> = line[kind.len()..].split_whitespace().collect();
    (cols[2].to_string(), cols[3..].join(" "))
}

#[test]
fn what_killed_commands_left_is_counted_then_collected_by_the_next_one() {
    let env = Env::new();
    let images = df_row(&env, "Images");
    assert_eq!(df_row(&env, "Containers").0, "0B");
    // A killed pull or load: a layer half unpacked and a blob half written.
    let layer = env.root.join("image/layers/.tmp-Ab12Cd");
    std::fs::create_dir_all(layer.join("diff/usr")).unwrap();
    std::fs::write(layer.join("diff/usr/big"), vec![7u8; 3 << 20]).unwrap();
    let blob = env.root.join("image/ingest/.tmpX1y2Z3");
    std::fs::write(&blob, vec![1u8; 1 << 20]).unwrap();
    // A killed create: a container directory with no record.
    let orphan = env.root.join("containers").join("cd".repeat(32));
    std::fs::create_dir_all(orphan.join("upper")).unwrap();
    std::fs::write(orphan.join("upper/file"), vec![2u8; 2 << 20]).unwrap();

    // Counted, as reclaimable, until collected.
    let (size, reclaimable) = df_row(&env, "Images");
    assert_ne!(size, images.0);
    assert!(reclaimable.ends_with("(100%)"), "{reclaimable}");
    let (size, reclaimable) = df_row(&env, "Containers");
    assert_eq!(
        (size.as_str(), reclaimable.as_str()),
        ("2.1MB", "2.1MB (100%)")
    );

    // The next command that writes images collects the image store's.
    let r = env.berth(&[
        "import",
        crate::common::busybox_tar().to_str().unwrap(),
        "again",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!layer.exists() && !blob.exists());
    assert_eq!(df_row(&env, "Images").0, images.0);
    // The next create collects the container directory.
    let r = env.berth(&["run", "--rm", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!orphan.exists());
    // (The --rm container's own directory goes just after its exit.)
    crate::common::eventually(Duration::from_secs(10), "no container bytes", || {
        (df_row(&env, "Containers").0 == "0B").then_some(())
    });
    env.assert_clean();
}

#[test]
fn a_killed_build_leaves_no_step_running_and_keeps_its_cache() {
    use std::io::BufRead;
    let env = Env::new();
    let dir = env.workdir();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo one > /one\nRUN echo started; sleep 100\n",
    )
    .unwrap();
    let mut build = env
        .command(&["build", "-t", "slow", "."])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(build.stdout.take().unwrap()).lines();
    // Until the slow step runs.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let started = line == "started";
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(seen.iter().any(|l| l == "started"), "{seen:?}");
    let r = env.berth(&["ps", "-a", "-q"]);
    assert_eq!(r.stdout.lines().count(), 1, "the step runs: {r:?}");
    build.kill().unwrap();
    let _ = build.wait();
    // Its step container is killed and removed, and no process is left.
    crate::common::eventually(Duration::from_secs(20), "no step container", || {
        let r = env.berth(&["ps", "-a", "-q"]);
        (r.code == 0 && r.stdout.is_empty()).then_some(())
    });
    crate::common::eventually(Duration::from_secs(20), "no cgroup", || {
        env.cgroup_dirs().is_empty().then_some(())
    });
    let r = env.berth(&["images", "--format", "{{.Repository}}"]);
    assert!(!r.stdout.contains("slow"), "{r:?}");
    // The finished step stays as cache.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo one > /one\nRUN cat /one\n",
    )
    .unwrap();
    let r = env.berth_in(&dir, &["build", "-t", "quick", "."]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("Using cache").count(), 1, "{r:?}");
    assert!(r.stdout.contains("\none\n"), "{r:?}");
    assert_eq!(env.berth(&["rmi", "quick"]).code, 0);
    env.assert_clean();
}

fn layer_dirs(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.root.join("image/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "l")
        .collect();
    v.sort();
    v
}

#[test]
fn system_check_lists_damage_and_repair_removes_it() {
    let env = Env::new();
    let r = env.berth(&["system", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "no damage found\n"),
        "{r:?}"
    );

    // An image whose manifest blob has a flipped byte (only a full check
    // reads it whole).
    env.image_from("touch /other", &[], "other");
    let other = env.inspect("other", "{{.Id}}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.root.join("image/images.json")).unwrap())
            .unwrap();
    let manifest = doc["images"][&other]["manifest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest_path = env
        .root
        .join("image/blobs/sha256")
        .join(manifest.strip_prefix("sha256:").unwrap());
    flip_byte(&manifest_path, 5);
    // An image whose top layer is gone.
    let before = layer_dirs(&env);
    env.image_from("touch /third", &[], "third");
    let added: Vec<String> = layer_dirs(&env)
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    std::fs::remove_dir_all(env.root.join("image/layers").join(&added[0])).unwrap();
    // A container whose record is cut short, and what killed commands left.
    let r = env.berth(&["create", "--name", "c", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let c = r.stdout.trim().to_string();
    std::fs::write(record_path(&env, &c), b"{\"id\": \"").unwrap();
    std::fs::create_dir_all(env.root.join("image/layers/.tmp-Q1w2E3/diff")).unwrap();
    let orphan = env.root.join("containers").join("ef".repeat(32));
    std::fs::create_dir_all(orphan.join("upper")).unwrap();

    let r = env.berth(&["system", "check"]);
    assert_eq!(r.code, 1, "{r:?}");
    for (kind, what) in [
        ("damaged", format!("container {c}")),
        ("damaged", format!("image {other}")),
        ("damaged", "image sha256:".to_string()),
        (
            "orphaned",
            "leftover ".to_string() + &orphan.display().to_string(),
        ),
        ("orphaned", "leftover ".to_string()),
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{kind}\t{what}"))),
            "{kind} {what}: {r:?}"
        );
    }
    assert!(r.stdout.contains("(third:latest) its layer"), "{r:?}");
    assert!(r.stdout.contains("(other:latest) its manifest"), "{r:?}");
    assert!(r.stdout.contains("4 damaged, 2 orphaned"), "{r:?}");
    // --quick does not read blobs whole: the flipped byte goes unseen.
    let r = env.berth(&["system", "check", "--quick"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stdout.contains("(other)"), "{r:?}");
    assert!(r.stdout.contains("2 damaged, 2 orphaned"), "{r:?}");

    let r = env.berth(&["system", "check", "--repair"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("removed container {c}")),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!("removed image {other}")),
        "{r:?}"
    );
    let r = env.berth(&["system", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "no damage found\n"),
        "{r:?}"
    );
    let r = env.berth(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(r.stdout, "busybox\n", "{r:?}");
    let r = env.berth(&["run", "--rm", "busybox", "echo", "ok"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:?}");
    env.assert_clean();
}

#[test]
fn system_check_repair_keeps_a_damaged_image_in_use_unless_forced() {
    let env = Env::new();
    env.image_from("touch /mine", &[], "mine");
    let r = env.berth(&["create", "--name", "user", "mine", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let user = r.stdout.trim().to_string();
    flip_byte(&image_blob(&env, "mine"), 7);
    let r = env.berth(&["system", "check", "--quick"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("damaged\tcontainer {user} (user): its image")),
        "{r:?}"
    );
    // The container's writable layer is the user's: kept without --force.
    let r = env.berth(&["system", "check", "--repair"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("kept container {user}")),
        "{r:?}"
    );
    assert!(r.stderr.contains("kept image sha256:"), "{r:?}");
    assert_eq!(env.berth(&["ps", "-a", "-q"]).stdout.lines().count(), 1);
    let r = env.berth(&["system", "check", "--repair", "--force"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.berth(&["ps", "-a", "-q"]).stdout, "");
    let r = env.berth(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(r.stdout, "busybox\n", "{r:?}");
    let r = env.berth(&["system", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "no damage found\n"),
        "{r:?}"
    );
    env.assert_clean();
}

#[test]
fn records_of_containers_running_before_a_reboot_are_judged_exited() {
    let env = Env::new();
    let r = env.berth(&["create", "--name", "r", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_string();
    // After a reboot the record says running, and its init's and monitor's
    // pids are now other processes'.
    let mut others: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap()
        })
        .collect();
    let path = record_path(&env, &id);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["state"]["status"] = "running".into();
    v["state"]["pid"] = (others[0].id() as i64).into();
    v["state"]["monitor_pid"] = (others[1].id() as i64).into();
    v["state"]["started_at"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();

    let r = env.berth(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(r.stdout.starts_with("r Exited (unknown)"), "{r:?}");
    // The processes that took the pids are left alone.
    for o in &mut others {
        assert!(o.try_wait().unwrap().is_none());
    }
    let r = env.berth(&["start", "-a", "r"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.berth(&["rm", "r"]).code, 0);
    for mut o in others {
        let _ = o.kill();
        let _ = o.wait();
    }
    env.assert_clean();
}
