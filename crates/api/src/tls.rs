//! tcp:// is served only with TLS that verifies the client (docker's
//! `--tlsverify`): the daemon's certificate and key, and the CA whose
//! certificates a client must present. Anyone who reaches the API is root
//! on the host, so a client without a certificate from that CA never gets
//! past the handshake.
//!
//! rustls through tokio-rustls with the ring provider, as the registry's
//! server (already in the build, no aws-lc).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// docker's `--tlscacert`, `--tlscert` and `--tlskey`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signs the clients' certificates.
    pub ca: PathBuf,
    /// The daemon's certificate chain.
    pub cert: PathBuf,
    /// The daemon's private key.
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {path}: {reason}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the CA certificates in {path}: {source}")]
    Ca {
        path: PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
    #[error("the certificate {cert} with the key {key}: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    Ok(certs)
}

/// An acceptor that asks every client for a certificate and accepts only
/// those the CA signed.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certs("the CA certificate", &files.ca)? {
        roots.add(ca).map_err(|e| TlsError::Pem {
            what: "the CA certificate",
            path: files.ca.clone(),
            reason: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|source| TlsError::Ca {
            path: files.ca.clone(),
            source,
        })?;
    let chain = certs("the certificate", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Pem {
        what: "the key",
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let config_err = |source| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(config_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
