//! Is a recording intact? ffprobe and ffmpeg on the FLV file nginx wrote for one stream: H.264
//! at the source's size and AAC present, the first video frame a keyframe, timestamps never
//! going back, the caller's video throughout (its frame rate and bit rate: the daemon's slate,
//! shown while no usable video arrives, is 10 fps and a few kbit/s at the same size), the
//! whole file decoding without an error, and the 440 Hz tone in the audio (the check of
//! `tests/peers/tone.rs`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::tone::power_at;

/// The tone check's sample rate (`tests/peers/tone.rs` works at 16 kHz).
const PCM_RATE: usize = 16_000;

/// What the caller sends, as the recording must show it.
pub struct Expected {
    pub width: u64,
    pub height: u64,
    pub fps: u32,
    pub video_kbps: u32,
}

/// `Ok` if the recording is intact, else what is wrong with it.
pub fn judge(path: &Path, expected: &Expected) -> Result<(), String> {
    probe(path, expected)?;
    let pcm = decode(path)?;
    tone(&pcm)
}

/// Streams, sizes and packet order, from ffprobe.
fn probe(path: &Path, expected: &Expected) -> Result<(), String> {
    let (width, height) = (expected.width, expected.height);
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries"])
        .arg("stream=codec_type,codec_name,width,height:packet=codec_type,dts_time,size,flags")
        .arg("-show_packets")
        .arg(path)
        .output()
        .map_err(|e| format!("ffprobe: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffprobe: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let json: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("ffprobe's JSON: {e}"))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let stream = |kind: &str| streams.iter().find(|s| s["codec_type"] == kind);
    let video = stream("video").ok_or("no video")?;
    if video["codec_name"] != "h264" {
        return Err(format!("video is {}, not h264", video["codec_name"]));
    }
    let size = (video["width"].as_u64(), video["height"].as_u64());
    if size != (Some(width), Some(height)) {
        return Err(format!("video is {size:?}, not {width}x{height}"));
    }
    let audio = stream("audio").ok_or("no audio")?;
    if audio["codec_name"] != "aac" {
        return Err(format!("audio is {}, not aac", audio["codec_name"]));
    }
    let packets = json["packets"].as_array().cloned().unwrap_or_default();
    let first_video = packets.iter().find(|p| p["codec_type"] == "video");
    let key = first_video.is_some_and(|p| p["flags"].as_str().is_some_and(|f| f.contains('K')));
    if !key {
        return Err("the first video frame is not a keyframe".into());
    }
    let video: Vec<(f64, u64)> = packets
        .iter()
        .filter(|p| p["codec_type"] == "video")
        .filter_map(|p| {
            let dts = p["dts_time"].as_str()?.parse().ok()?;
            let size = p["size"].as_str()?.parse().ok()?;
            Some((dts, size))
        })
        .collect();
    let seconds = match (video.first(), video.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => 0.0,
    };
    let fps = video.len().saturating_sub(1) as f64 / seconds.max(1e-3);
    let kbps = video.iter().map(|v| v.1).sum::<u64>() as f64 * 8.0 / 1000.0 / seconds.max(1e-3);
    // Most of the recording is the caller's video, not the slate.
    if fps < 0.8 * f64::from(expected.fps) || kbps < 0.5 * f64::from(expected.video_kbps) {
        return Err(format!(
            "video at {fps:.1} fps and {kbps:.0} kbit/s over {seconds:.1} s, not the caller's \
             {} fps at {} kbit/s",
            expected.fps, expected.video_kbps
        ));
    }
    for kind in ["video", "audio"] {
        let dts: Vec<f64> = packets
            .iter()
            .filter(|p| p["codec_type"] == kind)
            .filter_map(|p| p["dts_time"].as_str()?.parse().ok())
            .collect();
        if let Some(w) = dts.windows(2).find(|w| w[1] < w[0]) {
            return Err(format!(
                "{kind} timestamps go back from {} to {}",
                w[0], w[1]
            ));
        }
    }
    Ok(())
}

/// Decodes everything (`ffmpeg -v error -i REC -f null -`): any error the decoders or the muxer
/// print fails the recording. Then the audio alone, to 16 kHz mono samples for the tone check.
fn decode(path: &Path) -> Result<Vec<f64>, String> {
    let ffmpeg = |args: &[&str]| {
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(path)
            .args(args)
            .output()
            .map_err(|e| format!("ffmpeg: {e}"))
    };
    let out = ffmpeg(&["-f", "null", "-"])?;
    let errors = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !errors.trim().is_empty() {
        let first = errors.lines().next().unwrap_or("failed");
        return Err(format!("does not decode cleanly: {first}"));
    }
    let rate = PCM_RATE.to_string();
    let out = ffmpeg(&["-vn", "-ac", "1", "-ar", &rate, "-f", "s16le", "-"])?;
    if !out.status.success() {
        return Err("its audio does not decode".into());
    }
    Ok(out
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
        .collect())
}

/// The middle half of the audio is the 440 Hz tone: level within -30..-12 dBFS and its power at
/// 440 Hz 30 dB above 700 and 1250 Hz, as `tests/peers/tone.rs::check_440_hz` demands.
fn tone(pcm: &[f64]) -> Result<(), String> {
    let middle = pcm
        .get(pcm.len() / 4..pcm.len() * 3 / 4)
        .unwrap_or_default();
    if middle.len() < PCM_RATE {
        return Err(format!(
            "{:.1} s of audio",
            pcm.len() as f64 / PCM_RATE as f64
        ));
    }
    let rms = (middle.iter().map(|x| x * x).sum::<f64>() / middle.len() as f64).sqrt();
    let dbfs = 20.0 * (rms.max(1e-9) / 32768.0).log10();
    if !(-30.0..-12.0).contains(&dbfs) {
        return Err(format!("the tone's level is {dbfs:.1} dBFS"));
    }
    let tone = power_at(middle, 440.0);
    let other = power_at(middle, 1250.0).max(power_at(middle, 700.0));
    if tone <= 1000.0 * other {
        let db = 10.0 * (tone / other.max(1e-9)).log10();
        return Err(format!("440 Hz only {db:.0} dB above 700/1250 Hz"));
    }
    Ok(())
}
