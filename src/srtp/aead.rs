//! AES-GCM for SRTP and SRTCP (RFC 7714): one AEAD pass authenticates the header and encrypts
//! the payload, with a 16-byte tag and a 12-byte IV built from the session salt.
//!
//! SRTP (§8): the AAD is the RTP header (CSRCs and extension included); the tag follows the
//! ciphertext. SRTCP (§9): the AAD is the first 8 bytes of the RTCP packet and the `E` flag
//! with the SRTCP index; the tag follows the ciphertext and precedes that index.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};

/// Master and session salt length (§11: 96 bits).
pub(crate) const SALT_LEN: usize = 12;
/// Authentication tag length (§4.2: 16 bytes for both AEAD suites here).
pub(crate) const TAG_LEN: usize = 16;

/// AES-GCM with a 128- or 256-bit key.
// A session holds four, made once.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum AesGcm {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

impl AesGcm {
    /// `None` unless the key is 16 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<AesGcm> {
        match key.len() {
            16 => Aes128Gcm::new_from_slice(key).ok().map(AesGcm::Aes128),
            32 => Aes256Gcm::new_from_slice(key).ok().map(AesGcm::Aes256),
            _ => None,
        }
    }

    /// Encrypts `data` in place; returns the tag.
    pub(crate) fn seal(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let nonce = GenericArray::from_slice(iv);
        let tag = match self {
            AesGcm::Aes128(gcm) => gcm.encrypt_in_place_detached(nonce, aad, data),
            AesGcm::Aes256(gcm) => gcm.encrypt_in_place_detached(nonce, aad, data),
        }
        .ok()?;
        Some(tag.into())
    }

    /// Checks `tag` and only then decrypts `data` in place: a forged packet is left as it came.
    pub(crate) fn open(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let nonce = GenericArray::from_slice(iv);
        let tag = GenericArray::from_slice(tag);
        match self {
            AesGcm::Aes128(gcm) => gcm.decrypt_in_place_detached(nonce, aad, data, tag),
            AesGcm::Aes256(gcm) => gcm.decrypt_in_place_detached(nonce, aad, data, tag),
        }
        .is_ok()
    }
}

/// The SRTP IV (§8.1): `00 00 || SSRC || ROC || SEQ` XOR the session salt.
pub(crate) fn rtp_iv(salt: &[u8], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    let roc = (index >> 16) as u32;
    let seq = index as u16;
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq.to_be_bytes());
    for (byte, salt) in iv.iter_mut().zip(salt) {
        *byte ^= *salt;
    }
    iv
}

/// The SRTCP IV (§9.1): `00 00 || SSRC || 00 00 || 0 || SRTCP index` XOR the session salt.
pub(crate) fn rtcp_iv(salt: &[u8], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&(index & 0x7fff_ffff).to_be_bytes());
    for (byte, salt) in iv.iter_mut().zip(salt) {
        *byte ^= *salt;
    }
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text.split_whitespace().collect::<String>()).unwrap()
    }

    /// RFC 7714 §16.1.1 (AEAD_AES_128_GCM, SRTP; the section's key and salt are session
    /// keys): the IV from the salt, SSRC, ROC and SEQ, then the sealed packet byte for byte.
    #[test]
    fn rfc7714_16_1_srtp_aes_128_gcm() {
        let key = unhex("00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f");
        let salt = unhex("51 75 69 64 20 70 72 6f 20 71 75 6f");
        let header = unhex("80 40 f1 7b 80 41 f8 d3 55 01 a0 b2");
        let plain = unhex(
            "47 61 6c 6c 69 61 20 65 73 74 20 6f 6d 6e 69 73 20 64 69 76 69 73 61 20 69 6e 20 \
             70 61 72 74 65 73 20 74 72 65 73",
        );
        let iv = rtp_iv(&salt, 0x5501_a0b2, 0xf17b);
        assert_eq!(iv.to_vec(), unhex("51 75 3c 65 80 c2 72 6f 20 71 84 14"));
        let gcm = AesGcm::new(&key).unwrap();
        let mut data = plain.clone();
        let tag = gcm.seal(&iv, &header, &mut data).unwrap();
        let expected = unhex(
            "f2 4d e3 a3 fb 34 de 6c ac ba 86 1c 9d 7e 4b ca be 63 3b d5 0d 29 4e 6f 42 a5 f4 7a \
             51 c7 d1 9b 36 de 3a df 88 33 89 9d 7f 27 be b1 6a 91 52 cf 76 5e e4 39 0c ce",
        );
        let mut sealed = data.clone();
        sealed.extend_from_slice(&tag);
        assert_eq!(sealed, expected);
        // And back; a flipped bit is refused and leaves the data as it came.
        let mut forged = data.clone();
        forged[0] ^= 1;
        let before = forged.clone();
        assert!(!gcm.open(&iv, &header, &mut forged, &tag));
        assert_eq!(forged, before);
        assert!(gcm.open(&iv, &header, &mut data, &tag));
        assert_eq!(data, plain);
    }
}
