//! One millisecond timeline for all tracks of a call (the FLV clock).
//!
//! Each track maps its RTP timestamps (RFC 3550 §5.1) through an anchor: an extended (unwrapped,
//! 32-bit wrap handled) RTP timestamp and the timeline millisecond it plays at. The first packet
//! of the call is 0 ms; a track's anchor comes from arrival time until the sender reports
//! NTP ↔ RTP pairs (RTCP SR, RFC 3550 §6.4.1); then tracks of the same sender are aligned on its
//! NTP clock, which corrects the audio/video offset that network paths and encoders add. Once a
//! track has published frames the correction is slewed in (at most 10 % of media time) rather
//! than jumped, so DTS stay evenly spaced. A new SSRC or a
//! timestamp jump that arrival time contradicts (re-INVITE, sender restart) re-anchors the track
//! so the timeline continues without a jump. Output is monotonic per track and wraps at 2^32 ms
//! like FLV's timestamps.
//!
//! The A/V offset reported is measured, not configured: per track the smallest lag of arrival
//! behind timeline position over a two-second window; video's minus audio's.

use std::time::{Duration, Instant};

/// A timestamp this far from what arrival time predicts is a discontinuity, not jitter.
const DISCONTINUITY_MS: i64 = 3_000;
/// SR corrections beyond this are refused as nonsense (a sender's clocks are consistent).
const MAX_SR_CORRECTION_MS: i64 = 10_000;
const LAG_WINDOW: Duration = Duration::from_secs(2);
/// Sender-report corrections are slewed in: the timeline moves at most 1/SLEW of the media time
/// that passes, so a published track never jumps or compresses frames to a pile.
const SLEW: i64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    Audio,
    Video,
}

#[derive(Clone, Copy, Debug, Default)]
struct Anchor {
    ext_ts: i64,
    ms: i64,
}

#[derive(Clone, Debug)]
struct TrackClock {
    clock_rate: i64,
    ssrc: Option<u32>,
    anchor: Option<Anchor>,
    last_ts: u32,
    last_ext_ts: i64,
    last_ms: Option<i64>,
    /// Arrival minus timeline position of the latest packet.
    last_lag: i64,
    lag_window_min: Option<i64>,
    lag_window_start: Option<Instant>,
    measured_lag: Option<i64>,
    /// Aligned to the sender's NTP clock by a sender report.
    synced: bool,
    /// The next packet starts a new anchor: no "same access unit" shortcut for it.
    reanchored: bool,
    /// Sender-report correction not yet applied (ms), slewed in as media time passes.
    pending_correction: i64,
    discontinuities: u64,
}

impl TrackClock {
    fn new(clock_rate: u32) -> Self {
        TrackClock {
            clock_rate: i64::from(clock_rate.max(1)),
            ssrc: None,
            anchor: None,
            last_ts: 0,
            last_ext_ts: 0,
            last_ms: None,
            last_lag: 0,
            lag_window_min: None,
            lag_window_start: None,
            measured_lag: None,
            synced: false,
            reanchored: false,
            pending_correction: 0,
            discontinuities: 0,
        }
    }

    fn extend(&self, ts: u32) -> i64 {
        self.last_ext_ts + i64::from(ts.wrapping_sub(self.last_ts) as i32)
    }

    fn position(&self, anchor: Anchor, ext_ts: i64) -> i64 {
        anchor.ms + (ext_ts - anchor.ext_ts) * 1000 / self.clock_rate
    }

    fn observe_lag(&mut self, now: Instant, lag: i64) {
        self.last_lag = lag;
        let start = *self.lag_window_start.get_or_insert(now);
        self.lag_window_min = Some(self.lag_window_min.map_or(lag, |min| min.min(lag)));
        if now.saturating_duration_since(start) >= LAG_WINDOW {
            self.measured_lag = self.lag_window_min.take();
            self.lag_window_start = Some(now);
        }
    }
}

/// The timeline of one call; see the module docs.
#[derive(Clone, Debug)]
pub struct Timeline {
    origin: Option<Instant>,
    /// Timeline ms minus sender NTP ms, fixed by the first sender report.
    ntp_offset: Option<i64>,
    audio: TrackClock,
    video: TrackClock,
}

impl Timeline {
    pub fn new(audio_clock_rate: u32, video_clock_rate: u32) -> Self {
        Timeline {
            origin: None,
            ntp_offset: None,
            audio: TrackClock::new(audio_clock_rate),
            video: TrackClock::new(video_clock_rate),
        }
    }

    fn track(&mut self, track: Track) -> &mut TrackClock {
        match track {
            Track::Audio => &mut self.audio,
            Track::Video => &mut self.video,
        }
    }

    /// Milliseconds since the call's first packet, by arrival (0 before any packet).
    pub fn arrival_ms(&self, now: Instant) -> i64 {
        self.origin.map_or(0, |origin| {
            now.saturating_duration_since(origin).as_millis() as i64
        })
    }

    /// Maps one packet's RTP timestamp to the timeline (unwrapped milliseconds).
    pub fn map(&mut self, track: Track, now: Instant, ssrc: u32, timestamp: u32) -> i64 {
        self.origin.get_or_insert(now);
        let arrival = self.arrival_ms(now);
        let clock = self.track(track);
        if clock.ssrc != Some(ssrc) || clock.anchor.is_none() {
            if clock.ssrc.is_some() {
                clock.discontinuities += 1;
            }
            clock.ssrc = Some(ssrc);
            clock.last_ts = timestamp;
            clock.last_ext_ts = 0;
            let ms = arrival
                - if clock.anchor.is_some() {
                    clock.last_lag
                } else {
                    0
                };
            clock.anchor = Some(Anchor { ext_ts: 0, ms });
            clock.reanchored = true;
        }
        let mut ext_ts = clock.extend(timestamp);
        let mut anchor = clock.anchor.unwrap_or_default();
        let predicted = arrival - clock.last_lag;
        if (clock.position(anchor, ext_ts) - predicted).abs() > DISCONTINUITY_MS {
            clock.discontinuities += 1;
            ext_ts = clock.last_ext_ts + 1;
            anchor = Anchor {
                ext_ts,
                ms: predicted,
            };
            clock.anchor = Some(anchor);
            clock.reanchored = true;
        }
        clock.last_ts = timestamp;
        let fresh = std::mem::take(&mut clock.reanchored);
        let same_unit = !fresh && ext_ts == clock.last_ext_ts;
        if clock.pending_correction != 0 && !fresh && ext_ts > clock.last_ext_ts {
            let advanced = (ext_ts - clock.last_ext_ts) * 1000 / clock.clock_rate;
            let limit = (advanced / SLEW).max(1);
            let step = clock.pending_correction.clamp(-limit, limit);
            clock.pending_correction -= step;
            anchor.ms += step;
            clock.anchor = Some(anchor);
        }
        clock.last_ext_ts = ext_ts;
        let position = clock.position(anchor, ext_ts);
        let ms = match clock.last_ms {
            Some(last) if same_unit => last,
            Some(last) => position.max(last + 1),
            None => position,
        };
        clock.last_ms = Some(ms);
        clock.observe_lag(now, arrival - position);
        ms
    }

    /// Feeds an RTCP sender report's NTP timestamp (64-bit, RFC 3550 §4) and RTP timestamp.
    pub fn on_sender_report(&mut self, track: Track, ssrc: u32, ntp: u64, rtp_timestamp: u32) {
        let ntp_ms = ((ntp >> 32) * 1000 + (((ntp & 0xffff_ffff) * 1000) >> 32)) as i64;
        let ntp_offset = self.ntp_offset;
        let clock = self.track(track);
        let Some(anchor) = clock.anchor.filter(|_| clock.ssrc == Some(ssrc)) else {
            return;
        };
        let position = clock.position(anchor, clock.extend(rtp_timestamp));
        if !clock.synced {
            // Measure the offset afresh once the track sits on the sender's clock.
            clock.synced = true;
            clock.lag_window_min = None;
            clock.lag_window_start = None;
            clock.measured_lag = None;
        }
        let Some(offset) = ntp_offset else {
            self.ntp_offset = Some(position - ntp_ms);
            return;
        };
        let correction = ntp_ms + offset - position;
        if correction.abs() > MAX_SR_CORRECTION_MS {
            return;
        }
        if clock.last_ms.is_none() {
            // Nothing published yet: align at once.
            clock.anchor = Some(Anchor {
                ms: anchor.ms + correction,
                ..anchor
            });
        } else {
            clock.pending_correction = correction;
        }
    }

    /// Video lag minus audio lag in ms: positive when video arrives later than audio relative
    /// to their timestamps. `None` until both tracks are on the sender's NTP clock (before
    /// that, arrival time defines both positions and there is nothing to measure) and have a
    /// two-second measurement.
    pub fn av_offset_ms(&self) -> Option<i64> {
        if !(self.audio.synced && self.video.synced) {
            return None;
        }
        Some(self.video.measured_lag? - self.audio.measured_lag?)
    }

    /// SSRC changes and timestamp jumps absorbed so far.
    pub fn discontinuities(&self, track: Track) -> u64 {
        match track {
            Track::Audio => self.audio.discontinuities,
            Track::Video => self.video.discontinuities,
        }
    }
}

/// Converts an unwrapped timeline position to FLV's 32-bit milliseconds.
pub fn flv_ms(ms: i64) -> u32 {
    ms as u64 as u32
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
