use super::*;

const CALL_AVCC: &[u8] = &[1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68];

/// A switcher in virtual time, with everything it emitted and when.
struct Run {
    switcher: Switcher,
    now: Instant,
    emitted: Vec<(Instant, MediaFrame)>,
}

impl Run {
    fn new(copy: Option<AudioFormat>) -> Run {
        let now = crate::clock::monotonic().into_std();
        let mut config = SwitcherConfig::new(Slate::built_in(Some((320, 240))), false);
        config.copy = copy;
        let mut run = Run {
            switcher: Switcher::new(now, config),
            now,
            emitted: Vec::new(),
        };
        run.drain();
        run
    }

    fn drain(&mut self) {
        while let Some(frame) = self.switcher.poll_output() {
            self.emitted.push((self.now, frame));
        }
    }

    /// Advances virtual time by `ms`, firing every timeout on the way.
    fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(at) = self.switcher.poll_timeout().filter(|at| *at <= end) {
            self.now = at.max(self.now);
            self.switcher.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.switcher.handle_timeout(self.now);
        self.drain();
    }

    fn push(&mut self, frame: MediaFrame) {
        self.switcher.push(self.now, frame);
        self.drain();
    }

    /// A call sending 25 fps video (keyframe every `gop` frames, from frame `first_key`) and
    /// 20 ms PCMU + AAC audio for `ms`, its timestamps starting at `t0`.
    fn call(&mut self, t0: u32, ms: u32, video: bool, first_key: u32) {
        if video {
            self.push(MediaFrame::VideoConfig(Bytes::from_static(CALL_AVCC)));
        }
        for step in 0..ms / 20 {
            let ts = t0 + step * 20;
            self.push(MediaFrame::Audio {
                ts_ms: ts,
                format: AudioFormat::Pcmu,
                data: Bytes::from_static(&[0x7f; 160]),
            });
            if step % 2 == 0 {
                self.push(MediaFrame::Audio {
                    ts_ms: ts,
                    format: AudioFormat::Aac,
                    data: Bytes::from_static(b"call-aac"),
                });
            }
            if video && step % 2 == 0 {
                let n = step / 2;
                self.push(MediaFrame::Video {
                    dts_ms: ts,
                    cts_ms: 0,
                    keyframe: n >= first_key && (n - first_key) % 50 == 0,
                    data: Bytes::from_static(b"call-picture"),
                });
            }
            self.advance(20);
        }
    }

    fn video(&self) -> Vec<(u32, bool, bool)> {
        self.emitted
            .iter()
            .filter_map(|(_, f)| match f {
                MediaFrame::Video {
                    dts_ms,
                    keyframe,
                    data,
                    ..
                } => Some((*dts_ms, *keyframe, &data[..] == b"call-picture")),
                _ => None,
            })
            .collect()
    }

    fn audio(&self, format: AudioFormat) -> Vec<(u32, bool)> {
        self.emitted
            .iter()
            .filter_map(|(_, f)| match f {
                MediaFrame::Audio {
                    ts_ms,
                    format: f,
                    data,
                } if *f == format => Some((*ts_ms, &data[..] == b"call-aac" || data[0] == 0x7f)),
                _ => None,
            })
            .collect()
    }

    fn video_configs(&self) -> Vec<Bytes> {
        self.emitted
            .iter()
            .filter_map(|(_, f)| match f {
                MediaFrame::VideoConfig(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }
}

fn assert_rising(ts: &[u32], what: &str) {
    for w in ts.windows(2) {
        assert!(w[1] > w[0], "{what} went from {} to {}", w[0], w[1]);
    }
}

#[test]
fn without_a_call_the_targets_get_the_slate_and_silence() {
    let mut run = Run::new(Some(AudioFormat::Pcmu));
    run.advance(3000);
    assert!(matches!(run.emitted[0].1, MediaFrame::Metadata(_)));
    let video = run.video();
    assert_eq!(video.len(), 31, "10 fps for 3 s");
    assert!(video[0].1 && video[10].1 && video[20].1, "IDR every second");
    assert_eq!(video[10].0, 1000);
    let aac = run.audio(AudioFormat::Aac);
    assert!((139..=142).contains(&aac.len()), "{} AAC frames", aac.len());
    assert_eq!(aac[3].0, 64, "1024 samples at 48 kHz, exactly");
    let pcmu = run.audio(AudioFormat::Pcmu);
    assert_eq!(pcmu.len(), 151);
    assert_rising(&aac.iter().map(|a| a.0).collect::<Vec<_>>(), "AAC");
    assert_eq!(run.switcher.showing(), Showing::Slate);
}

#[test]
fn the_call_takes_over_on_its_keyframe_and_the_slate_returns_when_video_stops() {
    let mut run = Run::new(None);
    run.advance(2000);
    run.switcher.begin_source(run.now);
    // The call's video starts with two non-keyframes: dropped, and a keyframe is asked for.
    run.call(0, 80, true, 2);
    assert_eq!(run.switcher.stats(run.now).frames_waiting_for_keyframe, 2);
    assert!(run.switcher.take_keyframe_wanted());
    run.call(80, 2000, true, 0);
    assert_eq!(run.switcher.showing(), Showing::Call);
    let video = run.video();
    let first_call = video.iter().position(|v| v.2).unwrap();
    assert!(video[first_call].1, "the switch happens on a keyframe");
    assert!(
        video[first_call + 1..].iter().all(|v| v.2),
        "no slate after"
    );
    // Call audio replaces the silence while it flows.
    let aac = run.audio(AudioFormat::Aac);
    let from_call = aac.iter().position(|a| a.1).unwrap();
    assert!(
        aac[from_call..].iter().all(|a| a.1),
        "no silence between call frames"
    );

    // Video stops (audio goes on): after 1.5 s the slate is back, from its IDR.
    for step in 0..100 {
        run.push(MediaFrame::Audio {
            ts_ms: 2080 + step * 20,
            format: AudioFormat::Aac,
            data: Bytes::from_static(b"call-aac"),
        });
        run.advance(20);
    }
    assert_eq!(run.switcher.showing(), Showing::Slate);
    let video = run.video();
    let back = video.iter().rposition(|v| v.2).unwrap() + 1;
    assert!(video[back].1 && !video[back].2, "slate resumes at its IDR");
    assert_rising(&video.iter().map(|v| v.0).collect::<Vec<_>>(), "video");
    assert_rising(
        &run.audio(AudioFormat::Aac)
            .iter()
            .map(|a| a.0)
            .collect::<Vec<_>>(),
        "AAC",
    );
    assert_eq!(run.switcher.stats(run.now).switches, 2);
    // The sequence header went out once per real change: slate, call, slate.
    assert_eq!(run.video_configs().len(), 3);
}

#[test]
fn a_redial_restarts_the_call_timestamps_but_not_the_output_timeline() {
    let mut run = Run::new(Some(AudioFormat::Pcmu));
    run.switcher.begin_source(run.now);
    run.call(0, 3000, true, 0);
    run.switcher.end_source(run.now);
    assert_eq!(run.switcher.showing(), Showing::Slate);
    run.advance(2500); // backoff on the slate
    run.switcher.begin_source(run.now);
    run.call(0, 3000, true, 0); // the new call's clock starts at 0 again
    let video: Vec<u32> = run.video().iter().map(|v| v.0).collect();
    assert_rising(&video, "video");
    for format in [AudioFormat::Aac, AudioFormat::Pcmu] {
        let audio: Vec<u32> = run.audio(format).iter().map(|a| a.0).collect();
        assert_rising(&audio, "audio");
        // No gap longer than two frames anywhere: silence bridged the redial, up to the
        // call audio placed the source lead ahead.
        let worst = audio.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(worst <= 45, "{format:?} gap of {worst} ms");
    }
    let last = *video.last().unwrap();
    let elapsed = run.now.duration_since(run.switcher.start).as_millis() as u32;
    assert!(
        last.abs_diff(elapsed) < 300,
        "output {last} ms vs {elapsed} ms real"
    );
}

#[test]
fn an_audio_only_call_keeps_the_slate_with_the_call_audio() {
    let mut run = Run::new(None);
    run.switcher.begin_source(run.now);
    run.call(0, 3000, false, 0);
    assert_eq!(run.switcher.showing(), Showing::Slate);
    assert!(!run.switcher.take_keyframe_wanted(), "no video to ask for");
    let video = run.video();
    assert!(video.len() >= 30 && video.iter().all(|v| !v.2));
    let aac = run.audio(AudioFormat::Aac);
    let call_frames = aac.iter().filter(|a| a.1).count();
    assert!(call_frames >= 70, "{call_frames} call frames");
}

#[test]
fn wire_timestamps_wrap_like_flv() {
    assert_eq!(monotonic_after(Some(u32::MAX - 1), (1 << 32) + 5), 5);
    assert_eq!(monotonic_after(Some(10), 10), 11);
    assert_eq!(monotonic_after(Some(u32::MAX), 3), 3);
    assert_eq!(monotonic_after(None, -5), u32::MAX - 4);
}
