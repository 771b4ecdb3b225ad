#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: {message}")]
    Netlink { op: String, message: String },
    #[error("nft: {0}")]
    Nft(String),
    #[error("{0}")]
    Invalid(String),
    /// An existing bridge lacks the address a network needs on it.
    #[error("bridge {bridge} has {} instead of {wanted}", show_addresses(.found))]
    BridgeAddress {
        bridge: String,
        /// The bridge's IPv4 addresses (none, or others).
        found: Vec<ipnet::Ipv4Net>,
        /// The network's gateway with its prefix length.
        wanted: ipnet::Ipv4Net,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

fn show_addresses(found: &[ipnet::Ipv4Net]) -> String {
    if found.is_empty() {
        return "no IPv4 address".into();
    }
    let list: Vec<String> = found.iter().map(|a| a.to_string()).collect();
    format!("address {}", list.join(", "))
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
