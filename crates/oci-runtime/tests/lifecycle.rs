//! berth-runtime driven as containerd's shim and a user drive runc: the
//! lifecycle of a bundle made with `berth-runtime spec` (runc's template),
//! with runc's exit codes, state documents and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RUNTIME: &str = env!("CARGO_BIN_EXE_berth-runtime");

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle with the busybox root filesystem the repository's script
    /// writes, and config.json from `berth-runtime spec` running `args`.
    fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-oci-")
            .tempdir()
            .unwrap();
        let tar = dir.path().join("rootfs.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let st = Command::new("tar")
            .arg("-C")
            .arg(dir.path().join("rootfs"))
            .arg("-xf")
            .arg(&tar)
            .status()
            .unwrap();
        assert!(st.success());
        let b = Bundle { dir };
        // As a user types it: in the bundle, relative paths.
        let out = b.rt(&["spec"]);
        assert!(out.status.success(), "{out:?}");
        let path = b.path().join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec["process"]["args"] = serde_json::json!(args);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        b
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `berth-runtime --root STATE args...`, typed in the bundle. Its output
    /// goes to files: a created container's init keeps the stdio it was
    /// given (as runc's does), so pipes would stay open as long as it lives.
    fn rt(&self, args: &[&str]) -> Output {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let status = Command::new(RUNTIME)
            .arg("--root")
            .arg(self.state_root())
            .args(args)
            .current_dir(self.path())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .unwrap();
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    fn status(&self, id: &str) -> String {
        let out = self.rt(&["state", id]);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn run_exits_with_the_container_s_code() {
    let b = Bundle::new(&["sh", "-c", "echo hello from $(hostname); exit 3"]);
    let out = b.rt(&["run", "c1"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from berth\n");
    // Nothing is left: the state and the cgroup go with a foreground run.
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
    assert!(!Path::new("/sys/fs/cgroup/pids/berth-runtime/c1").exists());
}

#[test]
fn create_start_kill_delete() {
    let b = Bundle::new(&["sleep", "60"]);
    let out = b.rt(&["create", "--pid-file", "init.pid", "c2"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(b.status("c2"), "created");
    let pid: i32 = std::fs::read_to_string(b.path().join("init.pid"))
        .unwrap()
        .parse()
        .unwrap();
    // Created: the init exists, in the container's namespaces, and has not
    // run its program yet.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    let state: serde_json::Value = serde_json::from_slice(&b.rt(&["state", "c2"]).stdout).unwrap();
    assert_eq!(state["pid"], pid);
    assert_eq!(state["ociVersion"], "1.2.0");
    assert_eq!(state["bundle"], b.path().to_str().unwrap());

    assert!(b.rt(&["start", "c2"]).status.success());
    assert_eq!(b.status("c2"), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let out = b.rt(&["start", "c2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).contains("already running"), "{out:?}");
    let out = b.rt(&["delete", "c2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).contains("not stopped"), "{out:?}");
    let list = text(&b.rt(&["list"]));
    assert!(list.contains("c2") && list.contains("running"), "{list}");

    assert!(b.rt(&["kill", "c2", "KILL"]).status.success());
    for _ in 0..200 {
        if b.status("c2") == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(b.status("c2"), "stopped");
    assert!(b.rt(&["delete", "c2"]).status.success());
    let out = b.rt(&["state", "c2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("does not exist"), "{out:?}");

    // delete -f stops a running container.
    assert!(b.rt(&["run", "-d", "c3"]).status.success());
    assert_eq!(b.status("c3"), "running");
    assert!(b.rt(&["delete", "-f", "c3"]).status.success());
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
}

#[test]
fn what_it_cannot_honour_is_refused_by_name() {
    let b = Bundle::new(&["true"]);
    let path = b.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/true"}]});
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = b.rt(&["run", "c4"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).contains("hooks"), "{out:?}");
    assert_eq!(text(&b.rt(&["list", "-q"])), "");
    let out = b.rt(&["--systemd-cgroup", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--systemd-cgroup"), "{out:?}");
    let out = b.rt(&["create", "bad/id"]);
    assert!(text(&out).contains("invalid container id"), "{out:?}");
    let out = b.rt(&["spec"]);
    assert!(text(&out).contains("exists"), "{out:?}");
}
