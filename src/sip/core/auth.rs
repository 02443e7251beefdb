//! Answering 401/407 challenges for one call or registration (RFC 3261 §22.2–§22.3).
//!
//! The password is read from its [`SecretSource`] at every challenge, so a rotated password file
//! applies without restart. Loops are cut: a second challenge after credentials were sent ends
//! the attempt unless the server said `stale=true` (then one more try with the new nonce).

use super::CallEnd;
use super::digest::{self, Challenge, DigestCredentials, DigestRequest};
use super::message::SipMessage;
use super::random_token;
use crate::secret::{Secret, SecretSource};
use ezk_sip_types::Name;
use rand::rngs::StdRng;

/// Most challenges answered in a row (one normal, one stale).
const MAX_ROUNDS: u32 = 2;

#[derive(Debug, Clone)]
pub struct Authenticator {
    username: String,
    password: Option<SecretSource>,
    current: Option<(Challenge, bool)>,
    secret: Option<Secret>,
    nonce_count: u32,
    rounds: u32,
}

impl Authenticator {
    pub fn new(username: impl Into<String>, password: Option<SecretSource>) -> Self {
        Authenticator {
            username: username.into(),
            password,
            current: None,
            secret: None,
            nonce_count: 0,
            rounds: 0,
        }
    }

    /// Takes the challenge of a 401/407. `Err` says why this attempt ends.
    pub fn challenge(&mut self, response: &SipMessage) -> Result<(), CallEnd> {
        let status = response.status().unwrap_or(401);
        let proxy = status == 407;
        let header = if proxy {
            Name::PROXY_AUTHENTICATE
        } else {
            Name::WWW_AUTHENTICATE
        };
        let Some(challenge) = digest::best_challenge(response.headers_raw(&header)) else {
            return Err(CallEnd::status(status, "no supported Digest challenge"));
        };
        let Some(source) = &self.password else {
            return Err(CallEnd::status(
                status,
                "authentication required but no password is configured",
            ));
        };
        if self.rounds >= MAX_ROUNDS || (self.rounds >= 1 && !challenge.stale) {
            return Err(CallEnd::status(
                status,
                format!("credentials for {} rejected", self.username),
            ));
        }
        let secret = source.read().map_err(|err| {
            CallEnd::status(status, format!("cannot read the SIP password: {err}"))
        })?;
        self.rounds += 1;
        let same_nonce = self
            .current
            .as_ref()
            .is_some_and(|(c, _)| c.nonce == challenge.nonce);
        if !same_nonce {
            self.nonce_count = 0;
        }
        self.current = Some((challenge, proxy));
        self.secret = Some(secret);
        Ok(())
    }

    /// A final non-challenge response: the credentials worked (or did not matter).
    pub fn accepted(&mut self) {
        self.rounds = 0;
    }

    /// Adds (Proxy-)Authorization for the current challenge to an outgoing request.
    pub fn authorize(&mut self, msg: &mut SipMessage, rng: &mut StdRng) {
        let (Some((challenge, proxy)), Some(secret)) = (&self.current, &self.secret) else {
            return;
        };
        let Some(method) = msg.method().map(|m| m.to_string()) else {
            return;
        };
        self.nonce_count += 1;
        let cnonce = random_token(rng, 16);
        let uri = super::dialog::request_uri(msg).to_string();
        let value = digest::authorization(
            challenge,
            DigestCredentials {
                username: &self.username,
                password: secret.expose(),
                cnonce: &cnonce,
                nc: self.nonce_count,
            },
            DigestRequest {
                method: &method,
                uri: &uri,
                body: &msg.body,
            },
        );
        let name = if *proxy {
            Name::PROXY_AUTHORIZATION
        } else {
            Name::AUTHORIZATION
        };
        msg.headers.remove(&name);
        msg.push(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::core::message::{Framed, parse_datagram};
    use rand::SeedableRng;

    #[test]
    fn sipp_401_with_auth_and_auth_int_is_answered_with_qop_auth() {
        let raw = include_bytes!("../../../testdata/sip/sipp_401_challenge.txt");
        let Ok(Framed::Message(challenge, _)) = parse_datagram(raw) else {
            panic!("capture parses")
        };
        let mut auth = Authenticator::new(
            "alice",
            Some(SecretSource::Inline(Secret::new("wonderland"))),
        );
        auth.challenge(&challenge).unwrap();
        let mut request = crate::sip::core::message::SipMessage::request(
            ezk_sip_types::Method::INVITE,
            "sip:service@127.0.0.1",
        );
        auth.authorize(&mut request, &mut StdRng::seed_from_u64(1));
        let header = request.header(&Name::AUTHORIZATION).unwrap();
        for part in [
            "realm=\"sipp.test\"",
            "qop=auth,",
            "opaque=\"op4que\"",
            "algorithm=MD5",
            "nc=00000001",
        ] {
            assert!(header.contains(part), "{part} missing in {header}");
        }
    }

    #[test]
    fn the_password_never_shows_in_debug_or_errors() {
        let mut auth = Authenticator::new(
            "1001",
            Some(SecretSource::Inline(Secret::new("canary-pw-77"))),
        );
        let text = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: digest realm=\"r\", nonce=\"n\"\r\n\r\n";
        let Ok(Framed::Message(challenge, _)) = parse_datagram(text.as_bytes()) else {
            panic!()
        };
        auth.challenge(&challenge)
            .expect("lower-case digest scheme accepted");
        let mut request = crate::sip::core::message::SipMessage::request(
            ezk_sip_types::Method::REGISTER,
            "sip:r",
        );
        auth.authorize(&mut request, &mut StdRng::seed_from_u64(1));
        assert!(request.header(&Name::AUTHORIZATION).is_some());
        assert!(!format!("{auth:?}").contains("canary"));
        let second = auth.challenge(&challenge).unwrap_err();
        assert!(!format!("{second:?}").contains("canary"));
    }
}
