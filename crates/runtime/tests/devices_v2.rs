//! Device rules on cgroup v2, for real: the eBPF program is attached to a
//! cgroup in the host's cgroup2 mount and a process in that cgroup is denied
//! what the rules do not allow. On a v1 host the kernel still runs the v2
//! program of a process's cgroup2 cgroup (this machine mounts an empty
//! cgroup2 at /sys/fs/cgroup/unified), so the test runs on both.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_runtime::cgroups::devicefilter;
use berth_runtime::cgroups::DeviceRule;

fn rule(
    allow: bool,
    kind: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.into(),
    }
}

/// Where the host mounts cgroup2, if it does.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    })
}

/// A cgroup of the test's own, removed when dropped (its processes have
/// exited by then; the kernel drops the attached programs with it).
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// What the child found; each step its own exit code.
const STEPS: [&str; 8] = [
    "all allowed",
    "could not join the cgroup",
    "open /dev/null was denied",
    "open /dev/zero for reading did not fail with EPERM",
    "open /dev/zero for writing did not fail with EPERM",
    "mknod of a block device did not fail with EPERM",
    "mknod of c 1:3 (allowed) failed",
    "open /dev/zero for reading and writing did not fail with EPERM",
];

/// Forks a child that joins `cgroup` and tries the devices; returns the
/// step it stopped at (0: every expectation held). The child makes only
/// system calls (no allocation: the test process has threads).
fn probe(cgroup: &Path, nodes: &Path, zero_readable: bool) -> i32 {
    let procs = cstr(&cgroup.join("cgroup.procs"));
    let blk = cstr(&nodes.join("loop"));
    let chr = cstr(&nodes.join("null"));
    // SAFETY: the child makes only async-signal-safe calls and leaves
    // with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let eperm = || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        // SAFETY: plain system calls on NUL-terminated paths made before the
        // fork and a buffer on the stack.
        let step = unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(1);
            }
            libc::close(fd);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            let zero_r = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
            let zero_r_eperm = zero_r < 0 && eperm();
            let zero_w = libc::open(c"/dev/zero".as_ptr(), libc::O_WRONLY);
            let zero_w_eperm = zero_w < 0 && eperm();
            let zero_rw = libc::open(c"/dev/zero".as_ptr(), libc::O_RDWR);
            let zero_rw_eperm = zero_rw < 0 && eperm();
            let mk_blk = libc::mknod(blk.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0));
            let mk_blk_eperm = mk_blk < 0 && eperm();
            let mk_chr = libc::mknod(chr.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3));
            if null < 0 {
                2
            } else if zero_readable == zero_r_eperm {
                3
            } else if !zero_w_eperm {
                4
            } else if !mk_blk_eperm {
                5
            } else if mk_chr < 0 {
                6
            } else if !zero_rw_eperm {
                7
            } else {
                0
            }
        };
        // SAFETY: ends the child without the parent's destructors.
        unsafe { libc::_exit(step) }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child died: {status}");
    libc::WEXITSTATUS(status)
}

#[test]
fn a_process_in_the_cgroup_gets_only_the_allowed_devices() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(mount) = cgroup2_mount() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let cg = TestCgroup(mount.join(format!("berth-test-devices-{}", std::process::id())));
    std::fs::create_dir(&cg.0).unwrap();
    let nodes = tempfile::tempdir().unwrap();
    // The test process itself is not in the cgroup: it may use /dev/zero.
    assert!(std::fs::File::open("/dev/zero").is_ok());

    // Deny everything, then allow /dev/null (c 1:3).
    let rules = vec![
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
    ];
    devicefilter::install(&cg.0, &rules).unwrap();
    assert_eq!(devicefilter::attached(&cg.0).unwrap().len(), 1);
    let step = probe(&cg.0, nodes.path(), false);
    assert_eq!(step, 0, "{}", STEPS[step as usize]);

    // An update replaces the program: /dev/zero readable, still not
    // writable (allowed rw, then denied w: the later deny wins for writes).
    let _ = std::fs::remove_file(nodes.path().join("null"));
    let mut more = rules.clone();
    more.push(rule(true, 'c', Some(1), Some(5), "rw"));
    more.push(rule(false, 'c', Some(1), Some(5), "w"));
    devicefilter::install(&cg.0, &more).unwrap();
    assert_eq!(
        devicefilter::attached(&cg.0).unwrap().len(),
        1,
        "the old program is detached"
    );
    let step = probe(&cg.0, nodes.path(), true);
    assert_eq!(step, 0, "after the update: {}", STEPS[step as usize]);
}
