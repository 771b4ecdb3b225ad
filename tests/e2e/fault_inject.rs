//! Fault injection: `berth` killed with SIGKILL at seeded random moments
//! inside `run -d`, `pull`, `commit` and `build`. After each kill the store
//! must still work (ps, images, run), and once the next commands have run
//! nothing may be left: no directory, mount, cgroup, veth or nft element,
//! and `system check` finds no damage.
//!
//! The seed is fixed (so a failure repeats); `BERTH_FAULT_SEED` picks
//! another. Each operation is timed once unkilled, and its trials kill it
//! at moments spread over that time.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::Env;
use crate::distribution::DockerRegistry;

const TRIALS: usize = 8;

/// xorshift64*: a few random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A moment in `0..limit`.
    fn within(&mut self, limit: Duration) -> Duration {
        let ms = limit.as_millis().max(1) as u64;
        Duration::from_millis(self.next() % ms)
    }
}

fn seed() -> u64 {
    std::env::var("BERTH_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_1204)
}

/// Runs `berth args` in `dir` unkilled; how long it took.
fn timed(env: &Env, dir: &std::path::Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let r = env.berth_in(dir, args);
    assert_eq!(r.code, 0, "{args:?}: {r:?}");
    start.elapsed()
}

/// Starts `berth args` in `dir` and kills it with SIGKILL after `delay`
/// (if it has not finished by then).
fn killed_at(env: &Env, dir: &std::path::Path, args: &[&str], delay: Duration) {
    let mut child = env
        .command(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

/// What a user runs next must work.
fn still_works(env: &Env, what: &str) {
    let r = env.berth(&["ps", "-a"]);
    assert_eq!(r.code, 0, "ps after a killed {what}: {r:?}");
    let r = env.berth(&["images"]);
    assert_eq!(r.code, 0, "images after a killed {what}: {r:?}");
}

fn ids(env: &Env) -> Vec<String> {
    let r = env.berth(&["ps", "-a", "-q", "--no-trunc"]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout.lines().map(str::to_string).collect()
}

fn nft_elements_of(env: &Env) -> String {
    let mut out = String::new();
    for map in ["any_tcp", "any_udp", "ip_tcp", "ip_udp"] {
        let o = std::process::Command::new("nft")
            .args(["list", "map", "ip", "berth", map])
            .output()
            .unwrap();
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    let subnet = env.inspect_network_subnet();
    out.lines()
        .filter(|l| subnet.as_deref().is_some_and(|s| l.contains(s)))
        .map(str::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Env {
    /// The default network's address prefix (`172.18.0.`), if it exists.
    fn inspect_network_subnet(&self) -> Option<String> {
        let r = self.berth(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            "bridge",
        ]);
        let gw = r.stdout.trim();
        if r.code != 0 {
            return None;
        }
        gw.rfind('.').map(|i| gw[..=i].to_string())
    }
}

#[test]
fn commands_killed_at_random_moments_leave_a_working_clean_store() {
    let started = Instant::now();
    let mut rng = Rng(seed());
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let dir = env.workdir();
    println!("BERTH_FAULT_SEED={}", seed());

    // run -d, with a published port (a lease, a veth and an nft element).
    let t = timed(
        &env,
        &dir,
        &["run", "-d", "-p", "80", "busybox", "sleep", "1000"],
    );
    for _ in 0..TRIALS {
        let delay = rng.within(t);
        killed_at(
            &env,
            &dir,
            &["run", "-d", "-p", "80", "busybox", "sleep", "1000"],
            delay,
        );
        still_works(&env, &format!("run -d at {delay:?}"));
    }
    let r = env.berth(&["run", "--rm", "busybox", "echo", "ok"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:?}");

    // commit of a container with a change.
    let r = env.berth(&["create", "--name", "src", "busybox", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.berth(&["cp", "/etc/hostname", "src:/copied"]).code, 0);
    let t = timed(&env, &dir, &["commit", "src", "committed:0"]);
    for i in 1..=TRIALS {
        let delay = rng.within(t);
        let tag = format!("committed:{i}");
        killed_at(&env, &dir, &["commit", "src", &tag], delay);
        still_works(&env, &format!("commit at {delay:?}"));
    }

    // pull from a registry on loopback, of an image this store lacks.
    let name = format!("{}/me/pulled:v1", reg.addr);
    let source = Env::new();
    source.image_from("head -c 1000000 /dev/urandom > /data", &[], &name);
    assert_eq!(source.berth(&["push", &name]).code, 0);
    drop(source);
    let t = timed(&env, &dir, &["pull", &name]);
    for _ in 0..TRIALS {
        // (Missing when the last trial's pull was killed early.)
        let _ = env.berth(&["rmi", "-f", &name]);
        let delay = rng.within(t);
        killed_at(&env, &dir, &["pull", &name], delay);
        still_works(&env, &format!("pull at {delay:?}"));
    }
    let r = env.berth(&["pull", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "wc",
        "-c",
        "/data",
    ]);
    assert!(r.stdout.starts_with("1000000"), "{r:?}");

    // build, without its cache, with a RUN step and a COPY.
    std::fs::write(dir.join("file"), "content\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY file /file\nRUN sleep 0.2; echo built > /built\n",
    )
    .unwrap();
    let t = timed(&env, &dir, &["build", "--no-cache", "-t", "built", "."]);
    for _ in 0..TRIALS {
        let delay = rng.within(t);
        killed_at(
            &env,
            &dir,
            &["build", "--no-cache", "-t", "built", "."],
            delay,
        );
        still_works(&env, &format!("build at {delay:?}"));
    }
    let r = env.berth_in(&dir, &["build", "-t", "built", "."]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["run", "--rm", "built", "cat", "/file", "/built"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "content\nbuilt\n"),
        "{r:?}"
    );

    // The next commands collect what the kills left: once every container is
    // removed, nothing of theirs remains, and the store has no damage.
    for id in ids(&env) {
        let r = env.berth(&["rm", "-f", &id]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = env.berth(&["image", "prune", "-a", "-f"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.berth(&["system", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "no damage found\n"),
        "{r:?}"
    );
    assert_eq!(nft_elements_of(&env), "", "nft elements left");
    env.assert_clean();
    println!("{:?} in all", started.elapsed());
}
