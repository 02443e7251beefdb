//! The demo's verdict: what the call, the callee and the receiver saw, and whether that proves
//! the chain works (call established, DTMF arrived, the FLV has video starting with a keyframe
//! and audio).

use std::fmt;
use std::path::PathBuf;

use super::callee_driver::CalleeReport;
use super::recording::RecordingStats;
use crate::frame::AudioFormat;
use crate::status::CallState;

/// Everything the summary prints.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// The call's state when the demo stopped it.
    pub call_state: CallState,
    /// Whether the call reached `established` at any point.
    pub established: bool,
    pub call_reason: Option<String>,
    pub dtmf_planned: String,
    pub dtmf_sent: Option<String>,
    pub callee: CalleeReport,
    pub recording: RecordingStats,
    pub flv: PathBuf,
}

impl DemoSummary {
    /// What failed, in words; empty when the demo proved the chain.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.established {
            problems.push(format!(
                "the call was never established ({})",
                self.call_reason.as_deref().unwrap_or("no answer")
            ));
        }
        if self.callee.digits != self.dtmf_planned {
            problems.push(format!(
                "the callee received DTMF {:?}, not {:?}",
                self.callee.digits, self.dtmf_planned
            ));
        }
        let r = &self.recording;
        if r.video_frames == 0 {
            problems.push("the receiver got no video".into());
        } else if r.first_video_keyframe != Some(true) {
            problems.push("the first video frame recorded is not a keyframe".into());
        }
        if r.audio_frames == 0 {
            problems.push("the receiver got no audio".into());
        }
        problems
    }

    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }
}

fn call_state_name(state: CallState) -> &'static str {
    match state {
        CallState::Idle => "idle",
        CallState::Registering => "registering",
        CallState::Dialing => "dialing",
        CallState::Ringing => "ringing",
        CallState::Established => "established",
        CallState::Finished => "finished",
        CallState::Failed => "failed",
    }
}

fn audio_name(format: Option<AudioFormat>) -> &'static str {
    match format {
        Some(AudioFormat::Aac) => "AAC",
        Some(AudioFormat::Pcmu) => "PCMU",
        Some(AudioFormat::Pcma) => "PCMA",
        Some(AudioFormat::Speex) => "Speex",
        None => "none",
    }
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.recording;
        writeln!(f, "summary")?;
        writeln!(
            f,
            "  call:          {} when stopped{}",
            call_state_name(self.call_state),
            if self.callee.hung_up {
                "; hung up with BYE"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  DTMF:          sent {:?}, callee received {:?}",
            self.dtmf_sent.as_deref().unwrap_or(""),
            self.callee.digits
        )?;
        writeln!(
            f,
            "  callee sent:   {} video and {} audio RTP packets",
            self.callee.video_packets_sent, self.callee.audio_packets_sent
        )?;
        let first = match r.first_video_keyframe {
            Some(true) => "keyframe first",
            Some(false) => "NOT keyframe first",
            None => "no video",
        };
        writeln!(
            f,
            "  receiver got:  {} video frames, {} keyframes ({first}), {} audio frames ({})",
            r.video_frames,
            r.keyframes,
            r.audio_frames,
            audio_name(r.audio_format)
        )?;
        let size = match (r.width, r.height) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "unknown size".into(),
        };
        writeln!(
            f,
            "  recording:     {:.1} s, {size}, {}",
            r.duration().as_secs_f64(),
            self.flv.display()
        )?;
        let problems = self.problems();
        if problems.is_empty() {
            write!(f, "  result:        PASS: the whole chain works")
        } else {
            write!(f, "  result:        FAIL: {}", problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> DemoSummary {
        DemoSummary {
            call_state: CallState::Established,
            established: true,
            call_reason: None,
            dtmf_planned: "1234#".into(),
            dtmf_sent: Some("1234#".into()),
            callee: CalleeReport {
                answered: true,
                hung_up: true,
                digits: "1234#".into(),
                video_packets_sent: 300,
                audio_packets_sent: 400,
            },
            recording: RecordingStats {
                video_frames: 100,
                keyframes: 7,
                audio_frames: 300,
                first_video_keyframe: Some(true),
                audio_format: Some(AudioFormat::Aac),
                width: Some(320),
                height: Some(240),
                last_ms: 7000,
                unreadable_tags: 0,
            },
            flv: PathBuf::from("demo.flv"),
        }
    }

    #[test]
    fn a_good_run_passes_and_says_so() {
        let summary = good();
        assert!(summary.passed());
        let text = summary.to_string();
        assert!(
            text.contains("100 video frames, 7 keyframes (keyframe first), 300 audio frames (AAC)")
        );
        assert!(text.contains("7.0 s, 320x240, demo.flv"));
        assert!(text.ends_with("PASS: the whole chain works"));
    }

    #[test]
    fn each_missing_piece_fails_with_a_reason() {
        let mut summary = good();
        summary.callee.digits = "123".into();
        summary.recording.first_video_keyframe = Some(false);
        summary.recording.audio_frames = 0;
        let problems = summary.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            summary
                .to_string()
                .contains("FAIL: the callee received DTMF \"123\"")
        );
    }
}
