//! The listener: a unix socket (0660, root's, or a group's), HTTP/1.1 with
//! upgrades, versioned paths (`/v1.47/containers/json`) served as the
//! unversioned ones.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::routing::{delete, get, head, post};
use axum::Router;
use berth_engine::{Engine, EngineConfig};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use crate::{archive, build, containers, events, exec, image_io, images, networks, system};

/// What `berth daemon` is told.
pub struct DaemonOptions {
    pub engine: EngineConfig,
    /// The unix socket to serve on.
    pub socket: PathBuf,
    /// A group that may use the socket too (docker's `--group`).
    pub group: Option<u32>,
}

/// What every handler shares.
pub struct App {
    pub engine: Engine,
    /// Attached clients of containers not started yet: the monitor's end of
    /// their socket pair, handed to the monitor at start.
    pub pending_attach: Mutex<HashMap<String, std::os::unix::net::UnixStream>>,
    /// Exit codes attached sessions saw, for waiters of containers removed
    /// as they exited (`--rm`).
    pub exit_codes: Mutex<HashMap<String, i32>>,
    /// Each running exec session's socket to its monitor, for resizes.
    pub exec_sessions: Mutex<HashMap<String, std::os::unix::net::UnixStream>>,
}

pub type State = Arc<App>;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("open the engine: {0}")]
    Engine(#[from] berth_engine::Error),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn router(state: State) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/auth", post(images::auth))
        .route("/events", get(events::events))
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(containers::stats))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::stat).put(archive::put),
        )
        .route("/containers/{id}", delete(containers::remove))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/build", post(build::build))
        .route("/images/json", get(images::list))
        .route("/images/get", get(image_io::save_many))
        .route("/images/load", post(image_io::load))
        .route("/images/prune", post(image_io::prune_images))
        .route("/commit", post(image_io::commit))
        .route("/containers/prune", post(image_io::prune_containers))
        .route("/volumes/prune", post(image_io::prune_volumes))
        .route("/networks/prune", post(image_io::prune_networks))
        .route("/system/df", get(image_io::df))
        .route("/images/create", post(images::create))
        .route(
            "/images/{*name}",
            get(images::inspect_or_history)
                .post(images::tag_or_push)
                .delete(images::remove),
        )
        .route("/networks", get(networks::list_networks))
        .route("/networks/create", post(networks::create_network))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route(
            "/networks/{id}",
            get(networks::inspect_network).delete(networks::remove_network),
        )
        .route("/volumes", get(networks::list_volumes))
        .route("/volumes/create", post(networks::create_volume))
        .route(
            "/volumes/{name}",
            get(networks::inspect_volume).delete(networks::remove_volume),
        )
        .route("/_berth/alive", head(system::ping))
        .with_state(state)
}

/// `/v1.47/containers/json` -> `/containers/json`.
fn strip_version(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v")?;
    let slash = rest.find('/')?;
    let version = &rest[..slash];
    let numeric = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    numeric.then(|| &rest[slash..])
}

/// Serves until SIGTERM or SIGINT; containers go on running after it.
pub fn serve(opts: DaemonOptions) -> Result<(), ServeError> {
    let engine = Engine::open(opts.engine)?;
    let state = Arc::new(App {
        engine,
        pending_attach: Mutex::new(HashMap::new()),
        exit_codes: Mutex::new(HashMap::new()),
        exec_sessions: Mutex::new(HashMap::new()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            what: "start the server's runtime",
            path: opts.socket.clone(),
            source,
        })?;
    let served = runtime.block_on(run(state, opts.socket, opts.group));
    // Requests still in flight (a followed log, a waiter) end with the
    // daemon; the containers they watch go on under their monitors.
    runtime.shutdown_background();
    served
}

async fn run(state: State, socket: PathBuf, group: Option<u32>) -> Result<(), ServeError> {
    let io = |what: &'static str| {
        let path = socket.clone();
        move |source| ServeError::Io { what, path, source }
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    }
    // A socket left by a daemon that is gone.
    match std::fs::remove_file(&socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove")(e)),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(&socket).map_err(io("listen on"))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
        .map_err(io("set the mode of"))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(&socket, Some(0), Some(gid)).map_err(io("chown"))?;
    }
    let app = router(state);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("handle signals for"))?;
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Ok((stream, _)) = conn else { continue };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                tracing::debug!("{} {}", req.method(), req.uri());
                if let Some(rest) = strip_version(req.uri().path()) {
                    let query = req
                        .uri()
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    if let Ok(uri) = format!("{rest}{query}").parse() {
                        *req.uri_mut() = uri;
                    }
                }
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_paths() {
        assert_eq!(
            strip_version("/v1.47/containers/json"),
            Some("/containers/json")
        );
        assert_eq!(strip_version("/v1.24/_ping"), Some("/_ping"));
        assert_eq!(strip_version("/volumes"), None);
        assert_eq!(strip_version("/vx/ping"), None);
    }
}
