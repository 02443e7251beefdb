//! The video path of a call: reorder → H.264 depacketizer → timeline, with the keyframe policy
//! fed by what the depacketizer sees. Video is passed through, never re-encoded.

use std::collections::VecDeque;
use std::time::Instant;

use super::h264::{H264Depacketizer, H264Error, H264Output};
use super::keyframe::{KeyframePolicy, KeyframePolicyConfig};
use super::remote::RemoteStream;
use super::reorder::{ReorderBuffer, ReorderConfig};
use super::rtp::RtpPacket;
use super::source::{Admission, SourceReception};
use super::stats::TrackStats;
use super::timeline::{Timeline, Track, flv_ms};
use crate::frame::{MediaFrame, StreamMetadata};

/// Depacketizing state, apart from the reorder buffer so the release callback can borrow it.
#[derive(Debug)]
struct Depacketize {
    payload_type: u8,
    ssrc: u32,
    h264: H264Depacketizer,
    keyframes: KeyframePolicy,
    errors: u64,
    frames: u64,
    clock_rate: u32,
    /// First RTP timestamp and access units counted since, until the frame rate is known.
    rate_probe: Option<(u32, u32)>,
    last_error: Option<H264Error>,
}

#[derive(Debug)]
pub struct VideoPath {
    source: SourceReception,
    state: Depacketize,
}

impl VideoPath {
    /// `None` if the stream's codec is not H.264 (nothing else is passed through to FLV).
    pub fn new(
        remote: &RemoteStream,
        reorder: ReorderConfig,
        keyframes: KeyframePolicyConfig,
        now: Instant,
    ) -> Option<Self> {
        if !remote.codec.eq_ignore_ascii_case("H264") {
            return None;
        }
        let mut h264 = H264Depacketizer::new();
        let mut errors = 0;
        if let Some(sprop) = remote.fmtp_param("sprop-parameter-sets") {
            // A bad sprop is not fatal: in-band parameter sets may follow.
            errors += u64::from(h264.set_sprop_parameter_sets(sprop).is_err());
        }
        let keyframes = KeyframePolicy::new(KeyframePolicyConfig {
            use_fir: remote.has_fir(),
            ..keyframes
        });
        Some(VideoPath {
            source: SourceReception::new(reorder, remote.clock_rate, &remote.codec, now),
            state: Depacketize {
                payload_type: remote.payload_type,
                ssrc: 0,
                h264,
                keyframes,
                errors,
                frames: 0,
                clock_rate: remote.clock_rate.max(1),
                rate_probe: None,
                last_error: None,
            },
        })
    }

    /// Picture size known from sprop-parameter-sets, before any packet.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.state.h264.dimensions()
    }

    pub fn keyframes(&mut self) -> &mut KeyframePolicy {
        &mut self.state.keyframes
    }

    pub fn keyframe_policy(&self) -> &KeyframePolicy {
        &self.state.keyframes
    }

    pub fn on_rtp(
        &mut self,
        now: Instant,
        packet: &RtpPacket<'_>,
        datagram: &[u8],
        timeline: &mut Timeline,
        out: &mut VecDeque<MediaFrame>,
        metadata: &mut StreamMetadata,
    ) -> Admission {
        let admission = self.source.admit(now, packet);
        match admission {
            Admission::Refused => return admission,
            // A new sender: what the old one left half-done is dropped; wait for an IDR.
            Admission::Replaced => self.state.h264.source_changed(),
            Admission::Current => {}
        }
        self.state.keyframes.on_video(now);
        let state = &mut self.state;
        self.source.reorder().push(
            now,
            packet.sequence,
            packet.timestamp,
            datagram,
            &mut |bytes, lost| {
                state.on_released(now, bytes, lost, timeline, out, metadata);
            },
        );
        admission
    }

    /// Senders (SSRCs) replaced so far.
    pub fn source_changes(&self) -> u64 {
        self.source.changes()
    }

    pub fn on_tick(
        &mut self,
        now: Instant,
        timeline: &mut Timeline,
        out: &mut VecDeque<MediaFrame>,
        metadata: &mut StreamMetadata,
    ) {
        let state = &mut self.state;
        self.source
            .reorder()
            .release_expired(now, &mut |bytes, lost| {
                state.on_released(now, bytes, lost, timeline, out, metadata);
            });
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        // Keyframe requests wait for the sender's SSRC (the first packet wakes us anyway);
        // without this an open request before any video would be a timeout always due.
        let keyframes = self.ssrc().and(self.state.keyframes.poll_timeout());
        [self.source.poll_timeout(), keyframes]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn reorder(&mut self) -> &mut ReorderBuffer {
        self.source.reorder()
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.source.ssrc()
    }

    pub fn frames(&self) -> u64 {
        self.state.frames
    }

    pub fn dropped_frames(&self) -> u64 {
        self.state.h264.dropped_access_units
    }

    pub fn stats(&self, timeline: &Timeline) -> TrackStats {
        self.source
            .stats(timeline.discontinuities(Track::Video), self.state.errors)
    }
}

/// Access units timed before the frame rate goes into the metadata.
const RATE_PROBE_FRAMES: u32 = 25;

impl Depacketize {
    /// Measures the frame rate over the first access units, for onMetaData (once).
    fn probe_frame_rate(
        &mut self,
        rtp_timestamp: u32,
        out: &mut VecDeque<MediaFrame>,
        metadata: &mut StreamMetadata,
    ) {
        if metadata.frame_rate.is_some() {
            return;
        }
        let (first, counted) = *self.rate_probe.get_or_insert((rtp_timestamp, 0));
        let counted = counted + 1;
        self.rate_probe = Some((first, counted));
        let span = rtp_timestamp.wrapping_sub(first);
        if counted > RATE_PROBE_FRAMES && span > 0 {
            let fps = f64::from(counted - 1) * f64::from(self.clock_rate) / f64::from(span);
            metadata.frame_rate = Some((fps * 100.0).round() / 100.0);
            out.push_back(MediaFrame::Metadata(metadata.clone()));
        }
    }

    fn on_released(
        &mut self,
        now: Instant,
        datagram: &[u8],
        lost: u32,
        timeline: &mut Timeline,
        out: &mut VecDeque<MediaFrame>,
        metadata: &mut StreamMetadata,
    ) {
        let Ok(packet) = RtpPacket::parse(datagram) else {
            self.errors += 1;
            return;
        };
        if packet.payload_type != self.payload_type {
            return;
        }
        self.ssrc = packet.ssrc;
        if let Err(error) = self.h264.push(&packet, lost) {
            self.errors += 1;
            self.last_error = Some(error);
        }
        while let Some(output) = self.h264.poll_output() {
            match output {
                H264Output::Config {
                    avcc,
                    width,
                    height,
                } => {
                    if (metadata.width, metadata.height) != (Some(width), Some(height)) {
                        metadata.width = Some(width);
                        metadata.height = Some(height);
                        out.push_back(MediaFrame::Metadata(metadata.clone()));
                    }
                    out.push_back(MediaFrame::VideoConfig(avcc));
                }
                H264Output::AccessUnit {
                    rtp_timestamp,
                    keyframe,
                    data,
                } => {
                    let ms = timeline.map(Track::Video, now, self.ssrc, rtp_timestamp);
                    if keyframe {
                        self.keyframes.on_keyframe(now);
                    }
                    self.frames += 1;
                    self.probe_frame_rate(rtp_timestamp, out, metadata);
                    out.push_back(MediaFrame::Video {
                        dts_ms: flv_ms(ms),
                        cts_ms: 0,
                        keyframe,
                        data,
                    });
                }
                H264Output::KeyframeNeeded => self.keyframes.request(now),
            }
        }
    }
}
