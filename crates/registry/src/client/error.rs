//! What can go wrong talking to a registry, by kind.

use oci_client::errors::OciDistributionError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("unauthorized: authentication required for {registry}: {message}")]
    Unauthorized { registry: String, message: String },
    #[error("{reference}: not found: {message}")]
    NotFound { reference: String, message: String },
    #[error("registry {registry} answered with an error: {message}")]
    Registry { registry: String, message: String },
    /// `search` of a registry that lists no catalog.
    #[error("registry {registry} has no catalog to search: {message}")]
    NoCatalog { registry: String, message: String },
    #[error("{what} from {registry} failed verification: expected {expected}, got {actual}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{reference}: unusable manifest: {message}")]
    BadManifest { reference: String, message: String },
    #[error("no matching manifest for {platform} in the manifest list entries of {reference}")]
    NoPlatform { reference: String, platform: String },
    #[error("registry {registry} uses a TLS certificate this host does not trust ({message}); put its CA certificate in {}", ca_path.display())]
    Untrusted {
        registry: String,
        message: String,
        ca_path: std::path::PathBuf,
    },
    #[error("setting up a client for {registry}: {message}")]
    Setup { registry: String, message: String },
    #[error("starting the client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("credentials in {path}: {message}")]
    Credentials {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("fetch {url}: {message}")]
    Fetch { url: String, message: String },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
}

impl ClientError {
    /// Classifies an oci-client error for a request to `registry` about `reference`.
    pub(crate) fn from_oci(
        registry: &str,
        reference: &str,
        e: OciDistributionError,
    ) -> ClientError {
        use OciDistributionError as E;
        let registry = registry.to_string();
        match e {
            E::RequestError(r) if r.is_connect() || r.is_timeout() => ClientError::Unreachable {
                registry,
                message: chain(&r),
            },
            E::RequestError(r) if r.status().map(|s| s.as_u16()) == Some(401) => {
                ClientError::Unauthorized {
                    registry,
                    message: chain(&r),
                }
            }
            E::RequestError(r) if r.status().map(|s| s.as_u16()) == Some(404) => {
                ClientError::NotFound {
                    reference: reference.to_string(),
                    message: chain(&r),
                }
            }
            E::RequestError(r) => ClientError::Unreachable {
                registry,
                message: chain(&r),
            },
            E::AuthenticationFailure(m) => ClientError::Unauthorized {
                registry,
                message: m,
            },
            E::UnauthorizedError { url } => ClientError::Unauthorized {
                registry,
                message: format!("{url} needs credentials (berth login {})", host_of(&url)),
            },
            E::ImageManifestNotFoundError(m) => ClientError::NotFound {
                reference: reference.to_string(),
                message: m,
            },
            E::RegistryError { envelope, url } => {
                let message = envelope
                    .errors
                    .iter()
                    .map(|x| format!("{:?}: {}", x.code, x.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let unknown = envelope.errors.iter().any(|x| {
                    let c = format!("{:?}", x.code);
                    c.contains("Unknown") || c.contains("NameUnknown")
                });
                if unknown {
                    ClientError::NotFound {
                        reference: reference.to_string(),
                        message,
                    }
                } else {
                    ClientError::Registry {
                        registry,
                        message: format!("{url}: {message}"),
                    }
                }
            }
            E::ServerError {
                code: 404,
                url,
                message,
            } => ClientError::NotFound {
                reference: reference.to_string(),
                message: format!("{url}: {message}"),
            },
            E::ServerError {
                code: 401,
                url,
                message,
            } => ClientError::Unauthorized {
                registry,
                message: format!("{url}: {message}"),
            },
            E::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => ClientError::DigestMismatch {
                registry,
                what: reference.to_string(),
                expected,
                actual,
            },
            other => ClientError::Registry {
                registry,
                message: other.to_string(),
            },
        }
    }
}

/// An error with its causes, as one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn host_of(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}
