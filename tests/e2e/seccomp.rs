//! Seccomp, tested as attacks: a program in the container (a static probe)
//! tries the system calls docker's default profile refuses, as the
//! container's root and as an ordinary user, in the container's init and in
//! an exec; `--security-opt` and `--privileged` change what it may do.

use std::path::PathBuf;

use crate::common::Env;

fn ok(r: &crate::common::Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.clone()
}

/// A directory with the probe, for `-v DIR:/x:ro`.
fn probe(env: &Env) -> PathBuf {
    let bin = env.workdir().join("bin");
    if !bin.join("probe").exists() {
        std::fs::create_dir_all(&bin).unwrap();
        crate::exec_attack::build_static("seccomp_probe", &bin, "probe");
    }
    bin
}

const ATTACKS: [&str; 8] = [
    "unshare-user",
    "unshare-net",
    "add_key",
    "keyctl",
    "perf_event_open",
    "io_uring_setup",
    "personality",
    "move_pages",
];

fn run_probe(env: &Env, extra: &[&str], calls: &[&str]) -> String {
    let bin = probe(env);
    let vol = format!("{}:/x:ro", bin.display());
    let mut cmd = vec!["run", "--rm", "-v", &vol];
    cmd.extend(extra);
    cmd.extend(["busybox", "/x/probe"]);
    cmd.extend(calls);
    ok(&env.berth(&cmd))
}

#[test]
fn the_default_profile_refuses_docker_s_list_as_root_and_as_a_user() {
    let env = Env::new();
    let status = ok(&env.berth(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]));
    assert_eq!(status.split_whitespace().nth(1), Some("2"), "{status}");
    for user in [&[][..], &["--user", "1000:1000"]] {
        let mut calls = ATTACKS.to_vec();
        calls.extend(["clone3", "getpid"]);
        let out = run_probe(&env, user, &calls);
        for a in ATTACKS {
            assert!(
                out.contains(&format!("{a} errno 1\n")),
                "{user:?} {a}: {out}"
            );
        }
        // clone3 says "not implemented", so libcs fall back to clone,
        // whose namespace flags the filter checks.
        assert!(out.contains("clone3 errno 38\n"), "{out}");
        assert!(out.contains("getpid ok\n"), "{out}");
    }
    // Ordinary programs are unaffected.
    let out = ok(&env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ls / >/dev/null && sleep 0.1 && ping -c1 -W1 127.0.0.1 >/dev/null && echo fine",
    ]));
    assert_eq!(out, "fine\n");
    // A granted capability brings its system calls back, as docker's
    // profile says.
    let out = run_probe(&env, &["--cap-add", "SYS_ADMIN"], &["unshare-net"]);
    assert_eq!(out, "unshare-net ok\n");
    env.assert_clean();
}

#[test]
fn exec_d_processes_are_filtered_too() {
    let env = Env::new();
    let bin = probe(&env);
    let vol = format!("{}:/x:ro", bin.display());
    ok(&env.berth(&[
        "run", "-d", "--name", "c", "-v", &vol, "busybox", "sleep", "60",
    ]));
    let out = ok(&env.berth(&["exec", "c", "/x/probe", "unshare-user", "keyctl"]));
    assert_eq!(out, "unshare-user errno 1\nkeyctl errno 1\n");
    let out = ok(&env.berth(&[
        "exec",
        "-u",
        "1000",
        "c",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]));
    assert_eq!(out.split_whitespace().nth(1), Some("2"), "{out}");
    ok(&env.berth(&["rm", "-f", "c"]));
    env.assert_clean();
}

#[test]
fn unconfined_privileged_and_custom_profiles() {
    let env = Env::new();
    for opts in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"],
    ] {
        let out = run_probe(&env, opts, &["personality", "move_pages"]);
        assert_eq!(out, "personality ok\nmove_pages ok\n", "{opts:?}");
    }
    // A profile of the user's, named relative to the working directory.
    let work = env.workdir();
    std::fs::write(
        work.join("no-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let bin = probe(&env);
    let vol = format!("{}:/x:ro", bin.display());
    let out = ok(&env.berth_in(
        &work,
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=no-mkdir.json",
            "-v",
            &vol,
            "busybox",
            "/x/probe",
            "mkdir",
            "personality",
        ],
    ));
    // Its rules, not the default's: mkdir refused with its errno,
    // personality allowed by its default.
    assert_eq!(out, "mkdir errno 13\npersonality ok\n");
    let id = ok(&env.berth_in(
        &work,
        &[
            "create",
            "--security-opt=seccomp=no-mkdir.json",
            "--security-opt",
            "no-new-privileges",
            "busybox",
            "true",
        ],
    ));
    let opts = env.inspect(id.trim(), "{{json .HostConfig.SecurityOpt}}");
    assert!(
        opts.contains("SCMP_ACT_ALLOW") && opts.contains("no-new-privileges"),
        "{opts}"
    );
    ok(&env.berth(&["rm", id.trim()]));

    // Bad profiles are refused by name and leave nothing behind.
    std::fs::write(work.join("broken.json"), "{ not json").unwrap();
    for (opt, says) in [
        (
            "seccomp=missing.json",
            "opening seccomp profile (missing.json) failed",
        ),
        ("seccomp=broken.json", "Decoding seccomp profile failed"),
        ("colour=blue", "invalid --security-opt 2"),
    ] {
        let r = env.berth_in(
            &work,
            &["run", "--rm", "--security-opt", opt, "busybox", "true"],
        );
        assert_eq!(r.code, 125, "{opt}: {r:?}");
        assert!(r.stderr.contains(says), "{opt}: {r:?}");
    }
    let info = ok(&env.berth(&["info", "--format", "{{json .SecurityOptions}}"]));
    assert!(info.contains("name=seccomp,profile=builtin"), "{info}");
    env.assert_clean();
}

#[test]
fn setuid_programs_work_unless_no_new_privileges() {
    let env = Env::new();
    let bin = probe(&env);
    let vol = format!("{}:/x:ro", bin.display());
    ok(&env.berth(&[
        "run",
        "--name",
        "mk",
        "-v",
        &vol,
        "busybox",
        "sh",
        "-c",
        "cp /x/probe /suid-probe && chmod 4755 /suid-probe",
    ]));
    ok(&env.berth(&["commit", "mk", "suid"]));
    ok(&env.berth(&["rm", "mk"]));
    // As docker: a setuid-root program in the image makes its user root
    // (su, sudo and ping rely on it), unless no-new-privileges is asked.
    let out = ok(&env.berth(&["run", "--rm", "-u", "1000", "suid", "/suid-probe", "euid"]));
    assert_eq!(out, "euid 0\n");
    for opt in ["no-new-privileges", "no-new-privileges=true"] {
        let out = ok(&env.berth(&[
            "run",
            "--rm",
            "-u",
            "1000",
            "--security-opt",
            opt,
            "suid",
            "/suid-probe",
            "euid",
        ]));
        assert_eq!(out, "euid 1000\n", "{opt}");
    }
    env.assert_clean();
}
