//! H.264 RTP depacketizer (RFC 6184): single NAL unit packets (§5.6), STAP-A (§5.7.1) and
//! FU-A (§5.8), i.e. packetization-mode 0 and 1. Output is AVCC: 4-byte length-prefixed NAL
//! units per access unit, which is what FLV carries.
//!
//! Loss is an explicit state: any sequence gap breaks the access unit being assembled, which is
//! dropped, and the depacketizer then waits for the next IDR, asking for one
//! ([`H264Output::KeyframeNeeded`]), instead of publishing frames that reference lost data.
//! Nothing is published before the first IDR with known SPS and PPS.
//!
//! Parameter sets come from `sprop-parameter-sets` (RFC 6184 §8.1) and in band; they are kept
//! out of the access units and published as an AVCDecoderConfigurationRecord whenever they
//! change. Access unit boundaries are the marker bit or, when a peer omits it or it is lost, a
//! timestamp change. Peer quirks tolerated: missing marker bits, AUD NAL units (dropped),
//! parameter sets repeated before every IDR (only a change republishes the config),
//! STAP-B/MTAP/FU-B (not allowed in modes 0/1; ignored and counted).
//!
//! Drive it with [`H264Depacketizer::push`] per RTP packet in sequence order, then drain
//! [`H264Depacketizer::poll_output`] until it returns `None`.

use std::collections::VecDeque;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::avcc::build_avcc;
use super::rtp::RtpPacket;
use super::sps::{SpsInfo, parse_sps};

/// An access unit larger than this is treated as corrupt (a 4K IDR is well below it).
const MAX_ACCESS_UNIT: usize = 4 << 20;
/// Parameter sets longer than this are refused (they are tens of bytes in practice).
const MAX_PARAMETER_SET: usize = 1024;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum H264Error {
    #[error("empty RTP payload (seq {sequence})")]
    Empty { sequence: u16 },
    #[error("NAL unit type {nal_type} not allowed in packetization modes 0/1 (seq {sequence})")]
    Unsupported { nal_type: u8, sequence: u16 },
    #[error("malformed {what} (seq {sequence})")]
    Malformed { what: &'static str, sequence: u16 },
    #[error("access unit larger than {MAX_ACCESS_UNIT} bytes (seq {sequence})")]
    TooLarge { sequence: u16 },
    #[error("bad sprop-parameter-sets: {0}")]
    Sprop(String),
}

/// What the depacketizer produces, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum H264Output {
    /// New parameter sets: an AVCDecoderConfigurationRecord, with the picture size.
    Config {
        avcc: Bytes,
        width: u32,
        height: u32,
    },
    /// One complete access unit in AVCC form.
    AccessUnit {
        rtp_timestamp: u32,
        keyframe: bool,
        data: Bytes,
    },
    /// Loss broke the picture chain: video is paused until an IDR arrives; ask for one.
    KeyframeNeeded,
}

#[derive(Debug, Default)]
pub struct H264Depacketizer {
    sps: Vec<u8>,
    pps: Vec<u8>,
    sps_info: Option<SpsInfo>,
    config_changed: bool,
    /// The access unit being assembled, AVCC form.
    au: BytesMut,
    au_timestamp: Option<u32>,
    au_keyframe: bool,
    au_broken: bool,
    /// Offset in `au` of the length field of the FU-A NAL unit being reassembled.
    fu_start: Option<usize>,
    /// True until an IDR arrives: at start and after loss.
    started: bool,
    waiting_for_idr: bool,
    outputs: VecDeque<H264Output>,
    /// Access units dropped because they were broken or came before an IDR.
    pub dropped_access_units: u64,
}

impl H264Depacketizer {
    pub fn new() -> Self {
        H264Depacketizer {
            waiting_for_idr: true,
            outputs: VecDeque::with_capacity(8),
            ..Default::default()
        }
    }

    /// Seeds SPS/PPS from an fmtp `sprop-parameter-sets` value (comma-separated base64).
    pub fn set_sprop_parameter_sets(&mut self, value: &str) -> Result<(), H264Error> {
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let nal = base64::engine::general_purpose::STANDARD
                .decode(part)
                .map_err(|e| H264Error::Sprop(e.to_string()))?;
            if nal.is_empty() || nal.len() > MAX_PARAMETER_SET {
                return Err(H264Error::Sprop(format!(
                    "{}-byte parameter set",
                    nal.len()
                )));
            }
            match nal.first().map(|header| header & 0x1f) {
                Some(NAL_SPS) => self
                    .store_sps(&nal)
                    .map_err(|e| H264Error::Sprop(e.to_string()))?,
                Some(NAL_PPS) => self.store_pps(&nal),
                other => return Err(H264Error::Sprop(format!("NAL type {other:?}"))),
            }
        }
        Ok(())
    }

    /// The current picture size, once an SPS is known.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.sps_info.map(|info| (info.width, info.height))
    }

    pub fn poll_output(&mut self) -> Option<H264Output> {
        self.outputs.pop_front()
    }

    /// Feeds one RTP packet; `lost_before` is how many packets went missing just before it.
    pub fn push(&mut self, packet: &RtpPacket<'_>, lost_before: u32) -> Result<(), H264Error> {
        let sequence = packet.sequence;
        if lost_before > 0 {
            self.on_loss();
        }
        if self.au_timestamp.is_some_and(|ts| ts != packet.timestamp) {
            // The previous access unit's marker never came: it ends here.
            self.finish_access_unit();
        }
        if lost_before > 0 {
            // The lost packets may have begun this access unit as well: never trust it.
            self.au_broken = true;
        }
        self.au_timestamp = Some(packet.timestamp);
        let result = self.push_payload(packet.payload, sequence);
        if result.is_err() {
            self.on_loss();
        } else if self.au.len() > MAX_ACCESS_UNIT {
            self.on_loss();
            self.au.clear();
            return Err(H264Error::TooLarge { sequence });
        }
        if packet.marker {
            self.finish_access_unit();
        }
        result
    }

    fn push_payload(&mut self, payload: &[u8], sequence: u16) -> Result<(), H264Error> {
        let &[header, ref rest @ ..] = payload else {
            return Err(H264Error::Empty { sequence });
        };
        let malformed = |what| H264Error::Malformed { what, sequence };
        if header & 0x80 != 0 {
            return Err(malformed("NAL header (forbidden_zero_bit set)"));
        }
        match header & 0x1f {
            1..=23 => {
                self.abandon_fragment();
                self.add_nal(payload);
            }
            STAP_A => {
                self.abandon_fragment();
                let mut units = rest;
                while !units.is_empty() {
                    let &[hi, lo, ref after @ ..] = units else {
                        return Err(malformed("STAP-A size"));
                    };
                    let size = usize::from(u16::from_be_bytes([hi, lo]));
                    if size == 0 || size > after.len() {
                        return Err(malformed("STAP-A unit"));
                    }
                    let (nal, next) = after.split_at(size);
                    self.add_nal(nal);
                    units = next;
                }
            }
            FU_A => {
                let &[fu_header, ref fragment @ ..] = rest else {
                    return Err(malformed("FU-A header"));
                };
                let indicator = header;
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                if start {
                    self.abandon_fragment();
                    self.fu_start = Some(self.au.len());
                    self.au.put_u32(0);
                    self.au.put_u8((indicator & 0xe0) | (fu_header & 0x1f));
                } else if self.fu_start.is_none() {
                    if self.au_broken {
                        // The start fragment was lost, as the reorder buffer reported.
                        return Ok(());
                    }
                    return Err(malformed("FU-A continuation without start"));
                }
                self.au.put_slice(fragment);
                if end {
                    self.finish_fragment();
                }
            }
            nal_type => return Err(H264Error::Unsupported { nal_type, sequence }),
        }
        Ok(())
    }

    fn add_nal(&mut self, nal: &[u8]) {
        let Some(&header) = nal.first() else {
            return;
        };
        match header & 0x1f {
            NAL_SPS => {
                if self.store_sps(nal).is_err() {
                    self.on_loss();
                }
            }
            NAL_PPS => self.store_pps(nal),
            NAL_AUD => {}
            nal_type => {
                self.au_keyframe |= nal_type == NAL_IDR;
                self.au.put_u32(nal.len() as u32);
                self.au.put_slice(nal);
            }
        }
    }

    /// Completes the FU-A NAL unit: patch its length, or move a parameter set out of the AU.
    fn finish_fragment(&mut self) {
        let Some(start) = self.fu_start.take() else {
            return;
        };
        // The fragment's NAL header byte follows its 4-byte length field.
        let Some(nal_type) = self.au.get(start + 4).map(|header| header & 0x1f) else {
            self.on_loss();
            return;
        };
        let nal_len = self.au.len().saturating_sub(start + 4);
        if matches!(nal_type, NAL_SPS | NAL_PPS | NAL_AUD) {
            let nal = self.au.split_off(start);
            self.add_nal(nal.get(4..).unwrap_or_default());
        } else if let Some(length) = self.au.get_mut(start..start + 4) {
            self.au_keyframe |= nal_type == NAL_IDR;
            length.copy_from_slice(&(nal_len as u32).to_be_bytes());
        }
    }

    /// A new NAL unit began while a fragment was open: its end was lost.
    fn abandon_fragment(&mut self) {
        if self.fu_start.is_some() {
            self.fu_start = None;
            self.on_loss();
        }
    }

    /// The RTP source changed (new SSRC): the access unit in progress is dropped and video
    /// waits for an IDR from the new source, whose first packet is not treated as loss.
    pub fn source_changed(&mut self) {
        self.on_loss();
        self.au.clear();
        self.au_timestamp = None;
        self.au_broken = false;
        self.au_keyframe = false;
    }

    fn on_loss(&mut self) {
        self.au_broken = true;
        self.fu_start = None;
        if self.started && !self.waiting_for_idr {
            self.outputs.push_back(H264Output::KeyframeNeeded);
        }
        self.waiting_for_idr = true;
    }

    fn finish_access_unit(&mut self) {
        let timestamp = self.au_timestamp.take();
        let broken = std::mem::take(&mut self.au_broken) || self.fu_start.take().is_some();
        let keyframe = std::mem::take(&mut self.au_keyframe);
        if self.au.is_empty() {
            return;
        }
        let usable = !broken && (keyframe || !self.waiting_for_idr);
        let configured = self.sps_info.is_some() && !self.pps.is_empty();
        if !usable || !configured {
            self.dropped_access_units += 1;
            self.au.clear();
            return;
        }
        if self.config_changed {
            self.config_changed = false;
            if let Some(info) = self.sps_info {
                self.outputs.push_back(H264Output::Config {
                    avcc: build_avcc(&self.sps, &self.pps, &info),
                    width: info.width,
                    height: info.height,
                });
            }
        }
        if keyframe {
            self.waiting_for_idr = false;
            self.started = true;
        }
        self.outputs.push_back(H264Output::AccessUnit {
            rtp_timestamp: timestamp.unwrap_or_default(),
            keyframe,
            data: self.au.split().freeze(),
        });
    }

    fn store_sps(&mut self, nal: &[u8]) -> Result<(), super::sps::SpsError> {
        if nal.len() > MAX_PARAMETER_SET || nal == self.sps.as_slice() {
            return Ok(());
        }
        let info = parse_sps(nal)?;
        self.sps.clear();
        self.sps.extend_from_slice(nal);
        self.sps_info = Some(info);
        self.config_changed = true;
        Ok(())
    }

    fn store_pps(&mut self, nal: &[u8]) {
        if nal.len() <= MAX_PARAMETER_SET && nal != self.pps.as_slice() {
            self.pps.clear();
            self.pps.extend_from_slice(nal);
            self.config_changed = true;
        }
    }
}

#[cfg(test)]
#[path = "h264_tests.rs"]
mod tests;
