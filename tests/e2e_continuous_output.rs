//! The stream outlives the call: one publish per target for as long as the broadcast is desired
//! live, the slate (with the call's audio, or silence) whenever the call gives no video. Real
//! `sipcast run`, sipp callees and nginx-rtmp on 127.0.0.1, judged on nginx's recordings.

mod e2e_support;
mod peers;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e_support::*;
use peers::tone::tone_by_second;

/// One decoded video frame: (time s, width, height, keyframe).
fn video_frames(path: &Path) -> Vec<(f64, u32, u32, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["frame=pts_time,width,height,key_frame", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Some((
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                *f.first()? == "1",
            ))
        })
        .collect()
}

/// What ffmpeg says when it decodes the whole file (empty: it decodes cleanly). Frames keep
/// their own millisecond timestamps: the slate's 10 fps and the call's 15 fps must not be
/// forced onto one constant-rate grid.
fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-fps_mode", "passthrough", "-enc_time_base:v", "1:1000"])
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn only_recording(nginx: &Nginx, key: &str) -> std::path::PathBuf {
    std::thread::sleep(Duration::from_millis(500));
    let files = recordings_of(nginx, key);
    assert_eq!(files.len(), 1, "one publish, one recording: {files:?}");
    files.into_iter().next().unwrap()
}

fn seconds_pattern(tones: &[bool]) -> String {
    tones.iter().map(|t| if *t { '#' } else { '.' }).collect()
}

#[test]
fn a_redial_keeps_one_publish_with_the_slate_between_the_calls() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let callee = Sipp::start("e2e_callee_hangs_up.xml", &["-m", "2"]);
    let key = "continuous";
    let mut spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, key)]);
    spec.extra = "[redial]\ninitial = \"3s\"\nmax = \"3s\"\n".into();
    let live = daemon.go_live(key, &spec);
    let first = live["call"]["call_id"].clone();
    // The callee hangs up after 6 s; while the broadcast backs off, the target stays on air.
    let between = daemon.wait_status(key, Duration::from_secs(12), "backoff on the slate", |s| {
        s["phase"] == "backoff"
    });
    assert_eq!(target_state(&between, 0), "publishing", "{between}");
    let again = daemon.wait_status(key, Duration::from_secs(12), "the redial streaming", |s| {
        is_streaming(s) && s["call"]["call_id"] != first && s["rtmp"][0]["showing"] == "call"
    });
    assert_eq!(
        again["rtmp"][0]["reconnects"], 0,
        "never reconnected: {again}"
    );
    assert!(again["rtmp"][0]["switches"].as_u64() >= Some(3), "{again}");
    assert!(
        again["rtmp"][0]["slate_seconds"].as_u64() >= Some(2),
        "{again}"
    );
    std::thread::sleep(Duration::from_secs(4));
    daemon.delete_spec(key);
    daemon.wait_gone(key, Duration::from_secs(5));

    let file = only_recording(nginx, key);
    let probe = ffprobe(&file);
    assert!(probe.first_video_is_keyframe() && probe.monotonic());
    assert_eq!(decode_errors(&file), "", "decodes cleanly");
    let tones = tone_by_second(&file);
    let pattern = seconds_pattern(&tones);
    eprintln!("tone per second: {pattern}");
    // Call, then at least two seconds of silence (the slate), then the call's tone again.
    let first_silence = pattern
        .find("..")
        .expect("a silent stretch between the calls");
    assert!(pattern[..first_silence].contains("####"), "{pattern}");
    assert!(
        pattern[first_silence..].contains("###"),
        "tone back after the redial: {pattern}"
    );
}

#[test]
fn an_audio_only_call_is_published_with_the_slate_and_its_tone() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee_audio_only.xml", &[]);
    let key = "bridge";
    let live = daemon.go_live(
        key,
        &SpecText::direct(&callee.addr(), &[stream_url(nginx, key)]),
    );
    assert_eq!(
        live["call"]["video_codec"],
        serde_json::Value::Null,
        "{live}"
    );
    assert_eq!(live["rtmp"][0]["showing"], "slate", "{live}");
    hang_up_after_the_pcap(daemon, &mut callee, key, answered_at(&live));

    let file = only_recording(nginx, key);
    let probe = ffprobe(&file);
    assert_eq!(probe.video_codec.as_deref(), Some("h264"), "a video track");
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    assert!(probe.first_video_is_keyframe() && probe.monotonic());
    assert_eq!(decode_errors(&file), "", "decodes cleanly");
    let frames = video_frames(&file);
    let keys: Vec<f64> = frames.iter().filter(|f| f.3).map(|f| f.0).collect();
    let worst_gop = keys.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let covered = frames.last().map_or(0.0, |f| f.0) - frames.first().map_or(0.0, |f| f.0);
    eprintln!(
        "{} slate frames over {covered:.1} s, keyframe every {worst_gop:.2} s at most",
        frames.len()
    );
    assert!(covered >= probe.duration - 1.0, "video all along");
    assert!(worst_gop <= 2.0, "keyframe interval {worst_gop:.2} s");
    let tones = tone_by_second(&file);
    eprintln!("tone per second: {}", seconds_pattern(&tones));
    assert!(
        tones.iter().filter(|t| **t).count() >= 7,
        "the call's tone is there"
    );
}

#[test]
fn late_video_shows_the_slate_first_then_the_call_from_a_keyframe_without_an_audio_gap() {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    // The scenario plays late_video.pcap from beside itself: 20 s of tone, video from 10 s.
    let dir = work.path().join("late");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        scenario("e2e_callee_late_video.xml"),
        dir.join("callee.xml"),
    )
    .unwrap();
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media");
    let merged = Command::new("python3")
        .arg(media.join("merge_rtp_pcaps.py"))
        .arg(dir.join("late_video.pcap"))
        .arg(format!("{}*2", media.join("pcmu_8k.pcap").display()))
        .arg(format!(
            "{}@10",
            media.join("h264_320x240_15fps.pcap").display()
        ))
        .status()
        .expect("python3");
    assert!(merged.success());
    let callee = Sipp::start_file(&dir.join("callee.xml"), free_udp_port(), &[]);
    let key = "camera";
    let live = daemon.go_live(
        key,
        &SpecText::direct(&callee.addr(), &[stream_url(nginx, key)]),
    );
    assert_eq!(live["rtmp"][0]["showing"], "slate", "no video yet: {live}");
    let on_call = daemon.wait_status(key, Duration::from_secs(15), "the call's video", |s| {
        s["rtmp"][0]["showing"] == "call"
    });
    eprintln!("switched to the call: {}", on_call["rtmp"][0]);
    std::thread::sleep(Duration::from_secs(4));
    daemon.delete_spec(key);
    daemon.wait_gone(key, Duration::from_secs(5));

    let file = only_recording(nginx, key);
    assert_eq!(decode_errors(&file), "", "decodes cleanly");
    let frames = video_frames(&file);
    let first_call = frames
        .iter()
        .position(|f| (f.1, f.2) == (320, 240))
        .expect("the call's 320x240 video is in the recording");
    assert!(first_call > 50, "slate first ({first_call} frames)");
    assert!(
        frames[first_call].3,
        "the call's video starts with a keyframe"
    );
    assert!(
        frames[..first_call]
            .iter()
            .all(|f| (f.1, f.2) == (1280, 720)),
        "the slate before it"
    );
    let tones = tone_by_second(&file);
    let pattern = seconds_pattern(&tones);
    eprintln!("tone per second: {pattern}");
    let call_part = pattern.trim_start_matches('.').trim_end_matches('.');
    assert!(
        call_part.len() >= 12 && !call_part.contains('.'),
        "the tone without a gap across the switch: {pattern}"
    );
}
