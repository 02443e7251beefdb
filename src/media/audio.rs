//! The audio path of a call: reorder → decode → (resample → AAC) and/or copy.
//!
//! Payload types other than the negotiated codec on the same SSRC (RFC 4733 telephone-event,
//! comfort noise) pass through the reorder buffer, so they leave no sequence holes, and are
//! then ignored. A codec we cannot decode still gets AAC silence, so the stream stays valid.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::aac::{AacConfig, AacError, AacFrame, AacTrack};
use super::decode::{AudioCodec, PcmDecoder};
use super::remote::{AudioOutputs, RemoteStream};
use super::reorder::{ReorderBuffer, ReorderConfig};
use super::resample::Resampler;
use super::rtp::RtpPacket;
use super::source::{Admission, SourceReception};
use super::stats::TrackStats;
use super::timeline::{Timeline, Track, flv_ms};
use crate::frame::{AudioFormat, MediaFrame, PayloadArena};

/// Decoding state, apart from the reorder buffer so the release callback can borrow it.
#[derive(Debug)]
struct Decode {
    codec: Option<AudioCodec>,
    outputs: AudioOutputs,
    decoder: Option<PcmDecoder>,
    payload_type: u8,
    aac: Option<AacTrack>,
    copy: Option<AudioFormat>,
    resampler: Option<Resampler>,
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    /// Where copied (G.711, Speex) payloads are kept for the targets.
    payloads: PayloadArena,
    errors: u64,
}

#[derive(Debug)]
pub struct AudioPath {
    source: SourceReception,
    decode: Decode,
}

impl AudioPath {
    /// `remote` is `None` for a call without audio: only AAC silence is produced then.
    pub fn new(
        remote: Option<&RemoteStream>,
        outputs: AudioOutputs,
        reorder: ReorderConfig,
        now: Instant,
    ) -> Result<Self, AacError> {
        let codec = remote.and_then(|r| AudioCodec::from_name(&r.codec, r.clock_rate));
        let Transcoding {
            aac,
            resampler,
            decoder,
        } = Transcoding::new(codec, outputs.aac)?;
        let clock_rate = remote.map_or(8000, |r| r.clock_rate);
        Ok(AudioPath {
            source: SourceReception::new(
                reorder,
                clock_rate,
                remote.map_or("", |r| r.codec.as_str()),
                now,
            ),
            decode: Decode {
                codec,
                outputs,
                decoder,
                payload_type: remote.map_or(0, |r| r.payload_type),
                aac,
                copy: codec
                    .and_then(AudioCodec::copy_format)
                    .filter(|_| outputs.copy),
                resampler,
                pcm: Vec::with_capacity(4096),
                resampled: Vec::with_capacity(8192),
                payloads: PayloadArena::new(16 * 1024),
                errors: 0,
            },
        })
    }

    /// Starts or stops producing AAC and copied audio, keeping the reorder buffer and, when
    /// AAC stays wanted, its encoder. True if anything changed.
    pub fn set_outputs(&mut self, outputs: AudioOutputs) -> Result<bool, AacError> {
        let decode = &mut self.decode;
        if outputs == decode.outputs {
            return Ok(false);
        }
        if outputs.aac != decode.outputs.aac {
            let next = Transcoding::new(decode.codec, outputs.aac)?;
            (decode.aac, decode.resampler, decode.decoder) =
                (next.aac, next.resampler, next.decoder);
        }
        decode.copy = decode
            .codec
            .and_then(AudioCodec::copy_format)
            .filter(|_| outputs.copy);
        decode.outputs = outputs;
        Ok(true)
    }

    /// The AudioSpecificConfig when AAC is produced.
    pub fn aac_config(&self) -> Option<Bytes> {
        self.decode
            .aac
            .as_ref()
            .map(AacTrack::audio_specific_config)
    }

    pub fn aac_sample_rate(&self) -> Option<u32> {
        self.decode.aac.as_ref().map(|aac| aac.config().sample_rate)
    }

    pub fn copy_format(&self) -> Option<AudioFormat> {
        self.decode.copy
    }

    pub fn on_rtp(
        &mut self,
        now: Instant,
        packet: &RtpPacket<'_>,
        datagram: &[u8],
        timeline: &mut Timeline,
        out: &mut VecDeque<MediaFrame>,
    ) -> Admission {
        // A new source gets a fresh reorder buffer; the timeline continues across it.
        let decode = &mut self.decode;
        self.source
            .push(now, packet, datagram, &mut |bytes, _lost| {
                decode.on_released(now, bytes, timeline, out);
            })
    }

    /// Senders (SSRCs) replaced so far.
    pub fn source_changes(&self) -> u64 {
        self.source.changes()
    }

    /// Releases packets whose reorder wait expired and keeps AAC going through silence.
    pub fn on_tick(
        &mut self,
        now: Instant,
        silence_lag_ms: i64,
        timeline: &mut Timeline,
        out: &mut VecDeque<MediaFrame>,
    ) {
        let decode = &mut self.decode;
        self.source
            .reorder()
            .release_expired(now, &mut |bytes, _lost| {
                decode.on_released(now, bytes, timeline, out);
            });
        if let Some(aac) = decode.aac.as_mut() {
            let arrival = timeline.arrival_ms(now);
            let result = aac.fill_silence_until(arrival, silence_lag_ms, &mut |frame| {
                out.push_back(aac_frame(frame));
            });
            decode.errors += u64::from(result.is_err());
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.source.poll_timeout()
    }

    pub fn reorder(&mut self) -> &mut ReorderBuffer {
        self.source.reorder()
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.source.ssrc()
    }

    pub fn stats(&self, timeline: &Timeline) -> TrackStats {
        self.source
            .stats(timeline.discontinuities(Track::Audio), self.decode.errors)
    }
}

/// What AAC output needs: the encoder, a resampler to its rate and a decoder for the codec.
struct Transcoding {
    aac: Option<AacTrack>,
    resampler: Option<Resampler>,
    decoder: Option<PcmDecoder>,
}

impl Transcoding {
    fn new(codec: Option<AudioCodec>, aac: Option<AacConfig>) -> Result<Self, AacError> {
        let pcm_rate = codec.and_then(AudioCodec::pcm_rate);
        let aac = aac
            .map(|config| AacTrack::for_input(config, pcm_rate.map(|rate| rate / 2)))
            .transpose()?;
        let resampler = match (&aac, pcm_rate) {
            (Some(aac), Some(rate)) => Some(Resampler::new(rate, aac.config().sample_rate)),
            _ => None,
        };
        // Decode only for AAC; copy needs none.
        let decoder = codec.and_then(PcmDecoder::new).filter(|_| aac.is_some());
        Ok(Transcoding {
            aac,
            resampler,
            decoder,
        })
    }
}

fn aac_frame(frame: AacFrame) -> MediaFrame {
    MediaFrame::Audio {
        ts_ms: flv_ms(frame.ts_ms),
        format: AudioFormat::Aac,
        data: frame.data,
    }
}

impl Decode {
    fn on_released(
        &mut self,
        now: Instant,
        datagram: &[u8],
        timeline: &mut Timeline,
        out: &mut VecDeque<MediaFrame>,
    ) {
        let Ok(packet) = RtpPacket::parse(datagram) else {
            self.errors += 1;
            return;
        };
        if packet.payload_type != self.payload_type || packet.payload.is_empty() {
            return;
        }
        let ts_ms = timeline.map(Track::Audio, now, packet.ssrc, packet.timestamp);
        if let Some(format) = self.copy {
            out.push_back(MediaFrame::Audio {
                ts_ms: flv_ms(ts_ms),
                format,
                data: self.payloads.payload(packet.payload),
            });
        }
        let (Some(aac), Some(resampler), Some(decoder)) = (
            self.aac.as_mut(),
            self.resampler.as_mut(),
            self.decoder.as_mut(),
        ) else {
            return;
        };
        if !decoder.decode(packet.payload, &mut self.pcm) {
            self.errors += 1;
            return;
        }
        self.resampled.clear();
        resampler.process(&self.pcm, &mut self.resampled);
        let result = aac.push_pcm(ts_ms, &self.resampled, &mut |frame| {
            out.push_back(aac_frame(frame));
        });
        self.errors += u64::from(result.is_err());
    }
}
