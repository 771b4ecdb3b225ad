use std::path::PathBuf;

pub use berth_image::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    #[error("get {0}: no such volume")]
    VolumeNotFound(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("No such exec instance: {0}")]
    ExecNotFound(String),
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    /// A published port another container or program holds.
    #[error("Bind for {ports} failed: port is already allocated")]
    PortAllocated { ports: String },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A start that failed in the container's monitor, with the exit code
    /// docker gives it.
    #[error("{message}")]
    StartFailed { message: String, code: i32 },
    #[error("corrupt container state in {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// A record written by a newer Berth, in a schema this build does not know.
    #[error("{path} has schema version {found}, but this build of Berth knows up to version {supported}: use a newer Berth for this state root")]
    IncompatibleSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(transparent)]
    Registry(#[from] berth_registry::client::ClientError),
}

/// The network crate's kinds are containerd's, like the engine's.
fn network_kind(kind: berth_network::ErrorKind) -> ErrorKind {
    use berth_network::ErrorKind as N;
    match kind {
        N::NotFound => ErrorKind::NotFound,
        N::AlreadyExists => ErrorKind::AlreadyExists,
        N::InvalidArgument => ErrorKind::InvalidArgument,
        N::Conflict => ErrorKind::Conflict,
        N::Unavailable => ErrorKind::Unavailable,
        N::Internal => ErrorKind::Internal,
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Image(e) => e.kind(),
            Error::Runtime(
                berth_runtime::Error::InvalidSpec(_) | berth_runtime::Error::Refused(_),
            ) => ErrorKind::InvalidArgument,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::ContainerNotFound(_)
            | Error::VolumeNotFound(_)
            | Error::NetworkNotFound(_)
            | Error::ExecNotFound(_) => ErrorKind::NotFound,
            Error::NameInUse { .. } | Error::Conflict(_) | Error::PortAllocated { .. } => {
                ErrorKind::Conflict
            }
            Error::Network(e) => network_kind(e.kind()),
            Error::Registry(berth_registry::client::ClientError::NotFound { .. }) => {
                ErrorKind::NotFound
            }
            Error::Registry(berth_registry::client::ClientError::Image(e)) => e.kind(),
            // State this build cannot read: nothing the caller can change.
            Error::Corrupt { .. } | Error::IncompatibleSchema { .. } => ErrorKind::Internal,
            _ => ErrorKind::Internal,
        }
    }

    /// The start failure the container's init reported, if that is what this is.
    pub fn start_failure(&self) -> Option<&berth_runtime::StartFailure> {
        match self {
            Error::Runtime(berth_runtime::Error::Start(f)) => Some(f),
            _ => None,
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
