//! Golden tests in Europe/Berlin. Expected instants are written in UTC; the comments give the
//! Berlin wall-clock reading (CET = UTC+1, CEST = UTC+2; 2026 switches on 03-29 and 10-25).

use super::*;
use proptest::prelude::*;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn dur(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn cron(expr: &str, duration: &str) -> WindowRule {
    WindowRule::Cron {
        cron: CronExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")),
        duration: dur(duration),
    }
}

fn fixed(start: &str, end: &str) -> WindowRule {
    WindowRule::Fixed {
        start: ts(start),
        end: ts(end),
    }
}

fn berlin(lead: &str, rules: Vec<WindowRule>) -> Schedule {
    Schedule::new("Europe/Berlin", dur(lead), rules).expect("valid schedule")
}

/// Windows as `(start, end)` UTC strings, for readable goldens.
fn windows(schedule: &Schedule, now: &str, count: usize) -> Vec<(String, String)> {
    schedule
        .windows(ts(now), count)
        .iter()
        .map(|w| (w.start.to_string(), w.end.to_string()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, e)| (ts(s).to_string(), ts(e).to_string()))
        .collect()
}

fn state(in_window: bool, next_start: &str, next_end: &str, next_change: &str) -> ScheduleState {
    let opt = |t: &str| (!t.is_empty()).then(|| ts(t));
    ScheduleState {
        in_window,
        next_start: opt(next_start),
        next_end: opt(next_end),
        next_change: opt(next_change),
        continues: false,
    }
}

#[test]
fn spring_forward_start_in_the_gap_moves_forward_by_the_gap() {
    let s = berlin("0s", vec![cron("30 2 * * *", "1h")]);
    assert_eq!(
        windows(&s, "2026-03-28T00:00:00Z", 3),
        pairs(&[
            ("2026-03-28T01:30:00Z", "2026-03-28T02:30:00Z"), // 02:30 CET
            ("2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"), // 02:30 does not exist → 03:30 CEST
            ("2026-03-30T00:30:00Z", "2026-03-30T01:30:00Z"), // 02:30 CEST
        ])
    );
    let s = berlin("0s", vec![cron("0 2 * * *", "30m")]);
    assert_eq!(
        windows(&s, "2026-03-29T00:00:00Z", 1),
        pairs(&[("2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z")]), // 03:00 CEST
    );
}

#[test]
fn spring_forward_times_around_the_gap_merge_where_they_land() {
    // 01:00 01:30 CET, then 02:00 02:30 (→ 03:00 03:30 CEST), 03:00 03:30 CEST: one window.
    let s = berlin("0s", vec![cron("*/30 1-3 * * *", "30m")]);
    assert_eq!(
        windows(&s, "2026-03-28T23:00:00Z", 2),
        pairs(&[
            ("2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z"),
            ("2026-03-29T23:00:00Z", "2026-03-30T02:00:00Z"), // 01:00–04:00 CEST
        ])
    );
}

#[test]
fn fall_back_start_in_the_fold_happens_once_at_the_first_occurrence() {
    let s = berlin("0s", vec![cron("30 2 * * *", "15m")]);
    assert_eq!(
        windows(&s, "2026-10-24T00:00:00Z", 3),
        pairs(&[
            ("2026-10-24T00:30:00Z", "2026-10-24T00:45:00Z"), // 02:30 CEST
            ("2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z"), // first 02:30 (CEST) only
            ("2026-10-26T01:30:00Z", "2026-10-26T01:45:00Z"), // 02:30 CET
        ])
    );
    // During the second 02:30 (CET) nothing is live.
    assert_eq!(
        s.state_at(ts("2026-10-25T01:35:00Z")),
        state(
            false,
            "2026-10-26T01:30:00Z",
            "2026-10-26T01:45:00Z",
            "2026-10-26T01:30:00Z"
        )
    );
    // Hourly starts across the fold: 01:00 and 02:00 CEST, then 03:00 CET (no second 02:00).
    let s = berlin("0s", vec![cron("0 1-3 * * *", "30m")]);
    assert_eq!(
        windows(&s, "2026-10-24T22:00:00Z", 3),
        pairs(&[
            ("2026-10-24T23:00:00Z", "2026-10-24T23:30:00Z"),
            ("2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z"),
            ("2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z"),
        ])
    );
}

#[test]
fn every_minute_runs_through_the_day_but_skips_the_repeated_hour() {
    let s = berlin("0s", vec![cron("* * * * *", "1m")]);
    let got = s.windows(ts("2026-10-24T12:00:00Z"), 2);
    // 02:59 CEST + 1 min; then the repeated 02:00–02:59 CET starts nothing until 03:00 CET.
    assert_eq!(got[0].end, ts("2026-10-25T01:00:00Z"));
    assert_eq!(got[1].start, ts("2026-10-25T02:00:00Z"));
    assert!(got[0].start <= ts("2026-10-22T23:00:00Z"), "{got:?}");
    let now = s.state_at(ts("2026-10-25T01:30:00Z"));
    assert!(!now.in_window);
    assert_eq!(now.next_change, Some(ts("2026-10-25T02:00:00Z")));
}

#[test]
fn overnight_window_spans_midnight() {
    let s = berlin("0s", vec![cron("0 22 * * *", "10h")]);
    assert_eq!(
        s.state_at(ts("2026-11-24T03:00:00Z")), // 04:00 CET
        state(
            true,
            "2026-11-24T21:00:00Z", // 22:00 CET tonight
            "2026-11-24T07:00:00Z", // 08:00 CET this morning
            "2026-11-24T07:00:00Z",
        )
    );
    // The duration is absolute: across the fall-back night it ends at 07:00 CET.
    assert_eq!(
        windows(&s, "2026-10-24T12:00:00Z", 1),
        pairs(&[("2026-10-24T20:00:00Z", "2026-10-25T06:00:00Z")])
    );
}

#[test]
fn overlapping_and_touching_windows_are_one() {
    let s = berlin(
        "0s",
        vec![
            cron("0 9 * * *", "2h"),
            cron("0 10 * * *", "2h"),  // overlaps → 09–12
            cron("0 12 * * *", "30m"), // touches → 09–12:30
            fixed("2026-11-24T11:00:00Z", "2026-11-24T13:00:00Z"), // 12–14 CET, overlaps
        ],
    );
    assert_eq!(
        windows(&s, "2026-11-23T00:00:00Z", 3),
        pairs(&[
            ("2026-11-23T08:00:00Z", "2026-11-23T11:30:00Z"),
            ("2026-11-24T08:00:00Z", "2026-11-24T13:00:00Z"),
            ("2026-11-25T08:00:00Z", "2026-11-25T11:30:00Z"),
        ])
    );
}

#[test]
fn starting_mid_window_is_live_at_once() {
    let s = berlin("0s", vec![cron("0 9 * * MON-FRI", "1h30m")]);
    assert_eq!(
        s.state_at(ts("2026-11-27T08:45:00Z")), // Friday 09:45 CET
        state(
            true,
            "2026-11-30T08:00:00Z", // Monday 09:00
            "2026-11-27T09:30:00Z",
            "2026-11-27T09:30:00Z",
        )
    );
    // After Friday's window: not live, next is Monday.
    assert_eq!(
        s.state_at(ts("2026-11-27T09:30:00Z")),
        state(
            false,
            "2026-11-30T08:00:00Z",
            "2026-11-30T09:30:00Z",
            "2026-11-30T08:00:00Z",
        )
    );
}

#[test]
fn lead_makes_it_live_early_and_bridges_short_gaps() {
    let s = berlin("1m", vec![cron("0 9 * * *", "1h")]);
    assert_eq!(
        s.state_at(ts("2026-11-23T07:58:59Z")),
        state(
            false,
            "2026-11-23T08:00:00Z",
            "2026-11-23T09:00:00Z",
            "2026-11-23T07:59:00Z",
        )
    );
    assert_eq!(
        s.state_at(ts("2026-11-23T07:59:00Z")),
        state(
            true,
            "2026-11-23T08:00:00Z",
            "2026-11-23T09:00:00Z",
            "2026-11-23T09:00:00Z",
        )
    );
    // Two windows 30 s apart with a 1 min lead: live throughout, one call.
    let s = berlin(
        "1m",
        vec![
            fixed("2026-12-24T14:00:00Z", "2026-12-24T15:00:00Z"),
            fixed("2026-12-24T15:00:30Z", "2026-12-24T16:00:00Z"),
        ],
    );
    assert_eq!(
        s.state_at(ts("2026-12-24T14:30:00Z")),
        state(
            true,
            "2026-12-24T15:00:30Z",
            "2026-12-24T15:00:00Z",
            "2026-12-24T16:00:00Z",
        )
    );
    assert_eq!(
        s.state_at(ts("2026-12-24T15:00:10Z")),
        state(
            true,
            "2026-12-24T15:00:30Z",
            "2026-12-24T16:00:00Z",
            "2026-12-24T16:00:00Z",
        )
    );
}

#[test]
fn clock_stepped_past_a_window_end_and_back_into_it() {
    let s = berlin("0s", vec![cron("0 9 * * *", "1h")]);
    let inside = ts("2026-11-23T08:30:00Z");
    let past = ts("2026-11-23T12:00:00Z");
    let expected_inside = state(
        true,
        "2026-11-24T08:00:00Z",
        "2026-11-23T09:00:00Z",
        "2026-11-23T09:00:00Z",
    );
    let expected_past = state(
        false,
        "2026-11-24T08:00:00Z",
        "2026-11-24T09:00:00Z",
        "2026-11-24T08:00:00Z",
    );
    assert_eq!(s.state_at(inside), expected_inside);
    assert_eq!(s.state_at(past), expected_past, "stepped forward");
    assert_eq!(s.state_at(inside), expected_inside, "stepped back");
    // A jump of a year forward and back again.
    let later = s.state_at(ts("2027-11-23T08:30:00Z"));
    assert!(later.in_window);
    assert_eq!(later.next_end, Some(ts("2027-11-23T09:00:00Z")));
    assert_eq!(s.state_at(inside), expected_inside);
}

#[test]
fn missed_fixed_windows_are_not_replayed() {
    let s = berlin(
        "0s",
        vec![fixed("2026-12-24T14:00:00Z", "2026-12-24T16:00:00Z")],
    );
    assert_eq!(
        s.state_at(ts("2026-12-24T15:00:00Z")),
        state(true, "", "2026-12-24T16:00:00Z", "2026-12-24T16:00:00Z")
    );
    assert_eq!(
        s.state_at(ts("2026-12-24T16:00:00Z")),
        ScheduleState::default()
    );
    assert!(s.windows(ts("2026-12-25T00:00:00Z"), 5).is_empty());
}

#[test]
fn rare_cron_finds_the_next_leap_day() {
    let s = berlin("0s", vec![cron("0 0 29 2 *", "1d")]);
    assert_eq!(
        windows(&s, "2026-03-01T00:00:00Z", 2),
        pairs(&[
            ("2028-02-28T23:00:00Z", "2028-02-29T23:00:00Z"),
            ("2032-02-28T23:00:00Z", "2032-02-29T23:00:00Z"),
        ])
    );
}

#[test]
fn vixie_day_rule_and_names_in_a_schedule() {
    // The 1st of the month or any Sunday, at 12:00 CET.
    let s = berlin("0s", vec![cron("0 12 1 dec sun", "1h")]);
    let starts: Vec<String> = s
        .windows(ts("2026-11-23T00:00:00Z"), 4)
        .iter()
        .map(|w| w.start.to_string())
        .collect();
    // Sundays in December 2026 are the 6th, 13th, …; the 1st is a Tuesday. November is skipped.
    assert_eq!(
        starts,
        [
            "2026-12-01T11:00:00Z",
            "2026-12-06T11:00:00Z",
            "2026-12-13T11:00:00Z",
            "2026-12-20T11:00:00Z"
        ]
    );
}

#[test]
fn new_rejects_bad_zones_durations_and_windows() {
    let cases: Vec<(&str, &str, Vec<WindowRule>, &str)> = vec![
        (
            "Mars/Olympus",
            "0s",
            vec![],
            "unknown time zone 'Mars/Olympus'",
        ),
        ("", "0s", vec![], "unknown time zone ''"),
        ("UTC", "2d", vec![], "lead must be at most 1 day"),
        (
            "UTC",
            "0s",
            vec![cron("0 9 * * *", "1h"), cron("0 9 * * *", "0s")],
            "window 2: duration must be greater than 0",
        ),
        (
            "UTC",
            "0s",
            vec![cron("0 9 * * *", "32d")],
            "window 1: a cron window lasts at most 31 days",
        ),
        (
            "UTC",
            "0s",
            vec![fixed("2026-12-24T14:00:00Z", "2026-12-24T14:00:00Z")],
            "window 1: end 2026-12-24T14:00:00Z is not after start",
        ),
    ];
    for (zone, lead, rules, message) in cases {
        let got = Schedule::new(zone, dur(lead), rules).expect_err(message);
        assert!(got.contains(message), "{got:?} lacks {message:?}");
    }
    let s = berlin("1m", vec![cron("0 9 * * *", "31d")]);
    assert_eq!(s.timezone_name(), "Europe/Berlin");
    assert_eq!(s.timezone().iana_name(), Some("Europe/Berlin"));
    assert_eq!(s.lead(), dur("1m"));
    assert_eq!(
        s.zoned(ts("2026-12-24T14:00:00Z")).to_string(),
        "2026-12-24T15:00:00+01:00[Europe/Berlin]"
    );
    assert_eq!(
        WindowRule::fixed_for(ts("2026-12-24T14:00:00Z"), dur("2h")),
        Ok(fixed("2026-12-24T14:00:00Z", "2026-12-24T16:00:00Z"))
    );
    let zero = WindowRule::fixed_for(ts("2026-12-24T14:00:00Z"), dur("0s"));
    assert_eq!(zero, Err("duration must be greater than 0".into()));
    assert!(WindowRule::fixed_for(Timestamp::MAX, dur("1s")).is_err());
    assert_eq!(s.rules().len(), 1);
    assert_eq!(s.clone(), s);
    assert_ne!(s, berlin("2m", vec![cron("0 9 * * *", "31d")]));
}

/// The slow, obviously right answer: every start resolved one by one, merged.
fn brute_force(s: &Schedule, from: Timestamp, to: Timestamp) -> Vec<Window> {
    let tz = s.timezone();
    let mut raw: Vec<Window> = s.fixed.clone();
    let mut day = tz.to_datetime(from).date().yesterday().expect("in range");
    while tz.to_datetime(to).date() >= day {
        for rule in &s.rules {
            if let WindowRule::Cron { cron, duration } = rule {
                if !cron.matches_date(day) {
                    continue;
                }
                for minute in cron.minutes_of_day() {
                    let civil = day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
                    let start = civil::resolve_civil(tz, civil).expect("in range");
                    raw.push(Window {
                        start,
                        end: start + signed(*duration),
                    });
                }
            }
        }
        day = day.tomorrow().expect("in range");
    }
    windows::merge(raw)
}

fn field(values: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = String> {
    let (lo, hi) = (*values.start(), *values.end());
    prop_oneof![
        Just("*".to_owned()),
        (1..=hi.min(30)).prop_map(|step| format!("*/{step}")),
        (lo..=hi).prop_map(|v| v.to_string()),
        (lo..=hi, lo..=hi, 1..=4u32).prop_map(|(a, b, step)| format!(
            "{}-{}/{step}",
            a.min(b),
            a.max(b)
        )),
        proptest::collection::vec(lo..=hi, 1..4).prop_map(|vs| vs
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")),
    ]
}

fn cron_text() -> impl Strategy<Value = String> {
    (
        field(0..=59),
        field(0..=23),
        field(1..=28),
        field(1..=12),
        field(0..=7),
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn windows_are_sorted_disjoint_nonempty_and_match_brute_force(
        exprs in proptest::collection::vec((cron_text(), 1..=600u64), 1..3),
        lead in 0..=120u64,
        // Around both 2026 DST changes and in between.
        offset_minutes in 0..(300 * 24 * 60i64),
        // A one-off window: minutes after `now` (may be negative) and its length.
        one_off in proptest::option::of((-3000..3000i64, 1..3000i64)),
    ) {
        let now = ts("2026-03-20T00:00:00Z") + SignedDuration::from_mins(offset_minutes);
        let mut rules: Vec<WindowRule> = exprs
            .iter()
            .map(|(e, mins)| cron(e, &format!("{mins}m")))
            .collect();
        if let Some((from, len)) = one_off {
            let start = now + SignedDuration::from_mins(from);
            let end = start + SignedDuration::from_mins(len);
            rules.push(WindowRule::Fixed { start, end });
        }
        let s = berlin(&format!("{lead}m"), rules);
        let mut merged = s.merged_after(now);
        let mut got: Vec<Window> = merged.by_ref().take(6).collect();
        if merged.cut() {
            // The last window was cut at the look-ahead: it runs at least that far, from there.
            let cut = got.pop().expect("a cut window was handed out");
            prop_assert!(cut.end >= now + SignedDuration::from_hours(24 * (windows::MERGE_LOOKAHEAD_DAYS - 3)), "{cut:?}");
        }
        for w in &got {
            prop_assert!(w.end > w.start, "{w:?}");
            prop_assert!(w.end > now, "{w:?}");
        }
        for pair in got.windows(2) {
            prop_assert!(pair[1].start > pair[0].end, "{pair:?} overlap or touch");
        }
        // Same answer as resolving every start one by one (windows fully inside the span; long
        // back-to-back chains are skipped to keep the brute force quick). A window already open
        // at `now` is compared by its end only: the evaluation looks back a bounded time
        // (duration + 26 h), so a chain of touching windows that began earlier reports a later
        // start, which nothing after `now` depends on.
        if let Some(last) = got.last().filter(|w| w.end < now + SignedDuration::from_hours(24 * 60)) {
            let span_start = now - SignedDuration::from_hours(48);
            let open_at_now = |w: Window| {
                if w.start <= now {
                    Window { start: now, end: w.end }
                } else {
                    w
                }
            };
            let expected: Vec<Window> = brute_force(&s, span_start, last.end)
                .into_iter()
                .filter(|w| w.end > now && w.end <= last.end)
                .map(open_at_now)
                .filter(|w| w.start > span_start)
                .collect();
            let got_inside: Vec<Window> = got
                .iter()
                .copied()
                .map(open_at_now)
                .filter(|w| w.start > span_start)
                .collect();
            prop_assert_eq!(got_inside, expected);
        }
        // A shorter read is a prefix of a longer one.
        let two = s.windows(now, 2);
        prop_assert_eq!(&two[..two.len().min(got.len())], &got[..got.len().min(2)]);
        // state_at agrees with the windows, and next_change is where it flips.
        let st = s.state_at(now);
        let lead = SignedDuration::from_mins(lead as i64);
        let first = s.windows(now, 1);
        let live = first.first().is_some_and(|w| w.start - lead <= now);
        prop_assert_eq!(st.in_window, live);
        if let Some(change) = st.next_change {
            prop_assert!(change > now);
            if change < now + SignedDuration::from_hours(24 * 30) {
                prop_assert_eq!(s.state_at(change - SignedDuration::from_secs(1)).in_window, live);
                // A cut live stretch is only re-evaluated there, and may run on.
                if !st.continues {
                    prop_assert_eq!(s.state_at(change).in_window, !live);
                }
            }
        }
    }
}

#[test]
fn zone_names_are_iana_names_not_paths() {
    for name in [
        "../../etc/localtime",
        "/etc/localtime",
        "localtime",
        "LocalTime",
        "posixrules",
        "Factory",
        "Europe/../Europe/Berlin",
    ] {
        assert!(
            Schedule::new(name, Duration::ZERO, vec![]).is_err(),
            "{name} accepted"
        );
    }
    let lower = Schedule::new("europe/berlin", Duration::ZERO, vec![]).expect("any case");
    assert_eq!(lower.timezone().iana_name(), Some("Europe/Berlin"));
}

#[test]
fn a_past_one_off_window_joined_to_a_cron_window_keeps_its_start() {
    // Found by the property test: the one-off window ends before `now`, but it touches the
    // all-day cron window that is running now, so together they are one window.
    let s = berlin(
        "0s",
        vec![
            cron("* * 6 * *", "1m"), // all of June 6th (CEST)
            fixed("2026-06-05T18:05:00Z", "2026-06-05T22:00:00Z"),
        ],
    );
    assert_eq!(
        windows(&s, "2026-06-06T12:00:00Z", 1),
        pairs(&[("2026-06-05T18:05:00Z", "2026-06-06T22:00:00Z")])
    );
}

#[test]
fn the_binary_carries_its_own_tz_database_for_hosts_without_one() {
    // jiff's `tzdb-bundle-always`: used only when the system has no zoneinfo directory.
    let bundled = jiff::tz::TimeZoneDatabase::bundled();
    let zone = bundled.get("Europe/Berlin").expect("bundled Europe/Berlin");
    let summer = zone.to_offset(ts("2026-07-01T12:00:00Z"));
    assert_eq!(summer, jiff::tz::offset(2));
}

#[test]
fn touching_windows_merge_up_to_the_look_ahead_and_then_continue() {
    // Every hour for an hour: one window for ever. Status must not claim an end years away.
    let s = berlin("0s", vec![cron("0 * * * *", "1h"), cron("* * * * *", "1m")]);
    let now = ts("2026-12-04T12:00:00Z");
    let st = s.state_at(now);
    assert!(st.in_window);
    assert!(st.continues, "{st:?}");
    let end = st.next_end.expect("an end");
    assert_eq!(st.next_change, Some(end));
    let ahead = end.duration_since(now);
    assert!(
        ahead >= SignedDuration::from_hours(24 * 10)
            && ahead <= SignedDuration::from_hours(24 * 15),
        "next_end {end} is {ahead:?} ahead"
    );
    // At that bound the window is found running on, with a new bound further out.
    let later = s.state_at(end);
    assert!(later.in_window && later.continues);
    assert!(later.next_end.is_some_and(|e| e > end));
    // The listing stops at the cut window instead of inventing a gap after it.
    assert_eq!(s.windows(now, 5).len(), 1);
}

#[test]
fn a_rare_window_is_still_found_years_ahead() {
    let s = berlin("0s", vec![cron("0 12 29 2 *", "1h")]);
    let st = s.state_at(ts("2028-03-01T00:00:00Z"));
    assert!(!st.in_window && !st.continues);
    assert_eq!(st.next_start, Some(ts("2032-02-29T11:00:00Z")));
}

#[test]
fn next_edge_is_the_first_instant_anything_changes() {
    // With a lead, the start itself is an edge too: `next_start` moves on there.
    let s = berlin("10m", vec![cron("0 9 * * *", "1h")]);
    let before = s.state_at(ts("2026-11-23T07:00:00Z"));
    assert_eq!(
        before.next_edge(),
        Some(ts("2026-11-23T07:50:00Z")),
        "lead opens"
    );
    let in_lead = s.state_at(ts("2026-11-23T07:55:00Z"));
    assert_eq!(
        in_lead.next_edge(),
        Some(ts("2026-11-23T08:00:00Z")),
        "window starts"
    );
    let inside = s.state_at(ts("2026-11-23T08:30:00Z"));
    assert_eq!(
        inside.next_edge(),
        Some(ts("2026-11-23T09:00:00Z")),
        "window ends"
    );
    // Nothing ever again: no edge.
    let past = berlin(
        "0s",
        vec![fixed("2026-12-24T14:00:00Z", "2026-12-24T16:00:00Z")],
    );
    assert_eq!(past.state_at(ts("2027-01-01T00:00:00Z")).next_edge(), None);
    // Between two evaluations that straddle no edge, the state is the same.
    let a = s.state_at(ts("2026-11-23T09:00:00Z"));
    let edge = a.next_edge().expect("tomorrow's lead");
    assert_eq!(s.state_at(edge - SignedDuration::from_secs(1)), a);
    assert_ne!(s.state_at(edge), a);
}

#[test]
fn at_most_a_hundred_windows() {
    let rules = |n: usize| vec![cron("0 9 * * *", "1h"); n];
    assert!(Schedule::new("UTC", Duration::ZERO, rules(MAX_WINDOWS)).is_ok());
    assert_eq!(
        Schedule::new("UTC", Duration::ZERO, rules(MAX_WINDOWS + 1)).unwrap_err(),
        "too many windows (101, at most 100)"
    );
}

/// The costliest schedule the limits allow: a hundred rules that fire every other minute, each
/// offset so that together they touch all day, with the longest lead. One evaluation still
/// ends, with a bounded answer; the time it took is printed.
#[test]
fn the_costliest_legal_schedule_evaluates_in_bounded_work() {
    let mut rules = Vec::new();
    for i in 0..MAX_WINDOWS {
        let expr = if i % 2 == 0 {
            "0-58/2 * * * *"
        } else {
            "1-59/2 * * * *"
        };
        let minute = if i < 2 {
            "1m".to_string()
        } else {
            format!("{}s", 30 + i)
        };
        rules.push(cron(expr, &minute));
    }
    let s = berlin("1d", rules);
    #[allow(clippy::disallowed_methods)] // a figure to print, not time the core reads
    let start = std::time::Instant::now();
    let st = s.state_at(ts("2026-12-04T12:00:00Z"));
    let took = start.elapsed();
    eprintln!("costliest legal schedule: one evaluation took {took:?}");
    assert!(st.in_window && st.continues, "{st:?}");
    let end = st.next_end.expect("an end");
    assert!(end < ts("2027-01-01T00:00:00Z"), "{end}");
}
