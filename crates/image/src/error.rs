use std::path::PathBuf;

/// What kind of failure an error is, for callers that map errors to exit codes
/// or HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    AlreadyExists,
    Conflict,
    /// The host cannot do it now or at all (a missing tool, no memory).
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image \"{0}\" not found")]
    ImageNotFound(String),
    #[error("invalid reference format: {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("blob {expected} failed verification: content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("corrupt metadata in {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("reading archive: {0}")]
    Archive(#[source] std::io::Error),
    #[error("{0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ImageNotFound(_) => ErrorKind::NotFound,
            Error::InvalidReference { .. } | Error::InvalidDigest(_) | Error::Archive(_) => {
                ErrorKind::InvalidArgument
            }
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
