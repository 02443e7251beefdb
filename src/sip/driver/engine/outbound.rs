//! The outbound side of the engine: putting bytes on the right transport, opening TCP/TLS
//! connections as needed (at most [`MAX_CONNECTIONS`]).

use super::{Control, Engine, Hop};
use crate::sip::core::dialog::Transport;
use crate::sip::driver::transport::{TlsTarget, connect, tls_config};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc::error::TrySendError;

/// Open SIP connections at most. Connections are ours (outgoing, one per next hop); a forged
/// fork Contact could name new addresses, so the map is capped all the same.
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
            match writer.try_send(data.clone()) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    self.state_stats_tcp_dropped();
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    self.tcp.remove(&hop.addr);
                }
            }
        }
        if self.tcp.len() >= MAX_CONNECTIONS {
            self.state_stats_tcp_dropped();
            let _ = self.link.control.send(Control::Closed(
                hop.addr,
                format!("too many SIP connections (at most {MAX_CONNECTIONS})"),
            ));
            return;
        }
        let tls = match hop.transport {
            Transport::Tls => match self.tls_target(hop.addr) {
                Ok(target) => Some(target),
                Err(reason) => {
                    let _ = self.link.control.send(Control::Closed(hop.addr, reason));
                    return;
                }
            },
            _ => None,
        };
        let writer = connect(hop.addr, tls, self.link.clone());
        let _ = writer.try_send(data);
        self.tcp.insert(hop.addr, writer);
    }

    /// An answer to a peer's request: UDP, or the connection it came over (never a new one).
    pub(super) async fn reply(&mut self, hop: Hop, data: Bytes) {
        if hop.transport == Transport::Udp {
            return self.send(hop, data).await;
        }
        if let Some(writer) = self.tcp.get(&hop.addr) {
            if writer.try_send(data).is_err() {
                self.state_stats_tcp_dropped();
            }
        }
    }

    fn state_stats_tcp_dropped(&self) {
        self.link.stats.tcp_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The TLS client config (built once) and the name `addr` must prove.
    fn tls_target(&mut self, addr: SocketAddr) -> Result<TlsTarget, String> {
        let config = match &self.tls {
            Some(config) => config.clone(),
            None => {
                let config = tls_config(self.state.config().tls_ca_file.as_deref())?;
                self.tls = Some(config.clone());
                config
            }
        };
        let name = self
            .tls_names
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| addr.ip().to_string());
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|_| format!("{name} is not a valid TLS server name"))?;
        Ok((config, name))
    }
}
