//! Issue 10: nothing a stranger sends to the SIP port stops a broadcast. The real daemon has a
//! live call (sipp callee playing the committed pcaps) and a live publish (nginx-rtmp); we send
//! it the committed corpus `tests/hostile/sip/`, generated variants (multi-byte and invalid
//! UTF-8 in every header, huge headers, 64 KiB+ datagrams, Content-Length lies, CRLF floods,
//! missing mandatory headers), 10 000 forged 2xx carrying the live Call-ID, our branch and new
//! To tags, and an INVITE flood; and we make it dial hostile TCP "servers". After each batch
//! the call is still the same established call, the stream still publishes, `/livez` is 200 and
//! RSS stays bounded; the bytes it sends back (to the attacker and to the forged Contact) are
//! counted and must stay far below what it received.

mod e2e_support;
mod peers;

use e2e_support::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Counts what arrives on a UDP socket in the background.
struct Counter {
    socket: UdpSocket,
    bytes: Arc<AtomicUsize>,
    datagrams: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Counter {
    fn start() -> Counter {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let reader = socket.try_clone().unwrap();
        let (bytes, datagrams, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (b, d, s) = (bytes.clone(), datagrams.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                if let Ok(len) = reader.recv(&mut buf) {
                    b.fetch_add(len, Ordering::Relaxed);
                    d.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Counter {
            socket,
            bytes,
            datagrams,
            stop,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What we know of the live call: from the status API and sipp's message log.
struct Live {
    call_id: String,
    branch: String,
    from_tag: String,
    to_tag: String,
}

fn between<'a>(text: &'a str, start: &str, ends: &[char]) -> Option<&'a str> {
    let at = text.find(start)? + start.len();
    let rest = &text[at..];
    let end = rest.find(|c| ends.contains(&c)).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn live_call(status: &Value, callee: &Sipp) -> Live {
    let call_id = status["call"]["call_id"].as_str().unwrap_or("").to_string();
    assert!(!call_id.is_empty(), "{status}");
    let log = callee.logs();
    let invite = &log[log.find("INVITE sip:").expect("sipp logged our INVITE")..];
    let ok = &log[log.find("SIP/2.0 200 OK").expect("sipp logged its 200")..];
    Live {
        branch: between(invite, "branch=", &[';', '\r', '\n', ' '])
            .unwrap()
            .into(),
        from_tag: between(invite, "tag=", &[';', '\r', '\n', ' ', '>'])
            .unwrap()
            .into(),
        to_tag: between(between(ok, "\nTo:", &['\n']).unwrap(), "tag=", &['\r', ';'])
            .unwrap()
            .into(),
        call_id,
    }
}

fn fill(template: &str, live: &Live, victim: SocketAddr, n: usize) -> String {
    template
        .replace("{CALL_ID}", &live.call_id)
        .replace("{BRANCH}", &live.branch)
        .replace("{FROM_TAG}", &live.from_tag)
        .replace("{TO_TAG}", &live.to_tag)
        .replace("{VICTIM}", &victim.to_string())
        .replace("{N}", &n.to_string())
}

/// The committed corpus, filled in, as datagrams.
fn corpus(live: &Live, victim: SocketAddr) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/sip");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus in {dir:?}");
    files
        .iter()
        .enumerate()
        .map(|(n, path)| {
            let text = fill(&std::fs::read_to_string(path).unwrap(), live, victim, n);
            let lf_only = path.to_string_lossy().contains("lf_only");
            if lf_only {
                text.into_bytes()
            } else {
                text.replace('\n', "\r\n").into_bytes()
            }
        })
        .collect()
}

/// A request and a response with every header value replaced in turn by hostile text, headers
/// left out one by one, oversized, and with Content-Length lies.
fn generated(live: &Live, victim: SocketAddr) -> Vec<Vec<u8>> {
    let request = fill(
        "INFO sip:sipcast@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {VICTIM};branch=z9hG4bKg\r\n\
         Max-Forwards: 70\r\nFrom: <sip:callee@y>;tag={TO_TAG}\r\nTo: <sip:sipcast@x>;tag={FROM_TAG}\r\n\
         Call-ID: {CALL_ID}\r\nCSeq: 1 INFO\r\nContact: <sip:c@{VICTIM}>\r\n\
         Content-Type: application/dtmf-relay\r\nAuthorization: Digest username=\"u\"\r\n\
         Session-Expires: 90\r\nContent-Length: 0\r\n\r\n",
        live,
        victim,
        0,
    );
    let response = fill(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch={BRANCH}\r\n\
         From: <sip:sipcast@x>;tag={FROM_TAG}\r\nTo: <sip:callee@y>;tag=generated\r\n\
         Call-ID: {CALL_ID}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@{VICTIM}>\r\n\
         WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\nRetry-After: 5\r\n\
         Content-Length: 0\r\n\r\n",
        live,
        victim,
        0,
    );
    let hostile_values: [&[u8]; 6] = [
        "abcdefé".as_bytes(),
        "abcdef€€".as_bytes(),
        "🎉🎉🎉".as_bytes(),
        b"\xff\xfe\xfd",
        b"abcdef\xc3",
        b"\xed\xa0\x80 surrogate",
    ];
    let mut out = Vec::new();
    for message in [&request, &response] {
        let lines: Vec<&str> = message.split("\r\n").collect();
        for (index, line) in lines.iter().enumerate().skip(1) {
            let Some((name, _)) = line.split_once(':') else {
                continue;
            };
            for value in hostile_values {
                let mut datagram = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    if i > 0 {
                        datagram.extend_from_slice(b"\r\n");
                    }
                    if i == index {
                        datagram.extend_from_slice(format!("{name}: ").as_bytes());
                        datagram.extend_from_slice(value);
                    } else {
                        datagram.extend_from_slice(l.as_bytes());
                    }
                }
                out.push(datagram);
            }
            // The header missing altogether.
            let without: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, l)| *l)
                .collect();
            out.push(without.join("\r\n").into_bytes());
        }
        // Start line garbage, a 60 KiB header, a datagram past 64 KiB, Content-Length lies.
        out.push(
            message
                .replacen("SIP/2.0", "SIP/2.0 é\u{1f389}", 1)
                .into_bytes(),
        );
        let huge = format!("X-Huge: {}\r\n", "é".repeat(30_000));
        out.push(
            message
                .replacen("\r\n", &format!("\r\n{huge}"), 1)
                .into_bytes(),
        );
        let mut big = message.clone().into_bytes();
        big.resize(65_507, b'a');
        out.push(big);
        for lie in [
            "Content-Length: 5000",
            "Content-Length: 4294967296",
            "Content-Length: x",
        ] {
            out.push(message.replace("Content-Length: 0", lie).into_bytes());
        }
    }
    out.push(b"\r\n".repeat(30_000));
    out.push(vec![0xff; 1400]);
    out.push(Vec::new());
    out
}

/// The daemon's process id: the `sipcast run` whose command line names its API address.
fn daemon_pid(daemon: &Daemon) -> u32 {
    let api = daemon.api.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("sipcast") && cmd.split('\0').any(|arg| arg == api)
            })
        })
        .expect("the daemon's pid")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// After every batch: the same call still up, still publishing, /livez 200, RSS bounded.
fn check_still_live(
    daemon: &Daemon,
    name: &str,
    call_id: &str,
    pid: u32,
    base_rss: u64,
    what: &str,
) {
    // Give the daemon a moment to work through what is queued.
    std::thread::sleep(Duration::from_millis(300));
    let status = daemon.status(name).expect("status");
    assert!(is_streaming(&status), "after {what}: {status}");
    // Still publishing means bytes still flowing to nginx.
    let sent = |s: &Value| s["rtmp"][0]["bytes_sent"].as_u64().unwrap_or(0);
    let before = sent(&status);
    daemon.wait_status(name, Duration::from_secs(3), "more bytes published", |s| {
        sent(s) > before + 5_000
    });
    assert_eq!(
        status["call"]["call_id"], call_id,
        "after {what}: the same call"
    );
    assert_eq!(
        status["attempts"], 1,
        "after {what}: never redialed: {status}"
    );
    let livez = http_get(daemon.api, "/livez").map(|(code, _)| code);
    assert_eq!(livez, Some(200), "after {what}");
    let rss = rss_kib(pid);
    eprintln!(
        "after {what}: RSS {} MiB (start {} MiB)",
        rss / 1024,
        base_rss / 1024
    );
    assert!(
        rss < base_rss + 64 * 1024,
        "after {what}: RSS grew from {base_rss} KiB to {rss} KiB"
    );
}

/// A newly dropped spec dials and streams while the hostile traffic has been going on.
fn check_new_spec_dials(daemon: &Daemon, nginx: &Nginx, key: &str) {
    let callee = Sipp::start("e2e_callee.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, key)]);
    let status = daemon.go_live(key, &spec);
    assert_eq!(status["call"]["sip_status"], 200, "{status}");
    daemon.delete_spec(key);
    daemon.wait_gone(key, Duration::from_secs(6));
}

#[test]
fn hostile_sip_traffic_never_stops_the_live_broadcast_nor_amplifies() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let callee = Sipp::start("hostile_callee.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "live")])
        .call_line("media_timeout = \"300s\"");
    daemon.go_live("live", &spec);
    let status = daemon.wait_status("live", Duration::from_secs(8), "media flowing", |s| {
        s["rtmp"][0]["bytes_sent"].as_u64().unwrap_or(0) > 20_000
    });
    let live = live_call(&status, &callee);
    let pid = daemon_pid(daemon);
    let base_rss = rss_kib(pid);
    let attacker = Counter::start();
    let victim = Counter::start();
    let send = |data: &[u8]| {
        let _ = attacker.socket.send_to(data, daemon.sip);
    };

    // 1. The committed corpus and the generated variants, three times over.
    let mut datagrams = corpus(&live, victim.addr());
    datagrams.extend(generated(&live, victim.addr()));
    let mut received = 0;
    for _ in 0..3 {
        for data in &datagrams {
            send(data);
            received += data.len();
        }
    }
    check_still_live(
        daemon,
        "live",
        &live.call_id,
        pid,
        base_rss,
        "the hostile corpus",
    );
    check_new_spec_dials(daemon, nginx, "fresh1");
    eprintln!(
        "corpus: {} datagrams, {received} B in; {} B back to the attacker, {} B to the victim",
        datagrams.len() * 3,
        attacker.bytes(),
        victim.bytes()
    );

    // 2. 10 000 forged 2xx: the live Call-ID and our branch, a new To tag each, the victim as
    //    Contact. At most a fork cap's worth of ACK + BYE may go out.
    let (before_attacker, before_victim) = (attacker.bytes(), victim.bytes());
    let template = fill(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={BRANCH}\r\n\
         From: <sip:sipcast@x>;tag={FROM_TAG}\r\nTo: <sip:callee@y>;tag=forged{N}\r\n\
         Call-ID: {CALL_ID}\r\nCSeq: 1 INVITE\r\nContact: <sip:victim@{VICTIM}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n",
        &live,
        victim.addr(),
        0,
    );
    let mut flood_in = 0;
    for n in 0..10_000 {
        let data = template.replace("forged0", &format!("forged{n}"));
        // Padded as the measurement was (4 MB for 10 000).
        let data = format!("{data}{}", " ".repeat(400 - data.len().min(400)));
        send(data.as_bytes());
        flood_in += data.len();
        if n % 500 == 499 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let flood_out = (attacker.bytes() - before_attacker) + (victim.bytes() - before_victim);
    eprintln!(
        "2xx flood: {flood_in} B in, {flood_out} B out ({} datagrams to the victim), ratio {:.4}",
        victim.datagrams.load(Ordering::Relaxed),
        flood_out as f64 / flood_in as f64
    );
    assert!(
        flood_out * 100 < flood_in,
        "2xx flood: sent {flood_out} B for {flood_in} B received"
    );
    check_still_live(
        daemon,
        "live",
        &live.call_id,
        pid,
        base_rss,
        "10 000 forged 2xx",
    );
    check_new_spec_dials(daemon, nginx, "fresh2");

    // 3. An INVITE flood from one source: answered at a bounded rate.
    let before = attacker.bytes();
    let mut invites_in = 0;
    for n in 0..5_000 {
        let invite = fill(
            "INVITE sip:sipcast@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {VICTIM};branch=z9hG4bKi{N}\r\n\
             From: <sip:spam@x>;tag=s{N}\r\nTo: <sip:sipcast@y>\r\nCall-ID: spam-{N}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:spam@{VICTIM}>\r\nContent-Length: 0\r\n\r\n",
            &live,
            attacker.addr(),
            n,
        );
        send(invite.as_bytes());
        invites_in += invite.len();
    }
    std::thread::sleep(Duration::from_secs(1));
    let invites_out = attacker.bytes() - before;
    eprintln!("INVITE flood: {invites_in} B in, {invites_out} B of answers");
    assert!(invites_out * 5 < invites_in, "{invites_out} B answered");
    check_still_live(
        daemon,
        "live",
        &live.call_id,
        pid,
        base_rss,
        "an INVITE flood",
    );

    // 4. A newly dropped spec still dials, also toward hostile TCP peers that fail fast.
    check_new_spec_dials(daemon, nginx, "fresh3");
    hostile_tcp_peers_fail_the_attempt_fast(daemon, nginx);
    check_still_live(
        daemon,
        "live",
        &live.call_id,
        pid,
        base_rss,
        "hostile TCP peers",
    );
}

/// A TCP "SIP server" that accepts and then sends garbage, an endless head, or nothing: the
/// attempt fails within seconds (not Timer B's 32 s) and says why.
fn hostile_tcp_peers_fail_the_attempt_fast(daemon: &Daemon, nginx: &Nginx) {
    for (key, reply) in [
        ("garbage", b"\xff\xfe garbage \xc3\r\n\r\n".to_vec()),
        (
            "endless",
            b"SIP/2.0 100 Trying\r\nX: "
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b'a', 80_000))
                .collect(),
        ),
        ("silent", Vec::new()),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(&reply);
                std::thread::sleep(Duration::from_secs(20));
            }
        });
        let mut spec = SpecText::direct(&addr.to_string(), &[stream_url(nginx, key)]);
        spec.sip.push("transport = \"tcp\"".into());
        let started = sipcast::clock::monotonic();
        daemon.put_spec(key, &spec.render());
        let status = daemon.wait_status(key, Duration::from_secs(10), "the attempt failed", |s| {
            s["attempts"].as_u64().unwrap_or(0) >= 1
                && matches!(call_state(s), "failed" | "finished")
        });
        let took = started.elapsed();
        eprintln!(
            "hostile TCP peer {key}: failed after {took:?}: {}",
            status["call"]["reason"]
        );
        assert!(took < Duration::from_secs(8), "{key}: {took:?}");
        daemon.delete_spec(key);
    }
}
