//! The DNS SRV step of RFC 3263 §4.2 (RFC 2782 records, RFC 1035 wire format), sans-IO.
//!
//! We always know the transport (the spec names it), so NAPTR is skipped (§4.1) and a URI
//! without port is looked up as `_sip._udp.host`, `_sip._tcp.host` or `_sips._tcp.host`; with no
//! SRV answer the host's A/AAAA records and the default port are used. The response parser is
//! bounded (size, record count, compression-pointer hops) and never panics.

use rand::Rng;
use rand::rngs::StdRng;

const MAX_RESPONSE: usize = 4096;
const MAX_RECORDS: usize = 64;
const MAX_POINTER_HOPS: usize = 16;
const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("invalid DNS response: {0}")]
    Invalid(&'static str),
    #[error("DNS server answered with rcode {0}")]
    Rcode(u8),
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The SRV owner name for a host and transport (RFC 3263 §4.2).
pub fn srv_name(host: &str, transport: super::dialog::Transport) -> String {
    use super::dialog::Transport;
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{prefix}.{}", host.trim_end_matches('.'))
}

/// The transport a next-hop URI asks for (RFC 3263 §4.1, without NAPTR): its `transport`
/// parameter if it has one, TLS for a `sips:` URI, else `configured` (the spec's).
pub fn transport_for(uri: &str, configured: super::dialog::Transport) -> super::dialog::Transport {
    use super::dialog::Transport;
    let trimmed = uri.trim().trim_start_matches('<');
    let (scheme, rest) = trimmed.split_once(':').unwrap_or(("", trimmed));
    let params = rest.split(['>', '?']).next().unwrap_or(rest);
    let explicit = params.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("transport")
            .then(|| value.trim().to_ascii_lowercase())
    });
    match explicit.as_deref() {
        Some("udp") if !scheme.eq_ignore_ascii_case("sips") => Transport::Udp,
        Some("tcp") if !scheme.eq_ignore_ascii_case("sips") => Transport::Tcp,
        Some("tls") => Transport::Tls,
        // A sips: URI is TLS over TCP whatever the parameter says (RFC 3261 §26.2.2).
        _ if scheme.eq_ignore_ascii_case("sips") => Transport::Tls,
        _ => configured,
    }
}

/// A recursive SRV query for `name` with transaction `id`.
pub fn srv_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let label = &label.as_bytes()[..label.len().min(63)];
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&TYPE_SRV.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// The SRV records of a response to our query `id` (other record types are skipped).
pub fn parse_srv_response(data: &[u8], id: u16) -> Result<Vec<SrvRecord>, DnsError> {
    if data.len() > MAX_RESPONSE {
        return Err(DnsError::TooLarge);
    }
    let header = data.get(..12).ok_or(DnsError::Invalid("short header"))?;
    if u16::from_be_bytes([header[0], header[1]]) != id {
        return Err(DnsError::Invalid("transaction id mismatch"));
    }
    if header[2] & 0x80 == 0 {
        return Err(DnsError::Invalid("not a response"));
    }
    let rcode = header[3] & 0x0f;
    if rcode == 3 {
        return Ok(Vec::new()); // NXDOMAIN: no SRV, fall back to A/AAAA
    }
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let questions = u16::from_be_bytes([header[4], header[5]]) as usize;
    let answers = (u16::from_be_bytes([header[6], header[7]]) as usize).min(MAX_RECORDS);
    let mut at = 12;
    for _ in 0..questions.min(4) {
        at = skip_name(data, at)? + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        at = skip_name(data, at)?;
        let fixed = data
            .get(at..at + 10)
            .ok_or(DnsError::Invalid("short record"))?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let rdata_at = at + 10;
        let rdata = data
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Invalid("short rdata"))?;
        if rtype == TYPE_SRV {
            if rdata.len() < 7 {
                return Err(DnsError::Invalid("short SRV rdata"));
            }
            records.push(SrvRecord {
                priority: u16::from_be_bytes([rdata[0], rdata[1]]),
                weight: u16::from_be_bytes([rdata[2], rdata[3]]),
                port: u16::from_be_bytes([rdata[4], rdata[5]]),
                target: read_name(data, rdata_at + 6)?,
            });
        }
        at = rdata_at + rdlen;
    }
    // RFC 2782: a single "." target means the service is decidedly not available here.
    records.retain(|r| !r.target.is_empty());
    Ok(records)
}

/// Where the name at `at` ends (after its terminating zero or its pointer).
fn skip_name(data: &[u8], mut at: usize) -> Result<usize, DnsError> {
    for _ in 0..128 {
        let len = *data
            .get(at)
            .ok_or(DnsError::Invalid("name runs past the end"))?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return Ok(at + 2),
            l => at += 1 + l as usize,
        }
    }
    Err(DnsError::Invalid("name too long"))
}

/// Reads a possibly compressed name (RFC 1035 §4.1.4).
fn read_name(data: &[u8], mut at: usize) -> Result<String, DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut hops = 0;
    loop {
        let len = *data
            .get(at)
            .ok_or(DnsError::Invalid("name runs past the end"))?;
        match len {
            0 => return Ok(labels.join(".")),
            l if l & 0xc0 == 0xc0 => {
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(DnsError::Invalid("compression loop"));
                }
                let low = *data.get(at + 1).ok_or(DnsError::Invalid("short pointer"))?;
                at = (((l & 0x3f) as usize) << 8) | low as usize;
            }
            l if l & 0xc0 != 0 => return Err(DnsError::Invalid("bad label type")),
            l => {
                let label = data
                    .get(at + 1..at + 1 + l as usize)
                    .ok_or(DnsError::Invalid("short label"))?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                if labels.len() > 127 {
                    return Err(DnsError::Invalid("name too long"));
                }
                at += 1 + l as usize;
            }
        }
    }
}

/// RFC 2782 order: lowest priority first; within a priority, weighted random selection.
pub fn order_srv(mut records: Vec<SrvRecord>, rng: &mut StdRng) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let mut group: Vec<SrvRecord> = Vec::new();
        while records.first().is_some_and(|r| r.priority == priority) {
            group.push(records.remove(0));
        }
        // Zero weights first, as RFC 2782 asks, so they get a small chance.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| r.weight as u32).sum();
            let pick = rng.random_range(0..=total);
            let mut running = 0;
            let index = group
                .iter()
                .position(|r| {
                    running += r.weight as u32;
                    running >= pick
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::core::dialog::Transport;
    use rand::SeedableRng;

    /// A response to `srv_query(0x1234, "_sip._udp.example.com")` with two SRV answers, the
    /// second target compressed against the first.
    fn response() -> Vec<u8> {
        let mut r = srv_query(0x1234, "_sip._udp.example.com");
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2; // ANCOUNT
        let answer = |r: &mut Vec<u8>, prio: u16, weight: u16, port: u16, target: &[u8]| {
            r.extend_from_slice(&[0xc0, 12]); // owner: the question name
            r.extend_from_slice(&[0, 33, 0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&((6 + target.len()) as u16).to_be_bytes());
            r.extend_from_slice(&prio.to_be_bytes());
            r.extend_from_slice(&weight.to_be_bytes());
            r.extend_from_slice(&port.to_be_bytes());
            r.extend_from_slice(target);
        };
        // "sip1.example.com": label sip1 then a pointer to "example.com" (offset 22 in the question).
        answer(&mut r, 10, 60, 5070, &[4, b's', b'i', b'p', b'1', 0xc0, 22]);
        answer(&mut r, 20, 0, 5080, &[4, b's', b'i', b'p', b'2', 0xc0, 22]);
        r
    }

    #[test]
    fn srv_answers_with_compressed_targets() {
        assert_eq!(
            srv_name("example.com", Transport::Tls),
            "_sips._tcp.example.com"
        );
        let records = parse_srv_response(&response(), 0x1234).unwrap();
        assert_eq!(
            records,
            vec![
                SrvRecord {
                    priority: 10,
                    weight: 60,
                    port: 5070,
                    target: "sip1.example.com".into()
                },
                SrvRecord {
                    priority: 20,
                    weight: 0,
                    port: 5080,
                    target: "sip2.example.com".into()
                },
            ]
        );
        let ordered = order_srv(records, &mut StdRng::seed_from_u64(1));
        assert_eq!(ordered[0].priority, 10);
    }

    #[test]
    fn sips_uris_select_tls_and_the_sips_srv_name() {
        let pick = |uri: &str, configured| {
            let transport = transport_for(uri, configured);
            (transport, srv_name("webex.example", transport))
        };
        assert_eq!(
            pick("sips:meeting@webex.example", Transport::Udp),
            (Transport::Tls, "_sips._tcp.webex.example".into())
        );
        assert_eq!(
            pick("<SIPS:meeting@webex.example;transport=tcp>", Transport::Udp).0,
            Transport::Tls,
            "sips is TLS whatever the transport parameter says"
        );
        assert_eq!(
            pick("sip:sbc.example;lr;transport=TCP", Transport::Udp),
            (Transport::Tcp, "_sip._tcp.webex.example".into())
        );
        assert_eq!(
            pick("sip:sbc.example;transport=tls", Transport::Udp).0,
            Transport::Tls
        );
        assert_eq!(
            pick("sip:pbx.example", Transport::Udp),
            (Transport::Udp, "_sip._udp.webex.example".into())
        );
        assert_eq!(pick("sip:pbx.example", Transport::Tcp).0, Transport::Tcp);
        assert_eq!(
            pick("sip:a@b?transport=tls", Transport::Udp).0,
            Transport::Udp,
            "headers are not parameters"
        );
        assert_eq!(pick("", Transport::Tls).0, Transport::Tls);
    }

    #[test]
    fn bad_responses_are_errors_not_panics() {
        let good = response();
        assert_eq!(
            parse_srv_response(&good, 0x9999),
            Err(DnsError::Invalid("transaction id mismatch"))
        );
        for cut in 0..good.len() {
            let _ = parse_srv_response(&good[..cut], 0x1234);
        }
        let mut looped = good.clone();
        let at = looped.len() - 2;
        looped[at] = 0xc0;
        looped[at + 1] = at as u8; // a pointer to itself
        assert!(parse_srv_response(&looped, 0x1234).is_err());
        let mut nx = good;
        nx[3] = 0x83;
        assert_eq!(parse_srv_response(&nx, 0x1234), Ok(Vec::new()));
    }

    #[test]
    fn weights_decide_within_a_priority() {
        let records: Vec<SrvRecord> = (0..2)
            .map(|i| SrvRecord {
                priority: 1,
                weight: if i == 0 { 1 } else { 99 },
                port: 5060,
                target: format!("h{i}"),
            })
            .collect();
        let heavy_first = (0..200)
            .filter(|seed| {
                order_srv(records.clone(), &mut StdRng::seed_from_u64(*seed))[0].target == "h1"
            })
            .count();
        assert!(heavy_first > 150, "{heavy_first}");
    }
}
