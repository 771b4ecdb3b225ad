use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why the container's process could not be started, as reported by the
/// container's init process before it executed the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartFailureKind {
    /// Setting up the container failed (mounts, namespaces, privileges...).
    Setup,
    /// The program does not exist (docker exits 127).
    NotFound,
    /// The program exists but cannot be executed (docker exits 126).
    NotExecutable,
}

/// A failure reported by the container's init process.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StartFailure {
    pub kind: StartFailureKind,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid runtime spec: {0}")]
    InvalidSpec(String),
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path}: {message}")]
    Cgroup { path: PathBuf, message: String },
    #[error(transparent)]
    Start(#[from] StartFailure),
    #[error("{0}")]
    Prestart(String),
    /// The kernel refused a setting this host does not permit.
    #[error("{0}")]
    Refused(String),
    #[error("{message}")]
    Helper { target: PathBuf, message: String },
}

impl Error {
    pub(crate) fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> Error {
        move |source| Error::Sys { op, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
