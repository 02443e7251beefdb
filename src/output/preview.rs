//! Taps on what the targets publish, for the status page's live preview: every frame a
//! broadcast's output hands its targets also goes to a bounded broadcast channel, which lagging
//! viewers fall off (they never slow or block a target). A viewer that joins mid-stream gets
//! the latest stream headers first and starts at the next keyframe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use crate::frame::MediaFrame;

/// Frames a viewer may fall behind before it loses some (about 3 s of 30 fps video + audio).
const VIEWER_BACKLOG: usize = 256;

/// The latest stream headers of one broadcast's output.
#[derive(Clone, Debug, Default)]
pub struct PreviewHeaders {
    pub metadata: Option<MediaFrame>,
    pub video_config: Option<MediaFrame>,
    pub audio_config: Option<MediaFrame>,
}

struct Channel {
    tx: broadcast::Sender<MediaFrame>,
    headers: PreviewHeaders,
}

/// Every broadcast's tap, by name. Cheap to clone. A disabled hub (`sipcast.toml`
/// `preview = false`) hands out no taps and takes no frames.
#[derive(Clone)]
pub struct PreviewHub {
    channels: Option<Channels>,
}

impl Default for PreviewHub {
    fn default() -> Self {
        PreviewHub::enabled()
    }
}

impl PreviewHub {
    pub fn enabled() -> Self {
        PreviewHub {
            channels: Some(Arc::default()),
        }
    }

    pub fn disabled() -> Self {
        PreviewHub { channels: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.channels.is_some()
    }

    /// The latest headers and a receiver of every frame from now on, or `None` when the
    /// broadcast publishes nothing (or previews are off).
    pub fn subscribe(
        &self,
        broadcast: &str,
    ) -> Option<(PreviewHeaders, broadcast::Receiver<MediaFrame>)> {
        let channels = self.channels.as_ref()?;
        let channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
        let channel = channels.get(broadcast)?;
        Some((channel.headers.clone(), channel.tx.subscribe()))
    }

    /// The output of `broadcast` started: its frames go to viewers through the returned tap.
    pub fn tap(&self, broadcast: &str) -> PreviewTap {
        let Some(channels) = &self.channels else {
            return PreviewTap { inner: None };
        };
        let (tx, _) = broadcast::channel(VIEWER_BACKLOG);
        channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                broadcast.to_string(),
                Channel {
                    tx: tx.clone(),
                    headers: PreviewHeaders::default(),
                },
            );
        PreviewTap {
            inner: Some((channels.clone(), broadcast.to_string(), tx)),
        }
    }
}

type Channels = Arc<Mutex<HashMap<String, Channel>>>;

/// One output's end of the hub; removes its channel when dropped (the output stopped).
pub struct PreviewTap {
    inner: Option<(Channels, String, broadcast::Sender<MediaFrame>)>,
}

impl PreviewTap {
    /// Offers a frame to the viewers (nothing happens when there are none).
    pub fn send(&self, frame: &MediaFrame) {
        let Some((channels, name, tx)) = &self.inner else {
            return;
        };
        if matches!(
            frame,
            MediaFrame::Metadata(_) | MediaFrame::VideoConfig(_) | MediaFrame::AudioConfig(_)
        ) {
            let mut channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(channel) = channels.get_mut(name) {
                let slot = match frame {
                    MediaFrame::Metadata(_) => &mut channel.headers.metadata,
                    MediaFrame::VideoConfig(_) => &mut channel.headers.video_config,
                    _ => &mut channel.headers.audio_config,
                };
                *slot = Some(frame.clone());
            }
        }
        if tx.receiver_count() > 0 {
            let _ = tx.send(frame.clone());
        }
    }
}

impl Drop for PreviewTap {
    fn drop(&mut self) {
        if let Some((channels, name, tx)) = self.inner.take() {
            let mut channels = channels.lock().unwrap_or_else(PoisonError::into_inner);
            // Only our own channel: a restarted output may have replaced it already.
            if channels.get(&name).is_some_and(|c| c.tx.same_channel(&tx)) {
                channels.remove(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn a_viewer_gets_the_headers_then_every_frame_and_a_stopped_output_leaves_no_tap() {
        let hub = PreviewHub::enabled();
        let tap = hub.tap("a");
        tap.send(&MediaFrame::VideoConfig(Bytes::from_static(&[1])));
        let (headers, mut rx) = hub.subscribe("a").expect("a tap");
        assert!(headers.video_config.is_some());
        let frame = MediaFrame::Audio {
            ts_ms: 5,
            format: crate::frame::AudioFormat::Aac,
            data: Bytes::from_static(b"x"),
        };
        tap.send(&frame);
        assert_eq!(rx.recv().await.unwrap(), frame);
        drop(tap);
        assert!(hub.subscribe("a").is_none());
    }

    #[test]
    fn a_disabled_hub_hands_out_nothing() {
        let hub = PreviewHub::disabled();
        let tap = hub.tap("a");
        tap.send(&MediaFrame::VideoConfig(Bytes::new()));
        assert!(hub.subscribe("a").is_none());
    }
}
