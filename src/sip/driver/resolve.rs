//! Where requests go: Request-URIs from what the spec says, next-hop addresses, and our own
//! address toward a peer. Resolution is A/AAAA only; RFC 3263 NAPTR/SRV lookups are not done.

use crate::sip::core::dialog::Transport;
use std::net::{IpAddr, SocketAddr};

/// `sip:…`/`sips:…` as given; a bare user or number is dialed at the account's domain.
pub(super) fn request_uri(to: &str, domain: &str) -> String {
    let lower = to.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        to.to_string()
    } else {
        format!("sip:{to}@{domain}")
    }
}

/// host and port of a SIP URI (or host[:port]); the default port follows the transport.
fn host_port(uri: &str, transport: Transport) -> (String, u16) {
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
    let default = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, tail) = v6.split_once(']').unwrap_or((v6, ""));
        let port = tail
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (host.to_string(), port);
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(default)),
        None => (hostport.to_string(), default),
    }
}

/// A/AAAA resolution of a URI's host. (RFC 3263 NAPTR/SRV is not done yet.)
/// Returns the address and the host name (for TLS name checks).
pub(super) async fn resolve(
    uri: &str,
    transport: Transport,
) -> Result<(SocketAddr, String), String> {
    let (host, port) = host_port(uri, transport);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((SocketAddr::new(ip, port), host));
    }
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|err| format!("cannot resolve {host}: {err}"))?;
    let addr = addrs.next();
    drop(addrs);
    let addr = addr.ok_or_else(|| format!("{host} has no address"))?;
    Ok((addr, host))
}

/// The local address the OS would use toward `peer` (for Via, Contact and SDP).
pub(super) fn local_ip_toward(bound: SocketAddr, peer: SocketAddr) -> IpAddr {
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
    }
}
