//! Wall-clock ("civil") times in a schedule's zone, resolved to absolute time the way RFC 5545
//! §3.3.5 (DATE-TIME, "FORM #3") prescribes for the two DST edge cases:
//!
//! - a local time that does not exist (spring-forward gap) is read with the UTC offset from
//!   *before* the gap, so it lands the gap's length later (Berlin 02:30 → 03:30 CEST);
//! - a local time that happens twice (fall-back fold) means its *first* occurrence.
//!
//! That is exactly jiff's `Disambiguation::Compatible`, which is used here.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Longest time text worth parsing: RFC 3339 with nanoseconds and an offset is 35 bytes.
const MAX_TIME_LEN: usize = 64;

/// The absolute time of civil `dt` in `tz` per RFC 5545 (gap: shift forward; fold: first).
/// `None` only outside jiff's supported range (years −9999..=9999).
pub(crate) fn resolve_civil(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

/// Parses a window's `start`/`end`.
///
/// A civil time ("2026-12-24T15:00", "2026-12-24T15:00:00", "2026-12-24 15:00") is read in `tz`
/// with the RFC 5545 gap/fold rules; a time with a UTC offset or `Z`
/// ("2026-12-24T15:00:00+01:00", "2026-12-24T14:00Z") is taken as the absolute time it names.
/// The error is a message for a human, without the input's location.
pub fn parse_time(text: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    const EXAMPLE: &str =
        "write it like 2026-12-24T15:00 (in the schedule's timezone) or 2026-12-24T15:00:00+01:00";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty time: {EXAMPLE}"));
    }
    if text.len() > MAX_TIME_LEN {
        return Err(format!(
            "time is longer than {MAX_TIME_LEN} characters: {EXAMPLE}"
        ));
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    if text.contains('[') {
        // A bracketed zone without an offset would silently be read in the schedule's zone.
        return Err(format!(
            "'{text}': a [zone] annotation is not supported; give a UTC offset or leave the zone out (times are in the schedule's timezone)"
        ));
    }
    if !text.contains(['T', 't', ' ']) {
        return Err(format!("'{text}' has no time of day: {EXAMPLE}"));
    }
    let civil: DateTime = text
        .parse()
        .map_err(|_| format!("'{text}' is not a date and time: {EXAMPLE}"))?;
    resolve_civil(tz, civil).ok_or_else(|| format!("'{text}' is out of the supported range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("Europe/Berlin is in the tz database")
    }

    fn at(text: &str) -> Timestamp {
        parse_time(text, &berlin()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn utc(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    #[test]
    fn civil_forms_are_read_in_the_zone() {
        let expected = utc("2026-12-24T14:00:00Z"); // CET is UTC+1 in December
        assert_eq!(at("2026-12-24T15:00"), expected);
        assert_eq!(at("2026-12-24T15:00:00"), expected);
        assert_eq!(at("2026-12-24 15:00"), expected);
        assert_eq!(at("  2026-12-24T15:00  "), expected);
        assert_eq!(at("2026-07-01T15:00"), utc("2026-07-01T13:00:00Z"), "CEST");
    }

    #[test]
    fn absolute_forms_ignore_the_zone() {
        assert_eq!(at("2026-12-24T15:00:00+01:00"), utc("2026-12-24T14:00:00Z"));
        assert_eq!(at("2026-12-24T15:00Z"), utc("2026-12-24T15:00:00Z"));
        assert_eq!(at("2026-12-24T15:00:00-05:00"), utc("2026-12-24T20:00:00Z"));
    }

    #[test]
    fn gap_shifts_forward_and_fold_takes_the_first() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist → 03:30 CEST.
        assert_eq!(at("2026-03-29T02:30"), utc("2026-03-29T01:30:00Z"));
        assert_eq!(at("2026-03-29T03:30"), utc("2026-03-29T01:30:00Z"));
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice → first (CEST).
        assert_eq!(at("2026-10-25T02:30"), utc("2026-10-25T00:30:00Z"));
        assert_eq!(at("2026-10-25T03:00"), utc("2026-10-25T02:00:00Z"));
    }

    #[test]
    fn bad_times_say_why() {
        let tz = berlin();
        let cases: &[(&str, &str)] = &[
            ("", "empty time"),
            ("2026-12-24", "has no time of day"),
            ("2026-13-24T15:00", "is not a date and time"),
            ("2026-12-24T25:00", "is not a date and time"),
            ("tomorrow at noon", "is not a date and time"),
            (
                "2026-12-24T15:00[Europe/Paris]",
                "annotation is not supported",
            ),
            (&"9".repeat(65), "longer than 64"),
        ];
        for (text, message) in cases {
            let got = parse_time(text, &tz).expect_err(text);
            assert!(got.contains(message), "{text:?}: {got:?} lacks {message:?}");
        }
    }
}
