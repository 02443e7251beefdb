//! The sans-IO media receiver of one call: RTP and RTCP datagrams in, [`MediaFrame`]s, RTCP to
//! send and events out. It owns the timeline shared by the tracks, the audio and video paths,
//! the keyframe policy's actions and the RTCP receiver reports (RFC 3550 §6.4.2, every
//! `report_interval`).
//!
//! Every datagram enters through [`MediaReceiver::handle_datagram`], with the socket it came
//! on and its source address, which is what the driver calls and what the fuzzer calls: size
//! check, source latch ([`super::latch`]), RTP/RTCP parse, sender (SSRC) admission
//! ([`super::source`]), reorder, depacketize and timeline. Whatever is refused on the way is
//! counted by [`DropReason`] and goes no further.
//!
//! Drive it (see [`super::session`] for the tokio driver):
//! 1. feed [`MediaReceiver::handle_datagram`] as datagrams arrive (tests may skip the latch
//!    with [`MediaReceiver::handle_rtp`] / [`MediaReceiver::handle_rtcp`]), and
//!    [`MediaReceiver::handle_timeout`] when [`MediaReceiver::poll_timeout`] passes;
//! 2. then drain [`MediaReceiver::poll_frame`], [`MediaReceiver::poll_transmit`] and
//!    [`MediaReceiver::poll_event`] until each returns `None`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::aac::AacError;
use super::audio::AudioPath;
use super::keyframe::KeyframeAction;
use super::latch::{MediaPort, SourceLatch};
use super::remote::{AudioOutputs, MediaConfig, RemoteMedia, RemoteStream};
use super::reorder::ReorderBuffer;
use super::rtcp::{self, ReportBlock, RtcpPacket};
use super::rtp::{RtpError, RtpPacket, is_rtcp};
use super::source::Admission;
use super::stats::{DropReason, DroppedDatagrams, MediaStats};
use super::timeline::{Timeline, Track};
use super::video::VideoPath;
use crate::frame::{AudioFormat, MediaFrame, StreamMetadata};

/// How often AAC silence is topped up when no audio arrives.
const SILENCE_TICK: Duration = Duration::from_millis(50);
/// The largest RTP or RTCP datagram taken. A larger one is dropped and counted, never used
/// truncated: the driver receives into a buffer one byte larger to tell.
pub const MAX_DATAGRAM: usize = 2048;

/// What [`MediaReceiver::handle_datagram`] made of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// RTP from the call's sender, taken by its track.
    Rtp,
    /// RTCP from the call's sender.
    Rtcp,
    /// Refused, and counted under this reason.
    Dropped(DropReason),
}

#[derive(Debug, Error)]
pub enum MediaError {
    #[error(transparent)]
    Aac(#[from] AacError),
    #[error("video codec {0} cannot be passed through to FLV (only H264)")]
    VideoCodec(String),
}

/// RTCP to send on a track's RTCP path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcpTransmit {
    pub track: Track,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// Ask for a keyframe with SIP INFO picture_fast_update: an RTCP request went unanswered,
    /// or this sender is known to ignore RTCP (see [`super::keyframe`]).
    KeyframeUnanswered,
}

#[derive(Debug)]
pub struct MediaReceiver {
    config: MediaConfig,
    timeline: Timeline,
    audio: Option<AudioPath>,
    video: Option<VideoPath>,
    metadata: StreamMetadata,
    frames: VecDeque<MediaFrame>,
    transmits: VecDeque<RtcpTransmit>,
    events: VecDeque<MediaEvent>,
    next_report: Instant,
    next_silence: Instant,
    /// Middle 32 bits of the last SR's NTP time per track and when it came (for LSR/DLSR).
    last_sr: [Option<(u32, Instant)>; 2],
    audio_frames: u64,
    remote: RemoteMedia,
    latch: SourceLatch,
    dropped: DroppedDatagrams,
    /// Sender changes of track paths that a re-INVITE replaced.
    earlier_ssrc_changes: u64,
}

fn video_path(
    remote: &RemoteMedia,
    config: &MediaConfig,
    now: Instant,
) -> Result<Option<VideoPath>, MediaError> {
    let Some(stream) = &remote.video else {
        return Ok(None);
    };
    VideoPath::new(stream, config.reorder, config.keyframes, now)
        .map(Some)
        .ok_or_else(|| MediaError::VideoCodec(stream.codec.clone()))
}

/// The audio half of the stream metadata: what the audio path produces.
fn audio_metadata(metadata: &mut StreamMetadata, audio: Option<&AudioPath>, outputs: AudioOutputs) {
    metadata.audio =
        audio.and_then(|a| a.aac_config().map(|_| AudioFormat::Aac).or(a.copy_format()));
    metadata.audio_sample_rate = audio.and_then(|a| {
        a.aac_sample_rate()
            .or(a.copy_format().map(AudioFormat::flv_sample_rate))
    });
    metadata.audio_channels = audio.map(|_| 1);
    metadata.audio_bitrate_kbps = outputs.aac.map(|aac| aac.bitrate / 1000);
}

fn index(track: Track) -> usize {
    match track {
        Track::Audio => 0,
        Track::Video => 1,
    }
}

impl MediaReceiver {
    pub fn new(
        remote: &RemoteMedia,
        config: MediaConfig,
        now: Instant,
    ) -> Result<Self, MediaError> {
        let audio_wanted = remote.audio.is_some() || config.audio_outputs.aac.is_some();
        let audio = audio_wanted
            .then(|| {
                AudioPath::new(
                    remote.audio.as_ref(),
                    config.audio_outputs,
                    config.reorder,
                    now,
                )
            })
            .transpose()?;
        let video = video_path(remote, &config, now)?;
        let dimensions = video.as_ref().and_then(VideoPath::dimensions);
        let mut metadata = StreamMetadata {
            width: dimensions.map(|d| d.0),
            height: dimensions.map(|d| d.1),
            video: video.is_some(),
            ..Default::default()
        };
        audio_metadata(&mut metadata, audio.as_ref(), config.audio_outputs);
        let mut frames = VecDeque::with_capacity(64);
        frames.push_back(MediaFrame::Metadata(metadata.clone()));
        if let Some(asc) = audio.as_ref().and_then(AudioPath::aac_config) {
            frames.push_back(MediaFrame::AudioConfig(asc));
        }
        let audio_rate = remote.audio.as_ref().map_or(8000, |a| a.clock_rate);
        let video_rate = remote.video.as_ref().map_or(90_000, |v| v.clock_rate);
        let mut receiver = MediaReceiver {
            timeline: Timeline::new(audio_rate, video_rate),
            next_report: now + config.report_interval / 2,
            next_silence: now,
            config,
            audio,
            video,
            metadata,
            frames,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last_sr: [None; 2],
            audio_frames: 0,
            remote: remote.clone(),
            latch: SourceLatch::new(remote),
            dropped: DroppedDatagrams::default(),
            earlier_ssrc_changes: 0,
        };
        receiver.request_keyframe(now);
        Ok(receiver)
    }

    /// One datagram received on `port` from `from`: the daemon's whole receive path (see the
    /// module docs). Never panics, whatever the bytes.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        port: MediaPort,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Verdict {
        let verdict = self.judge(now, port, from, datagram);
        if let Verdict::Dropped(reason) = verdict {
            self.dropped.count(reason);
        }
        verdict
    }

    fn judge(
        &mut self,
        now: Instant,
        port: MediaPort,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Verdict {
        if datagram.len() > MAX_DATAGRAM {
            return Verdict::Dropped(DropReason::Oversize);
        }
        if !self.latch.accepts(port, from) {
            return Verdict::Dropped(DropReason::ForeignSource);
        }
        // Only a well-formed packet latches its source: garbage sent first cannot claim a port.
        if port.rtcp || is_rtcp(datagram) {
            // RFC 5506 allows a lone feedback packet; an empty or partly broken one is refused.
            if datagram.is_empty() || rtcp::parse_compound(datagram).any(|packet| packet.is_err()) {
                return Verdict::Dropped(DropReason::Invalid);
            }
            self.latch.confirm(port, from);
            self.handle_rtcp(now, port.track, datagram);
            return Verdict::Rtcp;
        }
        let Ok(packet) = RtpPacket::parse(datagram) else {
            return Verdict::Dropped(DropReason::Invalid);
        };
        self.latch.confirm(port, from);
        match self.take_rtp(now, port.track, &packet, datagram) {
            Admission::Refused => Verdict::Dropped(DropReason::UnknownSsrc),
            Admission::Current | Admission::Replaced => Verdict::Rtp,
        }
    }

    /// The source latched on `port`: where our RTCP for it goes.
    pub fn latched(&self, port: MediaPort) -> Option<SocketAddr> {
        self.latch.latched(port)
    }

    /// One RTP datagram received on `track`'s port, its source taken as the callee's.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        track: Track,
        datagram: &[u8],
    ) -> Result<Admission, RtpError> {
        let packet = RtpPacket::parse(datagram)?;
        let admission = self.take_rtp(now, track, &packet, datagram);
        if admission == Admission::Refused {
            self.dropped.count(DropReason::UnknownSsrc);
        }
        Ok(admission)
    }

    fn take_rtp(
        &mut self,
        now: Instant,
        track: Track,
        packet: &RtpPacket<'_>,
        datagram: &[u8],
    ) -> Admission {
        let timeline = &mut self.timeline;
        let admission = match track {
            Track::Audio => self
                .audio
                .as_mut()
                .map(|audio| audio.on_rtp(now, packet, datagram, timeline, &mut self.frames)),
            Track::Video => self.video.as_mut().map(|video| {
                video.on_rtp(
                    now,
                    packet,
                    datagram,
                    timeline,
                    &mut self.frames,
                    &mut self.metadata,
                )
            }),
        };
        self.poll_keyframe_actions(now);
        admission.unwrap_or(Admission::Current)
    }

    /// The current sender of `track`, once one is known.
    fn track_ssrc(&self, track: Track) -> Option<u32> {
        match track {
            Track::Audio => self.audio.as_ref().and_then(AudioPath::ssrc),
            Track::Video => self.video.as_ref().and_then(VideoPath::ssrc),
        }
    }

    /// One RTCP datagram received for `track`, its source taken as the callee's. Sender
    /// reports of any sender but the track's current one are ignored and counted.
    pub fn handle_rtcp(&mut self, now: Instant, track: Track, datagram: &[u8]) {
        for packet in rtcp::parse_compound(datagram) {
            match packet {
                Ok(RtcpPacket::SenderReport(report)) => {
                    if self.track_ssrc(track) != Some(report.ssrc) {
                        self.dropped.count(DropReason::UnknownSsrc);
                        continue;
                    }
                    self.timeline.on_sender_report(
                        track,
                        report.ssrc,
                        report.ntp,
                        report.rtp_timestamp,
                    );
                    if let Some(last_sr) = self.last_sr.get_mut(index(track)) {
                        *last_sr = Some((rtcp::ntp_middle(report.ntp), now));
                    }
                }
                Ok(_) => {}
                Err(_) => self.dropped.count(DropReason::Invalid),
            }
        }
    }

    /// A re-INVITE changed the remote media: paths whose codec, payload type or fmtp changed
    /// start afresh (video waits for a new IDR); the timeline and the AAC config carry on.
    pub fn update_remote(&mut self, remote: &RemoteMedia, now: Instant) -> Result<(), MediaError> {
        let same = |a: Option<&RemoteStream>, b: Option<&RemoteStream>| match (a, b) {
            (Some(a), Some(b)) => {
                (&a.codec, a.payload_type, a.clock_rate, &a.fmtp)
                    == (&b.codec, b.payload_type, b.clock_rate, &b.fmtp)
            }
            (a, b) => a.is_none() && b.is_none(),
        };
        self.latch.update_remote(remote);
        if !same(self.remote.audio.as_ref(), remote.audio.as_ref()) {
            self.earlier_ssrc_changes += self.audio.as_ref().map_or(0, AudioPath::source_changes);
            let outputs = self.config.audio_outputs;
            let wanted = remote.audio.is_some() || outputs.aac.is_some();
            self.audio = wanted
                .then(|| AudioPath::new(remote.audio.as_ref(), outputs, self.config.reorder, now))
                .transpose()?;
            self.audio_changed(true);
        }
        if !same(self.remote.video.as_ref(), remote.video.as_ref()) {
            self.earlier_ssrc_changes += self.video.as_ref().map_or(0, VideoPath::source_changes);
            self.video = video_path(remote, &self.config, now)?;
            self.request_keyframe(now);
        }
        self.remote = remote.clone();
        Ok(())
    }

    /// Starts or stops AAC and copied audio mid-call, as targets come and go. The timeline and
    /// the reorder buffer carry on; new metadata (and a new AAC sequence header when an encoder
    /// starts) goes out so every target can follow.
    pub fn set_audio_outputs(
        &mut self,
        outputs: AudioOutputs,
        now: Instant,
    ) -> Result<(), MediaError> {
        let previous = self.config.audio_outputs;
        if outputs == previous {
            return Ok(());
        }
        let wanted = self.remote.audio.is_some() || outputs.aac.is_some();
        match (self.audio.as_mut(), wanted) {
            (Some(audio), true) => {
                audio.set_outputs(outputs)?;
            }
            (None, true) => {
                let remote = self.remote.audio.as_ref();
                self.audio = Some(AudioPath::new(remote, outputs, self.config.reorder, now)?);
            }
            (_, false) => self.audio = None,
        }
        // Only once the path follows them, so a failed change can be asked for again.
        self.config.audio_outputs = outputs;
        self.audio_changed(outputs.aac.is_some() && outputs.aac != previous.aac);
        Ok(())
    }

    /// Re-announces the audio after its path changed: the metadata if it differs, and the AAC
    /// sequence header if a new encoder started.
    fn audio_changed(&mut self, new_encoder: bool) {
        let before = self.metadata.clone();
        audio_metadata(
            &mut self.metadata,
            self.audio.as_ref(),
            self.config.audio_outputs,
        );
        if self.metadata != before {
            self.frames
                .push_back(MediaFrame::Metadata(self.metadata.clone()));
        }
        if let Some(asc) = self.audio.as_ref().and_then(AudioPath::aac_config)
            && new_encoder
        {
            self.frames.push_back(MediaFrame::AudioConfig(asc));
        }
    }

    /// Asks the sender for a keyframe (e.g. an RTMP target (re)connected).
    pub fn request_keyframe(&mut self, now: Instant) {
        if let Some(video) = self.video.as_mut() {
            video.keyframes().request(now);
            self.poll_keyframe_actions(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let timeline = &mut self.timeline;
        if let Some(video) = self.video.as_mut() {
            video.on_tick(now, timeline, &mut self.frames, &mut self.metadata);
        }
        if let Some(audio) = self.audio.as_mut() {
            let lag = self.config.silence_lag.as_millis() as i64;
            audio.on_tick(now, lag, timeline, &mut self.frames);
            self.next_silence = now + SILENCE_TICK;
        }
        self.poll_keyframe_actions(now);
        if now >= self.next_report {
            // RFC 3550 §6.3.1: randomised over [0.5, 1.5] × the interval so that many calls
            // from one host do not report in lockstep.
            self.next_report = now
                + self
                    .config
                    .report_interval
                    .mul_f64(rand::random_range(0.5..1.5));
            self.queue_reports(now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let audio = self.audio.as_ref().map(|_| self.next_silence);
        let reorder = self.audio.as_ref().and_then(AudioPath::poll_timeout);
        let video = self.video.as_ref().and_then(VideoPath::poll_timeout);
        [Some(self.next_report), audio, reorder, video]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_frame(&mut self) -> Option<MediaFrame> {
        let frame = self.frames.pop_front()?;
        self.audio_frames += u64::from(matches!(frame, MediaFrame::Audio { .. }));
        Some(frame)
    }

    pub fn poll_transmit(&mut self) -> Option<RtcpTransmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> MediaStats {
        let keyframes = self.video.as_ref().map(|v| v.keyframe_policy());
        let counters = keyframes.map(|k| k.counters()).unwrap_or_default();
        MediaStats {
            audio: self
                .audio
                .as_ref()
                .filter(|a| a.ssrc().is_some())
                .map(|a| a.stats(&self.timeline)),
            video: self.video.as_ref().map(|v| v.stats(&self.timeline)),
            keyframe_interval_ms: keyframes
                .and_then(|k| k.observed_interval())
                .map(|d| d.as_millis() as u64),
            av_offset_ms: self.timeline.av_offset_ms(),
            keyframe_requests: counters.requests,
            keyframe_answers: counters.answers,
            keyframe_via_info: counters.via_info,
            keyframe_rtcp_unanswered: counters.rtcp_unanswered,
            keyframe_response_ms: keyframes
                .and_then(|k| k.response_time())
                .map(|d| d.as_millis() as u64),
            video_frames_dropped: self.video.as_ref().map_or(0, VideoPath::dropped_frames),
            video_frames: self.video.as_ref().map_or(0, VideoPath::frames),
            audio_frames: self.audio_frames,
            frames_dropped: 0,
            dropped: self.dropped,
            ssrc_changes: self.earlier_ssrc_changes
                + self.audio.as_ref().map_or(0, AudioPath::source_changes)
                + self.video.as_ref().map_or(0, VideoPath::source_changes),
        }
    }

    fn poll_keyframe_actions(&mut self, now: Instant) {
        let Some(video) = self.video.as_mut() else {
            return;
        };
        // Until the sender's SSRC is known a request could not name it; the episode stays open.
        let Some(media_ssrc) = video.ssrc() else {
            return;
        };
        while let Some(action) = video.keyframes().poll_action(now) {
            let mut data = Vec::with_capacity(64);
            if action == KeyframeAction::SendInfo {
                self.events.push_back(MediaEvent::KeyframeUnanswered);
                continue;
            }
            let last_sr = self.last_sr.get(index(Track::Video)).copied().flatten();
            report_compound(
                &mut data,
                &self.config,
                video.reorder(),
                media_ssrc,
                last_sr,
                now,
            );
            let local = self.config.local_ssrc;
            match action {
                KeyframeAction::SendFir { seq } => {
                    rtcp::write_fir(&mut data, local, media_ssrc, seq)
                }
                _ => rtcp::write_pli(&mut data, local, media_ssrc),
            }
            self.transmits.push_back(RtcpTransmit {
                track: Track::Video,
                data,
            });
        }
    }

    fn queue_reports(&mut self, now: Instant) {
        let audio = self
            .audio
            .as_mut()
            .and_then(|a| Some((a.ssrc()?, a.reorder())));
        let video = self
            .video
            .as_mut()
            .and_then(|v| Some((v.ssrc()?, v.reorder())));
        for (track, source) in [(Track::Audio, audio), (Track::Video, video)] {
            if let Some((ssrc, reorder)) = source {
                let mut data = Vec::with_capacity(128);
                let last_sr = self.last_sr.get(index(track)).copied().flatten();
                report_compound(&mut data, &self.config, reorder, ssrc, last_sr, now);
                self.transmits.push_back(RtcpTransmit { track, data });
            }
        }
    }
}

/// RR with one block for the track's source, then SDES CNAME: the compound every RTCP
/// datagram must start with (RFC 3550 §6.1).
fn report_compound(
    out: &mut Vec<u8>,
    config: &MediaConfig,
    reorder: &mut ReorderBuffer,
    ssrc: u32,
    last_sr: Option<(u32, Instant)>,
    now: Instant,
) {
    let figures = reorder.report();
    let (last_sr, delay) = last_sr.map_or((0, 0), |(middle, at)| {
        let delay = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
        (middle, delay as u32)
    });
    let block = ReportBlock {
        ssrc,
        fraction_lost: figures.fraction_lost,
        cumulative_lost: figures.cumulative_lost,
        highest_seq: figures.extended_highest_seq,
        jitter: figures.jitter,
        last_sr,
        delay_since_last_sr: delay,
    };
    rtcp::write_receiver_report(out, config.local_ssrc, &[block]);
    rtcp::write_sdes_cname(out, config.local_ssrc, &config.cname);
}

#[cfg(test)]
#[path = "receiver_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "receiver_hostile_tests.rs"]
mod hostile_tests;
