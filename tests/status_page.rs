//! The status page in headless Chromium against the real daemon streaming a sipp call to
//! nginx-rtmp: the page lists the broadcast with its states, state changes reach it through
//! Server-Sent Events within a second, and the live preview's `<video>` plays (its time
//! advances and its picture changes). Screenshots go to `$CARGO_TARGET_TMPDIR/status_page/`.
//!
//! Needs Debian's `chromium`, Node.js and `npm install --prefix tests/web` (playwright-core);
//! without them the test fails and says what to install.

mod e2e_support;
mod peers;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e_support::*;
use serde_json::Value;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// Fails (never skips) with the commands that install what the test drives.
fn require_browser_tools() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install -y chromium"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: apt-get install -y nodejs npm"
    );
    assert!(
        web_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: npm install --prefix tests/web"
    );
}

/// The Node driver (tests/web/status_page.mjs): its JSON lines out, our go-aheads in.
struct Driver {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Driver {
    fn start(base: &str, name: &str, out_dir: &Path) -> Driver {
        let mut child = Command::new("node")
            .arg(web_dir().join("status_page.mjs"))
            .args([base, name])
            .arg(out_dir)
            .current_dir(web_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Driver { child, out }
    }

    /// The next step the driver reports; fails if it is not `step`.
    fn expect(&mut self, step: &str) -> Value {
        let mut line = String::new();
        let read = self.out.read_line(&mut line).expect("read driver output");
        assert!(
            read > 0,
            "the browser driver ended before {step:?}: {:?}",
            self.child.wait()
        );
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(value["step"], step, "{value}");
        value
    }

    fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("write to driver");
        stdin.flush().expect("flush driver");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_ms() -> f64 {
    unix_now() * 1000.0
}

#[test]
fn status_page_lists_states_follows_sse_within_a_second_and_plays_the_preview() {
    require_browser_tools();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page");
    std::fs::create_dir_all(&out_dir).unwrap();
    let Stage {
        daemon, mut nginx, ..
    } = Stage::new();
    let callee = Sipp::start("e2e_callee.xml", &[]);
    // Three broadcasts: one invalid file, one waiting for its window, one live with a
    // description that looks like markup (the page must show it as text).
    daemon.put_spec("townhall", "[sip]\nuser = \"sipcast\"\ndomain = 5\n");
    let scheduled = SpecText::direct(&callee.addr(), &[stream_url(&nginx, "board")]).render()
        + "[schedule]\ntimezone = \"UTC\"\nwindows = [{ start = \"2031-01-14T16:00\", duration = \"1h\" }]\n";
    daemon.put_spec("board-meeting", &scheduled);
    let live = SpecText::direct(&callee.addr(), &[stream_url(&nginx, "allhands")]);
    daemon.put_spec(
        "allhands",
        &format!("description = \"All hands <b>Q&A</b>\"\n{}", live.render()),
    );
    daemon.wait_status(
        "allhands",
        Duration::from_secs(15),
        "streaming",
        is_streaming,
    );

    let mut driver = Driver::start(&format!("http://{}", daemon.api), "allhands", &out_dir);
    let polling = driver.expect("polling");
    assert_eq!(polling["mode"], "polling", "{polling}");
    assert_eq!(polling["events"], 0, "{polling}");
    assert!(polling["polls"].as_u64().unwrap_or(0) >= 1, "{polling}");
    assert_eq!(polling["phase"], "streaming", "{polling}");

    let listed = driver.expect("listed");
    assert_eq!(listed["phase"], "streaming", "{listed}");
    assert_eq!(listed["call"], "established", "{listed}");
    assert_eq!(listed["target"], "publishing", "{listed}");
    assert!(
        listed["showing"] == "call" || listed["showing"] == "slate",
        "{listed}"
    );
    assert_eq!(listed["mode"], "sse", "{listed}");
    let text = listed["text"].as_str().unwrap_or("");
    assert!(
        text.contains("allhands") && text.contains("/live/****"),
        "{text}"
    );
    let cards = listed["cards"].as_array().expect("cards");
    let names: Vec<&str> = cards.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        ["allhands", "board-meeting", "townhall"],
        "sorted by name"
    );
    assert_eq!(cards[0]["description"], "All hands <b>Q&A</b>", "as text");
    assert_eq!(cards[1]["phase"], "waiting", "{}", cards[1]);
    assert!(
        cards[1]["text"].as_str().unwrap_or("").contains("2031"),
        "next window shown: {}",
        cards[1]
    );
    let error = cards[2]["errors"][0].as_str().unwrap_or("");
    assert!(
        error.contains("townhall.toml:3:"),
        "FILE:LINE:COL shown: {}",
        cards[2]
    );
    for card in cards {
        assert_eq!(
            card["elements"], 0,
            "status text never becomes markup: {card}"
        );
    }

    let preview = driver.expect("preview");
    eprintln!("preview: {preview}");
    let (t1, t2) = (
        preview["t1"].as_f64().unwrap_or(0.0),
        preview["t2"].as_f64().unwrap_or(0.0),
    );
    assert!(t2 - t1 > 0.8, "currentTime advanced {t1} → {t2}");
    let behind = preview["behindLive"].as_f64().unwrap_or(f64::MAX);
    assert!(
        behind < 3.0,
        "the player stays near the live edge: {behind} s behind"
    );
    assert!(preview["width"].as_u64().unwrap_or(0) >= 160, "{preview}");
    assert!(
        preview["audioBytes"].as_u64().unwrap_or(0) > 1000,
        "AAC audio decoded: {preview}"
    );
    let changed = preview["changed"].as_f64().unwrap_or(0.0);
    assert!(
        changed > 0.005,
        "the picture changed in {changed} of its samples"
    );
    assert!(
        std::fs::metadata(out_dir.join("status-page.png")).is_ok_and(|m| m.len() > 10_000),
        "screenshot written"
    );

    // The pcap ends: the output switches to the slate and the preview follows it in the same
    // response (a new init segment), still playing.
    let slate = driver.expect("slate");
    eprintln!("slate: {slate}");
    assert_eq!(
        slate["requests"], 1,
        "no reconnect across the switch: {slate}"
    );
    let (t1, t2) = (
        slate["t1"].as_f64().unwrap_or(0.0),
        slate["t2"].as_f64().unwrap_or(0.0),
    );
    assert!(t2 - t1 > 1.0, "still playing on the slate: {slate}");

    // nginx dies: the target reconnects, and the page shows it within a second, through SSE.
    driver.expect("act");
    let killed_at = unix_ms();
    nginx.kill();
    driver.go();
    let seen = driver.expect("seen");
    let latency = seen["at"].as_f64().unwrap_or(f64::MAX) - killed_at;
    eprintln!("target down seen after {latency:.0} ms: {seen}");
    assert!(latency < 1000.0, "{latency} ms: {seen}");
    assert_ne!(seen["target"], "publishing");
    assert_eq!(seen["mode"], "sse");
    assert_eq!(seen["polls"], 0, "no polling while SSE works");

    // The spec is deleted: the call hangs up and the page drops the broadcast within a second.
    driver.expect("act");
    let deleted_at = daemon.delete_spec("allhands") * 1000.0;
    driver.go();
    let removed = driver.expect("seen");
    let latency = removed["at"].as_f64().unwrap_or(f64::MAX) - deleted_at;
    eprintln!("removal seen after {latency:.0} ms: {removed}");
    assert!(latency < 1000.0, "{latency} ms: {removed}");
    assert_eq!(removed["what"], "removed");
    assert_eq!(removed["polls"], 0, "no polling while SSE works");
    let done = driver.expect("done");
    assert_eq!(done["problems"], serde_json::json!([]), "{done}");
}
