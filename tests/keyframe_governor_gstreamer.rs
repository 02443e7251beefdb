//! The keyframe governor keeps every published GOP within the targets' `keyframe_interval`,
//! against a real encoder that behaves like a SIP video phone: GStreamer's x264enc with a
//! natural keyframe every 10 s, sending RTP and RTCP through rtpbin, whose session turns a
//! received PLI into a force-key-unit event upstream (an IDR on the next frame). Between
//! sipcast's RTCP and GStreamer's sits a relay that drops every third PLI, so RTCP is answered
//! most but not all of the time. SIP INFO is honoured at once: when the media session asks for
//! one (`MediaEvent::KeyframeUnanswered`), the test sends a PLI straight to GStreamer, past
//! the relay. The frames go through the broadcast's output to nginx-rtmp; ffprobe on the
//! recording gives the largest keyframe interval, which must be within the limit.

mod peers;
mod rtmp_support;

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rtmp_support::{Nginx, ffprobe};
use sipcast::media::{
    LocalMedia, MediaConfig, MediaEvent, MediaSession, RemoteMedia, RemoteStream,
};
use sipcast::output::{BroadcastOutput, PreviewHub};
use sipcast::spec::{AudioCodec, RtmpTarget};
use sipcast::status::{BroadcastStatus, StatusBoard};
use tokio::net::UdpSocket;

const NAME: &str = "keyframes";
const RUN: Duration = Duration::from_secs(25);
const RUNS: usize = 3;
/// Frames per second of the test encoder; its natural GOP is 10 s.
const FPS: u32 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gops_stay_within_a_2s_keyframe_interval_though_one_pli_in_three_is_lost() {
    within_the_limit(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gops_stay_within_the_default_4s_keyframe_interval_though_one_pli_in_three_is_lost() {
    within_the_limit(Duration::from_secs(4)).await;
}

async fn within_the_limit(limit: Duration) {
    peers::require("gst-launch-1.0");
    let mut figures = Vec::new();
    for run in 1..=RUNS {
        let figure = one_run(limit).await;
        eprintln!("keyframe_interval {limit:?}, run {run}: {figure}");
        figures.push(figure);
    }
    for figure in &figures {
        assert!(
            figure.largest_recorded_gop <= limit.as_secs_f64() + 0.001,
            "limit {limit:?}: {figure}"
        );
        assert!(
            figure.relay_dropped >= 1,
            "the relay dropped no PLI: {figure}"
        );
        assert!(figure.answers >= 1 && figure.requests >= 1, "{figure}");
    }
    // Over three runs at least one PLI was dropped and asked again with SIP INFO.
    assert!(figures.iter().any(|f| f.via_info >= 1), "{figures:#?}");
}

#[derive(Debug)]
struct Figures {
    /// ffprobe: the largest interval between video packets flagged K, seconds.
    largest_recorded_gop: f64,
    /// Every recorded keyframe interval, seconds.
    gops: Vec<f64>,
    /// What the target reported (`rtmp[].longest_keyframe_interval_ms`).
    target_longest_ms: u32,
    requests: u64,
    answers: u64,
    via_info: u64,
    rtcp_unanswered: u64,
    response_ms: Option<u64>,
    relay_forwarded: u64,
    relay_dropped: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "largest recorded keyframe interval {:.3} s (target reported {} ms; GOPs {:.2?}); \
             requests {} (PLI), answers {}, via INFO {}, RTCP unanswered {}, response {:?} ms; \
             relay forwarded {} PLIs, dropped {}",
            self.largest_recorded_gop,
            self.target_longest_ms,
            self.gops,
            self.requests,
            self.answers,
            self.via_info,
            self.rtcp_unanswered,
            self.response_ms,
            self.relay_forwarded,
            self.relay_dropped
        )
    }
}

async fn one_run(limit: Duration) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), None);
    let local = LocalMedia::bind(IpAddr::from([127, 0, 0, 1]), 20_000..=59_999, true)
        .await
        .unwrap();
    let video = local.video.as_ref().unwrap();
    let sipcast_rtp: SocketAddr = ([127, 0, 0, 1], video.rtp_port()).into();
    let sipcast_rtcp: SocketAddr = ([127, 0, 0, 1], video.rtp_port() + 1).into();

    // GStreamer receives RTCP here; the relay stands between it and sipcast.
    let gst_rtcp: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let relay = Relay::start(sipcast_rtcp, gst_rtcp).await;
    let mut gst = Gst::start(sipcast_rtp, relay.address, gst_rtcp.port());

    let mut stream =
        RemoteStream::new(([127, 0, 0, 1], free_udp_port()).into(), 96, "H264", 90_000);
    stream.rtcp = Some(relay.address);
    let remote = RemoteMedia {
        audio: None,
        video: Some(stream),
    };
    let mut config = MediaConfig::default();
    config.keyframes.max_interval = limit;

    let target = RtmpTarget {
        url: format!("rtmp://127.0.0.1:{}/live/call", nginx.rtmp_port),
        stream_key: None,
        audio_codec: AudioCodec::Aac,
        keyframe_interval: limit,
        ca_file: None,
        backup_url: None,
    };
    let (board, reader) = StatusBoard::new();
    board.update(|s| {
        s.broadcasts
            .insert(NAME.into(), BroadcastStatus::new(NAME, "keyframes.toml"));
    });
    let output = BroadcastOutput::start(
        NAME,
        std::slice::from_ref(&target),
        None,
        true,
        board.clone(),
        &PreviewHub::enabled(),
    );
    let sink = output.sink();
    let (session, mut events) =
        MediaSession::start_into(local, remote, config, Box::new(sink.clone())).unwrap();
    sink.begin_source(None);
    session.request_keyframe();

    // The SIP INFO path: a PLI straight to GStreamer, never dropped.
    let info = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let end = tokio::time::sleep(RUN);
    tokio::pin!(end);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            Some(MediaEvent::KeyframeUnanswered) = events.recv() => {
                let ssrc = session.status().stats.video.and_then(|v| v.ssrc).unwrap_or(0);
                info.send_to(&pli(0x494e_464f, ssrc), gst_rtcp).await.unwrap();
            }
            _ = tick.tick() => {
                if sink.take_keyframe_wanted() {
                    session.request_keyframe();
                }
            }
            _ = &mut end => break,
        }
    }
    let status = session.status();
    let target_longest_ms = reader.with(|s| {
        s.broadcasts[NAME]
            .rtmp
            .first()
            .map_or(0, |t| t.longest_keyframe_interval_ms)
    });
    session.stop().await;
    sink.end_source();
    output.stop().await;
    gst.stop();
    let (relay_forwarded, relay_dropped) = relay.counts();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let recording = copy_recording(&nginx, dir.path());
    let probe = ffprobe(&recording);
    assert_eq!(probe.video_codec.as_deref(), Some("h264"), "{probe:?}");
    let keyframes: Vec<f64> = probe
        .packets
        .iter()
        .filter(|p| p.0 == "video" && p.2)
        .map(|p| p.1)
        .collect();
    let gops: Vec<f64> = keyframes.windows(2).map(|w| w[1] - w[0]).collect();
    let largest = gops.iter().copied().fold(0.0, f64::max);
    let stats = &status.stats;
    Figures {
        largest_recorded_gop: largest,
        gops,
        target_longest_ms,
        requests: stats.keyframe_requests,
        answers: stats.keyframe_answers,
        via_info: stats.keyframe_via_info,
        rtcp_unanswered: stats.keyframe_rtcp_unanswered,
        response_ms: stats.keyframe_response_ms,
        relay_forwarded,
        relay_dropped,
    }
}

fn copy_recording(nginx: &Nginx, dir: &Path) -> PathBuf {
    let files = nginx.recorded_files();
    assert_eq!(files.len(), 1, "{files:?}\n{}", nginx.error_log());
    let recording = dir.join("recording.flv");
    std::fs::copy(&files[0], &recording).unwrap();
    recording
}

fn free_udp_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// An RTCP compound: an empty RR from `sender`, then a PLI for `media` (RFC 4585 §6.3.1).
fn pli(sender: u32, media: u32) -> Vec<u8> {
    let mut data = vec![0x80, 201, 0, 1];
    data.extend_from_slice(&sender.to_be_bytes());
    data.extend_from_slice(&[0x81, 206, 0, 2]);
    data.extend_from_slice(&sender.to_be_bytes());
    data.extend_from_slice(&media.to_be_bytes());
    data
}

/// Whether an RTCP compound holds a PLI (payload-specific feedback, FMT 1).
fn has_pli(datagram: &[u8]) -> bool {
    let mut rest = datagram;
    while let [first, kind, high, low, ..] = *rest {
        if kind == 206 && first & 0x1f == 1 {
            return true;
        }
        let len = 4 * (usize::from(u16::from_be_bytes([high, low])) + 1);
        rest = rest.get(len..).unwrap_or_default();
    }
    false
}

/// Passes RTCP both ways between sipcast and GStreamer, dropping every third datagram from
/// sipcast that carries a PLI.
struct Relay {
    address: SocketAddr,
    forwarded: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(sipcast: SocketAddr, gst: SocketAddr) -> Relay {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let forwarded = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (f, d) = (forwarded.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut plis = 0u64;
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let datagram = &buf[..len];
                if from != sipcast {
                    let _ = socket.send_to(datagram, sipcast).await;
                    continue;
                }
                if has_pli(datagram) {
                    plis += 1;
                    if plis % 3 == 0 {
                        d.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    f.fetch_add(1, Ordering::Relaxed);
                }
                let _ = socket.send_to(datagram, gst).await;
            }
        });
        Relay {
            address,
            forwarded,
            dropped,
            task,
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.forwarded.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// gst-launch-1.0: a moving test picture, x264 with a 10 s natural GOP and no lookahead
/// (zerolatency), RTP to sipcast, RTCP through rtpbin (sent to the relay, received on
/// `rtcp_port`).
struct Gst(Option<Child>);

impl Gst {
    fn start(rtp: SocketAddr, rtcp_to: SocketAddr, rtcp_port: u16) -> Gst {
        let pipeline = format!(
            "rtpbin name=rtpbin \
             videotestsrc is-live=true pattern=ball \
             ! video/x-raw,width=320,height=240,framerate={FPS}/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=400 key-int-max={gop} \
             ! rtph264pay config-interval=-1 pt=96 ! rtpbin.send_rtp_sink_0 \
             rtpbin.send_rtp_src_0 ! udpsink host=127.0.0.1 port={rtp_port} \
             rtpbin.send_rtcp_src_0 ! udpsink host=127.0.0.1 port={rtcp_to_port} sync=false async=false \
             udpsrc address=127.0.0.1 port={rtcp_port} ! rtpbin.recv_rtcp_sink_0",
            gop = FPS * 10,
            rtp_port = rtp.port(),
            rtcp_to_port = rtcp_to.port(),
        );
        let child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gst-launch-1.0");
        Gst(Some(child))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            peers::stop(&mut child, Duration::from_secs(2));
        }
    }
}

impl Drop for Gst {
    fn drop(&mut self) {
        self.stop();
    }
}
