//! `berth registry serve`: the OCI distribution API (v2) over a directory.

use std::net::SocketAddr;
use std::path::PathBuf;

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
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Todo(String),
}

/// Serves until the process is interrupted.
pub fn serve(config: ServerConfig) -> Result<(), ServerError> {
    Err(ServerError::Todo(format!("not implemented: {config:?}")))
}
