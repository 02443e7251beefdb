//! The status API under abuse, against the real daemon with a live call and publish: every
//! method, absurd URLs and headers, and 1 100 slow-header connections with the daemon's
//! open-files limit at systemd's default 1024. Afterwards the call is still up, the stream
//! still publishing, a newly dropped spec still dials and `/livez` tells the truth.

mod e2e_support;
mod peers;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e_support::*;

/// Sends `request` raw and returns the status code of the answer, if any came.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(8))).ok()?;
    stream.write_all(request).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn api_abuse_never_reaches_calls_or_publishers() {
    // Our own side needs more than 1 100 descriptors for the slow clients.
    let mut limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current = limit.maximum;
    let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, limit);

    let work = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(work.path(), None);
    let daemon = Daemon::start_limited(Some(1024));
    let callee = Sipp::start("e2e_callee.xml", &[]);
    let live = daemon.go_live(
        "steady",
        &SpecText::direct(&callee.addr(), &[stream_url(&nginx, "steady")]),
    );
    let call_id = live["call"]["call_id"].clone();
    let rss_before = daemon.rss_kib();

    // Every method but GET and HEAD is refused; absurd requests get an error, not a crash.
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ] {
        let request = format!(
            "{method} /v1/broadcasts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let code = raw(daemon.api, request.as_bytes());
        assert!(matches!(code, Some(405 | 400 | 404)), "{method}: {code:?}");
    }
    let long_url = format!(
        "GET /v1/broadcasts/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(200_000)
    );
    let code = raw(daemon.api, long_url.as_bytes());
    assert!(code.is_none_or(|c| c >= 400), "{code:?}");
    let junk = b"GET /\xc3\xa9\xff HTTP/1.1\r\nHost: \xe2\x82\xac\r\nX: \x00\x01\r\n\r\n";
    let code = raw(daemon.api, junk);
    assert!(code.is_none_or(|c| c >= 400), "{code:?}");

    // 1 100 clients that open a connection and send half a request line, then nothing.
    let mut slow = Vec::new();
    for _ in 0..1100 {
        if let Ok(mut s) = TcpStream::connect_timeout(&daemon.api, Duration::from_millis(200)) {
            let _ = s.write_all(b"GET /livez HT");
            slow.push(s);
        }
    }
    eprintln!(
        "{} slow connections opened; daemon holds {} descriptors",
        slow.len(),
        daemon.open_fds()
    );
    assert!(
        daemon.open_fds() < 700,
        "{} descriptors in use",
        daemon.open_fds()
    );

    // While they hang on: /livez answers (once the header timeout frees slots)...
    let asked = sipcast::clock::monotonic();
    let livez = http_get(daemon.api, "/livez");
    eprintln!(
        "/livez answered {:?} after {:.2} s",
        livez.as_ref().map(|l| l.0),
        asked.elapsed().as_secs_f64()
    );
    assert_eq!(livez.map(|l| l.0), Some(200));
    // ...the call and the stream are untouched, and a new spec dials and publishes.
    let second = Sipp::start("e2e_callee.xml", &[]);
    daemon.put_spec(
        "newcomer",
        &SpecText::direct(&second.addr(), &[stream_url(&nginx, "newcomer")]).render(),
    );
    daemon.wait_status(
        "newcomer",
        Duration::from_secs(20),
        "the newcomer streaming while the API is flooded",
        is_streaming,
    );
    let steady = daemon.status("steady").expect("status");
    assert!(is_streaming(&steady), "{steady}");
    assert_eq!(steady["call"]["call_id"], call_id, "no redial: {steady}");
    drop(slow);

    std::thread::sleep(Duration::from_secs(1));
    let rss_after = daemon.rss_kib();
    eprintln!("RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert_eq!(http_get(daemon.api, "/livez").map(|l| l.0), Some(200));
    let metrics = http_get(daemon.api, "/metrics").expect("metrics").1;
    for task in ["reconciler", "source", "api", "sip"] {
        assert!(
            metrics.contains(&format!(
                "sipcast_internal_restarts_total{{task=\"{task}\"}} 0"
            )),
            "{task}: {metrics}"
        );
    }
    assert!(metrics.contains("sipcast_sip_refused_total{kind=\"stray_rate_limited\"}"));
    assert!(
        daemon.log().contains("open_files=1024"),
        "the limit in force is logged"
    );
}
