//! Shared pieces of the end-to-end tests: the real `sipcast run` daemon as a child process, sipp
//! callees and registrars playing the committed pcaps, and nginx-rtmp recording what arrives.
//! Everything binds 127.0.0.1 on ports picked free at start, lives in a temp dir, and is
//! killed on drop (logs are printed when the test panics).
#![allow(dead_code)] // each test binary uses a different subset

#[path = "../rtmp_support/mod.rs"]
pub mod rtmp_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub use rtmp_support::{Nginx, Probe, ffprobe, require};

/// How much to print of a peer's log when a test fails.
const LOG_TAIL: usize = 8000;

fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(LOG_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Wall-clock seconds since the epoch, comparable with sipp's `date +%s.%N`.
pub fn unix_now() -> f64 {
    sipcast::clock::WallClock::System.now().as_microsecond() as f64 / 1e6
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("no free UDP port")
}

/// `len` consecutive UDP ports, all free a moment ago, starting at an even port.
pub fn free_udp_range(len: u16) -> (u16, u16) {
    for _ in 0..200 {
        let base = free_udp_port() & !1;
        let Some(high) = base.checked_add(len - 1) else {
            continue;
        };
        let all_free = (base..=high)
            .map(|p| UdpSocket::bind(("127.0.0.1", p)))
            .collect::<Result<Vec<_>, _>>()
            .is_ok();
        if all_free {
            return (base, high);
        }
    }
    panic!("no {len} consecutive free UDP ports");
}

/// The daemon, `sipcast run`, on its own spec directory, API port, SIP port and RTP ports.
pub struct Daemon {
    child: Child,
    pub dir: tempfile::TempDir,
    pub api: SocketAddr,
    pub sip: SocketAddr,
    /// `--rtp-ports`, inclusive.
    pub rtp_ports: (u16, u16),
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_limited(None)
    }

    /// The daemon with its open-files limit (soft and hard) set to `open_files`, as a
    /// systemd unit or a shell's `ulimit -n` would.
    pub fn start_limited(open_files: Option<u64>) -> Daemon {
        Daemon::start_with(open_files, "text")
    }

    /// The daemon logging in `log_format` (`text`, `json`, `journald`) to its log file.
    pub fn start_with(open_files: Option<u64>, log_format: &str) -> Daemon {
        Daemon::launch(open_files, log_format, None)
    }

    /// The daemon with a `sipcast.toml` holding `config` (its flags still set the spec
    /// directory, API, SIP and RTP addresses).
    pub fn start_configured(config: &str) -> Daemon {
        Daemon::launch(None, "text", Some(config))
    }

    fn launch(open_files: Option<u64>, log_format: &str, config: Option<&str>) -> Daemon {
        let mut command_config = None;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("broadcasts.d")).unwrap();
        if let Some(config) = config {
            std::fs::write(dir.path().join("sipcast.toml"), config).unwrap();
            command_config = Some(dir.path().join("sipcast.toml"));
        }
        let api = SocketAddr::from(([127, 0, 0, 1], rtmp_support::free_port()));
        let sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let (low, high) = free_udp_range(16);
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let mut command = match open_files {
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(env!("CARGO_BIN_EXE_sipcast"));
                sh
            }
            None => Command::new(env!("CARGO_BIN_EXE_sipcast")),
        };
        if let Some(path) = &command_config {
            command.arg("run").arg("--config").arg(path);
        } else {
            command.arg("run");
        }
        let child = command
            .arg("--dir")
            .arg(dir.path().join("broadcasts.d"))
            .args(["--api", &api.to_string(), "--sip-listen", &sip.to_string()])
            .args(["--rtp-ports", &format!("{low}-{high}")])
            .args(["--log-format", log_format])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sipcast run");
        let mut daemon = Daemon {
            child,
            dir,
            api,
            sip,
            rtp_ports: (low, high),
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sipcast run exited with {status}:\n{}", self.log());
            }
            if http_get(self.api, "/readyz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sipcast run was not ready within 10 s:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits (at most `limit`) for the daemon to exit; returns how long it took.
    pub fn stop(&mut self, limit: Duration) -> Duration {
        let started = sipcast::clock::monotonic();
        crate::peers::stop(&mut self.child, limit);
        started.elapsed()
    }

    /// Open descriptors of the daemon now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident memory of the daemon now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn spec_path(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("broadcasts.d")
            .join(format!("{name}.toml"))
    }

    /// Drops (or replaces) `NAME.toml` atomically, as a deployment tool would.
    pub fn put_spec(&self, name: &str, text: &str) {
        let path = self.spec_path(name);
        let tmp = self.dir.path().join(format!(".{name}.toml.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// Deletes `NAME.toml`; returns the wall time it was done at.
    pub fn delete_spec(&self, name: &str) -> f64 {
        std::fs::remove_file(self.spec_path(name)).unwrap();
        unix_now()
    }

    /// `GET /v1/broadcasts/{name}`, or None while it is 404.
    pub fn status(&self, name: &str) -> Option<Value> {
        let (code, body) = http_get(self.api, &format!("/v1/broadcasts/{name}"))?;
        if code != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    /// Drops `NAME.toml` and waits until its call is established and every target publishes.
    pub fn go_live(&self, name: &str, spec: &SpecText) -> Value {
        self.put_spec(name, &spec.render());
        self.wait_status(
            name,
            Duration::from_secs(15),
            "call established and every target publishing",
            is_streaming,
        )
    }

    /// Waits until the broadcast is no longer reported (its file is gone and it has stopped).
    pub fn wait_gone(&self, name: &str, limit: Duration) {
        let start = sipcast::clock::monotonic();
        while self.status(name).is_some() {
            assert!(
                start.elapsed() < limit,
                "{name} still reported after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls the broadcast's status every 50 ms until `pred` holds; fails after `limit` with the
    /// last status and the daemon's log.
    pub fn wait_status(
        &self,
        name: &str,
        limit: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let start = sipcast::clock::monotonic();
        let mut last = None;
        while start.elapsed() < limit {
            if let Some(status) = self.status(name) {
                if pred(&status) {
                    return status;
                }
                last = Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {limit:?} waiting for {what}; last status:\n{}",
            last.map(|s| serde_json::to_string_pretty(&s).unwrap_or_default())
                .unwrap_or_else(|| "none".into())
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM lets it hang up and close its streams; SIGKILL if it does not go.
        crate::peers::stop(&mut self.child, Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!("==== sipcast run log (tail) ====\n{}", tail(&self.log()));
        }
    }
}

/// A one-shot HTTP/1.0 GET against the status API: (status code, body).
pub use crate::peers::host::http_get;

/// One sipp process running a scenario from `tests/sipp/` once, in its own temp dir.
pub struct Sipp {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

impl Sipp {
    /// Starts sipp as a UAS on a free port. `extra` are more sipp arguments (`-key k v`).
    pub fn start(name: &str, extra: &[&str]) -> Sipp {
        Sipp::start_on(name, free_udp_port(), extra)
    }

    /// Starts sipp on a given SIP port (a callee coming back where the last one was).
    pub fn start_on(name: &str, port: u16, extra: &[&str]) -> Sipp {
        Sipp::start_file(&scenario(name), port, extra)
    }

    /// Starts sipp on a scenario file anywhere (one the test wrote beside its own pcap).
    pub fn start_file(path: &Path, port: u16, extra: &[&str]) -> Sipp {
        require("sipp");
        let plays_pcap = std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains("play_pcap");
        if plays_pcap {
            require_raw_sockets();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (media_port, _) = free_udp_range(4);
        let child = Command::new("sipp")
            .current_dir(dir.path())
            .arg("-sf")
            .arg(path)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media_port.to_string()])
            .args(["-m", "1", "-timeout", "60s", "-timeout_error"])
            .args(["-trace_err", "-trace_msg", "-nostdin"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        let sipp = Sipp {
            child: Some(child),
            port,
            dir,
        };
        // sipp needs a moment to bind before anyone sends to it.
        std::thread::sleep(Duration::from_millis(300));
        sipp
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The wall time the scenario wrote to `./bye_at` when our BYE arrived.
    pub fn bye_at(&self) -> Option<f64> {
        std::fs::read_to_string(self.dir.path().join("bye_at"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Polls for `./bye_at` for up to `limit`.
    pub fn wait_bye(&self, limit: Duration) -> f64 {
        let start = sipcast::clock::monotonic();
        while start.elapsed() < limit {
            if let Some(at) = self.bye_at() {
                return at;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("sipp saw no BYE within {limit:?}:\n{}", self.logs());
    }

    /// Waits for the scenario to end and fails the test with sipp's logs unless it passed.
    pub fn finish(&mut self, limit: Duration) {
        let mut child = self.child.take().expect("sipp running");
        let start = sipcast::clock::monotonic();
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.is_some_and(|s| s.success()),
            "sipp did not run {} to the end (exit {status:?}):\n{}",
            self.port,
            self.logs()
        );
    }

    /// SIGKILL: the callee vanishes without a BYE, as a crashed gateway would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// sipp's error and message logs.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with("errors.log") || name.ends_with("messages.log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                out.push_str(&format!("==== sipp {name} (tail) ====\n{}\n", tail(&text)));
            }
        }
        out
    }
}

/// sipp plays pcaps through a raw socket: it needs CAP_NET_RAW (root has it), from us or as a
/// file capability on the sipp binary. Without it sipp plays nothing and says so only in its
/// error log, so fail here, clearly.
fn require_raw_sockets() {
    assert!(
        crate::peers::host::sipp_can_play_pcaps(),
        "sipp's play_pcap_* needs CAP_NET_RAW: run the tests as root, or \
         `setcap cap_net_raw+ep \"$(command -v sipp)\"`"
    );
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // SIGTERM first so sipp flushes its logs.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// A broadcast spec, written out as TOML by [`SpecText::render`].
#[derive(Clone, Debug)]
pub struct SpecText {
    /// `[sip]` lines.
    pub sip: Vec<String>,
    /// `[call]` lines.
    pub call: Vec<String>,
    /// RTMP targets, one `[[rtmp]]` each: the URL, optionally followed by more lines of that
    /// table (see [`target_with`]).
    pub targets: Vec<String>,
    /// Extra tables appended verbatim.
    pub extra: String,
}

impl SpecText {
    /// Dials `to` directly at the callee `callee_addr`, publishing to `targets`.
    pub fn direct(callee_addr: &str, targets: &[String]) -> SpecText {
        SpecText {
            sip: vec![
                "user = \"sipcast\"".into(),
                format!("domain = \"{callee_addr}\""),
            ],
            call: vec!["to = \"callee\"".into()],
            targets: targets.to_vec(),
            extra: "[redial]\ninitial = \"1s\"\nmax = \"2s\"\n".into(),
        }
    }

    pub fn call_line(mut self, line: &str) -> SpecText {
        self.call.push(line.into());
        self
    }

    pub fn render(&self) -> String {
        let mut text = format!(
            "[sip]\n{}\n\n[call]\n{}\n",
            self.sip.join("\n"),
            self.call.join("\n")
        );
        for target in &self.targets {
            let (url, lines) = target.split_once('\n').unwrap_or((target, ""));
            text.push_str(&format!("\n[[rtmp]]\nurl = \"{url}\"\n{lines}\n"));
        }
        text.push('\n');
        text.push_str(&self.extra);
        text
    }
}

/// What every end-to-end test needs: nginx-rtmp recording into a temp dir, and the daemon.
pub struct Stage {
    pub daemon: Daemon,
    pub nginx: Nginx,
    pub work: tempfile::TempDir,
}

impl Stage {
    pub fn new() -> Stage {
        let work = tempfile::tempdir().expect("tempdir");
        let nginx = Nginx::start(work.path(), None);
        Stage {
            daemon: Daemon::start(),
            nginx,
            work,
        }
    }

    /// The URL of stream `key` in nginx's recording application.
    pub fn url(&self, key: &str) -> String {
        stream_url(&self.nginx, key)
    }
}

/// A [`SpecText::targets`] entry: `url` plus more lines of its `[[rtmp]]` table.
pub fn target_with(url: &str, lines: &str) -> String {
    format!("{url}\n{lines}")
}

pub fn stream_url(nginx: &Nginx, key: &str) -> String {
    format!("rtmp://127.0.0.1:{}/live/{key}", nginx.rtmp_port)
}

/// Recordings of stream `key`, oldest first (nginx names them `KEY-UNIXTIME.flv`).
pub fn recordings_of(nginx: &Nginx, key: &str) -> Vec<PathBuf> {
    nginx
        .recorded_files()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{key}-")))
        })
        .collect()
}

/// Seconds covered by packets of `kind` ("audio"/"video") in a probe: last DTS - first DTS
/// plus one frame's worth, so a single packet still counts a little.
pub fn covered_seconds(probe: &Probe, kind: &str) -> f64 {
    let dts: Vec<f64> = probe
        .packets
        .iter()
        .filter(|p| p.0 == kind && p.1.is_finite())
        .map(|p| p.1)
        .collect();
    match (dts.first(), dts.last()) {
        (Some(first), Some(last)) => last - first + if kind == "audio" { 0.128 } else { 0.067 },
        _ => 0.0,
    }
}

/// The committed pcaps last ~10 s; hang up just after they end so the call is all media.
pub const PCAP_SECONDS: f64 = 10.3;

/// Seconds since the call was answered, from the status' `call.since`.
pub fn answered_at(status: &serde_json::Value) -> f64 {
    let since: jiff::Timestamp = status["call"]["since"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("call.since missing: {status}"));
    since.as_microsecond() as f64 / 1e6
}

/// Waits until the pcaps have played out, deletes the spec, and checks sipp's BYE time.
/// Returns the call's duration (answer to BYE) in seconds.
pub fn hang_up_after_the_pcap(
    daemon: &Daemon,
    callee: &mut Sipp,
    name: &str,
    answered: f64,
) -> f64 {
    let due = answered + PCAP_SECONDS;
    let wait = due - unix_now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    let deleted = daemon.delete_spec(name);
    let bye = callee.wait_bye(Duration::from_secs(3));
    let delay = bye - deleted;
    eprintln!(
        "{name}: BYE reached sipp {:.0} ms after the spec was deleted",
        delay * 1000.0
    );
    assert!(delay < 1.0, "BYE {delay:.3} s after the deletion");
    callee.finish(Duration::from_secs(5));
    bye - answered
}

/// The recording of `key`: exactly one file, checked by [`probe_stream`], with AAC covering at
/// least 80 % of the call and carrying the callee's 440 Hz tone (not the silence sipcast sends
/// when no audio arrives).
pub fn check_recording(nginx: &Nginx, key: &str, call_seconds: f64) -> Probe {
    // nginx closes the file when the publisher's connection ends.
    std::thread::sleep(Duration::from_millis(500));
    let files = recordings_of(nginx, key);
    assert_eq!(files.len(), 1, "one publish, one recording: {files:?}");
    let probe = probe_stream(&files[0]);
    let audio = covered_seconds(&probe, "audio");
    eprintln!(
        "{key}: call {call_seconds:.2} s, AAC covers {audio:.2} s ({:.0} %)",
        100.0 * audio / call_seconds
    );
    assert!(
        audio >= 0.8 * call_seconds,
        "AAC covers {audio:.2} s of a {call_seconds:.2} s call"
    );
    crate::peers::tone::check_440_hz(&files[0]);
    probe
}

/// ffprobe on one recording: H.264 at the pcap's 320x240 first of all a keyframe, AAC audio,
/// timestamps never going back.
pub fn probe_stream(path: &Path) -> Probe {
    let probe = ffprobe(path);
    eprintln!(
        "{}: {:.2} s, video {} {:?}x{:?} over {:.2} s, audio {} over {:.2} s",
        path.file_name().unwrap_or_default().to_string_lossy(),
        probe.duration,
        probe.video_codec.as_deref().unwrap_or("-"),
        probe.width,
        probe.height,
        covered_seconds(&probe, "video"),
        probe.audio_codec.as_deref().unwrap_or("-"),
        covered_seconds(&probe, "audio"),
    );
    assert_eq!(probe.video_codec.as_deref(), Some("h264"), "{path:?}");
    assert_eq!((probe.width, probe.height), (Some(320), Some(240)));
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    assert!(
        probe.first_video_is_keyframe(),
        "the recording starts with a keyframe: {:?}",
        &probe.packets[..probe.packets.len().min(6)]
    );
    assert!(probe.monotonic(), "timestamps never go back");
    probe
}

/// JSON helpers for status checks.
pub fn call_state(status: &Value) -> &str {
    status["call"]["state"].as_str().unwrap_or("")
}

pub fn target_state(status: &Value, index: usize) -> &str {
    status["rtmp"][index]["state"].as_str().unwrap_or("")
}

pub fn is_streaming(status: &Value) -> bool {
    call_state(status) == "established"
        && status["rtmp"]
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "publishing"))
}
