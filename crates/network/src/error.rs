use nix::errno::Errno;

/// What kind of failure an error is (containerd's errdefs), for the engine
/// to map to its own kinds, and so to exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    InvalidArgument,
    Conflict,
    /// The host cannot do it now or at all (a missing tool, no memory).
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink request that failed; `errno` is the kernel's answer, when
    /// the kernel gave one.
    #[error("{op}: {message}")]
    Netlink {
        op: String,
        errno: Option<Errno>,
        message: String,
    },
    /// An nft script that failed; `errno` is the kernel's answer when nft
    /// reported one ("Could not process rule: File exists" is EEXIST).
    #[error("nft: {message}")]
    Nft {
        errno: Option<Errno>,
        message: String,
    },
    #[error("the nft command is missing (apt-get install nftables)")]
    NftMissing,
    #[error("{0}")]
    Invalid(String),
    /// A link that must exist does not.
    #[error("{what} {name} does not exist")]
    LinkNotFound { what: &'static str, name: String },
    /// An address the kernel reported that is not a valid IPv4 network.
    #[error("{link} has address {address}: {reason}")]
    BadAddress {
        link: String,
        address: String,
        reason: String,
    },
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
    /// The failures of an operation that went on past each (a teardown).
    #[error("{}", show_errors(.0))]
    Multiple(Vec<Error>),
}

fn show_addresses(found: &[ipnet::Ipv4Net]) -> String {
    if found.is_empty() {
        return "no IPv4 address".into();
    }
    let list: Vec<String> = found.iter().map(|a| a.to_string()).collect();
    format!("address {}", list.join(", "))
}

fn show_errors(errors: &[Error]) -> String {
    let list: Vec<String> = errors.iter().map(Error::to_string).collect();
    list.join("; ")
}

/// The kind of a failure the kernel reported as `errno`.
fn errno_kind(errno: Errno) -> ErrorKind {
    use Errno::*;
    match errno {
        EEXIST => ErrorKind::AlreadyExists,
        ENOENT | ENODEV | ESRCH | ENXIO => ErrorKind::NotFound,
        EINVAL | ERANGE | EAFNOSUPPORT | EOPNOTSUPP => ErrorKind::InvalidArgument,
        EBUSY | EADDRINUSE => ErrorKind::Conflict,
        EAGAIN | ENOBUFS | ENOMEM | ENOSPC | ETIMEDOUT | EINTR => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Netlink { errno, .. } | Error::Nft { errno, .. } => {
                errno.map_or(ErrorKind::Internal, errno_kind)
            }
            Error::NftMissing => ErrorKind::Unavailable,
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::LinkNotFound { .. } => ErrorKind::NotFound,
            Error::BadAddress { .. } => ErrorKind::Internal,
            Error::BridgeAddress { .. } => ErrorKind::Conflict,
            Error::Io { source, .. } => source
                .raw_os_error()
                .map_or(ErrorKind::Internal, |e| errno_kind(Errno::from_raw(e))),
            // One kind if all agree, else nothing more precise than Internal.
            Error::Multiple(errors) => match errors.split_first() {
                Some((first, rest)) if rest.iter().all(|e| e.kind() == first.kind()) => {
                    first.kind()
                }
                _ => ErrorKind::Internal,
            },
        }
    }

    /// The kernel's errno for this failure, where it gave one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Netlink { errno, .. } | Error::Nft { errno, .. } => *errno,
            Error::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }

    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
        let op = op.into();
        move |e| {
            let errno = match &e {
                // The kernel's answer: a negative errno.
                rtnetlink::Error::NetlinkError(m) => Some(Errno::from_raw(-m.raw_code())),
                _ => None,
            };
            Error::Netlink {
                op,
                errno,
                message: e.to_string(),
            }
        }
    }

    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let op = op.into();
        move |source| Error::Io { op, source }
    }

    /// All of `errors`, or `Ok` if there are none.
    pub fn all(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Multiple(errors)),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_answers_have_kinds() {
        let nft = |errno| Error::Nft {
            errno: Some(errno),
            message: String::new(),
        };
        assert_eq!(nft(Errno::EEXIST).kind(), ErrorKind::AlreadyExists);
        assert_eq!(nft(Errno::ENOENT).kind(), ErrorKind::NotFound);
        assert_eq!(nft(Errno::EBUSY).kind(), ErrorKind::Conflict);
        assert_eq!(nft(Errno::ENOBUFS).kind(), ErrorKind::Unavailable);
        assert_eq!(nft(Errno::EPERM).kind(), ErrorKind::Internal);
        let syntax = Error::Nft {
            errno: None,
            message: "Error: syntax error".into(),
        };
        assert_eq!(syntax.kind(), ErrorKind::Internal);
        let io = Error::io("open /proc/1/ns/net")(std::io::Error::from_raw_os_error(libc_enoent()));
        assert_eq!(io.kind(), ErrorKind::NotFound);
        assert_eq!(io.errno(), Some(Errno::ENOENT));
    }

    fn libc_enoent() -> i32 {
        Errno::ENOENT as i32
    }

    #[test]
    fn several_failures_keep_a_shared_kind() {
        let missing = || Error::LinkNotFound {
            what: "link",
            name: "x".into(),
        };
        let both = Error::Multiple(vec![missing(), missing()]);
        assert_eq!(both.kind(), ErrorKind::NotFound);
        assert_eq!(
            both.to_string(),
            "link x does not exist; link x does not exist"
        );
        let mixed = Error::Multiple(vec![missing(), Error::NftMissing]);
        assert_eq!(mixed.kind(), ErrorKind::Internal);
        assert!(Error::all(Vec::new()).is_ok());
        assert!(matches!(
            Error::all(vec![missing()]),
            Err(Error::LinkNotFound { .. })
        ));
    }
}
