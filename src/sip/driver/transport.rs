//! Connection-oriented SIP transports (RFC 3261 §18, RFC 5630 for TLS): one task per peer that
//! writes what the engine sends and frames what arrives by Content-Length. A closed or failed
//! connection is reported (calls not yet answered over it end with 503, §8.1.3.1) and re-opened
//! on the next send. TLS checks the certificate chain and the peer's name.

use super::engine::{Control, Link};
use crate::sip::core::framing::StreamFramer;
use bytes::Bytes;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

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

/// Bytes queued toward one connection at most; past it, sends are dropped and counted (a peer
/// that stops reading must not grow our memory).
const WRITE_QUEUE: usize = 64;
/// TCP connect and TLS handshake, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One write; a peer that stops reading fails the connection after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A new connection whose peer has sent nothing at all this long after our first request is
/// not a SIP server (a real one answers an INVITE with 100 Trying at once): fail the attempt
/// now instead of after Timer B's 32 s.
const FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(4);

/// Opens a TCP (or TLS) connection to `peer` in the background; returns where to queue bytes.
pub(super) fn connect(peer: SocketAddr, tls: Option<TlsTarget>, link: Link) -> mpsc::Sender<Bytes> {
    let (writer, queue) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    tokio::spawn(async move {
        let reason = match timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
            Err(_) => format!("cannot connect to {peer}: timed out"),
            Ok(Err(err)) => format!("cannot connect to {peer}: {err}"),
            Ok(Ok(stream)) => match tls {
                None => pump(stream, peer, queue, &link).await,
                Some((config, name)) => {
                    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
                    match timeout(CONNECT_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => pump(stream, peer, queue, &link).await,
                        Ok(Err(err)) => format!("TLS handshake with {peer} failed: {err}"),
                        Err(_) => format!("TLS handshake with {peer} timed out"),
                    }
                }
            },
        };
        tracing::debug!(%peer, %reason, "SIP connection closed");
        let _ = link.control.send(Control::Closed(peer, reason));
    });
    writer
}

/// Moves bytes both ways until the connection ends; returns why it ended.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
    link: &Link,
) -> String {
    let (mut reader, mut write_half) = tokio::io::split(stream);
    let mut framer = StreamFramer::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut heard_from_peer = false;
    let mut first_answer_by: Option<tokio::time::Instant> = None;
    loop {
        let silent_deadline = async {
            match first_answer_by {
                Some(at) if !heard_from_peer => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            data = queue.recv() => match data {
                Some(data) => {
                    match timeout(WRITE_TIMEOUT, write_half.write_all(&data)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => return format!("write to {peer} failed: {err}"),
                        Err(_) => return format!("write to {peer} timed out (peer not reading)"),
                    }
                    first_answer_by.get_or_insert_with(|| {
                        crate::clock::monotonic() + FIRST_ANSWER_TIMEOUT
                    });
                }
                None => return "no longer needed".into(),
            },
            read = reader.read(&mut chunk) => {
                let len = match read {
                    Ok(0) => return format!("{peer} closed the connection"),
                    Err(err) => return format!("read from {peer} failed: {err}"),
                    Ok(len) => len,
                };
                heard_from_peer = true;
                if framer.push(chunk.get(..len).unwrap_or_default()).is_err()
                    || !drain_frames(&mut framer, peer, link)
                {
                    link.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return format!("{peer} sent an invalid or oversized SIP stream");
                }
            }
            _ = silent_deadline => {
                return format!(
                    "{peer} sent nothing within {}s of our request",
                    FIRST_ANSWER_TIMEOUT.as_secs()
                );
            }
        }
    }
}

/// Hands every complete message to the engine; false when the stream is unusable. A full
/// engine queue drops the message (counted), as a lost datagram would be.
fn drain_frames(framer: &mut StreamFramer, peer: SocketAddr, link: &Link) -> bool {
    loop {
        match framer.next_message() {
            Ok(Some(msg)) => {
                if link.frames.try_send((msg, peer)).is_err() {
                    link.stats.tcp_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}
