//! `sipcast demo` end to end: the real binary runs its built-in callee and RTMP receiver with
//! the daemon between them, and ffprobe checks the recording it leaves behind.

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

fn require(program: &str) {
    let found = Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{program} is required for this test (install it; CI does)"
    );
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

#[test]
fn demo_dials_the_builtin_callee_sends_dtmf_and_records_h264_and_aac() {
    require("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("demo.flv");
    let stdout_path = dir.path().join("stdout.txt");
    let stderr_path = dir.path().join("stderr.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .args(["demo", "--seconds", "8", "--out"])
        .arg(&flv)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start sipcast demo");
    let mut demo = Running(child);
    // Polled every 100 ms for at most 60 s (the demo itself takes about 8).
    let mut polls = 0;
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        polls += 1;
        assert!(
            polls < 600,
            "sipcast demo --seconds 8 still running after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success(),
        "demo failed ({status}):\n{stdout}\n{stderr}"
    );

    // Progress, in order, as it happened.
    let position = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{stdout}"))
    };
    assert!(position("call: dialing") < position("call: established (audio PCMU, video H264)"));
    assert!(position("rtmp: connecting") < position("rtmp: publishing"));
    position("callee: DTMF '#' received");
    position("call: DTMF sent so far: 1234#");
    position("callee: BYE received");
    // The summary.
    position("call:          established when stopped; hung up with BYE");
    position("callee received \"1234#\"");
    position("(keyframe first)");
    position("(AAC)");
    position(&format!("320x240, {}", flv.display()));
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
    assert!(streams.contains(&"h264,video,320,240"), "{streams:?}");
    assert!(streams.contains(&"aac,audio"), "{streams:?}");
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
    assert_eq!(
        first_frame.lines().next(),
        Some("1"),
        "first video frame is not a keyframe"
    );
}
