//! The listeners: unix sockets (0660, root's, or a group's) and tcp://
//! addresses with TLS that verifies clients, HTTP/1.1 with upgrades, versioned paths (`/v1.47/containers/json`) served as the
//! unversioned ones.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{delete, get, head, post};
use axum::Router;
use berth_engine::{Engine, EngineConfig};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::tls::TlsFiles;

use crate::{archive, build, containers, events, exec, image_io, images, networks, system};

/// What `berth daemon` is told.
pub struct DaemonOptions {
    pub engine: EngineConfig,
    /// Where to serve (docker's repeatable `-H`).
    pub listen: Vec<Listen>,
    /// A group that may use the unix sockets too (docker's `--group`).
    pub group: Option<u32>,
    /// TLS that verifies clients, which every tcp:// address needs.
    pub tls: Option<TlsFiles>,
}

/// One `-H` address.
#[derive(Debug, Clone)]
pub enum Listen {
    /// `unix:///path`: 0660, root's (and `--group`'s).
    Unix(PathBuf),
    /// `tcp://host:port`: only with [`DaemonOptions::tls`].
    Tcp(std::net::SocketAddr),
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
    #[error("tcp://{0} needs TLS with client certificates (--tlsverify --tlscacert --tlscert --tlskey): anyone who reaches the API is root on this host")]
    TcpWithoutTls(std::net::SocketAddr),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("listen on tcp://{addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
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
    // Refused before anything is opened: a tcp:// address without TLS that
    // verifies clients would give root to whoever reaches the port.
    let tls = match &opts.tls {
        Some(files) => Some(crate::tls::acceptor(files)?),
        None => None,
    };
    for l in &opts.listen {
        if let (Listen::Tcp(addr), None) = (l, &tls) {
            return Err(ServeError::TcpWithoutTls(*addr));
        }
    }
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
            path: PathBuf::new(),
            source,
        })?;
    let served = runtime.block_on(run(state, opts.listen, opts.group, tls));
    // Requests still in flight (a followed log, a waiter) end with the
    // daemon; the containers they watch go on under their monitors.
    runtime.shutdown_background();
    served
}

/// A unix socket made 0660, root's (and `group`'s).
fn bind_unix(socket: &std::path::Path, group: Option<u32>) -> Result<UnixListener, ServeError> {
    let io = |what: &'static str| {
        let path = socket.to_path_buf();
        move |source| ServeError::Io { what, path, source }
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io("create the directory of"))?;
    }
    // A socket left by a daemon that is gone.
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove")(e)),
        _ => {}
    }
    // Made with no permission for anyone else from the start (umask), then
    // opened to the group: never a moment when others may connect.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(socket);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io("listen on"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(io("set the mode of"))?;
    std::os::unix::fs::chown(socket, Some(0), Some(group.unwrap_or(0))).map_err(io("chown"))?;
    Ok(listener)
}

async fn run(
    state: State,
    listen: Vec<Listen>,
    group: Option<u32>,
    tls: Option<TlsAcceptor>,
) -> Result<(), ServeError> {
    // Every address is bound before any request is served (the umask that
    // bind_unix sets is the whole process's).
    enum Bound {
        Unix(UnixListener),
        Tcp(TcpListener, TlsAcceptor),
    }
    let mut sockets = Vec::new();
    let mut bound = Vec::new();
    for l in listen {
        match l {
            Listen::Unix(path) => {
                bound.push(Bound::Unix(bind_unix(&path, group)?));
                sockets.push(path);
            }
            Listen::Tcp(addr) => {
                let Some(tls) = tls.clone() else {
                    return Err(ServeError::TcpWithoutTls(addr));
                };
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?;
                bound.push(Bound::Tcp(listener, tls));
            }
        }
    }
    let app = router(state);
    let mut accepting = tokio::task::JoinSet::new();
    for b in bound {
        let app = app.clone();
        match b {
            Bound::Unix(listener) => {
                accepting.spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => {
                                let fd = stream.as_raw_fd();
                                tokio::spawn(serve_connection(stream, Some(fd), app.clone()));
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                });
            }
            Bound::Tcp(listener, tls) => {
                accepting.spawn(async move {
                    loop {
                        let Ok((stream, peer)) = listener.accept().await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        let (tls, app) = (tls.clone(), app.clone());
                        tokio::spawn(async move {
                            // A client without a certificate the CA signed
                            // ends here, before any request is read.
                            match tokio::time::timeout(Duration::from_secs(10), tls.accept(stream))
                                .await
                            {
                                Ok(Ok(s)) => {
                                    let fd = s.get_ref().0.as_raw_fd();
                                    serve_connection(s, Some(fd), app).await
                                }
                                Ok(Err(e)) => tracing::info!("tcp client {peer} refused: {e}"),
                                Err(_) => {
                                    tracing::info!("tcp client {peer}: TLS handshake timed out")
                                }
                            }
                        });
                    }
                });
            }
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| ServeError::Io {
            what: "handle signals for",
            path: PathBuf::new(),
            source,
        })?;
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    accepting.abort_all();
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}

/// HTTP/1.1 with upgrades on one connection, versioned paths served as the
/// unversioned ones.
async fn serve_connection<S>(stream: S, fd: Option<std::os::fd::RawFd>, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        tracing::debug!("{} {}", req.method(), req.uri());
        req.extensions_mut().insert(crate::streams::ConnFd(fd));
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
