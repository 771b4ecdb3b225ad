//! `docker build` (the classic builder, `DOCKER_BUILDKIT=0`) and docker-py's
//! `images.build` against `berth daemon`: `POST /build`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{eventually, wait_timeout, Env};
use crate::daemon::{ok, test_python, Daemon};

#[test]
fn docker_build_through_the_daemon() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let dir = env.workdir();
    std::fs::write(dir.join("hello.txt"), "hello from the context\n").unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nARG GREETING=none\nCOPY hello.txt /hello.txt\n\
         RUN echo \"$GREETING\" > /greet && cat /hello.txt\nCMD [\"cat\", \"/greet\", \"/hello.txt\"]\n",
    )
    .unwrap();
    let out = ok(d.docker_in(
        &dir,
        &[
            "build",
            "-t",
            "app",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "team=berth",
            ".",
        ],
    ));
    assert!(out.contains("Step 1/5 : FROM busybox"), "{out}");
    assert!(out.contains("hello from the context"), "{out}");
    assert!(out.contains("Successfully tagged app:latest"), "{out}");
    assert_eq!(
        ok(d.docker(&["run", "--rm", "--network", "none", "app"])),
        "hi\nhello from the context\n"
    );
    assert_eq!(
        ok(d.docker(&[
            "image",
            "inspect",
            "app",
            "--format",
            "{{index .Config.Labels \"team\"}}"
        ])),
        "berth\n"
    );
    // -q prints the ID only; a second build is all cache.
    let id = ok(d.docker_in(
        &dir,
        &[
            "build",
            "-q",
            "-t",
            "app",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "team=berth",
            ".",
        ],
    ));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    // -f names a Dockerfile elsewhere (the CLI sends it inside the
    // context), --target a stage.
    std::fs::write(
        dir.join("sub/Other"),
        "FROM busybox AS base\nRUN echo base > /stage\nFROM base AS final\nRUN echo final > /stage\n",
    )
    .unwrap();
    ok(d.docker_in(
        &dir,
        &[
            "build",
            "-f",
            "sub/Other",
            "--target",
            "base",
            "-t",
            "staged",
            ".",
        ],
    ));
    assert_eq!(
        ok(d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "staged",
            "cat",
            "/stage"
        ])),
        "base\n"
    );
    // A failing step: the CLI exits 1 with the builder's message, and no
    // step container stays.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let r = d.docker_in(&bad, &["build", "-t", "bad", "."]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("returned a non-zero code: 3"), "{r:?}");
    let r = d.docker_in(&bad, &["build", "-f", "Missing", "."]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
    ok(d.docker(&["rmi", "app", "staged"]));
    d.stop();
    env.assert_clean();
}

#[test]
fn a_client_that_leaves_cancels_its_build() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let dir = env.workdir();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo started; sleep 1000\n",
    )
    .unwrap();
    let mut client = d
        .command(&["build", "-t", "slow", "."])
        .current_dir(&dir)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The step runs: its container is there.
    eventually(Duration::from_secs(20), "the step's container", || {
        let r = env.berth(&["ps", "-q"]);
        (r.code == 0 && !r.stdout.trim().is_empty()).then_some(())
    });
    client.kill().unwrap();
    let _ = client.wait();
    eventually(
        Duration::from_secs(20),
        "the step container removed",
        || {
            let r = env.berth(&["ps", "-aq"]);
            (r.code == 0 && r.stdout.trim().is_empty()).then_some(())
        },
    );
    let r = env.berth(&["image", "inspect", "slow"]);
    assert_ne!(r.code, 0, "a cancelled build tagged its image: {r:?}");
    d.stop();
    env.assert_clean();
}

#[test]
fn docker_py_builds_and_hostile_contexts_fail() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/data/docker_py_build.py");
    let dir = env.workdir();
    let mut child = Command::new(test_python())
        .arg(&script)
        .arg(format!("unix://{}", d.socket.display()))
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = wait_timeout(&mut child, Duration::from_secs(120));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "docker-py build ok\n"),
        "{r:?}"
    );
    // Nothing of the hostile context landed outside its scratch directory.
    assert!(!dir.join("victim/planted").exists());
    let tmp = env.root.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build scratch left: {left:?}");
    d.stop();
    env.assert_clean();
}

/// A context by URL (`POST /build?remote=`, docker-py's `path=URL`): an
/// archive, a Dockerfile and a git repository at a ref and subdirectory,
/// served over http on 127.0.0.1 (git's dumb http).
#[test]
fn docker_py_builds_remote_contexts() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let site = env.workdir().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let script = r#"
set -e
mkdir ctx && cd ctx
printf 'FROM busybox\nCOPY hello /hello\n' > Dockerfile
echo 'from the archive' > hello
tar -czf ../ctx.tar.gz Dockerfile hello
cd .. && rm -r ctx
printf 'FROM busybox\nRUN echo plain > /p\n' > Dockerfile.plain
git init -q -b main work && cd work
git config user.email t@example.com && git config user.name t
mkdir web
printf 'FROM busybox\nCOPY site /site\n' > web/Dockerfile
echo 'version one' > web/site
git add -A && git commit -qm one && git tag v1
echo 'version two' > web/site
git commit -qam two
cd .. && git clone -q --bare work repo.git && rm -rf work
git -C repo.git update-server-info
"#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(&site)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let port = crate::distribution::free_port().to_string();
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port])
        .current_dir(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(10), "the http server", || {
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).ok()
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/data/docker_py_remote.py");
    let mut child = Command::new(test_python())
        .arg(&script)
        .arg(format!("unix://{}", d.socket.display()))
        .arg(&base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = wait_timeout(&mut child, Duration::from_secs(120));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "docker-py remote ok\n"),
        "{r:?}"
    );
    let left: Vec<_> = std::fs::read_dir(env.root.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build scratch left: {left:?}");
    d.stop();
    env.assert_clean();
}
