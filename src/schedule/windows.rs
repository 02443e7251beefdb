//! Enumerating a schedule's windows in absolute time, merged, day by day, lazily.
//!
//! Cost: a cron rule is looked at once per civil day (a few bit tests). On a day it fires, one
//! civil-to-absolute conversion (midnight) serves all its times, and each *block* (a run of its
//! times of day whose spacing is within the window duration) is one contiguous window, so even
//! `* * * * *` costs one window per day. Only on a day whose UTC offset changes (twice a year in
//! most zones) is every start resolved on its own: the gap shifts some forward, the fold can
//! split a run.
//!
//! Bounds: days are scanned once, forward, only as far as the caller reads; a rule is scanned
//! from its own duration (plus two days) before `after`; the search for a window's start stops at
//! [`HORIZON_DAYS`]; and merging a chain of touching windows stops after
//! [`MERGE_LOOKAHEAD_DAYS`] of days or [`MAX_CHAIN_RAW`] raw windows. A chain cut there is handed
//! out with the end known so far (it may continue) and the sequence ends: evaluating again at
//! that end finds the rest.

use super::Window;
use super::civil::resolve_civil;
use super::cron::CronExpr;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// How far ahead a window's start is searched: eight years, so even `0 0 29 2 *` finds its next
/// leap day (leap days can be eight years apart, e.g. 2096 → 2104).
pub(crate) const HORIZON_DAYS: i64 = 8 * 366 + 2;
/// Days scanned past a chain's first day (or past `after`, if later) while touching windows keep
/// extending it; then the chain is handed out with the end known so far.
pub(crate) const MERGE_LOOKAHEAD_DAYS: i64 = 14;
/// Raw windows generated while extending one chain before it is cut the same way (the busiest
/// legal day yields 100 rules × 720 windows).
pub(crate) const MAX_CHAIN_RAW: usize = 50_000;
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

    /// How far back of `after` a start can still reach it: the duration, plus a day and the
    /// largest DST shift of margin (the civil day of that instant is the first worth scanning).
    fn lookback(&self) -> SignedDuration {
        self.duration.saturating_add(SignedDuration::from_hours(26))
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

/// The merged windows that end after `after`, in order. Civil days are scanned one at a time,
/// forward, only as far as the caller reads; a window is handed out once no unscanned day can
/// still extend it, so the sequence is the same however far the caller reads.
///
/// A rule is scanned from its duration (plus two days) before `after`, so the first window
/// reports its true start unless back-to-back windows chain further back than that; then it
/// reports the earliest start within reach. A chain reaching past the horizon ends there; one
/// merged for longer than the look-ahead is cut (see [`MergedWindows::cut`]).
pub(crate) struct MergedWindows<'a> {
    tz: &'a TimeZone,
    crons: &'a [CronRule],
    /// Per rule, the first civil day whose windows count.
    first_days: Vec<Date>,
    after: Timestamp,
    /// The next civil day to scan.
    day: Date,
    /// The last civil day to scan.
    last_day: Date,
    /// False once every day up to `last_day` is scanned: everything pending is then final.
    scanning: bool,
    /// Raw windows found but not yet merged, earliest start first.
    pending: BinaryHeap<Reverse<(Timestamp, Timestamp)>>,
    /// The chain being merged.
    current: Option<Window>,
    /// Days scanned and raw windows found while `current` reaches past `after`.
    chain_days: i64,
    chain_raw: usize,
    /// Set when a chain was handed out before it was known to end.
    cut: bool,
    done: bool,
    scratch: Vec<Window>,
}

impl<'a> MergedWindows<'a> {
    pub(crate) fn new(
        tz: &'a TimeZone,
        crons: &'a [CronRule],
        fixed: &[Window],
        after: Timestamp,
    ) -> MergedWindows<'a> {
        let day_of = |back: SignedDuration| {
            let t = after.checked_sub(back).unwrap_or(Timestamp::MIN);
            tz.to_datetime(t).date()
        };
        let first_days: Vec<Date> = crons.iter().map(|r| day_of(r.lookback())).collect();
        let today = day_of(SignedDuration::ZERO);
        let last_day = today
            .checked_add(jiff::Span::new().days(HORIZON_DAYS))
            .unwrap_or(Date::MAX);
        // All one-off windows, even past ones: one may touch a cron window that runs past `after`.
        let pending = fixed.iter().map(|w| Reverse((w.start, w.end))).collect();
        MergedWindows {
            tz,
            crons,
            day: first_days.iter().copied().min().unwrap_or(today),
            first_days,
            after,
            last_day,
            scanning: !crons.is_empty(),
            pending,
            current: None,
            chain_days: 0,
            chain_raw: 0,
            cut: false,
            done: false,
            scratch: Vec::new(),
        }
    }

    /// Whether the last window handed out was cut at the look-ahead: its `end` is then only
    /// as far as the scan went, and the window may continue.
    pub(crate) fn cut(&self) -> bool {
        self.cut
    }

    /// Every window from a day not yet scanned starts at or after this; `None` when nothing is
    /// left to scan.
    fn boundary(&mut self) -> Option<Timestamp> {
        if !self.scanning {
            return None;
        }
        let boundary = resolve_civil(self.tz, self.day.at(0, 0, 0, 0))
            .and_then(|midnight| midnight.checked_sub(DST_MARGIN).ok());
        if boundary.is_none() {
            self.scanning = false; // the end of jiff's range: nothing further to scan
        }
        boundary
    }

    fn scan_day(&mut self) {
        let day = self.day;
        self.scratch.clear();
        for (rule, first) in self.crons.iter().zip(&self.first_days) {
            if day >= *first {
                rule.windows_on(self.tz, day, &mut self.scratch);
            }
        }
        if self.current.is_some_and(|c| c.end > self.after) {
            self.chain_days += 1;
            self.chain_raw += self.scratch.len();
        }
        // Merged within the day first: a busy day is then a handful of heap entries.
        let day_windows = merge(std::mem::take(&mut self.scratch));
        self.pending
            .extend(day_windows.iter().map(|w| Reverse((w.start, w.end))));
        self.scratch = day_windows;
        match day.tomorrow() {
            Ok(next) if day < self.last_day => self.day = next,
            _ => self.scanning = false,
        }
    }

    /// Starts a new chain with `w`; returns the finished one if the caller should see it.
    fn start_chain(&mut self, w: Window) -> Option<Window> {
        self.chain_days = 0;
        self.chain_raw = 0;
        self.current.replace(w).filter(|done| done.end > self.after)
    }
}

impl Iterator for MergedWindows<'_> {
    type Item = Window;

    fn next(&mut self) -> Option<Window> {
        while !self.done {
            // Only decide once something is pending: empty days cost no time-zone lookups.
            let boundary = if self.pending.is_empty() && self.current.is_none() {
                if !self.scanning {
                    break;
                }
                self.scan_day();
                continue;
            } else {
                self.boundary()
            };
            while let Some(&Reverse((start, end))) = self.pending.peek() {
                if boundary.is_some_and(|b| start >= b) {
                    break;
                }
                self.pending.pop();
                match &mut self.current {
                    Some(c) if start <= c.end => c.end = c.end.max(end),
                    _ => {
                        if let Some(done) = self.start_chain(Window { start, end }) {
                            return Some(done);
                        }
                    }
                }
            }
            if let Some(c) = self.current
                && boundary.is_none_or(|b| b > c.end)
            {
                self.current = None;
                if c.end > self.after {
                    return Some(c);
                }
                continue;
            }
            if !self.scanning {
                continue; // boundary was None: everything is merged and handed out above
            }
            if let Some(c) = self.current
                && c.end > self.after
                && (self.chain_days >= MERGE_LOOKAHEAD_DAYS || self.chain_raw >= MAX_CHAIN_RAW)
            {
                self.done = true;
                self.cut = true;
                return Some(c);
            }
            self.scan_day();
        }
        self.done = true;
        None
    }
}
