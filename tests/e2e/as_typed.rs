//! Everyday commands typed as a Docker user types them: from a project
//! directory, with relative paths, in docker's flag forms.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::common::{busybox_tar, eventually, Env};

fn ok(r: crate::common::Run) -> String {
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

/// A build context with a Dockerfile, a file and a subdirectory.
fn make_context(dir: &Path) {
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("file"), "hello\n").unwrap();
    fs::write(dir.join("sub/inner"), "inner\n").unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY . /app\nCOPY file /x\nCMD [\"cat\", \"/x\"]\n",
    )
    .unwrap();
}

#[test]
fn build_from_inside_the_context() {
    let env = Env::new();
    let work = env.workdir();
    let ctx = work.join("app");
    make_context(&ctx);
    // cd app && berth build -t app .
    ok(env.berth_in(&ctx, &["build", "-t", "app", "."]));
    let listing = ok(env.berth_in(
        &ctx,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "app",
            "find",
            "/app",
            "-type",
            "f",
        ],
    ));
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort();
    assert_eq!(files, ["/app/Dockerfile", "/app/file", "/app/sub/inner"]);
    assert_eq!(
        ok(env.berth_in(&ctx, &["run", "--rm", "--network", "none", "app"])),
        "hello\n"
    );
    // berth build ctx, and -f relative to the working directory.
    fs::write(
        work.join("Other.dockerfile"),
        "FROM busybox\nCOPY sub/inner /inner\n",
    )
    .unwrap();
    ok(env.berth_in(
        &work,
        &["build", "-t", "other", "-f", "Other.dockerfile", "app"],
    ));
    assert_eq!(
        ok(env.berth_in(
            &work,
            &["run", "--rm", "--network", "none", "other", "cat", "/inner"]
        )),
        "inner\n"
    );
    // The same context again from its parent: the cache holds the context.
    let again = ok(env.berth_in(&work, &["build", "-t", "app2", "app"]));
    assert!(again.contains("Using cache"), "{again}");
    assert_eq!(
        ok(env.berth(&["inspect", "-f", "{{.Id}}", "app2"])),
        ok(env.berth(&["inspect", "-f", "{{.Id}}", "app"]))
    );
    env.assert_clean();
}

#[test]
fn relative_paths_for_cp_save_load_import_export() {
    let env = Env::new();
    let work = env.workdir();
    let c = ok(env.berth_in(
        &work,
        &[
            "run",
            "-d",
            "--name",
            "c1",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo inside > /f; sleep 100",
        ],
    ));
    assert_eq!(c.trim().len(), 64);
    fs::create_dir(work.join("out")).unwrap();
    let out = work.join("out");
    eventually(Duration::from_secs(10), "/f in c1", || {
        (env.berth(&["exec", "c1", "cat", "/f"]).code == 0).then_some(())
    });
    // berth cp c1:/etc/hostname .   and   berth cp c1:/f got.txt
    ok(env.berth_in(&out, &["cp", "c1:/etc/hostname", "."]));
    let hostname = fs::read_to_string(out.join("hostname")).unwrap();
    assert_eq!(hostname.trim(), &c.trim()[..12]);
    ok(env.berth_in(&out, &["cp", "c1:/f", "got.txt"]));
    assert_eq!(fs::read_to_string(out.join("got.txt")).unwrap(), "inside\n");
    fs::write(out.join("local.txt"), "from the host\n").unwrap();
    ok(env.berth_in(&out, &["cp", "./local.txt", "c1:/tmp/"]));
    assert_eq!(
        ok(env.berth(&["exec", "c1", "cat", "/tmp/local.txt"])),
        "from the host\n"
    );
    // Nothing was written into the store's directories.
    let strays: Vec<_> = walk(&env.root)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n == "got.txt" || fs::read_to_string(p).is_ok_and(|t| t == hostname)
        })
        .collect();
    assert!(
        strays.is_empty(),
        "files written into the store: {strays:?}"
    );
    // export -o, import, save -o, load -i: all relative.
    ok(env.berth_in(&work, &["export", "-o", "fs.tar", "c1"]));
    ok(env.berth_in(&work, &["import", "fs.tar", "fromfs"]));
    ok(env.berth_in(&work, &["save", "-o", "img.tar", "fromfs"]));
    ok(env.berth_in(&work, &["rmi", "fromfs"]));
    ok(env.berth_in(&work, &["load", "-i", "img.tar"]));
    assert_eq!(
        ok(env.berth_in(
            &work,
            &["run", "--rm", "--network", "none", "fromfs", "cat", "/f"]
        )),
        "inside\n"
    );
    ok(env.berth(&["rm", "-f", "c1"]));
    env.assert_clean();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn relative_state_root_and_bind_mounts() {
    let env = Env::empty();
    let work = env.workdir();
    fs::copy(busybox_tar(), work.join("busybox.tar")).unwrap();
    fs::create_dir(work.join("data")).unwrap();
    fs::write(work.join("data/f"), "bound\n").unwrap();
    let state = ["--root", "state", "--runroot", "run"];
    let typed = |args: &[&str]| {
        let mut all = state.to_vec();
        all.extend_from_slice(args);
        env.berth_typed(&work, &all)
    };
    ok(typed(&["import", "busybox.tar", "busybox"]));
    assert_eq!(
        ok(typed(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "hi"
        ])),
        "hi\n"
    );
    // -v ./data:/data and --mount src=./data (docker 23+).
    assert_eq!(
        ok(typed(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "./data:/data",
            "busybox",
            "cat",
            "/data/f",
        ])),
        "bound\n"
    );
    assert_eq!(
        ok(typed(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--mount",
            "type=bind,src=./data,dst=/d,readonly",
            "busybox",
            "cat",
            "/d/f",
        ])),
        "bound\n"
    );
    let id = ok(typed(&[
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]));
    assert_eq!(
        ok(typed(&["exec", id.trim(), "echo", "joined"])),
        "joined\n"
    );
    ok(typed(&["rm", "-f", id.trim()]));
    assert_eq!(ok(typed(&["ps", "-aq"])), "");
    assert!(work.join("state/image").is_dir());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&*work.to_string_lossy()),
        "mounts left: {mounts}"
    );
}

#[test]
fn docker_flag_forms() {
    let env = Env::new();
    let work = env.workdir();
    let r = env.berth_in(
        &work,
        &[
            "run",
            "--rm=true",
            "-d=false",
            "--tty=false",
            "--privileged=false",
            "--network=none",
            "-eA=B",
            "-e=C=D",
            "-w/tmp",
            "-uroot",
            "busybox",
            "sh",
            "-c",
            "echo $A $C; pwd; id -u",
        ],
    );
    assert_eq!(ok(r), "B D\n/tmp\n0\n");
    // --detach=true prints the ID; --no-trunc=true lists it whole.
    let id = ok(env.berth(&[
        "run",
        "--detach=true",
        "--name=web",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]));
    let ps = ok(env.berth(&["ps", "--no-trunc=true", "-q"]));
    assert_eq!(ps.trim(), id.trim());
    // Flags after the arguments, as docker takes them.
    assert_eq!(ok(env.berth(&["rm", "web", "-f"])).trim(), "web");
    // The program's flags are the program's.
    assert_eq!(
        ok(env.berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ls",
            "-d",
            "/tmp"
        ])),
        "/tmp\n"
    );
    // Docker's errors and exit codes.
    let r = env.berth(&["run", "--foo", "busybox"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("unknown flag: --foo"), "{r:?}");
    let r = env.berth(&["ps", "-x"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("unknown shorthand flag: 'x' in -x"),
        "{r:?}"
    );
    let r = env.berth(&["run", "-d=maybe", "busybox"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("invalid argument \"maybe\""), "{r:?}");
    let r = env.berth(&["rename", "onlyone"]);
    assert_eq!(r.code, 1, "{r:?}");
    // rm -f of what is not there: said, and exit 0 (set -e scripts go on).
    let r = env.berth(&["rm", "-f", "nosuch"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("No such container: nosuch"), "{r:?}");
    assert_eq!(env.berth(&["rm", "nosuch"]).code, 1);
    env.assert_clean();
}

#[test]
fn published_port_attached_short_form() {
    let env = Env::new();
    let id = ok(env.berth(&["run", "-d", "-p18473:80", "busybox", "sleep", "100"]));
    assert_eq!(
        ok(env.berth(&["port", id.trim(), "80"])).trim(),
        "0.0.0.0:18473"
    );
    ok(env.berth(&["rm", "-f", id.trim()]));
    env.assert_clean();
}

#[test]
fn sig_proxy_false_lets_the_client_go() {
    let env = Env::new();
    let mut bg = env.start(&[
        "run",
        "--sig-proxy=false",
        "--name",
        "sp",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo ready; sleep 100",
    ]);
    assert_eq!(bg.line(), "ready");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    let r = bg.finish();
    assert_eq!(r.code, 128 + 15, "{r:?}");
    assert_eq!(env.inspect("sp", "{{.State.Running}}"), "true");
    // A bare --sig-proxy is true, and takes no value from the next word.
    let mut bg = env.start(&[
        "run",
        "--sig-proxy",
        "--name",
        "sp2",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    assert_eq!(bg.line(), "ready");
    bg.signal(nix::sys::signal::Signal::SIGTERM);
    let r = bg.finish();
    assert_eq!(r.code, 7, "{r:?}");
    ok(env.berth(&["rm", "-f", "sp", "sp2"]));
    env.assert_clean();
}

#[test]
fn version_and_info() {
    let env = Env::new();
    let v = ok(env.berth(&["--version"]));
    let rest = v.trim().strip_prefix("Berth version ").expect(&v);
    let (version, build) = rest.split_once(", build ").expect(&v);
    assert!(!version.is_empty() && !build.is_empty(), "{v}");
    assert_eq!(ok(env.berth(&["-v"])), v);
    assert_eq!(
        ok(env.berth(&["version", "--format", "{{.Client.Version}}"])).trim(),
        version
    );
    let text = ok(env.berth(&["version"]));
    assert!(text.starts_with("Client: Berth\n Version:"), "{text}");
    assert!(text.contains("\nServer: Berth Engine\n"), "{text}");
    // Scripts wait with `until docker info; do sleep 1; done`.
    let info = ok(env.berth(&["info"]));
    for line in [
        " Containers: 0",
        " Images: 1",
        " Storage Driver: overlay2",
        " Logging Driver: json-file",
        " Cgroup Driver: cgroupfs",
    ] {
        assert!(info.contains(line), "{line:?} in {info}");
    }
    assert!(
        info.contains(&format!(" Docker Root Dir: {}", env.root.display())),
        "{info}"
    );
    assert_eq!(
        ok(env.berth(&["info", "--format", "{{.ServerVersion}} {{.Images}}"])).trim(),
        format!("{version} 1")
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(env.berth(&["system", "info", "--format", "json"]))).unwrap();
    assert_eq!(json["Driver"], "overlay2");
    assert_eq!(json["ClientInfo"]["Version"], version);
}

#[test]
fn list_formats() {
    let env = Env::new();
    ok(env.berth(&[
        "run",
        "-d",
        "--name",
        "f1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]));
    // --format json: one object per line.
    let out = ok(env.berth(&["ps", "--format", "json"]));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["Names"], "f1");
    assert_eq!(rows[0]["State"], "running");
    // A typed \t is a tab.
    assert_eq!(
        ok(env.berth(&["ps", "--format", "{{.Names}}\\t{{.State}}"])),
        "f1\trunning\n"
    );
    let vols = ok(env.berth(&["volume", "ls", "--format", "json"]));
    assert_eq!(vols, "");
    let nets = ok(env.berth(&["network", "ls", "--format", "json"]));
    assert!(nets
        .lines()
        .any(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Name"] == "none"));
    // stats: a table template gets a header row, not the word "table".
    let stats = ok(env.berth(&[
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\\t{{.PIDs}}",
    ]));
    let lines: Vec<Vec<&str>> = stats
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines, [vec!["NAME", "PIDS"], vec!["f1", "1"]], "{stats}");
    ok(env.berth(&["rm", "-f", "f1"]));
    env.assert_clean();
}
