//! User namespaces: with `--userns=auto` (or `--userns-remap=auto`) the
//! container's root is an unprivileged range of host ids. Written as the
//! attack: a container's root tries to act as the host's root through what
//! is mounted into it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::common::{Env, Run};

fn ok(r: &Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.clone()
}

/// The host uid a container's root is, from its inspect (`0:HOST:SIZE`).
fn host_root(env: &Env, name: &str) -> (u32, u32) {
    let m = env.inspect(name, "{{index .HostConfig.IDMappings.UidMap 0}}");
    let f: Vec<u32> = m.split(':').map(|n| n.parse().unwrap()).collect();
    assert_eq!(f[0], 0, "{m}");
    (f[1], f[2])
}

fn process_uid(pid: &str) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_remapped_root_cannot_act_as_the_hosts_root() {
    let env = Env::new();
    let dir = env.workdir();
    // What a host's root keeps: a secret only root may read, a directory only
    // root may write, and a directory anyone may write.
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(dir.join("locked")).unwrap();
    std::fs::create_dir(dir.join("shared")).unwrap();
    std::fs::set_permissions(dir.join("shared"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let v = |p: &str, at: &str| format!("{}:{at}", dir.join(p).display());
    let (secret, locked, shared) = (
        v("secret", "/secret"),
        v("locked", "/locked"),
        v("shared", "/shared"),
    );
    let script = "id -u; cat /proc/self/uid_map; cat /secret || echo cannot-read; \
                  touch /locked/x || echo cannot-write; touch /shared/made; touch /new-in-root";
    let attack = |userns: &str, name: &str| {
        env.berth_in(
            &dir,
            &[
                "run", "--name", name, userns, "-v", &secret, "-v", &locked, "-v", &shared,
                "busybox", "sh", "-c", script,
            ],
        )
    };

    // The control: in the host's user namespace (today's default and
    // `--userns=host`), the container's root is the host's root.
    let r = attack("--userns=host", "hostns");
    let out = ok(&r);
    assert!(out.contains("s3cret"), "{out}");
    assert!(!out.contains("cannot-write"), "{out}");
    assert!(out.contains("0          0 4294967295"), "{out}");
    ok(&env.berth(&["rm", "hostns"]));
    std::fs::remove_file(dir.join("locked/x")).unwrap();
    std::fs::remove_file(dir.join("shared/made")).unwrap();

    let r = attack("--userns=auto", "remapped");
    let out = ok(&r);
    let (uid, size) = host_root(&env, "remapped");
    assert_ne!(uid, 0);
    assert_eq!(size, 65536);
    let lines: Vec<&str> = out.lines().collect();
    // Root inside, a range of unprivileged host ids outside.
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &uid.to_string(), "65536"], "{out}");
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("cannot-read"), "{out}");
    assert!(out.contains("cannot-write"), "{out}");
    assert!(!dir.join("locked/x").exists());
    // What it creates on the host is its host uid's, not root's.
    let made = std::fs::metadata(dir.join("shared/made")).unwrap();
    assert_eq!(
        (made.uid(), made.gid()),
        (uid, uid),
        "ids of a file it made"
    );
    // It may still write its own root filesystem; the image's layers, which
    // every container shares, stay the host root's on disk.
    let layers = env.root.join("image");
    let mut owners = std::collections::BTreeSet::new();
    let mut stack = vec![layers];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            owners.insert(md.uid());
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    assert_eq!(owners, [0].into(), "owners of files in the image store");
    ok(&env.berth(&["rm", "remapped"]));
    env.assert_clean();
}

#[test]
fn containers_get_disjoint_ranges_released_by_rm() {
    let env = Env::new();
    for name in ["a", "b"] {
        ok(&env.berth(&[
            "run",
            "-d",
            "--name",
            name,
            "--userns=auto",
            "busybox",
            "sleep",
            "300",
        ]));
    }
    let (a, size) = host_root(&env, "a");
    let (b, _) = host_root(&env, "b");
    assert!(
        a + size <= b || b + size <= a,
        "ranges overlap: {a} and {b}"
    );
    assert_eq!(env.inspect("a", "{{.HostConfig.UsernsMode}}"), "auto");
    // The processes run as those host ids.
    for (name, uid) in [("a", a), ("b", b)] {
        assert_eq!(process_uid(&env.inspect(name, "{{.State.Pid}}")), uid);
    }
    // A smaller range on request.
    ok(&env.berth(&[
        "create",
        "--name",
        "small",
        "--userns=auto:size=1024",
        "busybox",
        "true",
    ]));
    assert_eq!(host_root(&env, "small").1, 1024);
    ok(&env.berth(&["rm", "small"]));
    // rm frees a's range: the next container gets it.
    ok(&env.berth(&["rm", "-f", "a"]));
    ok(&env.berth(&["create", "--name", "c", "--userns=auto", "busybox", "true"]));
    assert_eq!(host_root(&env, "c").0, a);
    ok(&env.berth(&["rm", "-f", "b", "c"]));
    env.assert_clean();
}

#[test]
fn named_volumes_exec_and_networking_work_remapped() {
    let env = Env::new();
    ok(&env.berth(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--userns=auto",
        "-v",
        "data:/data",
        "busybox",
        "sleep",
        "300",
    ]));
    let (uid, _) = host_root(&env, "svc");
    // exec joins the container's user namespace: root there, the range here.
    let out = ok(&env.berth(&[
        "exec",
        "svc",
        "sh",
        "-c",
        "echo hi > /data/f && id -u && cat /proc/self/uid_map",
    ]));
    assert!(out.starts_with("0\n"), "{out}");
    assert!(out.contains(&uid.to_string()), "{out}");
    let mountpoint = ok(&env.berth(&["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]));
    let f = std::fs::metadata(Path::new(mountpoint.trim()).join("f")).unwrap();
    assert_eq!(f.uid(), uid);
    // Its network namespace is its own: it has its address and its sysfs.
    let out = ok(&env.berth(&["exec", "svc", "ls", "/sys/class/net"]));
    assert!(out.contains("eth0"), "{out}");
    ok(&env.berth(&["rm", "-f", "svc"]));
    // A later remapped container writes the volume too.
    ok(&env.berth(&[
        "run",
        "--rm",
        "--userns=auto",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "cat /data/f",
    ]));
    ok(&env.berth(&["volume", "rm", "data"]));
    env.assert_clean();
}

#[test]
fn userns_remap_is_the_default_and_host_opts_out() {
    let env = Env::new();
    let map = |args: &[&str]| {
        let mut cmd = args.to_vec();
        cmd.extend(["busybox", "cat", "/proc/self/uid_map"]);
        ok(&env.berth(&cmd))
    };
    let remapped = map(&["--userns-remap=default", "run", "--rm"]);
    assert!(!remapped.contains(" 0 4294967295"), "{remapped}");
    let host = map(&["--userns-remap=default", "run", "--rm", "--userns=host"]);
    assert!(host.contains("0          0 4294967295"), "{host}");
    // A stopped remapped container starts again in its range.
    ok(&env.berth(&[
        "--userns-remap=default",
        "run",
        "--name",
        "again",
        "busybox",
        "true",
    ]));
    let out = ok(&env.berth(&["start", "-a", "again"]));
    assert!(out.is_empty(), "{out}");
    ok(&env.berth(&["start", "-a", "again"]));
    ok(&env.berth(&["rm", "again"]));
    // What its namespace cannot own is refused, with docker's words.
    let r = env.berth(&[
        "--userns-remap=default",
        "run",
        "--rm",
        "--pid",
        "host",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("cannot share the host's PID namespace"),
        "{r:?}"
    );
    ok(&env.berth(&[
        "--userns-remap=default",
        "run",
        "--rm",
        "--userns=host",
        "--pid",
        "host",
        "busybox",
        "true",
    ]));
    let r = env.berth(&["run", "--rm", "--userns=keep-id", "busybox", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("host, auto or auto:size=N"), "{r:?}");
    env.assert_clean();
}

#[test]
fn commit_cp_and_export_record_the_containers_own_ids() {
    let env = Env::new();
    let dir = env.workdir();
    std::fs::create_dir_all(dir.join("app/conf")).unwrap();
    std::fs::write(dir.join("app/conf/x"), "x\n").unwrap();
    ok(&env.berth(&[
        "run",
        "--name",
        "m",
        "--userns=auto",
        "busybox",
        "sh",
        "-c",
        "touch /byroot /byuser && chown 1000:1000 /byuser",
    ]));
    // cp into the stopped container: its root's files, not nobody's.
    ok(&env.berth_in(&dir, &["cp", "app", "m:/"]));
    // The image records ids as the container saw them (0 and 1000), not
    // the range's host ids.
    ok(&env.berth(&["commit", "m", "fromremapped"]));
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--userns=host",
        "fromremapped",
        "sh",
        "-c",
        "stat -c '%n %u:%g' /byroot /byuser /app/conf/x",
    ]));
    assert_eq!(out, "/byroot 0:0\n/byuser 1000:1000\n/app/conf/x 0:0\n");
    let tar = env.workdir().join("m.tar");
    ok(&env.berth(&["export", "-o", tar.to_str().unwrap(), "m"]));
    let listing = std::process::Command::new("tar")
        .args(["tvf", tar.to_str().unwrap(), "byuser", "byroot"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains(" 1000/1000 "), "{listing}");
    assert!(listing.contains(" 0/0 "), "{listing}");
    ok(&env.berth(&["rm", "m"]));
    ok(&env.berth(&["rmi", "fromremapped"]));
    env.assert_clean();
}

#[test]
fn a_daemon_with_userns_remap_runs_docker_s_containers_remapped() {
    use crate::daemon::{ok as docker_ok, Daemon};
    let env = Env::new();
    let d = Daemon::start_global(&env, &["--userns-remap=default"]);
    let map = |args: &[&str]| {
        let mut cmd = vec!["run", "--name", "c"];
        cmd.extend(args);
        cmd.extend(["busybox", "cat", "/proc/self/uid_map"]);
        docker_ok(d.docker(&cmd))
    };
    let out = map(&[]);
    let (uid, _) = host_root(&env, "c");
    assert!(out.contains(&format!(" {uid} ")), "{out}");
    assert_eq!(
        docker_ok(d.docker(&["inspect", "--format", "{{.HostConfig.UsernsMode}}", "c"])).trim(),
        "default"
    );
    docker_ok(d.docker(&["rm", "c"]));
    // docker's way out of the daemon's remap, through HostConfig.UsernsMode.
    let out = map(&["--userns=host"]);
    assert!(out.contains("0          0 4294967295"), "{out}");
    docker_ok(d.docker(&["rm", "c"]));
    // And docker's refusal of the host's PID namespace under the remap.
    let r = d.docker(&["run", "--rm", "--pid=host", "busybox", "true"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("cannot share the host's PID namespace"),
        "{r:?}"
    );
    d.stop();
    env.assert_clean();
}

#[test]
fn a_build_under_the_remap_makes_layers_with_the_images_own_ids() {
    let env = Env::new();
    let dir = env.workdir();
    std::fs::write(dir.join("file"), "hello\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY file /file\nCOPY --chown=1000:1000 file /owned\nRUN touch /made && id -u > /id\n",
    )
    .unwrap();
    ok(&env.berth_in(
        &dir,
        &[
            "--userns-remap=default",
            "build",
            "-q",
            "-t",
            "remapped-build",
            ".",
        ],
    ));
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "--userns=host",
        "remapped-build",
        "sh",
        "-c",
        "stat -c '%n %u:%g' /file /owned /made; cat /id",
    ]));
    assert_eq!(out, "/file 0:0\n/owned 1000:1000\n/made 0:0\n0\n");
    ok(&env.berth(&["rmi", "remapped-build"]));
    env.assert_clean();
}
