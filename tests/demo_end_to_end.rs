//! `sipcast demo` end to end: the real binary runs its built-in callee and RTMP receiver with
//! the daemon between them, and ffprobe checks the recording it leaves behind.

mod peers;
use peers::require;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the demo if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `sipcast demo ARGS`, waiting at most 60 s; returns its stdout after checking it exited
/// 0, or with a failure when `expect_success` is false.
fn run_demo(dir: &Path, args: &[&str], expect_success: bool) -> String {
    let stdout_path = dir.join("stdout.txt");
    let stderr_path = dir.join("stderr.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .arg("demo")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start sipcast demo");
    let mut demo = Running(child);
    // Polled every 100 ms for at most 60 s (the demo itself takes --seconds).
    let mut polls = 0;
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        polls += 1;
        assert!(
            polls < 600,
            "sipcast demo {args:?} still running after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(
        status.success(),
        expect_success,
        "demo exited with {status}:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Where `needle` is in `text`; fails the test, showing `text`, when absent.
fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
}

#[test]
fn demo_dials_the_builtin_callee_sends_dtmf_and_records_h264_and_aac() {
    require("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("demo.flv");
    let flv_arg = flv.to_str().unwrap();
    let stdout = run_demo(dir.path(), &["--seconds", "8", "--out", flv_arg], true);
    let position = |needle: &str| position(&stdout, needle);

    // Progress, as it happened.
    // The callee rings for 500 ms before answering, so every step of the call shows.
    assert!(position("call: dialing") < position("call: ringing (180)"));
    assert!(
        position("call: ringing (180)") < position("call: established (audio PCMU, video H264)")
    );
    // The daemon samples target states every 250 ms: a fast connect may show only publishing.
    position("rtmp: publishing");
    position("receiver: publish accepted on app 'live'");
    position("callee: DTMF '#' received");
    position("call: DTMF sent so far: 1234#");
    position("callee: BYE received");
    // The summary.
    position("call:          established when stopped; hung up with BYE");
    position("callee received \"1234#\"");
    position("(keyframe first)");
    position("(AAC)");
    position(&format!("320x240, {}", flv.display()));
    // The slate until the callee's camera comes on, then the call.
    assert!(
        position("rtmp: viewers see the slate") < position("callee: camera on")
            && position("callee: camera on") <= position("rtmp: viewers see the call"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("PASS: the whole chain works"),
        "{stdout}"
    );

    let streams = ffprobe(
        &[
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "csv=p=0",
        ],
        &flv,
    );
    let streams: Vec<&str> = streams.lines().collect();
    assert!(
        streams.iter().any(|s| s.starts_with("h264,video,")),
        "{streams:?}"
    );
    assert!(streams.contains(&"aac,audio"), "{streams:?}");
    // Frame by frame: the 1280x720 slate first, then the clip's 320x240 from a keyframe.
    let frames = ffprobe(
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,width,height",
            "-of",
            "csv=p=0",
        ],
        &flv,
    );
    let frames: Vec<Vec<&str>> = frames.lines().map(|l| l.split(',').collect()).collect();
    let first_call = frames
        .iter()
        .position(|f| f.get(1..3) == Some(&["320", "240"][..]))
        .expect("the call's 320x240 video");
    assert!(first_call > 0, "the slate comes first");
    assert_eq!(frames[first_call][0], "1", "the call starts at a keyframe");
    assert!(
        frames[..first_call]
            .iter()
            .all(|f| f.get(1..3) == Some(&["1280", "720"][..])),
        "slate frames before it"
    );
    let duration: f64 = ffprobe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        &flv,
    )
    .trim()
    .parse()
    .expect("a duration");
    assert!(duration >= 5.0, "recording lasts {duration} s");
    let first_frame = ffprobe(
        &[
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame",
            "-of",
            "csv=p=0",
        ],
        &flv,
    );
    // `1`, followed by `,…` when the frame carries side data (the clip's x264 SEI).
    let key_frame = first_frame.lines().next().and_then(|l| l.split(',').next());
    assert_eq!(
        key_frame,
        Some("1"),
        "first video frame is not a keyframe: {first_frame}"
    );
    // The clip's audio is a 440 Hz tone: it must come through, not AAC silence.
    peers::tone::check_440_hz(&flv);
}

#[test]
fn demo_with_info_dtmf_delivers_every_digit_by_sip_info() {
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("demo.flv");
    let args = ["--seconds", "4", "--dtmf-method", "info", "--out"];
    let args = [&args[..], &[flv.to_str().unwrap()]].concat();
    let stdout = run_demo(dir.path(), &args, true);
    for digit in ['1', '2', '3', '4', '#'] {
        position(
            &stdout,
            &format!("callee: DTMF '{digit}' received (SIP INFO)"),
        );
    }
    assert!(!stdout.contains("(RFC 4733 event)"), "{stdout}");
    position(&stdout, "callee received \"1234#\"");
    assert!(
        stdout.trim_end().ends_with("PASS: the whole chain works"),
        "{stdout}"
    );
}

#[test]
fn demo_stopped_before_the_dtmf_is_through_fails_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("demo.flv");
    let args = ["--seconds", "1", "--out", flv.to_str().unwrap()];
    let stdout = run_demo(dir.path(), &args, false);
    position(&stdout, "FAIL: ");
    position(&stdout, "the callee received DTMF");
}
