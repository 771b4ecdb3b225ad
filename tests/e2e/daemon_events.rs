//! `docker events` against `berth daemon`: what the daemonless `berth` CLI
//! did before the daemon ran, and events as they happen, filtered.

use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::Env;
use crate::daemon::{ok, Daemon};

fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

const FORMAT: &str = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";

#[test]
fn docker_events_sees_the_cli_and_follows() {
    let env = Env::new();
    let t0 = now();
    // Before any daemon runs: the CLI alone.
    let r = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "early",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let d = Daemon::start(&env);
    let until = now();
    let past = ok(d.docker(&[
        "events", "--since", &t0, "--until", &until, "--format", FORMAT,
    ]));
    assert_eq!(
        past,
        "container create early\ncontainer start early\ncontainer die early\ncontainer destroy early\n"
    );

    // Followed: only what matches, as it happens, whoever does it.
    let mut follow = d
        .command(&[
            "events",
            "--filter",
            "type=container",
            "--filter",
            "event=start",
            "--filter",
            "event=die",
            "--format",
            FORMAT,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The stream is open once the CLI is connected: give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let t1 = now();
    let r = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "late",
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    ok(d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        "viaapi",
        "busybox",
        "true",
    ]));
    let mut got = Vec::new();
    while got.len() < 4 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => got.push(l),
            Err(_) => break,
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        got,
        [
            "container start late",
            "container die late",
            "container start viaapi",
            "container die viaapi"
        ]
    );

    // Networks and volumes, and a container filter by name.
    ok(d.docker(&["network", "create", "evnet"]));
    ok(d.docker(&["volume", "create", "evvol"]));
    ok(d.docker(&["network", "rm", "evnet"]));
    let until = now();
    let past = ok(d.docker(&[
        "events",
        "--since",
        &t1,
        "--until",
        &until,
        "--filter",
        "type=network",
        "--filter",
        "type=volume",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}",
    ]));
    let lines: Vec<&str> = past.lines().collect();
    assert_eq!(lines.len(), 3, "{past}");
    assert!(lines[0].starts_with("network create "), "{past}");
    assert_eq!(lines[1], "volume create evvol");
    assert!(lines[2].starts_with("network destroy "), "{past}");
    let late = ok(d.docker(&[
        "events",
        "--since",
        &t1,
        "--until",
        &until,
        "--filter",
        "container=late",
        "--format",
        FORMAT,
    ]));
    assert_eq!(late.lines().count(), 4, "{late}");
    assert!(late.lines().all(|l| l.ends_with(" late")), "{late}");
    ok(d.docker(&["volume", "rm", "evvol"]));
    d.stop();
    env.assert_clean();
}
