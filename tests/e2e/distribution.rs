//! Pull, push and login against Debian's docker-registry (distribution 2.8)
//! started on 127.0.0.1, and interop with skopeo. Only loopback is used.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{eventually, Env};

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `addr` accepts connections.
pub fn wait_listening(addr: &str, child: &mut Child) {
    eventually(
        Duration::from_secs(20),
        &format!("{addr} listening"),
        || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!("server exited early: {st}");
            }
            std::net::TcpStream::connect(addr).ok()
        },
    );
}

/// Debian's docker-registry on a free loopback port, with its own storage.
pub struct DockerRegistry {
    child: Child,
    pub addr: String,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl DockerRegistry {
    pub fn start(htpasswd: Option<&str>) -> DockerRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let data = dir.path().join("data");
        let auth = match htpasswd {
            Some(entries) => {
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, entries).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    f.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                data.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's docker-registry package) runs");
        wait_listening(&addr, &mut child);
        DockerRegistry {
            child,
            addr,
            data,
            _dir: dir,
        }
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.data
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bcrypt htpasswd line, as `htpasswd -Bbn` writes it.
pub fn htpasswd(user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("htpasswd (apache2-utils) runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The line of `out` that starts with `prefix`, without it.
fn line_after<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}

/// The `{"layers": [...]}` digests of a manifest.
fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-sS").args(args).output().unwrap();
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The layer and image directories of a state root that are visible (not
/// temporary), and its blobs.
fn stored(root: &Path) -> (usize, usize) {
    let count = |d: PathBuf| {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        !n.starts_with('.') && n != "l"
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    (
        count(root.join("image/layers")),
        count(root.join("image/blobs/sha256")),
    )
}

/// Asserts no half-unpacked layer is left in `env`'s store.
fn assert_no_temporary_layers(env: &Env) {
    let tmp: Vec<_> = std::fs::read_dir(env.root.join("image/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// An image with two layers: busybox plus a committed file.
fn two_layer_image(env: &Env, name: &str) {
    env.image_from(
        "echo pushed-content > /hello.txt; rm /bin/vi",
        &["CMD [\"cat\",\"/hello.txt\"]"],
        name,
    );
}

#[test]
fn push_pull_run_round_trip_with_docker_registry() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let name = format!("{}/me/hello:v1", reg.addr);
    two_layer_image(&env, "hello");
    assert_eq!(env.berth(&["tag", "hello", &name]).code, 0);

    let push = env.berth(&["push", &name]);
    assert_eq!(push.code, 0, "{push:?}");
    assert!(
        push.stdout.contains(&format!(
            "The push refers to repository [{}/me/hello]",
            reg.addr
        )),
        "{push:?}"
    );
    assert_eq!(push.stdout.matches(": Pushed").count(), 2, "{push:?}");
    let pushed_digest = line_after(&push.stdout, "v1: digest: ")
        .and_then(|l| l.split_whitespace().next())
        .expect("digest line")
        .to_string();

    // The registry holds what we pushed: the manifest by tag, with the digest.
    let manifest: serde_json::Value = serde_json::from_str(&curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{}/v2/me/hello/manifests/v1", reg.addr),
    ]))
    .unwrap();
    let layers = layer_digests(&manifest);
    assert_eq!(layers.len(), 2);
    for l in &layers {
        assert!(reg.blob_file(l).exists(), "blob {l} in the registry");
    }

    // Again: every layer is already there.
    let again = env.berth(&["push", &name]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.stdout.matches("Layer already exists").count(),
        2,
        "{again:?}"
    );
    assert!(again.stdout.contains(&pushed_digest), "{again:?}");

    // Into another repository of the same registry: mounted, not sent.
    let other = format!("{}/team/hello:v1", reg.addr);
    assert_eq!(env.berth(&["tag", &name, &other]).code, 0);
    let mounted = env.berth(&["push", &other]);
    assert_eq!(mounted.code, 0, "{mounted:?}");
    assert_eq!(
        mounted.stdout.matches("Mounted from me/hello").count(),
        2,
        "{mounted:?}"
    );

    // A second machine (a fresh state root) pulls it and runs it.
    let env2 = Env::empty();
    let pull = env2.berth(&["pull", &name]);
    assert_eq!(pull.code, 0, "{pull:?}");
    assert!(
        pull.stdout.contains("v1: Pulling from me/hello"),
        "{pull:?}"
    );
    assert_eq!(pull.stdout.matches("Pull complete").count(), 2, "{pull:?}");
    assert_eq!(
        line_after(&pull.stdout, "Digest: "),
        Some(pushed_digest.as_str()),
        "{pull:?}"
    );
    assert!(
        pull.stdout
            .contains(&format!("Status: Downloaded newer image for {name}")),
        "{pull:?}"
    );
    assert_eq!(pull.stdout.lines().last(), Some(name.as_str()), "{pull:?}");
    let run = env2.berth(&["run", "--rm", "--network", "none", &name]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "pushed-content\n");
    let vi = env2.berth(&["run", "--rm", "--network", "none", &name, "ls", "/bin/vi"]);
    assert_ne!(vi.code, 0, "the whiteout of the top layer survives: {vi:?}");
    let repo_digests = env2.berth(&["inspect", "--format", "{{json .RepoDigests}}", &name]);
    assert_eq!(
        repo_digests.stdout.trim(),
        format!("[\"{}/me/hello@{pushed_digest}\"]", reg.addr)
    );
    let digests = env2.berth(&["images", "--digests"]);
    let row: Vec<&str> = digests
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..3],
        [
            format!("{}/me/hello", reg.addr).as_str(),
            "v1",
            pushed_digest.as_str()
        ],
        "{digests:?}"
    );
    // Same image ID on both machines.
    let id = |e: &Env| e.berth(&["inspect", "--format", "{{.Id}}", &name]).stdout;
    assert_eq!(id(&env), id(&env2));

    // A pull of what is here changes nothing.
    let up = env2.berth(&["pull", &name]);
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(up.stdout.matches("Already exists").count(), 2, "{up:?}");
    assert!(up.stdout.contains("Status: Image is up to date"), "{up:?}");

    // The pulled image pushes back with the same digest (its compressed
    // blobs are kept as they came).
    let back = format!("{}/again/hello:v1", reg.addr);
    assert_eq!(env2.berth(&["tag", &name, &back]).code, 0);
    let push2 = env2.berth(&["push", &back]);
    assert_eq!(push2.code, 0, "{push2:?}");
    assert!(push2.stdout.contains(&pushed_digest), "{push2:?}");

    // save works from a pulled image (its uncompressed tars are made on demand).
    let tar = env2.root.parent().unwrap().join("saved.tar");
    let save = env2.berth(&["save", "-o", tar.to_str().unwrap(), &name]);
    assert_eq!(save.code, 0, "{save:?}");
    let env3 = Env::empty();
    let load = env3.berth(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(load.code, 0, "{load:?}");
    assert_eq!(id(&env3), id(&env));
}

#[test]
fn run_pulls_a_missing_image_as_pull_policy_says() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let name = format!("{}/me/busybox:latest", reg.addr);
    assert_eq!(env.berth(&["tag", "busybox", &name]).code, 0);
    assert_eq!(env.berth(&["push", &name]).code, 0);

    let env2 = Env::empty();
    let never = env2.berth(&["run", "--rm", "--pull", "never", &name, "true"]);
    assert_eq!(never.code, 125, "{never:?}");
    assert!(never.stderr.contains("not found"), "{never:?}");
    let bad = env2.berth(&["run", "--rm", "--pull", "sometimes", &name, "true"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    assert!(bad.stderr.contains("invalid pull policy"), "{bad:?}");

    let run = env2.berth(&["run", "--rm", "--network", "none", &name, "echo", "ran"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "ran\n", "progress stays off stdout");
    assert!(
        run.stderr
            .contains(&format!("Unable to find image '{name}' locally")),
        "{run:?}"
    );
    assert!(run.stderr.contains("Pull complete"), "{run:?}");
    // Now it is here: no pull.
    let run2 = env2.berth(&["run", "--rm", "--network", "none", &name, "true"]);
    assert_eq!(run2.code, 0, "{run2:?}");
    assert!(!run2.stderr.contains("Pulling"), "{run2:?}");
    // --pull always asks the registry again.
    let always = env2.berth(&[
        "create",
        "--pull",
        "always",
        "--network",
        "none",
        &name,
        "true",
    ]);
    assert_eq!(always.code, 0, "{always:?}");
    assert!(always.stderr.contains("Image is up to date"), "{always:?}");
    let id = always.stdout.trim();
    assert_eq!(env2.berth(&["rm", id]).code, 0);
    env2.assert_clean();

    // A build FROM an image that is not here pulls it first.
    let env3 = Env::empty();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {name}\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n"),
    )
    .unwrap();
    let build = env3.berth(&[
        "build",
        "--network",
        "none",
        "-t",
        "built",
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(build.code, 0, "{build:?}");
    assert!(build.stdout.contains(" ---> Pulled "), "{build:?}");
    let run = env3.berth(&["run", "--rm", "--network", "none", "built"]);
    assert_eq!(run.stdout, "built\n", "{run:?}");

    // A tag the registry lacks: a clear error, nothing created.
    let missing = env2.berth(&["pull", &format!("{}/me/busybox:nope", reg.addr)]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("not found"), "{missing:?}");
}

#[test]
fn pull_picks_the_host_platform_from_an_index() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let name = format!("{}/multi/busybox:single", reg.addr);
    assert_eq!(env.berth(&["tag", "busybox", &name]).code, 0);
    let push = env.berth(&["push", &name]);
    assert_eq!(push.code, 0, "{push:?}");
    let digest = line_after(&push.stdout, "single: digest: ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let size = line_after(&push.stdout, "single: digest: ")
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .to_string();
    // An index with the same manifest listed for arm64 first and amd64 second.
    let entry = |arch: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{}]}}"#,
        entry("arm64"),
        entry("amd64")
    );
    curl(&[
        "-f",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.index.v1+json",
        "--data-binary",
        &index,
        &format!("http://{}/v2/multi/busybox/manifests/multi", reg.addr),
    ]);
    let index_digest = format!("sha256:{}", hex_sha256(index.as_bytes()));
    let env2 = Env::empty();
    let multi = format!("{}/multi/busybox:multi", reg.addr);
    let pull = env2.berth(&["pull", &multi]);
    assert_eq!(pull.code, 0, "{pull:?}");
    assert_eq!(
        line_after(&pull.stdout, "Digest: "),
        Some(index_digest.as_str()),
        "the digest shown is the index's: {pull:?}"
    );
    let run = env2.berth(&["run", "--rm", "--network", "none", &multi, "echo", "ok"]);
    assert_eq!(run.stdout, "ok\n", "{run:?}");
    // By digest: no tag is recorded, the image is found by its digest name.
    let by_digest = format!("{}/multi/busybox@{digest}", reg.addr);
    let env3 = Env::empty();
    let pull = env3.berth(&["pull", &by_digest]);
    assert_eq!(pull.code, 0, "{pull:?}");
    let images = env3.berth(&["images"]);
    let row: Vec<&str> = images
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..2],
        [format!("{}/multi/busybox", reg.addr).as_str(), "<none>"]
    );
    // Named by its digest, it is not dangling.
    assert_eq!(env3.berth(&["image", "prune"]).code, 0);
    assert_eq!(env3.berth(&["images", "-q"]).stdout.lines().count(), 1);

    // An index with no manifest for this host.
    let arm_only = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entry("arm64")
    );
    curl(&[
        "-f",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.index.v1+json",
        "--data-binary",
        &arm_only,
        &format!("http://{}/v2/multi/busybox/manifests/arm", reg.addr),
    ]);
    let arm = env3.berth(&["pull", &format!("{}/multi/busybox:arm", reg.addr)]);
    assert_ne!(arm.code, 0);
    assert!(
        arm.stderr.contains("no matching manifest for linux/amd64"),
        "{arm:?}"
    );
}

fn hex_sha256(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn corrupt_and_truncated_blobs_are_refused_and_nothing_is_kept() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let good = format!("{}/me/good:v1", reg.addr);
    let bad = format!("{}/me/bad:v1", reg.addr);
    let short = format!("{}/me/short:v1", reg.addr);
    // Three images with distinct layers (each commits a different file).
    for (img, content) in [(&good, "g"), (&bad, "b"), (&short, "s")] {
        env.image_from(
            &format!("head -c 300000 /dev/urandom > /r; echo {content} > /c"),
            &[],
            img,
        );
        assert_eq!(env.berth(&["push", img]).code, 0);
    }
    let top_layer = |img: &str| {
        let path = img.split_once('/').unwrap().1.replace(":v1", "");
        let m: serde_json::Value = serde_json::from_str(&curl(&[
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!("http://{}/v2/{path}/manifests/v1", reg.addr),
        ]))
        .unwrap();
        layer_digests(&m).pop().unwrap()
    };
    // Flip bytes in one layer blob, cut another short.
    let f = reg.blob_file(&top_layer(&bad));
    let mut data = std::fs::read(&f).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&f, &data).unwrap();
    let f = reg.blob_file(&top_layer(&short));
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();

    let env2 = Env::empty();
    // The busybox layer comes with a good pull first.
    assert_eq!(env2.berth(&["pull", &good]).code, 0);
    let before = stored(&env2.root);
    for img in [&bad, &short] {
        let r = env2.berth(&["pull", img]);
        assert_ne!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("failed verification")
                || r.stderr.contains("ended after")
                || r.stderr.contains("unexpected end"),
            "{r:?}"
        );
        assert_eq!(r.stderr.lines().count(), 1, "one clear line: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{r:?}");
        assert_eq!(stored(&env2.root), before, "nothing new stored: {r:?}");
        let img_ls = env2.berth(&["images", "-q"]);
        assert_eq!(img_ls.stdout.lines().count(), 1);
    }
    // No temporary layer or ingest file is left behind either.
    let ingest: Vec<_> = std::fs::read_dir(env2.root.join("image/ingest"))
        .unwrap()
        .collect();
    assert!(ingest.is_empty(), "{ingest:?}");
    assert_no_temporary_layers(&env2);
}

#[test]
fn an_interrupted_pull_leaves_nothing_and_the_next_one_works() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let name = format!("{}/me/big:v1", reg.addr);
    env.image_from("head -c 64000000 /dev/urandom > /big", &[], &name);
    assert_eq!(env.berth(&["push", &name]).code, 0);

    let env2 = Env::empty();
    let mut child = env2
        .command(&["pull", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the download has started.
    let started = Instant::now();
    eventually(Duration::from_secs(20), "download started", || {
        let ingest = std::fs::read_dir(env2.root.join("image/ingest")).ok()?;
        ingest
            .flatten()
            .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
            .then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    assert!(started.elapsed() < Duration::from_secs(20));
    let images = env2.berth(&["images", "-q"]);
    assert_eq!(images.stdout, "", "no image after the kill");
    let visible: Vec<_> = std::fs::read_dir(env2.root.join("image/layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "l")
        .collect();
    // Only the busybox layer may have finished before the kill.
    assert!(visible.len() <= 1, "{visible:?}");

    let again = env2.berth(&["pull", &name]);
    assert_eq!(again.code, 0, "{again:?}");
    let run = env2.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "sh",
        "-c",
        "wc -c < /big",
    ]);
    assert_eq!(run.stdout.trim(), "64000000", "{run:?}");
    // The collector removes what the killed pull left in temporary places.
    assert_eq!(env2.berth(&["image", "prune"]).code, 0);
    assert_no_temporary_layers(&env2);
}

#[test]
fn login_push_and_logout_with_basic_auth() {
    let reg = DockerRegistry::start(Some(&htpasswd("me", "s3cret")));
    let env = Env::new();
    let name = format!("{}/me/private:v1", reg.addr);
    assert_eq!(env.berth(&["tag", "busybox", &name]).code, 0);

    let denied = env.berth(&["push", &name]);
    assert_ne!(denied.code, 0);
    assert!(denied.stderr.contains("unauthorized"), "{denied:?}");

    let login = |password: &str| env.login(&reg.addr, "me", password);
    let config = env.docker_config().join("config.json");
    let wrong = login("nope");
    assert_ne!(wrong.code, 0, "{wrong:?}");
    assert!(
        wrong.stderr.contains("incorrect username or password"),
        "{wrong:?}"
    );
    assert!(!config.exists(), "nothing stored for a failed login");

    let ok = login("s3cret");
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(ok.stdout, "Login Succeeded\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    // base64("me:s3cret")
    assert_eq!(doc["auths"][&reg.addr]["auth"], "bWU6czNjcmV0");

    let push = env.berth(&["push", &name]);
    assert_eq!(push.code, 0, "{push:?}");
    // Another machine with the same credentials file pulls.
    let env2 = Env::empty();
    std::fs::create_dir_all(env2.docker_config()).unwrap();
    let anon = env2.berth(&["pull", &name]);
    assert_ne!(anon.code, 0, "{anon:?}");
    std::fs::copy(&config, env2.docker_config().join("config.json")).unwrap();
    let pull = env2.berth(&["pull", &name]);
    assert_eq!(pull.code, 0, "{pull:?}");

    let out = env.berth(&["logout", &reg.addr]);
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {}\n", reg.addr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(doc["auths"].get(&reg.addr).is_none());
    let again = env.berth(&["logout", &reg.addr]);
    assert_eq!(again.stdout, format!("Not logged in to {}\n", reg.addr));
}

#[test]
fn skopeo_reads_what_berth_pushes_and_berth_pulls_what_skopeo_pushes() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let name = format!("{}/me/hello:v1", reg.addr);
    two_layer_image(&env, &name);
    let push = env.berth(&["push", &name]);
    assert_eq!(push.code, 0, "{push:?}");
    let digest = line_after(&push.stdout, "v1: digest: ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    // skopeo pulls it: the same manifest digest and layer digests.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("dir:{}", dir.path().join("img").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo copy: {out:?}");
    let manifest_bytes = std::fs::read(dir.path().join("img/manifest.json")).unwrap();
    assert_eq!(format!("sha256:{}", hex_sha256(&manifest_bytes)), digest);
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{inspect:?}");
    let doc: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(doc["Digest"], digest.as_str());
    assert_eq!(doc["Layers"].as_array().unwrap().len(), 2);

    // skopeo pushes a docker-archive (docker schema 2 manifest); berth pulls it.
    let tar = dir.path().join("busybox.tar");
    assert_eq!(
        env.berth(&["save", "-o", tar.to_str().unwrap(), "busybox"])
            .code,
        0
    );
    let theirs = format!("{}/skopeo/busybox:latest", reg.addr);
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", tar.display()))
        .arg(format!("docker://{theirs}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo copy: {out:?}");
    let env2 = Env::empty();
    let pull = env2.berth(&["pull", &theirs]);
    assert_eq!(pull.code, 0, "{pull:?}");
    let run = env2.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        &theirs,
        "echo",
        "skopeo",
    ]);
    assert_eq!(run.stdout, "skopeo\n", "{run:?}");
}

#[test]
fn docker_hub_fails_fast_without_a_network() {
    // A network namespace of our own with no route: nothing leaves the machine.
    let env = Env::empty();
    let started = Instant::now();
    let out = Command::new("unshare")
        .arg("--net")
        .arg(crate::common::BERTH)
        .arg("--root")
        .arg(&env.root)
        .arg("--runroot")
        .arg(&env.runroot)
        .env("DOCKER_CONFIG", env.docker_config())
        .args(["pull", "busybox"])
        .output()
        .unwrap();
    let r = crate::common::Run::from(out);
    assert_ne!(r.code, 0);
    assert!(started.elapsed() < Duration::from_secs(30), "{r:?}");
    assert!(
        r.stderr.contains("cannot reach registry docker.io"),
        "{r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
}

/// A registry that misbehaves: a manifest that is not JSON, one that names a
/// config it does not serve, errors with no body, a server that hangs up.
/// Each pull fails with one clear line, nothing is stored, nothing panics.
#[test]
fn a_misbehaving_registry_gets_clear_errors() {
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let missing_config = format!(
        r#"{{"schemaVersion":2,"mediaType":"{oci}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[]}}"#,
        "a".repeat(64)
    );
    let addr = fake_registry(move |path, conn| match path {
        "/v2/" => respond(conn, "200 OK", "application/json", b"{}"),
        p if p.ends_with("/manifests/garbage") => {
            respond(conn, "200 OK", oci, b"<html>not a manifest</html>")
        }
        p if p.ends_with("/manifests/noconfig") => {
            respond(conn, "200 OK", oci, missing_config.as_bytes())
        }
        p if p.ends_with("/manifests/broken") => {
            respond(conn, "500 Internal Server Error", "text/plain", b"")
        }
        p if p.ends_with("/manifests/hangup") => {} // closes with no answer
        p if p.contains("/blobs/") => respond(
            conn,
            "404 Not Found",
            "application/json",
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
        ),
        _ => respond(conn, "404 Not Found", "text/plain", b"nothing here"),
    });
    let env = Env::empty();
    for (tag, expect) in [
        ("garbage", "unusable manifest"),
        ("noconfig", "not found"),
        ("broken", "500"),
        ("hangup", &addr),
    ] {
        let r = env.berth(&["pull", &format!("{addr}/me/app:{tag}")]);
        assert_ne!(r.code, 0, "{tag}: {r:?}");
        assert!(r.stderr.contains(expect), "{tag}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{tag}: one clear line: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{tag}: {r:?}");
        assert_eq!(
            env.berth(&["images", "-q"]).stdout,
            "",
            "{tag}: nothing stored"
        );
    }
}

#[test]
fn all_tags_push_and_pull() {
    let reg = DockerRegistry::start(None);
    let env = Env::new();
    let repo = format!("{}/me/multi", reg.addr);
    two_layer_image(&env, "hello");
    for (src, tag) in [("busybox", "a"), ("busybox", "b"), ("hello", "c")] {
        assert_eq!(env.berth(&["tag", src, &format!("{repo}:{tag}")]).code, 0);
    }
    let push = env.berth(&["push", "-a", &repo]);
    assert_eq!(push.code, 0, "{push:?}");
    for tag in ["a", "b", "c"] {
        assert!(
            push.stdout.contains(&format!("\n{tag}: digest: sha256:")),
            "{push:?}"
        );
    }
    assert_eq!(
        push.stdout.matches("The push refers to repository").count(),
        1,
        "{push:?}"
    );
    let refused = env.berth(&["push", "-a", &format!("{repo}:a")]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--all-tags"), "{refused:?}");

    let env2 = Env::empty();
    let pull = env2.berth(&["pull", "-a", &repo]);
    assert_eq!(pull.code, 0, "{pull:?}");
    assert_eq!(
        pull.stdout.matches("Digest: sha256:").count(),
        3,
        "{pull:?}"
    );
    assert!(
        pull.stdout
            .contains(&format!("Status: Downloaded newer image for {repo}")),
        "{pull:?}"
    );
    let images = env2.berth(&["images"]);
    let tags: Vec<&str> = images
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    let mut tags = tags.clone();
    tags.sort();
    assert_eq!(tags, ["a", "b", "c"], "{images:?}");
    let run = env2.berth(&["run", "--rm", "--network", "none", &format!("{repo}:c")]);
    assert_eq!(run.stdout, "pushed-content\n", "{run:?}");
}

/// A registry of a test's own making on 127.0.0.1, for what no real one does
/// on demand: `handle` answers each request (one per connection) by path.
fn fake_registry(handle: impl Fn(&str, &mut std::net::TcpStream) + Send + 'static) -> String {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Headers up to the blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            handle(&path, &mut conn);
        }
    });
    addr
}

fn respond(conn: &mut std::net::TcpStream, status: &str, ctype: &str, body: &[u8]) {
    respond_status(conn, status, ctype, body, body.len());
}

/// A 200 that promises all of `body` and sends its first `sent` bytes.
fn respond_cut(conn: &mut std::net::TcpStream, ctype: &str, body: &[u8], sent: usize) {
    respond_status(conn, "200 OK", ctype, body, sent);
}

fn respond_status(
    conn: &mut std::net::TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    sent: usize,
) {
    use std::io::Write;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body[..sent]);
}

/// A registry whose connection breaks in the middle of a layer the first
/// time: the pull starts that layer again and succeeds; nothing of the
/// broken try is left.
#[test]
fn a_download_that_breaks_off_is_tried_again() {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // The image: busybox's rootfs as one gzip layer.
    let tar = std::fs::read(crate::common::busybox_tar()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = format!("sha256:{}", hex_sha256(&layer));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["echo","retried"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        hex_sha256(&tar)
    );
    let config_digest = format!("sha256:{}", hex_sha256(config.as_bytes()));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let layer_gets = Arc::new(AtomicUsize::new(0));
    let gets = layer_gets.clone();
    let addr = fake_registry(move |path, conn| {
        let (ctype, body): (&str, &[u8]) = if path == "/v2/" {
            ("application/json", b"{}")
        } else if path.ends_with("/manifests/v1") {
            (
                "application/vnd.oci.image.manifest.v1+json",
                manifest.as_bytes(),
            )
        } else if path.ends_with(&config_digest) {
            ("application/octet-stream", config.as_bytes())
        } else if path.ends_with(&layer_digest) {
            ("application/octet-stream", &layer[..])
        } else {
            return respond(conn, "404 Not Found", "text/plain", b"");
        };
        if path.ends_with(&layer_digest) && gets.fetch_add(1, Ordering::SeqCst) == 0 {
            // The first time: half the layer, then the line goes dead.
            return respond_cut(conn, ctype, body, body.len() / 2);
        }
        respond(conn, "200 OK", ctype, body)
    });
    let env = Env::empty();
    let name = format!("{addr}/flaky/app:v1");
    let pull = env.berth(&["pull", &name]);
    assert_eq!(pull.code, 0, "{pull:?}");
    assert!(pull.stdout.contains("Retrying"), "{pull:?}");
    assert!(pull.stdout.contains("Pull complete"), "{pull:?}");
    assert_eq!(layer_gets.load(Ordering::SeqCst), 2);
    assert_no_temporary_layers(&env);
    let run = env.berth(&["run", "--rm", "--network", "none", &name]);
    assert_eq!(run.stdout, "retried\n", "{run:?}");
}
