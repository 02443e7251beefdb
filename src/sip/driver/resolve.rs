//! Where requests go: Request-URIs from what the spec says, next-hop addresses (RFC 3263 §4:
//! an explicit port or IP is used as is; otherwise SRV for the transport, then A/AAAA), and our
//! own address toward a peer.

use crate::sip::core::dialog::Transport;
use crate::sip::core::dns::{order_srv, parse_srv_response, srv_name, srv_query};
use rand::SeedableRng;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How long one SRV query may take before we fall back to A/AAAA.
const SRV_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long one A/AAAA lookup (the system resolver) may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// SRV targets tried at most (a hostile answer may list many).
const MAX_SRV_TARGETS: usize = 4;

/// A/AAAA through the system resolver, bounded in time.
async fn lookup(host: &str, port: u16) -> Result<Option<SocketAddr>, String> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => Ok(addrs.next()),
        Ok(Err(err)) => Err(format!("cannot resolve {host}: {err}")),
        Err(_) => Err(format!("cannot resolve {host}: timed out")),
    }
}

/// `sip:…`/`sips:…` as given; a bare user or number is dialed at the account's domain.
pub(crate) fn request_uri(to: &str, domain: &str) -> String {
    let lower = to.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        to.to_string()
    } else {
        format!("sip:{to}@{domain}")
    }
}

/// host and port of a SIP URI (or host[:port]); the default port follows the transport.
fn host_port(uri: &str, transport: Transport) -> (String, u16) {
    let (host, port) = host_and_explicit_port(uri);
    let default = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    (host, port.unwrap_or(default))
}

fn host_and_explicit_port(uri: &str) -> (String, Option<u16>) {
    let rest = uri
        .split_once(':')
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
        })
        .map(|(_, r)| r)
        .unwrap_or(uri);
    let rest = rest.trim_start_matches('<');
    let hostport = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hostport = hostport.split([';', '>', '?']).next().unwrap_or(hostport);
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, tail) = v6.split_once(']').unwrap_or((v6, ""));
        return (
            host.to_string(),
            tail.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().ok()),
        None => (hostport.to_string(), None),
    }
}

/// Resolves a URI's host to the next-hop address (RFC 3263 §4.2 without NAPTR: we know the
/// transport). Returns the address and the host name (what a TLS certificate must match).
pub(crate) async fn resolve(
    uri: &str,
    transport: Transport,
) -> Result<(SocketAddr, String), String> {
    let (host, port) = host_port(uri, transport);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((SocketAddr::new(ip, port), host));
    }
    if host_and_explicit_port(uri).1.is_none() {
        let records = srv_lookup(&srv_name(&host, transport)).await;
        for record in records.iter().take(MAX_SRV_TARGETS) {
            if let Ok(Some(addr)) = lookup(&record.target, record.port).await {
                return Ok((addr, host));
            }
        }
    }
    let addr = lookup(&host, port)
        .await?
        .ok_or_else(|| format!("{host} has no address"))?;
    Ok((addr, host))
}

/// SRV records for `name` from the first nameserver in /etc/resolv.conf, best first; empty on
/// any failure (then A/AAAA decides).
async fn srv_lookup(name: &str) -> Vec<crate::sip::core::dns::SrvRecord> {
    let Some(server) = std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|conf| {
            conf.lines()
                .filter_map(|l| l.trim().strip_prefix("nameserver"))
                .find_map(|ip| ip.trim().parse::<IpAddr>().ok())
        })
    else {
        return Vec::new();
    };
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let id: u16 = rand::Rng::random(&mut rng);
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()
    } else {
        "[::]:0".parse()
    }
    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let exchange = async {
        let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
        socket
            .send_to(&srv_query(id, name), SocketAddr::new(server, 53))
            .await
            .ok()?;
        let mut buf = [0u8; 4096];
        loop {
            let (len, from) = socket.recv_from(&mut buf).await.ok()?;
            if from.ip() == server {
                return parse_srv_response(&buf[..len], id).ok();
            }
        }
    };
    match tokio::time::timeout(SRV_TIMEOUT, exchange).await {
        Ok(Some(records)) => order_srv(records, &mut rng),
        _ => Vec::new(),
    }
}

/// The local address the OS would use toward `peer` (for Via, Contact and SDP).
pub(crate) fn local_ip_toward(bound: SocketAddr, peer: SocketAddr) -> IpAddr {
    if !bound.ip().is_unspecified() {
        return bound.ip();
    }
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bound.ip(), 0)).and_then(|s| {
        s.connect(peer)?;
        s.local_addr()
    });
    probe.map(|a| a.ip()).unwrap_or(bound.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_hops() {
        assert_eq!(
            request_uri("311705123", "zoomcrc.com"),
            "sip:311705123@zoomcrc.com"
        );
        assert_eq!(request_uri("sip:a@b", "x"), "sip:a@b");
        assert_eq!(
            host_port("sip:a@b.example:5070;transport=tcp", Transport::Tcp),
            ("b.example".into(), 5070)
        );
        assert_eq!(
            host_port("sip:sbc.example.com;lr", Transport::Tls),
            ("sbc.example.com".into(), 5061)
        );
        assert_eq!(
            host_port("sip:[2001:db8::1]:5062", Transport::Udp),
            ("2001:db8::1".into(), 5062)
        );
        assert_eq!(
            host_port("pbx.example.com", Transport::Udp),
            ("pbx.example.com".into(), 5060)
        );
        // A sips: URI is TLS (see dns::transport_for), so 5061 unless it names a port.
        let sips = "sips:meeting@webex.example";
        let transport = crate::sip::core::dns::transport_for(sips, Transport::Udp);
        assert_eq!(host_port(sips, transport), ("webex.example".into(), 5061));
        assert_eq!(
            host_port("sips:m@webex.example:5071", transport),
            ("webex.example".into(), 5071)
        );
    }
}
