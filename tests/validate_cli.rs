//! `sipcast validate`, `schema` and `schedule` as a user runs them: the real binary, exit codes
//! and `FILE:LINE:COL` output.

use std::path::Path;
use std::process::{Command, Output};

fn sipcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sipcast")
}

/// Each broken spec, and the first problem `validate` must report for it.
const BROKEN: &[(&str, &str)] = &[
    ("bad name", "1:1: broadcast name \"bad name\""),
    (
        "bad_audio_codec",
        "10:15: unknown variant `mp3`, expected `aac` or `copy`",
    ),
    ("bad_callee_uri", "6:6: \"sip:100@\" is not a SIP URI"),
    (
        "bad_cron",
        "14:21: invalid cron expression: day of week: unknown name 'FUNDAY'",
    ),
    (
        "bad_domain",
        "3:10: sip.domain \"pbx example.com\" is not host[:port]",
    ),
    ("bad_dtmf", "7:15: invalid DTMF character 'X'"),
    ("bad_duration", "7:14: invalid duration \"soon\""),
    ("bad_time", "14:13: invalid time \"tomorrow\""),
    ("bad_transport", "4:13: unknown variant `sctp`"),
    ("bad_type", "1:11: invalid type: string, expected a boolean"),
    (
        "bad_uri",
        "4:13: \"http://pbx.example.com\" is not a SIP URI",
    ),
    ("bad_zone", "12:12: unknown time zone \"Mars/Olympus\""),
    (
        "cron_with_end",
        "14:33: a cron window takes `duration`, not `end`",
    ),
    (
        "cron_without_duration",
        "14:3: a cron window needs `duration`",
    ),
    ("duplicate_key", "3:1: duplicate key"),
    ("empty_windows", "13:11: schedule.windows is empty"),
    ("end_before_start", "14:39: `end` must be after `start`"),
    (
        "http_target",
        "9:7: url: URL scheme must be rtmp:// or rtmps://",
    ),
    ("missing_sip", "1:1: missing table [sip]"),
    ("not_utf8", "2:12: not UTF-8 (byte 17)"),
    ("no_rtmp", "1:1: missing [[rtmp]]"),
    (
        "no_stream_key",
        "9:7: url: URL has no stream key and none is configured separately: add it",
    ),
    (
        "redial_max_below_initial",
        "13:7: redial.max must not be shorter than redial.initial",
    ),
    (
        "two_password_sources",
        "5:16: give only one of sip.password_file, sip.password_env",
    ),
    (
        "two_stream_key_sources",
        "11:19: give only one of rtmp.stream_key, rtmp.stream_key_file",
    ),
    (
        "too_many_windows",
        "13:11: too many windows (101, at most 100)",
    ),
    ("unknown_key", "4:1: unknown field `colour`"),
    ("unknown_table", "11:2: unknown field `sipp`"),
    ("unterminated_string", "2:13: invalid basic string"),
    (
        "window_without_end",
        "14:3: a one-off window needs `end` or `duration`",
    ),
    ("zero_duration", "7:18: duration must be greater than 0"),
];

#[test]
fn every_broken_spec_exits_78_pointing_at_the_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/broken");
    let on_disk = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        on_disk,
        BROKEN.len(),
        "every corpus file has an expectation"
    );
    let mut failures = Vec::new();
    for (name, expected) in BROKEN {
        let file = format!("tests/specs/broken/{name}.toml");
        let out = sipcast(&["validate", &file]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let want = format!("{file}:{expected}");
        if out.status.code() != Some(78) || !stdout.starts_with(&want) {
            failures.push(format!(
                "{name}: exit {:?}, got {stdout:?}, want {want:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_shipped_examples_validate_and_a_directory_reports_every_bad_file() {
    let out = sipcast(&["validate", "broadcasts.d"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = sipcast(&["validate", "tests/specs/broken"]);
    assert_eq!(out.status.code(), Some(78));
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(lines >= BROKEN.len(), "{lines} problems reported");
}

/// The packaged `example.toml.example`, uncommented as its header tells a user to, is a valid
/// spec (what `.ci/packaging.sh` checks on the installed file, caught here first).
#[test]
fn the_packaged_example_uncommented_validates() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/broadcasts.d/example.toml.example"),
    )
    .unwrap();
    let spec: String = example
        .lines()
        .skip(7)
        .map(|line| {
            let line = line.strip_prefix('#').unwrap_or(line);
            format!("{}\n", line.strip_prefix(' ').unwrap_or(line))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.toml");
    std::fs::write(&file, spec).unwrap();
    let out = sipcast(&["validate", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_secrets_reads_secret_files_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "[sip]\nuser = \"u\"\ndomain = \"d\"\npassword_file = \"/nonexistent/pw\"\n[call]\nto = \"1\"\n[rtmp]\nurl = \"rtmp://h/live/k\"\n",
    )
    .unwrap();
    let path = spec.to_str().unwrap();
    assert_eq!(sipcast(&["validate", path]).status.code(), Some(0));
    let out = sipcast(&["validate", "--check-secrets", path]);
    assert_eq!(out.status.code(), Some(78));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "{path}:4:17: password_file: cannot read secret file /nonexistent/pw"
        )),
        "{stdout}"
    );
}

#[test]
fn schema_prints_the_committed_file() {
    let out = sipcast(&["schema"]);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/broadcast.schema.json"),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn schedule_prints_windows_with_offset_and_zone() {
    let out = sipcast(&[
        "schedule",
        "broadcasts.d/allhands.toml",
        "--count",
        "2",
        "--from",
        "2026-12-23T12:00:00Z",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "2026-12-24T09:00:00+01:00[Europe/Berlin]  2026-12-24T10:30:00+01:00[Europe/Berlin]"
    );
    let out = sipcast(&["schedule", "broadcasts.d/lobby-camera.toml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no [schedule]"));
}

#[test]
fn version_names_the_commit() {
    let out = sipcast(&["--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("sipcast {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}
