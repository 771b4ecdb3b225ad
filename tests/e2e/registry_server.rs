//! `berth registry serve`, driven by real clients: Debian's skopeo for
//! pushes and pulls, curl for the protocol's corners (chunks, mounts,
//! digests, auth challenges). Every server listens on 127.0.0.1 only, on a
//! free port, with its own root, and is killed when its test ends.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::Digest;
use serde_json::{json, Value};

use crate::common::BERTH;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A running `berth registry serve`, killed on drop.
struct Server {
    child: Child,
    port: u16,
    https: bool,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

/// Starts `berth registry serve` with its root and log in `dir`, on a free
/// port (another if a concurrent test took it first).
fn spawn(dir: &Path, extra: &[String]) -> (Child, u16) {
    for _attempt in 0..5 {
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(BERTH)
            .args(["--log-level", "debug", "registry", "serve", "--addr", &addr])
            .arg("--root")
            .arg(dir.join("root"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, port);
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
                if log.contains("in use") {
                    break;
                }
                panic!("registry exited with {status}: {log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("registry did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free port for the registry");
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        Server::start_in(dir, extra)
    }

    /// Starts in `dir` (which may already hold an htpasswd file or a cert).
    fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, port) = spawn(dir.path(), &extra);
        Server {
            child,
            port,
            https: extra.iter().any(|a| a == "--tls-cert"),
            extra,
            dir,
        }
    }

    /// Stops the server with SIGTERM (it must exit cleanly) and starts it
    /// again on the same root.
    fn restart(&mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "SIGTERM did not stop the registry"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "exit after SIGTERM: {status}: {}",
            self.log()
        );
        let (child, port) = spawn(self.dir.path(), &self.extra);
        self.child = child;
        self.port = port;
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.host())
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn curl(&self, args: &[&str], path: &str) -> Resp {
        curl(args, &self.url(path))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A curl response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn curl(args: &[&str], url: &str) -> Resp {
    let dir = tempfile::tempdir().unwrap();
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let out = Command::new("curl")
        .args(["-sS", "-g", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let raw = std::fs::read_to_string(&h).unwrap_or_default();
    // The last header block (after any `100 Continue`).
    let block = raw
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or("");
    let headers = block
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("REGISTRY_AUTH_FILE", "/nonexistent/berth-test-auth.json")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn skopeo_ok(args: &[&str]) -> String {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small OCI image layout written by hand: one uncompressed tar layer with
/// a couple of files, a config, a manifest tagged `v1`.
struct Layout {
    _dir: tempfile::TempDir,
    path: PathBuf,
    manifest: Vec<u8>,
    layer: Vec<u8>,
    config: Vec<u8>,
}

impl Layout {
    fn new(seed: &str) -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layout");
        std::fs::create_dir_all(path.join("blobs/sha256")).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("hello.txt", format!("hello from {seed}\n").into_bytes()),
            // Enough bytes that pushes are not all a single small request.
            ("data.bin", pseudo_random(seed, 300 * 1024)),
        ];
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            tar.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        let tarball = tar.into_inner().unwrap();
        let diff_id = Digest::of(&tarball);
        // Gzipped, as registries carry layers: skopeo then pushes it as is
        // (an uncompressed layer it would compress, changing the manifest).
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tarball).unwrap();
        let layer = gz.finish().unwrap();
        let layer_d = Digest::of(&layer);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": Digest::of(&config).to_string(),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_d.to_string(),
                "size": layer.len(),
            }],
        }))
        .unwrap();
        for blob in [&layer, &config, &manifest] {
            std::fs::write(path.join("blobs/sha256").join(Digest::of(blob).hex()), blob).unwrap();
        }
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": Digest::of(&manifest).to_string(),
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            }],
        });
        std::fs::write(path.join("index.json"), index.to_string()).unwrap();
        std::fs::write(path.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            _dir: dir,
            path,
            manifest,
            layer,
            config,
        }
    }

    fn src(&self) -> String {
        format!("oci:{}:v1", self.path.display())
    }

    fn digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }
}

/// Deterministic, incompressible-looking bytes.
fn pseudo_random(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Digest::of(seed.as_bytes()).hex().to_string();
    while out.len() < len {
        block = Digest::of(block.as_bytes()).hex().to_string();
        out.extend_from_slice(block.as_bytes());
    }
    out.truncate(len);
    out
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(data).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn skopeo_pushes_and_pulls_an_image() {
    let srv = Server::start(&[]);
    let img = Layout::new("push-pull");
    let dest = format!("docker://{}/me/app:v1", srv.host());
    skopeo_ok(&["copy", "--dest-tls-verify=false", &img.src(), &dest]);
    // A nested name, and a second tag of the same image.
    let nested = format!("docker://{}/a/b/c:v2", srv.host());
    skopeo_ok(&["copy", "--dest-tls-verify=false", &img.src(), &nested]);
    let again = format!("docker://{}/me/app:v2", srv.host());
    skopeo_ok(&["copy", "--dest-tls-verify=false", &img.src(), &again]);

    // Pulled back, the manifest is byte for byte the one pushed.
    let out = tempfile::tempdir().unwrap();
    let pulled = out.path().join("pulled");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("dir:{}", pulled.display()),
    ]);
    let manifest = std::fs::read(pulled.join("manifest.json")).unwrap();
    assert_eq!(Digest::of(&manifest), img.digest());
    let layer = std::fs::read(pulled.join(Digest::of(&img.layer).hex())).unwrap();
    assert_eq!(layer, img.layer);
    let config = std::fs::read(pulled.join(Digest::of(&img.config).hex())).unwrap();
    assert_eq!(config, img.config);

    let inspect: Value =
        serde_json::from_str(&skopeo_ok(&["inspect", "--tls-verify=false", &dest])).unwrap();
    assert_eq!(inspect["Digest"], img.digest().to_string());
    assert_eq!(inspect["Os"], "linux");
    let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &dest]);
    assert_eq!(raw.as_bytes(), img.manifest.as_slice());

    let tags: Value = serde_json::from_str(&skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/me/app", srv.host()),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"], json!(["v1", "v2"]));

    // Catalog and tags, paginated.
    let cat = srv.curl(&[], "/v2/_catalog");
    assert_eq!(cat.status, 200);
    assert_eq!(cat.json()["repositories"], json!(["a/b/c", "me/app"]));
    let page = srv.curl(&[], "/v2/_catalog?n=1");
    assert_eq!(page.json()["repositories"], json!(["a/b/c"]));
    assert_eq!(
        page.header("link"),
        Some("</v2/_catalog?n=1&last=a/b/c>; rel=\"next\"")
    );
    let page = srv.curl(&[], "/v2/_catalog?n=1&last=a/b/c");
    assert_eq!(page.json()["repositories"], json!(["me/app"]));
    assert_eq!(page.header("link"), None);
    let tags = srv.curl(&[], "/v2/me/app/tags/list?n=1");
    assert_eq!(tags.json(), json!({"name": "me/app", "tags": ["v1"]}));
    assert!(tags.header("link").unwrap().contains("last=v1"));
    let tags = srv.curl(&[], "/v2/me/app/tags/list?n=1&last=v1");
    assert_eq!(tags.json()["tags"], json!(["v2"]));
    assert_eq!(
        srv.curl(&[], "/v2/nope/tags/list").error_code(),
        "NAME_UNKNOWN"
    );

    // HEAD and GET of the manifest by tag and by digest.
    let head = srv.curl(&["-I"], "/v2/me/app/manifests/v1");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(
        head.header("docker-content-digest"),
        Some(img.digest().to_string().as_str())
    );
    assert_eq!(
        head.header("content-length"),
        Some(img.manifest.len().to_string().as_str())
    );
    let by_digest = srv.curl(&[], &format!("/v2/me/app/manifests/{}", img.digest()));
    assert_eq!(by_digest.body, img.manifest);

    // A blob read in parts, as a resumed download does.
    let layer_d = Digest::of(&img.layer);
    let part = srv.curl(&["-r", "100-199"], &format!("/v2/me/app/blobs/{layer_d}"));
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &img.layer[100..200]);
    let total = img.layer.len();
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{total}").as_str())
    );
    let head = srv.curl(&["-I"], &format!("/v2/me/app/blobs/{layer_d}"));
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(total.to_string().as_str())
    );
    let past = srv.curl(
        &["-r", &format!("{total}-")],
        &format!("/v2/me/app/blobs/{layer_d}"),
    );
    assert_eq!(past.status, 416);

    // Deleting by digest unlinks the manifest and its tags.
    let del = srv.curl(
        &["-X", "DELETE"],
        &format!("/v2/me/app/manifests/{}", img.digest()),
    );
    assert_eq!(del.status, 202);
    let gone = srv.curl(&[], "/v2/me/app/manifests/v1");
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_eq!(
        srv.curl(&[], "/v2/me/app/tags/list").json()["tags"],
        json!([])
    );
    // The other repository still has it.
    assert_eq!(srv.curl(&["-I"], "/v2/a/b/c/manifests/v2").status, 200);
    assert!(
        srv.log().contains("registry request"),
        "requests are logged at debug"
    );
}

/// The upload protocol through curl: chunks, order, status, digests, mounts.
#[test]
fn chunked_uploads_digests_and_mounts() {
    let srv = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let data = pseudo_random("chunks", 10_000);
    let d = Digest::of(&data);
    let (a, b) = data.split_at(4000);
    let fa = write_file(tmp.path(), "a", a);
    let fb = write_file(tmp.path(), "b", b);

    let start = srv.curl(&["-X", "POST"], "/v2/up/blobs/uploads/");
    assert_eq!(start.status, 202);
    assert_eq!(start.header("range"), Some("0-0"));
    assert!(start.header("docker-upload-uuid").is_some());
    let loc = start.header("location").unwrap().to_string();
    assert!(loc.starts_with("/v2/up/blobs/uploads/"), "{loc}");

    let ct = ["-H", "Content-Type: application/octet-stream"];
    let p1 = srv.curl(
        &[
            &ct[..],
            &[
                "-X",
                "PATCH",
                "-H",
                "Content-Range: 0-3999",
                "--data-binary",
            ],
            &[&format!("@{fa}")],
        ]
        .concat(),
        &loc,
    );
    assert_eq!(p1.status, 202, "{:?}", String::from_utf8_lossy(&p1.body));
    assert_eq!(p1.header("range"), Some("0-3999"));
    // A chunk that does not follow on is refused, and nothing changes.
    let skip = srv.curl(
        &[
            &ct[..],
            &[
                "-X",
                "PATCH",
                "-H",
                "Content-Range: 5000-5999",
                "--data-binary",
            ],
            &[&format!("@{fb}")],
        ]
        .concat(),
        &loc,
    );
    assert_eq!(skip.status, 416);
    assert_eq!(skip.header("range"), Some("0-3999"));
    let status = srv.curl(&[], &loc);
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-3999"));
    // The last chunk comes with the PUT.
    let put = srv.curl(
        &[
            &ct[..],
            &["-X", "PUT", "--data-binary"],
            &[&format!("@{fb}")],
        ]
        .concat(),
        &format!("{loc}?digest={d}"),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(
        put.header("docker-content-digest"),
        Some(d.to_string().as_str())
    );
    assert_eq!(
        put.header("location"),
        Some(format!("/v2/up/blobs/{d}").as_str())
    );
    let got = srv.curl(&[], &format!("/v2/up/blobs/{d}"));
    assert_eq!(got.body, data);
    assert_eq!(srv.curl(&[], &loc).error_code(), "BLOB_UPLOAD_UNKNOWN");

    // A monolithic upload whose digest does not match stores nothing.
    let other = pseudo_random("mismatch", 5000);
    let fo = write_file(tmp.path(), "o", &other);
    let wrong = Digest::of(b"something else");
    let bad = srv.curl(
        &[
            &ct[..],
            &["-X", "POST", "--data-binary"],
            &[&format!("@{fo}")],
        ]
        .concat(),
        &format!("/v2/up/blobs/uploads/?digest={wrong}"),
    );
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    for dd in [&wrong, &Digest::of(&other)] {
        assert_eq!(srv.curl(&["-I"], &format!("/v2/up/blobs/{dd}")).status, 404);
        assert!(!srv.root().join("blobs/sha256").join(dd.hex()).exists());
    }
    // The same through PATCH then PUT.
    let start = srv.curl(&["-X", "POST"], "/v2/up/blobs/uploads/");
    let loc2 = start.header("location").unwrap().to_string();
    srv.curl(
        &[
            &ct[..],
            &["-X", "PATCH", "--data-binary"],
            &[&format!("@{fo}")],
        ]
        .concat(),
        &loc2,
    );
    let bad = srv.curl(&["-X", "PUT"], &format!("{loc2}?digest={wrong}"));
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    assert!(!srv
        .root()
        .join("blobs/sha256")
        .join(Digest::of(&other).hex())
        .exists());
    let uploads: Vec<_> = std::fs::read_dir(srv.root().join("uploads"))
        .unwrap()
        .collect();
    assert!(uploads.is_empty(), "uploads left: {uploads:?}");

    // Blobs are per repository until mounted.
    assert_eq!(
        srv.curl(&["-I"], &format!("/v2/second/blobs/{d}")).status,
        404
    );
    let mount = srv.curl(
        &["-X", "POST"],
        &format!("/v2/second/blobs/uploads/?mount={d}&from=up"),
    );
    assert_eq!(mount.status, 201);
    assert_eq!(
        mount.header("location"),
        Some(format!("/v2/second/blobs/{d}").as_str())
    );
    assert_eq!(
        srv.curl(&["-I"], &format!("/v2/second/blobs/{d}")).status,
        200
    );
    // Mounting from a repository that lacks the blob starts an upload.
    let fallback = srv.curl(
        &["-X", "POST"],
        &format!("/v2/third/blobs/uploads/?mount={d}&from=nothere"),
    );
    assert_eq!(fallback.status, 202);
    assert!(fallback.header("location").is_some());
    // Deleting unlinks from one repository only.
    assert_eq!(
        srv.curl(&["-X", "DELETE"], &format!("/v2/second/blobs/{d}"))
            .status,
        202
    );
    assert_eq!(
        srv.curl(&["-I"], &format!("/v2/second/blobs/{d}")).status,
        404
    );
    assert_eq!(srv.curl(&["-I"], &format!("/v2/up/blobs/{d}")).status, 200);

    // An upload survives a restart of the server and resumes where it was.
    let mut srv = srv;
    let start = srv.curl(&["-X", "POST"], "/v2/up/blobs/uploads/");
    let resumed = start.header("location").unwrap().to_string();
    let r = srv.curl(
        &[
            &ct[..],
            &["-X", "PATCH", "--data-binary"],
            &[&format!("@{fa}")],
        ]
        .concat(),
        &resumed,
    );
    assert_eq!(r.header("range"), Some("0-3999"));
    srv.restart();
    assert_eq!(srv.curl(&[], &resumed).header("range"), Some("0-3999"));
    let put = srv.curl(
        &[
            &ct[..],
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Range: 4000-9999",
                "--data-binary",
            ],
            &[&format!("@{fb}")],
        ]
        .concat(),
        &format!("{resumed}?digest={d}"),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(srv.curl(&["-I"], &format!("/v2/up/blobs/{d}")).status, 200);

    // Cancel.
    let start = srv.curl(&["-X", "POST"], "/v2/up/blobs/uploads/");
    let loc3 = start.header("location").unwrap().to_string();
    assert_eq!(srv.curl(&["-X", "DELETE"], &loc3).status, 204);
    assert_eq!(srv.curl(&[], &loc3).status, 404);
}

#[test]
fn manifests_errors_and_referrers() {
    let srv = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let put_blob = |repo: &str, data: &[u8]| {
        let f = write_file(tmp.path(), &Digest::of(data).hex()[..12], data);
        let r = srv.curl(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{f}"),
            ],
            &format!("/v2/{repo}/blobs/uploads/?digest={}", Digest::of(data)),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    };
    let put_manifest = |path: &str, media: &str, body: &[u8]| {
        let f = write_file(tmp.path(), "m.json", body);
        srv.curl(
            &[
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {media}"),
                "--data-binary",
                &format!("@{f}"),
            ],
            path,
        )
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = pseudo_random("layer", 2048);
    let manifest = |config_d: &Digest, layer_d: &Digest| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d.to_string(), "size": layer.len()}],
        })
        .to_string()
        .into_bytes()
    };
    let m = manifest(&Digest::of(config), &Digest::of(&layer));

    // Blobs first, or the manifest is refused.
    let r = put_manifest("/v2/img/manifests/v1", OCI_MANIFEST, &m);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    put_blob("img", config);
    put_blob("img", &layer);
    let r = put_manifest("/v2/img/manifests/v1", OCI_MANIFEST, &m);
    assert_eq!(r.status, 201);
    let md = Digest::of(&m);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(md.to_string().as_str())
    );
    // By digest: the body must match.
    let wrong = put_manifest(
        &format!("/v2/img/manifests/{}", Digest::of(b"x")),
        OCI_MANIFEST,
        &m,
    );
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    assert_eq!(
        put_manifest(&format!("/v2/img/manifests/{md}"), OCI_MANIFEST, &m).status,
        201
    );
    let bad = put_manifest("/v2/img/manifests/v2", OCI_MANIFEST, b"{not json");
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );

    // A Docker schema2 manifest keeps its media type.
    let docker_type = "application/vnd.docker.distribution.manifest.v2+json";
    let dm = json!({
        "schemaVersion": 2, "mediaType": docker_type,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "digest": Digest::of(&layer).to_string(), "size": layer.len()}],
    }).to_string().into_bytes();
    assert_eq!(
        put_manifest("/v2/img/manifests/docker", docker_type, &dm).status,
        201
    );
    let got = srv.curl(&[], "/v2/img/manifests/docker");
    assert_eq!(got.header("content-type"), Some(docker_type));
    assert_eq!(got.body, dm);

    // Names, tags and digests per the spec's grammar.
    let r = srv.curl(&[], "/v2/Bad_Name/tags/list");
    assert_eq!((r.status, r.error_code().as_str()), (400, "NAME_INVALID"));
    let r = srv.curl(&[], "/v2/img/manifests/.bad");
    assert_eq!((r.status, r.error_code().as_str()), (400, "TAG_INVALID"));
    let r = srv.curl(&[], "/v2/img/blobs/sha256:1234");
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = srv.curl(&[], &format!("/v2/img/blobs/{}", Digest::of(b"none")));
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    let r = srv.curl(&[], "/v2/img/manifests/nope");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = srv.curl(&[], "/v2/unknown/manifests/v1");
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let r = srv.curl(&["-X", "POST"], "/v2/img/manifests/v1");
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));
    let base = srv.curl(&[], "/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(base.json(), json!({}));
    assert_eq!(
        base.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Referrers: two artifacts about the image, filtered by type.
    let empty = b"{}";
    put_blob("img", empty);
    let artifact = |kind: &str| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::of(empty).to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::of(empty).to_string(), "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": m.len()},
            "annotations": {"kind": kind},
        }).to_string().into_bytes()
    };
    let sig = artifact("application/vnd.example.sig");
    let sbom = artifact("application/vnd.example.sbom");
    for a in [&sig, &sbom] {
        let r = put_manifest(
            &format!("/v2/img/manifests/{}", Digest::of(a)),
            OCI_MANIFEST,
            a,
        );
        assert_eq!(r.status, 201);
        assert_eq!(r.header("oci-subject"), Some(md.to_string().as_str()));
    }
    let refs = srv.curl(&[], &format!("/v2/img/referrers/{md}"));
    assert_eq!(refs.status, 200);
    assert_eq!(
        refs.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let index = refs.json();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    let filtered = srv.curl(
        &[],
        &format!("/v2/img/referrers/{md}?artifactType=application/vnd.example.sig"),
    );
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let list = filtered.json()["manifests"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["digest"], Digest::of(&sig).to_string());
    assert_eq!(list[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(list[0]["size"], sig.len());
    assert_eq!(
        list[0]["annotations"]["kind"],
        "application/vnd.example.sig"
    );
    let none = srv.curl(&[], &format!("/v2/img/referrers/{}", Digest::of(b"other")));
    assert_eq!(none.json()["manifests"], json!([]));
    // A deleted referrer leaves the list.
    srv.curl(
        &["-X", "DELETE"],
        &format!("/v2/img/manifests/{}", Digest::of(&sbom)),
    );
    let refs = srv.curl(&[], &format!("/v2/img/referrers/{md}"));
    assert_eq!(refs.json()["manifests"].as_array().unwrap().len(), 1);
}

/// Several clients push the same blob at once: all succeed, one copy stays.
#[test]
fn concurrent_pushes_of_the_same_blob() {
    let srv = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let data = pseudo_random("concurrent", 3 * 1024 * 1024);
    let d = Digest::of(&data);
    let f = write_file(tmp.path(), "blob", &data);
    let url = |repo: &str| srv.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let url = url(if i % 2 == 0 { "same" } else { "other" });
                let f = f.clone();
                s.spawn(move || {
                    curl(
                        &[
                            "-X",
                            "POST",
                            "-H",
                            "Content-Type: application/octet-stream",
                            "--data-binary",
                            &format!("@{f}"),
                        ],
                        &url,
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![201; 8]);
    for repo in ["same", "other"] {
        let got = srv.curl(&[], &format!("/v2/{repo}/blobs/{d}"));
        assert_eq!(Digest::of(&got.body), d);
    }
    // And whole images at once, from several skopeo processes.
    let img = Layout::new("concurrent");
    std::thread::scope(|s| {
        for i in 0..4 {
            let (src, host) = (img.src(), srv.host());
            s.spawn(move || {
                skopeo_ok(&[
                    "copy",
                    "--dest-tls-verify=false",
                    &src,
                    &format!("docker://{host}/con/app:t{i}"),
                ]);
            });
        }
    });
    let tags = srv.curl(&[], "/v2/con/app/tags/list").json();
    assert_eq!(tags["tags"], json!(["t0", "t1", "t2", "t3"]));
    let tmp_left: Vec<_> = std::fs::read_dir(srv.root().join("tmp")).unwrap().collect();
    assert!(tmp_left.is_empty());
}

fn htpasswd(dir: &Path) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret"])
        .output()
        .expect("htpasswd (apache2-utils) is needed");
    assert!(out.status.success());
    write_file(dir, "htpasswd", &out.stdout)
}

#[test]
fn basic_auth() {
    let dir = tempfile::Builder::new()
        .prefix("berth-registry-")
        .tempdir()
        .unwrap();
    let file = htpasswd(dir.path());
    let srv = Server::start_in(dir, &["--htpasswd", &file]);
    let r = srv.curl(&[], "/v2/");
    assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"berth-registry\"")
    );
    assert_eq!(srv.curl(&["-u", "alice:wrong"], "/v2/").status, 401);
    assert_eq!(srv.curl(&["-u", "bob:s3cret"], "/v2/").status, 401);
    assert_eq!(srv.curl(&["-u", "alice:s3cret"], "/v2/").status, 200);
    assert_eq!(srv.curl(&[], "/v2/_catalog").status, 401);

    let img = Layout::new("basic");
    let dest = format!("docker://{}/auth/app:v1", srv.host());
    let denied = skopeo(&["copy", "--dest-tls-verify=false", &img.src(), &dest]);
    assert!(!denied.status.success());
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &img.src(),
        &dest,
    ]);
    let inspect: Value = serde_json::from_str(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &dest,
    ]))
    .unwrap();
    assert_eq!(inspect["Digest"], img.digest().to_string());
    let tags = srv.curl(&["-u", "alice:s3cret"], "/v2/auth/app/tags/list");
    assert_eq!(tags.json()["tags"], json!(["v1"]));
}

#[test]
fn token_auth() {
    let dir = tempfile::Builder::new()
        .prefix("berth-registry-")
        .tempdir()
        .unwrap();
    let file = htpasswd(dir.path());
    let srv = Server::start_in(dir, &["--htpasswd", &file, "--token-auth"]);
    let host = srv.host();

    // The challenge names the token endpoint, the service and the scope.
    let r = srv.curl(&[], "/v2/me/app/tags/list");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!("Bearer realm=\"http://{host}/token\",service=\"berth-registry\",scope=\"repository:me/app:pull\"")
    );
    let r = srv.curl(&["-X", "POST"], "/v2/me/app/blobs/uploads/");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .ends_with("scope=\"repository:me/app:pull,push\""));
    // Basic credentials are not taken on the API itself.
    assert_eq!(srv.curl(&["-u", "alice:s3cret"], "/v2/").status, 401);

    // The token endpoint wants valid credentials.
    let q = "/token?service=berth-registry&scope=repository:me/app:pull";
    assert_eq!(srv.curl(&[], q).status, 401);
    assert_eq!(srv.curl(&["-u", "alice:nope"], q).status, 401);
    let t = srv.curl(&["-u", "alice:s3cret"], q);
    assert_eq!(t.status, 200);
    let body = t.json();
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["token"], body["access_token"]);
    let token = body["token"].as_str().unwrap().to_string();
    let bearer = format!("Authorization: Bearer {token}");

    assert_eq!(srv.curl(&["-H", &bearer], "/v2/").status, 200);
    // A pull token reads but does not write, nor reads elsewhere.
    let r = srv.curl(&["-H", &bearer], "/v2/me/app/tags/list");
    assert_eq!(
        r.error_code(),
        "NAME_UNKNOWN",
        "authorised, and the repository is empty"
    );
    let r = srv.curl(&["-H", &bearer, "-X", "POST"], "/v2/me/app/blobs/uploads/");
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    assert_eq!(
        srv.curl(&["-H", &bearer], "/v2/other/tags/list").status,
        401
    );
    // A forged token is refused.
    let forged = format!("Authorization: Bearer {}x", token);
    assert_eq!(srv.curl(&["-H", &forged], "/v2/").status, 401);

    // A push token, through the OAuth2 form as well.
    let form = srv.curl(
        &["-X", "POST", "-d", "grant_type=password&username=alice&password=s3cret&service=berth-registry&scope=repository:me/app:pull,push"],
        "/token",
    );
    assert_eq!(form.status, 200);
    let push = format!(
        "Authorization: Bearer {}",
        form.json()["access_token"].as_str().unwrap()
    );
    assert_eq!(
        srv.curl(&["-H", &push, "-X", "POST"], "/v2/me/app/blobs/uploads/")
            .status,
        202
    );

    // skopeo follows the flow by itself.
    let img = Layout::new("token");
    let dest = format!("docker://{host}/me/app:v1");
    assert!(
        !skopeo(&["copy", "--dest-tls-verify=false", &img.src(), &dest])
            .status
            .success()
    );
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &img.src(),
        &dest,
    ]);
    let tags: Value = serde_json::from_str(&skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &format!("docker://{host}/me/app"),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]));
    // A cross-repository mount by skopeo needs pull on the source too.
    let dest2 = format!("docker://{host}/me/copy:v1");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "alice:s3cret",
        "--dest-creds",
        "alice:s3cret",
        &dest,
        &dest2,
    ]);
    let catalog_scope = "/token?service=berth-registry&scope=registry:catalog:*";
    let cat = srv.curl(&["-u", "alice:s3cret"], catalog_scope).json();
    let cat_bearer = format!("Authorization: Bearer {}", cat["token"].as_str().unwrap());
    let repos = srv.curl(&["-H", &cat_bearer], "/v2/_catalog").json();
    assert_eq!(repos["repositories"], json!(["me/app", "me/copy"]));
}

/// A CA (`certs/ca.crt`, what docker's `certs.d/<registry>/` and skopeo's
/// cert dirs hold) and a server certificate for 127.0.0.1 it signed
/// (`dir/server.crt`, `dir/key.pem`). Returns the server's cert and key.
fn self_signed(certs: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(certs).unwrap();
    let ca = certs.join("ca.crt");
    let (ca_key, cert, key, csr) = (
        dir.join("ca-key.pem"),
        dir.join("server.crt"),
        dir.join("key.pem"),
        dir.join("server.csr"),
    );
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let p = |x: &PathBuf| x.to_string_lossy().into_owned();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-days",
                "1",
                "-subj",
                "/CN=berth test CA",
                "-keyout",
                &p(&ca_key),
                "-out",
                &p(&ca),
            ][..],
        ]
        .concat(),
        [
            &["req"][..],
            &ec[..],
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                &p(&key),
                "-out",
                &p(&csr),
            ][..],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &p(&csr),
            "-CA",
            &p(&ca),
            "-CAkey",
            &p(&ca_key),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p(&ext),
            "-out",
            &p(&cert),
        ],
    ] {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (cert, key)
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::Builder::new()
        .prefix("berth-registry-")
        .tempdir()
        .unwrap();
    let certs = dir.path().join("certs");
    let (cert, key) = self_signed(&certs, dir.path());
    let (c, k) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let srv = Server::start_in(dir, &["--tls-cert", &c, "--tls-key", &k]);

    let ca = certs.join("ca.crt").to_string_lossy().into_owned();
    let r = srv.curl(&["--cacert", &ca], "/v2/");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({}));
    // Without the CA, curl refuses the certificate.
    let refused = Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(srv.url("/v2/"))
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let img = Layout::new("tls");
    let dest = format!("docker://{}/secure/app:v1", srv.host());
    let cert_dir = certs.to_string_lossy().into_owned();
    skopeo_ok(&["copy", "--dest-cert-dir", &cert_dir, &img.src(), &dest]);
    let inspect: Value =
        serde_json::from_str(&skopeo_ok(&["inspect", "--cert-dir", &cert_dir, &dest])).unwrap();
    assert_eq!(inspect["Digest"], img.digest().to_string());
    skopeo_ok(&["inspect", "--tls-verify=false", &dest]);
}

#[test]
fn startup_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let serve = |extra: &[&str], addr: &str| {
        let out = Command::new(BERTH)
            .args(["registry", "serve", "--addr", addr])
            .arg("--root")
            .arg(&root)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "serve {extra:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let err = serve(&[], &addr);
    assert!(
        err.contains(&format!("listen on {addr}")) && err.contains("in use"),
        "{err}"
    );

    let free = format!("127.0.0.1:{}", free_port());
    let err = serve(&["--htpasswd", "/nonexistent/htpasswd"], &free);
    assert!(err.contains("/nonexistent/htpasswd"), "{err}");
    let plain = write_file(dir.path(), "plain", b"alice:{SHA}abc\n");
    let err = serve(&["--htpasswd", &plain], &free);
    assert!(err.contains("bcrypt") && err.contains("line 1"), "{err}");

    let junk = write_file(dir.path(), "junk.pem", b"not a certificate\n");
    let err = serve(&["--tls-cert", &junk, "--tls-key", &junk], &free);
    assert!(
        err.contains("TLS certificate") && err.contains("junk.pem"),
        "{err}"
    );
}

/// Berth's own client against Berth's own server, the way a user meets a
/// private registry: TLS with a CA in `certs.d/<registry>/`, Docker Hub's
/// token flow, `login`, push, pull on another machine, skopeo agreeing on
/// the digest.
#[test]
fn berth_client_with_token_auth_over_tls() {
    use crate::common::Env;
    let dir = tempfile::Builder::new()
        .prefix("berth-registry-")
        .tempdir()
        .unwrap();
    let pw = htpasswd(dir.path());
    let certs = dir.path().join("certs");
    let (cert, key) = self_signed(&certs, dir.path());
    let (c, k) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    let srv = Server::start_in(
        dir,
        &[
            "--htpasswd",
            &pw,
            "--token-auth",
            "--tls-cert",
            &c,
            "--tls-key",
            &k,
        ],
    );
    let host = srv.host();
    let trust = |env: &Env| {
        let d = env.docker_config().join("certs.d").join(&host);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(certs.join("ca.crt"), d.join("ca.crt")).unwrap();
    };
    let login = |env: &Env, password: &str| env.login(&host, "alice", password);

    let env = Env::new();
    trust(&env);
    let name = format!("{host}/alice/app:v1");
    assert_eq!(env.berth(&["tag", "busybox", &name]).code, 0);
    let anon = env.berth(&["push", &name]);
    assert_ne!(anon.code, 0, "{anon:?}");
    assert!(anon.stderr.contains("unauthorized"), "{anon:?}");
    assert_eq!(anon.stderr.lines().count(), 1, "{anon:?}");
    let wrong = login(&env, "wrong");
    assert_ne!(wrong.code, 0, "{wrong:?}");
    assert!(
        wrong.stderr.contains("incorrect username or password"),
        "{wrong:?}"
    );
    let ok = login(&env, "s3cret");
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("Login Succeeded"), "{ok:?}");

    let push = env.berth(&["push", &name]);
    assert_eq!(push.code, 0, "{push:?}");
    assert!(push.stdout.contains(": Pushed"), "{push:?}");
    let digest = push
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("v1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let again = env.berth(&["push", &name]);
    assert!(again.stdout.contains("Layer already exists"), "{again:?}");
    // Small blobs (busybox's ~1 MB layer, configs) go up in one PUT, a
    // layer over 4 MiB in chunks: only that one is PATCHed, twice.
    let patches = |srv: &Server| srv.log().matches("method=PATCH").count();
    assert_eq!(patches(&srv), 0, "{}", srv.log());
    let big = format!("{host}/alice/big:v1");
    env.image_from("head -c 6000000 /dev/urandom > /big", &[], &big);
    let push_big = env.berth(&["push", &big]);
    assert_eq!(push_big.code, 0, "{push_big:?}");
    assert_eq!(patches(&srv), 2, "{}", srv.log());
    // The content went over TLS into the server's store.
    let layers = std::fs::read_dir(srv.root()).unwrap().count();
    assert!(layers > 0);

    // Another machine: trusting the CA and logged in, it pulls and runs.
    let env2 = Env::empty();
    trust(&env2);
    let denied = env2.berth(&["pull", &name]);
    assert_ne!(denied.code, 0, "{denied:?}");
    assert_eq!(login(&env2, "s3cret").code, 0);
    let pull = env2.berth(&["pull", &name]);
    assert_eq!(pull.code, 0, "{pull:?}");
    assert!(
        pull.stdout.contains(&format!("Digest: {digest}")),
        "{pull:?}"
    );
    let run = env2.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "over tls",
    ]);
    assert_eq!(run.stdout, "over tls\n", "{run:?}");

    // Without the CA: refused with what to do, never a fall back to http.
    let env3 = Env::empty();
    let untrusted = env3.berth(&["pull", &name]);
    assert_ne!(untrusted.code, 0, "{untrusted:?}");
    assert!(
        untrusted.stderr.contains("does not trust") && untrusted.stderr.contains("certs.d"),
        "{untrusted:?}"
    );
    assert_eq!(untrusted.stderr.lines().count(), 1, "{untrusted:?}");

    // skopeo sees the same image.
    let cert_dir = certs.to_string_lossy().into_owned();
    let inspect: Value = serde_json::from_str(&skopeo_ok(&[
        "inspect",
        "--cert-dir",
        &cert_dir,
        "--creds",
        "alice:s3cret",
        &format!("docker://{name}"),
    ]))
    .unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
}

/// Pushes a blob with curl in one request (`POST ?digest=`).
fn push_blob(srv: &Server, repo: &str, data: &[u8], d: &Digest) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "blob", data);
    let r = srv.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{file}"),
        ],
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.header("docker-content-digest"),
        Some(d.to_string().as_str())
    );
}

/// Puts a manifest with curl under `reference` (a tag or a digest).
fn push_manifest(srv: &Server, repo: &str, reference: &str, bytes: &[u8]) -> Resp {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "manifest", bytes);
    srv.curl(
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {OCI_MANIFEST}"),
            "--data-binary",
            &format!("@{file}"),
        ],
        &format!("/v2/{repo}/manifests/{reference}"),
    )
}

/// An image manifest over `layers` (gzipped tars) with the config's
/// diff_ids hashed the same way as the blobs.
fn image_manifest(alg: berth_image::Algorithm, config: &[u8], layers: &[Vec<u8>]) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": Digest::of_as(alg, l).to_string(), "size": l.len()})
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of_as(alg, config).to_string(), "size": config.len()},
        "layers": layers,
    }))
    .unwrap()
}

#[test]
fn sha512_images_through_curl_berth_and_skopeo() {
    use crate::common::{busybox_tar, Env};
    use berth_image::Algorithm::Sha512;
    let srv = Server::start(&[]);
    // busybox as a sha512 image: the layer, its diff_id, the config and the
    // manifest all under sha512 digests, pushed with curl.
    let tarball = std::fs::read(busybox_tar()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tarball).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of_as(Sha512, &tarball).to_string()]},
    }))
    .unwrap();
    let (layer_d, config_d) = (
        Digest::of_as(Sha512, &layer),
        Digest::of_as(Sha512, &config),
    );
    // The layer through a session (POST, PATCH, PUT ?digest=sha512:...).
    let start = srv.curl(&["-X", "POST"], "/v2/sha/app/blobs/uploads/");
    assert_eq!(start.status, 202, "{start:?}");
    let location = start.header("location").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "layer", &layer);
    let patch = srv.curl(
        &["-X", "PATCH", "--data-binary", &format!("@{file}")],
        &location,
    );
    assert_eq!(patch.status, 202, "{patch:?}");
    let put = srv.curl(&["-X", "PUT"], &format!("{location}?digest={layer_d}"));
    assert_eq!(put.status, 201, "{put:?}");
    push_blob(&srv, "sha/app", &config, &config_d);
    let manifest = image_manifest(Sha512, &config, &[layer]);
    let manifest_d = Digest::of_as(Sha512, &manifest);
    let put = push_manifest(&srv, "sha/app", &manifest_d.to_string(), &manifest);
    assert_eq!(put.status, 201, "{put:?}");
    assert_eq!(
        put.header("docker-content-digest"),
        Some(manifest_d.to_string().as_str())
    );
    // Tagged too (a tag names the manifest's sha256 digest): skopeo 1.9
    // checks a manifest it fetches by digest with sha256 only, so it reads
    // the sha512 blobs through the tag.
    assert_eq!(push_manifest(&srv, "sha/app", "v1", &manifest).status, 201);
    assert!(srv.root().join("blobs/sha512").join(layer_d.hex()).exists());
    let got = srv.curl(&["-I"], &format!("/v2/sha/app/manifests/{manifest_d}"));
    assert_eq!(got.status, 200);
    let blob = srv.curl(&["-I"], &format!("/v2/sha/app/blobs/{config_d}"));
    assert_eq!(blob.status, 200);

    // Berth pulls it by its sha512 digest and runs it.
    let env = Env::empty();
    let name = format!("{}/sha/app@{manifest_d}", srv.host());
    let pull = env.berth(&["pull", &name]);
    assert_eq!(pull.code, 0, "{pull:?}");
    let run = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "sha512 ran",
    ]);
    assert_eq!(run.stdout, "sha512 ran\n", "{run:?}");
    // And pushes it on: its layer goes up under its sha512 digest.
    let again = format!("{}/berth/app:v1", srv.host());
    assert_eq!(env.berth(&["tag", &name, &again]).code, 0);
    let push = env.berth(&["push", &again]);
    assert_eq!(push.code, 0, "{push:?}");
    let head = srv.curl(&["-I"], &format!("/v2/berth/app/blobs/{layer_d}"));
    assert_eq!(head.status, 200, "{head:?}");

    // skopeo reads the manifest. (skopeo 1.9 goes no further with sha512:
    // it checks the config, and every blob a copy writes, with sha256 only,
    // "Download config.json digest sha256:... does not match expected
    // sha512:...".)
    let src = format!("docker://{}/sha/app:v1", srv.host());
    let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &src]);
    assert_eq!(raw.as_bytes(), manifest.as_slice());

    // Berth pushes it to Debian's docker-registry (the reference
    // implementation), and another machine pulls it from there and runs it.
    let reference = crate::distribution::DockerRegistry::start(None);
    let there = format!("{}/sha/app:v1", reference.addr);
    assert_eq!(env.berth(&["tag", &name, &there]).code, 0);
    let push = env.berth(&["push", &there]);
    assert_eq!(push.code, 0, "{push:?}");
    let env2 = Env::empty();
    let pull = env2.berth(&["pull", &there]);
    assert_eq!(pull.code, 0, "{pull:?}");
    let run = env2.berth(&["run", "--rm", "--network", "none", &there, "echo", "again"]);
    assert_eq!(run.stdout, "again\n", "{run:?}");

    // A well-formed digest of an algorithm not stored: 404 where looked
    // up, 400 where pushed.
    let blake = format!("blake3:{}", "a".repeat(64));
    for (args, path, status, code) in [
        (vec!["-I"], format!("/v2/sha/app/blobs/{blake}"), 404, ""),
        (
            vec![],
            format!("/v2/sha/app/blobs/{blake}"),
            404,
            "BLOB_UNKNOWN",
        ),
        (
            vec!["-X", "DELETE"],
            format!("/v2/sha/app/blobs/{blake}"),
            404,
            "BLOB_UNKNOWN",
        ),
        (
            vec![],
            format!("/v2/sha/app/manifests/{blake}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            vec!["-X", "DELETE"],
            format!("/v2/sha/app/manifests/{blake}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            vec!["-X", "POST"],
            format!("/v2/sha/app/blobs/uploads/?digest={blake}"),
            400,
            "DIGEST_INVALID",
        ),
    ] {
        let r = srv.curl(&args, &path);
        assert_eq!(r.status, status, "{args:?} {path}: {r:?}");
        if !code.is_empty() {
            assert_eq!(r.error_code(), code, "{path}");
        }
    }
    let referrers = srv.curl(&[], &format!("/v2/sha/app/referrers/{blake}"));
    assert_eq!(referrers.status, 200);
    assert_eq!(referrers.json()["manifests"], json!([]));
    let put = push_manifest(&srv, "sha/app", &blake, &manifest);
    assert_eq!(
        (put.status, put.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
}

/// The upload directories under the root.
fn uploads(srv: &Server) -> Vec<String> {
    std::fs::read_dir(srv.root().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn uploads_end_when_refused_and_expire_when_abandoned() {
    let srv = Server::start(&["--upload-expiry", "2s"]);
    let open = |srv: &Server| {
        let r = srv.curl(&["-X", "POST"], "/v2/me/app/blobs/uploads/");
        assert_eq!(r.status, 202, "{r:?}");
        r.header("location").unwrap().to_string()
    };
    // Refused closing PUTs end their upload at once: a wrong digest, a
    // digest of an algorithm not stored, no digest.
    for query in [
        format!("?digest={}", Digest::of(b"other")),
        format!("?digest=blake3:{}", "a".repeat(64)),
        String::new(),
    ] {
        let location = open(&srv);
        let put = srv.curl(
            &["-X", "PUT", "--data-binary", "data"],
            &format!("{location}{query}"),
        );
        assert_eq!(put.status, 400, "{put:?}");
        assert_eq!(srv.curl(&[], &location).status, 404, "{query}");
    }
    assert!(uploads(&srv).is_empty(), "{:?}", uploads(&srv));
    // Cancelled with DELETE.
    let location = open(&srv);
    assert_eq!(srv.curl(&["-X", "DELETE"], &location).status, 204);
    assert_eq!(srv.curl(&[], &location).status, 404);

    // Abandoned after a chunk; another kept busy with a chunk a second.
    let abandoned = open(&srv);
    let patch = |location: &str| {
        let r = srv.curl(&["-X", "PATCH", "--data-binary", "chunk"], location);
        assert_eq!(r.status, 202, "{r:?}");
    };
    patch(&abandoned);
    let busy = open(&srv);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(900));
        patch(&busy);
    }
    let r = srv.curl(&[], &abandoned);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
    assert_eq!(uploads(&srv).len(), 1, "only the busy upload is left");
    let put = srv.curl(
        &["-X", "PUT"],
        &format!("{busy}?digest={}", Digest::of(b"chunkchunkchunkchunk")),
    );
    assert_eq!(put.status, 201, "{put:?}");
    assert!(uploads(&srv).is_empty());
    assert!(srv.log().contains("expired"), "{}", srv.log());
}

fn gc(root: &Path, args: &[&str]) -> String {
    let out = Command::new(BERTH)
        .args(["registry", "garbage-collect", "--root"])
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "garbage-collect {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Every blob in the root, as digests.
fn blobs(srv: &Server) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for alg in ["sha256", "sha512"] {
        for e in std::fs::read_dir(srv.root().join("blobs").join(alg)).unwrap() {
            out.insert(format!(
                "{alg}:{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[test]
fn garbage_collect_keeps_what_images_use_and_what_is_being_pushed() {
    use berth_image::Algorithm::{Sha256, Sha512};
    let srv = Server::start(&[]);
    // Image a: a shared layer and its own; image b (its manifest pushed
    // under its sha512 digest and a tag): the shared layer only. Then a is
    // deleted.
    let shared = pseudo_random("gc shared", 4096);
    let own = pseudo_random("gc a only", 4096);
    let (config_a, config_b) = (b"{\"a\":1}".to_vec(), b"{\"b\":1}".to_vec());
    for l in [&shared, &own, &config_a] {
        push_blob(&srv, "a", l, &Digest::of(l));
    }
    let manifest_a = image_manifest(Sha256, &config_a, &[shared.clone(), own.clone()]);
    assert_eq!(push_manifest(&srv, "a", "v1", &manifest_a).status, 201);
    for l in [&shared, &config_b] {
        push_blob(&srv, "b", l, &Digest::of(l));
    }
    let manifest_b = image_manifest(Sha256, &config_b, std::slice::from_ref(&shared));
    let b_digest = Digest::of_as(Sha512, &manifest_b);
    assert_eq!(
        push_manifest(&srv, "b", &b_digest.to_string(), &manifest_b).status,
        201
    );
    assert_eq!(push_manifest(&srv, "b", "v1", &manifest_b).status, 201);
    let a_digest = Digest::of(&manifest_a);
    let del = srv.curl(&["-X", "DELETE"], &format!("/v2/a/manifests/{a_digest}"));
    assert_eq!(del.status, 202);
    let before = blobs(&srv);
    assert_eq!(before.len(), 7, "{before:?}");

    // Just pushed: the default grace period keeps everything.
    let kept = gc(&srv.root(), &[]);
    assert!(kept.contains("0 blobs removed"), "{kept}");
    let dry = gc(&srv.root(), &["--dry-run", "--grace", "0s"]);
    assert_eq!(dry.matches("would remove blob").count(), 3, "{dry}");
    assert_eq!(blobs(&srv), before);
    let swept = gc(&srv.root(), &["--grace", "0s"]);
    assert!(swept.contains("3 blobs removed"), "{swept}");
    let expected: std::collections::BTreeSet<String> = [
        Digest::of(&shared),
        Digest::of(&config_b),
        b_digest.clone(),
        Digest::of(&manifest_b),
    ]
    .iter()
    .map(|d| d.to_string())
    .collect();
    assert_eq!(blobs(&srv), expected);
    // b is whole; a's layer is gone, also from a's links.
    let out = tempfile::tempdir().unwrap();
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/b:v1", srv.host()),
        &format!("dir:{}", out.path().join("b").display()),
    ]);
    let gone = srv.curl(&["-I"], &format!("/v2/a/blobs/{}", Digest::of(&own)));
    assert_eq!(gone.status, 404);

    // A push that runs while collections (with no grace at all for old
    // blobs, the default for new ones) run again and again keeps its blobs.
    let img = Layout::new("gc during push");
    let dest = format!("docker://{}/p/app:v1", srv.host());
    let root = srv.root();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let stop = std::sync::Arc::clone(&stop);
        let root = root.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || runs == 0 {
                gc(&root, &[]);
                runs += 1;
            }
            runs
        })
    };
    skopeo_ok(&["copy", "--dest-tls-verify=false", &img.src(), &dest]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(collector.join().unwrap() >= 1);
    gc(&root, &[]);
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("dir:{}", out.path().join("p").display()),
    ]);
    assert_eq!(
        std::fs::read(out.path().join("p/manifest.json")).unwrap(),
        img.manifest
    );
    // A blob uploaded with no manifest yet is kept by the grace period, and
    // only by it.
    let pending = pseudo_random("pending", 1000);
    push_blob(&srv, "p/app", &pending, &Digest::of(&pending));
    gc(&root, &[]);
    assert!(blobs(&srv).contains(&Digest::of(&pending).to_string()));
    let late = gc(&root, &["--grace", "0s"]);
    assert!(late.contains("1 blobs removed"), "{late}");
    assert!(!blobs(&srv).contains(&Digest::of(&pending).to_string()));
    assert_eq!(srv.curl(&["-I"], "/v2/p/app/manifests/v1").status, 200);
}
