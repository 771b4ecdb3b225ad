//! `berth registry serve`: the OCI distribution API (v2) over a directory.
//!
//! The request path: [`route`] parses the path into a typed route, [`gate`]
//! authenticates it, [`service`] dispatches to one handler file per resource
//! ([`blobs`], [`blob_uploads`], [`manifests`], [`listing`], [`referrers`]),
//! which work on [`storage`] (the on-disk layout) and [`uploads`].

mod auth;
mod blob_uploads;
mod blobs;
mod error;
mod gate;
mod gc;
mod http;
mod listing;
mod manifests;
mod names;
mod pagination;
mod referrers;
mod route;
mod service;
mod storage;
mod tls;
mod uploads;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use gc::{garbage_collect, GcOptions, GcReport};
pub use storage::StorageError;

/// What `berth registry serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// Where blobs, manifests and uploads live.
    pub root: PathBuf,
    /// An htpasswd file (bcrypt entries): basic auth for every request.
    pub htpasswd: Option<PathBuf>,
    /// With `htpasswd`: hand out bearer tokens at `/token` (Docker Hub's
    /// flow) instead of taking basic credentials on every request.
    pub token_auth: bool,
    /// PEM certificate chain and private key: serve https.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// An upload nobody has written to for this long is removed.
    pub upload_expiry: Duration,
}

/// The default of [`ServerConfig::upload_expiry`]: a day.
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("registry root {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("read htpasswd file {path}: {source}")]
    HtpasswdRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("htpasswd file {path}: {source}")]
    Htpasswd {
        path: PathBuf,
        #[source]
        source: auth::HtpasswdError,
    },
    #[error("htpasswd file {0} has no users")]
    HtpasswdEmpty(PathBuf),
    #[error("--token-auth needs --htpasswd (tokens are issued for its users)")]
    TokenAuthWithoutUsers,
    #[error("TLS certificate {path}: {reason}")]
    TlsCert { path: PathBuf, reason: String },
    #[error("TLS key {path}: {reason}")]
    TlsKey { path: PathBuf, reason: String },
    #[error("TLS certificate {cert} with key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("no randomness for the token signing key")]
    Random,
    #[error("start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

fn gate(config: &ServerConfig) -> Result<Option<gate::Gate>, ServerError> {
    let Some(path) = &config.htpasswd else {
        return if config.token_auth {
            Err(ServerError::TokenAuthWithoutUsers)
        } else {
            Ok(None)
        };
    };
    let text = std::fs::read_to_string(path).map_err(|source| ServerError::HtpasswdRead {
        path: path.clone(),
        source,
    })?;
    let users = auth::Htpasswd::parse(&text).map_err(|source| ServerError::Htpasswd {
        path: path.clone(),
        source,
    })?;
    if users.is_empty() {
        return Err(ServerError::HtpasswdEmpty(path.clone()));
    }
    let mode = if config.token_auth {
        gate::Mode::Token(auth::TokenKey::random().map_err(|_| ServerError::Random)?)
    } else {
        gate::Mode::Basic
    };
    Ok(Some(gate::Gate::new(users, mode)))
}

/// Serves until the process gets SIGINT or SIGTERM.
pub fn serve(config: ServerConfig) -> Result<(), ServerError> {
    let gate = gate(&config)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let storage = storage::Storage::open(&config.root).map_err(|source| ServerError::Root {
        path: config.root.clone(),
        source,
    })?;
    let listener = std::net::TcpListener::bind(config.addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-registry")
        .build()
        .map_err(ServerError::Runtime)?;
    let app = Arc::new(service::App::new(storage, gate));
    runtime.spawn(expire_uploads(Arc::clone(&app), config.upload_expiry));
    let result = runtime.block_on(accept_loop(listener, app, tls, &config));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Removes abandoned uploads while the server runs: once at the start
/// (leftovers of an earlier run), then every half expiry (at most hourly).
async fn expire_uploads(app: Arc<service::App>, expiry: Duration) {
    let every = (expiry / 2).clamp(Duration::from_millis(200), Duration::from_secs(3600));
    loop {
        match app.uploads.expire(expiry).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("registry: {n} abandoned upload(s) removed"),
            Err(e) => tracing::warn!("registry: expiring uploads: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    app: Arc<service::App>,
    tls: Option<TlsAcceptor>,
    config: &ServerConfig,
) -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = TcpListener::from_std(listener).map_err(|source| ServerError::Bind {
        addr: config.addr,
        source,
    })?;
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        "registry listening on {scheme}://{} (root {})",
        config.addr,
        config.root.display()
    );
    loop {
        let (stream, peer) = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!("registry: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = Arc::clone(&app);
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => serve_connection(stream, app, scheme).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => serve_connection(s, app, scheme).await,
                        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                        Err(_) => Err("TLS handshake timed out".to_string()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!("registry: connection from {peer}: {e}");
            }
        });
    }
    tracing::info!("registry shutting down");
    Ok(())
}

async fn serve_connection<S>(
    stream: S,
    app: Arc<service::App>,
    scheme: &'static str,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(app.handle(req, scheme).await) }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60))
        .serve_connection(TokioIo::new(stream), svc)
        .await
        .map_err(|e| e.to_string())
}
