//! The engine as a library: one multi-threaded process drives it from many
//! threads at once, as an API server does. Each container's monitor is Berth's
//! own program; nothing is forked from this process.

use std::path::Path;
use std::time::Duration;

use berth_engine::logs::LogsOptions;
use berth_engine::monitor::proto;
use berth_engine::{
    ContainerOptions, CopyDirection, Engine, EngineConfig, ExecRequest, NetworkMode,
};

use crate::common::{eventually, Env, BERTH};

fn engine_for(env: &Env) -> Engine {
    Engine::open(EngineConfig {
        root: env.root.clone(),
        runroot: env.runroot.clone(),
        cgroup_parent: env.cgroup_parent.clone(),
        bridge: env.bridge.clone(),
        client_config: env.docker_config(),
        monitor_program: BERTH.into(),
        ..Default::default()
    })
    .unwrap()
}

/// An exec session's output and exit code.
fn read_session(mut sock: std::os::unix::net::UnixStream) -> (String, i32) {
    let mut out = String::new();
    loop {
        match proto::read_frame(&mut sock).unwrap() {
            Some((proto::STDOUT, data)) => out.push_str(&String::from_utf8_lossy(&data)),
            Some((proto::EXIT, data)) => return (out, proto::exit_code(&data).unwrap()),
            Some(_) => {}
            None => panic!("the session ended without an exit code: {out:?}"),
        }
    }
}

/// Everything one thread does with its own container.
fn one_life(engine: &Engine, i: i32, out: &Path) {
    let name = format!("lib{i}");
    let mut o = ContainerOptions::new("busybox");
    o.name = Some(name.clone());
    o.network = NetworkMode::None;
    o.cmd = vec![
        "sh".into(),
        "-c".into(),
        format!("echo {i} > /mine; echo hello {i}; sleep 100"),
    ];
    let rec = engine.create(o).unwrap();
    let started = engine.start_monitored(&rec.id, None, None).unwrap();
    assert!(started.pid > 0);
    // logs: the init's output.
    eventually(Duration::from_secs(10), "the log line", || {
        let mut lines = Vec::new();
        engine
            .logs(&name, &LogsOptions::default(), |e| {
                lines.push(e.log.clone());
                Ok(())
            })
            .unwrap();
        lines.contains(&format!("hello {i}\n")).then_some(())
    });
    // exec: its output, its exit code, and its record afterwards.
    let req = ExecRequest {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            format!("cat /mine; exit {}", i + 3),
        ],
        ..Default::default()
    };
    let exec = engine.exec_create(&name, &req).unwrap();
    assert!(!exec.running && exec.exit_code.is_none());
    let session = engine.exec_start(&exec.id, false).unwrap().unwrap();
    let pid = session.pid;
    let (stdout, code) = read_session(session.sock);
    assert_eq!((stdout.as_str(), code), (format!("{i}\n").as_str(), i + 3));
    let done = engine.exec_inspect(&exec.id).unwrap();
    assert_eq!(done.exit_code, Some(i + 3));
    assert_eq!(done.pid, pid);
    assert!(!done.running);
    assert_eq!(done.container_id, rec.id);
    // cp out of the running container.
    let dest = out.join(format!("mine-{i}"));
    engine
        .copy(
            &name,
            CopyDirection::FromContainer {
                src: "/mine",
                dest: &dest,
            },
        )
        .unwrap();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), format!("{i}\n"));
    // stop and rm.
    let stopped = engine.stop(&name, None, Some(0)).unwrap();
    assert_eq!(stopped.state.exit_code, 137);
    engine.remove(&name, false, false).unwrap();
}

#[test]
fn eight_threads_drive_one_engine() {
    let env = Env::new();
    let engine = engine_for(&env);
    let out = env.workdir();
    std::thread::scope(|s| {
        let lives: Vec<_> = (0..8)
            .map(|i| {
                let (engine, out) = (&engine, &out);
                s.spawn(move || one_life(engine, i, out))
            })
            .collect();
        for life in lives {
            life.join().unwrap();
        }
    });
    assert!(engine.containers().unwrap().is_empty());
    env.assert_clean();
}

#[test]
fn exec_records_outlive_the_session() {
    let env = Env::new();
    let engine = engine_for(&env);
    let r = env.berth(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    // A detached exec: the monitor keeps it, and records how it ended.
    let req = ExecRequest {
        cmd: vec!["sh".into(), "-c".into(), "sleep 0.2; exit 5".into()],
        ..Default::default()
    };
    let exec = engine.exec_create("ex", &req).unwrap();
    assert!(engine.exec_start(&exec.id, true).unwrap().is_none());
    let running = engine.exec_inspect(&exec.id).unwrap();
    assert!(running.running && running.pid > 0, "{running:?}");
    let done = eventually(Duration::from_secs(10), "the exec's end", || {
        let e = engine.exec_inspect(&exec.id[..12]).unwrap();
        e.exit_code.map(|c| (c, e.running))
    });
    assert_eq!(done, (5, false));
    // Started once only; an unknown ID is not found.
    assert!(engine.exec_start(&exec.id, true).is_err());
    let err = engine.exec_inspect("0123456789ab").unwrap_err();
    assert_eq!(err.kind(), berth_engine::ErrorKind::NotFound);
    // A command that is not there: 127, recorded.
    let req = ExecRequest {
        cmd: vec!["nosuch".into()],
        ..Default::default()
    };
    let missing = engine.exec_create("ex", &req).unwrap();
    let err = engine.exec_start(&missing.id, false).err().unwrap();
    assert_eq!(berth_engine::exit_code_for(&err), 127, "{err}");
    assert_eq!(
        engine.exec_inspect(&missing.id).unwrap().exit_code,
        Some(127)
    );
    assert_eq!(engine.execs("ex").unwrap().len(), 2);
    assert_eq!(env.berth(&["rm", "-f", "ex"]).code, 0);
    env.assert_clean();
}
