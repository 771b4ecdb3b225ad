#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {message}")]
    Netlink { op: String, message: String },
    #[error("nft: {0}")]
    Nft(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
        let op = op.into();
        move |e| Error::Netlink {
            op,
            message: e.to_string(),
        }
    }

    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let op = op.into();
        move |source| Error::Io { op, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
