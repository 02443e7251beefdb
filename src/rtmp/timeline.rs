//! What one target actually sends, and when: the per-connection start (headers first, then a
//! keyframe) and the timestamps on the wire.
//!
//! Timestamps *continue* across reconnects: the first frame this target ever sends is 0 and
//! every later frame is `frame_ts - that first frame's ts` (wrapping at 2^32 like RTMP's). A
//! reconnect therefore resumes at, say, 93 000 ms, which is what a CDN's ingest wants from a
//! returning encoder (no jump back to 0 inside one broadcast). Each connection starts with
//! `@setDataFrame onMetaData`, the AVC and AAC sequence headers and a keyframe, all at the
//! keyframe's timestamp, so a recording of any connection starts decodable.
//!
//! Audio waits for that first keyframe too when video is expected; if none arrives within
//! [`AUDIO_ONLY_AFTER_MS`] of audio, the connection starts with audio alone and video joins
//! at its next keyframe. Per track, timestamps never go backwards on the wire.

use super::flv::{self, FlvTag};
use super::queue::Headers;
use crate::frame::MediaFrame;

/// How long audio waits for the first keyframe of a connection before starting without video.
pub const AUDIO_ONLY_AFTER_MS: u32 = 5_000;

#[derive(Debug, Default)]
pub struct PublishTimeline {
    /// The configuration in force at the frame being processed: the queue's latest at connect,
    /// then updated by the configuration frames that pass through here in order.
    headers: Headers,
    /// Media timestamp that is 0 on the wire; fixed by the first frame ever sent.
    base: Option<u32>,
    /// Headers went out on this connection.
    started: bool,
    /// A keyframe went out on this connection.
    video_started: bool,
    /// First audio timestamp seen while waiting for a keyframe on this connection.
    audio_waiting_since: Option<u32>,
    last_video: Option<u32>,
    last_audio: Option<u32>,
    /// Latest wire timestamp of either track, for mid-stream configuration.
    last_any: u32,
    /// Wire timestamp of the last keyframe sent on this connection.
    last_keyframe: Option<u32>,
    /// The longest stretch between two keyframes sent, over all connections (ms).
    longest_gop_ms: u32,
}

/// Serial-number "a is before b" on the 32-bit millisecond circle.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl PublishTimeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new connection is publishing: start over with `headers` (the latest configuration
    /// when the queue resumed) and a keyframe.
    pub fn on_connect(&mut self, headers: Headers) {
        self.headers = headers;
        self.started = false;
        self.video_started = false;
        self.audio_waiting_since = None;
        self.last_keyframe = None;
    }

    /// The longest interval between two published keyframes so far (ms): what a CDN measures
    /// as the stream's keyframe interval.
    pub fn longest_gop_ms(&self) -> u32 {
        self.longest_gop_ms
    }

    /// Whether this connection has begun sending media.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// The tags to send for `frame`, appended to `out`.
    pub fn tags_for(&mut self, frame: &MediaFrame, out: &mut Vec<FlvTag>) {
        match frame {
            MediaFrame::Metadata(_) | MediaFrame::VideoConfig(_) | MediaFrame::AudioConfig(_) => {
                match frame {
                    MediaFrame::Metadata(meta) => self.headers.metadata = Some(meta.clone()),
                    MediaFrame::VideoConfig(avcc) => self.headers.video_config = Some(avcc.clone()),
                    MediaFrame::AudioConfig(asc) => self.headers.audio_config = Some(asc.clone()),
                    _ => {}
                }
                // Before the start these go out with the first frame, from `headers`.
                if self.started {
                    out.push(flv::mux(frame, self.last_any));
                }
            }
            MediaFrame::Video {
                dts_ms, keyframe, ..
            } => {
                if !self.video_started && !keyframe {
                    return;
                }
                let ts = self.wire_ts(*dts_ms, Track::Video);
                if !self.started {
                    self.start(ts, out);
                }
                self.video_started = true;
                if *keyframe {
                    if let Some(previous) = self.last_keyframe {
                        self.longest_gop_ms = self.longest_gop_ms.max(ts.wrapping_sub(previous));
                    }
                    self.last_keyframe = Some(ts);
                }
                let mut tag = flv::mux(frame, ts);
                tag.timestamp_ms = ts;
                out.push(tag);
            }
            MediaFrame::Audio { ts_ms, .. } => {
                if !self.started {
                    let video_expected = self
                        .headers
                        .metadata
                        .as_ref()
                        .map_or(self.headers.video_config.is_some(), |m| m.video);
                    let since = *self.audio_waiting_since.get_or_insert(*ts_ms);
                    let waited = ts_ms.wrapping_sub(since);
                    if video_expected && (waited as i32) < AUDIO_ONLY_AFTER_MS as i32 {
                        return;
                    }
                }
                let ts = self.wire_ts(*ts_ms, Track::Audio);
                if !self.started {
                    self.start(ts, out);
                }
                let mut tag = flv::mux(frame, ts);
                tag.timestamp_ms = ts;
                out.push(tag);
            }
        }
    }

    fn start(&mut self, ts: u32, out: &mut Vec<FlvTag>) {
        self.started = true;
        let headers = &self.headers;
        if let Some(meta) = &headers.metadata {
            out.push(flv::mux(&MediaFrame::Metadata(meta.clone()), ts));
        }
        if let Some(avcc) = &headers.video_config {
            out.push(flv::mux(&MediaFrame::VideoConfig(avcc.clone()), ts));
        }
        if let Some(asc) = &headers.audio_config {
            out.push(flv::mux(&MediaFrame::AudioConfig(asc.clone()), ts));
        }
    }

    /// The wire timestamp for a media timestamp on `track`: rebased, never before the track's
    /// previous one.
    fn wire_ts(&mut self, media_ts: u32, track: Track) -> u32 {
        let base = *self.base.get_or_insert(media_ts);
        let mut ts = media_ts.wrapping_sub(base);
        let last = match track {
            Track::Video => &mut self.last_video,
            Track::Audio => &mut self.last_audio,
        };
        match *last {
            Some(previous) if before(ts, previous) => ts = previous,
            // Media from just before the base (audio racing the first keyframe) starts at 0.
            None if (ts as i32) < 0 => ts = 0,
            _ => {}
        }
        *last = Some(ts);
        if !before(ts, self.last_any) {
            self.last_any = ts;
        }
        ts
    }
}

#[derive(Clone, Copy)]
enum Track {
    Video,
    Audio,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{AudioFormat, StreamMetadata};
    use crate::rtmp::flv::TagKind;
    use bytes::Bytes;

    fn video(ts: u32, keyframe: bool) -> MediaFrame {
        MediaFrame::Video {
            dts_ms: ts,
            cts_ms: 0,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    fn audio(ts: u32) -> MediaFrame {
        MediaFrame::Audio {
            ts_ms: ts,
            format: AudioFormat::Aac,
            data: Bytes::from_static(&[0x21]),
        }
    }

    fn headers(video: bool) -> Headers {
        Headers {
            metadata: Some(StreamMetadata {
                video,
                audio: Some(AudioFormat::Aac),
                ..Default::default()
            }),
            video_config: video.then(|| Bytes::from_static(&[1, 0x42])),
            audio_config: Some(Bytes::from_static(&[0x12, 0x10])),
        }
    }

    /// Runs frames through and describes the tags: kind initial + wire timestamp, with `*` for
    /// sequence headers and `K` for keyframes.
    fn run(timeline: &mut PublishTimeline, frames: &[MediaFrame]) -> Vec<String> {
        let mut out = Vec::new();
        for frame in frames {
            timeline.tags_for(frame, &mut out);
        }
        out.iter()
            .map(|tag| {
                let what = match (tag.kind, tag.body_byte(1), tag.body_byte(0)) {
                    (TagKind::Script, ..) => "meta",
                    (TagKind::Video, Some(0), _) => "avcC",
                    (TagKind::Video, _, Some(0x17)) => "K",
                    (TagKind::Video, ..) => "v",
                    (TagKind::Audio, Some(0), _) => "asc",
                    (TagKind::Audio, ..) => "a",
                };
                format!("{what}{}", tag.timestamp_ms)
            })
            .collect()
    }

    #[test]
    fn connection_starts_with_headers_then_a_keyframe_at_zero() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(true));
        let tags = run(
            &mut t,
            &[
                audio(980),
                video(990, false),
                video(1000, true),
                audio(1001),
                video(1040, false),
            ],
        );
        assert_eq!(tags, ["meta0", "avcC0", "asc0", "K0", "a1", "v40"]);
    }

    #[test]
    fn reconnect_continues_the_timeline_and_waits_for_a_keyframe_again() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(true));
        run(&mut t, &[video(1000, true), audio(1010)]);
        t.on_connect(headers(true));
        let tags = run(
            &mut t,
            &[
                audio(5000),
                video(5020, false),
                video(6000, true),
                audio(6010),
            ],
        );
        assert_eq!(tags, ["meta5000", "avcC5000", "asc5000", "K5000", "a5010"]);
    }

    #[test]
    fn audio_starts_alone_when_no_keyframe_comes() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(true));
        let frames: Vec<_> = (0..=5)
            .map(|i| audio(i * 1000))
            .chain([video(5500, true)])
            .collect();
        assert_eq!(
            run(&mut t, &frames),
            ["meta0", "avcC0", "asc0", "a0", "K500"],
            "base is the first frame sent (audio at 5000), video joins at its keyframe"
        );
    }

    #[test]
    fn audio_only_streams_start_at_once() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(false));
        assert_eq!(
            run(&mut t, &[audio(300), audio(320)]),
            ["meta0", "asc0", "a0", "a20"]
        );
    }

    #[test]
    fn timestamps_never_go_back_per_track_and_wrap_at_2_pow_32() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(true));
        let frames = [
            video(u32::MAX - 20, true),
            audio(u32::MAX - 30),        // before the base: clamped to 0
            video(u32::MAX - 40, false), // backwards: clamped
            video(19, false),            // across the wrap: 40 ms later
        ];
        assert_eq!(
            run(&mut t, &frames),
            ["meta0", "avcC0", "asc0", "K0", "a0", "v0", "v40"]
        );
    }

    #[test]
    fn config_changes_mid_stream_go_out_in_place() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(true));
        let new_avcc = MediaFrame::VideoConfig(Bytes::from_static(&[1, 0x64]));
        let tags = run(
            &mut t,
            &[video(0, true), audio(10), new_avcc, video(40, true)],
        );
        assert_eq!(
            tags,
            ["meta0", "avcC0", "asc0", "K0", "a10", "avcC10", "K40"]
        );
    }

    #[test]
    fn a_config_change_queued_behind_the_first_keyframe_does_not_jump_ahead() {
        let mut t = PublishTimeline::new();
        t.on_connect(headers(true));
        let new_avcc = MediaFrame::VideoConfig(Bytes::from_static(&[1, 0x64]));
        let mut out = Vec::new();
        for frame in [video(0, true), new_avcc, video(40, true)] {
            t.tags_for(&frame, &mut out);
        }
        let sequence_headers: Vec<_> = out
            .iter()
            .filter(|tag| tag.kind == TagKind::Video && tag.body_byte(1) == Some(0))
            .map(|tag| tag.body()[6])
            .collect();
        assert_eq!(
            sequence_headers,
            [0x42, 0x64],
            "old profile first, then the new one"
        );
    }

    #[test]
    fn the_longest_published_gop_is_measured_on_the_wire() {
        let mut timeline = PublishTimeline::new();
        timeline.on_connect(headers(true));
        let mut tags = Vec::new();
        for (ts, key) in [
            (0, true),
            (500, false),
            (2000, true),
            (2400, false),
            (6100, true),
        ] {
            timeline.tags_for(&video(ts, key), &mut tags);
        }
        assert_eq!(timeline.longest_gop_ms(), 4100);
        // A reconnect starts over at a keyframe: the gap across it is not a GOP.
        timeline.on_connect(headers(true));
        timeline.tags_for(&video(9000, true), &mut tags);
        assert_eq!(timeline.longest_gop_ms(), 4100);
    }
}
