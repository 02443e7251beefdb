//! Connection-oriented SIP transports (RFC 3261 §18): one task per TCP peer that writes what the
//! engine sends and frames what arrives by Content-Length. A closed connection is reported and
//! re-opened on the next send.

use super::engine::Inbound;
use crate::sip::core::message::{Framed, MAX_MESSAGE_LEN, ParseError, parse_stream};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Opens a TCP connection to `peer` in the background; returns where to queue bytes for it.
pub(super) fn connect_tcp(
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
) -> mpsc::UnboundedSender<Bytes> {
    let (writer, mut queue) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let stream = match TcpStream::connect(peer).await {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(%peer, %err, "SIP TCP connect failed");
                let _ = inbound.send(Inbound::Closed(peer));
                return;
            }
        };
        let (mut reader, mut write_half) = stream.into_split();
        let mut buf = BytesMut::with_capacity(8192);
        loop {
            tokio::select! {
                data = queue.recv() => match data {
                    Some(data) => {
                        if write_half.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                read = reader.read_buf(&mut buf) => {
                    match read {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if !drain_frames(&mut buf, peer, &inbound) {
                        break;
                    }
                }
            }
        }
        let _ = inbound.send(Inbound::Closed(peer));
    });
    writer
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
