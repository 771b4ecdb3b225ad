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
    // Push and pull are image events, named by the reference.
    let until = chrono::Utc::now().timestamp() + 1;
    let events = ok(d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "type=image",
        "--filter",
        "event=push",
        "--filter",
        "event=pull",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]));
    let repo = format!("{}/me/app", reg.addr);
    assert_eq!(events, format!("push {name} {repo}\npull {name} {repo}\n"));
    // A classic build whose base is in the registry: the CLI sends its
    // credentials (X-Registry-Config) for the FROM pull, the daemon keeps
    // none of them.
    ok(d.docker(&["rmi", &name]));
    let dir = env.workdir();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {name}\nRUN echo built > /b\n"),
    )
    .unwrap();
    let built = d.docker_in(&dir, &["build", "-q", "-t", "frompriv", "."]);
    assert_eq!(built.code, 0, "{built:?}");
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", "frompriv", "cat", "/b"])),
        "built\n"
    );
    ok(d.docker(&["rmi", "frompriv"]));
    d.stop();
    env.assert_clean();
}

/// Image events, as docker's: what the daemonless CLI and the daemon did to
/// images (tag, untag, save, load, import, delete), in one log that
/// `docker events --filter type=image` reads.
#[test]
fn image_events_from_the_cli_and_the_daemon() {
    let env = Env::new();
    let dir = env.workdir();
    let rootfs = crate::common::busybox_tar().to_string_lossy().into_owned();
    let id = env.inspect("busybox", "{{.Id}}");
    let berth = |args: &[&str]| {
        let r = env.berth_in(&dir, args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        r.stdout
    };
    // The CLI alone, before any daemon.
    berth(&["tag", "busybox", "cli:v1"]);
    berth(&["save", "-o", "cli.tar", "cli:v1"]);
    berth(&["rmi", "cli:v1"]);
    berth(&["load", "-i", "cli.tar"]);
    let imported = berth(&["import", &rootfs, "imp:v1"]).trim().to_string();
    // The daemon.
    let d = Daemon::start(&env);
    let docker = |args: &[&str]| ok(d.docker_in(&dir, args));
    docker(&["tag", "busybox", "api:v1"]);
    docker(&["rmi", "api:v1"]);
    docker(&["save", "-o", "api.tar", "busybox"]);
    docker(&["load", "-i", "api.tar"]);
    docker(&["rmi", "imp:v1", "cli:v1"]);
    let until = chrono::Utc::now().timestamp() + 1;
    let events = docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    let (i, m) = (id.as_str(), imported.as_str());
    let want = [
        format!("tag {i} cli:v1"),
        format!("save {i} {i}"),
        format!("untag {i} {i}"),
        format!("load {i} {i}"),
        format!("import {m} {m}"),
        format!("tag {m} imp:v1"),
        format!("tag {i} api:v1"),
        format!("untag {i} {i}"),
        format!("save {i} {i}"),
        format!("load {i} {i}"),
        format!("untag {m} {m}"),
        format!("delete {m} {m}"),
        format!("untag {i} {i}"),
    ];
    // The setup's own import of busybox comes first.
    let got: Vec<&str> = events.lines().collect();
    assert!(got.len() >= want.len(), "{events}");
    assert_eq!(got[got.len() - want.len()..], want, "{events}");
    // Other types are left out, and docker's own line shows the action.
    let plain = docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "type=image",
        "--filter",
        "event=import",
    ]);
    assert!(
        plain.lines().all(|l| l.contains(" image import sha256:")),
        "{plain}"
    );
    d.stop();
    env.assert_clean();
}
