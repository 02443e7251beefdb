//! The RTMP legs of a broadcast's output: a publisher per target, each fed the frames its audio
//! codec wants.
//!
//! Targets are compared by value, so an edit of `[[rtmp]]` keeps the publishers whose target
//! did not change, stops the removed ones and starts the new ones.

use crate::frame::{AudioFormat, MediaFrame};
use crate::media;
use crate::rtmp::{self, PublishTarget, PublisherConfig, PublisherHandle};
use crate::spec::{AudioCodec, RtmpTarget};
use crate::status::RtmpStatus;

struct Leg {
    target: RtmpTarget,
    /// Publishing to the target's `backup_url` rather than its `url`.
    backup: bool,
    handle: PublisherHandle,
    keyframes: tokio::sync::watch::Receiver<u64>,
}

/// The publishers of one broadcast, in spec order.
pub struct TargetLegs {
    legs: Vec<Leg>,
    /// The call's audio as sent (for `audio_codec = "copy"` targets' metadata).
    copy_format: Option<AudioFormat>,
    /// The latest metadata and sequence headers, replayed into targets added mid-call (the
    /// media path sends them once, at the start and when they change).
    headers: StreamHeaders,
}

#[derive(Default)]
struct StreamHeaders {
    metadata: Option<MediaFrame>,
    video_config: Option<MediaFrame>,
    audio_config: Option<MediaFrame>,
}

impl StreamHeaders {
    fn remember(&mut self, frame: &MediaFrame) {
        let slot = match frame {
            MediaFrame::Metadata(_) => &mut self.metadata,
            MediaFrame::VideoConfig(_) => &mut self.video_config,
            MediaFrame::AudioConfig(_) => &mut self.audio_config,
            _ => return,
        };
        *slot = Some(frame.clone());
    }

    fn replay(&self) -> impl Iterator<Item = &MediaFrame> {
        [&self.metadata, &self.video_config, &self.audio_config]
            .into_iter()
            .flatten()
    }
}

impl TargetLegs {
    /// The call's audio as sent changed (a new attempt negotiated another codec).
    pub fn set_copy_format(&mut self, copy_format: Option<AudioFormat>) {
        self.copy_format = copy_format;
    }

    /// Starts a publisher per target. `copy_format` is the call's negotiated audio, if any.
    pub fn start(targets: &[RtmpTarget], copy_format: Option<AudioFormat>) -> Self {
        TargetLegs {
            legs: targets.iter().flat_map(start_legs).collect(),
            copy_format,
            headers: StreamHeaders::default(),
        }
    }

    /// Hands a frame to every publisher that wants it. Never blocks.
    pub fn send(&mut self, frame: &MediaFrame) {
        self.headers.remember(frame);
        for leg in &self.legs {
            if let Some(frame) = frame_for(leg.target.audio_codec, self.copy_format, frame) {
                leg.handle.send(frame);
            }
        }
    }

    /// Keeps unchanged targets, stops removed ones (in the background) and starts new ones.
    pub fn update(&mut self, next: &[RtmpTarget]) {
        let mut old: Vec<Option<Leg>> = std::mem::take(&mut self.legs)
            .into_iter()
            .map(Some)
            .collect();
        for (target, backup) in next
            .iter()
            .flat_map(|t| t.endpoints().map(move |(_, backup)| (t, backup)))
        {
            let kept = old
                .iter_mut()
                .find(|l| {
                    l.as_ref()
                        .is_some_and(|l| &l.target == target && l.backup == backup)
                })
                .and_then(Option::take);
            let leg = kept.unwrap_or_else(|| {
                let leg = start_leg(target, backup);
                for header in self.headers.replay() {
                    if let Some(frame) = frame_for(target.audio_codec, self.copy_format, header) {
                        leg.handle.send(frame);
                    }
                }
                leg
            });
            self.legs.push(leg);
        }
        for leg in old.into_iter().flatten() {
            tokio::spawn(tracing::Instrument::in_current_span(leg.handle.stop()));
        }
    }

    /// True if any publisher (re)connected since the last call and needs a keyframe.
    pub fn take_keyframe_requests(&mut self) -> bool {
        let mut wanted = false;
        for leg in &mut self.legs {
            if leg.keyframes.has_changed().unwrap_or(false) {
                leg.keyframes.borrow_and_update();
                wanted = true;
            }
        }
        wanted
    }

    pub fn statuses(&self) -> Vec<RtmpStatus> {
        self.legs
            .iter()
            .map(|leg| {
                let mut status = leg.handle.status().borrow().clone();
                status.backup = leg.backup;
                status
            })
            .collect()
    }

    /// Takes every publisher out, keeping the stream's headers for publishers started later;
    /// stop what is returned (outside any lock).
    pub fn detach_all(&mut self) -> Detached {
        Detached(std::mem::take(&mut self.legs))
    }

    /// Unpublishes every target, all at once.
    pub async fn stop_all(&mut self) {
        self.detach_all().stop().await;
    }
}

/// Publishers taken out of a [`TargetLegs`], still connected until [`Detached::stop`].
pub struct Detached(Vec<Leg>);

impl Detached {
    /// Unpublishes them all at once (each bounded by the publisher's stop grace).
    pub async fn stop(self) {
        let stops: Vec<_> = self
            .0
            .into_iter()
            .map(|leg| tokio::spawn(tracing::Instrument::in_current_span(leg.handle.stop())))
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
    }
}

/// Status entries of targets that are not connected: one per endpoint, URLs redacted.
pub fn idle_statuses(targets: &[RtmpTarget]) -> Vec<RtmpStatus> {
    targets
        .iter()
        .flat_map(|t| {
            t.endpoints().map(|(url, backup)| RtmpStatus {
                url: rtmp::url::redacted_url(url, t.stream_key.is_some()),
                backup,
                ..Default::default()
            })
        })
        .collect()
}

/// A publisher for the target's URL and, if it has one, another for its backup: separate
/// connections, each reconnecting on its own.
fn start_legs(target: &RtmpTarget) -> Vec<Leg> {
    target
        .endpoints()
        .map(|(_, backup)| start_leg(target, backup))
        .collect()
}

fn start_leg(target: &RtmpTarget, backup: bool) -> Leg {
    let url = match (&target.backup_url, backup) {
        (Some(backup_url), true) => backup_url.clone(),
        _ => target.url.clone(),
    };
    let handle = rtmp::spawn(
        PublishTarget {
            url,
            stream_key: target.stream_key.clone(),
            ca_file: target.ca_file.clone(),
        },
        PublisherConfig::default(),
    );
    let keyframes = handle.keyframe_requests();
    Leg {
        target: target.clone(),
        backup,
        handle,
        keyframes,
    }
}

/// The frame as a target with this audio codec should get it, or `None` to skip it.
fn frame_for(
    codec: AudioCodec,
    copy_format: Option<AudioFormat>,
    frame: &MediaFrame,
) -> Option<MediaFrame> {
    match (codec, frame) {
        (AudioCodec::Aac, MediaFrame::Audio { format, .. }) if *format != AudioFormat::Aac => None,
        (AudioCodec::Copy, MediaFrame::Audio { format, .. }) if *format == AudioFormat::Aac => None,
        (AudioCodec::Copy, MediaFrame::AudioConfig(_)) => None,
        (AudioCodec::Copy, MediaFrame::Metadata(metadata)) => {
            let mut metadata = metadata.clone();
            metadata.audio = copy_format;
            metadata.audio_sample_rate = copy_format.map(AudioFormat::flv_sample_rate);
            metadata.audio_bitrate_kbps = None;
            Some(MediaFrame::Metadata(metadata))
        }
        _ => Some(frame.clone()),
    }
}

/// The FLV audio format of a negotiated codec, for `copy` targets (the media path's rule).
pub fn copy_format(codec: &str, clock_rate: u32) -> Option<AudioFormat> {
    media::decode::AudioCodec::from_name(codec, clock_rate)
        .and_then(media::decode::AudioCodec::copy_format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::StreamMetadata;
    use bytes::Bytes;

    fn audio(format: AudioFormat) -> MediaFrame {
        MediaFrame::Audio {
            ts_ms: 0,
            format,
            data: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn each_target_gets_only_its_audio_flavour() {
        let aac = audio(AudioFormat::Aac);
        let pcmu = audio(AudioFormat::Pcmu);
        let asc = MediaFrame::AudioConfig(Bytes::from_static(&[0x12, 0x10]));
        assert!(frame_for(AudioCodec::Aac, None, &aac).is_some());
        assert!(frame_for(AudioCodec::Aac, None, &pcmu).is_none());
        assert!(frame_for(AudioCodec::Aac, None, &asc).is_some());
        assert!(frame_for(AudioCodec::Copy, Some(AudioFormat::Pcmu), &aac).is_none());
        assert!(frame_for(AudioCodec::Copy, Some(AudioFormat::Pcmu), &pcmu).is_some());
        assert!(frame_for(AudioCodec::Copy, Some(AudioFormat::Pcmu), &asc).is_none());
    }

    #[test]
    fn copy_targets_announce_the_call_audio_in_metadata() {
        let meta = MediaFrame::Metadata(StreamMetadata {
            audio: Some(AudioFormat::Aac),
            audio_sample_rate: Some(48_000),
            audio_bitrate_kbps: Some(64),
            ..Default::default()
        });
        let Some(MediaFrame::Metadata(m)) =
            frame_for(AudioCodec::Copy, Some(AudioFormat::Pcma), &meta)
        else {
            panic!("metadata dropped");
        };
        assert_eq!(
            (m.audio, m.audio_sample_rate, m.audio_bitrate_kbps),
            (Some(AudioFormat::Pcma), Some(8000), None)
        );
        assert_eq!(copy_format("pcmu", 8000), Some(AudioFormat::Pcmu));
        assert_eq!(copy_format("speex", 16_000), Some(AudioFormat::Speex));
        assert_eq!(
            copy_format("speex", 8000),
            None,
            "FLV has no narrowband Speex"
        );
        assert_eq!(copy_format("opus", 48_000), None);
    }
}
