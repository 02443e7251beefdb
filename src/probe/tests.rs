use super::*;
use crate::spec::parse;

fn spec(extra: &str) -> BroadcastSpec {
    let text = format!(
        "[sip]\nuser = \"a\"\ndomain = \"127.0.0.1:9\"\n[call]\nto = \"1\"\n\
         [[rtmp]]\nurl = \"rtmp://127.0.0.1:9/live\"\nstream_key_env = \"SIPCAST_PROBE_TEST_UNSET_KEY\"\n{extra}"
    );
    parse("t.toml", &text).expect("test spec parses")
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

#[test]
fn a_schedule_with_windows_only_in_the_past_fails() {
    let s = spec(
        "[schedule]\ntimezone = \"UTC\"\nwindows = [{ start = \"2026-01-01T10:00\", duration = \"1h\" }]\n",
    );
    let check = schedule_check(&s, at("2026-06-01T00:00:00Z"));
    assert_eq!(check, Check::fail("schedule", "no future window"));
    let check = schedule_check(&s, at("2025-12-31T00:00:00Z"));
    assert_eq!(check.verdict, Verdict::Ok);
    assert!(
        check
            .detail
            .starts_with("next window 2026-01-01T10:00:00+00:00[UTC] to "),
        "{}",
        check.detail
    );
    let check = schedule_check(&s, at("2026-01-01T10:30:00Z"));
    assert!(
        check.detail.starts_with("in a window now, until "),
        "{}",
        check.detail
    );
}

#[test]
fn no_schedule_is_always_green() {
    let check = schedule_check(&spec(""), at("2026-06-01T00:00:00Z"));
    assert_eq!(check.verdict, Verdict::Ok);
}

#[tokio::test]
async fn an_unreadable_key_fails_its_line_and_skips_its_target_without_showing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "canary-password-31\n").unwrap();
    let s = spec("");
    let mut s = s;
    s.sip.password = Some(SecretSource::File(pw));
    // Nothing listens on port 9 (discard) here: the SIP check fails, quickly.
    let options = ProbeOptions {
        timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let report = run(&s, &options, at("2026-06-01T00:00:00Z")).await;
    let names: Vec<_> = report.checks.iter().map(|c| c.check.as_str()).collect();
    assert_eq!(
        names,
        [
            "sip password",
            "rtmp[0] stream key",
            "schedule",
            "sip",
            "rtmp[0]"
        ]
    );
    assert_eq!(report.checks[0].verdict, Verdict::Ok);
    assert_eq!(
        report.checks[1],
        Check::fail(
            "rtmp[0] stream key",
            "environment variable SIPCAST_PROBE_TEST_UNSET_KEY is not set"
        )
    );
    assert_eq!(report.checks[3].verdict, Verdict::Fail);
    assert_eq!(report.checks[4].verdict, Verdict::Skipped);
    assert!(!report.is_ok());
    let all = format!("{report:?}{}", report::render(&report));
    assert!(!all.contains("canary"), "{all}");
}
