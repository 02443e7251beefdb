//! The checklist as printed by `sipcast probe`: one line per check, `ok`/`FAIL`/`skip`, its name
//! and what was found or why it failed, then a summary line.

use std::fmt::Write;

use super::{Check, Report, Verdict};

/// Width of the check-name column.
const NAME_WIDTH: usize = 20;

/// The whole checklist, newline-terminated.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for check in &report.checks {
        out.push_str(&line(check));
        out.push('\n');
    }
    let failed = report.failures().count();
    let total = report.checks.len();
    if failed == 0 {
        let _ = writeln!(out, "all {total} checks passed");
    } else {
        let _ = writeln!(out, "{failed} of {total} checks failed");
    }
    out
}

/// One check: `ok    sip                 OPTIONS sip:…: 200 OK`.
pub fn line(check: &Check) -> String {
    let mark = match check.verdict {
        Verdict::Ok => "ok",
        Verdict::Fail => "FAIL",
        Verdict::Skipped => "skip",
    };
    // Peer-supplied text (reason phrases, status descriptions) stays on its line.
    let detail: String = check
        .detail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{mark:<5} {name:<NAME_WIDTH$} {detail}", name = check.check)
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_report_lists_every_check_and_says_all_passed() {
        let report = Report {
            checks: vec![
                Check::ok("schedule", "none"),
                Check::ok("sip", "OPTIONS sip:x@127.0.0.1: 200 OK"),
            ],
        };
        assert!(report.is_ok());
        assert_eq!(
            render(&report),
            "ok    schedule             none\n\
             ok    sip                  OPTIONS sip:x@127.0.0.1: 200 OK\n\
             all 2 checks passed\n"
        );
    }

    #[test]
    fn a_failure_is_a_red_line_and_counts() {
        let report = Report {
            checks: vec![
                Check::fail("rtmp[0]", "target refused publish of the stream key"),
                Check::skipped("sip", "the SIP password cannot be read"),
                Check::ok("schedule", "none"),
            ],
        };
        assert!(!report.is_ok());
        let text = render(&report);
        assert!(
            text.starts_with(
                "FAIL  rtmp[0]              target refused publish of the stream key\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nskip  sip "), "{text}");
        assert!(text.ends_with("1 of 3 checks failed\n"), "{text}");
    }

    #[test]
    fn control_characters_from_peers_never_break_the_line() {
        let check = Check::fail("sip", "503 Busy\r\nFAIL  forged line");
        assert_eq!(line(&check).lines().count(), 1);
    }

    #[test]
    fn skipped_checks_are_not_failures() {
        let report = Report {
            checks: vec![Check::skipped("sip", "why")],
        };
        assert!(report.is_ok());
    }
}
