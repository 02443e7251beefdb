//! TLS for SIP (RFC 5630, RFC 3261 §26.2): the client side checks the server's certificate
//! chain against the CA file (or the system's roots) and its name against the host we resolved
//! (sent as SNI), and may present a client certificate; the server side, for connections peers
//! open to us, presents ours. Handshake failures become status reasons a user can act on.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the TLS client settings of one account come from (the spec's `[sip]` files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClientTls {
    /// PEM CA certificates the server must chain to; the UA's default (else the system's)
    /// when unset.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and key we present when the server asks (mutual TLS).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// One TLS connection to open: the config, and the name the server's certificate must carry.
#[derive(Clone)]
pub(super) struct TlsTarget {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
    /// The host name as the user wrote it (for reasons).
    pub name: String,
    pub has_client_cert: bool,
}

impl TlsTarget {
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        name: String,
        has_client_cert: bool,
    ) -> Result<TlsTarget, String> {
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| format!("{name} is not a valid TLS server name"))?;
        Ok(TlsTarget {
            config,
            server_name,
            name,
            has_client_cert,
        })
    }

    /// A clear reason for a TLS failure of this connection, if `err` is one.
    pub fn explain(&self, err: &std::io::Error) -> Option<String> {
        let tls = err.get_ref()?.downcast_ref::<rustls::Error>()?;
        explain(tls, &self.name, self.has_client_cert)
    }
}

/// The reason for a TLS error toward `name`, when it is one a user can act on.
pub(super) fn explain(err: &rustls::Error, name: &str, has_client_cert: bool) -> Option<String> {
    match err {
        rustls::Error::InvalidCertificate(cert) => Some(match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("TLS certificate not trusted for {name}: it names another host")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("TLS certificate not trusted for {name}: it has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("TLS certificate not trusted for {name}: it is not valid yet")
            }
            _ => format!("TLS certificate not trusted for {name}"),
        }),
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) if !has_client_cert => {
            Some(format!(
                "TLS client certificate required by {name} (set sip.client_cert_file)"
            ))
        }
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied,
        ) => Some(format!("TLS client certificate refused by {name}")),
        _ => None,
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("bad private key in {}: {e}", path.display()))?
        .ok_or_else(|| format!("no private key in {}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS client configuration of one account: its CA file (else `default_ca`, else the
/// system's roots) and its client certificate if it has one.
pub(super) fn client_config(
    tls: &ClientTls,
    default_ca: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match tls.ca_file.as_deref().or(default_ca) {
        Some(path) => {
            for cert in read_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| format!("client certificate {}: {e}", cert.display()))?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("sip.client_cert_file and sip.client_key_file go together".into()),
    };
    Ok(Arc::new(config))
}

/// The TLS server configuration for connections peers open to us.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(read_certs(cert)?, read_key(key)?)
        .map_err(|e| format!("server certificate {}: {e}", cert.display()))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_name_the_host_and_what_to_fix() {
        let untrusted = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            explain(&untrusted, "sbc.example", false).as_deref(),
            Some("TLS certificate not trusted for sbc.example")
        );
        let wrong_name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(
            explain(&wrong_name, "sbc.example", false)
                .unwrap()
                .starts_with("TLS certificate not trusted for sbc.example: ")
        );
        let required = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(
            explain(&required, "sbc.example", false)
                .unwrap()
                .starts_with("TLS client certificate required by sbc.example")
        );
        let refused = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert_eq!(
            explain(&refused, "sbc.example", true).as_deref(),
            Some("TLS client certificate refused by sbc.example")
        );
        let other = rustls::Error::AlertReceived(AlertDescription::DecodeError);
        assert_eq!(explain(&other, "sbc.example", true), None);
        // Through an io::Error, as tokio-rustls reports them.
        let target = TlsTarget::new(
            client_config(&ClientTls::default(), None).unwrap(),
            "sbc.example".into(),
            false,
        )
        .unwrap();
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, untrusted);
        assert_eq!(
            target.explain(&io).as_deref(),
            Some("TLS certificate not trusted for sbc.example")
        );
        assert!(target.explain(&std::io::Error::other("reset")).is_none());
    }

    #[test]
    fn a_cert_without_its_key_is_refused() {
        let half = ClientTls {
            cert_file: Some("/nonexistent.pem".into()),
            ..Default::default()
        };
        assert!(
            client_config(&half, None)
                .unwrap_err()
                .contains("go together")
        );
        let missing = ClientTls {
            ca_file: Some("/nonexistent-ca.pem".into()),
            ..Default::default()
        };
        assert!(
            client_config(&missing, None)
                .unwrap_err()
                .contains("cannot read /nonexistent-ca.pem")
        );
    }
}
