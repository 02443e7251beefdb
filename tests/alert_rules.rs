//! The monitoring files shipped in the packages (`packaging/prometheus/`, `packaging/grafana/`)
//! work against the daemon as it is: Prometheus' own tool accepts the alerting rules
//! (`promtool check rules`) and fires each alert from synthetic series (`promtool test rules`),
//! and every metric and label the rules and the Grafana dashboard query is one a running daemon
//! serves on `/metrics`. Needs `promtool` (Debian package `prometheus`).

mod e2e_support;
mod peers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e_support::rtmp_support::free_port;
use e2e_support::{Daemon, SpecText, http_get};
use serde_json::Value;

fn packaging(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(path)
}

/// Runs promtool, returning what it printed; panics with it unless it exited 0.
fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is needed (apt-get install --no-install-recommends prometheus)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{said}");
    said
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    let said = promtool(
        &["check", "rules", "sipcast-alerts.yml"],
        &packaging("prometheus"),
    );
    assert!(said.contains("SUCCESS: 12 rules found"), "{said}");
}

#[test]
fn every_alert_fires_from_synthetic_series() {
    promtool(
        &["test", "rules", "sipcast-alerts.test.yml"],
        &packaging("prometheus"),
    );
    // Each alert of the rules file has a case in the unit tests that expects it to fire.
    let rules = std::fs::read_to_string(packaging("prometheus/sipcast-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(packaging("prometheus/sipcast-alerts.test.yml")).unwrap();
    let alerts = yaml_values(&rules, "- alert:");
    assert_eq!(alerts.len(), 12, "{alerts:?}");
    for alert in alerts {
        let fired = tests.split("- eval_time:").any(|case| {
            case.contains(&format!("alertname: {alert}\n")) && case.contains("exp_labels")
        });
        assert!(fired, "no unit test expects {alert} to fire");
    }
}

/// The values after `key` on each line that starts (after indentation) with it.
fn yaml_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix(key))
        .map(|v| v.trim().to_owned())
        .collect()
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// `sipcast_*` metric names and the label names used next to them (`{label=...}`,
/// `by (label)`, `on (label)`) in a PromQL expression.
fn names_in(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = expr;
    while let Some(start) = rest.find("sipcast_") {
        let tail = &rest[start..];
        let end = tail.find(|c| !word(c)).unwrap_or(tail.len());
        metrics.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    // Label matchers: `name=`, `name=~`, `name!=` inside braces.
    for inside in expr.split('{').skip(1).filter_map(|s| s.split('}').next()) {
        for matcher in inside.split(',') {
            if let Some(name) = matcher.split(['=', '!']).next() {
                labels.insert(name.trim().to_owned());
            }
        }
    }
    // Grouping: `by (a, b)` and `on (a, b)`.
    for keyword in ["by (", "on (", "by(", "on("] {
        for group in expr
            .split(keyword)
            .skip(1)
            .filter_map(|s| s.split(')').next())
        {
            labels.extend(group.split(',').map(|l| l.trim().to_owned()));
        }
    }
    labels.retain(|l| !l.is_empty());
    (metrics, labels)
}

/// Metric families (from `# TYPE`) and the label names each one's samples carry.
fn scrape_families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or_default();
            families.entry(name.to_owned()).or_default();
        } else if !line.starts_with('#') {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = line
                .get(name_end..)
                .and_then(|s| s.strip_prefix('{'))
                .and_then(|s| s.split('}').next())
                .unwrap_or_default();
            let entry = families.entry(line[..name_end].to_owned()).or_default();
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                entry.insert(pair.split('=').next().unwrap_or_default().to_owned());
            }
        }
    }
    families
}

/// A daemon with one broadcast that is desired live but cannot connect (its SIP address, over
/// TCP, and its RTMP target refuse connections), so per-broadcast series exist; returns its
/// `/metrics` text once a failed call attempt has been counted (or after 20 s with whatever it
/// has).
fn scrape_a_daemon() -> String {
    let daemon = Daemon::start();
    let callee = format!("127.0.0.1:{}", free_port());
    let mut spec = SpecText::direct(&callee, &["rtmp://127.0.0.1:1/live/key".to_owned()]);
    spec.sip.push("transport = \"tcp\"".to_owned());
    daemon.put_spec("lobby", &spec.render());
    let mut text = String::new();
    // 80 polls of 250 ms: 20 s.
    for _ in 0..80 {
        let (code, body) = http_get(daemon.api, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200, "{body}");
        text = body;
        if text.contains("sipcast_call_attempts_total{") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    text
}

#[test]
fn the_dashboard_and_the_rules_query_only_what_the_daemon_exports() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(packaging("grafana/sipcast.json")).unwrap())
            .expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "sipcast");
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 20, "{exprs:?}");

    let rules = std::fs::read_to_string(packaging("prometheus/sipcast-alerts.yml")).unwrap();
    // Multi-line expressions (`expr: |`) continue on the following indented lines.
    let mut rule_exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(expr) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let mut expr = expr.trim().to_owned();
        if expr == "|" {
            expr.clear();
            while let Some(next) = lines.next_if(|l| l.starts_with("          ")) {
                expr.push_str(next.trim());
                expr.push(' ');
            }
        }
        rule_exprs.push(expr);
    }
    assert_eq!(rule_exprs.len(), 12, "{rule_exprs:?}");

    let text = scrape_a_daemon();
    let families = scrape_families(&text);
    // Labels Prometheus adds at scrape time, and the ones from recording rules.
    let scrape_labels = ["job", "instance", "__name__"];
    let mut used = BTreeSet::new();
    for expr in exprs.iter().chain(&rule_exprs) {
        let (metrics, labels) = names_in(expr);
        for metric in &metrics {
            let family = families
                .get(metric)
                .unwrap_or_else(|| panic!("{metric} (in `{expr}`) is not in /metrics:\n{text}"));
            used.insert(metric.clone());
            for label in &labels {
                let known = scrape_labels.contains(&label.as_str())
                    || families.values().any(|f| f.contains(label));
                assert!(
                    known,
                    "label {label} (in `{expr}`) is on no series:\n{text}"
                );
                // A label matched on this metric must be one of its own, when it has samples.
                if !family.is_empty()
                    && metrics.len() == 1
                    && !scrape_labels.contains(&label.as_str())
                {
                    assert!(
                        family.contains(label),
                        "{metric} has no label {label} (in `{expr}`): {family:?}"
                    );
                }
            }
        }
    }
    // The dashboard covers what the issue asks for.
    for metric in [
        "sipcast_broadcast_desired_live",
        "sipcast_broadcast_live",
        "sipcast_broadcast_phase",
        "sipcast_call_attempts_total",
        "sipcast_rtp_lost_packets_total",
        "sipcast_rtp_jitter_seconds",
        "sipcast_video_keyframe_interval_seconds",
        "sipcast_av_offset_seconds",
        "sipcast_rtmp_bytes_sent_total",
        "sipcast_rtmp_reconnects_total",
        "sipcast_internal_restarts_total",
        "sipcast_internal_task_up",
    ] {
        assert!(used.contains(metric), "nothing queries {metric}");
    }
}

#[test]
fn promtool_parses_every_dashboard_query() {
    // Grafana's variables replaced by what they expand to, each query wrapped as a recording
    // rule so that promtool's parser checks it.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(packaging("grafana/sipcast.json")).unwrap())
            .unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in dashboard_exprs(&dashboard).iter().enumerate() {
        let expr = match expr.strip_prefix("label_values(") {
            // label_values(METRIC_SELECTOR, LABEL) is Grafana's, not PromQL: check the selector.
            Some(inner) => inner
                .rsplit_once(',')
                .map(|(s, _)| s)
                .unwrap_or(inner)
                .to_owned(),
            None => expr.clone(),
        };
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$broadcast", ".*");
        let quoted = serde_json::to_string(&expr).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.yml"), &rules).unwrap();
    promtool(&["check", "rules", "dashboard.yml"], dir.path());
}
