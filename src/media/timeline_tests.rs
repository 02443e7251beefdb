use super::*;
use proptest::prelude::*;

fn start() -> Instant {
    crate::clock::monotonic().into_std()
}

fn at(origin: Instant, ms: i64) -> Instant {
    origin + Duration::from_millis(ms as u64)
}

#[test]
fn rtp_timestamps_wrap_without_a_jump() {
    let origin = start();
    let mut timeline = Timeline::new(8000, 90_000);
    let first = u32::MAX - 3600 * 10;
    let out: Vec<i64> = (0..30u32)
        .map(|i| {
            let ts = first.wrapping_add(3600 * i);
            timeline.map(Track::Video, at(origin, i64::from(i) * 40), 7, ts)
        })
        .collect();
    let expected: Vec<i64> = (0..30).map(|i| i * 40).collect();
    assert_eq!(out, expected);
}

#[test]
fn flv_milliseconds_wrap_at_32_bits() {
    assert_eq!(flv_ms(0x1_0000_0005), 5);
    assert_eq!(flv_ms(4_294_967_295), u32::MAX);
}

#[test]
fn a_new_ssrc_continues_the_timeline() {
    let origin = start();
    let mut timeline = Timeline::new(8000, 90_000);
    for i in 0..50 {
        timeline.map(Track::Audio, at(origin, i * 20), 1, 1000 + 160 * i as u32);
    }
    // Re-INVITE: new SSRC, unrelated timestamps, 20 ms later as usual.
    let next = timeline.map(Track::Audio, at(origin, 1000), 2, 4_000_000_000);
    assert_eq!(next, 1000);
    let after = timeline.map(Track::Audio, at(origin, 1020), 2, 4_000_000_160);
    assert_eq!(after, 1020);
    assert_eq!(timeline.discontinuities(Track::Audio), 1);
}

#[test]
fn a_timestamp_jump_on_the_same_ssrc_is_absorbed() {
    let origin = start();
    let mut timeline = Timeline::new(8000, 90_000);
    for i in 0..10 {
        timeline.map(Track::Audio, at(origin, i * 20), 1, 160 * i as u32);
    }
    let jumped = timeline.map(Track::Audio, at(origin, 200), 1, 2_000_000_000);
    assert_eq!(jumped, 200);
    assert_eq!(
        timeline.map(Track::Audio, at(origin, 220), 1, 2_000_000_160),
        220
    );
}

#[test]
fn sender_reports_align_tracks_and_the_offset_is_measured() {
    let origin = start();
    let mut timeline = Timeline::new(8000, 90_000);
    // Both captured at the same instants; video arrives 200 ms later than audio.
    let (audio_base, video_base) = (12_345u32, 999_000u32);
    let feed = |timeline: &mut Timeline, from: i64, to: i64| {
        let mut last = (0, 0);
        for t in (from..to).step_by(20) {
            let audio = timeline.map(Track::Audio, at(origin, t), 1, audio_base + 8 * t as u32);
            if t % 40 == 0 {
                let video = timeline.map(
                    Track::Video,
                    at(origin, t + 200),
                    2,
                    video_base + 90 * t as u32,
                );
                last = (audio, video);
            }
        }
        last
    };
    feed(&mut timeline, 0, 3000);
    assert_eq!(
        timeline.av_offset_ms(),
        None,
        "nothing to measure before sender reports"
    );
    // SRs taken at capture instant 3000 ms (NTP 1000 s + 3 s) on both tracks.
    let ntp = |ms: u64| ((1000 + ms / 1000) << 32) | (((ms % 1000) << 32) / 1000);
    timeline.on_sender_report(Track::Audio, 1, ntp(3000), audio_base + 8 * 3000);
    timeline.on_sender_report(Track::Video, 2, ntp(3000), video_base + 90 * 3000);
    // Slewed at 10 %: 200 ms take 2 s of media.
    let (audio, video) = feed(&mut timeline, 3000, 4000);
    assert_eq!(video - audio, 100, "half way after 1 s");
    let (audio, video) = feed(&mut timeline, 4000, 8000);
    assert_eq!(video, audio, "aligned on capture time");
    assert_eq!(timeline.av_offset_ms(), Some(200));
}

proptest! {
    #[test]
    fn output_is_monotonic_and_follows_rtp_time(
        first in any::<u32>(),
        // Frames at least 1 ms apart (or repeats of one access unit): monotonic output never
        // needs to push a frame ahead of its RTP time then.
        steps in proptest::collection::vec((prop_oneof![Just(0u32), 90u32..9000], 0i64..30), 1..200),
    ) {
        let origin = start();
        let mut timeline = Timeline::new(8000, 90_000);
        let (mut ts, mut ticks) = (first, 0i64);
        let mut previous = timeline.map(Track::Video, origin, 9, ts);
        let mut capture = 0;
        for (step, jitter) in steps {
            ts = ts.wrapping_add(step);
            ticks += i64::from(step);
            capture = ticks / 90;
            let ms = timeline.map(Track::Video, at(origin, capture + jitter), 9, ts);
            if step == 0 {
                prop_assert_eq!(ms, previous);
            } else {
                prop_assert!(ms > previous);
            }
            previous = ms;
        }
        prop_assert_eq!(timeline.discontinuities(Track::Video), 0);
        // Unwrapped RTP time and output agree to rounding.
        prop_assert_eq!(previous, capture);
    }

    #[test]
    fn sender_reports_remove_any_network_offset(
        audio_base in any::<u32>(),
        video_base in any::<u32>(),
        video_delay in 0i64..800,
        ntp_seconds in 1u64..1_000_000,
    ) {
        let origin = start();
        let mut timeline = Timeline::new(8000, 90_000);
        let audio_ts = |t: i64| audio_base.wrapping_add((t * 8) as u32);
        let video_ts = |t: i64| video_base.wrapping_add((t * 90) as u32);
        for t in (0..1000).step_by(20) {
            timeline.map(Track::Audio, at(origin, t), 1, audio_ts(t));
            timeline.map(Track::Video, at(origin, t + video_delay), 2, video_ts(t));
        }
        let ntp = (ntp_seconds << 32) | (1 << 31);
        timeline.on_sender_report(Track::Video, 2, ntp, video_ts(1000));
        timeline.on_sender_report(Track::Audio, 1, ntp, audio_ts(1000));
        // Slewed in at 10 % of media time: 800 ms need 8 s.
        let (mut audio, mut video) = (0, 0);
        for t in (1000..10_000).step_by(20) {
            audio = timeline.map(Track::Audio, at(origin, t), 1, audio_ts(t));
            video = timeline.map(Track::Video, at(origin, t + video_delay), 2, video_ts(t));
        }
        prop_assert!((audio - video).abs() <= 2, "audio {} video {}", audio, video);
    }
}
