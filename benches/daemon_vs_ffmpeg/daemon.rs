//! The sipcast side as a user runs it: `sipcast run` (the release binary) on a spec directory,
//! one spec file per stream dialing one sipp callee that answers H.264 + PCMU and plays the
//! captured pcap to every call, each publishing to nginx.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::host::http_get;
use crate::measure::{measure, wait_until_published};
use crate::nginx::{describe_sink, find_stream, sink_ok};
use crate::peers::{Process, free_tcp_port};
use crate::{Fallible, LOOPBACK, Setup, SideResult};

/// The callee's scenario; `PCAP` stands for the pcap it plays.
const CALLEE_SCENARIO: &str = include_str!("callee.xml");

/// RTP packets over every call, from the daemon's status at the end of the window.
#[derive(Clone, Copy, Default)]
pub struct Packets {
    pub received: u64,
    pub lost: u64,
}

/// Runs `setup.streams` broadcasts through one daemon against one sipp callee playing `pcap`.
pub async fn run(setup: &Setup<'_>, pcap: &Path) -> Fallible<(SideResult, Packets)> {
    let dir = setup.dir.join("daemon");
    let specs = dir.join("broadcasts.d");
    std::fs::create_dir_all(&specs).map_err(|e| format!("{}: {e}", specs.display()))?;
    let callee = start_callee(&dir, pcap)?;
    let daemon = Daemon::start(&dir, setup.streams)?;
    let names: Vec<String> = (0..setup.streams).map(|i| format!("sipcast{i}")).collect();
    for name in &names {
        let spec = spec(callee.port, &setup.nginx.url(name));
        let path = specs.join(format!("{name}.toml"));
        std::fs::write(&path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let all_streaming = || {
        daemon
            .broadcasts()
            .is_some_and(|b| b.len() == names.len() && b.iter().all(is_streaming))
    };
    wait_until_published(setup.nginx, &names, all_streaming).await?;
    let pid = daemon.process.pid();
    let window = measure(setup, &names, &[pid], &[callee.process.pid()]).await?;
    let broadcasts = daemon.broadcasts().unwrap_or_default();

    let mut checks = Vec::new();
    let mut broken = Vec::new();
    let mut packets = Packets::default();
    for name in &names {
        let status = broadcasts.iter().find(|b| b["name"] == name.as_str());
        let media = status.map_or(&Value::Null, |s| &s["call"]["media"]);
        let count = |key: &str| media[key].as_u64().unwrap_or(0);
        packets.received += count("rtp_packets");
        packets.lost += count("rtp_lost");
        let sink = find_stream(&window.sink, name);
        let streaming = status.is_some_and(is_streaming);
        checks.push(format!(
            "sipcast {name}: {} RTP packets in, {} lost; {}; nginx got {}",
            count("rtp_packets"),
            count("rtp_lost"),
            if streaming {
                "streaming"
            } else {
                "NOT streaming"
            },
            describe_sink(sink)
        ));
        if !streaming || !sink_ok(sink) {
            broken.push(format!("{name} published nothing usable"));
        }
    }
    // Hang up politely so nginx closes every recording, then stop the daemon.
    for name in &names {
        let _ = std::fs::remove_file(specs.join(format!("{name}.toml")));
    }
    for _ in 0..100 {
        if daemon.broadcasts().is_some_and(|b| b.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.stop();
    Ok((
        SideResult::new("sipcast", names, window, checks, broken),
        packets,
    ))
}

/// A broadcast spec dialing the callee directly, as `tests/e2e_support`'s `SpecText::direct`.
fn spec(callee_port: u16, url: &str) -> String {
    format!(
        "[sip]\nuser = \"sipcast\"\ndomain = \"{LOOPBACK}:{callee_port}\"\n\n\
         [call]\nto = \"callee\"\n\n[[rtmp]]\nurl = \"{url}\"\n\n\
         [redial]\ninitial = \"1s\"\nmax = \"2s\"\n"
    )
}

/// Call established and every target publishing.
fn is_streaming(status: &Value) -> bool {
    status["call"]["state"] == "established"
        && status["rtmp"]
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "publishing"))
}

/// `sipcast run`, stopped with SIGTERM (then SIGKILL) when dropped.
struct Daemon {
    process: Process,
    api: SocketAddr,
}

impl Daemon {
    fn start(dir: &Path, streams: usize) -> Fallible<Daemon> {
        let api = SocketAddr::from((LOOPBACK, free_tcp_port()?));
        let sip = free_udp_port()?;
        // Four RTP ports per call (audio and video, each with RTCP), and some to spare.
        let (low, high) = free_udp_block(4 * streams as u16 + 16)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_sipcast"));
        command
            .arg("run")
            .arg("--dir")
            .arg(dir.join("broadcasts.d"))
            .args(["--api", &api.to_string()])
            .args(["--sip-listen", &format!("{LOOPBACK}:{sip}")])
            .args(["--rtp-ports", &format!("{low}-{high}")])
            .env("RUST_LOG", "info");
        let mut process = Process::spawn(command, &dir.join("daemon.log"))?;
        let daemon = |process| Daemon { process, api };
        for _ in 0..200 {
            if !process.alive() {
                break;
            }
            if http_get(api, "/readyz").is_some_and(|(code, _)| code == 200) {
                return Ok(daemon(process));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = process.log.display();
        Err(format!("sipcast run was not ready within 10 s; see {log}"))
    }

    /// `GET /v1/broadcasts`: every broadcast's status (`{"broadcasts": [...]}`).
    fn broadcasts(&self) -> Option<Vec<Value>> {
        let (code, body) = http_get(self.api, "/v1/broadcasts")?;
        let mut json: Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
        match json["broadcasts"].take() {
            Value::Array(list) => Some(list),
            _ => None,
        }
    }

    fn stop(mut self) {
        self.process.stop(Duration::from_secs(5));
    }
}

/// One sipp UAS taking every call, playing `pcap` to each after the ACK.
struct Callee {
    process: Process,
    port: u16,
}

fn start_callee(dir: &Path, pcap: &Path) -> Fallible<Callee> {
    let scenario: PathBuf = dir.join("callee.xml");
    let text = CALLEE_SCENARIO.replace("\"PCAP\"", &format!("\"{}\"", pcap.display()));
    std::fs::write(&scenario, text).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let port = free_udp_port()?;
    let (media_port, _) = free_udp_block(4)?;
    let mut command = Command::new("sipp");
    command
        .current_dir(dir)
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", &LOOPBACK.to_string(), "-p", &port.to_string()])
        .args(["-mp", &media_port.to_string()])
        .args(["-trace_err", "-nostdin"]);
    let mut process = Process::spawn(command, &dir.join("sipp.log"))?;
    // sipp needs a moment to bind before anyone sends to it.
    std::thread::sleep(Duration::from_millis(300));
    if !process.alive() {
        let log = process.log.display();
        return Err(format!("sipp exited at start; see {log}"));
    }
    Ok(Callee { process, port })
}

fn free_udp_port() -> Fallible<u16> {
    UdpSocket::bind((LOOPBACK, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free UDP port: {e}"))
}

/// `len` consecutive UDP ports from an even one, all free a moment ago.
fn free_udp_block(len: u16) -> Fallible<(u16, u16)> {
    for base in (20_000..60_000u16).step_by(usize::from(len.max(2)) + 2) {
        let high = base + len - 1;
        let free = (base..=high)
            .map(|p| UdpSocket::bind((LOOPBACK, p)))
            .collect::<Result<Vec<_>, _>>()
            .is_ok();
        if free {
            return Ok((base, high));
        }
    }
    Err(format!("no {len} consecutive free UDP ports on {LOOPBACK}"))
}
