//! The registry client: pull, push and login over the OCI distribution spec
//! (on `oci-client`), with credentials kept the way docker keeps them.
//!
//! Every call builds a client for one registry, runs on its own tokio
//! runtime and drops it before returning, so the calling process is
//! single-threaded again afterwards (the runtime never runs in a threaded
//! process).

mod auth;
mod catalog;
mod error;
mod fetch;
mod login;
mod progress;
mod pull;
mod push;

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use berth_image::Reference;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

pub use auth::{AuthConfig, Credentials};
pub use catalog::catalog;
pub use error::ClientError;
pub use fetch::fetch;
pub use login::{login, logout, verify};
pub use progress::{Progress, Quiet, Status};
pub use pull::{list_tags, pull, PullPolicy, Pulled};
pub use push::{push, Pushed};

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// docker's client config directory (`~/.docker`): `config.json` holds
    /// credentials, `certs.d/<registry>/*.crt` extra CA certificates.
    pub config_dir: PathBuf,
    /// Registries spoken to over plain http (`--insecure-registry`);
    /// localhost and loopback addresses always are.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded or uploaded at once.
    pub max_concurrent: usize,
    /// Credentials given with the request (the Docker API's
    /// `X-Registry-Auth`): used instead of `config.json`'s, never stored.
    pub credentials: Option<Credentials>,
}

impl Options {
    pub fn new(config_dir: PathBuf) -> Options {
        Options {
            config_dir,
            insecure_registries: Vec::new(),
            max_concurrent: 3,
            credentials: None,
        }
    }

    /// Whether `registry` (`host[:port]`) is spoken to over http.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let host = match registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => registry.split(':').next().unwrap_or(registry),
        };
        host == "localhost"
            || host == "::1"
            || host.starts_with("127.")
            || self
                .insecure_registries
                .iter()
                .any(|r| r == registry || r == host)
    }
}

/// The registry's host as docker names it in `config.json` and messages:
/// Docker Hub is `docker.io`.
pub(crate) fn registry_of(r: &Reference) -> &str {
    r.domain()
}

/// The same reference as oci-client spells it.
pub(crate) fn oci_ref(r: &Reference) -> oci_client::Reference {
    let repo = r.path().to_string();
    let domain = r.domain().to_string();
    match (r.digest(), r.tag()) {
        (Some(d), _) => oci_client::Reference::with_digest(domain, repo, d.to_string()),
        (None, t) => {
            oci_client::Reference::with_tag(domain, repo, t.unwrap_or("latest").to_string())
        }
    }
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another caller may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// CA certificates docker would trust for `registry`.
fn extra_certs(opts: &Options, registry: &str) -> Vec<Certificate> {
    let mut certs = Vec::new();
    for base in [
        opts.config_dir.join("certs.d"),
        PathBuf::from("/etc/docker/certs.d"),
    ] {
        let Ok(rd) = std::fs::read_dir(base.join(registry)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "crt") {
                if let Ok(data) = std::fs::read(&p) {
                    certs.push(Certificate {
                        encoding: CertificateEncoding::Pem,
                        data,
                    });
                }
            }
        }
    }
    certs
}

/// A plain HTTP client for `registry` (login, the https probe) trusting
/// what [`extra_certs`] finds for it.
pub(crate) fn plain_client(
    opts: &Options,
    registry: &str,
    connect: Duration,
    total: Duration,
) -> Result<reqwest::Client, ClientError> {
    let setup = |message: String| ClientError::Setup {
        registry: registry.to_string(),
        message,
    };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total);
    for c in extra_certs(opts, registry) {
        let cert = reqwest::Certificate::from_pem(&c.data)
            .map_err(|e| setup(format!("CA certificate: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| setup(e.to_string()))
}

/// Whether `registry` answers https. Registries reached over http
/// (localhost, `--insecure-registry`) are tried with https first, as docker
/// does: a loopback registry with TLS gets TLS. A registry that speaks TLS
/// with a certificate this host does not trust is an error, not a reason to
/// fall back to http.
/// The scheme to reach `registry` with: https, or http for a registry
/// allowed to be insecure that does not speak https (docker's rule).
pub(crate) async fn scheme_for(
    opts: &Options,
    registry: &str,
) -> Result<&'static str, ClientError> {
    Ok(
        if opts.is_insecure(registry) && !speaks_https(opts, registry).await? {
            "http"
        } else {
            "https"
        },
    )
}

/// A client for `registry`'s own API calls (login, catalog), with the
/// scheme to reach it by.
pub(crate) async fn api_client(
    opts: &Options,
    registry: &str,
) -> Result<(reqwest::Client, &'static str), ClientError> {
    let client = plain_client(
        opts,
        registry,
        Duration::from_secs(15),
        Duration::from_secs(60),
    )?;
    Ok((client, scheme_for(opts, registry).await?))
}

async fn speaks_https(opts: &Options, registry: &str) -> Result<bool, ClientError> {
    let client = plain_client(
        opts,
        registry,
        Duration::from_secs(2),
        Duration::from_secs(5),
    )?;
    match client.get(format!("https://{registry}/v2/")).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let chain = error::chain(&e);
            if chain.contains("certificate") {
                Err(ClientError::Untrusted {
                    registry: registry.to_string(),
                    message: chain,
                    ca_path: opts
                        .config_dir
                        .join("certs.d")
                        .join(registry)
                        .join("ca.crt"),
                })
            } else {
                Ok(false)
            }
        }
    }
}

/// A client for the registry of `reference`, with the credentials stored for it.
pub(crate) async fn connect(
    opts: &Options,
    reference: &Reference,
) -> Result<(oci_client::Client, RegistryAuth), ClientError> {
    let (client, _, auth) = connect_clients(opts, reference, false).await?;
    Ok((client, auth))
}

/// [`connect`], with a second client for monolithic uploads (one PUT per
/// blob) when `monolithic` is asked for.
pub(crate) async fn connect_clients(
    opts: &Options,
    reference: &Reference,
    monolithic: bool,
) -> Result<(oci_client::Client, Option<oci_client::Client>, RegistryAuth), ClientError> {
    install_crypto();
    let registry = registry_of(reference);
    let protocol = match scheme_for(opts, registry).await? {
        "http" => ClientProtocol::Http,
        _ => ClientProtocol::Https,
    };
    let make = |use_monolithic_push: bool| {
        let config = ClientConfig {
            protocol: protocol.clone(),
            extra_root_certificates: extra_certs(opts, registry),
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(120)),
            max_concurrent_download: opts.max_concurrent,
            max_concurrent_upload: opts.max_concurrent,
            use_monolithic_push,
            ..Default::default()
        };
        oci_client::Client::try_from(config).map_err(|e| ClientError::Setup {
            registry: registry.to_string(),
            message: e.to_string(),
        })
    };
    let mono = if monolithic { Some(make(true)?) } else { None };
    let client = make(false)?;
    let stored = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => AuthConfig::load(&opts.config_dir)?.get(registry),
    };
    let auth = match stored {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    };
    Ok((client, mono, auth))
}

/// One operation's client for one repository.
pub(crate) struct Session<'a> {
    pub(crate) client: oci_client::Client,
    pub(crate) oref: oci_client::Reference,
    pub(crate) registry: &'a str,
    /// The reference as messages name it.
    pub(crate) name: String,
}

impl<'a> Session<'a> {
    pub(crate) fn new(client: oci_client::Client, reference: &'a Reference) -> Session<'a> {
        Session {
            client,
            oref: oci_ref(reference),
            registry: registry_of(reference),
            name: reference.familiar(),
        }
    }

    pub(crate) fn err(&self, e: oci_client::errors::OciDistributionError) -> ClientError {
        ClientError::from_oci(self.registry, &self.name, e)
    }
}

/// A runtime for one operation; dropped (its threads joined) when it ends.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)
}
