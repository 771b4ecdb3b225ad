//! What the container sees: its own namespaces, root filesystem, /dev, /proc
//! and capabilities; and what the host does not see.

use crate::common::Env;

const NAMESPACES: [&str; 6] = ["pid", "mnt", "uts", "ipc", "net", "cgroup"];

fn host_ns(ns: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn container_ns(env: &Env, extra: &[&str]) -> Vec<String> {
    let script = NAMESPACES
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .join("; ");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let r = env.berth(&args);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.lines().map(str::to_string).collect()
}

#[test]
fn every_namespace_is_new() {
    let env = Env::new();
    let inside = container_ns(&env, &[]);
    for (ns, inode) in NAMESPACES.iter().zip(&inside) {
        assert_ne!(&host_ns(ns), inode, "{ns} namespace is the host's");
    }
    // With --network host only the network namespace is the host's.
    let inside = container_ns(&env, &["--network", "host"]);
    for (ns, inode) in NAMESPACES.iter().zip(&inside) {
        assert_eq!(&host_ns(ns) == inode, *ns == "net", "{ns}");
    }
    env.assert_clean();
}

#[test]
fn network_none_has_only_loopback_and_host_shares_the_stack() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; ip -o link | wc -l",
    ]);
    assert_eq!(r.stdout, "lo\n1\n", "{r:?}");
    let r = env.berth(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let mut inside: Vec<String> = r.stdout.split_whitespace().map(str::to_string).collect();
    inside.sort();
    assert_eq!(inside, host);
    // The host network keeps the host's name unless --hostname says otherwise.
    let r = env.berth(&["run", "--rm", "--network", "host", "busybox", "hostname"]);
    assert_eq!(
        r.stdout.trim(),
        nix::unistd::gethostname().unwrap().to_string_lossy()
    );
}

#[test]
fn copy_on_write_never_changes_the_image() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo v2 > /etc/motd; rm /bin/vi; mkdir /data; rm -rf /root",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ls /bin/vi; test -e /etc/motd || echo no-motd; test -d /data || echo no-data; ls -d /root",
    ]);
    assert_eq!(r.stdout, "/bin/vi\nno-motd\nno-data\n/root\n", "{r:?}");
    // The writes live in the first container's upper layer only.
    let id = env
        .berth(&["ps", "-a", "-q", "--no-trunc"])
        .stdout
        .trim()
        .to_string();
    let upper = env.root.join("containers").join(&id).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/motd")).unwrap(),
        "v2\n"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(upper.join("bin/vi"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "whiteout"
    );
    assert_eq!(env.berth(&["rm", "writer"]).code, 0);
    env.assert_clean();
}

#[test]
fn dev_proc_and_sys_are_docker_shaped() {
    let env = Env::new();
    let r = env.berth(&["run", "--rm", "busybox", "sh", "-c", "ls /dev | tr '\\n' ' '; echo; for l in fd stdin ptmx; do readlink /dev/$l; done; grep -c . /proc/keys || true; ls /sys/firmware | wc -l; touch /sys/x 2>&1; echo 1 > /proc/sysrq-trigger 2>&1; touch /proc/sys/kernel/x 2>&1; echo z > /dev/null && echo null-ok"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0].trim(),
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero",
        "{r:?}"
    );
    assert_eq!(
        &lines[1..4],
        ["/proc/self/fd", "/proc/self/fd/0", "pts/ptmx"]
    );
    assert_eq!(lines[4], "0", "/proc/keys is masked: {r:?}");
    assert_eq!(lines[5], "0", "/sys/firmware is masked: {r:?}");
    assert!(
        r.stdout.contains("touch: /sys/x: Read-only file system"),
        "{r:?}"
    );
    assert!(r.stdout.contains("Read-only file system"), "{r:?}");
    assert!(r.stdout.ends_with("null-ok\n"), "{r:?}");
}

#[test]
fn default_capabilities_and_no_new_privs() {
    let env = Env::new();
    let caps = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "busybox",
            "grep",
            "-E",
            "^(Cap|NoNewPrivs)",
            "/proc/self/status",
        ]);
        let r = env.berth(&args);
        assert_eq!(r.code, 0, "{r:?}");
        r.stdout
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Inh, Prm, Eff, Bnd, Amb, NoNewPrivs: docker's 14 capabilities, no
    // others; no_new_privs off, as docker (setuid programs work; seccomp
    // holds the line), on when asked.
    assert_eq!(caps(&["--security-opt", "no-new-privileges"])[5], "1");
    assert_eq!(
        caps(&[]),
        [
            "0000000000000000",
            "00000000a80425fb",
            "00000000a80425fb",
            "00000000a80425fb",
            "0000000000000000",
            "0"
        ]
    );
    let c = caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]);
    assert_eq!(&c[1..4], ["0000000000001000"; 3]);
    let c = caps(&["--cap-add", "SYS_ADMIN", "--cap-drop", "chown"]);
    assert_eq!(c[2], format!("{:016x}", (0xa80425fbu64 | 1 << 21) & !1));
    // A non-root user ends up with no effective capabilities, as with docker.
    let c = caps(&["-u", "1000"]);
    assert_eq!(
        &c[1..4],
        ["0000000000000000", "0000000000000000", "00000000a80425fb"]
    );
    // --privileged: every capability berth itself holds.
    let c = caps(&["--privileged"]);
    let host_bnd = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = host_bnd
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    assert_eq!(c[2], host_bnd);
    assert_eq!(c[5], "0");
}

#[test]
fn container_mounts_stay_inside() {
    let env = Env::new();
    // While a container runs, the host sees none of its mounts (not even its overlay).
    let mut bg = env.start(&[
        "run", "--rm", "--privileged", "busybox", "sh", "-c",
        "trap 'exit 0' TERM; mkdir -p /mnt/x && mount -t tmpfs inner /mnt/x && echo mounted && grep -c inner /proc/mounts; sleep 30 & wait",
    ]);
    assert_eq!(
        (bg.line(), bg.line()),
        ("mounted".to_string(), "1".to_string())
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.root.to_str().unwrap()),
        "overlay visible on the host"
    );
    assert!(
        !mounts.lines().any(|l| l.contains(" inner ")),
        "tmpfs visible on the host"
    );
    assert!(
        !env.cgroup_dirs().is_empty(),
        "the running container has a cgroup"
    );
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    let r = bg.finish();
    assert_eq!(r.code, 0, "{r:?}");
    env.assert_clean();
}

#[test]
fn read_only_root() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>&1; echo ok > /dev/shm/y && cat /dev/shm/y",
    ]);
    assert!(r.stdout.contains("Read-only file system"), "{r:?}");
    assert!(r.stdout.ends_with("ok\n"), "{r:?}");
    env.assert_clean();
}

#[test]
fn device_cgroup_allows_only_the_standard_nodes() {
    if crate::common::cgroup_v2() {
        return; // v2 device rules need eBPF, not loaded yet
    }
    let env = Env::new();
    // mknod is allowed (CAP_MKNOD, `c *:* m`), using the node is not.
    let r = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem; echo rc=$?; head -c 1 /dev/zero | wc -c",
    ]);
    assert!(r.stderr.contains("Operation not permitted"), "{r:?}");
    assert_eq!(r.stdout, "rc=1\n1\n", "{r:?}");
    env.assert_clean();
}

#[test]
fn no_descriptor_leaks_into_the_container() {
    let env = Env::new();
    // berth itself is handed an extra descriptor without close-on-exec.
    let file = std::fs::File::open("/etc/hostname").unwrap();
    let mut cmd = env.command(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = file.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe and only touches the child.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 7) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let r: crate::common::Run = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .into();
    // 0-2 are stdio, 3 is ls's own listing of the directory.
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{r:?}"
    );
}
