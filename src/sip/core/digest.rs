//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616).
//!
//! Our own code, not ezk-sip-auth: that crate computes every `-sess` variant and repeated
//! auth-int wrongly. The challenge is read from ezk-sip-types' typed `WWW-Authenticate` /
//! `Proxy-Authenticate` (the message façade has already normalised a lower-case `digest`).

use ezk_sip_types::header::typed::{
    AkaVersion, Algorithm, AlgorithmValue, AuthChallenge, DigestChallenge, QopOption,
};
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The hash functions we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl DigestAlgorithm {
    fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess)
    }

    /// Preference when a server offers several challenges (RFC 7616 §3.7: strongest first).
    fn strength(self) -> u8 {
        match self {
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => 2,
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => 1,
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex::encode(Md5::digest(data)),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
                hex::encode(Sha256::digest(data))
            }
        }
    }

    fn hash_bytes(self, data: &[u8]) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex::encode(Md5::digest(data)),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
                hex::encode(Sha256::digest(data))
            }
        }
    }
}

/// Quality of protection we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// RFC 2069 compatibility: no qop offered.
    None,
    Auth,
    AuthInt,
}

/// A Digest challenge we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub stale: bool,
    pub algorithm: DigestAlgorithm,
    pub qop: Qop,
}

impl Challenge {
    fn from_ezk(challenge: &DigestChallenge) -> Option<Challenge> {
        let algorithm = match &challenge.algorithm {
            Algorithm::AlgorithmValue(AlgorithmValue::MD5) => DigestAlgorithm::Md5,
            Algorithm::AlgorithmValue(AlgorithmValue::MD5Sess) => DigestAlgorithm::Md5Sess,
            Algorithm::AlgorithmValue(AlgorithmValue::SHA256) => DigestAlgorithm::Sha256,
            Algorithm::AlgorithmValue(AlgorithmValue::SHA256Sess) => DigestAlgorithm::Sha256Sess,
            Algorithm::AlgorithmValue(_) | Algorithm::AkaNamespace((AkaVersion::Other(_), _)) => {
                return None;
            }
            Algorithm::AkaNamespace(_) => return None,
        };
        let offered = |wanted: &str| {
            challenge.qop.iter().any(|q| match q {
                QopOption::Auth => wanted == "auth",
                QopOption::AuthInt => wanted == "auth-int",
                QopOption::Other(other) => other.trim_matches('"').eq_ignore_ascii_case(wanted),
            })
        };
        let qop = if challenge.qop.is_empty() {
            Qop::None
        } else if offered("auth") {
            Qop::Auth
        } else if offered("auth-int") {
            Qop::AuthInt
        } else {
            return None;
        };
        Some(Challenge {
            realm: challenge.realm.to_string(),
            nonce: challenge.nonce.to_string(),
            opaque: challenge.opaque.as_ref().map(|o| o.to_string()),
            stale: challenge.stale,
            algorithm,
            qop,
        })
    }
}

/// Picks the strongest Digest challenge we support among header values
/// (`WWW-Authenticate` or `Proxy-Authenticate`).
pub fn best_challenge<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    values
        .filter_map(|value| value.parse::<AuthChallengeText>().ok())
        .filter_map(|c| c.0)
        .max_by_key(|c| c.algorithm.strength())
}

/// Adapter so header text parses through ezk-sip-types' own parser.
struct AuthChallengeText(Option<Challenge>);

impl std::str::FromStr for AuthChallengeText {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        use ezk_sip_types::header::HeaderParse;
        let src = bytesstr::BytesStr::from(value.to_string());
        let parsed = AuthChallenge::parse(src.as_ref(), src.as_str());
        match parsed {
            Ok((_, AuthChallenge::Digest(digest))) => {
                Ok(AuthChallengeText(Challenge::from_ezk(&digest)))
            }
            _ => Err(()),
        }
    }
}

/// What the response is computed over.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
}

/// Credentials for one answer. `cnonce` and `nc` come from the caller so the computation is pure.
#[derive(Debug, Clone, Copy)]
pub struct DigestCredentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub cnonce: &'a str,
    pub nc: u32,
}

/// The `response` value (RFC 7616 §3.4.1).
pub fn response(
    challenge: &Challenge,
    creds: DigestCredentials<'_>,
    req: DigestRequest<'_>,
) -> String {
    let alg = challenge.algorithm;
    let nc = format!("{:08x}", creds.nc);
    let mut ha1 = alg.hash(&format!(
        "{}:{}:{}",
        creds.username, challenge.realm, creds.password
    ));
    if alg.is_sess() {
        ha1 = alg.hash(&format!("{ha1}:{}:{}", challenge.nonce, creds.cnonce));
    }
    let ha2 = match challenge.qop {
        Qop::AuthInt => alg.hash(&format!(
            "{}:{}:{}",
            req.method,
            req.uri,
            alg.hash_bytes(req.body)
        )),
        Qop::Auth | Qop::None => alg.hash(&format!("{}:{}", req.method, req.uri)),
    };
    match challenge.qop {
        Qop::None => alg.hash(&format!("{ha1}:{}:{ha2}", challenge.nonce)),
        Qop::Auth | Qop::AuthInt => {
            let qop = if challenge.qop == Qop::Auth {
                "auth"
            } else {
                "auth-int"
            };
            alg.hash(&format!(
                "{ha1}:{}:{nc}:{}:{qop}:{ha2}",
                challenge.nonce, creds.cnonce
            ))
        }
    }
}

/// The full `Authorization` / `Proxy-Authorization` header value.
pub fn authorization(
    challenge: &Challenge,
    creds: DigestCredentials<'_>,
    req: DigestRequest<'_>,
) -> String {
    let resp = response(challenge, creds, req);
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        escape(creds.username),
        escape(&challenge.realm),
        escape(&challenge.nonce),
        escape(req.uri),
        resp,
        challenge.algorithm.name()
    );
    if let Some(opaque) = &challenge.opaque {
        out.push_str(&format!(", opaque=\"{}\"", escape(opaque)));
    }
    if challenge.qop != Qop::None {
        let qop = if challenge.qop == Qop::Auth {
            "auth"
        } else {
            "auth-int"
        };
        out.push_str(&format!(
            ", qop={qop}, nc={:08x}, cnonce=\"{}\"",
            creds.nc,
            escape(creds.cnonce)
        ));
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const RFC7616_MD5: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const CREDS: DigestCredentials<'static> = DigestCredentials {
        username: "Mufasa",
        password: "Circle of Life",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc: 1,
    };
    const REQ: DigestRequest<'static> = DigestRequest {
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
    };

    #[test]
    fn rfc7616_md5_vector() {
        let c = best_challenge([RFC7616_MD5].into_iter()).unwrap();
        assert_eq!(c.qop, Qop::Auth);
        assert_eq!(response(&c, CREDS, REQ), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_sha256_vector_and_preference() {
        let sha = RFC7616_MD5.replace("algorithm=MD5", "algorithm=SHA-256");
        let c = best_challenge([RFC7616_MD5, sha.as_str()].into_iter()).unwrap();
        assert_eq!(c.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(
            response(&c, CREDS, REQ),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn sess_hashes_nonce_and_cnonce_into_ha1() {
        let sess = RFC7616_MD5.replace("algorithm=MD5", "algorithm=MD5-sess");
        let c = best_challenge([sess.as_str()].into_iter()).unwrap();
        let alg = DigestAlgorithm::Md5;
        let ha1 = alg.hash(
            &alg.hash("Mufasa:http-auth@example.org:Circle of Life")
                .to_string(),
        );
        let _ = ha1;
        let ha1 = alg.hash(&format!(
            "{}:{}:{}",
            alg.hash("Mufasa:http-auth@example.org:Circle of Life"),
            c.nonce,
            CREDS.cnonce
        ));
        let ha2 = alg.hash("GET:/dir/index.html");
        let expected = alg.hash(&format!(
            "{ha1}:{}:00000001:{}:auth:{ha2}",
            c.nonce, CREDS.cnonce
        ));
        assert_eq!(response(&c, CREDS, REQ), expected);
    }

    #[test]
    fn lower_case_scheme_and_rfc2069_and_stale() {
        let m = "Digest realm=\"asterisk\", nonce=\"1a2b\", stale=TRUE";
        let c = best_challenge([m].into_iter()).unwrap();
        assert!(c.stale);
        assert_eq!(c.qop, Qop::None);
        // RFC 2617 §3.5 example (realm testrealm@host.com) computed without qop:
        let header = authorization(&c, CREDS, REQ);
        assert!(header.starts_with("Digest username=\"Mufasa\""), "{header}");
        assert!(!header.contains("qop="));
    }

    #[test]
    fn nonce_count_is_eight_lower_hex_digits() {
        let c = best_challenge([RFC7616_MD5].into_iter()).unwrap();
        let header = authorization(&c, DigestCredentials { nc: 0xab, ..CREDS }, REQ);
        assert!(header.contains("nc=000000ab"), "{header}");
    }

    #[test]
    fn unsupported_algorithms_are_skipped() {
        let aka = RFC7616_MD5.replace("algorithm=MD5", "algorithm=AKAv1-MD5");
        assert_eq!(best_challenge([aka.as_str()].into_iter()), None);
        assert_eq!(best_challenge(["Basic realm=\"x\""].into_iter()), None);
    }
}
