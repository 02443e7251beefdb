//! TLS for `rtmps://` (RTMP over TLS, as CDN ingests such as YouTube and Facebook run it):
//! rustls with the `ring` provider, SNI and name verification for the URL's host, trust anchors
//! from the system store or from a configured CA file (PEM).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("CA file {0} holds no certificate")]
    NoCertificates(String),
    #[error("no usable system root certificates")]
    NoSystemRoots,
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS setup failed: {0}")]
    Config(String),
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

/// The system's roots, loaded once per process (reading the store takes tens of milliseconds).
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    if let Some(roots) = ROOTS.get() {
        return Ok(roots.clone());
    }
    let mut store = RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(ROOTS.get_or_init(|| Arc::new(store)).clone())
}

/// Roots from a PEM file, read at every connect so a replaced file applies on reconnect.
fn file_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| TlsError::CaFile {
        path: shown.clone(),
        reason: e.kind().to_string(),
    })?;
    let mut store = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
        let cert = cert.map_err(|e| TlsError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        store.add(cert).map_err(|e| TlsError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    }
    if store.is_empty() {
        return Err(TlsError::NoCertificates(shown));
    }
    Ok(Arc::new(store))
}

/// Builds a connector trusting `ca_file` if given, else the system roots.
pub fn connector(ca_file: Option<&PathBuf>) -> Result<TlsConnector, TlsError> {
    let roots = match ca_file {
        Some(path) => file_roots(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// TLS over `tcp` to `host` (sent as SNI when it is a name, and verified against the cert).
pub async fn handshake(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| TlsError::ServerName(host.to_string()))?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| TlsError::Handshake(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_name_the_file() {
        let Err(err) = connector(Some(&PathBuf::from("/nonexistent/ca.pem"))) else {
            panic!("a missing CA file must fail");
        };
        assert!(matches!(&err, TlsError::CaFile { path, .. } if path == "/nonexistent/ca.pem"));
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(matches!(
            connector(Some(&empty)),
            Err(TlsError::NoCertificates(_))
        ));
    }
}
