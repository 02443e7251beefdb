//! Enumerating a schedule's windows in absolute time, merged, day by day.
//!
//! Cost: a cron rule is looked at once per civil day (a few bit tests). On a day it fires, one
//! civil-to-absolute conversion (midnight) serves all its times, and each *block* (a run of its
//! times of day whose spacing is within the window duration) is one contiguous window, so even
//! `* * * * *` costs one window per day. Only on a day whose UTC offset changes (twice a year in
//! most zones) is every start resolved on its own: the gap shifts some forward, the fold can
//! split a run.

use super::Window;
use super::civil::resolve_civil;
use super::cron::CronExpr;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::VecDeque;

/// Days scanned past the lookback on the first pass; each further pass scans four times as far.
const FIRST_SCAN_DAYS: i64 = 14;
/// How far ahead windows are searched: eight years, so even `0 0 29 2 *` finds its next leap
/// day (leap days can be eight years apart, e.g. 2096 → 2104).
pub(crate) const HORIZON_DAYS: i64 = 8 * 366 + 2;
/// Civil → absolute time may move a start back by at most a gap's length (at most one day, in
/// Samoa 2011); keep a second day of margin before treating a window as closed.
const DST_MARGIN: SignedDuration = SignedDuration::from_hours(48);

/// A cron rule prepared for enumeration.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CronRule {
    pub(crate) cron: CronExpr,
    pub(crate) duration: SignedDuration,
    /// Times of day it fires at, minutes after midnight, ascending.
    minutes: Vec<u16>,
    /// Index ranges (inclusive) into `minutes` whose neighbours are at most `duration` apart.
    blocks: Vec<(usize, usize)>,
}

impl CronRule {
    pub(crate) fn new(cron: CronExpr, duration: SignedDuration) -> CronRule {
        let minutes = cron.minutes_of_day();
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        for (i, &minute) in minutes.iter().enumerate() {
            match blocks.last_mut() {
                Some((_, last))
                    if SignedDuration::from_mins(i64::from(minute - minutes[*last]))
                        <= duration =>
                {
                    *last = i
                }
                _ => blocks.push((i, i)),
            }
        }
        CronRule {
            cron,
            duration,
            minutes,
            blocks,
        }
    }

    /// Appends the windows starting on civil `day` (unmerged, unsorted).
    fn windows_on(&self, tz: &TimeZone, day: Date, out: &mut Vec<Window>) {
        if !self.cron.matches_date(day) {
            return;
        }
        let civil = |minute: u16| day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
        let Some(midnight) = resolve_civil(tz, civil(0)) else {
            return; // outside jiff's range: nothing to schedule there
        };
        if offset_is_constant_all_day(tz, day, midnight) {
            let at = |minute: u16| midnight.checked_add(SignedDuration::from_mins(minute.into()));
            for &(first, last) in &self.blocks {
                if let (Ok(start), Ok(last_start)) =
                    (at(self.minutes[first]), at(self.minutes[last]))
                {
                    push(out, start, last_start, self.duration);
                }
            }
        } else {
            // The rare day the clocks change: each start on its own, per RFC 5545.
            for &minute in &self.minutes {
                if let Some(start) = resolve_civil(tz, civil(minute)) {
                    push(out, start, start, self.duration);
                }
            }
        }
    }
}

fn push(out: &mut Vec<Window>, start: Timestamp, last_start: Timestamp, duration: SignedDuration) {
    if let Ok(end) = last_start.checked_add(duration) {
        out.push(Window { start, end });
    }
}

/// Whether civil `day`, whose midnight resolved to `midnight`, keeps one UTC offset from 00:00 to
/// 23:59 (midnight itself not in a gap, no transition before the next midnight), so that a time
/// of day is simply `midnight` plus that many minutes.
fn offset_is_constant_all_day(tz: &TimeZone, day: Date, midnight: Timestamp) -> bool {
    let day_end = midnight.checked_add(SignedDuration::from_hours(24));
    tz.to_datetime(midnight) == day.at(0, 0, 0, 0)
        && day_end.is_ok_and(|day_end| {
            tz.following(midnight)
                .next()
                .is_none_or(|transition| transition.timestamp() >= day_end)
        })
}

/// Sorts and merges overlapping or touching windows.
pub(crate) fn merge(mut raw: Vec<Window>) -> Vec<Window> {
    raw.sort_by_key(|w| w.start);
    let mut merged: Vec<Window> = Vec::with_capacity(raw.len());
    for w in raw {
        match merged.last_mut() {
            Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
            _ => merged.push(w),
        }
    }
    merged
}

/// The merged windows that end after `after`, in order, found by scanning civil days in
/// growing passes. A window is handed out only once no unscanned day can still extend it, so
/// the sequence is the same however far the caller reads.
///
/// The scan starts the longest cron duration (plus two days) before `after`, so the first window
/// reports its true start unless back-to-back windows chain further back than that; then it
/// reports the earliest start within reach. A chain reaching past the horizon ends there.
pub(crate) struct MergedWindows<'a> {
    tz: &'a TimeZone,
    crons: &'a [CronRule],
    fixed: &'a [Window],
    after: Timestamp,
    first_day: Date,
    /// Days scanned from `first_day` by the last pass.
    days: i64,
    max_days: i64,
    last_start: Option<Timestamp>,
    ready: VecDeque<Window>,
    finished: bool,
}

impl<'a> MergedWindows<'a> {
    pub(crate) fn new(
        tz: &'a TimeZone,
        crons: &'a [CronRule],
        fixed: &'a [Window],
        after: Timestamp,
    ) -> MergedWindows<'a> {
        let longest = crons
            .iter()
            .map(|rule| rule.duration)
            .max()
            .unwrap_or(SignedDuration::ZERO);
        let lookback_days = (longest.as_hours() + 23) / 24 + 2;
        let start = after
            .checked_sub(SignedDuration::from_hours(24 * lookback_days))
            .unwrap_or(Timestamp::MIN);
        MergedWindows {
            tz,
            crons,
            fixed,
            after,
            first_day: tz.to_datetime(start).date(),
            days: lookback_days,
            max_days: lookback_days + HORIZON_DAYS,
            last_start: None,
            ready: VecDeque::new(),
            finished: false,
        }
    }

    fn scan_further(&mut self) {
        self.days = if self.days < FIRST_SCAN_DAYS * 2 {
            self.days + FIRST_SCAN_DAYS
        } else {
            self.days * 4
        }
        .min(self.max_days);
        // All one-off windows, even past ones: one may touch a cron window that runs past `after`.
        let mut raw: Vec<Window> = self.fixed.to_vec();
        let mut day = self.first_day;
        let mut scanned = 0;
        while scanned < self.days && !self.crons.is_empty() {
            for rule in self.crons {
                rule.windows_on(self.tz, day, &mut raw);
            }
            scanned += 1;
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break, // the end of time: nothing further to scan
            }
        }
        self.finished = self.crons.is_empty() || scanned < self.days || self.days >= self.max_days;
        // Every start on `day` or later is at or after this.
        let boundary = resolve_civil(self.tz, day.at(0, 0, 0, 0))
            .and_then(|midnight| midnight.checked_sub(DST_MARGIN).ok());
        for w in merge(raw) {
            if w.end <= self.after || self.last_start.is_some_and(|s| w.start <= s) {
                continue;
            }
            if !self.finished && boundary.is_none_or(|b| w.end >= b) {
                break; // a later pass may still extend it
            }
            self.last_start = Some(w.start);
            self.ready.push_back(w);
        }
    }
}

impl Iterator for MergedWindows<'_> {
    type Item = Window;

    fn next(&mut self) -> Option<Window> {
        loop {
            if let Some(w) = self.ready.pop_front() {
                return Some(w);
            }
            if self.finished {
                return None;
            }
            self.scan_further();
        }
    }
}
