//! The two primitives of the AES-CM/HMAC-SHA1 suites (RFC 3711 §4.1.1, §4.2.1), keyed once per
//! session so that each packet costs a key-schedule copy and no allocation.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes256};
use ctr::CtrCore;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// AES in counter mode, with a 128- or 256-bit key.
// A session holds four, made once; inline keeps the per-packet key-schedule copy a memcpy.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum AesCm {
    Aes128(Aes128),
    Aes256(Aes256),
}

impl AesCm {
    /// `None` unless the key is 16 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<AesCm> {
        match key.len() {
            16 => Aes128::new_from_slice(key).ok().map(AesCm::Aes128),
            32 => Aes256::new_from_slice(key).ok().map(AesCm::Aes256),
            _ => None,
        }
    }

    /// XORs `data` with the keystream that starts at counter block `iv` (§4.1.1: the counter
    /// is the IV plus the block number, modulo 2^128).
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            AesCm::Aes128(aes) => {
                ctr::Ctr128BE::<Aes128>::from_core(CtrCore::inner_iv_init(aes.clone(), iv.into()))
                    .apply_keystream(data);
            }
            AesCm::Aes256(aes) => {
                ctr::Ctr128BE::<Aes256>::from_core(CtrCore::inner_iv_init(aes.clone(), iv.into()))
                    .apply_keystream(data);
            }
        }
    }
}

/// HMAC-SHA1 keyed with a session authentication key.
#[derive(Clone)]
pub(crate) struct Authenticator(HmacSha1);

impl Authenticator {
    pub(crate) fn new(key: &[u8]) -> Option<Authenticator> {
        <HmacSha1 as Mac>::new_from_slice(key)
            .ok()
            .map(Authenticator)
    }

    /// The full 160-bit tag over the concatenation of `parts`; callers truncate it.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the leftmost bytes of the tag over `parts`, compared in constant time.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// The counter block of §4.1.1: `(k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`.
pub(crate) fn counter_block(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    for (byte, salt) in iv.iter_mut().zip(salt) {
        *byte = *salt;
    }
    for (byte, ssrc) in iv.iter_mut().skip(4).zip(ssrc.to_be_bytes()) {
        *byte ^= ssrc;
    }
    // The 48-bit index as the low six of eight big-endian bytes lands in bytes 8..14.
    for (byte, index) in iv.iter_mut().skip(6).zip(index.to_be_bytes()) {
        *byte ^= index;
    }
    iv
}
