//! One media stream's SRTP/SRTCP crypto contexts (RFC 3711 §3.2): the peer's master key for
//! what we receive, ours for what we send.
//!
//! Per-packet work allocates nothing: the stream table is reserved when the session is made,
//! decryption happens in the caller's receive buffer, and protection appends the trailer to a
//! caller-owned `Vec` (keep [`SrtpSession::max_trailer_len`] spare capacity and it never grows).
//!
//! Order of checks on receipt (§3.3): index estimate, replay window, authentication, and only
//! then decryption and the update of ROC and window, so a forged packet changes nothing.

use super::aead;
use super::cipher::counter_block;
use super::key::{Protection, SessionKeys};
use super::replay::IndexState;
use super::sdes::NegotiatedSrtp;
use super::{KeyError, MasterKey, SrtpCounters, SrtpError, SrtpSuite};

/// SSRCs tracked per direction. A call has one audio and one video stream from the peer, plus
/// what an SFU or a re-INVITE may add; a new SSRC past this many is refused, not tracked.
pub const MAX_STREAMS: usize = 16;

const RTP_HEADER_LEN: usize = 12;
const RTCP_HEADER_LEN: usize = 8;
/// The `E` flag and 31-bit SRTCP index that follow an SRTCP packet (§3.4).
const SRTCP_INDEX_LEN: usize = 4;
const SRTCP_E_FLAG: u32 = 0x8000_0000;
const SRTCP_MAX_INDEX: u32 = 0x7fff_ffff;
/// SRTP packet indices are 48 bits (§3.3.1).
const SRTP_MAX_INDEX: u64 = (1 << 48) - 1;

/// The MKI every packet carries, when SDES negotiated one (`|MKI:len`). One value per
/// direction: we never re-key by MKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    value: [u8; 4],
    len: u8,
}

impl Mki {
    /// `value` big-endian in `len` bytes (1 to 4); `None` if it does not fit.
    pub fn new(value: u32, len: u8) -> Option<Mki> {
        if !(1..=4).contains(&len) || (len < 4 && value >> (8 * u32::from(len)) != 0) {
            return None;
        }
        Some(Mki {
            value: value.to_be_bytes(),
            len,
        })
    }

    pub fn value(&self) -> u32 {
        u32::from_be_bytes(self.value)
    }

    /// Its length on the wire, in bytes.
    pub fn wire_len(&self) -> u8 {
        self.len
    }

    fn bytes(&self) -> &[u8] {
        self.value
            .get(4 - usize::from(self.len)..)
            .unwrap_or(&self.value)
    }
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    rtp: Option<IndexState>,
    rtcp: Option<IndexState>,
    /// The next SRTCP index we send on this SSRC.
    next_rtcp_index: u32,
}

/// One direction's context: keys, MKI, and the per-SSRC indices.
struct Context {
    rtp: SessionKeys,
    rtcp: SessionKeys,
    rtp_tag_len: usize,
    rtcp_tag_len: usize,
    mki: Option<Mki>,
    streams: Vec<Stream>,
}

impl Context {
    fn new(master: &MasterKey, mki: Option<Mki>) -> Result<Context, KeyError> {
        let suite = master.suite();
        // Derivation fails only for a key length MasterKey never holds.
        let length = KeyError::Length {
            suite,
            expected: suite.key_len(),
            got: master.key().len(),
        };
        let rtp = SessionKeys::derive(master, false).ok_or(length)?;
        let rtcp = SessionKeys::derive(master, true).ok_or(length)?;
        Ok(Context {
            rtp,
            rtcp,
            rtp_tag_len: suite.rtp_tag_len(),
            rtcp_tag_len: suite.rtcp_tag_len(),
            mki,
            streams: Vec::with_capacity(MAX_STREAMS),
        })
    }

    fn mki_len(&self) -> usize {
        self.mki.map_or(0, |mki| usize::from(mki.len))
    }

    /// The stream of `ssrc`, or where a new one would go (`Err(())` if the table is full).
    fn find(&self, ssrc: u32) -> Result<Option<usize>, SrtpError> {
        match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(at) => Ok(Some(at)),
            None if self.streams.len() < MAX_STREAMS => Ok(None),
            None => Err(SrtpError::UnknownSsrc { ssrc }),
        }
    }

    fn stream_mut(&mut self, at: Option<usize>, ssrc: u32) -> Option<&mut Stream> {
        let at = match at {
            Some(at) => at,
            None => {
                // Within the reserved capacity: no allocation.
                self.streams.push(Stream {
                    ssrc,
                    rtp: None,
                    rtcp: None,
                    next_rtcp_index: 0,
                });
                self.streams.len() - 1
            }
        };
        self.streams.get_mut(at)
    }

    /// Checks and strips the MKI that sits before a tag of `tag_len` bytes at the end of
    /// `packet`; returns the length of the authenticated portion.
    fn split_trailer(
        &self,
        packet: &[u8],
        min_len: usize,
        tag_len: usize,
    ) -> Result<usize, SrtpError> {
        let trailer = self.mki_len() + tag_len;
        let needed = min_len + trailer;
        if packet.len() < needed {
            return Err(SrtpError::TooShort {
                len: packet.len(),
                needed,
            });
        }
        let auth_end = packet.len() - trailer;
        if let Some(mki) = self.mki {
            let carried = packet.get(auth_end..auth_end + usize::from(mki.len));
            if carried != Some(mki.bytes()) {
                return Err(SrtpError::UnknownMki);
            }
        }
        Ok(auth_end)
    }
}

/// Both directions of SRTP/SRTCP for one media stream (one RTP session: one socket pair).
///
/// Drive it from the media task: every datagram from the peer's RTP port goes through
/// [`unprotect_rtp`](Self::unprotect_rtp), every one from its RTCP port (or RTCP muxed on the
/// RTP port, told apart by [`crate::media::rtp::is_rtcp`], which reads only the clear header)
/// through [`unprotect_rtcp`](Self::unprotect_rtcp); what we build goes through `protect_*`
/// just before `send_to`. An `Err` means drop that packet; the session stays usable.
///
/// Unprotect before anything acts on a packet, the source latch included: only an
/// authenticated packet may move the latch, or anyone who can reach our port could steer it.
pub struct SrtpSession {
    suite: SrtpSuite,
    inbound: Context,
    outbound: Context,
    counters: SrtpCounters,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// From what SDES negotiated: the peer's key for receiving, ours for sending.
    pub fn new(negotiated: &NegotiatedSrtp) -> Result<SrtpSession, KeyError> {
        SrtpSession::from_keys(
            &negotiated.remote.key,
            negotiated.remote.mki,
            &negotiated.local.key,
            negotiated.local.mki,
        )
    }

    /// From explicit keys: `inbound` decrypts what the peer sends, `outbound` what we send.
    /// Both must be of one suite.
    pub fn from_keys(
        inbound: &MasterKey,
        inbound_mki: Option<Mki>,
        outbound: &MasterKey,
        outbound_mki: Option<Mki>,
    ) -> Result<SrtpSession, KeyError> {
        if inbound.suite() != outbound.suite() {
            return Err(KeyError::SuiteMismatch {
                inbound: inbound.suite(),
                outbound: outbound.suite(),
            });
        }
        Ok(SrtpSession {
            suite: inbound.suite(),
            inbound: Context::new(inbound, inbound_mki)?,
            outbound: Context::new(outbound, outbound_mki)?,
            counters: SrtpCounters::default(),
        })
    }

    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    pub fn counters(&self) -> SrtpCounters {
        self.counters
    }

    /// The most bytes `protect_*` appends to a packet (SRTCP index, MKI and tag).
    pub fn max_trailer_len(&self) -> usize {
        SRTCP_INDEX_LEN
            + self.outbound.mki_len()
            + self.outbound.rtp_tag_len.max(self.outbound.rtcp_tag_len)
    }

    /// Authenticates and decrypts an SRTP packet in place; on success the RTP packet is
    /// `packet[..len]` for the returned `len`.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let result = self.unprotect_rtp_inner(packet);
        match &result {
            Ok(_) => self.counters.rtp_unprotected += 1,
            Err(error) => self.counters.count_error(error),
        }
        result
    }

    /// Authenticates and decrypts an SRTCP compound packet in place; on success the RTCP
    /// packet is `packet[..len]` for the returned `len`.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let result = self.unprotect_rtcp_inner(packet);
        match &result {
            Ok(_) => self.counters.rtcp_unprotected += 1,
            Err(error) => self.counters.count_error(error),
        }
        result
    }

    /// Encrypts an RTP packet in place and appends MKI and tag.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let result = self.protect_rtp_inner(packet);
        match &result {
            Ok(()) => self.counters.rtp_protected += 1,
            Err(error) => self.counters.count_error(error),
        }
        result
    }

    /// Encrypts an RTCP compound packet in place and appends `E`, SRTCP index, MKI and tag.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let result = self.protect_rtcp_inner(packet);
        match &result {
            Ok(()) => self.counters.rtcp_protected += 1,
            Err(error) => self.counters.count_error(error),
        }
        result
    }

    fn unprotect_rtp_inner(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let ctx = &mut self.inbound;
        let auth_end = ctx.split_trailer(packet, RTP_HEADER_LEN, ctx.rtp_tag_len)?;
        let (authenticated, trailer) = packet.split_at_mut(auth_end);
        let header = rtp_header(authenticated)?;
        let tag = trailer.get(ctx.mki_len()..).unwrap_or_default();
        let at = ctx.find(header.ssrc)?;
        let state = at.and_then(|at| ctx.streams.get(at)).and_then(|s| s.rtp);
        let index = match state {
            Some(state) => {
                let index = state
                    .estimate_rtp_index(header.seq)
                    .filter(|index| state.is_fresh(*index));
                index.ok_or(SrtpError::Replayed {
                    ssrc: header.ssrc,
                    index: u64::from(header.seq),
                })?
            }
            None => u64::from(header.seq),
        };
        let failed = SrtpError::AuthFailed {
            ssrc: header.ssrc,
            index,
        };
        match &ctx.rtp.cipher {
            Protection::Cm { cipher, auth } => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                if !auth.verify(&[authenticated, &roc], tag) {
                    return Err(failed);
                }
                let iv = counter_block(&ctx.rtp.salt, header.ssrc, index);
                if let Some(payload) = authenticated.get_mut(header.len..) {
                    cipher.apply_keystream(&iv, payload);
                }
            }
            Protection::Gcm(gcm) => {
                let iv = aead::rtp_iv(&ctx.rtp.salt, header.ssrc, index);
                let (clear_header, payload) = authenticated.split_at_mut(header.len);
                if !gcm.open(&iv, clear_header, payload, tag) {
                    return Err(failed);
                }
            }
        }
        if let Some(stream) = ctx.stream_mut(at, header.ssrc) {
            match &mut stream.rtp {
                Some(state) => state.accept(index),
                None => stream.rtp = Some(IndexState::first(index)),
            }
        }
        Ok(auth_end)
    }

    fn unprotect_rtcp_inner(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        if matches!(self.inbound.rtcp.cipher, Protection::Gcm(_)) {
            return self.unprotect_rtcp_gcm(packet);
        }
        let ctx = &mut self.inbound;
        let Protection::Cm { cipher, auth } = &ctx.rtcp.cipher else {
            return Err(SrtpError::UnknownMki);
        };
        let auth_end =
            ctx.split_trailer(packet, RTCP_HEADER_LEN + SRTCP_INDEX_LEN, ctx.rtcp_tag_len)?;
        let (authenticated, trailer) = packet.split_at_mut(auth_end);
        let first_byte = authenticated.first().copied().unwrap_or_default();
        if first_byte >> 6 != 2 {
            return Err(SrtpError::NotVersion2 { first_byte });
        }
        let ssrc = read_u32(authenticated, 4);
        let e_and_index = read_u32(authenticated, auth_end - SRTCP_INDEX_LEN);
        let index = u64::from(e_and_index & SRTCP_MAX_INDEX);
        let tag = trailer.get(ctx.mki_len()..).unwrap_or_default();
        let at = ctx.find(ssrc)?;
        let state = at.and_then(|at| ctx.streams.get(at)).and_then(|s| s.rtcp);
        if state.is_some_and(|state| !state.is_fresh(index)) {
            return Err(SrtpError::Replayed { ssrc, index });
        }
        if !auth.verify(&[authenticated], tag) {
            return Err(SrtpError::AuthFailed { ssrc, index });
        }
        let rtcp_len = auth_end - SRTCP_INDEX_LEN;
        if e_and_index & SRTCP_E_FLAG != 0 {
            let iv = counter_block(&ctx.rtcp.salt, ssrc, index);
            if let Some(body) = authenticated.get_mut(RTCP_HEADER_LEN..rtcp_len) {
                cipher.apply_keystream(&iv, body);
            }
        }
        if let Some(stream) = ctx.stream_mut(at, ssrc) {
            match &mut stream.rtcp {
                Some(state) => state.accept(index),
                None => stream.rtcp = Some(IndexState::first(index)),
            }
        }
        Ok(rtcp_len)
    }

    fn protect_rtp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let ctx = &mut self.outbound;
        let header = rtp_header(packet)?;
        let at = ctx.find(header.ssrc)?;
        let state = at.and_then(|at| ctx.streams.get(at)).and_then(|s| s.rtp);
        let index = match state {
            Some(state) => state
                .estimate_rtp_index(header.seq)
                .filter(|index| *index <= SRTP_MAX_INDEX)
                .ok_or(SrtpError::KeyExhausted { ssrc: header.ssrc })?,
            None => u64::from(header.seq),
        };
        match &ctx.rtp.cipher {
            Protection::Cm { cipher, auth } => {
                let iv = counter_block(&ctx.rtp.salt, header.ssrc, index);
                if let Some(payload) = packet.get_mut(header.len..) {
                    cipher.apply_keystream(&iv, payload);
                }
                let roc = ((index >> 16) as u32).to_be_bytes();
                let tag = auth.tag(&[packet, &roc]);
                if let Some(mki) = ctx.mki {
                    packet.extend_from_slice(mki.bytes());
                }
                packet.extend_from_slice(tag.get(..ctx.rtp_tag_len).unwrap_or(&tag));
            }
            Protection::Gcm(gcm) => {
                let iv = aead::rtp_iv(&ctx.rtp.salt, header.ssrc, index);
                let (clear_header, payload) = packet.split_at_mut(header.len);
                let tag = gcm
                    .seal(&iv, clear_header, payload)
                    .ok_or(SrtpError::KeyExhausted { ssrc: header.ssrc })?;
                if let Some(mki) = ctx.mki {
                    packet.extend_from_slice(mki.bytes());
                }
                packet.extend_from_slice(&tag);
            }
        }
        if let Some(stream) = ctx.stream_mut(at, header.ssrc) {
            match &mut stream.rtp {
                Some(state) => state.advance(index),
                None => stream.rtp = Some(IndexState::first(index)),
            }
        }
        Ok(())
    }

    fn protect_rtcp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let ctx = &mut self.outbound;
        if packet.len() < RTCP_HEADER_LEN {
            return Err(SrtpError::TooShort {
                len: packet.len(),
                needed: RTCP_HEADER_LEN,
            });
        }
        let first_byte = packet.first().copied().unwrap_or_default();
        if first_byte >> 6 != 2 {
            return Err(SrtpError::NotVersion2 { first_byte });
        }
        let ssrc = read_u32(packet, 4);
        let at = ctx.find(ssrc)?;
        let Some(stream) = ctx.stream_mut(at, ssrc) else {
            return Err(SrtpError::UnknownSsrc { ssrc });
        };
        let index = stream.next_rtcp_index;
        if index > SRTCP_MAX_INDEX {
            return Err(SrtpError::KeyExhausted { ssrc });
        }
        stream.next_rtcp_index = index + 1;
        let e_and_index = (SRTCP_E_FLAG | index).to_be_bytes();
        match &ctx.rtcp.cipher {
            Protection::Cm { cipher, auth } => {
                let iv = counter_block(&ctx.rtcp.salt, ssrc, u64::from(index));
                if let Some(body) = packet.get_mut(RTCP_HEADER_LEN..) {
                    cipher.apply_keystream(&iv, body);
                }
                packet.extend_from_slice(&e_and_index);
                let tag = auth.tag(&[packet]);
                if let Some(mki) = ctx.mki {
                    packet.extend_from_slice(mki.bytes());
                }
                packet.extend_from_slice(tag.get(..ctx.rtcp_tag_len).unwrap_or(&tag));
            }
            Protection::Gcm(gcm) => {
                // RFC 7714 §9: AAD = the first 8 bytes and E + index; the tag, then E + index,
                // then the MKI follow the ciphertext.
                let iv = aead::rtcp_iv(&ctx.rtcp.salt, ssrc, index);
                let aad = rtcp_gcm_aad(packet, e_and_index);
                let body = packet.get_mut(RTCP_HEADER_LEN..).unwrap_or_default();
                let tag = gcm
                    .seal(&iv, &aad, body)
                    .ok_or(SrtpError::KeyExhausted { ssrc })?;
                packet.extend_from_slice(&tag);
                packet.extend_from_slice(&e_and_index);
                if let Some(mki) = ctx.mki {
                    packet.extend_from_slice(mki.bytes());
                }
            }
        }
        Ok(())
    }

    /// SRTCP under AES-GCM (RFC 7714 §9): `header(8) || ciphertext || tag || E+index || MKI`.
    /// Only encrypted SRTCP (`E` set) is taken: unencrypted SRTCP is never negotiated here.
    fn unprotect_rtcp_gcm(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let ctx = &mut self.inbound;
        let Protection::Gcm(gcm) = &ctx.rtcp.cipher else {
            return Err(SrtpError::UnknownMki);
        };
        let mki_len = ctx.mki_len();
        let needed = RTCP_HEADER_LEN + aead::TAG_LEN + SRTCP_INDEX_LEN + mki_len;
        if packet.len() < needed {
            return Err(SrtpError::TooShort {
                len: packet.len(),
                needed,
            });
        }
        let first_byte = packet.first().copied().unwrap_or_default();
        if first_byte >> 6 != 2 {
            return Err(SrtpError::NotVersion2 { first_byte });
        }
        let index_at = packet.len() - mki_len - SRTCP_INDEX_LEN;
        if let Some(mki) = ctx.mki
            && packet.get(index_at + SRTCP_INDEX_LEN..) != Some(mki.bytes())
        {
            return Err(SrtpError::UnknownMki);
        }
        let ssrc = read_u32(packet, 4);
        let e_and_index = read_u32(packet, index_at);
        let index = e_and_index & SRTCP_MAX_INDEX;
        if e_and_index & SRTCP_E_FLAG == 0 {
            return Err(SrtpError::AuthFailed {
                ssrc,
                index: u64::from(index),
            });
        }
        let at = ctx.find(ssrc)?;
        let state = at.and_then(|at| ctx.streams.get(at)).and_then(|s| s.rtcp);
        if state.is_some_and(|state| !state.is_fresh(u64::from(index))) {
            return Err(SrtpError::Replayed {
                ssrc,
                index: u64::from(index),
            });
        }
        let tag_at = index_at - aead::TAG_LEN;
        let aad = rtcp_gcm_aad(packet, e_and_index.to_be_bytes());
        let iv = aead::rtcp_iv(&ctx.rtcp.salt, ssrc, index);
        let (sealed, trailer) = packet.split_at_mut(tag_at);
        let tag = trailer.get(..aead::TAG_LEN).unwrap_or_default();
        let body = sealed.get_mut(RTCP_HEADER_LEN..).unwrap_or_default();
        if !gcm.open(&iv, &aad, body, tag) {
            return Err(SrtpError::AuthFailed {
                ssrc,
                index: u64::from(index),
            });
        }
        if let Some(stream) = ctx.stream_mut(at, ssrc) {
            match &mut stream.rtcp {
                Some(state) => state.accept(u64::from(index)),
                None => stream.rtcp = Some(IndexState::first(u64::from(index))),
            }
        }
        Ok(tag_at)
    }
}

struct RtpHeader {
    ssrc: u32,
    seq: u16,
    /// Fixed header, CSRCs and extension: where the encrypted payload starts.
    len: usize,
}

/// The fields SRTP needs from an RTP header (RFC 3550 §5.1, §5.3.1), checked against `packet`.
fn rtp_header(packet: &[u8]) -> Result<RtpHeader, SrtpError> {
    let too_short = |needed| SrtpError::TooShort {
        len: packet.len(),
        needed,
    };
    let first_byte = *packet.first().ok_or(too_short(RTP_HEADER_LEN))?;
    if first_byte >> 6 != 2 {
        return Err(SrtpError::NotVersion2 { first_byte });
    }
    let mut len = RTP_HEADER_LEN + 4 * usize::from(first_byte & 0x0f);
    if first_byte & 0x10 != 0 {
        let words = packet
            .get(len + 2..len + 4)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_be_bytes)
            .ok_or(too_short(len + 4))?;
        len += 4 + 4 * usize::from(words);
    }
    if packet.len() < len {
        return Err(too_short(len));
    }
    Ok(RtpHeader {
        ssrc: read_u32(packet, 8),
        seq: packet
            .get(2..4)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map_or(0, u16::from_be_bytes),
        len,
    })
}

/// SRTCP's associated data under AES-GCM: the first 8 bytes, then `E` + SRTCP index.
fn rtcp_gcm_aad(packet: &[u8], e_and_index: [u8; 4]) -> [u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN] {
    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
    for (to, from) in aad.iter_mut().zip(packet.iter().take(RTCP_HEADER_LEN)) {
        *to = *from;
    }
    for (to, from) in aad.iter_mut().skip(RTCP_HEADER_LEN).zip(e_and_index) {
        *to = from;
    }
    aad
}

/// The big-endian u32 at `at`, or 0 past the end (callers check lengths first).
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}
