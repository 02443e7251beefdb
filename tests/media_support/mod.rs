//! Shared pieces of the media integration tests: ffmpeg as an RTP source (H.264 from testsrc
//! plus a 440 Hz tone in PCMU or Speex), its SDP mapped onto [`RemoteMedia`], and a child process killed on drop.
#![allow(dead_code)] // each test binary uses a different subset

pub use crate::peers::require;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sipcast::media::{LocalMedia, RemoteMedia, RemoteStream};

/// Kills the child on drop so a failing test leaves no ffmpeg behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Minimal SDP reading for what ffmpeg writes: per m= line, port, payload type, rtpmap, fmtp.
pub fn remote_from_sdp(sdp: &str) -> RemoteMedia {
    let mut remote = RemoteMedia::default();
    let mut current: Option<(String, RemoteStream)> = None;
    let finish = |current: Option<(String, RemoteStream)>, remote: &mut RemoteMedia| {
        if let Some((kind, stream)) = current {
            match kind.as_str() {
                "audio" => remote.audio = Some(stream),
                _ => remote.video = Some(stream),
            }
        }
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            finish(current.take(), &mut remote);
            let fields: Vec<&str> = m.split_whitespace().collect();
            let payload_type: u8 = fields[3].parse().unwrap();
            let (codec, clock_rate) = match payload_type {
                0 => ("PCMU", 8000),
                8 => ("PCMA", 8000),
                _ => ("", 90_000),
            };
            current = Some((
                fields[0].to_string(),
                RemoteStream::new(
                    format!("127.0.0.1:{}", fields[1]).parse().unwrap(),
                    payload_type,
                    codec,
                    clock_rate,
                ),
            ));
        } else if let (Some(rtpmap), Some((_, stream))) =
            (line.strip_prefix("a=rtpmap:"), current.as_mut())
        {
            let (_, map) = rtpmap.split_once(' ').unwrap();
            let mut parts = map.split('/');
            stream.codec = parts.next().unwrap().to_string();
            stream.clock_rate = parts.next().unwrap().parse().unwrap();
        } else if let (Some(fmtp), Some((_, stream))) =
            (line.strip_prefix("a=fmtp:"), current.as_mut())
        {
            stream.fmtp = fmtp.split_once(' ').unwrap().1.to_string();
        }
    }
    finish(current, &mut remote);
    remote
}

/// The audio codec ffmpeg sends the 440 Hz tone in.
#[derive(Clone, Copy, Debug)]
pub enum SourceAudio {
    Pcmu,
    /// libspeex at this sampling rate: 8000 narrowband, 16000 wideband.
    Speex(u32),
    /// libopus, stereo, this many milliseconds per packet.
    Opus(u32),
}

impl SourceAudio {
    fn sample_rate(self) -> u32 {
        match self {
            SourceAudio::Pcmu => 8000,
            SourceAudio::Speex(rate) => rate,
            SourceAudio::Opus(_) => 48_000,
        }
    }

    fn encoder(self) -> &'static str {
        match self {
            SourceAudio::Pcmu => "pcm_mulaw",
            SourceAudio::Speex(_) => "libspeex",
            SourceAudio::Opus(_) => "libopus",
        }
    }

    /// Encoder options beyond codec and rate.
    fn options(self) -> Vec<String> {
        match self {
            SourceAudio::Opus(ms) => vec![
                "-ac".into(),
                "2".into(),
                "-frame_duration".into(),
                ms.to_string(),
            ],
            _ => vec!["-ac".into(), "1".into()],
        }
    }
}

/// ffmpeg's RTP output URLs (video, audio), sending from `from` (video, audio) if given.
fn rtp_urls(video_port: u16, audio_port: u16, from: Option<(u16, u16)>) -> [String; 2] {
    let url = |port: u16, local: Option<u16>| match local {
        Some(local) => format!("rtp://127.0.0.1:{port}?localrtpport={local}"),
        None => format!("rtp://127.0.0.1:{port}"),
    };
    [
        url(video_port, from.map(|f| f.0)),
        url(audio_port, from.map(|f| f.1)),
    ]
}

/// ffmpeg sending `seconds` of H.264 (320x240, 25 fps, a keyframe every 2 s) and a 440 Hz tone
/// in real time to `local`'s ports.
pub struct RtpSource {
    ffmpeg: KillOnDrop,
    pub remote: RemoteMedia,
}

impl RtpSource {
    /// Sends H.264 and PCMU.
    pub async fn start(local: &LocalMedia, seconds: f64, dir: &Path) -> RtpSource {
        Self::start_with(local, SourceAudio::Pcmu, seconds, dir).await
    }

    pub async fn start_with(
        local: &LocalMedia,
        audio: SourceAudio,
        seconds: f64,
        dir: &Path,
    ) -> RtpSource {
        let video_port = local.video.as_ref().unwrap().rtp_port();
        Self::start_to(video_port, local.audio.rtp_port(), audio, seconds, dir).await
    }

    /// Sends to these ports; the SDP goes to `dir/ffmpeg.sdp`, which must not exist yet.
    pub async fn start_to(
        video_port: u16,
        audio_port: u16,
        audio: SourceAudio,
        seconds: f64,
        dir: &Path,
    ) -> RtpSource {
        Self::start_to_from(video_port, audio_port, None, audio, seconds, dir).await
    }

    /// As [`Self::start_to`], sending from the given (video, audio) RTP ports (RTCP from each
    /// plus one) rather than from ports of ffmpeg's choosing: a sender that keeps its ports.
    pub async fn start_to_from(
        video_port: u16,
        audio_port: u16,
        from: Option<(u16, u16)>,
        audio: SourceAudio,
        seconds: f64,
        dir: &Path,
    ) -> RtpSource {
        let rate = audio.sample_rate();
        let inputs = [
            format!("testsrc=size=320x240:rate=25:duration={seconds}"),
            format!("sine=frequency=440:sample_rate={rate}:duration={seconds}"),
        ];
        let urls = rtp_urls(video_port, audio_port, from);
        Self::spawn(urls, audio, inputs, dir).await
    }

    /// Black video with a white flash and a 440 Hz beep at the same instants (each second
    /// from `first` on, 200 ms long), and silence otherwise: for measuring lip sync.
    pub async fn start_flash_and_beep(
        local: &LocalMedia,
        first: f64,
        seconds: f64,
        dir: &Path,
    ) -> RtpSource {
        let when = format!("gte(t,{first})*lt(mod(t-{first},1),0.2)");
        let inputs = [
            format!(
                "color=c=black:size=320x240:rate=25:duration={seconds},\
                 drawbox=x=0:y=0:w=320:h=240:color=white:t=fill:enable='{when}'"
            ),
            format!("aevalsrc='0.5*sin(2*PI*440*t)*{when}':s=8000:d={seconds}"),
        ];
        let video_port = local.video.as_ref().unwrap().rtp_port();
        let audio_port = local.audio.rtp_port();
        let urls = rtp_urls(video_port, audio_port, None);
        Self::spawn(urls, SourceAudio::Pcmu, inputs, dir).await
    }

    /// ffmpeg encoding lavfi `inputs` (video, audio) to RTP at `urls` (video, audio).
    async fn spawn(
        urls: [String; 2],
        audio: SourceAudio,
        inputs: [String; 2],
        dir: &Path,
    ) -> RtpSource {
        let rate = audio.sample_rate().to_string();
        require("ffmpeg");
        let sdp_path = dir.join("ffmpeg.sdp");
        let ffmpeg = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re"])
            // Durations on the sources: an output -t would bind only the first output.
            .args(["-f", "lavfi", "-i", &inputs[0]])
            .args(["-f", "lavfi", "-i", &inputs[1]])
            .args([
                "-map",
                "0:v",
                "-c:v",
                "libx264",
                "-profile:v",
                "baseline",
                "-pix_fmt",
                "yuv420p",
            ])
            // zerolatency: like a video phone, no 1.7 s lookahead between capture and sending.
            .args(["-tune", "zerolatency", "-bf", "0", "-g", "50"])
            .args(["-f", "rtp", &urls[0]])
            .args(["-map", "1:a", "-c:a", audio.encoder(), "-ar", &rate])
            .args(audio.options())
            .args(["-f", "rtp"])
            .arg(&urls[1])
            .arg("-sdp_file")
            .arg(&sdp_path)
            .stdin(Stdio::null())
            .spawn()
            .expect("ffmpeg is required for this test");
        let ffmpeg = KillOnDrop(ffmpeg);

        // The sockets are bound, so packets queue in the kernel while we wait for the SDP.
        let mut sdp = String::new();
        for _ in 0..100 {
            sdp = std::fs::read_to_string(&sdp_path).unwrap_or_default();
            if sdp.contains("m=audio") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let remote = remote_from_sdp(&sdp);
        assert_eq!(
            remote.video.as_ref().map(|v| v.codec.as_str()),
            Some("H264"),
            "{sdp}"
        );
        RtpSource { ffmpeg, remote }
    }

    /// Whether ffmpeg has sent everything and exited.
    pub fn finished(&mut self) -> bool {
        self.ffmpeg.0.try_wait().ok().flatten().is_some()
    }
}
