//! The runtime on its own: a container in a user namespace with id maps.
//!
//! The runtime must run in a single-threaded process, and libtest runs tests on
//! threads; so the outer test re-executes this test binary to run the inner
//! one, which makes its container in a forked child.

use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use berth_runtime::oci_spec::runtime::{
    LinuxBuilder, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder,
    ProcessBuilder, RootBuilder, SpecBuilder, UserBuilder,
};
use berth_runtime::{create, CreateOptions, Stdio};

fn rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for app in ["sh", "cat", "id", "ls", "touch"] {
        symlink("busybox", dir.join("bin").join(app)).unwrap();
    }
    for d in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
}

#[test]
#[ignore = "run by user_namespace_maps_ids in a process of its own"]
fn inner_user_namespace_container() {
    // libtest runs each test on a thread of its own, and the runtime refuses
    // a multi-threaded process: the container is made in a forked child,
    // single-threaded from the fork on.
    // SAFETY: the child runs the test body and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(container_in_user_namespace).is_ok();
        // SAFETY: ends the child without the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the container test failed in its process"
    );
}

fn container_in_user_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    rootfs(&root);
    let mount = |dest: &str, typ: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(typ)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    };
    let map = |host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(65536u32)
            .build()
            .unwrap()
    };
    let namespaces = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
    ]
    .map(|t| LinuxNamespaceBuilder::default().typ(t).build().unwrap());
    let spec = SpecBuilder::default()
        .version("1.3.0")
        .hostname("userns")
        .root(RootBuilder::default().path(&root).build().unwrap())
        .process(
            ProcessBuilder::default()
                .args(["sh", "-c", "id; cat /proc/self/uid_map /proc/self/gid_map; ls /dev/null; hostname 2>/dev/null; cat /proc/1/status | grep -c ^Cap"].map(String::from).to_vec())
                .env(vec!["PATH=/bin".to_string()])
                .cwd("/")
                .user(UserBuilder::default().uid(0u32).gid(0u32).build().unwrap())
                .build()
                .unwrap(),
        )
        .mounts(vec![
            mount("/proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", &["nosuid", "mode=755"]),
            mount("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        ])
        .linux(
            LinuxBuilder::default()
                .namespaces(namespaces.to_vec())
                .uid_mappings(vec![map(100000)])
                .gid_mappings(vec![map(200000)])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let (mut read, write) = std::io::pipe().unwrap();
    let container = create(CreateOptions {
        prestart: None,
        seccomp_program: None,
        start_fifo: None,
        spec,
        rootfs_mount: None,
        stdio: Stdio {
            stdin: None,
            stdout: Some(write.into()),
            stderr: None,
        },
        cgroup_root: "/sys/fs/cgroup".into(),
        default_cgroup_path: format!("berth-runtime-test/{}", std::process::id()).into(),
        preserve_fds: 0,
        no_pivot: false,
    })
    .unwrap();
    let status = container.wait().unwrap();
    let mut out = String::new();
    read.read_to_string(&mut out).unwrap();
    container.destroy().unwrap();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join("berth-runtime-test"));
    }
    print!("{out}");
    assert_eq!(status.code(), 0, "{out}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(out.starts_with("uid=0 gid=0"), "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"]);
    assert_eq!(lines[2], ["0", "200000", "65536"]);
    // In a user namespace /dev nodes are the host's, bind-mounted.
    assert_eq!(lines[3], ["/dev/null"]);
}

#[test]
fn user_namespace_maps_ids() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "inner_user_namespace_container",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(
        text.contains("0 100000 65536") || text.contains("0     100000      65536"),
        "{text}"
    );
}
