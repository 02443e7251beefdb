//! Connection-oriented SIP transports (RFC 3261 §18, RFC 5630 for TLS): one task per
//! connection that writes what the engine sends and frames what arrives by Content-Length.
//!
//! Connections we open ([`connect`]) check the server's certificate against the host name we
//! resolved (sent as SNI), may present a client certificate (mutual TLS), and carry RFC 5626
//! CRLF keep-alives; a failed flow is reported so its registration re-registers. Connections
//! peers open to us ([`listen`]) are capped in number, must send a first message soon and
//! close when idle. Either kind, once known to the engine, carries requests both ways: a
//! proxy that reuses our connection (RFC 5923 `alias`, RFC 5626 outbound) reaches us on it.

use super::engine::{Control, Link};
use crate::sip::core::framing::StreamFramer;
use crate::sip::core::keepalive::{KeepAlive, KeepAliveAction, PING, PONG, is_ping};
use bytes::Bytes;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::timeout;

pub(super) use super::tls::TlsTarget;

/// What the engine queues toward one connection.
#[derive(Debug)]
pub(super) enum Outgoing {
    Message(Bytes),
    /// The registrar's Flow-Timer for this flow (RFC 5626 §5.4).
    FlowTimer(Duration),
}

/// Items queued toward one connection at most; past it, sends are dropped and counted (a peer
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
/// Connections peers open to us, at most at once; more are closed at once and counted.
pub(super) const MAX_INBOUND: usize = 32;
/// An inbound connection must bring its first whole message this soon after it opened.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// An inbound connection with no traffic either way this long is closed (the peer opens a new
/// one when it needs it).
const INBOUND_IDLE: Duration = Duration::from_secs(300);

/// Who opened the connection, and what that implies.
enum Role {
    /// Ours: keep-alives, and a first answer expected soon after our first request.
    Client(Box<KeepAlive>),
    /// The peer's: a first message soon, then closed when idle.
    Server,
}

/// Opens a TCP (or TLS) connection to `peer` in the background; returns where to queue bytes.
pub(super) fn connect(
    peer: SocketAddr,
    tls: Option<TlsTarget>,
    link: Link,
) -> mpsc::Sender<Outgoing> {
    let (writer, queue) = mpsc::channel::<Outgoing>(WRITE_QUEUE);
    tokio::spawn(async move {
        // `open` owns the queue: it is dropped before the engine hears of the close.
        let reason = open(peer, tls, queue, &link).await;
        tracing::debug!(%peer, %reason, "SIP connection closed");
        let _ = link.control.send(Control::Closed(peer, reason));
    });
    writer
}

/// Connects, handshakes and pumps until the connection ends; returns why it ended.
async fn open(
    peer: SocketAddr,
    tls: Option<TlsTarget>,
    queue: mpsc::Receiver<Outgoing>,
    link: &Link,
) -> String {
    let role = || {
        let rng = rand::rngs::StdRng::from_os_rng();
        Role::Client(Box::new(KeepAlive::new(
            crate::clock::monotonic().into_std(),
            rng,
        )))
    };
    match timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Err(_) => format!("cannot connect to {peer}: timed out"),
        Ok(Err(err)) => format!("cannot connect to {peer}: {err}"),
        Ok(Ok(stream)) => match tls {
            None => pump(stream, peer, queue, link, role(), None).await,
            Some(target) => {
                let name = &target.name;
                let handshake = tokio_rustls::TlsConnector::from(target.config.clone())
                    .connect(target.server_name.clone(), stream);
                match timeout(CONNECT_TIMEOUT, handshake).await {
                    Ok(Ok(stream)) => pump(stream, peer, queue, link, role(), Some(&target)).await,
                    Ok(Err(err)) => target.explain(&err).unwrap_or_else(|| {
                        format!("TLS handshake with {name} ({peer}) failed: {err}")
                    }),
                    Err(_) => format!("TLS handshake with {name} ({peer}) timed out"),
                }
            }
        },
    }
}

/// Accepts connections from peers (plain TCP, or TLS with `acceptor`) until the engine is
/// gone. Each one is announced to the engine ([`Control::Accepted`]) once it is set up.
pub(super) async fn listen(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    link: Link,
) {
    let slots = Arc::new(Semaphore::new(MAX_INBOUND));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::debug!(%err, "SIP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if link.control.is_closed() {
            return;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            link.stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let link = link.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let reason = match acceptor {
                None => serve(stream, peer, &link).await,
                Some(acceptor) => match timeout(CONNECT_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve(stream, peer, &link).await,
                    Ok(Err(err)) => format!("TLS handshake from {peer} failed: {err}"),
                    Err(_) => format!("TLS handshake from {peer} timed out"),
                },
            };
            tracing::debug!(%peer, %reason, "inbound SIP connection closed");
            let _ = link.control.send(Control::Closed(peer, reason));
        });
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    link: &Link,
) -> String {
    let (writer, queue) = mpsc::channel::<Outgoing>(WRITE_QUEUE);
    if link.control.send(Control::Accepted(peer, writer)).is_err() {
        return "SIP engine stopped".into();
    }
    pump(stream, peer, queue, link, Role::Server, None).await
}

/// Moves bytes both ways until the connection ends; returns why it ended.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    mut queue: mpsc::Receiver<Outgoing>,
    link: &Link,
    mut role: Role,
    tls: Option<&TlsTarget>,
) -> String {
    let (mut reader, mut write_half) = tokio::io::split(stream);
    let mut framer = StreamFramer::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let opened = crate::clock::monotonic();
    let mut heard_from_peer = false;
    let mut whole_messages = 0u64;
    let mut first_answer_by: Option<tokio::time::Instant> = None;
    let mut last_traffic = opened;
    loop {
        let deadline = match &role {
            Role::Client(keepalive) => {
                let ping = tokio::time::Instant::from_std(keepalive.poll_timeout());
                match first_answer_by {
                    Some(at) if !heard_from_peer => at.min(ping),
                    _ => ping,
                }
            }
            Role::Server if whole_messages == 0 => opened + FIRST_MESSAGE_TIMEOUT,
            Role::Server => last_traffic + INBOUND_IDLE,
        };
        tokio::select! {
            item = queue.recv() => match item {
                Some(Outgoing::Message(data)) => {
                    if let Err(reason) = write(&mut write_half, &data, peer).await {
                        return reason;
                    }
                    last_traffic = crate::clock::monotonic();
                    first_answer_by.get_or_insert(last_traffic + FIRST_ANSWER_TIMEOUT);
                }
                Some(Outgoing::FlowTimer(interval)) => {
                    if let Role::Client(keepalive) = &mut role {
                        keepalive.set_interval(crate::clock::monotonic().into_std(), interval);
                    }
                }
                None => return "no longer needed".into(),
            },
            read = reader.read(&mut chunk) => {
                let len = match read {
                    Ok(0) => return format!("{peer} closed the connection"),
                    Err(err) => {
                        // TLS 1.3 servers refuse a client certificate after the handshake.
                        return tls
                            .and_then(|t| t.explain(&err))
                            .unwrap_or_else(|| format!("read from {peer} failed: {err}"));
                    }
                    Ok(len) => len,
                };
                heard_from_peer = true;
                last_traffic = crate::clock::monotonic();
                if let Role::Client(keepalive) = &mut role {
                    keepalive.on_received(last_traffic.into_std());
                }
                if framer.push(chunk.get(..len).unwrap_or_default()).is_err() {
                    link.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return format!("{peer} sent an oversized SIP message");
                }
                match drain_frames(&mut framer, peer, link) {
                    Some(count) => whole_messages += count,
                    None => {
                        link.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        return format!("{peer} sent an invalid or oversized SIP stream");
                    }
                }
                if is_ping(framer.take_crlf_run()) {
                    if let Err(reason) = write(&mut write_half, PONG, peer).await {
                        return reason;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let now = crate::clock::monotonic();
                match &mut role {
                    Role::Client(_) if first_answer_by.is_some_and(|at| at <= now) && !heard_from_peer => {
                        return format!(
                            "{peer} sent nothing within {}s of our request",
                            FIRST_ANSWER_TIMEOUT.as_secs()
                        );
                    }
                    Role::Client(keepalive) => match keepalive.handle_timeout(now.into_std()) {
                        Some(KeepAliveAction::Ping) => {
                            if let Err(reason) = write(&mut write_half, PING, peer).await {
                                return reason;
                            }
                        }
                        Some(KeepAliveAction::Failed) => {
                            return format!("{peer} did not answer our keep-alive");
                        }
                        None => {}
                    },
                    Role::Server if whole_messages == 0 => {
                        return format!(
                            "{peer} sent no SIP message within {}s",
                            FIRST_MESSAGE_TIMEOUT.as_secs()
                        );
                    }
                    Role::Server => {
                        if now >= last_traffic + INBOUND_IDLE {
                            return format!("idle for {}s", INBOUND_IDLE.as_secs());
                        }
                    }
                }
            }
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(
    writer: &mut W,
    data: &[u8],
    peer: SocketAddr,
) -> Result<(), String> {
    match timeout(WRITE_TIMEOUT, writer.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("write to {peer} failed: {err}")),
        Err(_) => Err(format!("write to {peer} timed out (peer not reading)")),
    }
}

/// Hands every complete message to the engine; how many, or None when the stream is unusable.
/// A full engine queue drops the message (counted), as a lost datagram would be.
fn drain_frames(framer: &mut StreamFramer, peer: SocketAddr, link: &Link) -> Option<u64> {
    let mut count = 0;
    loop {
        match framer.next_message() {
            Ok(Some(msg)) => {
                count += 1;
                if link.frames.try_send((msg, peer)).is_err() {
                    link.stats.tcp_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(None) => return Some(count),
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::driver::{UaConfig, UserAgent};

    #[tokio::test]
    async fn connections_past_the_inbound_cap_are_closed_and_counted_and_the_rest_answered() {
        let ua = UserAgent::bind(UaConfig::new("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_INBOUND + 5 {
            held.push(TcpStream::connect(ua.local_addr()).await.unwrap());
        }
        let counted = timeout(Duration::from_secs(5), async {
            while ua.counters().connections_refused < 5 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(counted.await.is_ok(), "{:?}", ua.counters());
        assert_eq!(ua.counters().connections_refused, 5);
        // The last ones were closed at once.
        let mut byte = [0u8; 1];
        let last = held.last_mut().unwrap();
        let read = timeout(Duration::from_secs(2), last.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        // An accepted one carries a request and its answer.
        let options = "OPTIONS sip:sipcast@127.0.0.1 SIP/2.0\r\n\
            Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKcap\r\nFrom: <sip:p@x>;tag=1\r\n\
            To: <sip:sipcast@127.0.0.1>\r\nCall-ID: cap\r\nCSeq: 1 OPTIONS\r\n\
            Content-Length: 0\r\n\r\n";
        let first = held.first_mut().unwrap();
        first.write_all(options.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 2048];
        let len = timeout(Duration::from_secs(5), first.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..len]);
        assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
        // A keep-alive ping is answered with a pong.
        first.write_all(PING).await.unwrap();
        let mut pong = [0u8; 8];
        let len = timeout(Duration::from_secs(5), first.read(&mut pong))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&pong[..len], PONG);
    }

    #[tokio::test(start_paused = true)]
    async fn our_flow_pings_at_the_flow_timer_and_fails_without_pong() {
        use crate::sip::driver::UaStats;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (frames, mut frames_rx) = mpsc::channel(8);
        let (control, mut control_rx) = mpsc::unbounded_channel();
        let link = Link {
            frames,
            control,
            stats: Arc::new(UaStats::default()),
        };
        let writer = connect(listener.local_addr().unwrap(), None, link);
        let (mut server, _) = listener.accept().await.unwrap();
        let options = "OPTIONS sip:p@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKk\r\n\
            From: <sip:a@b>;tag=1\r\nTo: <sip:p@127.0.0.1>\r\nCall-ID: ka\r\nCSeq: 1 OPTIONS\r\n\
            Content-Length: 0\r\n\r\n";
        writer
            .send(Outgoing::Message(Bytes::from_static(options.as_bytes())))
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let len = server.read(&mut buf).await.unwrap();
        assert!(buf[..len].starts_with(b"OPTIONS "));
        // The peer answers (a whole message reaches the engine's queue) and sets Flow-Timer.
        server.write_all(options.as_bytes()).await.unwrap();
        assert!(frames_rx.recv().await.is_some());
        let set_at = crate::clock::monotonic();
        writer
            .send(Outgoing::FlowTimer(Duration::from_secs(20)))
            .await
            .unwrap();
        let len = server.read(&mut buf).await.unwrap();
        let waited = set_at.elapsed();
        assert_eq!(&buf[..len], PING);
        assert!(
            waited >= Duration::from_secs(16) && waited <= Duration::from_secs(20),
            "{waited:?}"
        );
        server.write_all(PONG).await.unwrap();
        let answered_at = crate::clock::monotonic();
        let len = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], PING, "pinging goes on after a pong");
        assert!(answered_at.elapsed() >= Duration::from_secs(15));
        // No pong this time: the flow fails PONG_WAIT later and the engine hears why.
        let pinged_at = crate::clock::monotonic();
        let Some(Control::Closed(_, reason)) = control_rx.recv().await else {
            panic!("no Closed");
        };
        assert!(
            reason.ends_with("did not answer our keep-alive"),
            "{reason}"
        );
        let failed_after = pinged_at.elapsed();
        assert!(
            failed_after >= Duration::from_secs(9) && failed_after <= Duration::from_secs(11),
            "{failed_after:?}"
        );
    }
}
