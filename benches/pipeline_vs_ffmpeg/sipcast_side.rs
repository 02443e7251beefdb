//! The sipcast side: N pipelines in this process, wired through the library API as the daemon
//! wires a call (media session → frames → one RTMP publisher). With `srtp`, each sender
//! encrypts (ffmpeg's `srtp` protocol, `AES_CM_128_HMAC_SHA1_80`) and the media path decrypts
//! every packet, as an SRTP call does.

use std::net::SocketAddr;

use sipcast::media::{
    LocalMedia, MediaConfig, MediaOutputs, MediaSession, MediaStats, RemoteMedia, RemoteStream,
};
use sipcast::rtmp::{self, PublishTarget, PublisherConfig, PublisherHandle, TargetState};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::measure::{measure, usage, wait_until_published};
use crate::nginx::{describe_sink, find_stream, sink_ok};
use crate::peers::{Sender, SenderKeys, start_sender};
use crate::{Fallible, LOOPBACK, Setup, SideResult};
use sipcast::srtp::sdes::{CryptoAttribute, NegotiatedSrtp, SdesKey};
use sipcast::srtp::{MasterKey, SrtpSuite};

/// One pipeline and the task that drives it.
struct Pipeline {
    name: String,
    sender: Sender,
    target: watch::Receiver<rtmp::TargetStatus>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<(u64, MediaStats)>,
}

pub async fn run(setup: &Setup<'_>, srtp: bool) -> Fallible<SideResult> {
    let nginx = setup.nginx;
    let baseline_rss_kb = usage("self")?.rss_kb;
    let mut pipelines = Vec::new();
    for i in 0..setup.streams {
        let name = match srtp {
            true => format!("sipcast_srtp{i}"),
            false => format!("sipcast{i}"),
        };
        pipelines.push(start_pipeline(name, setup, srtp).await?);
    }
    let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
    let all_publishing = || {
        pipelines
            .iter()
            .all(|p| p.target.borrow().state == TargetState::Publishing)
    };
    wait_until_published(nginx, &names, all_publishing).await?;
    let sources: Vec<String> = pipelines.iter().map(|p| p.sender.pid()).collect();
    let window = measure(setup, &names, &["self".to_string()], &sources).await?;

    let mut checks = Vec::new();
    let mut broken = Vec::new();
    for pipeline in pipelines {
        let target = pipeline.target.borrow().clone();
        let _ = pipeline.stop.send(());
        let (frames, stats) = pipeline
            .task
            .await
            .map_err(|e| format!("{}: forwarding task: {e}", pipeline.name))?;
        let video = stats.video.clone().unwrap_or_default();
        let audio = stats.audio.clone().unwrap_or_default();
        let sink = find_stream(&window.sink, &pipeline.name);
        checks.push(format!(
            "sipcast {}: {} RTP packets in ({} lost), {} video + {} audio frames, \
             {frames} frames forwarded, {:.1} MB sent, {} drops, {} reconnects; nginx got {}",
            pipeline.name,
            video.packets + audio.packets,
            video.lost + audio.lost,
            stats.video_frames,
            stats.audio_frames,
            target.bytes_sent as f64 / 1e6,
            target.dropped_frames,
            target.reconnects,
            describe_sink(sink)
        ));
        if frames == 0 || target.bytes_sent == 0 || !sink_ok(sink) {
            let name = &pipeline.name;
            broken.push(format!("{name} published nothing usable"));
        }
    }
    Ok(SideResult {
        baseline_rss_kb,
        ..SideResult::new(
            if srtp { "sipcast+SRTP" } else { "sipcast" },
            names,
            window,
            checks,
            broken,
        )
    })
}

async fn start_pipeline(name: String, setup: &Setup<'_>, srtp: bool) -> Fallible<Pipeline> {
    let local = LocalMedia::bind(LOOPBACK.into(), 20_000..=59_999, true)
        .await
        .map_err(|e| format!("LocalMedia::bind: {e}"))?;
    let video_port = local.video.as_ref().map_or(0, |v| v.rtp_port());
    let audio_port = local.audio.rtp_port();
    // The sockets are bound: packets wait in the kernel while the SDP is read.
    let keys = match srtp {
        true => Some((sdes_keys()?, sdes_keys()?)),
        false => None,
    };
    let sender_keys = keys.as_ref().map(|(video, audio)| SenderKeys {
        video: video.1.clone(),
        audio: audio.1.clone(),
    });
    let ports = (video_port, audio_port);
    let sender = start_sender(setup.source, setup.dir, &name, ports, sender_keys.as_ref()).await?;
    let mut remote = RemoteMedia {
        audio: Some(RemoteStream::new(
            (LOOPBACK, audio_port).into(),
            0,
            "PCMU",
            8000,
        )),
        video: Some(h264_from_sdp(&sender.sdp, (LOOPBACK, video_port).into())?),
    };
    if let (Some((video, audio)), Some(audio_stream), Some(video_stream)) =
        (keys, remote.audio.as_mut(), remote.video.as_mut())
    {
        video_stream.srtp = Some(video.0);
        audio_stream.srtp = Some(audio.0);
    }
    let (session, outputs) = MediaSession::start(local, remote, MediaConfig::default())
        .map_err(|e| format!("MediaSession::start: {e}"))?;
    let publisher = rtmp::spawn(
        PublishTarget {
            url: setup.nginx.url(&name),
            stream_key: None,
            ca_file: None,
        },
        PublisherConfig::default(),
    );
    let target = publisher.status();
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(forward(session, outputs, publisher, stop_rx));
    Ok(Pipeline {
        name,
        sender,
        target,
        stop,
        task,
    })
}

/// The daemon's job for one call, minus SIP: every frame to the target, a keyframe request to
/// the media path whenever the target asks for one. Returns frames forwarded and media stats.
async fn forward(
    session: MediaSession,
    mut outputs: MediaOutputs,
    publisher: PublisherHandle,
    mut stop: oneshot::Receiver<()>,
) -> (u64, MediaStats) {
    let mut keyframes = publisher.keyframe_requests();
    let mut frames = 0;
    session.request_keyframe();
    loop {
        tokio::select! {
            Some(frame) = outputs.frames.recv() => {
                frames += 1;
                publisher.send(frame);
            }
            Some(_) = outputs.events.recv() => {}
            Ok(()) = keyframes.changed() => session.request_keyframe(),
            _ = &mut stop => break,
        }
    }
    let stats = session.status().stats;
    publisher.stop().await;
    session.stop().await;
    (frames, stats)
}

/// Keys for one encrypted stream: what the media path is given, and the sender's key in
/// base64 (`inline:`) for ffmpeg's `-srtp_out_params`.
fn sdes_keys() -> Fallible<(Box<NegotiatedSrtp>, String)> {
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let key = |k: MasterKey| SdesKey {
        key: k,
        mki: None,
        lifetime: None,
    };
    let generate = || MasterKey::generate(suite).map_err(|e| format!("SRTP key: {e}"));
    let sender = generate()?;
    let line = CryptoAttribute {
        tag: 1,
        key: sender.clone(),
        lifetime: None,
        mki: None,
    }
    .to_sdp_line();
    let inline = line.split("inline:").nth(1).unwrap_or_default().to_string();
    let negotiated = NegotiatedSrtp {
        suite,
        tag: 1,
        local: key(generate()?),
        remote: key(sender),
    };
    Ok((Box::new(negotiated), inline))
}

/// The H.264 stream the sender's SDP announces: payload type and fmtp (sprop-parameter-sets).
fn h264_from_sdp(sdp: &str, rtp: SocketAddr) -> Fallible<RemoteStream> {
    let attribute = |prefix: &str| -> Vec<&str> {
        sdp.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .collect()
    };
    let payload_type = attribute("a=rtpmap:")
        .into_iter()
        .find_map(|m| {
            let (pt, encoding) = m.split_once(' ')?;
            encoding.starts_with("H264/").then_some(pt)
        })
        .ok_or_else(|| format!("no H264 rtpmap in the sender's SDP:\n{sdp}"))?;
    let mut stream = RemoteStream::new(
        rtp,
        payload_type
            .parse()
            .map_err(|_| format!("payload type {payload_type:?}"))?,
        "H264",
        90_000,
    );
    let fmtp = attribute(&format!("a=fmtp:{payload_type} "));
    stream.fmtp = fmtp.first().map(|f| f.to_string()).unwrap_or_default();
    if stream.fmtp_param("sprop-parameter-sets").is_none() {
        return Err(format!(
            "no sprop-parameter-sets in the sender's SDP:\n{sdp}"
        ));
    }
    Ok(stream)
}
