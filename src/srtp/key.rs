//! Master keys and the session keys derived from them (RFC 3711 §4.3, AES-CM PRF, key
//! derivation rate 0).

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;
use thiserror::Error;
use zeroize::Zeroize;

use super::SrtpSuite;
use super::aead::AesGcm;
use super::cipher::{AesCm, Authenticator};

pub(crate) const SALT_LEN: usize = 14;
const MAX_KEY_LEN: usize = 32;
const AUTH_KEY_LEN: usize = 20;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    #[error("{suite} needs {expected} bytes of key and salt, got {got}")]
    Length {
        suite: SrtpSuite,
        expected: usize,
        got: usize,
    },
    #[error("inbound key is {inbound}, outbound key {outbound}: one session has one suite")]
    SuiteMismatch {
        inbound: SrtpSuite,
        outbound: SrtpSuite,
    },
    #[error("the operating system's random number generator failed")]
    Random,
}

/// A master key and salt for one suite. A secret: `Debug` prints `****`, and the bytes are
/// zeroed when it is dropped.
#[derive(Clone)]
pub struct MasterKey {
    suite: SrtpSuite,
    key: [u8; MAX_KEY_LEN],
    salt: [u8; SALT_LEN],
}

impl MasterKey {
    /// From the concatenated key and salt, as carried by SDES's `inline:` (RFC 4568 §6.1).
    pub fn from_key_and_salt(suite: SrtpSuite, key_and_salt: &[u8]) -> Result<Self, KeyError> {
        let expected = suite.key_len() + suite.salt_len();
        if key_and_salt.len() != expected {
            return Err(KeyError::Length {
                suite,
                expected,
                got: key_and_salt.len(),
            });
        }
        let mut master = MasterKey {
            suite,
            key: [0; MAX_KEY_LEN],
            salt: [0; SALT_LEN],
        };
        let (key, salt) = key_and_salt.split_at(suite.key_len());
        for (to, from) in master.key.iter_mut().zip(key) {
            *to = *from;
        }
        // A 96-bit GCM salt fills the first 12 bytes; the rest stay zero, which is how the
        // AES-CM key derivation pads it (RFC 7714 §11).
        for (to, from) in master.salt.iter_mut().zip(salt) {
            *to = *from;
        }
        Ok(master)
    }

    /// A fresh key and salt from the operating system's RNG.
    pub fn generate(suite: SrtpSuite) -> Result<Self, KeyError> {
        let mut bytes = [0u8; MAX_KEY_LEN + SALT_LEN];
        let len = suite.key_len() + suite.salt_len();
        let filled = bytes.get_mut(..len).ok_or(KeyError::Random)?;
        let result = OsRng
            .try_fill_bytes(filled)
            .map_err(|_| KeyError::Random)
            .and_then(|()| MasterKey::from_key_and_salt(suite, filled));
        bytes.zeroize();
        result
    }

    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// The master key bytes. Secret.
    pub fn key(&self) -> &[u8] {
        self.key.get(..self.suite.key_len()).unwrap_or(&self.key)
    }

    /// The master salt bytes (14 for AES-CM, 12 for AES-GCM). Secret.
    pub fn salt(&self) -> &[u8] {
        self.salt.get(..self.suite.salt_len()).unwrap_or(&self.salt)
    }

    /// Writes key then salt into `out` (which must hold `key_len + 14` bytes), for SDES.
    pub(crate) fn write_key_and_salt(&self, out: &mut [u8]) -> usize {
        let mut written = 0;
        for (to, from) in out
            .iter_mut()
            .zip(self.key().iter().chain(self.salt().iter()))
        {
            *to = *from;
            written += 1;
        }
        written
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.suite == other.suite && self.key == other.key && self.salt == other.salt
    }
}

impl Eq for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, ****)", self.suite)
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

/// The key derivation labels of §4.3.1 and §4.3.2.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// `out` = PRF_n(k_master, x) with `x = label * 2^48 XOR k_s` (r = 0 at key derivation rate 0).
pub(crate) fn derive(master: &MasterKey, label: Label, out: &mut [u8]) {
    let Some(prf) = AesCm::new(master.key()) else {
        return;
    };
    let mut iv = [0u8; 16];
    for (byte, salt) in iv.iter_mut().zip(master.salt.iter()) {
        *byte = *salt;
    }
    if let Some(byte) = iv.get_mut(7) {
        *byte ^= label as u8;
    }
    out.fill(0);
    prf.apply_keystream(&iv, out);
}

/// The keys one direction needs for one of SRTP or SRTCP.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    pub(crate) cipher: Protection,
    /// The session salt: 14 bytes for AES-CM, the first 12 for AES-GCM.
    pub(crate) salt: [u8; SALT_LEN],
}

/// How packets are protected: AES-CM with HMAC-SHA1, or AES-GCM (RFC 7714).
#[derive(Clone)]
pub(crate) enum Protection {
    Cm { cipher: AesCm, auth: Authenticator },
    Gcm(AesGcm),
}

/// The AES key schedules wipe themselves (aes's `zeroize` feature); the HMAC state cannot be
/// reached to wipe it.
impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl SessionKeys {
    /// Derives the SRTP (`rtcp == false`) or SRTCP session keys.
    pub(crate) fn derive(master: &MasterKey, rtcp: bool) -> Option<SessionKeys> {
        let (enc, auth, salt) = if rtcp {
            (
                Label::RtcpEncryption,
                Label::RtcpAuthentication,
                Label::RtcpSalt,
            )
        } else {
            (
                Label::RtpEncryption,
                Label::RtpAuthentication,
                Label::RtpSalt,
            )
        };
        let key_len = master.suite.key_len();
        let mut key = [0u8; MAX_KEY_LEN];
        let mut auth_key = [0u8; AUTH_KEY_LEN];
        let mut session_salt = [0u8; SALT_LEN];
        let key_slice = key.get_mut(..key_len)?;
        derive(master, enc, key_slice);
        derive(master, auth, &mut auth_key);
        derive(master, salt, &mut session_salt);
        let cipher = match master.suite.is_aead() {
            true => AesGcm::new(key_slice).map(Protection::Gcm),
            false => match (AesCm::new(key_slice), Authenticator::new(&auth_key)) {
                (Some(cipher), Some(auth)) => Some(Protection::Cm { cipher, auth }),
                _ => None,
            },
        };
        if master.suite.is_aead() {
            // RFC 7714 §11: a 96-bit session salt.
            for byte in session_salt.iter_mut().skip(super::aead::SALT_LEN) {
                *byte = 0;
            }
        }
        let keys = cipher.map(|cipher| SessionKeys {
            cipher,
            salt: session_salt,
        });
        key.zeroize();
        auth_key.zeroize();
        session_salt.zeroize();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text.replace(' ', "")).unwrap()
    }

    /// RFC 3711 Appendix B.3: key derivation test vectors (AES-128).
    #[test]
    fn rfc3711_b3_key_derivation() {
        let mut key_and_salt = unhex("E1F97A0D3E018BE0D64FA32C06DE4139");
        key_and_salt.extend(unhex("0EC675AD498AFEEBB6960B3AABE6"));
        let master =
            MasterKey::from_key_and_salt(SrtpSuite::AesCm128HmacSha1_80, &key_and_salt).unwrap();
        let mut cipher_key = [0u8; 16];
        derive(&master, Label::RtpEncryption, &mut cipher_key);
        assert_eq!(
            cipher_key.to_vec(),
            unhex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        let mut salt = [0u8; 14];
        derive(&master, Label::RtpSalt, &mut salt);
        assert_eq!(salt.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 94];
        derive(&master, Label::RtpAuthentication, &mut auth);
        assert_eq!(
            auth.to_vec(),
            unhex(
                "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE\
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25\
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    /// RFC 6188 §7.1 (AES-256 key derivation): the cipher key, salt and authentication key.
    #[test]
    fn rfc6188_aes256_key_derivation() {
        let mut key_and_salt =
            unhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6");
        key_and_salt.extend(unhex("3b04803de51ee7c96423ab5b78d2"));
        let master =
            MasterKey::from_key_and_salt(SrtpSuite::Aes256CmHmacSha1_80, &key_and_salt).unwrap();
        let mut cipher_key = [0u8; 32];
        derive(&master, Label::RtpEncryption, &mut cipher_key);
        assert_eq!(
            cipher_key.to_vec(),
            unhex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
        );
        let mut salt = [0u8; 14];
        derive(&master, Label::RtpSalt, &mut salt);
        assert_eq!(salt.to_vec(), unhex("fa31791685ca444a9e07c6c64e93"));
        let mut auth = [0u8; 20];
        derive(&master, Label::RtpAuthentication, &mut auth);
        assert_eq!(
            auth.to_vec(),
            unhex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
        );
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream.
    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let cipher = AesCm::new(&unhex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let iv: [u8; 16] = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
            .try_into()
            .unwrap();
        let mut stream = [0u8; 48];
        cipher.apply_keystream(&iv, &mut stream);
        assert_eq!(
            stream.to_vec(),
            unhex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB\
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
        // The counter block of §4.1.1 puts the salt, SSRC and index where B.2 expects them.
        let salt: [u8; 14] = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
        assert_eq!(counter_block_of(&salt, 0, 0), iv);
    }

    fn counter_block_of(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
        super::super::cipher::counter_block(salt, ssrc, index)
    }

    #[test]
    fn debug_hides_the_key() {
        let master =
            MasterKey::from_key_and_salt(SrtpSuite::AesCm128HmacSha1_32, &[7; 30]).unwrap();
        let printed = format!("{master:?}");
        assert_eq!(printed, "MasterKey(AES_CM_128_HMAC_SHA1_32, ****)");
        assert!(matches!(
            MasterKey::from_key_and_salt(SrtpSuite::Aes256CmHmacSha1_80, &[7; 30]),
            Err(KeyError::Length {
                expected: 46,
                got: 30,
                ..
            })
        ));
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate(SrtpSuite::Aes256CmHmacSha1_80).unwrap();
        let b = MasterKey::generate(SrtpSuite::Aes256CmHmacSha1_80).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.key().len(), 32);
    }
}
