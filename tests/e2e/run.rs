//! `berth run`: output, exit codes, the process's identity and signals.

use nix::sys::signal::Signal;

use crate::common::Env;

#[test]
fn echo_hello_and_exit_codes() {
    let env = Env::new();
    let r = env.berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello\n"), "{r:?}");
    let r = env.berth(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "{r:?}");
    // stderr reaches ours, stdin is /dev/null without -i.
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo oops >&2; cat; echo done",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "done\n", "oops\n")
    );
    env.assert_clean();
}

#[test]
fn stdin_with_interactive_flag() {
    let env = Env::new();
    let out = env
        .command(&["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"piped in\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED IN\n");
    env.assert_clean();
}

#[test]
fn hostname_env_workdir_user() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--rm",
        "--hostname",
        "web",
        "-e",
        "NAME=World",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "busybox",
        "sh",
        "-c",
        "hostname; echo $NAME; pwd; id; cat /etc/hostname",
    ]);
    assert_eq!(
        r.stdout, "web\nWorld\n/tmp\nuid=1000 gid=1000\nweb\n",
        "{r:?}"
    );
    // Names resolve through the image's /etc/passwd; a missing workdir is created.
    let r = env.berth(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "-w",
        "/new/dir",
        "busybox",
        "sh",
        "-c",
        "id -u; pwd; echo $HOME",
    ]);
    assert_eq!(r.stdout, "65534\n/new/dir\n/nonexistent\n", "{r:?}");
    // The default hostname is the short container ID; PATH and HOME are set.
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "hostname; echo $PATH; echo $HOME",
    ]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0].len(), 12, "{r:?}");
    assert_eq!(
        &lines[1..],
        [
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "/root"
        ]
    );
    env.assert_clean();
}

#[test]
fn process_is_pid_one() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $$; cat /proc/1/comm; ps -o pid= | sort -n | tail -1",
    ]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&lines[..2], ["1", "sh"], "{r:?}");
    // Only the container's few processes exist in its pid namespace.
    assert!(lines[2].trim().parse::<u32>().unwrap() < 10, "{r:?}");
}

#[test]
fn sigterm_to_berth_reaches_the_container() {
    let env = Env::new();
    let mut bg = env.start(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    assert_eq!(bg.line(), "ready");
    bg.signal(Signal::SIGTERM);
    let r = bg.finish();
    assert_eq!((r.code, r.stdout.as_str()), (7, "got TERM\n"), "{r:?}");
    env.assert_clean();
}

#[test]
fn killed_by_a_signal_exits_128_plus_n() {
    let env = Env::new();
    let mut bg = env.start(&["run", "--rm", "busybox", "sh", "-c", "echo ready; sleep 30"]);
    assert_eq!(bg.line(), "ready");
    // SIGKILL from the host to the container's init (the lowest pid in its cgroup).
    let init = env
        .cgroup_dirs()
        .iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|p| p.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .min()
        .unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), Signal::SIGKILL).unwrap();
    let r = bg.finish();
    assert_eq!(r.code, 137, "{r:?}");
    env.assert_clean();
}

#[test]
fn container_kept_without_rm_and_removed_with_rm_command() {
    let env = Env::new();
    let r = env.berth(&["run", "--name", "keep", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(r.code, 4);
    let ps = env.berth(&["ps", "-a"]);
    assert!(
        ps.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("Exited (4)") && l.ends_with("keep")),
        "{ps:?}"
    );
    // The name is taken until the container is removed.
    let r = env.berth(&["run", "--name", "keep", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("is already in use"), "{r:?}");
    // No cgroup and no mount while it is stopped.
    assert!(env.cgroup_dirs().is_empty());
    assert_eq!(env.berth(&["rm", "keep"]).code, 0);
    env.assert_clean();
}
