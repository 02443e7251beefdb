//! Placeholder with the agreed API; replaced by the real evaluator at merge.
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct CronExpr(String);
#[derive(Clone, Debug, PartialEq)]
pub struct CronError {
    pub offset: usize,
    pub message: String,
}
impl std::fmt::Display for CronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for CronError {}
impl CronExpr {
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        if expr.split_whitespace().count() == 5 {
            Ok(CronExpr(expr.into()))
        } else {
            Err(CronError {
                offset: 0,
                message: "expected 5 fields".into(),
            })
        }
    }
}
#[derive(Clone, Debug, PartialEq)]
pub enum WindowRule {
    Cron {
        cron: CronExpr,
        duration: Duration,
    },
    Fixed {
        start: jiff::Timestamp,
        end: jiff::Timestamp,
    },
}
pub fn parse_time(text: &str, tz: &jiff::tz::TimeZone) -> Result<jiff::Timestamp, String> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    let civil: jiff::civil::DateTime = text.parse().map_err(|e| format!("{e}"))?;
    tz.to_timestamp(civil).map_err(|e| format!("{e}"))
}
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    tz: jiff::tz::TimeZone,
    lead: Duration,
    rules: Vec<WindowRule>,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ScheduleState {
    pub in_window: bool,
    pub next_start: Option<jiff::Timestamp>,
    pub next_end: Option<jiff::Timestamp>,
    pub next_change: Option<jiff::Timestamp>,
}
impl Schedule {
    pub fn new(
        timezone_name: &str,
        lead: Duration,
        rules: Vec<WindowRule>,
    ) -> Result<Schedule, String> {
        let tz = jiff::tz::TimeZone::get(timezone_name).map_err(|e| e.to_string())?;
        Ok(Schedule { tz, lead, rules })
    }
    pub fn timezone(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }
    pub fn state_at(&self, now: jiff::Timestamp) -> ScheduleState {
        let windows = self.windows(now, 2);
        let lead = jiff::SignedDuration::try_from(self.lead).unwrap_or_default();
        let in_window = windows.first().is_some_and(|w| now >= w.start - lead);
        ScheduleState {
            in_window,
            next_start: windows.iter().find(|w| w.start > now).map(|w| w.start),
            next_end: windows.first().map(|w| w.end),
            next_change: windows
                .first()
                .map(|w| if in_window { w.end } else { w.start - lead }),
        }
    }
    pub fn windows(&self, now: jiff::Timestamp, count: usize) -> Vec<Window> {
        let mut out: Vec<Window> = self
            .rules
            .iter()
            .filter_map(|r| match r {
                WindowRule::Fixed { start, end } if *end > now => Some(Window {
                    start: *start,
                    end: *end,
                }),
                _ => None,
            })
            .collect();
        out.sort_by_key(|w| w.start);
        out.truncate(count);
        out
    }
}
