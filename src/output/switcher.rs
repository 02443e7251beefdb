//! The output timeline of one broadcast: what its targets show (the call, or the slate plus
//! silence when the call gives nothing usable) on one millisecond timeline that keeps rising
//! across every switch and every call attempt.
//!
//! Sans-IO. Drive it like this, draining after every input:
//!
//! ```text
//! loop {
//!     select! { frame from the call => switcher.push(now, frame),
//!               call attempt begins/ends => switcher.begin_source(now) / end_source(now),
//!               sleep_until(switcher.poll_timeout()) => switcher.handle_timeout(now) }
//!     while let Some(frame) = switcher.poll_output() { send to every target }
//! }
//! ```
//!
//! Rules:
//! - Each call attempt's frames arrive on the media path's own timeline (starting near 0). The
//!   first frame of an attempt fixes one offset for all its tracks, so audio and video stay in
//!   step; per track, output timestamps never go backwards.
//! - Slate → call on the call's keyframe (non-keyframes before it are dropped); call → slate
//!   when the call ends or its video stops for `video_loss_after`, starting at the slate's IDR.
//!   The AVC sequence header is sent only when SPS/PPS really change.
//! - Audio passes through whenever the call has some; a flavour (AAC, G.711) that has had no
//!   call audio for `audio_gap_after` gets silence frames at its exact frame cadence.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::silence::SilenceFrame;
use super::slate::{SLATE_FPS, Slate};
use crate::frame::{AudioFormat, MediaFrame, StreamMetadata};
use crate::media::session::RECEIVE_EVERY;
pub use crate::rtmp::Showing;

/// Call frames are placed this far ahead of "now" on the output timeline, so that a track
/// whose first frame lags the other's a little still lands after the slate's last frame. The
/// media task hands over a receive tick's frames at once, the oldest up to a tick old, so the
/// lead is a tick more than that margin.
const SOURCE_LEAD_MS: i64 = RECEIVE_EVERY.as_millis() as i64 + 100;

#[derive(Clone, Debug)]
pub struct SwitcherConfig {
    /// The slate to show; `custom_slate` keeps it whatever the call's resolution.
    pub slate: Arc<Slate>,
    pub custom_slate: bool,
    /// Some target wants AAC.
    pub aac: bool,
    /// Some target wants the call's audio as sent (G.711 silence in this format when none).
    pub copy: Option<AudioFormat>,
    /// Call video silent this long: show the slate.
    pub video_loss_after: Duration,
    /// Call audio of a flavour silent this long: fill that flavour with silence.
    pub audio_gap_after: Duration,
}

impl SwitcherConfig {
    pub fn new(slate: Arc<Slate>, custom_slate: bool) -> Self {
        SwitcherConfig {
            slate,
            custom_slate,
            aac: true,
            copy: None,
            video_loss_after: Duration::from_millis(1500),
            // A tick between two deliveries of call audio is normal, not a gap.
            audio_gap_after: Duration::from_millis(300) + RECEIVE_EVERY,
        }
    }
}

/// Figures for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SwitcherStats {
    pub switches: u64,
    /// Time on the slate so far, including the current stretch.
    pub slate_ms: u64,
    /// Call video frames dropped while waiting for a keyframe to switch on.
    pub frames_waiting_for_keyframe: u64,
}

/// The current call attempt's media.
#[derive(Default)]
struct Source {
    /// Output ms = call ms + offset; fixed by the attempt's first frame.
    offset_ms: Option<i64>,
    video_config: Option<Bytes>,
    last_video_at: Option<Instant>,
}

/// One audio flavour: its silence and where its timestamps are.
struct AudioLane {
    silence: SilenceFrame,
    last_call_audio_at: Option<Instant>,
    last_ts: Option<u32>,
    /// While filling: the first silence frame's ms and how many followed it.
    filling: Option<(i64, u64)>,
}

impl AudioLane {
    fn new(silence: SilenceFrame) -> Self {
        AudioLane {
            silence,
            last_call_audio_at: None,
            last_ts: None,
            filling: None,
        }
    }

    fn fill_ts(&self, anchor: i64, count: u64) -> i64 {
        let samples = count * u64::from(self.silence.samples);
        anchor + (samples * 1000 / u64::from(self.silence.sample_rate)) as i64
    }

    fn frame_ms(&self) -> i64 {
        i64::from(self.silence.samples) * 1000 / i64::from(self.silence.sample_rate)
    }

    /// The fill anchored at `anchor` from frame `count` on: every silence frame that starts at
    /// or before `until`, at most `max` of them, never before the lane's last frame. Returns
    /// the next frame's count.
    fn emit_silence_through(
        &mut self,
        anchor: i64,
        mut count: u64,
        until: i64,
        max: u64,
        out: &mut VecDeque<MediaFrame>,
    ) -> u64 {
        let limit = count.saturating_add(max);
        while count < limit && self.fill_ts(anchor, count) <= until {
            let ts_ms = monotonic_after(self.last_ts, self.fill_ts(anchor, count));
            self.last_ts = Some(ts_ms);
            out.push_back(MediaFrame::Audio {
                ts_ms,
                format: self.silence.format,
                data: self.silence.data.clone(),
            });
            count += 1;
        }
        count
    }
}

pub struct Switcher {
    config: SwitcherConfig,
    /// Output ms 0.
    start: Instant,
    showing: Showing,
    source: Option<Source>,
    /// The sequence header the targets have now.
    current_avcc: Option<Bytes>,
    /// Slate playback: index of the next frame and its output ms, while showing the slate.
    slate_next: Option<(usize, i64)>,
    last_video_ts: Option<u32>,
    lanes: Vec<AudioLane>,
    slate_since: Option<Instant>,
    keyframe_wanted: bool,
    stats: SwitcherStats,
    out: VecDeque<MediaFrame>,
}

impl Switcher {
    /// Starts the timeline at `now` on the slate (no call yet).
    pub fn new(now: Instant, config: SwitcherConfig) -> Self {
        let mut lanes = Vec::new();
        if config.aac
            && let Some(silence) = SilenceFrame::aac()
        {
            lanes.push(AudioLane::new(silence));
        }
        if let Some(silence) = config.copy.and_then(SilenceFrame::g711) {
            lanes.push(AudioLane::new(silence));
        }
        let mut switcher = Switcher {
            config,
            start: now,
            showing: Showing::Slate,
            source: None,
            current_avcc: None,
            slate_next: None,
            last_video_ts: None,
            lanes,
            slate_since: Some(now),
            keyframe_wanted: false,
            stats: SwitcherStats::default(),
            out: VecDeque::new(),
        };
        switcher
            .out
            .push_back(MediaFrame::Metadata(switcher.slate_metadata()));
        if switcher.config.aac {
            switcher
                .out
                .push_back(MediaFrame::AudioConfig(announced_asc()));
        }
        switcher.show_slate(now);
        switcher.handle_timeout(now);
        switcher
    }

    /// The targets changed: add the silence lanes (and the AAC sequence header) a new audio
    /// flavour needs. Lanes no target wants any more are kept: their frames are filtered per
    /// target anyway.
    pub fn want_audio(&mut self, aac: bool, copy: Option<AudioFormat>) {
        if aac && !self.config.aac {
            self.config.aac = true;
            if let Some(silence) = SilenceFrame::aac() {
                self.lanes.push(AudioLane::new(silence));
            }
            self.out.push_back(MediaFrame::AudioConfig(announced_asc()));
        }
        if self.config.copy.is_none()
            && let Some(format) = copy
        {
            self.config.copy = Some(format);
            if let Some(silence) = SilenceFrame::g711(format) {
                self.lanes.push(AudioLane::new(silence));
            }
        }
    }

    pub fn showing(&self) -> Showing {
        self.showing
    }

    pub fn stats(&self, now: Instant) -> SwitcherStats {
        let mut stats = self.stats;
        if let Some(since) = self.slate_since {
            stats.slate_ms += now.saturating_duration_since(since).as_millis() as u64;
        }
        stats
    }

    /// True once after the switcher started wanting a keyframe from the call (it shows the
    /// slate while the call has video): ask the caller for one.
    pub fn take_keyframe_wanted(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    /// A call attempt's media begins (its timestamps start over).
    pub fn begin_source(&mut self, now: Instant) {
        if self.showing == Showing::Call {
            self.show_slate(now);
        }
        self.source = Some(Source::default());
    }

    /// The call attempt is over: back to the slate at once.
    pub fn end_source(&mut self, now: Instant) {
        self.source = None;
        if self.showing == Showing::Call {
            self.show_slate(now);
        }
        for lane in &mut self.lanes {
            lane.last_call_audio_at = None;
        }
        self.handle_timeout(now);
    }

    /// A frame of the current call attempt, on its own timeline.
    pub fn push(&mut self, now: Instant, frame: MediaFrame) {
        if self.source.is_none() {
            self.source = Some(Source::default());
        }
        match frame {
            MediaFrame::Metadata(metadata) => self.on_call_metadata(metadata),
            MediaFrame::VideoConfig(avcc) => {
                if let Some(source) = self.source.as_mut() {
                    source.video_config = Some(avcc.clone());
                }
                if self.showing == Showing::Call && self.current_avcc.as_ref() != Some(&avcc) {
                    self.current_avcc = Some(avcc.clone());
                    self.out.push_back(MediaFrame::VideoConfig(avcc));
                }
            }
            MediaFrame::Video {
                dts_ms,
                cts_ms,
                keyframe,
                data,
            } => self.on_call_video(now, dts_ms, cts_ms, keyframe, data),
            MediaFrame::AudioConfig(asc) => {
                // Our AAC settings are fixed, so the call's config matches the one announced at
                // start; a different one is passed on (a player resets its decoder).
                if announced_asc() != asc {
                    self.out.push_back(MediaFrame::AudioConfig(asc));
                }
            }
            MediaFrame::Audio {
                ts_ms,
                format,
                data,
            } => self.on_call_audio(now, ts_ms, format, data),
        }
        self.handle_timeout(now);
    }

    /// The next moment [`Switcher::handle_timeout`] has work: a slate frame, a silence frame, or
    /// the call's video running late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let slate = self
            .slate_next
            .map(|(_, ms)| self.start + Duration::from_millis(ms.max(0) as u64));
        let video_loss = match (self.showing, &self.source) {
            (Showing::Call, Some(source)) => source
                .last_video_at
                .map(|at| at + self.config.video_loss_after),
            _ => None,
        };
        let audio = self.lanes.iter().map(|lane| match lane.filling {
            Some((anchor, count)) => {
                self.start + Duration::from_millis(lane.fill_ts(anchor, count).max(0) as u64)
            }
            None => lane
                .last_call_audio_at
                .map_or(self.start, |at| at + self.config.audio_gap_after),
        });
        [slate, video_loss].into_iter().flatten().chain(audio).min()
    }

    /// Emits what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.showing == Showing::Call
            && let Some(at) = self.source.as_ref().and_then(|s| s.last_video_at)
            && now.saturating_duration_since(at) >= self.config.video_loss_after
        {
            self.show_slate(now);
        }
        self.play_slate(now);
        self.fill_silence(now);
    }

    pub fn poll_output(&mut self) -> Option<MediaFrame> {
        self.out.pop_front()
    }

    fn out_ms(&self, now: Instant) -> i64 {
        now.saturating_duration_since(self.start).as_millis() as i64
    }

    /// Output ms of a call timestamp; fixes the attempt's offset on its first frame.
    fn map_call_ts(&mut self, now: Instant, ts: u32) -> i64 {
        let out_now = self.out_ms(now);
        let source = self.source.get_or_insert_with(Source::default);
        let offset = *source
            .offset_ms
            .get_or_insert(out_now + SOURCE_LEAD_MS - i64::from(ts));
        i64::from(ts) + offset
    }

    fn on_call_metadata(&mut self, metadata: StreamMetadata) {
        if !self.config.custom_slate
            && let (Some(w), Some(h)) = (metadata.width, metadata.height)
        {
            self.config.slate = Slate::built_in(Some((w, h)));
        }
        if self.showing == Showing::Call {
            self.out.push_back(MediaFrame::Metadata(metadata));
        }
    }

    fn on_call_video(&mut self, now: Instant, dts: u32, cts: i32, keyframe: bool, data: Bytes) {
        let ts = self.map_call_ts(now, dts);
        let Some(source) = self.source.as_mut() else {
            return;
        };
        source.last_video_at = Some(now);
        if self.showing == Showing::Slate {
            let Some(avcc) = source.video_config.clone().filter(|_| keyframe) else {
                self.stats.frames_waiting_for_keyframe += 1;
                self.keyframe_wanted = true;
                return;
            };
            self.showing = Showing::Call;
            self.slate_next = None;
            self.stats.switches += 1;
            if let Some(since) = self.slate_since.take() {
                self.stats.slate_ms += now.saturating_duration_since(since).as_millis() as u64;
            }
            if self.current_avcc.as_ref() != Some(&avcc) {
                self.current_avcc = Some(avcc.clone());
                self.out.push_back(MediaFrame::VideoConfig(avcc));
            }
        }
        let dts_ms = self.next_video_ts(ts);
        self.out.push_back(MediaFrame::Video {
            dts_ms,
            cts_ms: cts,
            keyframe,
            data,
        });
    }

    fn on_call_audio(&mut self, now: Instant, ts: u32, format: AudioFormat, data: Bytes) {
        let ts = self.map_call_ts(now, ts);
        if matches!(format, AudioFormat::Pcmu | AudioFormat::Pcma) {
            // The copy lane's silence follows the call's G.711 law.
            for lane in &mut self.lanes {
                if lane.silence.format != format
                    && matches!(lane.silence.format, AudioFormat::Pcmu | AudioFormat::Pcma)
                    && let Some(silence) = SilenceFrame::g711(format)
                {
                    lane.silence = silence;
                }
            }
        }
        let lane = self.lanes.iter_mut().find(|l| l.silence.format == format);
        let ts_ms = match lane {
            Some(lane) => {
                lane.last_call_audio_at = Some(now);
                if let Some((anchor, count)) = lane.filling.take() {
                    // Silence runs on up to the call's first frame, which sits the source lead
                    // ahead of the output's clock: no hole in the audio at the switch (at most
                    // a second of it, as when filling).
                    let second = (1000 / lane.frame_ms().max(1)) as u64;
                    let until = ts - lane.frame_ms();
                    lane.emit_silence_through(anchor, count, until, second, &mut self.out);
                }
                let ts_ms = monotonic_after(lane.last_ts, ts);
                lane.last_ts = Some(ts_ms);
                ts_ms
            }
            // A flavour without a silence lane (Speex as sent): passed through as it comes.
            None => ts as u32,
        };
        self.out.push_back(MediaFrame::Audio {
            ts_ms,
            format,
            data,
        });
    }

    /// Output DTS for a video frame wanted at `ts`: never at or before the last one.
    fn next_video_ts(&mut self, ts: i64) -> u32 {
        let dts = monotonic_after(self.last_video_ts, ts);
        self.last_video_ts = Some(dts);
        dts
    }

    fn show_slate(&mut self, now: Instant) {
        if self.showing == Showing::Call {
            self.stats.switches += 1;
        }
        self.showing = Showing::Slate;
        self.slate_since.get_or_insert(now);
        let first = self
            .last_video_ts
            .map_or(0, |t| i64::from(t) + 1)
            .max(self.out_ms(now));
        self.slate_next = Some((0, first));
        if self.current_avcc.as_ref() != Some(&self.config.slate.avcc) {
            self.current_avcc = Some(self.config.slate.avcc.clone());
            self.out
                .push_back(MediaFrame::Metadata(self.slate_metadata()));
            self.out
                .push_back(MediaFrame::VideoConfig(self.config.slate.avcc.clone()));
        }
        if self
            .source
            .as_ref()
            .is_some_and(|s| s.last_video_at.is_some())
        {
            self.keyframe_wanted = true;
        }
    }

    fn play_slate(&mut self, now: Instant) {
        let out_now = self.out_ms(now);
        let interval = i64::from(1000 / SLATE_FPS);
        let frames = self.config.slate.frames.len();
        while let Some((index, ms)) = self.slate_next {
            if ms > out_now || frames == 0 {
                break;
            }
            let Some(frame) = self.config.slate.frames.get(index).cloned() else {
                self.slate_next = Some((0, ms));
                continue;
            };
            let dts_ms = self.next_video_ts(ms);
            self.out.push_back(MediaFrame::Video {
                dts_ms,
                cts_ms: 0,
                keyframe: frame.keyframe,
                data: frame.data,
            });
            self.slate_next = Some(((index + 1) % frames, ms + interval));
        }
    }

    fn fill_silence(&mut self, now: Instant) {
        let out_now = self.out_ms(now);
        let gap = self.config.audio_gap_after;
        for lane in &mut self.lanes {
            let silent = lane
                .last_call_audio_at
                .is_none_or(|at| now.saturating_duration_since(at) >= gap);
            if !silent {
                continue;
            }
            let (anchor, mut count) = match lane.filling {
                Some(filling) => filling,
                None => {
                    let after_last = lane.last_ts.map_or(0, |t| i64::from(t) + lane.frame_ms());
                    let anchor = match lane.last_call_audio_at {
                        // Call audio stopped: continue where it ended, but not in the past.
                        Some(_) => after_last.max(out_now - lane.frame_ms()),
                        None => after_last.max(out_now),
                    };
                    (anchor, 0)
                }
            };
            // Never more than a second of silence at once (after a long stall, jump instead).
            if lane.fill_ts(anchor, count) < out_now - 1000 {
                let skip = (out_now - 1000 - lane.fill_ts(anchor, count)) / lane.frame_ms().max(1);
                count += skip.max(0) as u64;
            }
            let count = lane.emit_silence_through(anchor, count, out_now, u64::MAX, &mut self.out);
            lane.filling = Some((anchor, count));
        }
    }

    fn slate_metadata(&self) -> StreamMetadata {
        StreamMetadata {
            width: Some(self.config.slate.width),
            height: Some(self.config.slate.height),
            frame_rate: Some(f64::from(SLATE_FPS)),
            video: true,
            audio: if self.config.aac {
                Some(AudioFormat::Aac)
            } else {
                self.config.copy
            },
            audio_sample_rate: Some(if self.config.aac { 48_000 } else { 8000 }),
            audio_channels: Some(1),
            audio_bitrate_kbps: None,
        }
    }
}

/// The AudioSpecificConfig of our AAC (the media path's default settings), announced at start.
fn announced_asc() -> Bytes {
    let config = crate::media::aac::AacConfig::default();
    let asc = crate::media::aac::audio_specific_config(config.sample_rate).unwrap_or([0x11, 0x90]);
    Bytes::copy_from_slice(&asc)
}

/// `ts` as a wire timestamp (wrapping at 2^32 ms like FLV's), moved just past `last` if it
/// would not be after it.
fn monotonic_after(last: Option<u32>, ts: i64) -> u32 {
    let ts = ts.rem_euclid(1 << 32) as u32;
    match last {
        Some(last) if (ts.wrapping_sub(last) as i32) <= 0 => last.wrapping_add(1),
        _ => ts,
    }
}

#[cfg(test)]
#[path = "switcher_tests.rs"]
mod tests;
