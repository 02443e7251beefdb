//! SDES (RFC 4568): the `a=crypto:` attribute that carries SRTP master keys in SDP, and the
//! offer/answer choice of a suite.
//!
//! `a=crypto:TAG SUITE inline:KEY_SALT_BASE64[|LIFETIME][|MKI:LENGTH] [SESSION-PARAMS]`
//!
//! Each side puts the key *it sends with* in its own SDP (§6.1): the offer's key protects the
//! offerer's media, the answer's key the answerer's. Lines are parsed bounded and never panic;
//! a line we cannot use (unknown suite, several keys, a session parameter we do not implement)
//! is an error naming the reason, and offer/answer skips it. Keys are secrets: `Debug` prints
//! `****`, and only [`CryptoAttribute::to_sdp_line`] writes one out.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use thiserror::Error;
use zeroize::Zeroize;

use super::{KeyError, MasterKey, Mki, SrtpSuite};

/// Longest crypto line we read; a real one is under 120 bytes.
pub const MAX_LINE_LEN: usize = 512;
/// Most crypto lines looked at in one media description.
pub const MAX_ATTRIBUTES: usize = 16;
/// Longest piece of peer text quoted back in an error.
const MAX_QUOTE: usize = 40;
/// The largest lifetime `2^N` we accept: SRTP indices are 48 bits.
const MAX_LIFETIME_EXPONENT: u32 = 48;

/// Decodes with or without `=` padding: both are seen in the wild.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SdesError {
    #[error("crypto line longer than {MAX_LINE_LEN} bytes")]
    TooLong,
    #[error("crypto tag {0:?} is not 1 to 9 digits")]
    BadTag(String),
    #[error("crypto line has no {0}")]
    Missing(&'static str),
    #[error("unsupported crypto suite {0:?}")]
    UnknownSuite(String),
    #[error("key method {0:?} is not inline")]
    KeyMethod(String),
    #[error("more than one key in one crypto line (needs MKI re-keying, not supported)")]
    SeveralKeys,
    #[error("key is not base64")]
    Base64,
    #[error(transparent)]
    Key(#[from] KeyError),
    // The three below sit beside the key in `inline:`: their text is never quoted, in case a
    // peer put key material there.
    #[error("key lifetime is not a number or 2^N with N <= 48")]
    Lifetime,
    #[error("MKI is not VALUE:LENGTH with a length of 1 to 4 bytes")]
    Mki,
    #[error("unexpected key parameter after the key")]
    KeyParameter,
    #[error("unsupported session parameter {0:?}")]
    SessionParameter(String),
}

/// One `a=crypto:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// Identifies the line within the media description; the answer repeats the chosen one.
    pub tag: u32,
    /// Master key and salt, with the suite.
    pub key: MasterKey,
    /// Packets the key may protect (`|2^31`); `None`: the suite's maximum.
    pub lifetime: Option<u64>,
    pub mki: Option<Mki>,
}

impl CryptoAttribute {
    pub fn suite(&self) -> SrtpSuite {
        self.key.suite()
    }

    /// Parses a line: `a=crypto:...`, `crypto:...`, or the attribute's value alone.
    pub fn parse(line: &str) -> Result<CryptoAttribute, SdesError> {
        if line.len() > MAX_LINE_LEN {
            return Err(SdesError::TooLong);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let value = line.strip_prefix("a=").unwrap_or(line);
        let value = value.strip_prefix("crypto:").unwrap_or(value);
        let mut fields = value.split_ascii_whitespace();
        let tag_text = fields.next().ok_or(SdesError::Missing("tag"))?;
        let tag = (1..=9)
            .contains(&tag_text.len())
            .then_some(tag_text)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| SdesError::BadTag(quote(tag_text)))?;
        let suite_name = fields.next().ok_or(SdesError::Missing("suite"))?;
        let suite = SrtpSuite::from_sdes_name(suite_name)
            .ok_or_else(|| SdesError::UnknownSuite(quote(suite_name)))?;
        let key_params = fields.next().ok_or(SdesError::Missing("key"))?;
        if key_params.contains(';') {
            return Err(SdesError::SeveralKeys);
        }
        let inline = key_params.strip_prefix("inline:").ok_or_else(|| {
            // A method is a short word (`inline`, `uri`); anything else may be a bare key.
            let method = key_params.split(':').next().unwrap_or_default();
            let word = method.len() <= 16 && method.bytes().all(|b| b.is_ascii_alphabetic());
            SdesError::KeyMethod(if word { quote(method) } else { "?".into() })
        })?;
        let mut parts = inline.split('|');
        let key = decode_key(suite, parts.next().unwrap_or_default())?;
        let mut lifetime = None;
        let mut mki = None;
        for part in parts {
            if part.contains(':') && mki.is_none() {
                mki = Some(parse_mki(part)?);
            } else if lifetime.is_none() && mki.is_none() {
                lifetime = Some(parse_lifetime(part)?);
            } else {
                return Err(SdesError::KeyParameter);
            }
        }
        for param in fields {
            // A window-size hint is only a hint (§6.3.7); ours is 64 packets whatever it says.
            let is_wsh = param.strip_prefix("WSH=").is_some_and(|n| {
                !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit())
            });
            if !is_wsh {
                return Err(SdesError::SessionParameter(quote(param)));
            }
        }
        Ok(CryptoAttribute {
            tag,
            key,
            lifetime,
            mki,
        })
    }

    /// The whole `a=crypto:` line, without line ending. Contains the key: for the SDP only.
    pub fn to_sdp_line(&self) -> String {
        let mut key_and_salt = [0u8; 64];
        let len = self.key.write_key_and_salt(&mut key_and_salt);
        let mut line = format!("a=crypto:{} {} inline:", self.tag, self.suite());
        STANDARD.encode_string(key_and_salt.get(..len).unwrap_or_default(), &mut line);
        key_and_salt.zeroize();
        match self.lifetime {
            Some(lifetime) if lifetime.is_power_of_two() => {
                line.push_str(&format!("|2^{}", lifetime.trailing_zeros()));
            }
            Some(lifetime) => line.push_str(&format!("|{lifetime}")),
            None => {}
        }
        if let Some(mki) = self.mki {
            line.push_str(&format!("|{}:{}", mki.value(), mki.wire_len()));
        }
        line
    }
}

/// Parses every crypto line of a media description, up to [`MAX_ATTRIBUTES`]: the usable ones,
/// and the skipped ones with the reason (for the log and for status).
pub fn parse_all<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> (Vec<CryptoAttribute>, Vec<SdesError>) {
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for line in lines.into_iter().take(MAX_ATTRIBUTES) {
        match CryptoAttribute::parse(line) {
            Ok(attribute) => usable.push(attribute),
            Err(reason) => skipped.push(reason),
        }
    }
    (usable, skipped)
}

/// A key as one side sends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesKey {
    pub key: MasterKey,
    pub mki: Option<Mki>,
    pub lifetime: Option<u64>,
}

impl From<&CryptoAttribute> for SdesKey {
    fn from(attribute: &CryptoAttribute) -> SdesKey {
        SdesKey {
            key: attribute.key.clone(),
            mki: attribute.mki,
            lifetime: attribute.lifetime,
        }
    }
}

/// The outcome of offer/answer: give it to [`super::SrtpSession::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedSrtp {
    pub suite: SrtpSuite,
    pub tag: u32,
    /// Ours: protects what we send.
    pub local: SdesKey,
    /// The peer's: unprotects what we receive.
    pub remote: SdesKey,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NegotiationError {
    #[error("no common crypto suite (offered: {offered})")]
    NoCommonSuite { offered: String },
    #[error("the answer has no usable crypto line")]
    NoCryptoInAnswer,
    #[error("the answer's crypto tag {tag} is not one we offered")]
    UnknownTag { tag: u32 },
    #[error("the answer's crypto tag {tag} has suite {answered}, we offered {offered}")]
    SuiteMismatch {
        tag: u32,
        offered: SrtpSuite,
        answered: SrtpSuite,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Our offer: one crypto line per suite, each with its own fresh key.
#[derive(Debug, Clone)]
pub struct SdesOffer {
    pub attributes: Vec<CryptoAttribute>,
}

impl SdesOffer {
    /// Fresh keys from the OS RNG for `suites`, tagged 1, 2, … in that (preference) order.
    pub fn generate(suites: &[SrtpSuite]) -> Result<SdesOffer, KeyError> {
        let mut attributes = Vec::with_capacity(suites.len());
        for (tag, suite) in (1u32..).zip(suites) {
            attributes.push(CryptoAttribute {
                tag,
                key: MasterKey::generate(*suite)?,
                lifetime: None,
                mki: None,
            });
        }
        Ok(SdesOffer { attributes })
    }

    /// The `a=crypto:` lines to put in the offer's media description.
    pub fn sdp_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.attributes.iter().map(CryptoAttribute::to_sdp_line)
    }

    /// Takes the answer's crypto lines (already parsed): the first whose tag we offered, with
    /// the same suite, decides.
    pub fn accept_answer(
        &self,
        answer: &[CryptoAttribute],
    ) -> Result<NegotiatedSrtp, NegotiationError> {
        let chosen = answer.first().ok_or(NegotiationError::NoCryptoInAnswer)?;
        let ours = self
            .attributes
            .iter()
            .find(|ours| ours.tag == chosen.tag)
            .ok_or(NegotiationError::UnknownTag { tag: chosen.tag })?;
        if ours.suite() != chosen.suite() {
            return Err(NegotiationError::SuiteMismatch {
                tag: chosen.tag,
                offered: ours.suite(),
                answered: chosen.suite(),
            });
        }
        Ok(NegotiatedSrtp {
            suite: ours.suite(),
            tag: ours.tag,
            local: SdesKey::from(ours),
            remote: SdesKey::from(chosen),
        })
    }
}

/// As the answerer: the first offered line whose suite is in `supported` (the offerer lists
/// its lines in its preference order, RFC 4568 §5.1.1), and our answer line with a fresh key of
/// that suite and the same tag.
pub fn answer(
    offered: &[CryptoAttribute],
    supported: &[SrtpSuite],
) -> Result<(CryptoAttribute, NegotiatedSrtp), NegotiationError> {
    let Some(chosen) = offered.iter().find(|o| supported.contains(&o.suite())) else {
        let mut names = String::new();
        for attribute in offered {
            if !names.is_empty() {
                names.push_str(", ");
            }
            names.push_str(attribute.suite().sdes_name());
        }
        if names.is_empty() {
            names.push_str("none usable");
        }
        return Err(NegotiationError::NoCommonSuite { offered: names });
    };
    let ours = CryptoAttribute {
        tag: chosen.tag,
        key: MasterKey::generate(chosen.suite())?,
        lifetime: None,
        mki: None,
    };
    let negotiated = NegotiatedSrtp {
        suite: chosen.suite(),
        tag: chosen.tag,
        local: SdesKey::from(&ours),
        remote: SdesKey::from(chosen),
    };
    Ok((ours, negotiated))
}

fn decode_key(suite: SrtpSuite, text: &str) -> Result<MasterKey, SdesError> {
    // 46 bytes of AES-256 key and salt are 64 base64 characters: refuse anything longer
    // before decoding.
    if text.len() > 64 {
        return Err(SdesError::Key(KeyError::Length {
            suite,
            expected: suite.key_len() + suite.salt_len(),
            got: text.len() / 4 * 3,
        }));
    }
    let mut bytes = [0u8; 64];
    let result = BASE64
        .decode_slice(text.as_bytes(), &mut bytes)
        .map_err(|_| SdesError::Base64)
        .and_then(|len| {
            let decoded = bytes.get(..len).unwrap_or_default();
            MasterKey::from_key_and_salt(suite, decoded).map_err(SdesError::from)
        });
    bytes.zeroize();
    result
}

fn parse_lifetime(text: &str) -> Result<u64, SdesError> {
    let bad = || SdesError::Lifetime;
    let digits = |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(exponent) = text.strip_prefix("2^") {
        let exponent: u32 = digits(exponent)
            .then(|| exponent.parse().ok())
            .flatten()
            .filter(|n| *n <= MAX_LIFETIME_EXPONENT)
            .ok_or_else(bad)?;
        return Ok(1u64 << exponent);
    }
    digits(text)
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|n| *n > 0)
        .ok_or_else(bad)
}

fn parse_mki(text: &str) -> Result<Mki, SdesError> {
    let bad = || SdesError::Mki;
    let (value, len) = text.split_once(':').ok_or_else(bad)?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(value) || !digits(len) {
        return Err(bad());
    }
    let value: u32 = value.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    Mki::new(value, len).ok_or_else(bad)
}

/// Peer text for an error message: at most [`MAX_QUOTE`] characters, printable ASCII only.
fn quote(text: &str) -> String {
    text.chars()
        .take(MAX_QUOTE)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
#[path = "sdes_tests.rs"]
mod tests;
