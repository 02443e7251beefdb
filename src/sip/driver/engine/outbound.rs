//! The outbound side of the engine: who we say we are (Via, Contact) toward a hop, and putting
//! bytes on the right transport, opening TCP/TLS connections as needed.

use super::{Engine, Hop, Inbound};
use crate::sip::core::dialog::{LocalParty, Transport};
use crate::sip::driver::Account;
use crate::sip::driver::resolve::local_ip_toward;
use crate::sip::driver::transport::{TlsTarget, connect, tls_config};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

impl Engine {
    pub(super) fn local_party(&self, account: &Account, hop: Hop) -> LocalParty {
        let ip = self
            .config
            .public_addr
            .unwrap_or_else(|| local_ip_toward(self.local_addr, hop.addr));
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let sent_by = format!("{host}:{}", self.local_addr.port());
        LocalParty {
            aor: format!("sip:{}@{}", account.user, account.domain),
            display_name: account.display_name.clone(),
            contact: format!(
                "sip:{}@{sent_by}{}",
                account.user,
                account.transport.uri_param()
            ),
            sent_by,
            transport: account.transport,
            outbound_proxy: account.proxy.as_ref().map(|p| {
                if p.contains(";lr") {
                    p.clone()
                } else {
                    format!("{p};lr")
                }
            }),
            user_agent: self.config.user_agent.clone(),
        }
    }

    pub(super) async fn send(&mut self, hop: Hop, data: Bytes) {
        if hop.transport == Transport::Udp {
            if let Err(err) = self.udp.send_to(&data, hop.addr).await {
                tracing::warn!(to = %hop.addr, %err, "SIP send failed");
            }
            return;
        }
        if let Some(writer) = self.tcp.get(&hop.addr) {
            if writer.send(data.clone()).is_ok() {
                return;
            }
        }
        let tls = match hop.transport {
            Transport::Tls => match self.tls_target(hop.addr) {
                Ok(target) => Some(target),
                Err(reason) => {
                    let _ = self.inbound_tx.send(Inbound::Closed(hop.addr, reason));
                    return;
                }
            },
            _ => None,
        };
        let writer = connect(hop.addr, tls, self.inbound_tx.clone());
        let _ = writer.send(data);
        self.tcp.insert(hop.addr, writer);
    }

    /// The TLS client config (built once) and the name `addr` must prove.
    fn tls_target(&mut self, addr: SocketAddr) -> Result<TlsTarget, String> {
        let config = match &self.tls {
            Some(config) => config.clone(),
            None => {
                let config = tls_config(self.config.tls_ca_file.as_deref())?;
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
