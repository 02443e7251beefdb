//! End to end: the digits of `call.dtmf` reach the callee after the answer, as RFC 4733
//! telephone-events on the wire (read on the callee's audio port, which the test binds itself)
//! and as SIP INFO (checked by the sipp scenario).

mod e2e_support;
mod peers;

use std::net::UdpSocket;
use std::time::Duration;

use e2e_support::*;

/// One RFC 4733 telephone-event packet (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy)]
struct EventPacket {
    payload_type: u8,
    timestamp: u32,
    event: u8,
    end: bool,
}

fn parse_event(packet: &[u8]) -> Option<EventPacket> {
    let csrcs = usize::from(*packet.first()? & 0x0f);
    let payload = packet.get(12 + 4 * csrcs..)?;
    Some(EventPacket {
        payload_type: packet.get(1)? & 0x7f,
        timestamp: u32::from_be_bytes(packet.get(4..8)?.try_into().ok()?),
        event: *payload.first()?,
        end: payload.get(1)? & 0x80 != 0,
    })
}

fn digit(event: u8) -> char {
    match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => '?',
    }
}

#[test]
fn rfc4733_digits_1234_hash_are_on_the_wire_after_the_answer() {
    let stage = Stage::new();
    let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
    audio
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let rtp_port = audio.local_addr().unwrap().port().to_string();
    let mut callee = Sipp::start("e2e_dtmf_rfc4733.xml", &["-key", "rtp_port", &rtp_port]);
    let spec = SpecText::direct(&callee.addr(), &[stage.url("dtmf")])
        .call_line("dtmf = \"1234#\"")
        .call_line("dtmf_method = \"rfc4733\"")
        .call_line("dtmf_delay = \"300ms\"");
    stage.daemon.put_spec("dtmf", &spec.render());

    // Events in order of their RTP timestamp (one per digit), until the fifth one ends.
    let mut digits: Vec<(u32, u8, bool)> = Vec::new();
    let mut buf = [0u8; 2048];
    while !(digits.len() == 5 && digits[4].2) {
        let (len, from) = audio
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no more RFC 4733 packets ({e}); digits so far {digits:?}"));
        let (low, high) = stage.daemon.rtp_ports;
        assert!(
            (low..=high).contains(&from.port()),
            "sent from our RTP port range: {from}"
        );
        let Some(event) = parse_event(&buf[..len]) else {
            continue;
        };
        if event.payload_type != 101 {
            continue;
        }
        match digits.iter_mut().find(|d| d.0 == event.timestamp) {
            Some(d) => d.2 |= event.end,
            None => digits.push((event.timestamp, event.event, event.end)),
        }
    }
    let sent: String = digits.iter().map(|d| digit(d.1)).collect();
    assert_eq!(sent, "1234#");

    let status =
        stage
            .daemon
            .wait_status("dtmf", Duration::from_secs(5), "dtmf_sent = 1234#", |s| {
                s["call"]["dtmf_sent"] == "1234#"
            });
    assert_eq!(call_state(&status), "established", "{status}");
    stage.daemon.delete_spec("dtmf");
    callee.wait_bye(Duration::from_secs(3));
    callee.finish(Duration::from_secs(5));
}

#[test]
fn info_digits_1234_hash_reach_the_callee_as_dtmf_relay_bodies() {
    let stage = Stage::new();
    let mut callee = Sipp::start("e2e_dtmf_info.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stage.url("info")])
        .call_line("dtmf = \"1234#\"")
        .call_line("dtmf_method = \"info\"")
        .call_line("dtmf_delay = \"300ms\"");
    stage.daemon.put_spec("info", &spec.render());
    let status =
        stage
            .daemon
            .wait_status("info", Duration::from_secs(15), "dtmf_sent = 1234#", |s| {
                s["call"]["dtmf_sent"] == "1234#"
            });
    assert_eq!(call_state(&status), "established", "{status}");
    // The scenario checked each INFO body; it ends on our BYE.
    stage.daemon.delete_spec("info");
    callee.wait_bye(Duration::from_secs(3));
    callee.finish(Duration::from_secs(5));
}
