//! Dialog state and request/response construction (RFC 3261 §12, §8.1.1, §8.2.6).
//!
//! A dialog is identified by Call-ID and the two tags; it carries our CSeq, the route set
//! (Record-Route of the 2xx, reversed, §12.1.2) and the remote target (the peer's Contact).
//! Only loose routing (`;lr`, RFC 3261 §16.12) is supported: requests go to the remote target
//! with the route set in Route headers.

use super::message::{SipMessage, StartLine, quote_display_name};
use ezk_sip_types::{Method, Name};

/// The spec's `sip.transport`, with its names as written in Via (`SIP/2.0/UDP`).
pub use crate::spec::Transport;

impl Transport {
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Reliable transports skip retransmissions (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// The `;transport=` URI parameter for our Contact, empty for UDP.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        }
    }
}

/// Who we are in requests outside and inside dialogs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalParty {
    /// Our address of record, `sip:user@domain`.
    pub aor: String,
    pub display_name: Option<String>,
    /// `sip:user@ip:port;transport=…`, where the peer reaches us.
    pub contact: String,
    /// Via sent-by `ip:port`.
    pub sent_by: String,
    pub transport: Transport,
    /// Outbound proxy as a Route URI (with `;lr`), for requests outside a dialog.
    pub outbound_proxy: Option<String>,
    pub user_agent: String,
    /// RFC 5626 instance id (`urn:uuid:…`), set on connection-oriented transports: REGISTER
    /// carries it with `reg-id`, and our dialog Contacts carry `;ob`, so a proxy that knows
    /// outbound sends in-dialog requests back over the connection we opened.
    pub instance: Option<String>,
}

impl LocalParty {
    pub fn from_value(&self, tag: &str) -> String {
        match &self.display_name {
            Some(name) => format!("{} <{}>;tag={tag}", quote_display_name(name), self.aor),
            None => format!("<{}>;tag={tag}", self.aor),
        }
    }

    /// Our Via. On TCP and TLS it carries RFC 5923's `alias`: the peer may send requests
    /// for `sent_by` over the connection this one arrived on, instead of opening a new one.
    pub fn via_value(&self, branch: &str) -> String {
        let alias = if self.transport.is_reliable() {
            ";alias"
        } else {
            ""
        };
        format!(
            "SIP/2.0/{} {};branch={branch};rport{alias}",
            self.transport.via_name(),
            self.sent_by
        )
    }

    /// Contact of INVITEs and in-dialog requests: with `;ob` (RFC 5626 §5.4) when we use
    /// outbound on this flow.
    pub fn dialog_contact(&self) -> String {
        match self.instance {
            Some(_) => format!("<{};ob>", self.contact),
            None => format!("<{}>", self.contact),
        }
    }

    /// Contact of REGISTER: with `+sip.instance` and `reg-id` (RFC 5626 §4.2.1) when we use
    /// outbound on this flow.
    pub fn register_contact(&self, expires: u32) -> String {
        match &self.instance {
            Some(instance) => format!(
                "<{}>;+sip.instance=\"<{instance}>\";reg-id=1;expires={expires}",
                self.contact
            ),
            None => format!("<{}>;expires={expires}", self.contact),
        }
    }
}

/// A stable RFC 5626 instance id for an address of record (RFC 4122 §4.3 name-based UUID, SHA-1
/// of the AOR and the host name): the same after a restart, so the registrar replaces the old
/// binding instead of adding one.
pub fn instance_id(aor: &str, host: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::new()
        .chain_update(host.as_bytes())
        .chain_update(b"\n")
        .chain_update(aor.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    for (dst, src) in b.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |from: usize, to: usize| hex.get(from..to).unwrap_or_default();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

/// An established dialog (we are always the UAC that created it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// `<sip:…>` as the To header of our in-dialog requests (no tag).
    pub remote_uri: String,
    /// The peer's Contact URI.
    pub remote_target: String,
    /// Route URIs, in the order they are to be written.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
}

impl Dialog {
    /// The dialog a 2xx (or 1xx with To tag) to our INVITE creates.
    pub fn from_response(
        response: &SipMessage,
        call_id: &str,
        local_tag: &str,
        remote_uri: &str,
        invite_cseq: u32,
    ) -> Option<Dialog> {
        let remote_tag = response.to_tag()?;
        let remote_target = match response.contacts() {
            super::message::Contacts::List(list) => list.first().map(|c| c.uri.uri.clone())?,
            super::message::Contacts::Wildcard => return None,
        };
        let mut route_set = response.record_route();
        route_set.reverse();
        Some(Dialog {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag,
            remote_uri: remote_uri.to_string(),
            remote_target: print_uri(&remote_target),
            route_set,
            local_cseq: invite_cseq,
            remote_cseq: None,
        })
    }

    /// An in-dialog request with the next CSeq (ACK and CANCEL reuse theirs: use
    /// [`Dialog::request_with_cseq`]). Via is added by the caller.
    pub fn request(&mut self, local: &LocalParty, method: Method) -> SipMessage {
        self.local_cseq += 1;
        self.request_with_cseq(local, method, self.local_cseq)
    }

    pub fn request_with_cseq(&self, local: &LocalParty, method: Method, cseq: u32) -> SipMessage {
        let mut msg = SipMessage::request(method.clone(), self.remote_target.clone());
        msg.push(Name::MAX_FORWARDS, "70");
        for route in &self.route_set {
            msg.push(Name::ROUTE, route.clone());
        }
        msg.push(Name::FROM, local.from_value(&self.local_tag));
        msg.push(
            Name::TO,
            format!("{};tag={}", self.remote_uri, self.remote_tag),
        );
        msg.push(Name::CALL_ID, self.call_id.clone());
        msg.push(Name::CSEQ, format!("{cseq} {method}"));
        msg.push(Name::CONTACT, local.dialog_contact());
        msg.push(Name::USER_AGENT, local.user_agent.clone());
        msg
    }
}

/// Prints an ezk URI the way it appears inside `<…>`.
pub fn print_uri(uri: &ezk_sip_types::uri::SipUri) -> String {
    use ezk_sip_types::print::{AppendCtx, PrintCtx, UriContext};
    let ctx = PrintCtx {
        method: None,
        uri: Some(UriContext::Contact),
    };
    uri.print_ctx(ctx).to_string()
}

/// Inserts a Via (topmost) on a request that has none yet.
pub fn with_via(mut msg: SipMessage, local: &LocalParty, branch: &str) -> SipMessage {
    msg.headers.insert_front(Name::VIA, local.via_value(branch));
    msg
}

/// A response to `request` (§8.2.6): Via, From, To, Call-ID and CSeq copied; our tag added to To
/// when it has none and `local_tag` is given.
pub fn response_to(
    request: &SipMessage,
    code: u16,
    reason: &str,
    local_tag: Option<&str>,
) -> SipMessage {
    let mut resp = SipMessage::response(code, reason);
    for via in request.headers_raw(&Name::VIA) {
        resp.push(Name::VIA, via.to_string());
    }
    if let Some(from) = request.header(&Name::FROM) {
        resp.push(Name::FROM, from.to_string());
    }
    if let Some(to) = request.header(&Name::TO) {
        let to = match (request.to_tag(), local_tag) {
            (None, Some(tag)) if code > 100 => format!("{to};tag={tag}"),
            _ => to.to_string(),
        };
        resp.push(Name::TO, to);
    }
    for name in [Name::CALL_ID, Name::CSEQ] {
        if let Some(value) = request.header(&name) {
            resp.push(name, value.to_string());
        }
    }
    resp
}

/// The answer to a request that matches no call, registration or transaction of ours
/// (§8.2, §12.2.2): 481 inside a dialog we do not know, 603 to an unsolicited INVITE (we never
/// take calls), 200 to OPTIONS pings, 405 otherwise. ACK gets nothing.
pub fn stateless_response(request: &SipMessage, local_tag: &str) -> Option<SipMessage> {
    let method = request.method()?;
    let (code, reason) = if *method == Method::ACK {
        return None;
    } else if request.to_tag().is_some() {
        (481, "Call/Transaction Does Not Exist")
    } else if *method == Method::INVITE {
        (603, "Decline")
    } else if *method == Method::OPTIONS {
        (200, "OK")
    } else {
        (405, "Method Not Allowed")
    };
    let mut resp = response_to(request, code, reason, Some(local_tag));
    if code != 481 && code != 603 {
        resp.push(Name::ALLOW, ALLOW);
    }
    Some(resp)
}

/// The methods we accept inside a dialog, for Allow.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// The request line's URI.
pub fn request_uri(msg: &SipMessage) -> &str {
    match &msg.start {
        StartLine::Request { uri, .. } => uri,
        StartLine::Response { .. } => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::core::message::{Framed, parse_datagram};

    fn local() -> LocalParty {
        LocalParty {
            aor: "sip:1001@pbx.example.com".into(),
            display_name: Some("Broad \"cast\"".into()),
            contact: "sip:1001@192.0.2.10:5060".into(),
            sent_by: "192.0.2.10:5060".into(),
            transport: Transport::Udp,
            outbound_proxy: None,
            user_agent: "sipcast".into(),
            instance: None,
        }
    }

    #[test]
    fn reliable_transports_carry_alias_ob_and_the_instance() {
        let udp = local();
        assert!(
            udp.via_value("z9hG4bK1")
                .ends_with(";branch=z9hG4bK1;rport")
        );
        assert_eq!(udp.dialog_contact(), "<sip:1001@192.0.2.10:5060>");
        assert_eq!(
            udp.register_contact(60),
            "<sip:1001@192.0.2.10:5060>;expires=60"
        );
        let instance = instance_id("sip:1001@pbx.example.com", "host-a");
        let tls = LocalParty {
            contact: "sip:1001@192.0.2.10:5060;transport=tls".into(),
            transport: Transport::Tls,
            instance: Some(instance.clone()),
            ..local()
        };
        assert_eq!(
            tls.via_value("z9hG4bK1"),
            "SIP/2.0/TLS 192.0.2.10:5060;branch=z9hG4bK1;rport;alias"
        );
        assert_eq!(
            tls.dialog_contact(),
            "<sip:1001@192.0.2.10:5060;transport=tls;ob>"
        );
        assert_eq!(
            tls.register_contact(3600),
            format!(
                "<sip:1001@192.0.2.10:5060;transport=tls>;+sip.instance=\"<{instance}>\";reg-id=1;expires=3600"
            )
        );
        // Stable across restarts, different per AOR, shaped as a version-5 UUID.
        assert_eq!(instance, instance_id("sip:1001@pbx.example.com", "host-a"));
        assert_ne!(instance, instance_id("sip:1002@pbx.example.com", "host-a"));
        let uuid = instance.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'5');
        // The Via and Contact parse back.
        let text = format!(
            "REGISTER sip:b SIP/2.0\r\nVia: {}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\
             Call-ID: x\r\nCSeq: 1 REGISTER\r\nContact: {}\r\nContent-Length: 0\r\n\r\n",
            tls.via_value("z9hG4bK9"),
            tls.register_contact(5)
        );
        let parsed = parse_datagram(text.as_bytes());
        assert!(
            matches!(parsed, Ok(Framed::Message(..))),
            "{parsed:?}\n{text}"
        );
    }

    const OK: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n\
        Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n\
        From: <sip:1001@pbx.example.com>;tag=a\r\nTo: <sip:bob@example.com>;tag=b\r\n\
        Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@198.51.100.9:5070;transport=udp>\r\n\r\n";

    #[test]
    fn dialog_from_2xx_reverses_record_route_and_targets_contact() {
        let Ok(Framed::Message(resp, _)) = parse_datagram(OK.as_bytes()) else {
            panic!()
        };
        let mut dialog =
            Dialog::from_response(&resp, "c1", "a", "<sip:bob@example.com>", 1).unwrap();
        assert_eq!(dialog.remote_tag, "b");
        assert_eq!(
            dialog.route_set,
            vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        let bye = with_via(dialog.request(&local(), Method::BYE), &local(), "z9hG4bK2");
        let text = String::from_utf8(bye.to_bytes().to_vec()).unwrap();
        assert!(text.starts_with("BYE sip:bob@198.51.100.9:5070;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK2;rport\r\n"), "{text}");
        assert!(
            text.contains("Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n")
        );
        assert!(text.contains("From: \"Broad \\\"cast\\\"\" <sip:1001@pbx.example.com>;tag=a\r\n"));
        assert!(text.contains("CSeq: 2 BYE\r\n"));
        let Ok(Framed::Message(again, _)) = parse_datagram(text.as_bytes()) else {
            panic!("{text}")
        };
        assert_eq!(again.from_tag().as_deref(), Some("a"));
    }

    #[test]
    fn requests_nobody_knows_get_481_603_200_or_405() {
        let base = "sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bKa\r\nFrom: <sip:a>;tag=1\r\nCall-ID: k\r\n";
        let code = |method: &str, to: &str| {
            let text = format!("{method} {base}To: {to}\r\nCSeq: 5 {method}\r\n\r\n");
            let Ok(Framed::Message(req, _)) = parse_datagram(text.as_bytes()) else {
                panic!("{text}")
            };
            stateless_response(&req, "t").map(|r| r.status().unwrap_or(0))
        };
        assert_eq!(code("BYE", "<sip:b>;tag=2"), Some(481));
        assert_eq!(code("INVITE", "<sip:b>"), Some(603));
        assert_eq!(code("OPTIONS", "<sip:b>"), Some(200));
        assert_eq!(code("SUBSCRIBE", "<sip:b>"), Some(405));
        assert_eq!(code("ACK", "<sip:b>;tag=2"), None);
    }

    #[test]
    fn responses_copy_the_transaction_headers_and_add_our_tag() {
        let req = "BYE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP h2;branch=z9hG4bKb\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: k\r\nCSeq: 5 BYE\r\n\r\n";
        let Ok(Framed::Message(req, _)) = parse_datagram(req.as_bytes()) else {
            panic!()
        };
        let resp = response_to(&req, 481, "Call/Transaction Does Not Exist", Some("zz"));
        assert_eq!(resp.headers_raw(&Name::VIA).count(), 2);
        assert_eq!(resp.to_tag().as_deref(), Some("zz"));
        assert_eq!(resp.cseq().map(|c| c.cseq), Some(5));
    }
}
