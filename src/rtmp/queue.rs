//! The bounded per-target frame queue between the media path and one RTMP connection.
//!
//! The producer (the call's media path) must never wait for a slow or dead target, so a full
//! queue drops media instead of pushing back:
//! 1. non-key video first, oldest first, and always a whole GOP tail (from the dropped frame up
//!    to the next keyframe), because later inter frames reference the dropped one; when no
//!    keyframe follows in the queue, incoming inter frames are dropped too until the next
//!    keyframe arrives, and the producer is asked for one;
//! 2. then audio, oldest first;
//! 3. then, when only keyframes are left, the oldest keyframe.
//!
//! Configuration (metadata, AVC and AAC sequence headers) is never dropped: the latest of each is
//! kept in [`Headers`] for the next (re)connect, and queued in order so a mid-stream SPS change
//! reaches the server at the right place.
//!
//! While the target is down the queue is *paused*: media is discarded without counting as
//! drops (it would be stale by the time a connection is up) and only the headers are kept.

use std::collections::VecDeque;

use crate::frame::{MediaFrame, StreamMetadata};
use bytes::Bytes;

/// How much a queue may hold before it drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    pub max_bytes: usize,
    pub max_frames: usize,
}

impl Default for QueueLimits {
    /// About two seconds of a 4 Mbit/s stream with audio.
    fn default() -> Self {
        QueueLimits {
            max_bytes: 1 << 20,
            max_frames: 256,
        }
    }
}

/// The latest configuration frames seen, re-sent on every (re)connect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Headers {
    pub metadata: Option<StreamMetadata>,
    pub video_config: Option<Bytes>,
    pub audio_config: Option<Bytes>,
}

/// Frames dropped because the target could not keep up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub video: u64,
    pub audio: u64,
}

impl DropCounts {
    pub fn total(&self) -> u64 {
        self.video + self.audio
    }
}

/// What a push did, for the producer side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushOutcome {
    /// Video was dropped and decoding can only resume at a keyframe: ask the caller for one.
    pub keyframe_needed: bool,
}

/// Per-frame bookkeeping cost on top of the payload, so tiny frames still count.
const FRAME_OVERHEAD: usize = 64;

fn cost(frame: &MediaFrame) -> usize {
    FRAME_OVERHEAD
        + match frame {
            MediaFrame::Metadata(_) => 0,
            MediaFrame::VideoConfig(data) | MediaFrame::AudioConfig(data) => data.len(),
            MediaFrame::Video { data, .. } | MediaFrame::Audio { data, .. } => data.len(),
        }
}

fn is_inter(frame: &MediaFrame) -> bool {
    matches!(
        frame,
        MediaFrame::Video {
            keyframe: false,
            ..
        }
    )
}

fn is_key(frame: &MediaFrame) -> bool {
    matches!(frame, MediaFrame::Video { keyframe: true, .. })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VideoGate {
    Open,
    /// `after_drop`: the wait was caused by a drop, so frames skipped now count as drops too.
    AwaitKeyframe {
        after_drop: bool,
    },
}

/// The queue itself; sans-IO (the publisher wraps it in a mutex and a wake-up).
#[derive(Debug)]
pub struct FrameQueue {
    limits: QueueLimits,
    frames: VecDeque<MediaFrame>,
    bytes: usize,
    headers: Headers,
    drops: DropCounts,
    /// Whether inter frames can be queued, or must wait for a keyframe.
    video_gate: VideoGate,
    paused: bool,
}

impl FrameQueue {
    /// A queue that starts paused (no connection yet).
    pub fn new(limits: QueueLimits) -> Self {
        FrameQueue {
            limits,
            frames: VecDeque::new(),
            bytes: 0,
            headers: Headers::default(),
            drops: DropCounts::default(),
            video_gate: VideoGate::AwaitKeyframe { after_drop: false },
            paused: true,
        }
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn drops(&self) -> DropCounts {
        self.drops
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Stops queueing media (target down) and forgets what is queued, headers excepted.
    pub fn pause(&mut self) {
        self.paused = true;
        self.video_gate = VideoGate::AwaitKeyframe { after_drop: false };
        self.frames.clear();
        self.bytes = 0;
    }

    /// Starts queueing media again; video resumes at the next keyframe.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    pub fn pop(&mut self) -> Option<MediaFrame> {
        let frame = self.frames.pop_front()?;
        self.bytes -= cost(&frame);
        Some(frame)
    }

    pub fn push(&mut self, frame: MediaFrame) -> PushOutcome {
        let mut outcome = PushOutcome {
            keyframe_needed: false,
        };
        match &frame {
            MediaFrame::Metadata(meta) => self.headers.metadata = Some(meta.clone()),
            MediaFrame::VideoConfig(avcc) => self.headers.video_config = Some(avcc.clone()),
            MediaFrame::AudioConfig(asc) => self.headers.audio_config = Some(asc.clone()),
            MediaFrame::Video { keyframe, .. } => {
                if self.paused {
                    return outcome;
                }
                if *keyframe {
                    self.video_gate = VideoGate::Open;
                } else if let VideoGate::AwaitKeyframe { after_drop } = self.video_gate {
                    // Waiting for the first keyframe of a connection is not a drop.
                    self.drops.video += u64::from(after_drop);
                    return outcome;
                }
            }
            MediaFrame::Audio { .. } => {
                if self.paused {
                    return outcome;
                }
            }
        }
        if self.paused {
            // Configuration while paused lives on in `headers` and is sent at connect.
            return outcome;
        }
        let incoming = cost(&frame);
        let is_media = matches!(frame, MediaFrame::Video { .. } | MediaFrame::Audio { .. });
        while is_media && self.is_full(incoming) {
            if let Some(gap) = self.drop_oldest_gop_tail() {
                outcome.keyframe_needed |= gap;
            } else if !self.drop_oldest(|f| matches!(f, MediaFrame::Audio { .. }), false)
                && !self.drop_oldest(is_key, true)
            {
                break;
            }
        }
        // An inter frame whose GOP tail was just dropped cannot be decoded either.
        if is_inter(&frame) && self.video_gate != VideoGate::Open {
            self.drops.video += 1;
            return outcome;
        }
        self.bytes += incoming;
        self.frames.push_back(frame);
        outcome
    }

    fn is_full(&self, incoming: usize) -> bool {
        !self.frames.is_empty()
            && (self.frames.len() >= self.limits.max_frames
                || self.bytes + incoming > self.limits.max_bytes)
    }

    /// Drops the first non-key video frame and every inter frame after it up to the next
    /// keyframe. Returns `None` when there was nothing to drop, else whether video is now cut
    /// off until a new keyframe arrives.
    fn drop_oldest_gop_tail(&mut self) -> Option<bool> {
        let start = self.frames.iter().position(is_inter)?;
        let mut index = start;
        let mut reached_keyframe = false;
        while index < self.frames.len() {
            if is_key(&self.frames[index]) {
                reached_keyframe = true;
                break;
            }
            if is_inter(&self.frames[index]) {
                if let Some(frame) = self.frames.remove(index) {
                    self.bytes -= cost(&frame);
                    self.drops.video += 1;
                }
            } else {
                index += 1;
            }
        }
        if !reached_keyframe {
            self.video_gate = VideoGate::AwaitKeyframe { after_drop: true };
        }
        Some(!reached_keyframe)
    }

    fn drop_oldest(&mut self, which: impl Fn(&MediaFrame) -> bool, video: bool) -> bool {
        let Some(index) = self.frames.iter().position(which) else {
            return false;
        };
        if let Some(frame) = self.frames.remove(index) {
            self.bytes -= cost(&frame);
            if video {
                self.drops.video += 1;
                // The inter frames after this keyframe went with the GOP tails already.
            } else {
                self.drops.audio += 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::AudioFormat;

    fn video(ts: u32, keyframe: bool) -> MediaFrame {
        MediaFrame::Video {
            dts_ms: ts,
            cts_ms: 0,
            keyframe,
            data: Bytes::from(vec![0; 36]),
        }
    }

    fn audio(ts: u32) -> MediaFrame {
        MediaFrame::Audio {
            ts_ms: ts,
            format: AudioFormat::Pcmu,
            data: Bytes::from(vec![0; 36]),
        }
    }

    /// A resumed queue holding at most `frames` frames of 100 bytes.
    fn queue(frames: usize) -> FrameQueue {
        let mut q = FrameQueue::new(QueueLimits {
            max_bytes: frames * 100,
            max_frames: 1000,
        });
        q.resume();
        q
    }

    fn drain(q: &mut FrameQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop())
            .map(|f| match f {
                MediaFrame::Video {
                    dts_ms, keyframe, ..
                } => format!("{}{dts_ms}", if keyframe { "K" } else { "v" }),
                MediaFrame::Audio { ts_ms, .. } => format!("a{ts_ms}"),
                MediaFrame::VideoConfig(_) => "avcc".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn drops_non_key_video_before_audio_and_asks_for_a_keyframe() {
        let mut q = queue(5);
        for f in [
            video(0, true),
            audio(0),
            video(40, false),
            audio(20),
            video(80, false),
        ] {
            assert!(!q.push(f).keyframe_needed);
        }
        let outcome = q.push(audio(40));
        assert!(outcome.keyframe_needed);
        // The whole GOP tail went; audio stayed.
        assert_eq!(drain(&mut q), ["K0", "a0", "a20", "a40"]);
        assert_eq!(q.drops(), DropCounts { video: 2, audio: 0 });
        // Until the next keyframe, inter frames are dropped on arrival.
        q.push(video(120, false));
        q.push(video(160, true));
        q.push(video(200, false));
        assert_eq!(drain(&mut q), ["K160", "v200"]);
        assert_eq!(q.drops().video, 3);
    }

    #[test]
    fn drops_only_up_to_the_next_keyframe() {
        let mut q = queue(6);
        for f in [
            video(0, true),
            video(40, false),
            video(80, true),
            video(120, false),
            audio(0),
            audio(20),
        ] {
            q.push(f);
        }
        let outcome = q.push(video(160, false));
        // The tail before K80 went; the GOP after it is intact, so no keyframe is needed.
        assert!(!outcome.keyframe_needed);
        assert_eq!(drain(&mut q), ["K0", "K80", "v120", "a0", "a20", "v160"]);
    }

    #[test]
    fn then_audio_then_oldest_keyframe() {
        let mut q = queue(2);
        q.push(audio(0));
        q.push(audio(20));
        q.push(audio(40));
        assert_eq!(q.drops(), DropCounts { video: 0, audio: 1 });
        assert_eq!(drain(&mut q), ["a20", "a40"]);
        q.push(video(0, true));
        q.push(video(40, true));
        q.push(video(80, true));
        assert_eq!(drain(&mut q), ["K40", "K80"]);
        assert_eq!(q.drops().total(), 2);
    }

    #[test]
    fn configuration_is_never_dropped_and_kept_while_paused() {
        let mut q = FrameQueue::new(QueueLimits {
            max_bytes: 100,
            max_frames: 1,
        });
        q.push(MediaFrame::VideoConfig(Bytes::from_static(b"first")));
        q.push(video(0, true));
        q.push(audio(0));
        assert!(q.is_empty(), "paused queues hold no media and no frames");
        assert_eq!(q.drops().total(), 0);
        q.resume();
        q.push(video(40, false));
        q.push(video(80, true));
        q.push(MediaFrame::VideoConfig(Bytes::from_static(b"second")));
        assert_eq!(drain(&mut q), ["K80", "avcc"]);
        assert_eq!(q.headers().video_config.as_deref(), Some(&b"second"[..]));
        q.pause();
        q.resume();
        q.push(video(120, false));
        assert!(q.is_empty(), "after a pause video waits for a keyframe");
    }

    #[test]
    fn an_oversized_frame_still_passes_an_empty_queue() {
        let mut q = queue(1);
        q.push(MediaFrame::Video {
            dts_ms: 0,
            cts_ms: 0,
            keyframe: true,
            data: Bytes::from(vec![0; 10_000]),
        });
        assert_eq!(q.len(), 1);
    }
}
