//! `packaging/sipcast.service` says what issue 5 asks for, systemd accepts it, and its
//! `systemd-analyze security` exposure stays at or below 2.0. The unit is checked with
//! `ExecStart` pointed at the binary under test, since /usr/bin/sipcast need not exist here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn unit_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sipcast.service")
}

fn read_unit() -> String {
    std::fs::read_to_string(unit_source()).expect("read packaging/sipcast.service")
}

/// Every value assigned to `key`, in order (systemd allows repeating most keys).
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

fn systemd_analyze(args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze is required (Debian package `systemd`) but failed to run: {e}")
        })
}

/// The unit with `ExecStart` pointing at the binary under test, in a temp dir.
fn unit_for_this_build() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = read_unit().replace("/usr/bin/sipcast", env!("CARGO_BIN_EXE_sipcast"));
    let path = dir.path().join("sipcast.service");
    std::fs::write(&path, unit).expect("write unit copy");
    (dir, path)
}

#[test]
fn unit_declares_what_the_issue_requires() {
    let unit = read_unit();
    let expect = |key: &str, value: &str| {
        assert_eq!(
            values(&unit, key),
            [value],
            "{key}= in packaging/sipcast.service"
        );
    };
    expect("Type", "notify");
    expect("WatchdogSec", "30s");
    expect("ExecReload", "/bin/kill -HUP $MAINPID");
    expect("Restart", "on-failure");
    expect("RestartSec", "2s");
    expect("User", "sipcast");
    expect("ConfigurationDirectory", "sipcast");
    expect("StateDirectory", "sipcast");
    expect("RuntimeDirectory", "sipcast");
    expect("UMask", "0077");
    expect("CapabilityBoundingSet", "");
    expect("AmbientCapabilities", "");
    expect("ProtectSystem", "strict");
    expect(
        "RestrictAddressFamilies",
        "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    );
    expect("SystemCallArchitectures", "native");
    for flag in [
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectControlGroups",
        "ProtectClock",
        "ProtectHostname",
        "RestrictNamespaces",
        "LockPersonality",
        "RestrictRealtime",
    ] {
        expect(flag, "yes");
    }
    assert_eq!(
        values(&unit, "SystemCallFilter").first(),
        Some(&"@system-service")
    );
    let exec_start = values(&unit, "ExecStart");
    assert_eq!(
        exec_start,
        ["/usr/bin/sipcast run --config /etc/sipcast/sipcast.toml"]
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let (_dir, unit) = unit_for_this_build();
    let output = systemd_analyze(&["verify", "--man=no", unit.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify complained:\n{stderr}"
    );
}

#[test]
fn security_exposure_is_at_most_two() {
    let (_dir, unit) = unit_for_this_build();
    let output = systemd_analyze(&[
        "security",
        "--offline=true",
        "--no-pager",
        unit.to_str().expect("utf-8 path"),
    ]);
    let report = String::from_utf8_lossy(&output.stdout);
    let score: f64 = report
        .lines()
        .find_map(|line| line.split_once("Overall exposure level for sipcast.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{report}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{report}");
}
