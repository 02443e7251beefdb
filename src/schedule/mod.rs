//! When a broadcast should be live: the `[schedule]` table, evaluated statelessly at `now`.
//!
//! A window is `[start, end)` in absolute time; cron windows start at civil times in the
//! schedule's zone, with RFC 5545 §3.3.5's DST rules (a start in a spring-forward gap moves
//! forward by the gap, a start in a fall-back fold happens once, at its first occurrence; see
//! [`civil`]). A window's duration is absolute time, so `0 22 * * *` for `10h` ends at 08:00
//! except on the nights the clocks change.
//!
//! The broadcast is desired live iff `now ∈ [start − lead, end)` for some window. Nothing is
//! remembered between calls: joining mid-window is live, windows missed while the daemon was
//! down are simply past, and a wall clock that steps backwards or forwards gives the right answer
//! on the next call. Overlapping or touching windows merge into one (one call).
//!
//! Limits, so that one evaluation does bounded work whatever the spec says: at most
//! [`MAX_WINDOWS`] windows; a cron window lasts at most [`MAX_CRON_DURATION`], which bounds how
//! far back a call must look; `lead` is at most [`MAX_LEAD`]; a window's start is searched up to
//! eight years ahead; and touching windows are merged up to two weeks ahead only: a chain that
//! runs on past that reports the end reached so far as `next_end` (and `next_change`), and an
//! evaluation then finds it continuing. See [`windows`] for the costs.
//!
//! Drivers should wake at [`ScheduleState::next_edge`], not poll: nothing in the state can change
//! before it unless the wall clock steps.

mod civil;
mod cron;
#[cfg(test)]
mod tests;
mod windows;

pub use civil::parse_time;
pub use cron::{CronError, CronExpr};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;
use windows::{CronRule, MergedWindows};

/// Longest window a cron rule may open (31 days): lookback per evaluation is bounded by it.
pub const MAX_CRON_DURATION: Duration = Duration::from_secs(31 * 24 * 3600);
/// Longest `lead` (one day).
pub const MAX_LEAD: Duration = Duration::from_secs(24 * 3600);
/// Most windows one schedule may list: each is looked at on every civil day scanned.
pub const MAX_WINDOWS: usize = 100;

/// One entry of `windows = [...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowRule {
    /// Opens at every time the expression fires, in the schedule's zone.
    Cron { cron: CronExpr, duration: Duration },
    /// A one-off window (`start` + `end`, or `start` + `duration` converted by the caller).
    Fixed { start: Timestamp, end: Timestamp },
}

impl WindowRule {
    /// A one-off window written as `start` + `duration`.
    pub fn fixed_for(start: Timestamp, duration: Duration) -> Result<WindowRule, String> {
        if duration.is_zero() {
            return Err("duration must be greater than 0".into());
        }
        let end = SignedDuration::try_from(duration)
            .ok()
            .and_then(|d| start.checked_add(d).ok())
            .ok_or_else(|| format!("{start} plus the duration is out of range"))?;
        Ok(WindowRule::Fixed { start, end })
    }
}

/// A window in absolute time, `[start, end)`, without `lead`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// What the schedule says at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// Desired live: inside a window, or within `lead` before one.
    pub in_window: bool,
    /// Start of the next window that has not begun yet (without lead).
    pub next_start: Option<Timestamp>,
    /// End of the current window, else of the next one.
    pub next_end: Option<Timestamp>,
    /// When `in_window` flips next (lead included; a gap shorter than `lead` keeps it live).
    pub next_change: Option<Timestamp>,
    /// Set when merging stopped at the look-ahead: the last of `next_end` and `next_change` is
    /// then only where the look-ahead stopped, and the window (or the live stretch) may run on.
    pub continues: bool,
}

impl ScheduleState {
    /// The first instant after the evaluation at which any field may differ: the earliest of
    /// `next_start`, `next_end` and `next_change`. `None`: nothing will ever change (no window
    /// within the horizon). A driver sleeps until then, and evaluates again early only if the
    /// wall clock steps.
    pub fn next_edge(&self) -> Option<Timestamp> {
        [self.next_start, self.next_end, self.next_change]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A validated `[schedule]`: its zone, lead and windows, ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    timezone_name: String,
    timezone: TimeZone,
    lead: SignedDuration,
    rules: Vec<WindowRule>,
    crons: Vec<CronRule>,
    /// The fixed windows, merged.
    fixed: Vec<Window>,
}

impl Schedule {
    /// Checks the zone (an IANA name, looked up in the system tz database, or the copy built into
    /// the binary when the system has none), `lead` and every window. Errors are human messages;
    /// a window's error starts with `window N` (1-based, in `rules` order).
    pub fn new(
        timezone_name: &str,
        lead: Duration,
        rules: Vec<WindowRule>,
    ) -> Result<Schedule, String> {
        let unknown = || {
            format!(
                "unknown time zone '{timezone_name}': use an IANA name such as Europe/Berlin or UTC"
            )
        };
        // Files in the zoneinfo directory that are not zones: `localtime` is the host's zone,
        // which a spec must not depend on implicitly.
        if ["localtime", "posixrules", "Factory"]
            .iter()
            .any(|name| name.eq_ignore_ascii_case(timezone_name))
        {
            return Err(unknown());
        }
        let timezone = TimeZone::get(timezone_name).map_err(|_| unknown())?;
        if rules.len() > MAX_WINDOWS {
            return Err(format!(
                "too many windows ({}, at most {MAX_WINDOWS})",
                rules.len()
            ));
        }
        if lead > MAX_LEAD {
            return Err("lead must be at most 1 day".into());
        }
        let mut crons = Vec::new();
        let mut fixed = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let n = i + 1;
            match rule {
                WindowRule::Cron { cron, duration } => {
                    if duration.is_zero() {
                        return Err(format!("window {n}: duration must be greater than 0"));
                    }
                    if *duration > MAX_CRON_DURATION {
                        return Err(format!("window {n}: a cron window lasts at most 31 days"));
                    }
                    crons.push(CronRule::new(cron.clone(), signed(*duration)));
                }
                WindowRule::Fixed { start, end } => {
                    if end <= start {
                        return Err(format!("window {n}: end {end} is not after start {start}"));
                    }
                    fixed.push(Window {
                        start: *start,
                        end: *end,
                    });
                }
            }
        }
        Ok(Schedule {
            timezone_name: timezone_name.to_owned(),
            timezone,
            lead: signed(lead),
            rules,
            crons,
            fixed: windows::merge(fixed),
        })
    }

    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// The zone's name as written in the spec.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// `t` in the schedule's zone; its `Display` is RFC 3339 with offset plus the zone name
    /// (RFC 9557), e.g. `2026-12-24T15:00:00+01:00[Europe/Berlin]`.
    pub fn zoned(&self, t: Timestamp) -> jiff::Zoned {
        t.to_zoned(self.timezone.clone())
    }

    pub fn lead(&self) -> Duration {
        self.lead.unsigned_abs()
    }

    pub fn rules(&self) -> &[WindowRule] {
        &self.rules
    }

    /// The schedule at `now`. Stateless and bounded: a few days of cron matching in the usual
    /// case, at most eight years of day tests to find a rare window, and at most two weeks of
    /// merging for a chain of touching windows.
    ///
    /// Drive it by calling again at [`ScheduleState::next_edge`], or at once when the wall clock
    /// steps: a fresh evaluation is all it takes to follow.
    pub fn state_at(&self, now: Timestamp) -> ScheduleState {
        let mut merged = self.merged_after(now);
        let Some(first) = merged.next() else {
            return ScheduleState::default();
        };
        let opens = |w: &Window| w.start.checked_sub(self.lead).unwrap_or(Timestamp::MIN);
        let mut second = None;
        let next_start = if first.start > now {
            Some(first.start)
        } else {
            second = merged.next();
            second.map(|w| w.start)
        };
        let in_window = opens(&first) <= now;
        let next_change = if in_window {
            // Live until the end of the last window whose lead reaches back into this one.
            let mut live_until = first.end;
            let mut upcoming = second.into_iter().chain(merged.by_ref());
            while let Some(next) = upcoming.next().filter(|w| opens(w) <= live_until) {
                live_until = next.end;
            }
            live_until
        } else {
            opens(&first)
        };
        ScheduleState {
            in_window,
            next_start,
            next_end: Some(first.end),
            next_change: Some(next_change),
            continues: merged.cut(),
        }
    }

    /// The next `count` merged windows that end after `now` (the current one first).
    pub fn windows(&self, now: Timestamp, count: usize) -> Vec<Window> {
        self.merged_after(now).take(count).collect()
    }

    fn merged_after(&self, now: Timestamp) -> MergedWindows<'_> {
        MergedWindows::new(&self.timezone, &self.crons, &self.fixed, now)
    }
}

/// Both inputs are capped far below `SignedDuration`'s range.
fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}
