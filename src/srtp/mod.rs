//! SRTP and SRTCP (RFC 3711) with keys exchanged by SDES (RFC 4568), as sans-IO building blocks.
//!
//! - [`sdes`] parses and prints `a=crypto:` lines, generates our keys from the OS RNG and
//!   negotiates a suite (offer/answer), giving a [`sdes::NegotiatedSrtp`].
//! - [`SrtpSession`] holds both directions of one media stream's crypto contexts: it unprotects
//!   what the peer sends (SRTP and SRTCP, in place, with rollover counter, a 64-packet replay
//!   window and the SRTCP index) and protects what we send (RTCP RR/PLI/FIR, RFC 4733 DTMF).
//!
//! The per-packet path allocates nothing: decryption happens in the receive buffer, and
//! protection appends the tag to a caller-owned `Vec` that already has room for it.
//!
//! The crypto is written here on RustCrypto primitives (`aes`, `ctr`, `hmac`, `sha1`,
//! `aes-gcm`): AES in counter mode (§4.1.1), HMAC-SHA1 (§4.2.1), the AES-CM key derivation
//! (§4.3), and AES-GCM for the AEAD suites (RFC 7714). Key derivation rate 0 only (RFC 4568's
//! default; no peer we know of sets `KDR=`).

mod aead;
mod cipher;
mod key;
mod replay;
pub mod sdes;
mod session;
#[cfg(test)]
mod session_tests;

pub use key::{KeyError, MasterKey};
pub use session::{MAX_STREAMS, Mki, SrtpSession};

use thiserror::Error;

/// The crypto suites we implement, in our preference order (strongest first): the order we
/// offer them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    Aes256CmHmacSha1_80,
    Aes256CmHmacSha1_32,
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    /// RFC 7714: AES-GCM, 16-byte tag, 96-bit salt.
    AeadAes256Gcm,
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// Every suite, in our preference order: the AES-CM suites meeting connectors offer and
    /// answer first (Zoom offers AES_256_CM_HMAC_SHA1_80 first), then the AEAD ones.
    pub const PREFERENCE: [SrtpSuite; 6] = [
        SrtpSuite::Aes256CmHmacSha1_80,
        SrtpSuite::Aes256CmHmacSha1_32,
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes256Gcm,
        SrtpSuite::AeadAes128Gcm,
    ];

    /// AES-GCM (RFC 7714): one AEAD pass instead of AES-CM plus HMAC.
    pub fn is_aead(self) -> bool {
        matches!(self, SrtpSuite::AeadAes256Gcm | SrtpSuite::AeadAes128Gcm)
    }

    /// The suite's name in SDP (RFC 4568 §6.2, RFC 6188 §7.1 for the AES-256 ones, RFC 7714
    /// §14.2 for the AEAD ones).
    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpSuite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            SrtpSuite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite named so in SDP (names are case-sensitive, RFC 4568 §9.2).
    pub fn from_sdes_name(name: &str) -> Option<SrtpSuite> {
        SrtpSuite::PREFERENCE
            .into_iter()
            .find(|suite| suite.sdes_name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            SrtpSuite::Aes256CmHmacSha1_80
            | SrtpSuite::Aes256CmHmacSha1_32
            | SrtpSuite::AeadAes256Gcm => 32,
            SrtpSuite::AesCm128HmacSha1_80
            | SrtpSuite::AesCm128HmacSha1_32
            | SrtpSuite::AeadAes128Gcm => 16,
        }
    }

    /// Master salt length in bytes: 112 bits for every AES-CM suite, 96 for AES-GCM.
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            aead::SALT_LEN
        } else {
            key::SALT_LEN
        }
    }

    /// SRTP authentication tag length in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpSuite::Aes256CmHmacSha1_80 | SrtpSuite::AesCm128HmacSha1_80 => 10,
            SrtpSuite::Aes256CmHmacSha1_32 | SrtpSuite::AesCm128HmacSha1_32 => 4,
            SrtpSuite::AeadAes256Gcm | SrtpSuite::AeadAes128Gcm => aead::TAG_LEN,
        }
    }

    /// SRTCP authentication tag length in bytes: 80 bits for every AES-CM suite, the `_32`
    /// ones included (RFC 4568 §6.2.1, RFC 6188 §7.1); GCM's 128.
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { aead::TAG_LEN } else { 10 }
    }
}

impl std::fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// Why a packet was not protected or unprotected. The packet is to be dropped; the session
/// stays usable.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    #[error("SRTP/SRTCP packet of {len} bytes is too short (needs at least {needed})")]
    TooShort { len: usize, needed: usize },
    #[error("not an RTP/RTCP version 2 packet (first byte {first_byte:#04x})")]
    NotVersion2 { first_byte: u8 },
    #[error("authentication failed (SSRC {ssrc:#010x}, index {index})")]
    AuthFailed { ssrc: u32, index: u64 },
    #[error("replayed or too old (SSRC {ssrc:#010x}, index {index})")]
    Replayed { ssrc: u32, index: u64 },
    #[error("unknown SSRC {ssrc:#010x}: already tracking {MAX_STREAMS} streams")]
    UnknownSsrc { ssrc: u32 },
    #[error("the packet's MKI is not the one negotiated")]
    UnknownMki,
    #[error("the master key's packet limit is reached (SSRC {ssrc:#010x}): re-key")]
    KeyExhausted { ssrc: u32 },
}

/// What a [`SrtpSession`] did, counted since it was made. Every failure counts under its reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrtpCounters {
    pub rtp_unprotected: u64,
    pub rtcp_unprotected: u64,
    pub rtp_protected: u64,
    pub rtcp_protected: u64,
    pub too_short: u64,
    pub not_version_2: u64,
    pub auth_failed: u64,
    pub replayed: u64,
    pub unknown_ssrc: u64,
    pub unknown_mki: u64,
    pub key_exhausted: u64,
}

impl SrtpCounters {
    fn count_error(&mut self, error: &SrtpError) {
        let counter = match error {
            SrtpError::TooShort { .. } => &mut self.too_short,
            SrtpError::NotVersion2 { .. } => &mut self.not_version_2,
            SrtpError::AuthFailed { .. } => &mut self.auth_failed,
            SrtpError::Replayed { .. } => &mut self.replayed,
            SrtpError::UnknownSsrc { .. } => &mut self.unknown_ssrc,
            SrtpError::UnknownMki => &mut self.unknown_mki,
            SrtpError::KeyExhausted { .. } => &mut self.key_exhausted,
        };
        *counter = counter.saturating_add(1);
    }
}
