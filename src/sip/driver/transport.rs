//! Connection-oriented SIP transports (RFC 3261 §18, RFC 5630 for TLS): one task per peer that
//! writes what the engine sends and frames what arrives by Content-Length. A closed or failed
//! connection is reported (calls not yet answered over it end with 503, §8.1.3.1) and re-opened
//! on the next send. TLS checks the certificate chain and the peer's name.

use super::engine::Inbound;
use crate::sip::core::message::{Framed, MAX_MESSAGE_LEN, ParseError, parse_stream};
use bytes::{Bytes, BytesMut};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// TLS settings for one connection: the client config and the name the certificate must carry.
pub(super) type TlsTarget = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// The TLS client configuration: the CA file's certificates if given, else the system's.
pub(super) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens a TCP (or TLS) connection to `peer` in the background; returns where to queue bytes.
pub(super) fn connect(
    peer: SocketAddr,
    tls: Option<TlsTarget>,
    inbound: mpsc::UnboundedSender<Inbound>,
) -> mpsc::UnboundedSender<Bytes> {
    let (writer, queue) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let reason = match TcpStream::connect(peer).await {
            Err(err) => format!("cannot connect to {peer}: {err}"),
            Ok(stream) => match tls {
                None => pump(stream, peer, queue, &inbound).await,
                Some((config, name)) => match tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                {
                    Ok(stream) => pump(stream, peer, queue, &inbound).await,
                    Err(err) => format!("TLS handshake with {peer} failed: {err}"),
                },
            },
        };
        tracing::debug!(%peer, %reason, "SIP connection closed");
        let _ = inbound.send(Inbound::Closed(peer, reason));
    });
    writer
}

/// Moves bytes both ways until the connection ends; returns why it ended.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    inbound: &mpsc::UnboundedSender<Inbound>,
) -> String {
    let (mut reader, mut write_half) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        tokio::select! {
            data = queue.recv() => match data {
                Some(data) => {
                    if let Err(err) = write_half.write_all(&data).await {
                        return format!("write to {peer} failed: {err}");
                    }
                }
                None => return "no longer needed".into(),
            },
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => return format!("{peer} closed the connection"),
                    Err(err) => return format!("read from {peer} failed: {err}"),
                    Ok(_) => {}
                }
                if !drain_frames(&mut buf, peer, inbound) {
                    return format!("{peer} sent an invalid SIP stream");
                }
            }
        }
    }
}

/// Hands every complete message in `buf` to the engine; false when the stream is unusable.
fn drain_frames(
    buf: &mut BytesMut,
    peer: SocketAddr,
    inbound: &mpsc::UnboundedSender<Inbound>,
) -> bool {
    loop {
        match parse_stream(buf) {
            Ok(Framed::KeepAlive(n)) => {
                let _ = buf.split_to(n);
            }
            Ok(Framed::Message(msg, n)) => {
                let _ = buf.split_to(n);
                let _ = inbound.send(Inbound::Message(msg, peer));
            }
            Err(ParseError::Incomplete) if buf.len() <= MAX_MESSAGE_LEN => return true,
            Err(_) => {
                let _ = inbound.send(Inbound::Dropped);
                return false;
            }
        }
    }
}
