//! Images through `berth daemon` as a docker user moves them: commit,
//! history, save, load, import; system df and the prunes.

use std::process::Stdio;

use crate::common::{busybox_tar, wait_timeout, Env};
use crate::daemon::{ok, Daemon};

#[test]
fn docker_commit_history_save_load_import_and_prune() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let dir = env.workdir();
    ok(d.docker(&[
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo committed > /f",
    ]));
    let id = ok(d.docker(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/f\"]",
        "-m",
        "a note",
        "c1",
        "snap:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", "snap:1"])),
        "committed\n"
    );
    let hist = ok(d.docker(&[
        "history",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "snap:1",
    ]));
    let first = hist.lines().next().unwrap_or_default();
    assert_eq!(first, "a note|sh -c echo committed > /f", "{hist}");

    // save to a file, remove, load it back.
    let archive = dir.join("snap.tar");
    ok(d.docker(&["save", "-o", archive.to_str().unwrap(), "snap:1"]));
    ok(d.docker(&["rmi", "snap:1"]));
    let r = d.docker(&["image", "inspect", "snap:1"]);
    assert_ne!(r.code, 0);
    let loaded = ok(d.docker(&["load", "-i", archive.to_str().unwrap()]));
    assert!(loaded.contains("Loaded image: snap:1"), "{loaded}");
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", "snap:1"])),
        "committed\n"
    );

    // import a root filesystem from stdin with a change.
    let mut child = d
        .command(&["import", "-c", "CMD [\"echo\", \"imported\"]", "-", "imp:1"])
        .stdin(std::fs::File::open(busybox_tar()).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = wait_timeout(&mut child, std::time::Duration::from_secs(30));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", "imp:1"])),
        "imported\n"
    );

    let df = ok(d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]));
    assert!(df.contains("Containers 1"), "{df}");
    // The prunes, each with what it removed.
    let pruned = ok(d.docker(&["container", "prune", "-f"]));
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
    ok(d.docker(&["volume", "create", "unused"]));
    let pruned = ok(d.docker(&["volume", "prune", "-a", "-f"]));
    assert!(pruned.contains("unused"), "{pruned}");
    ok(d.docker(&["network", "create", "idle"]));
    let pruned = ok(d.docker(&["network", "prune", "-f"]));
    assert!(pruned.contains("idle"), "{pruned}");
    let pruned = ok(d.docker(&["image", "prune", "-a", "-f"]));
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    let left = ok(d.docker(&["images", "-q"]));
    assert_eq!(left, "", "images left after prune -a: {left}");
    d.stop();
    env.assert_clean();
}

/// `docker login` checks through `/auth` and the CLI keeps the
/// credentials; push and pull send them (X-Registry-Auth) and the daemon
/// stores none of them.
#[test]
fn docker_login_push_and_pull_through_the_daemon() {
    use crate::distribution::{htpasswd, DockerRegistry};
    let reg = DockerRegistry::start(Some(&htpasswd("me", "s3cret")));
    let env = Env::new();
    let d = Daemon::start(&env);
    let name = format!("{}/me/app:v1", reg.addr);
    ok(d.docker(&["tag", "busybox", &name]));
    let denied = d.docker(&["push", &name]);
    assert_ne!(denied.code, 0, "{denied:?}");
    let wrong = d.docker(&["login", &reg.addr, "-u", "me", "-p", "nope"]);
    assert_ne!(wrong.code, 0, "{wrong:?}");
    let r = d.docker(&["login", &reg.addr, "-u", "me", "-p", "s3cret"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Login Succeeded"), "{r:?}");
    let pushed = ok(d.docker(&["push", &name]));
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");
    ok(d.docker(&["rmi", &name]));
    ok(d.docker(&["pull", &name]));
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", &name, "echo", "pulled"])),
        "pulled\n"
    );
    // The daemon kept no credentials of its own.
    assert!(!env.docker_config().join("config.json").exists());
    d.stop();
    env.assert_clean();
}
