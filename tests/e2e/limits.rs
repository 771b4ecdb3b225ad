//! cgroup limits: the values land in the kernel's files and are enforced.

use std::path::Path;

use crate::common::{cgroup_v2, Env};

/// Reads a cgroup file of the running container: v1 `controller/file`, or the
/// v2 file with the same meaning.
fn read(env: &Env, id: &str, v1: (&str, &str), v2: &str) -> String {
    let path = if cgroup_v2() {
        Path::new("/sys/fs/cgroup")
            .join(&env.cgroup_parent)
            .join(id)
            .join(v2)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(v1.0)
            .join(&env.cgroup_parent)
            .join(id)
            .join(v1.1)
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_land_in_the_cgroup_files() {
    let env = Env::new();
    let mut bg = env.start(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "20000",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; cat /proc/self/cgroup; echo ready; sleep 30 & wait",
    ]);
    let inside = bg.until("ready");
    // The cgroup namespace makes the container's cgroup its root.
    assert!(
        !inside.is_empty() && inside.iter().all(|l| l.ends_with(":/")),
        "{inside:?}"
    );
    let id = env.only_container_id();
    if cgroup_v2() {
        assert_eq!(read(&env, &id, ("", ""), "memory.max"), "67108864");
        assert_eq!(read(&env, &id, ("", ""), "cpu.max"), "20000 100000");
        assert_eq!(read(&env, &id, ("", ""), "cpu.weight"), "59");
    } else {
        assert_eq!(
            read(&env, &id, ("memory", "memory.limit_in_bytes"), ""),
            "67108864"
        );
        assert_eq!(read(&env, &id, ("cpu", "cpu.cfs_quota_us"), ""), "20000");
        assert_eq!(read(&env, &id, ("cpu", "cpu.cfs_period_us"), ""), "100000");
        assert_eq!(read(&env, &id, ("cpu", "cpu.shares"), ""), "512");
    }
    assert_eq!(
        read(&env, &id, ("cpuset", "cpuset.cpus"), "cpuset.cpus"),
        "0"
    );
    assert_eq!(read(&env, &id, ("pids", "pids.max"), "pids.max"), "50");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    let r = bg.finish();
    assert_eq!(r.code, 0, "{r:?}");
    env.assert_clean();
}

#[test]
fn cpus_alone_set_a_100ms_period() {
    let env = Env::new();
    let mut bg = env.start(&[
        "run",
        "--rm",
        "--cpus",
        "1.5",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo ready; sleep 30 & wait",
    ]);
    assert_eq!(bg.line(), "ready");
    let id = env.only_container_id();
    if cgroup_v2() {
        assert_eq!(read(&env, &id, ("", ""), "cpu.max"), "150000 100000");
    } else {
        assert_eq!(read(&env, &id, ("cpu", "cpu.cfs_quota_us"), ""), "150000");
        assert_eq!(read(&env, &id, ("cpu", "cpu.cfs_period_us"), ""), "100000");
    }
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(bg.finish().code, 0);
    env.assert_clean();
}

#[test]
fn memory_limit_is_enforced_by_the_oom_killer() {
    let env = Env::new();
    // dd allocates its 256 MiB block and fills it: far past the 16 MiB limit.
    let r = env.berth(&[
        "run",
        "--rm",
        "-m",
        "16m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=256M",
        "count=1",
    ]);
    assert_eq!(r.code, 137, "{r:?}");
    env.assert_clean();
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let env = Env::new();
    let r = env.berth(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done 2>&1",
    ]);
    // busybox sh gives up on a failed fork: the loop never reached 30.
    assert!(
        r.stdout
            .contains("can't fork: Resource temporarily unavailable"),
        "{r:?}"
    );
    assert_ne!(r.code, 0, "{r:?}");
    env.assert_clean();
}

#[test]
fn runs_on_a_pure_cgroup_v2_host() {
    // A private mount namespace whose /sys/fs/cgroup is a cgroup2 mount: the
    // layout of a pure v2 host (this one's controllers stay with v1, so no limits).
    let env = Env::new();
    let cmd = env.command(&[]);
    let berth: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let berth = berth.join(" ");
    let parent = &env.cgroup_parent;
    let script = format!(
        "set -e; umount -l /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup; \
         {berth} run --rm busybox sh -c 'cat /proc/self/cgroup; grep \" /sys/fs/cgroup \" /proc/self/mountinfo; \
         mkdir /sys/fs/cgroup/sub 2>/dev/null && echo mkdir-ok || echo mkdir-refused; echo procs=$(cat /sys/fs/cgroup/cgroup.procs)'; \
         {berth} run -d --name v2c busybox sleep 60 >/dev/null; \
         echo exec=$({berth} exec v2c sh -c 'echo $$; cat /sys/fs/cgroup/cgroup.procs' | tr '\\n' ' '); \
         {berth} rm -f v2c >/dev/null; \
         echo left=$(find /sys/fs/cgroup/{parent} -mindepth 1 -type d | wc -l); rmdir /sys/fs/cgroup/{parent}; rmdir /sys/fs/cgroup/berth-test 2>/dev/null || true"
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(|l| l == "0::/"),
        "cgroup namespace root: {text}"
    );
    // /sys/fs/cgroup is cgroup2, read-only, rooted at the container's cgroup.
    let mount = text
        .lines()
        .find(|l| l.contains(" /sys/fs/cgroup "))
        .unwrap_or_else(|| panic!("no /sys/fs/cgroup mount: {text}"));
    assert!(
        mount.contains(" / /sys/fs/cgroup ro,") && mount.contains(" - cgroup2 "),
        "{mount}"
    );
    assert!(text.lines().any(|l| l == "mkdir-refused"), "{text}");
    let procs = text.lines().find_map(|l| l.strip_prefix("procs="));
    assert!(
        procs.is_some_and(|p| p.split(' ').any(|pid| pid == "1")),
        "{text}"
    );
    // An exec'd process starts in the container's cgroup too.
    let exec: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("exec="))
        .unwrap_or_else(|| panic!("no exec output: {text}"))
        .split_whitespace()
        .collect();
    assert!(
        exec.len() >= 3 && exec[1..].contains(&exec[0]) && exec[1..].contains(&"1"),
        "the exec's shell and the init in the cgroup: {text}"
    );
    assert!(text.contains("left=0"), "{text}");
    env.assert_clean();
}

/// Where the container finds its limits at /sys/fs/cgroup: the files of v1
/// (memory, cpu quota) or of v2, with what `-m 64m --cpus 0.5` writes there.
fn limit_files() -> [(&'static str, &'static str); 2] {
    if cgroup_v2() {
        [
            ("/sys/fs/cgroup/memory.max", "67108864"),
            ("/sys/fs/cgroup/cpu.max", "50000 100000"),
        ]
    } else {
        [
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "67108864"),
            ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000"),
        ]
    }
}

/// A script that prints both limit files, tries to write the memory limit
/// (its own value: harmless where it works) and prints /proc/self/cgroup.
fn limits_script() -> String {
    let [(mem, _), (cpu, _)] = limit_files();
    format!(
        "cat {mem} {cpu}; if echo 67108864 > {mem}; then echo written; else echo refused; fi; \
         cat /proc/self/cgroup"
    )
}

/// The container's own limits at /sys/fs/cgroup, as the JVM, Go, .NET and
/// nproc look for them: read-only, and rooted at the container's cgroup.
#[test]
fn sys_fs_cgroup_shows_the_limits_read_only() {
    let env = Env::new();
    let script = limits_script();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "-m", "64m", "--cpus", "0.5"];
        args.extend(extra);
        args.extend(["busybox", "sh", "-c", &script]);
        let r = env.berth(&args);
        assert_eq!(r.code, 0, "{r:?}");
        r
    };
    let [(_, mem), (_, cpu)] = limit_files();
    let r = run(&[]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[..3], [mem, cpu, "refused"], "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    let cgroups = &lines[3..];
    assert!(
        !cgroups.is_empty() && cgroups.iter().all(|l| l.ends_with(":/")),
        "{r:?}"
    );
    // Privileged containers get it read-write, as under docker.
    let r = run(&["--privileged"]);
    assert_eq!(r.stdout.lines().nth(2), Some("written"), "{r:?}");
    env.assert_clean();
}

#[test]
fn exec_sees_the_container_cgroups() {
    let env = Env::new();
    let r = env.berth(&[
        "run", "-d", "--name", "c", "-m", "64m", "--cpus", "0.5", "busybox", "sleep", "30",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["exec", "c", "sh", "-c", &limits_script()]);
    assert_eq!(r.code, 0, "{r:?}");
    let [(_, mem), (_, cpu)] = limit_files();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[..3], [mem, cpu, "refused"], "{r:?}");
    assert!(lines[3..].iter().all(|l| l.ends_with(":/")), "{r:?}");
    assert_eq!(env.berth(&["rm", "-f", "c"]).code, 0);
    env.assert_clean();
}
