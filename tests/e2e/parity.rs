//! Docker's container options beyond the basics, typed as a docker user
//! types them (`--flag value`, `--flag=value`), each checked where it acts:
//! inside the container, in the kernel's files, or in `inspect`.

use crate::common::{cgroup_v2, eventually, Env};

fn ok(r: &crate::common::Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.clone()
}

#[test]
fn ulimits_reach_the_process_and_inspect() {
    let env = Env::new();
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit=nproc=200",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -u",
    ]));
    assert_eq!(out, "1024\n2048\n200\n");
    // A process started later with exec gets the same limits.
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--ulimit",
        "nofile=512",
        "busybox",
        "sleep",
        "60",
    ]));
    assert_eq!(
        ok(&env.berth(&["exec", "lim", "sh", "-c", "ulimit -n; ulimit -Hn"])),
        "512\n512\n"
    );
    assert_eq!(
        env.inspect("lim", "{{json .HostConfig.Ulimits}}"),
        r#"[{"Hard":512,"Name":"nofile","Soft":512}]"#
    );
    ok(&env.berth(&["rm", "-f", "lim"]));

    for (arg, says) in [
        ("nofiles=1", "invalid ulimit type: nofiles"),
        (
            "nofile=20:10",
            "soft limit must be less than or equal to hard limit",
        ),
        ("nofile", "invalid ulimit argument"),
    ] {
        let r = env.berth(&["run", "--rm", "--ulimit", arg, "busybox", "true"]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains(says), "{arg}: {r:?}");
    }
    env.assert_clean();
}

#[test]
fn sysctls_change_the_containers_namespace_and_never_the_hosts() {
    let env = Env::new();
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.shmmax=12345678",
        "--sysctl=net.core.somaxconn=77",
        "busybox",
        "cat",
        "/proc/sys/kernel/shmmax",
        "/proc/sys/net/core/somaxconn",
    ]));
    assert_eq!(out, "12345678\n77\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host_somaxconn
    );
    // The container's root asks for the host's own settings: refused before
    // anything runs.
    for args in [
        &["--sysctl", "kernel.hostname=owned"][..],
        &["--sysctl", "vm.overcommit_memory=1"],
        &["--network", "host", "--sysctl", "net.core.somaxconn=1"],
        &["--ipc", "host", "--sysctl", "kernel.shmmax=1"],
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend(args);
        cmd.extend(["busybox", "true"]);
        let r = env.berth(&cmd);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(r.stderr.contains("sysctl"), "{r:?}");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host_somaxconn
    );
    env.assert_clean();
}

#[test]
fn oom_score_adj_is_set_or_refused_clearly() {
    let env = Env::new();
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--oom-score-adj=500",
        "busybox",
        "cat",
        "/proc/self/oom_score_adj",
    ]));
    assert_eq!(out, "500\n");
    let r = env.berth(&["run", "--rm", "--oom-score-adj", "1001", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("range for oom score adj"), "{r:?}");
    // Lowering it needs CAP_SYS_RESOURCE, which some hosts' root lacks: then
    // the error says so, and nothing is left.
    let r = env.berth(&[
        "run",
        "--rm",
        "--oom-score-adj",
        "-500",
        "busybox",
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    if r.code == 0 {
        assert_eq!(r.stdout, "-500\n");
    } else {
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("CAP_SYS_RESOURCE"), "{r:?}");
    }
    env.assert_clean();
}

#[test]
fn shm_size_groups_and_dns_settings() {
    let env = Env::new();
    let df = |args: &[&str]| {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend(args);
        cmd.extend(["busybox", "sh", "-c", "df -k /dev/shm | tail -1"]);
        let out = ok(&env.berth(&cmd));
        out.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(df(&[]), "65536");
    assert_eq!(df(&["--shm-size", "128m"]), "131072");
    assert_eq!(df(&["--shm-size=1g"]), "1048576");

    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--user",
        "nobody",
        "--group-add",
        "4242",
        "--group-add=nogroup",
        "--group-add",
        "root",
        "busybox",
        "id",
        "-G",
    ]));
    let mut groups: Vec<&str> = out.split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["0", "4242", "65534"], "{out}");
    let r = env.berth(&["run", "--rm", "--group-add", "ghosts", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("Unable to find group ghosts"), "{r:?}");

    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--dns",
        "10.1.2.3",
        "--dns-search",
        "corp.example",
        "--dns-search=lab.example",
        "--dns-option",
        "ndots:3",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]));
    assert!(out.contains("nameserver 10.1.2.3\n"), "{out}");
    assert!(out.contains("search corp.example lab.example\n"), "{out}");
    assert!(out.contains("options ndots:3\n"), "{out}");
    assert_eq!(out.matches("nameserver").count(), 1, "{out}");
    env.assert_clean();
}

#[test]
fn ipc_pid_and_uts_namespaces_are_shared_on_request() {
    let env = Env::new();
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc=shareable",
        "busybox",
        "sh",
        "-c",
        "echo secret > /dev/shm/note; exec sleep 60",
    ]));
    ok(&env.berth(&["run", "-d", "--name", "private", "busybox", "sleep", "60"]));
    eventually(std::time::Duration::from_secs(5), "donor's note", || {
        env.berth(&["exec", "donor", "cat", "/dev/shm/note"])
            .stdout
            .contains("secret")
            .then_some(())
    });
    // Same IPC namespace (its id) and the same /dev/shm.
    let donor_ipc = ok(&env.berth(&["exec", "donor", "readlink", "/proc/1/ns/ipc"]));
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/ipc; cat /dev/shm/note",
    ]));
    assert_eq!(out, format!("{donor_ipc}secret\n"));
    // A container that did not agree to share is not joined.
    let r = env.berth(&[
        "run",
        "--rm",
        "--ipc",
        "container:private",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("non-shareable IPC"), "{r:?}");

    // --pid container: sees (and may signal) the other's processes.
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--pid=container:private",
        "busybox",
        "ps",
        "-o",
        "pid,comm",
    ]));
    assert!(out.lines().any(|l| l.trim() == "1 sleep"), "{out}");
    // --pid host sees this test's own process.
    let me = std::process::id().to_string();
    let out = ok(&env.berth(&["run", "--rm", "--pid", "host", "busybox", "ps", "-o", "pid"]));
    assert!(out.lines().any(|l| l.trim() == me), "pid {me} not in {out}");
    // --uts host has the host's name and refuses one of its own.
    let host = nix::unistd::gethostname().unwrap();
    let out = ok(&env.berth(&["run", "--rm", "--uts", "host", "busybox", "hostname"]));
    assert_eq!(out.trim(), host.to_string_lossy());
    let r = env.berth(&["run", "--rm", "--uts", "host", "-h", "x", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert_eq!(env.inspect("donor", "{{.HostConfig.IpcMode}}"), "shareable");

    ok(&env.berth(&["rm", "-f", "donor", "private"]));
    env.assert_clean();
}

#[test]
fn init_reaps_orphans_and_forwards_stop() {
    let env = Env::new();
    if !std::path::Path::new("/usr/bin/tini-static").exists() {
        // scripts/setup.sh installs tini; without it --init must say so.
        let r = env.berth(&["run", "--rm", "--init", "busybox", "true"]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stderr.contains("tini"), "{r:?}");
        return;
    }
    let out = ok(&env.berth(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,args"]));
    assert!(
        out.lines()
            .any(|l| l.trim() == "1 /sbin/docker-init -- ps -o pid,args"),
        "{out}"
    );
    // An orphan that exits is reaped by the init; without one, by nobody.
    let script = "(sleep 0.2 &); exec sleep 60";
    for (init, zombies) in [(true, false), (false, true)] {
        let mut cmd = vec!["run", "-d", "--name", "orph"];
        if init {
            cmd.push("--init");
        }
        cmd.extend(["busybox", "sh", "-c", script]);
        ok(&env.berth(&cmd));
        std::thread::sleep(std::time::Duration::from_millis(800));
        let ps = ok(&env.berth(&["exec", "orph", "ps", "-o", "stat,comm"]));
        assert_eq!(
            ps.lines().any(|l| l.trim_start().starts_with('Z')),
            zombies,
            "init {init}: {ps}"
        );
        // The init passes stop's SIGTERM on: sleep dies of it (143), where
        // a sleep as PID 1 ignores it and is killed (137).
        ok(&env.berth(&["stop", "-t", if init { "20" } else { "1" }, "orph"]));
        let code = env.inspect("orph", "{{.State.ExitCode}}");
        assert_eq!(code, if init { "143" } else { "137" }, "init {init}");
        assert_eq!(
            env.inspect("orph", "{{.HostConfig.Init}}"),
            if init { "true" } else { "<nil>" }
        );
        ok(&env.berth(&["rm", "orph"]));
    }
    env.assert_clean();
}

#[test]
fn cidfile_expose_and_memory_options() {
    let env = Env::new();
    let work = env.workdir();
    let r = env.berth_in(
        &work,
        &[
            "run",
            "-d",
            "--cidfile",
            "app.cid",
            "--expose",
            "7000-7001",
            "--expose=7100/udp",
            "-P",
            "--memory-reservation",
            "32m",
            "--oom-kill-disable",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let id = ok(&r).trim().to_string();
    assert_eq!(
        std::fs::read_to_string(work.join("app.cid")).unwrap(),
        id,
        "the cidfile holds the full id"
    );
    let ports = ok(&env.berth(&["port", &id]));
    for p in ["7000/tcp", "7001/tcp", "7100/udp"] {
        assert!(ports.contains(p), "{p} not published: {ports}");
    }
    assert_eq!(
        env.inspect(&id, "{{json .Config.ExposedPorts}}"),
        r#"{"7000/tcp":{},"7001/tcp":{},"7100/udp":{}}"#
    );
    assert_eq!(
        env.inspect(&id, "{{.HostConfig.MemoryReservation}}"),
        (32 << 20).to_string()
    );
    let cg = std::path::Path::new("/sys/fs/cgroup");
    if cgroup_v2() {
        let low = cg.join(&env.cgroup_parent).join(&id).join("memory.low");
        assert_eq!(
            std::fs::read_to_string(low).unwrap().trim(),
            (32 << 20).to_string()
        );
    } else {
        let dir = cg.join("memory").join(&env.cgroup_parent).join(&id);
        let soft = std::fs::read_to_string(dir.join("memory.soft_limit_in_bytes")).unwrap();
        assert_eq!(soft.trim(), (32 << 20).to_string());
        let oom = std::fs::read_to_string(dir.join("memory.oom_control")).unwrap();
        assert!(oom.contains("oom_kill_disable 1"), "{oom}");
    }
    // A second container with the same cidfile is refused before it exists.
    let r = env.berth_in(
        &work,
        &["run", "--rm", "--cidfile", "app.cid", "busybox", "true"],
    );
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("Container ID file found"), "{r:?}");
    assert_eq!(ok(&env.berth(&["ps", "-aq"])).lines().count(), 1);
    // A refused container leaves no cidfile behind.
    let r = env.berth_in(
        &work,
        &[
            "create",
            "--cidfile",
            "bad.cid",
            "--sysctl",
            "kernel.hostname=x",
            "busybox",
        ],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!work.join("bad.cid").exists());
    ok(&env.berth(&["rm", "-f", &id]));
    env.assert_clean();
}

#[test]
fn update_changes_a_running_containers_limits_and_restart_policy() {
    let env = Env::new();
    let id = ok(&env.berth(&[
        "run", "-d", "--name", "upd", "-m", "64m", "busybox", "sleep", "60",
    ]))
    .trim()
    .to_string();
    let out = ok(&env.berth(&[
        "update",
        "-m",
        "128m",
        "--pids-limit=40",
        "--restart=on-failure:3",
        "upd",
    ]));
    assert_eq!(out, "upd\n");
    // The kernel enforces the new values now, inside the container too.
    let inside = ok(&env.berth(&[
        "exec",
        "upd",
        "cat",
        if cgroup_v2() {
            "/sys/fs/cgroup/memory.max"
        } else {
            "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        },
        if cgroup_v2() {
            "/sys/fs/cgroup/pids.max"
        } else {
            "/sys/fs/cgroup/pids/pids.max"
        },
    ]));
    assert_eq!(inside, format!("{}\n40\n", 128 << 20));
    assert_eq!(
        env.inspect(
            "upd",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        format!("{} 40 on-failure:3", 128 << 20)
    );
    // Docker's checks hold, and a refused update changes nothing.
    let r = env.berth(&["container", "update", "-m", "1m", &id]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Minimum memory limit"), "{r:?}");
    assert_eq!(
        env.inspect("upd", "{{.HostConfig.Memory}}"),
        (128 << 20).to_string()
    );
    // The new policy restarts the container when it fails.
    ok(&env.berth(&["exec", "upd", "kill", "1"]));
    ok(&env.berth(&["kill", "--signal", "KILL", "upd"]));
    eventually(std::time::Duration::from_secs(10), "a restart", || {
        (env.inspect("upd", "{{.RestartCount}}") != "0").then_some(())
    });
    ok(&env.berth(&["rm", "-f", "upd"]));
    let r = env.berth(&[
        "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "60",
    ]);
    ok(&r);
    let r = env.berth(&["update", "--restart", "always", "gone"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("AutoRemove"), "{r:?}");
    ok(&env.berth(&["rm", "-f", "gone"]));
    env.assert_clean();
}

#[test]
fn container_and_image_commands_take_docker_s_long_forms() {
    let env = Env::new();
    let work = env.workdir();
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "long",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        "echo hi > /greeting; sleep 60",
    ]));
    eventually(std::time::Duration::from_secs(5), "the greeting", || {
        env.berth(&["exec", "long", "cat", "/greeting"])
            .stdout
            .contains("hi")
            .then_some(())
    });
    assert!(ok(&env.berth(&["container", "diff", "long"])).contains("A /greeting"));
    assert!(ok(&env.berth(&["container", "port", "long"])).contains("80/tcp -> 127.0.0.1:"));
    assert!(ok(&env.berth(&["container", "top", "long"])).contains("sleep 60"));
    assert!(ok(&env.berth(&["container", "stats", "--no-stream", "long"])).contains("long"));
    ok(&env.berth_in(
        &work,
        &["container", "cp", "long:/greeting", "greeting.txt"],
    ));
    assert_eq!(
        std::fs::read_to_string(work.join("greeting.txt")).unwrap(),
        "hi\n"
    );
    ok(&env.berth_in(&work, &["container", "export", "-o", "fs.tar", "long"]));
    assert!(std::fs::metadata(work.join("fs.tar")).unwrap().len() > 0);
    ok(&env.berth(&["container", "commit", "long", "snap:1"]));
    std::fs::write(work.join("Dockerfile"), "FROM snap:1\nRUN cat /greeting\n").unwrap();
    ok(&env.berth_in(&work, &["image", "build", "-t", "snap:2", "."]));
    let names = ok(&env.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        names.contains("snap:2\n") && names.contains("busybox:latest\n"),
        "{names}"
    );
    let snaps = ok(&env.berth(&[
        "image",
        "ls",
        "--filter",
        "reference=snap:*",
        "--format",
        "{{.Tag}}",
    ]));
    assert_eq!(snaps, "2\n1\n");
    let since = ok(&env.berth(&["images", "-f", "since=snap:1", "--format", "{{.Tag}}"]));
    assert_eq!(since, "2\n");
    let r = env.berth(&["images", "--filter", "colour=blue"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invalid filter 'colour'"), "{r:?}");
    ok(&env.berth(&[
        "exec",
        "long",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big",
    ]));
    assert!(
        !env.inspect("long", "{{json .}}").contains("SizeRw"),
        "sizes only with -s"
    );
    let r = ok(&env.berth(&[
        "container",
        "inspect",
        "-s",
        "-f",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "long",
    ]));
    let v: Vec<u64> = r.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(v[0] >= 100_000 && v[1] > v[0], "{r}");
    ok(&env.berth(&["rm", "-f", "long"]));
    env.assert_clean();
}

#[test]
fn devices_block_io_and_uts_options() {
    let env = Env::new();
    // The container's root makes a node for a device it was not given: the
    // device cgroup refuses to open it. Given with --device (or allowed by a
    // rule), the same open works.
    let open_fuse = "exec 3<>/dev/fuse && echo opened";
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("mknod /dev/fuse c 10 229; {open_fuse}"),
    ]);
    assert!(!r.stdout.contains("opened"), "{r:?}");
    assert!(r.stderr.contains("Operation not permitted"), "{r:?}");
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--device",
        "/dev/fuse",
        "busybox",
        "sh",
        "-c",
        &format!("ls -l /dev/fuse; {open_fuse}"),
    ]));
    assert!(out.starts_with("c") && out.contains("10, 229"), "{out}");
    assert!(out.contains("opened"), "{out}");
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--device-cgroup-rule=c 10:229 rwm",
        "busybox",
        "sh",
        "-c",
        &format!("mknod /dev/fuse c 10 229; {open_fuse}"),
    ]));
    assert!(out.contains("opened"), "{out}");
    let r = env.berth(&["run", "--rm", "--device", "/etc/passwd", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("not a device"), "{r:?}");

    // Block IO throttles land in the cgroup, for the device named.
    let disk = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| std::path::Path::new("/dev").join(n).exists())
        .expect("a block device");
    let numbers = std::fs::read_to_string(format!("/sys/block/{disk}/dev")).unwrap();
    let dev = format!("/dev/{disk}");
    let file = if cgroup_v2() {
        "/sys/fs/cgroup/io.max".to_string()
    } else {
        "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device".to_string()
    };
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--device-read-bps",
        &format!("{dev}:1mb"),
        "busybox",
        "cat",
        &file,
    ]));
    assert!(out.contains(&format!("{} ", numbers.trim())), "{out}");
    assert!(out.contains("1048576"), "{out}");

    // The UTS namespace's domain name; annotations reach inspect.
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--domainname",
        "corp.example",
        "busybox",
        "cat",
        "/proc/sys/kernel/domainname",
    ]));
    assert_eq!(out, "corp.example\n");
    let id = ok(&env.berth(&[
        "create",
        "--annotation",
        "org.example.team=infra",
        "--memory-swappiness=10",
        "busybox",
        "true",
    ]))
    .trim()
    .to_string();
    assert_eq!(
        env.inspect(
            &id,
            "{{json .HostConfig.Annotations}} {{.HostConfig.MemorySwappiness}}"
        ),
        r#"{"org.example.team":"infra"} 10"#
    );
    ok(&env.berth(&["rm", &id]));

    // What Berth cannot honour is refused by name, never ignored.
    for (args, says) in [
        (&["--platform", "linux/s390x"][..], "not supported"),
        (
            &["--runtime", "kata"],
            "unknown or invalid runtime name: kata",
        ),
        (&["--disable-content-trust=false"], "content trust"),
        (&["--blkio-weight", "5"], "Range of blkio weight"),
        (&["--memory-swappiness", "101"], "swappiness"),
        (&["--cgroupns", "shared"], "cgroup namespace mode"),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend(args);
        cmd.extend(["busybox", "true"]);
        let r = env.berth(&cmd);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
    // What it can: this host's platform, the runtime by docker's name, a
    // quiet run.
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "-q",
        "--platform",
        "linux",
        "--runtime",
        "runc",
        "busybox",
        "echo",
        "hi",
    ]));
    assert_eq!(out, "hi\n");
    env.assert_clean();
}

#[test]
fn labels_and_ps_filters() {
    let env = Env::new();
    let work = env.workdir();
    env.image_from("true", &["LABEL team=infra tier=base"], "labelled");
    std::fs::write(
        work.join("web.labels"),
        "tier=web\n# a comment\nowner=ops\n",
    )
    .unwrap();
    ok(&env.berth_in(
        &work,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--label-file",
            "web.labels",
            "-l",
            "tier=front",
            "--expose",
            "7000",
            "-v",
            "webdata:/data",
            "labelled",
            "sleep",
            "60",
        ],
    ));
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "--label=tier=db",
        "-p",
        "127.0.0.1:5433:5432",
        "busybox",
        "sleep",
        "60",
    ]));
    // The image's labels are inherited, the command line's win.
    assert_eq!(
        env.inspect("web", "{{json .Config.Labels}}"),
        r#"{"owner":"ops","team":"infra","tier":"front"}"#
    );
    let ps = |filters: &[&str]| {
        let mut cmd = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            cmd.extend(["--filter", f]);
        }
        let mut names: Vec<String> = ok(&env.berth(&cmd)).lines().map(String::from).collect();
        names.sort();
        names.join(" ")
    };
    assert_eq!(ps(&["label=tier=front"]), "web");
    assert_eq!(ps(&["label=tier"]), "db web");
    assert_eq!(ps(&["label=tier", "label=team=infra"]), "web");
    assert_eq!(ps(&["name=^w.b$"]), "web");
    assert_eq!(ps(&["name=e"]), "web");
    assert_eq!(ps(&["since=web"]), "db");
    assert_eq!(ps(&["before=db"]), "web");
    assert_eq!(ps(&["volume=webdata"]), "web");
    assert_eq!(ps(&["publish=5433"]), "db");
    assert_eq!(ps(&["expose=5432/tcp"]), "db");
    assert_eq!(ps(&["expose=7000"]), "web");
    assert_eq!(ps(&["network=bridge"]), "db web");
    assert_eq!(ps(&["ancestor=labelled"]), "web");
    let labels = ok(&env.berth(&["ps", "--filter", "name=db", "--format", "{{.Labels}}"]));
    assert_eq!(labels, "tier=db\n");
    let r = env.berth(&["ps", "--filter", "colour=blue"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invalid filter 'colour'"), "{r:?}");
    ok(&env.berth(&["rm", "-f", "web", "db"]));
    ok(&env.berth(&["volume", "rm", "webdata"]));
    env.assert_clean();
}

#[test]
fn health_checks_run_and_show_in_ps_and_inspect() {
    let env = Env::new();
    let app = env.workdir().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=2 CMD test -f /tmp/ready && echo ready\n",
    )
    .unwrap();
    ok(&env.berth_in(&app, &["build", "-t", "hc", "."]));
    let status = |name: &str| {
        ok(&env.berth(&[
            "ps",
            "-a",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            "{{.Status}}",
        ]))
    };
    let wait_for = |name: &str, want: &str| {
        eventually(std::time::Duration::from_secs(20), want, || {
            status(name).contains(want).then_some(())
        })
    };
    // The image's HEALTHCHECK runs: failing, then passing once the program
    // inside is ready.
    ok(&env.berth(&["run", "-d", "--name", "img", "hc", "sleep", "60"]));
    wait_for("img", "(unhealthy)");
    ok(&env.berth(&["exec", "img", "touch", "/tmp/ready"]));
    wait_for("img", "(healthy)");
    assert_eq!(env.inspect("img", "{{.State.Health.Status}}"), "healthy");
    assert_eq!(env.inspect("img", "{{.State.Health.FailingStreak}}"), "0");
    let log = env.inspect("img", "{{json .State.Health.Log}}");
    assert!(log.contains(r#""Output":"ready\n""#), "{log}");

    // The command line's options override the image's; a check that hangs
    // is cut at its timeout.
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd=sleep 30",
        "--health-timeout",
        "300ms",
        "--health-interval=100ms",
        "--health-retries",
        "1",
        "hc",
        "sleep",
        "60",
    ]));
    wait_for("slow", "(unhealthy)");
    let log = env.inspect("slow", "{{json .State.Health.Log}}");
    assert!(log.contains("Health check exceeded timeout"), "{log}");

    // --no-healthcheck turns the image's off.
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "hc",
        "sleep",
        "60",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!status("off").contains("health"), "{}", status("off"));
    assert_eq!(env.inspect("off", "{{json .State.Health}}"), "null");
    let r = env.berth(&[
        "run",
        "--rm",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        "hc",
        "true",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("conflicts with --health-*"), "{r:?}");
    ok(&env.berth(&["rm", "-f", "img", "slow", "off"]));
    env.assert_clean();
}

#[test]
fn attach_streams_privileged_exec_and_refused_flags() {
    let env = Env::new();
    let script = "echo out; echo err >&2";
    let r = env.berth(&["run", "--rm", "-a", "stdout", "busybox", "sh", "-c", script]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "out\n", ""),
        "{r:?}"
    );
    let r = env.berth(&["run", "--rm", "-a=STDERR", "busybox", "sh", "-c", script]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "", "err\n"),
        "{r:?}"
    );
    let r = env.berth(&["run", "--rm", "-a", "stdout", "-d", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");

    ok(&env.berth(&["run", "-d", "--name", "c", "busybox", "sleep", "60"]));
    let caps = |extra: &[&str]| {
        let mut cmd = vec!["exec"];
        cmd.extend(extra);
        cmd.extend(["c", "grep", "CapEff", "/proc/self/status"]);
        ok(&env.berth(&cmd))
    };
    assert_eq!(caps(&[]), "CapEff:\t00000000a80425fb\n");
    let all = caps(&["--privileged"]);
    assert_ne!(all, caps(&[]));
    assert!(all.contains("ffff"), "{all}");
    ok(&env.berth(&["rm", "-f", "c"]));

    for (args, says) in [
        (&["--gpus", "all"][..], "--gpus is not supported"),
        (&["--cpu-count", "2"], "Windows only"),
        (&["--volume-driver", "nfs"], "local volume driver"),
        (
            &["--storage-opt", "size=1G"],
            "--storage-opt is not supported",
        ),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend(args);
        cmd.extend(["busybox", "true"]);
        let r = env.berth(&cmd);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--userns=host",
        "--volume-driver",
        "local",
        "--isolation",
        "default",
        "busybox",
        "echo",
        "fine",
    ]));
    assert_eq!(out, "fine\n");
    env.assert_clean();
}

#[test]
fn shell_completion_scripts_complete_docker_s_words() {
    let env = Env::new();
    let script = ok(&env.berth(&["completion", "bash"]));
    let dir = env.workdir();
    std::fs::write(dir.join("berth.bash"), &script).unwrap();
    // bash completes `berth run --ulim` and `berth cont` as a user's tab does.
    let complete = |words: &str, cword: usize| {
        let cmd = format!(
            "source ./berth.bash; COMP_WORDS=({words}); COMP_CWORD={cword}; _berth berth \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\""
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &cmd])
            .current_dir(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("berth run --ulim", 2), "--ulimit");
    assert!(complete("berth cont", 1).contains("container"));
    assert!(complete("berth container up", 2).contains("update"));
    for shell in ["zsh", "fish"] {
        let s = ok(&env.berth(&["completion", shell]));
        assert!(s.contains("security-opt"), "{shell}");
    }
    let r = env.berth(&["completion", "tcsh"]);
    assert_ne!(r.code, 0, "{r:?}");
}

#[test]
fn network_filters_history_formats_and_update_checks() {
    let env = Env::new();
    ok(&env.berth(&["network", "create", "--label", "team=web", "front"]));
    ok(&env.berth(&["network", "create", "back"]));
    let ls = |filters: &[&str]| {
        let mut cmd = vec!["network", "ls", "--format", "{{.Name}}"];
        for f in filters {
            cmd.extend(["--filter", f]);
        }
        ok(&env.berth(&cmd)).lines().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(ls(&["label=team=web"]), "front");
    assert_eq!(ls(&["type=custom"]), "back front");
    assert_eq!(ls(&["type=builtin"]), "bridge host none");
    assert_eq!(ls(&["name=ack", "driver=bridge"]), "back");
    assert_eq!(ls(&["dangling=true"]), "back front");
    let r = env.berth(&["network", "ls", "--filter", "colour=blue"]);
    assert_ne!(r.code, 0, "{r:?}");
    ok(&env.berth(&["network", "rm", "front", "back"]));
    // -f: a network that is not there is no error.
    ok(&env.berth(&["network", "rm", "-f", "front"]));
    let r = env.berth(&["network", "rm", "front"]);
    assert_ne!(r.code, 0, "{r:?}");

    env.image_from("echo hi > /f", &["LABEL x=y"], "hist");
    let out = ok(&env.berth(&["history", "--format", "{{.Size}}|{{.CreatedBy}}", "hist"]));
    assert!(out.lines().count() >= 2, "{out}");
    let out = ok(&env.berth(&["image", "history", "--format", "json", "hist"]));
    assert!(
        out.lines()
            .all(|l| l.starts_with('{') && l.contains("\"CreatedBy\"")),
        "{out}"
    );

    ok(&env.berth(&["run", "-d", "--name", "u", "busybox", "sleep", "60"]));
    let r = env.berth(&["update", "--blkio-weight", "5", "u"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Range of blkio weight"), "{r:?}");
    ok(&env.berth(&["rm", "-f", "u"]));
    env.assert_clean();
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let env = Env::new();
    for i in 0..3 {
        ok(&env.berth(&["create", "--name", &format!("k{i}"), "busybox", "true"]));
    }
    // The reader is gone before berth writes: as docker's CLI, berth ends
    // by SIGPIPE and says nothing (it used to panic with a backtrace).
    for cmd in [
        "ps -a --format '{{.Names}}'",
        "ps -a",
        "images",
        "inspect k0",
        "completion bash",
    ] {
        let base = env.command(&[]);
        let berth: Vec<String> = std::iter::once(base.get_program())
            .chain(base.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect();
        let line = format!(
            "{} {cmd} | true; echo \"status ${{PIPESTATUS[0]}}\"",
            berth.join(" ")
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &line])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stderr.is_empty(), "{cmd}: {stderr}");
        assert!(
            stdout.trim() == "status 141" || stdout.trim() == "status 0",
            "{cmd}: {stdout}"
        );
    }
    ok(&env.berth(&["rm", "k0", "k1", "k2"]));
}

#[test]
fn values_docker_validates_are_validated() {
    let env = Env::new();
    for (args, says) in [
        (
            &["run", "--rm", "-e", "=value", "busybox", "true"][..],
            "invalid environment variable: =value",
        ),
        (
            &[
                "run",
                "--rm",
                "--hostname",
                "bad host/name",
                "busybox",
                "true",
            ],
            "invalid hostname format: bad host/name",
        ),
        (
            &["--log-level", "bogus", "ps"],
            "Unable to parse logging level: bogus",
        ),
    ] {
        let r = env.berth(args);
        // docker's CLI: 125 for a run it refuses, 1 for its own --log-level.
        let code = if args[0] == "--log-level" { 1 } else { 125 };
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
    ok(&env.berth(&["run", "-d", "--name", "c", "busybox", "sleep", "60"]));
    let r = env.berth(&["exec", "-e", "=x", "c", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invalid environment variable"), "{r:?}");
    ok(&env.berth(&["rm", "-f", "c"]));
    env.assert_clean();
}

#[test]
fn events_show_what_any_berth_process_did() {
    let env = Env::new();
    // Followed: a container started by another command shows up.
    let mut follow = env
        .command(&[
            "events",
            "--filter",
            "event=start",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let since = chrono::Utc::now().timestamp().to_string();
    ok(&env.berth(&["run", "--rm", "--name", "ev", "busybox", "true"]));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(follow.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(line, "container start ev\n");
    // History between two times, narrowed by docker's filters.
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let out = ok(&env.berth(&[
        "system",
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=ev",
        "--format",
        "{{.Action}}",
    ]));
    assert_eq!(out, "create\nstart\ndie\ndestroy\n");
    let out = ok(&env.berth(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=container",
    ]));
    assert!(
        out.lines()
            .any(|l| l.contains(" container die ") && l.contains("exitCode=0")),
        "{out}"
    );
    let r = env.berth(&["events", "--filter", "colour=blue"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invalid filter 'colour'"), "{r:?}");
    env.assert_clean();
}

#[test]
fn ip_and_mac_address_on_a_user_network() {
    let env = Env::new();
    ok(&env.berth(&["network", "create", "--subnet", "10.231.7.0/24", "fixed"]));
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--network",
        "fixed",
        "--ip",
        "10.231.7.50",
        "--mac-address",
        "02:aa:bb:cc:dd:ee",
        "busybox",
        "sh",
        "-c",
        "ip addr show eth0",
    ]));
    assert!(out.contains("inet 10.231.7.50/24"), "{out}");
    assert!(out.contains("link/ether 02:aa:bb:cc:dd:ee"), "{out}");
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "fixed",
        "--ip",
        "10.231.7.51",
        "busybox",
        "sleep",
        "60",
    ]));
    assert_eq!(
        env.inspect("holder", "{{.NetworkSettings.Networks.fixed.IPAddress}}"),
        "10.231.7.51"
    );
    for (args, says) in [
        (
            &["--network", "fixed", "--ip", "10.231.7.51"][..],
            "Address already in use",
        ),
        (
            &["--network", "fixed", "--ip", "10.9.9.9"],
            "no configured subnet",
        ),
        (&["--ip", "10.231.7.60"], "user defined networks only"),
        (
            &["--mac-address", "01:00:5e:00:00:01"],
            "not a valid mac address",
        ),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend(args);
        cmd.extend(["busybox", "true"]);
        let r = env.berth(&cmd);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
    ok(&env.berth(&["rm", "-f", "holder"]));
    ok(&env.berth(&["network", "rm", "fixed"]));
    env.assert_clean();
}
