//! The daemon runs `sipcast probe`'s checks as a scheduled broadcast becomes desired live (at
//! `lead` before its window) and reports them in status and metrics: a wrong stream key shows
//! before the meeting, named, with the key itself nowhere.

mod e2e_support;
mod peers;
mod probe_support;

use std::time::Duration;

use e2e_support::{Daemon, Sipp, http_get};
use probe_support::PublishGate;
use serde_json::Value;

const RIGHT_KEY: &str = "right-key-3c77";
const WRONG_KEY: &str = "wrong-key-e610";

/// A spec whose window opened a minute ago (so it is desired live at once).
fn spec(daemon: &Daemon, name: &str, sipp: &Sipp, rtmp_port: u16, key: &str) -> String {
    let key_file = daemon.dir.path().join(format!("{name}.key"));
    std::fs::write(&key_file, key).unwrap();
    let start = (sipcast::clock::WallClock::System.now() - jiff::SignedDuration::from_secs(60))
        .round(jiff::Unit::Second)
        .unwrap();
    format!(
        "[sip]\nuser = \"1001\"\ndomain = \"{sip}\"\n[call]\nto = \"service\"\n\
         [schedule]\ntimezone = \"UTC\"\nlead = \"1m\"\n\
         windows = [{{ start = \"{start}\", duration = \"1h\" }}]\n\
         [[rtmp]]\nurl = \"rtmp://127.0.0.1:{rtmp_port}/live\"\nstream_key_file = \"{key}\"\n",
        sip = sipp.addr(),
        key = key_file.display(),
    )
}

fn preflight_done(status: &Value) -> bool {
    !status["preflight"].is_null()
}

#[test]
fn a_wrong_stream_key_is_reported_by_the_preflight_before_the_window() {
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = PublishGate::start(gate_dir.path(), RIGHT_KEY);
    let daemon = Daemon::start();
    let good_sipp = Sipp::start("uas_options.xml", &[]);
    let bad_sipp = Sipp::start("uas_options.xml", &[]);
    daemon.put_spec(
        "good",
        &spec(&daemon, "good", &good_sipp, gate.rtmp_port, RIGHT_KEY),
    );
    daemon.put_spec(
        "bad",
        &spec(&daemon, "bad", &bad_sipp, gate.rtmp_port, WRONG_KEY),
    );
    let limit = Duration::from_secs(20);

    let good = daemon.wait_status("good", limit, "a preflight", preflight_done);
    assert_eq!(good["preflight"]["ok"], true, "{good:#}");
    assert_eq!(good["preflight"]["failures"], serde_json::json!([]));
    assert!(good["preflight"]["checked_at"].is_string(), "{good:#}");

    let bad = daemon.wait_status("bad", limit, "a preflight", preflight_done);
    assert_eq!(bad["preflight"]["ok"], false, "{bad:#}");
    let failures = bad["preflight"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{bad:#}");
    assert_eq!(failures[0]["check"], "rtmp[0]");
    let cause = failures[0]["cause"].as_str().unwrap();
    assert!(
        cause.contains("target refused publish of the stream key"),
        "{cause}"
    );
    let condition = bad["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PreflightPassed")
        .unwrap_or_else(|| panic!("no PreflightPassed condition: {bad:#}"));
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "ChecksFailed");

    let (_, metrics) = http_get(daemon.api, "/metrics").expect("metrics");
    assert!(
        metrics.contains("sipcast_preflight_failures_total{broadcast=\"bad\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sipcast_preflight_failures_total{broadcast=\"good\"} 0\n"),
        "{metrics}"
    );

    let (_, all) = http_get(daemon.api, "/v1/broadcasts").expect("status");
    for text in [all, metrics, daemon.log()] {
        assert!(!text.contains(RIGHT_KEY) && !text.contains(WRONG_KEY));
    }
}
