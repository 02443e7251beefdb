//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), read as Vixie cron
//! (the `crontab(5)` of Vixie/ISC cron and cronie) reads them.
//!
//! A field is a comma list of `*`, `N` or `N-M`, each of `*` and `N-M` optionally followed by
//! `/STEP`. Months also take `JAN`–`DEC` and weekdays `SUN`–`SAT` (any case); weekday 7 is Sunday
//! like 0. The macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and
//! `@hourly` stand for their usual five fields.
//!
//! Day rule (Vixie): a field counts as unrestricted when it starts with `*` (so `*/2` does too).
//! If day-of-month and day-of-week are both restricted, a day matches when *either* does;
//! otherwise both must.
//!
//! The parser is bounded (the input is scanned once), never panics and reports every error with
//! the field's name and the byte offset of the offending token, so a spec parser can turn it into
//! `file:line:col`.

use jiff::civil::Date;
use std::fmt;

/// A parsed cron expression. Equality is by meaning, not by spelling.
#[derive(Clone)]
pub struct CronExpr {
    source: String,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0 (a 7 in the source is folded onto bit 0).
    days_of_week: u8,
    dom_unrestricted: bool,
    dow_unrestricted: bool,
}

/// Why a cron expression was rejected, and where: `offset` is the byte offset inside the
/// expression of the token at fault (the expression's length when something is missing at the end).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CronError {
    pub offset: usize,
    pub message: String,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for the values `min`, `min + 1`, ….
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

const FIELDS: [&Field; 5] = [&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK];

/// Longest possible month lengths (February 29 counts: it happens in leap years).
const MAX_DAYS_IN_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl CronExpr {
    /// Parses a five-field expression or one of the `@` macros.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let trimmed = expr.trim_start();
        let lead = expr.len() - trimmed.len();
        if trimmed.starts_with('@') {
            let fields = expand_macro(trimmed.trim_end()).ok_or_else(|| CronError {
                offset: lead,
                message: format!(
                    "unknown cron macro '{}' (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)",
                    trimmed.trim_end()
                ),
            })?;
            let mut cron = parse_fields(fields).map_err(|mut e| {
                e.offset = lead; // the macro's own text is what the user wrote
                e
            })?;
            cron.source = expr.to_owned();
            return Ok(cron);
        }
        let mut cron = parse_fields(expr)?;
        cron.source = expr.to_owned();
        Ok(cron)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the expression fires on `date` (month, then Vixie's day-of-month/day-of-week rule).
    pub fn matches_date(&self, date: Date) -> bool {
        // `month()` is 1..=12, `day()` 1..=31 and the weekday offset 0..=6, so the shifts fit.
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_unrestricted || self.dow_unrestricted {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Every time of day the expression fires at, as minutes after midnight, ascending.
    pub fn minutes_of_day(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for hour in 0..24u16 {
            if self.hours & (1 << hour) == 0 {
                continue;
            }
            for minute in 0..60u16 {
                if self.minutes & (1 << minute) != 0 {
                    out.push(hour * 60 + minute);
                }
            }
        }
        out
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.minutes == other.minutes
            && self.hours == other.hours
            && self.days_of_month == other.days_of_month
            && self.months == other.months
            && self.days_of_week == other.days_of_week
            && self.dom_unrestricted == other.dom_unrestricted
            && self.dow_unrestricted == other.dow_unrestricted
    }
}

impl Eq for CronExpr {}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronExpr({:?})", self.source)
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for CronExpr {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronExpr::parse(s)
    }
}

fn expand_macro(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// Splits on blanks, keeping each token's byte offset.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split([' ', '\t'])
        .scan(0usize, |pos, token| {
            let start = *pos;
            *pos += token.len() + 1;
            Some((start, token))
        })
        .filter(|(_, token)| !token.is_empty())
}

fn parse_fields(expr: &str) -> Result<CronExpr, CronError> {
    let fields: Vec<(usize, &str)> = tokens(expr).take(6).collect();
    if fields.is_empty() {
        return Err(CronError {
            offset: 0,
            message: "empty cron expression: expected 5 fields (minute hour day-of-month month day-of-week)".into(),
        });
    }
    if fields.len() != 5 {
        let (offset, found) = match fields.get(5) {
            Some((offset, _)) => (*offset, "more than 5".to_owned()),
            None => (expr.trim_end().len(), fields.len().to_string()),
        };
        return Err(CronError {
            offset,
            message: format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {found}"
            ),
        });
    }
    let mut masks = [0u64; 5];
    for (i, (offset, text)) in fields.iter().enumerate() {
        masks[i] = parse_field(text, *offset, FIELDS[i])?;
    }
    // Weekday 7 is Sunday, like 0.
    let dow = (masks[4] | (masks[4] >> 7)) & 0x7f;
    let cron = CronExpr {
        source: String::new(),
        minutes: masks[0],
        hours: masks[1] as u32,
        days_of_month: masks[2] as u32,
        months: masks[3] as u16,
        days_of_week: dow as u8,
        dom_unrestricted: fields[2].1.starts_with('*'),
        dow_unrestricted: fields[4].1.starts_with('*'),
    };
    let day_rule_is_and = cron.dom_unrestricted || cron.dow_unrestricted;
    if day_rule_is_and && !cron.day_of_month_ever_occurs() {
        return Err(CronError {
            offset: fields[2].0,
            message: format!(
                "day of month: '{}' never occurs in the chosen months, so the expression never fires",
                fields[2].1
            ),
        });
    }
    Ok(cron)
}

impl CronExpr {
    fn day_of_month_ever_occurs(&self) -> bool {
        (1..=12u32).any(|month| {
            self.months & (1 << month) != 0
                && (1..=MAX_DAYS_IN_MONTH[month as usize - 1])
                    .any(|day| self.days_of_month & (1 << day) != 0)
        })
    }
}

/// Parses one field into a bit mask of its values.
fn parse_field(text: &str, base: usize, field: &Field) -> Result<u64, CronError> {
    let mut mask = 0u64;
    let mut pos = 0usize;
    for item in text.split(',') {
        let offset = base + pos;
        pos += item.len() + 1;
        if item.is_empty() {
            return Err(err(field, offset, "empty list entry".into()));
        }
        mask |= parse_item(item, offset, field)?;
    }
    Ok(mask)
}

/// `*`, `N`, `N-M`, `*/S` or `N-M/S`.
fn parse_item(item: &str, offset: usize, field: &Field) -> Result<u64, CronError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some((offset + range.len() + 1, step))),
        None => (item, None),
    };
    let (low, high, is_range) = if range == "*" {
        (field.min, field.max, true)
    } else if let Some((a, b)) = range.split_once('-') {
        let low = parse_value(a, offset, field)?;
        let b_offset = offset + a.len() + 1;
        let high = parse_value(b, b_offset, field)?;
        if low > high {
            return Err(err(
                field,
                offset,
                format!("range '{range}' runs backwards (wrap-around ranges are not supported)"),
            ));
        }
        (low, high, true)
    } else {
        let value = parse_value(range, offset, field)?;
        (value, value, false)
    };
    let step = match step {
        None => 1,
        Some((step_offset, _)) if !is_range => {
            return Err(err(
                field,
                step_offset - 1,
                "a step needs '*' or a range before it, as in '*/15' or '0-30/5'".into(),
            ));
        }
        Some((step_offset, text)) => parse_step(text, step_offset, field)?,
    };
    let mut mask = 0u64;
    let mut value = low;
    while value <= high {
        mask |= 1 << value; // value <= 59, checked by parse_value
        value += step;
    }
    Ok(mask)
}

fn parse_step(text: &str, offset: usize, field: &Field) -> Result<u32, CronError> {
    let step = parse_number(text).ok_or_else(|| {
        err(
            field,
            offset,
            format!("step '{text}' is not a positive number"),
        )
    })?;
    if step == 0 || step > field.max {
        return Err(err(
            field,
            offset,
            format!("step {step} is out of range 1-{}", field.max),
        ));
    }
    Ok(step)
}

fn parse_value(text: &str, offset: usize, field: &Field) -> Result<u32, CronError> {
    let value = if text.bytes().all(|b| b.is_ascii_alphabetic()) && !text.is_empty() {
        field
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .map(|index| field.min + index as u32)
            .ok_or_else(|| {
                let hint = match field.names.first() {
                    Some(_) => format!(" (names: {})", field.names.join(" ")),
                    None => String::new(),
                };
                err(field, offset, format!("unknown name '{text}'{hint}"))
            })?
    } else {
        parse_number(text).ok_or_else(|| {
            err(
                field,
                offset,
                format!("expected a number, a name, '*' or a range, found '{text}'"),
            )
        })?
    };
    if value < field.min || value > field.max {
        return Err(err(
            field,
            offset,
            format!("{text} is out of range {}-{}", field.min, field.max),
        ));
    }
    Ok(value)
}

/// Up to 4 ASCII digits (longer numbers are out of range in every field anyway, and this keeps
/// the value from overflowing).
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 4 {
        return Some(u32::MAX);
    }
    Some(digits.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0')))
}

fn err(field: &Field, offset: usize, detail: String) -> CronError {
    CronError {
        offset,
        message: format!("{}: {detail}", field.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cron(expr: &str) -> CronExpr {
        CronExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e} at {}", e.offset))
    }

    fn error(expr: &str) -> (usize, String) {
        match CronExpr::parse(expr) {
            Ok(c) => panic!("{expr} parsed as {c:?}"),
            Err(e) => (e.offset, e.message),
        }
    }

    #[test]
    fn steps_lists_and_ranges() {
        let c = cron("*/15 1-5/2,20 * * *");
        assert_eq!(c.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(c.hours, 1 << 1 | 1 << 3 | 1 << 5 | 1 << 20);
        assert_eq!(
            cron("0 9 * * *").minutes_of_day(),
            vec![540],
            "09:00 is minute 540"
        );
        assert_eq!(cron("30 1,0 * * *").minutes_of_day(), vec![30, 90]);
        assert_eq!(cron("* * * * *").minutes_of_day().len(), 1440);
    }

    #[test]
    fn month_and_day_names_any_case() {
        assert_eq!(cron("0 9 * * MON-FRI"), cron("0 9 * * 1-5"));
        assert_eq!(cron("0 9 * jan,Mar,DEC sun"), cron("0 9 * 1,3,12 0"));
        assert_eq!(cron("0 9 * * 7"), cron("0 9 * * 0"), "7 is Sunday");
        assert_eq!(cron("0 9 * * sat-7"), cron("0 9 * * 0,6"));
        assert_eq!(cron("@daily"), cron("0 0 * * *"));
        assert_eq!(cron("  @Hourly "), cron("0 * * * *"));
        assert_eq!(cron("\t0  9\t* * *  ").minutes_of_day(), vec![540]);
    }

    #[test]
    fn matches_weekdays_and_months() {
        let weekdays = cron("0 9 * * MON-FRI");
        assert!(weekdays.matches_date(date(2026, 11, 23)), "a Monday");
        assert!(weekdays.matches_date(date(2026, 11, 27)), "a Friday");
        assert!(!weekdays.matches_date(date(2026, 11, 28)), "a Saturday");
        assert!(!weekdays.matches_date(date(2026, 11, 29)), "a Sunday");
        let leap = cron("0 0 29 2 *");
        assert!(leap.matches_date(date(2028, 2, 29)));
        assert!(!leap.matches_date(date(2028, 3, 29)));
    }

    #[test]
    fn vixie_day_rule_either_when_both_restricted() {
        // 13th of the month OR any Friday.
        let c = cron("0 0 13 * FRI");
        assert!(c.matches_date(date(2026, 11, 13)), "Friday the 13th");
        assert!(c.matches_date(date(2026, 12, 13)), "a Sunday, but the 13th");
        assert!(c.matches_date(date(2026, 12, 4)), "a Friday, not the 13th");
        assert!(!c.matches_date(date(2026, 12, 5)), "neither");
        // A field starting with '*' is unrestricted, so both must match (Vixie's DOM_STAR).
        let c = cron("0 0 */2 * FRI");
        assert!(c.matches_date(date(2026, 12, 11)), "odd day and a Friday");
        assert!(!c.matches_date(date(2026, 12, 4)), "Friday but even day");
        assert!(!c.matches_date(date(2026, 12, 5)), "odd day but Saturday");
        let c = cron("0 0 1 * *");
        assert!(c.matches_date(date(2026, 12, 1)));
        assert!(!c.matches_date(date(2026, 12, 2)));
    }

    #[test]
    fn equality_is_by_meaning_and_source_is_kept() {
        let c = cron("0  9 * * mon-fri");
        assert_eq!(c.as_str(), "0  9 * * mon-fri");
        assert_eq!(c.to_string(), "0  9 * * mon-fri");
        assert_eq!(format!("{c:?}"), "CronExpr(\"0  9 * * mon-fri\")");
        assert_ne!(cron("0 9 * * *"), cron("0 10 * * *"));
        assert_eq!("0 9 * * 1".parse::<CronExpr>(), Ok(cron("0 9 * * MON")));
    }

    #[test]
    fn every_error_names_its_field_and_offset() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "empty cron expression"),
            ("   ", 0, "empty cron expression"),
            ("0 9 * *", 7, "found 4"),
            ("0 9 * * * *", 10, "found more than 5"),
            ("60 9 * * *", 0, "minute: 60 is out of range 0-59"),
            ("0 24 * * *", 2, "hour: 24 is out of range 0-23"),
            ("0 9 0 * *", 4, "day of month: 0 is out of range 1-31"),
            ("0 9 32 * *", 4, "day of month: 32 is out of range 1-31"),
            ("0 9 * 13 *", 6, "month: 13 is out of range 1-12"),
            ("0 9 * * 8", 8, "day of week: 8 is out of range 0-7"),
            ("0 9 * FOO *", 6, "month: unknown name 'FOO'"),
            ("0 9 * * MONDAY", 8, "day of week: unknown name 'MONDAY'"),
            ("0 MON * * *", 2, "hour: unknown name 'MON'"),
            ("0 9 * * 1-X", 10, "day of week: unknown name 'X'"),
            ("5-1 9 * * *", 0, "minute: range '5-1' runs backwards"),
            (
                "0 9 * * FRI-MON",
                8,
                "day of week: range 'FRI-MON' runs backwards",
            ),
            ("*/0 9 * * *", 2, "minute: step 0 is out of range 1-59"),
            ("*/60 9 * * *", 2, "minute: step 60 is out of range"),
            (
                "*/x 9 * * *",
                2,
                "minute: step 'x' is not a positive number",
            ),
            ("5/15 9 * * *", 1, "minute: a step needs '*' or a range"),
            ("0 1,,2 * * *", 4, "hour: empty list entry"),
            ("0 1, * * *", 4, "hour: empty list entry"),
            ("0 9 * * 1-", 10, "day of week: expected a number"),
            ("0 9 * * -1", 8, "day of week: expected a number"),
            ("0 9 1-5/2/3 * *", 8, "day of month: step '2/3'"),
            ("0 9 * * 1.5", 8, "day of week: expected a number"),
            (
                "0 99999999999 * * *",
                2,
                "hour: 99999999999 is out of range 0-23",
            ),
            ("0 9 31 2 *", 4, "day of month: '31' never occurs"),
            ("0 9 30,31 feb *", 4, "never occurs"),
            ("@often", 0, "unknown cron macro '@often'"),
            ("  @reboot", 2, "unknown cron macro"),
            ("0 9 * * é", 8, "day of week: expected a number"),
        ];
        for (expr, offset, message) in cases {
            let (got_offset, got_message) = error(expr);
            assert!(
                got_message.contains(message),
                "{expr:?}: message {got_message:?} lacks {message:?}"
            );
            assert_eq!(got_offset, *offset, "{expr:?}: offset ({got_message})");
        }
    }

    #[test]
    fn impossible_day_is_fine_when_weekdays_can_still_match() {
        // Vixie OR: "31 February or any Monday" fires on Mondays.
        assert!(
            cron("0 9 31 2 MON").matches_date(date(2027, 2, 1)),
            "a Monday in February"
        );
        assert!(cron("0 9 29 2 *").matches_date(date(2028, 2, 29)));
    }
}
