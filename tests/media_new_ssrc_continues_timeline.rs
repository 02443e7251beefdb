//! A sender restart mid-call (a second ffmpeg from the same ports: new SSRCs, new random
//! sequence numbers and timestamps), as after a phone's media restart. The frames continue on
//! the same timeline without a jump, video resumes with a keyframe, and timestamps stay
//! monotonic. (A sender that moves to other ports must say so in a re-INVITE: the source
//! latch accepts nobody else, see `src/media/latch.rs`.)

mod media_support;
mod peers;

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use media_support::{RtpSource, SourceAudio};
use sipcast::frame::{AudioFormat, MediaFrame};
use sipcast::media::session::RECEIVE_EVERY;
use sipcast::media::{AudioOutputs, LocalMedia, MediaConfig, MediaSession};

const LEG: f64 = 3.0;

/// An even UDP port whose odd neighbour is free too (ffmpeg sends RTCP from it).
fn free_pair() -> u16 {
    loop {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port() & !1;
        drop(socket);
        let pair = (
            std::net::UdpSocket::bind(("127.0.0.1", port)),
            std::net::UdpSocket::bind(("127.0.0.1", port + 1)),
        );
        if let (Ok(_), Ok(_)) = pair {
            return port;
        }
    }
}

/// Frames with the (monotonic) time they came out.
type Timed = Vec<(MediaFrame, Instant)>;

async fn collect_until_done(
    source: &mut RtpSource,
    frames: &mut tokio::sync::mpsc::Receiver<MediaFrame>,
    out: &mut Timed,
) {
    let mut check = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            Some(frame) = frames.recv() => out.push((frame, sipcast::clock::monotonic())),
            _ = check.tick() => if source.finished() { break },
        }
    }
    // The sender's last packets wait in the socket for the media task's next receive tick.
    let until = sipcast::clock::monotonic() + 2 * RECEIVE_EVERY;
    while let Ok(Some(frame)) = tokio::time::timeout_at(until, frames.recv()).await {
        out.push((frame, sipcast::clock::monotonic()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sender_continues_the_timeline() {
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let local = LocalMedia::bind(IpAddr::from([127, 0, 0, 1]), 20_000..=59_999, true)
        .await
        .unwrap();
    let (video_port, audio_port) = (
        local.video.as_ref().unwrap().rtp_port(),
        local.audio.rtp_port(),
    );
    let from = Some((free_pair(), free_pair()));
    let mut first = RtpSource::start_to_from(
        video_port,
        audio_port,
        from,
        SourceAudio::Pcmu,
        LEG,
        first_dir.path(),
    )
    .await;
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: None,
            copy: true,
        },
        ..Default::default()
    };
    let (session, mut media) = MediaSession::start(local, first.remote.clone(), config).unwrap();
    let mut frames = Vec::new();
    collect_until_done(&mut first, &mut media.frames, &mut frames).await;
    let switch = frames.len();
    let mut second = RtpSource::start_to_from(
        video_port,
        audio_port,
        from,
        SourceAudio::Pcmu,
        LEG,
        second_dir.path(),
    )
    .await;
    collect_until_done(&mut second, &mut media.frames, &mut frames).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(frame) = media.frames.try_recv() {
        frames.push((frame, sipcast::clock::monotonic()));
    }
    let status = session.status();
    session.stop().await;

    // Per track: (timestamp, when it came out, keyframe), and where the second sender begins.
    let track = |audio: bool| -> (Vec<(u32, Instant, bool)>, usize) {
        let pick = |(frame, at): &(MediaFrame, Instant)| match frame {
            MediaFrame::Video {
                dts_ms, keyframe, ..
            } if !audio => Some((*dts_ms, *at, *keyframe)),
            MediaFrame::Audio {
                ts_ms,
                format: AudioFormat::Pcmu,
                ..
            } if audio => Some((*ts_ms, *at, false)),
            _ => None,
        };
        let before = frames[..switch].iter().filter_map(pick).count();
        (frames.iter().filter_map(pick).collect(), before)
    };
    for (name, (ts, before)) in [("video", track(false)), ("audio", track(true))] {
        assert!(
            ts.windows(2).all(|w| w[1].0 >= w[0].0),
            "{name} monotonic: {ts:?}"
        );
        // Across the switch the timeline advances by the real pause between the senders (their
        // random timestamp bases are hours apart), give or take packetisation and jitter.
        let (last, next) = (ts[before - 1], ts[before]);
        let timeline_gap = i64::from(next.0 - last.0);
        let wall_gap = next.1.duration_since(last.1).as_millis() as i64;
        assert!(
            (timeline_gap - wall_gap).abs() < 400,
            "{name}: timeline {timeline_gap} ms, wall {wall_gap} ms: {status:?}"
        );
        if name == "video" {
            assert!(next.2, "video resumes with a keyframe");
        }
    }
    let stats = status.stats;
    assert!(stats.video.unwrap().discontinuities >= 1);
    assert!(stats.audio.unwrap().discontinuities >= 1);
}
