//! Failed runs: docker's exit codes, one clear line, and nothing left behind.

use crate::common::Env;

fn fails(env: &Env, args: &[&str], code: i32, message: &str) {
    let r = env.berth(args);
    assert_eq!(r.code, code, "{args:?}: {r:?}");
    assert!(
        r.stderr.contains(message),
        "{args:?}: expected {message:?} in {r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "one line of error: {r:?}");
    assert!(r.stderr.starts_with("berth: "), "{r:?}");
    env.assert_clean();
}

#[test]
fn command_not_found_is_127() {
    let env = Env::new();
    fails(
        &env,
        &["run", "--rm", "busybox", "nosuchcmd"],
        127,
        "exec: \"nosuchcmd\": not found in $PATH",
    );
    fails(
        &env,
        &["run", "--rm", "busybox", "/no/such/file"],
        127,
        "exec: \"/no/such/file\": no such file or directory",
    );
}

#[test]
fn command_not_executable_is_126() {
    let env = Env::new();
    fails(
        &env,
        &["run", "--rm", "busybox", "/etc/passwd"],
        126,
        "exec: \"/etc/passwd\": permission denied",
    );
}

#[test]
fn bad_input_is_125() {
    let env = Env::new();
    fails(
        &env,
        &["run", "--rm", "--pull", "never", "nosuch"],
        125,
        "image \"nosuch\" not found",
    );
    // Pulled first, from a registry that is not there: nothing is left.
    let r = env.berth(&["run", "--rm", "127.0.0.1:1/nosuch"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("cannot reach registry 127.0.0.1:1"),
        "{r:?}"
    );
    env.assert_clean();
    fails(
        &env,
        &["run", "--rm", "-m", "lots", "busybox", "true"],
        125,
        "invalid size: 'lots'",
    );
    fails(
        &env,
        &["run", "--rm", "-m", "1k", "busybox", "true"],
        125,
        "Minimum memory limit allowed is 6MB",
    );
    fails(
        &env,
        &["run", "--rm", "--cpuset-cpus", "99", "busybox", "true"],
        125,
        "Requested CPUs are not available",
    );
    fails(
        &env,
        &["run", "--rm", "--cpus", "many", "busybox", "true"],
        125,
        "invalid argument \"many\" for \"--cpus\" flag",
    );
    fails(
        &env,
        &["run", "--rm", "-u", "ghost", "busybox", "true"],
        125,
        "unable to find user ghost",
    );
    fails(
        &env,
        &["run", "--rm", "-w", "relative", "busybox", "true"],
        125,
        "needs to be an absolute path",
    );
    fails(
        &env,
        &["run", "--rm", "--cap-add", "BOGUS", "busybox", "true"],
        125,
        "unknown capability: \"BOGUS\"",
    );
    fails(
        &env,
        &["run", "--rm", "--network", "nosuchnet", "busybox", "true"],
        125,
        "network nosuchnet not found",
    );
    fails(
        &env,
        &["run", "--rm", "BadName", "true"],
        125,
        "invalid reference format",
    );
}

#[test]
fn image_without_command_is_125() {
    let env = Env::new();
    fails(
        &env,
        &["run", "--rm", "busybox"],
        125,
        "No command specified",
    );
}

#[test]
fn failed_start_without_rm_keeps_a_record_but_no_cgroup() {
    let env = Env::new();
    let r = env.berth(&["run", "--name", "broken", "busybox", "nosuchcmd"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(env.cgroup_dirs().is_empty());
    let ps = env.berth(&["ps", "-a"]);
    assert!(ps.stdout.contains("broken"), "{ps:?}");
    assert_eq!(env.berth(&["rm", "broken"]).code, 0);
    env.assert_clean();
}
