//! SIGTERM is bounded whatever the peers do: one call whose callee never answers BYE, one
//! ringing at a callee that never answers, one dialing a host that never replies at all. The
//! README promises 10 s.

mod e2e_support;
mod peers;

use std::net::UdpSocket;
use std::time::Duration;

use e2e_support::*;

#[test]
fn sigterm_with_a_deaf_callee_and_a_silent_one_exits_on_time() {
    let work = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(work.path(), None);
    let mut daemon = Daemon::start();
    let deaf = Sipp::start(
        "e2e_callee_ignores_bye.xml",
        &["-default_behaviors", "none"],
    );
    daemon.go_live(
        "deaf",
        &SpecText::direct(&deaf.addr(), &[stream_url(&nginx, "deaf")]),
    );
    // A "callee" that swallows every datagram: our INVITE is retransmitted, never answered.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    daemon.put_spec(
        "silent",
        &SpecText::direct(&silent_addr, &[stream_url(&nginx, "silent")]).render(),
    );
    let ringing = Sipp::start("e2e_callee_rings_forever.xml", &[]);
    daemon.put_spec(
        "ringing",
        &SpecText::direct(&ringing.addr(), &[stream_url(&nginx, "ringing")]).render(),
    );
    daemon.wait_status("silent", Duration::from_secs(5), "dialing", |s| {
        s["phase"] == "dialing"
    });
    daemon.wait_status("ringing", Duration::from_secs(5), "ringing", |s| {
        s["phase"] == "ringing"
    });

    let took = daemon.stop(Duration::from_secs(15));
    eprintln!(
        "sipcast run exited {:.2} s after SIGTERM",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let log = daemon.log();
    assert!(log.contains("stopped"), "no clean stop:\n{log}");
    assert!(
        deaf.bye_at().is_some(),
        "the deaf callee got its BYE:\n{}",
        deaf.logs()
    );
    assert!(
        ringing.dir.path().join("cancel_at").exists(),
        "the ringing call was CANCELled:\n{}",
        ringing.logs()
    );
}
