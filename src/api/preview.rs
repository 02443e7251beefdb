//! `GET /v1/broadcasts/{name}/preview.mp4`: what the broadcast publishes, as a fragmented MP4
//! live stream for the status page's `<video>` (Media Source Extensions), built from the
//! output's frames without re-encoding.
//!
//! Each viewer reads the output's preview tap (a bounded broadcast channel) from its own
//! response body: a viewer that falls behind loses frames and restarts at the next keyframe;
//! it never slows the targets. The response's `Content-Type` carries the codecs parameter the
//! page hands to `MediaSource.addSourceBuffer`.

pub mod fmp4;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::broadcast::{self, error::RecvError};

use self::fmp4::{Fmp4Muxer, Sample, TrackConfig};
use crate::frame::{AudioFormat, MediaFrame};
use crate::output::PreviewHub;

/// How long a new viewer waits for the stream's video configuration before giving up.
const CONFIG_WAIT: Duration = Duration::from_secs(5);

/// The response for one viewer of `name`, or a 404 when nothing is published under it.
pub async fn stream(hub: &PreviewHub, name: &str) -> Response {
    if !hub.is_enabled() {
        return super::problem(
            StatusCode::NOT_FOUND,
            "live preview is turned off (sipcast.toml: preview = false)",
        );
    }
    let Some((headers, mut rx)) = hub.subscribe(name) else {
        return super::problem(
            StatusCode::NOT_FOUND,
            &format!("{name:?} publishes nothing to preview"),
        );
    };
    let mut config = Headers::from_frames(
        headers.video_config.as_ref(),
        headers.audio_config.as_ref(),
        headers.metadata.as_ref(),
    );
    // A viewer that joins before the first video configuration waits for it.
    let waited = tokio::time::timeout(CONFIG_WAIT, async {
        while config.avc.is_none() {
            match rx.recv().await {
                Ok(frame) => config.take(&frame),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    })
    .await;
    let track = match (waited, config.track()) {
        (Ok(()), Some(track)) => track,
        _ => {
            return super::problem(
                StatusCode::NOT_FOUND,
                &format!("{name:?} has no H.264 video to preview yet"),
            );
        }
    };
    let (Ok(codecs), Ok(muxer)) = (track.codecs(), Fmp4Muxer::new(track.clone())) else {
        return super::problem(
            StatusCode::NOT_FOUND,
            &format!("{name:?} publishes a video configuration the preview cannot use"),
        );
    };
    let content_type = HeaderValue::from_str(&format!("video/mp4; codecs=\"{codecs}\""))
        .unwrap_or(HeaderValue::from_static("video/mp4"));
    let init = muxer.init_segment();
    let viewer = Viewer {
        rx,
        muxer,
        track,
        config,
    };
    let body = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(init) }).chain(
        futures_util::stream::unfold(viewer, |mut v| async move {
            v.next_fragment().await.map(|bytes| (Ok(bytes), v))
        }),
    );
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The stream headers as they arrive.
#[derive(Default)]
struct Headers {
    avc: Option<Bytes>,
    aac: Option<Bytes>,
    size: (u16, u16),
}

impl Headers {
    fn from_frames(
        video: Option<&MediaFrame>,
        audio: Option<&MediaFrame>,
        metadata: Option<&MediaFrame>,
    ) -> Headers {
        let mut headers = Headers::default();
        for frame in [metadata, video, audio].into_iter().flatten() {
            headers.take(frame);
        }
        headers
    }

    fn take(&mut self, frame: &MediaFrame) {
        match frame {
            MediaFrame::VideoConfig(avc) => self.avc = Some(avc.clone()),
            MediaFrame::AudioConfig(aac) => self.aac = Some(aac.clone()),
            MediaFrame::Metadata(m) => {
                let clamp = |v: Option<u32>| v.map_or(0, |v| u16::try_from(v).unwrap_or(0));
                self.size = (clamp(m.width), clamp(m.height));
            }
            _ => {}
        }
    }

    fn track(&self) -> Option<TrackConfig> {
        Some(TrackConfig {
            avc_config: self.avc.clone()?,
            aac_config: self.aac.clone(),
            width: self.size.0,
            height: self.size.1,
        })
    }
}

/// One viewer's end of the tap.
struct Viewer {
    rx: broadcast::Receiver<MediaFrame>,
    muxer: Fmp4Muxer,
    /// What the last init segment described.
    track: TrackConfig,
    config: Headers,
}

impl Viewer {
    /// The next fragment (or a new init segment), or `None` when the output stopped or its
    /// tracks changed.
    async fn next_fragment(&mut self) -> Option<Bytes> {
        loop {
            let frame = match self.rx.recv().await {
                Ok(frame) => frame,
                Err(RecvError::Lagged(_)) => {
                    self.muxer.resync();
                    continue;
                }
                Err(RecvError::Closed) => return None,
            };
            let sample = match frame {
                MediaFrame::Video {
                    dts_ms,
                    cts_ms,
                    keyframe,
                    data,
                } => Sample::Video {
                    dts_ms,
                    cts_ms,
                    keyframe,
                    data,
                },
                MediaFrame::Audio {
                    ts_ms,
                    format: AudioFormat::Aac,
                    data,
                } => Sample::Aac { ts_ms, data },
                // G.711 and Speex are for `copy` targets; MSE plays none of them.
                MediaFrame::Audio { .. } => continue,
                header => {
                    self.config.take(&header);
                    let Some(track) = self.config.track() else {
                        continue;
                    };
                    if track.avc_config == self.track.avc_config
                        && track.aac_config == self.track.aac_config
                    {
                        continue;
                    }
                    // A switch between call and slate: a new init segment in the same
                    // stream; if the tracks themselves changed, the page starts over.
                    let init = self.muxer.reconfigure(track.clone()).ok()?;
                    self.track = track;
                    return Some(init);
                }
            };
            if let Some(fragment) = self.muxer.push(sample) {
                return Some(fragment);
            }
        }
    }
}
