//! `POST /build` (the docker CLI's classic builder, `DOCKER_BUILDKIT=0`):
//! the context arrives as a tar body, is unpacked (bounded, confined) into a
//! scratch directory under the state root, and built by the builder; its
//! output goes back as docker's JSON lines (`{"stream": ...}`, then
//! `{"aux": {"ID": ...}}`, or `{"errorDetail": ..., "error": ...}`). A
//! client that goes away cancels the build: the running step's container is
//! killed and removed.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use berth_builder::BuildOptions;
use berth_engine::image::Reference;
use berth_engine::registry::client::Credentials;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::server::State as AppState;

/// The largest context body taken in, and the most its archive may hold
/// once decompressed.
const MAX_CONTEXT: u64 = 4 << 30;
const MAX_UNPACKED: u64 = 8 << 30;

/// How often an idle build stream sends a blank line: a client that went
/// away is noticed when a write fails.
const KEEPALIVE: Duration = Duration::from_secs(1);

/// What the query of `POST /build` asks for.
#[derive(Debug, Default, PartialEq)]
pub struct BuildQuery {
    pub tags: Vec<String>,
    pub dockerfile: Option<String>,
    pub build_args: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    pub network: Option<String>,
    /// A context by URL instead of the body: a git repository or a file.
    pub remote: Option<String>,
}

fn flag(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE")
}

/// `{"K": "V", "N": null}` -> `[(K, V)]` (docker's null: "not given").
fn json_map(what: &str, v: &str) -> ApiResult<Vec<(String, String)>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let map: std::collections::BTreeMap<String, Option<String>> = serde_json::from_str(v)
        .map_err(|e| ApiError::BadRequest(format!("invalid {what} {v:?}: {e}")))?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

impl BuildQuery {
    pub fn parse(raw: &str) -> ApiResult<BuildQuery> {
        let mut q = BuildQuery::default();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            let nonempty = || (!v.is_empty()).then(|| v.to_string());
            match &*k {
                "t" if !v.is_empty() => q.tags.push(v.to_string()),
                "dockerfile" => q.dockerfile = nonempty(),
                "buildargs" => q.build_args = json_map("buildargs", &v)?,
                "labels" => q.labels = json_map("labels", &v)?,
                "target" => q.target = nonempty(),
                "nocache" => q.no_cache = flag(&v),
                "pull" => q.pull = flag(&v),
                "q" => q.quiet = flag(&v),
                "networkmode" => q.network = nonempty().filter(|n| n != "default"),
                "remote" => q.remote = nonempty(),
                // rm/forcerm: step containers are always removed.
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The Dockerfile's path inside the context, refusing names that climb out.
fn dockerfile_path(context: &Path, name: &str) -> Result<PathBuf, String> {
    let rel = Path::new(name);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "the Dockerfile ({name}) must be within the build context"
        ));
    }
    // A link inside the context may point anywhere: follow it only if it
    // stays inside.
    let missing = || format!("Cannot locate specified Dockerfile: {name}");
    let root = context.canonicalize().map_err(|_| missing())?;
    let path = context.join(rel).canonicalize().map_err(|_| missing())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(missing());
    }
    Ok(path)
}

/// The response's sender; `None` once the last line is sent.
type Lines = Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Result<Bytes, std::io::Error>>>>>;

/// Sends one JSON line; false if the client is gone.
fn send(lines: &Lines, v: &Value) -> bool {
    let mut line = v.to_string();
    line.push('\n');
    let guard = lines.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .is_some_and(|tx| tx.send(Ok(Bytes::from(line))).is_ok())
}

/// The builder's output as `{"stream": ...}` lines.
struct StreamWriter {
    lines: Lines,
    cancel: Arc<AtomicBool>,
}

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if self.cancel.load(Ordering::SeqCst) || !send(&self.lines, &json!({ "stream": text })) {
            self.cancel.store(true, Ordering::SeqCst);
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn internal(what: &str) -> impl FnOnce(std::io::Error) -> ApiError + '_ {
    move |e| ApiError::Internal(format!("{what}: {e}"))
}

pub async fn build(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let q = BuildQuery::parse(raw.as_deref().unwrap_or(""))?;
    // Credentials for the base images' registries, this build only.
    let registry_auth: Vec<(String, Credentials)> = crate::images::auth_header::<
        std::collections::BTreeMap<String, crate::images::AuthBody>,
    >(&headers, "X-Registry-Config")?
    .unwrap_or_default()
    .into_iter()
    .filter_map(|(registry, a)| a.credentials().map(|c| (registry, c)))
    .collect();
    let mut tags = Vec::new();
    for t in &q.tags {
        tags.push(
            Reference::parse(t)
                .map_err(|e| ApiError::BadRequest(format!("invalid reference format {t}: {e}")))?,
        );
    }
    let tmp_base = app.engine.root().join("tmp");
    std::fs::create_dir_all(&tmp_base).map_err(internal("create the scratch directory"))?;
    let scratch = tempfile::Builder::new()
        .prefix("build-context-")
        .tempdir_in(&tmp_base)
        .map_err(internal("create a directory for the build context"))?;
    // The body to a file, no larger than allowed.
    let archive = scratch.path().join("context.tar");
    crate::streams::spool(body, &archive, MAX_CONTEXT, "the build context").await?;

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    let lines: Lines = Arc::new(Mutex::new(Some(tx)));
    let cancel = Arc::new(AtomicBool::new(false));
    // Blank lines while the build runs, to notice a client that left.
    tokio::spawn({
        let (lines, cancel) = (lines.clone(), cancel.clone());
        async move {
            loop {
                tokio::time::sleep(KEEPALIVE).await;
                let guard = lines.lock().unwrap_or_else(|e| e.into_inner());
                let Some(tx) = guard.as_ref() else { return };
                if tx.send(Ok(Bytes::from_static(b"\n"))).is_err() {
                    cancel.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    });
    // A thread of its own: a FROM may pull, and the registry client runs a
    // runtime of its own, which cannot start inside the server's.
    std::thread::spawn(move || {
        let quiet = q.quiet;
        let out = StreamWriter {
            lines: lines.clone(),
            cancel: cancel.clone(),
        };
        let result = run_build(&app, &scratch, &archive, q, tags, registry_auth, out);
        let last = match result {
            Ok(id) => {
                // Quiet, the ID is all the output (the CLI prints the stream).
                if quiet {
                    send(&lines, &json!({ "stream": format!("{id}\n") }));
                }
                json!({"aux": {"ID": id}})
            }
            Err(e) => json!({"errorDetail": {"message": e}, "error": e}),
        };
        send(&lines, &last);
        lines.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(scratch);
    });
    let body = Body::from_stream(futures_util::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    }));
    Ok(([("Content-Type", "application/json")], body).into_response())
}

fn run_build(
    app: &AppState,
    scratch: &tempfile::TempDir,
    archive: &Path,
    q: BuildQuery,
    tags: Vec<Reference>,
    registry_auth: Vec<(String, Credentials)>,
    mut out: StreamWriter,
) -> Result<String, String> {
    let made = scratch.path().join("context");
    std::fs::create_dir(&made).map_err(|e| format!("create the build context: {e}"))?;
    let dir = match &q.remote {
        // docker-py's `path=URL`: the body is empty, the daemon fetches.
        Some(remote) => {
            let _ = std::fs::remove_file(archive);
            berth_builder::prepare_remote_context(
                &app.engine,
                remote,
                &made,
                scratch.path(),
                MAX_CONTEXT,
            )?
        }
        None => {
            berth_builder::unpack_context(archive, &made, MAX_UNPACKED)?;
            let _ = std::fs::remove_file(archive);
            made
        }
    };
    let name = q.dockerfile.unwrap_or_else(|| "Dockerfile".into());
    let path = dockerfile_path(&dir, &name)?;
    let dockerfile =
        std::fs::read_to_string(&path).map_err(|e| format!("read the Dockerfile {name}: {e}"))?;
    let opts = BuildOptions {
        dockerfile,
        context: Some(dir),
        tags,
        build_args: q.build_args,
        target: q.target,
        no_cache: q.no_cache,
        labels: q.labels,
        network: q.network,
        quiet: q.quiet,
        pull: q.pull,
        cancel: Some(out.cancel.clone()),
        registry_auth,
        ..Default::default()
    };
    let image = berth_builder::build(&app.engine, &opts, &mut out).map_err(|e| e.to_string())?;
    Ok(image.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_build_query() {
        let q = BuildQuery::parse(
            "t=app&t=app%3A2&dockerfile=sub%2FDf&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D\
             &labels=%7B%22l%22%3A%22v%22%7D&nocache=1&rm=1&forcerm=0&pull=&target=base&networkmode=default",
        )
        .unwrap();
        assert_eq!(q.tags, ["app", "app:2"]);
        assert_eq!(q.dockerfile.as_deref(), Some("sub/Df"));
        assert_eq!(q.build_args, [("A".to_string(), "1".to_string())]);
        assert_eq!(q.labels, [("l".to_string(), "v".to_string())]);
        assert!(q.no_cache && !q.pull && !q.quiet);
        assert_eq!(q.target.as_deref(), Some("base"));
        assert_eq!(q.network, None);
        assert!(BuildQuery::parse("buildargs=notjson").is_err());
    }

    #[test]
    fn dockerfile_stays_in_the_context() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("out")).unwrap();
        assert!(dockerfile_path(t.path(), "Dockerfile").is_ok());
        assert!(dockerfile_path(t.path(), "./Dockerfile").is_ok());
        assert!(dockerfile_path(t.path(), "../Dockerfile").is_err());
        assert!(dockerfile_path(t.path(), "/etc/passwd").is_err());
        assert!(dockerfile_path(t.path(), "out").is_err());
        assert!(dockerfile_path(t.path(), "missing").is_err());
    }
}
