//! The connection side of the engine: putting bytes on the right transport, opening TCP/TLS
//! connections as needed, and taking in the ones peers open to us (at most
//! [`MAX_CONNECTIONS`] of both kinds). A message for an address goes over whatever connection
//! to that address is open, ours or the peer's: that is how requests reach us over a
//! connection we opened (RFC 5923), and how answers go back on the connection a request came
//! in on (RFC 3261 §18.2.2).

use super::{Engine, Hop, now};
use crate::sip::core::dialog::Transport;
use crate::sip::driver::tls::client_config;
use crate::sip::driver::transport::{Outgoing, TlsTarget, connect};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Open SIP connections at most. A forged fork Contact could name new addresses, and peers
/// may open connections to us, so the map is capped.
const MAX_CONNECTIONS: usize = 64;

impl Engine {
    pub(super) async fn send(&mut self, hop: Hop, data: Bytes) {
        if hop.transport == Transport::Udp {
            if let Err(err) = self.udp.send_to(&data, hop.addr).await {
                tracing::debug!(to = %hop.addr, %err, "SIP send failed");
            }
            return;
        }
        if let Some(writer) = self.tcp.get(&hop.addr) {
            match writer.try_send(Outgoing::Message(data.clone())) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    self.count_tcp_dropped();
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.tcp.remove(&hop.addr);
                }
            }
        }
        if self.tcp.len() >= MAX_CONNECTIONS {
            self.count_tcp_dropped();
            let reason = format!("too many SIP connections (at most {MAX_CONNECTIONS})");
            self.state.on_transport_closed(now(), hop.addr, &reason);
            return;
        }
        let tls = match hop.transport {
            Transport::Tls => match self.tls_target(hop) {
                Ok(target) => Some(target),
                Err(reason) => {
                    self.state.on_transport_closed(now(), hop.addr, &reason);
                    return;
                }
            },
            _ => None,
        };
        let writer = connect(hop.addr, tls, self.channels.link.clone());
        let _ = writer.try_send(Outgoing::Message(data));
        self.tcp.insert(hop.addr, writer);
    }

    /// An answer to a peer's request: UDP, or the connection it came over (never a new one).
    pub(super) async fn reply(&mut self, hop: Hop, data: Bytes) {
        if hop.transport == Transport::Udp {
            return self.send(hop, data).await;
        }
        if let Some(writer) = self.tcp.get(&hop.addr) {
            if writer.try_send(Outgoing::Message(data)).is_err() {
                self.count_tcp_dropped();
            }
        }
    }

    /// A connection a peer opened to us: kept (and used for anything we send to that address)
    /// unless the map is full, then closed by dropping its queue.
    pub(super) fn accept(&mut self, peer: SocketAddr, writer: mpsc::Sender<Outgoing>) {
        if self.tcp.len() >= MAX_CONNECTIONS && !self.tcp.contains_key(&peer) {
            self.channels
                .link
                .stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.tcp.insert(peer, writer);
    }

    fn count_tcp_dropped(&self) {
        self.channels
            .link
            .stats
            .tcp_dropped
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The TLS client config of the hop's account (built once per setting) and the name the
    /// server at `hop.addr` must prove: the host we resolved, else the address itself.
    fn tls_target(&mut self, hop: Hop) -> Result<TlsTarget, String> {
        let settings = self.state.tls_settings(hop.addr);
        let config = match self.tls.get(&settings) {
            Some(config) => config.clone(),
            None => {
                let config = client_config(&settings, self.state.config().tls_ca_file.as_deref())?;
                self.tls.insert(settings.clone(), config.clone());
                config
            }
        };
        let name = self
            .tls_names
            .get(&hop.addr)
            .cloned()
            .unwrap_or_else(|| hop.addr.ip().to_string());
        TlsTarget::new(config, name, settings.cert_file.is_some())
    }
}
