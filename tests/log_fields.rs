//! What the daemon's JSON log really carries during a live call (the journald writer flattens
//! the same records): `broadcast` on every line a broadcast's tasks write (supervisor, call,
//! media, publisher), `call_id` as the bare Call-ID, `rtmp_url` redacted, and no stream key
//! anywhere.

mod e2e_support;
mod peers;

use std::time::Duration;

use e2e_support::*;
use serde_json::Value;

#[test]
fn every_line_of_a_broadcast_carries_its_fields() {
    let work = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(work.path(), None);
    let mut daemon = Daemon::start_with(None, "json");
    let mut callee = Sipp::start("e2e_callee.xml", &[]);
    let key = "secretkey-4711";
    let live = daemon.go_live(
        "fields",
        &SpecText::direct(&callee.addr(), &[stream_url(&nginx, key)]),
    );
    let call_id = live["call"]["call_id"].as_str().unwrap().to_string();
    hang_up_after_the_pcap(&daemon, &mut callee, "fields", answered_at(&live));
    daemon.stop(Duration::from_secs(5));

    let log = daemon.log();
    assert!(!log.contains(key), "the stream key reached the log:\n{log}");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_broadcast = |v: &Value| {
        let target = v["target"].as_str().unwrap_or("");
        [
            "sipcast::reconcile::supervisor",
            "sipcast::call",
            "sipcast::media",
            "sipcast::rtmp",
        ]
        .iter()
        .any(|t| target.starts_with(t))
    };
    let mut seen_publisher = false;
    for line in lines.iter().filter(|v| of_broadcast(v)) {
        assert_eq!(line["broadcast"], "fields", "no broadcast field: {line}");
        if let Some(id) = line.get("call_id") {
            assert_eq!(id.as_str(), Some(call_id.as_str()), "call_id: {line}");
        }
        if line["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("sipcast::rtmp"))
        {
            seen_publisher = true;
            assert_eq!(line["call_id"], call_id.as_str(), "{line}");
            let url = line["rtmp_url"].as_str().unwrap_or("");
            assert!(url.ends_with("/live/****"), "rtmp_url: {line}");
        }
    }
    assert!(seen_publisher, "no publisher line in:\n{log}");
    let established = lines
        .iter()
        .find(|v| v["message"] == "call established")
        .expect("a call established line");
    assert_eq!(established["call_id"], call_id.as_str());
}
