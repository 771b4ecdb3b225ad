//! Helpers for end-to-end tests: each test gets its own state root, runroot and
//! cgroup parent, a busybox image imported from Debian's busybox-static, and
//! checks that it left nothing behind on the host.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// The busybox rootfs tarball, built once per test run.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("busybox-rootfs.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&tar)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "building the busybox rootfs failed (is busybox-static installed?)"
        );
        tar
    })
}

pub struct Env {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub cgroup_parent: String,
    /// This env's default bridge (bridges are host-wide; roots are not).
    pub bridge: String,
    /// Whether dropping the env removes the bridge: not when it shares
    /// another env's, which removes it (after its own containers are gone).
    owns_bridge: bool,
}

/// The result of a berth command, with its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Env {
    /// A fresh state root with the `busybox` image imported.
    pub fn new() -> Env {
        let env = Env::empty();
        let r = env.berth(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
        assert_eq!(r.code, 0, "import failed: {r:?}");
        env
    }

    pub fn empty() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let runroot = dir.path().join("run");
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let tail: String = name.chars().rev().take(10).collect();
        Env {
            root,
            runroot,
            cgroup_parent: format!("berth-test/{name}"),
            bridge: format!("bt{tail}"),
            owns_bridge: true,
            _dir: dir,
        }
    }

    /// A fresh state root (busybox imported) whose default network uses
    /// `owner`'s bridge, as a second state root on one host does; `owner`
    /// keeps removing the bridge.
    pub fn sharing_bridge(owner: &Env) -> Env {
        let mut env = Env::empty();
        env.bridge = owner.bridge.clone();
        env.owns_bridge = false;
        let r = env.berth(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
        assert_eq!(r.code, 0, "import failed: {r:?}");
        env
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--bridge")
            .arg(&self.bridge)
            .env("DOCKER_CONFIG", self.docker_config())
            .args(args);
        c
    }

    /// Commits what `script` does in a busybox container as image `name`
    /// (with `-c` changes), leaving no container.
    pub fn image_from(&self, script: &str, changes: &[&str], name: &str) {
        let r = self.berth(&[
            "run",
            "--name",
            "mkimage",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let mut commit = vec!["commit"];
        for c in changes {
            commit.extend(["-c", c]);
        }
        commit.extend(["mkimage", name]);
        let r = self.berth(&commit);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(self.berth(&["rm", "mkimage"]).code, 0);
    }

    /// `berth login SERVER -u USER --password-stdin` with `password` on stdin.
    pub fn login(&self, server: &str, user: &str, password: &str) -> Run {
        let mut child = self
            .command(&["login", server, "-u", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap().into()
    }

    /// This env's client config directory (registry credentials).
    pub fn docker_config(&self) -> PathBuf {
        self._dir.path().join("docker")
    }

    /// A directory of this env's own to work in, as a user's project is: tests
    /// that stand for a user `cd` here and type relative paths.
    pub fn workdir(&self) -> PathBuf {
        let dir = self._dir.path().join("work");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `berth args...` typed in `dir` (this env's state root still given).
    pub fn berth_in(&self, dir: &Path, args: &[&str]) -> Run {
        self.command(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    }

    /// `berth args...` typed in `dir` exactly as written: no state root or
    /// other option is added (the test gives its own, relative ones).
    pub fn berth_typed(&self, dir: &Path, args: &[&str]) -> Run {
        Command::new(BERTH)
            .args(args)
            .current_dir(dir)
            .env("DOCKER_CONFIG", self.docker_config())
            .env("BERTH_CGROUP_PARENT", &self.cgroup_parent)
            .env("BERTH_BRIDGE", &self.bridge)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    }

    pub fn berth(&self, args: &[&str]) -> Run {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into()
    }

    /// Starts `berth run ...` in the background with piped output.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The cgroup directories of this env's containers, in every hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for hierarchy in cgroup_hierarchies() {
            let parent = hierarchy.join(&self.cgroup_parent);
            if let Ok(rd) = std::fs::read_dir(&parent) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        out.push(e.path());
                    }
                }
            }
        }
        out
    }

    /// Asserts that nothing of this env's containers is left on the host: no
    /// container directory, cgroup or mount.
    pub fn assert_clean(&self) {
        // A removed container's directories are renamed away at once and
        // deleted just after its client learned the exit: give that a moment.
        let entries = |dir: PathBuf| -> Vec<std::ffi::OsString> {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name())
                        .filter(|n| n != ".lock")
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = self.root.join("containers");
        let running = self.runroot.join("containers");
        // Generous: with the whole suite running on two cores, a cancelled
        // build's or a killed monitor's cleanup can take seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while (!entries(containers.clone()).is_empty() || !entries(running.clone()).is_empty())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let left = entries(containers);
        assert!(left.is_empty(), "container directories left: {left:?}");
        let left = entries(running);
        assert!(left.is_empty(), "runtime state left: {left:?}");
        let monitors: Vec<_> = std::fs::read_dir(self.runroot.join("monitors"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(monitors.is_empty(), "monitor sockets left: {monitors:?}");
        let cgroups = self.cgroup_dirs();
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        self.wait_no_bridge_members();
        self.assert_clean_mounts();
    }

    /// Asserts the host has no mount under this env's state roots.
    pub fn assert_clean_mounts(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.root.to_string_lossy();
        let runroot = self.runroot.to_string_lossy();
        let ours: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(root.as_ref()) || l.contains(runroot.as_ref()))
            .collect();
        assert!(ours.is_empty(), "mounts left on the host: {ours:?}");
    }

    /// A container's `inspect --format` value.
    pub fn inspect(&self, container: &str, format: &str) -> String {
        let r = self.berth(&["inspect", "--format", format, container]);
        assert_eq!(r.code, 0, "inspect {container}: {r:?}");
        r.stdout.trim().to_string()
    }

    /// Removes this env's default bridge and its NAT set entries (docker
    /// never removes its default network; a test env must).
    pub fn remove_default_network(&self) {
        let has = std::fs::read_dir(self.root.join("networks"))
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(false);
        if !has {
            return;
        }
        let r = self.berth(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            "bridge",
        ]);
        let subnet = r.stdout.trim().to_string();
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .stderr(Stdio::null())
            .status();
        // One batch each: a batch fails whole, and the subnet's element may be
        // gone already (or never made) while the bridge's is there.
        for script in [
            format!("delete element ip berth nets {{ {subnet} }}\n"),
            format!(
                "delete element ip berth bridges {{ \"{}\" }}\n",
                self.bridge
            ),
        ] {
            let mut nft = Command::new("nft")
                .args(["-f", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            let _ = nft.stdin.take().unwrap().write_all(script.as_bytes());
            let _ = nft.wait();
        }
        let rules = Command::new("nft")
            .args(["-a", "list", "chain", "ip", "berth", "forward"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for line in rules
            .lines()
            .filter(|l| l.contains(&format!("isolate {}\"", self.bridge)))
        {
            if let Some(h) = line.rsplit("# handle ").next() {
                let _ = Command::new("nft")
                    .args([
                        "delete",
                        "rule",
                        "ip",
                        "berth",
                        "forward",
                        "handle",
                        h.trim(),
                    ])
                    .status();
            }
        }
    }

    /// Waits for this env's bridge to have no members: an exited container's
    /// veth goes with its network namespace, which the kernel destroys
    /// asynchronously.
    pub fn wait_no_bridge_members(&self) {
        let limit = Instant::now() + Duration::from_secs(10);
        loop {
            let veths = self.bridge_members();
            if veths.is_empty() {
                return;
            }
            assert!(
                Instant::now() < limit,
                "veths left on {}: {veths:?}",
                self.bridge
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Members of this env's bridge (veths of running containers).
    pub fn bridge_members(&self) -> Vec<String> {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The full ID of the only container this env has.
    pub fn only_container_id(&self) -> String {
        let r = self.berth(&["ps", "-a", "-q", "--no-trunc"]);
        let ids: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(ids.len(), 1, "expected one container: {r:?}");
        ids[0].to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Containers a failed test left running must not outlive it.
        let ids = self.berth(&["ps", "-a", "-q", "--no-trunc"]).stdout;
        let ids: Vec<&str> = ids.lines().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            self.berth(&args);
        }
        if self.owns_bridge {
            self.remove_default_network();
        }
        for hierarchy in cgroup_hierarchies() {
            let _ = std::fs::remove_dir(hierarchy.join(&self.cgroup_parent));
            // Shared by all tests: goes with the last one.
            let _ = std::fs::remove_dir(hierarchy.join("berth-test"));
        }
    }
}

/// The mounted cgroup hierarchies: the v1 controllers' directories, or the v2 root.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    if cgroup_v2() {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n != "unified") && p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

pub fn cgroup_v2() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.split(' ').nth(1) == Some("/sys/fs/cgroup") && l.split(' ').nth(2) == Some("cgroup2")
        })
}

/// Waits for a child with a deadline; kills it if the deadline passes.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Run {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            let mut stderr = String::new();
            if let Some(mut o) = child.stdout.take() {
                o.read_to_string(&mut stdout).unwrap();
            }
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut stderr).unwrap();
            }
            return Run {
                code: status.code().unwrap_or(-1),
                stdout,
                stderr,
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("berth did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it returns `Some`, or panics after `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `berth` command running in the background, its stdout read line by line.
pub struct Background {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Env {
    /// Starts `berth args...` in the background (see [`Env::spawn`]).
    pub fn start(&self, args: &[&str]) -> Background {
        let mut child = self.spawn(args);
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        Background { child, out }
    }
}

impl Background {
    /// The next line of output, without its newline (panics at the end).
    pub fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        assert!(
            self.out.read_line(&mut line).unwrap() > 0,
            "berth's output ended early"
        );
        line.trim_end_matches('\n').to_string()
    }

    /// The lines printed before `marker` (which is consumed).
    pub fn until(&mut self, marker: &str) -> Vec<String> {
        std::iter::from_fn(|| Some(self.line()))
            .take_while(|l| l != marker)
            .collect()
    }

    /// Sends `sig` to berth itself.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits (20 s at most) for berth to end; `stdout` holds the rest of its output.
    pub fn finish(mut self) -> Run {
        let mut r = wait_timeout(&mut self.child, Duration::from_secs(20));
        self.out.read_to_string(&mut r.stdout).unwrap();
        r
    }
}
