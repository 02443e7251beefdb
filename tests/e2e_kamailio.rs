//! End to end through a real registrar and record-routing proxy (Kamailio) over UDP, TCP and
//! TLS: `sipcast run` registers, calls a sipp callee behind the proxy, and the callee's BYE —
//! which the proxy must deliver to us — ends the call within a second. Over TCP the proxy
//! connects to the Contact we advertise (our TCP listener); over TLS, where we have no
//! listener, it reuses the connection we opened (RFC 5923 `alias` in our Via), and with one
//! (`sip_tls_cert_file` in sipcast.toml) it connects to it; with mutual TLS it accepts our
//! client certificate. A proxy whose certificate we do not trust, or that wants a client
//! certificate we lack, ends the attempt with a reason that names it.

mod e2e_support;
mod peers;

use std::time::Duration;

use e2e_support::*;
use peers::kamailio::{Kamailio, KamailioOptions};
use serde_json::Value;

fn spec(port: u16, transport: &str, extra_sip: &str) -> String {
    format!(
        r#"[sip]
user = "sipcast"
domain = "127.0.0.1:{port}"
register = true
transport = "{transport}"
{extra_sip}

[call]
to = "callee"
video = false
on_remote_hangup = "complete"

[[rtmp]]
url = "rtmp://127.0.0.1:9/live"
stream_key = "kamailio"

[redial]
initial = "1s"
max = "2s"
"#
    )
}

fn reason(status: &Value) -> &str {
    status["call"]["reason"].as_str().unwrap_or("")
}

/// Registers through Kamailio, calls the callee behind it and returns how long after the
/// callee sent BYE the daemon reported the call over (seconds).
/// How the proxy and the daemon are set up for one run.
#[derive(Clone, Copy, Default)]
struct Setup {
    /// The proxy reuses our connection (`tcp_accept_aliases`).
    accept_aliases: bool,
    /// The daemon listens for TLS with a certificate from the proxy's CA.
    inbound_tls: bool,
    /// The proxy demands a client certificate, and the spec names one.
    mutual_tls: bool,
}

fn callee_hangs_up_through_kamailio(transport: &str, setup: Setup) -> f64 {
    let Setup {
        accept_aliases,
        inbound_tls,
        mutual_tls,
    } = setup;
    let mut callee = Sipp::start("kamailio_callee_hangs_up.xml", &["-d", "3000"]);
    let kamailio = Kamailio::start(
        &callee.addr(),
        KamailioOptions {
            accept_aliases,
            flow_timer: Some(20),
            require_client_cert: mutual_tls,
        },
    );
    let daemon = if inbound_tls {
        let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let pki = kamailio.dir.path();
        Daemon::start_configured(&format!(
            "sip_tls_listen = \"127.0.0.1:{tls_port}\"\n\
             sip_tls_cert_file = \"{}\"\nsip_tls_key_file = \"{}\"\n",
            pki.join("server.crt").display(),
            pki.join("server.key").display()
        ))
    } else {
        Daemon::start()
    };
    let (port, extra) = match transport {
        "udp" => (kamailio.udp, String::new()),
        "tcp" => (kamailio.tcp, String::new()),
        _ => {
            let pki = kamailio.dir.path();
            let mut extra = format!("ca_file = \"{}\"", kamailio.ca_file().display());
            if mutual_tls {
                extra.push_str(&format!(
                    "\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
                    pki.join("server.crt").display(),
                    pki.join("server.key").display()
                ));
            }
            (kamailio.tls, extra)
        }
    };
    daemon.put_spec("proxied", &spec(port, transport, &extra));
    daemon.wait_status(
        "proxied",
        Duration::from_secs(15),
        "the call through Kamailio established",
        |s| call_state(s) == "established",
    );
    let ended = daemon.wait_status(
        "proxied",
        Duration::from_secs(12),
        "the callee's BYE to end the call",
        |s| call_state(s) != "established",
    );
    let seen_at = unix_now();
    let bye_sent_at: f64 = std::fs::read_to_string(callee.dir.path().join("bye_sent_at"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("the callee sent no BYE:\n{}", callee.logs()));
    let since: jiff::Timestamp = ended["call"]["since"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("call.since");
    // An upper bound: the status is polled every 50 ms, and sipp writes bye_sent_at from a
    // forked `date`, a few ms after the BYE may already be on its way.
    let delay = seen_at - bye_sent_at;
    println!(
        "{transport}: call seen over {:.0} ms after the callee sent BYE (status `since` {:+.0} ms); \
         state {}, reason {:?}",
        delay * 1000.0,
        (since.as_microsecond() as f64 / 1e6 - bye_sent_at) * 1000.0,
        call_state(&ended),
        reason(&ended)
    );
    assert_eq!(call_state(&ended), "finished", "{ended:#}");
    assert!(
        reason(&ended).contains("hung up"),
        "ended by the callee: {ended:#}"
    );
    assert!(
        delay < 1.0,
        "the call ended {delay:.3} s after the callee's BYE:\n{}",
        kamailio.log()
    );
    // The callee got the 200 to its BYE (through the proxy), so the proxy has logged it.
    callee.finish(Duration::from_secs(5));
    let log = kamailio.log();
    let upper = transport.to_uppercase();
    assert!(
        log.contains(&format!(
            "REGISTER sip:127.0.0.1:{port} from {transport}:127.0.0.1"
        )),
        "we registered over {upper}:\n{log}"
    );
    assert!(
        log.contains(&format!("reply 200 BYE from {transport}:127.0.0.1")),
        "our 200 to the BYE came back over {upper}:\n{log}"
    );
    delay
}

#[test]
fn over_udp_the_callees_bye_ends_the_call_within_a_second() {
    callee_hangs_up_through_kamailio("udp", Setup::default());
}

#[test]
fn over_tcp_the_proxy_reaches_our_listener_and_the_bye_ends_the_call_within_a_second() {
    callee_hangs_up_through_kamailio("tcp", Setup::default());
}

#[test]
fn over_tls_the_proxy_reuses_our_connection_and_the_bye_ends_the_call_within_a_second() {
    callee_hangs_up_through_kamailio(
        "tls",
        Setup {
            accept_aliases: true,
            ..Setup::default()
        },
    );
}

#[test]
fn over_tls_the_proxy_reaches_our_tls_listener_and_the_bye_ends_the_call_within_a_second() {
    callee_hangs_up_through_kamailio(
        "tls",
        Setup {
            inbound_tls: true,
            ..Setup::default()
        },
    );
}

#[test]
fn over_mutual_tls_our_client_certificate_is_accepted_and_the_bye_ends_the_call() {
    callee_hangs_up_through_kamailio(
        "tls",
        Setup {
            accept_aliases: true,
            mutual_tls: true,
            ..Setup::default()
        },
    );
}

#[test]
fn a_proxy_certificate_we_do_not_trust_is_named_in_the_status() {
    let callee = Sipp::start("kamailio_callee_hangs_up.xml", &["-d", "3000"]);
    let kamailio = Kamailio::start(
        &callee.addr(),
        KamailioOptions {
            accept_aliases: true,
            flow_timer: None,
            require_client_cert: false,
        },
    );
    let daemon = Daemon::start();
    // No ca_file: the system roots do not know the test CA.
    daemon.put_spec("untrusted", &spec(kamailio.tls, "tls", ""));
    let failed = daemon.wait_status(
        "untrusted",
        Duration::from_secs(10),
        "the attempt to fail on the certificate",
        |s| !reason(s).is_empty(),
    );
    println!("untrusted TLS proxy: reason {:?}", reason(&failed));
    assert!(
        reason(&failed).contains("TLS certificate not trusted for 127.0.0.1"),
        "{failed:#}"
    );
}

#[test]
fn a_proxy_that_wants_a_client_certificate_we_lack_is_named_in_the_status() {
    let callee = Sipp::start("kamailio_callee_hangs_up.xml", &["-d", "3000"]);
    let kamailio = Kamailio::start(
        &callee.addr(),
        KamailioOptions {
            accept_aliases: true,
            flow_timer: None,
            require_client_cert: true,
        },
    );
    let daemon = Daemon::start();
    let ca = format!("ca_file = \"{}\"", kamailio.ca_file().display());
    daemon.put_spec("no_client_cert", &spec(kamailio.tls, "tls", &ca));
    let failed = daemon.wait_status(
        "no_client_cert",
        Duration::from_secs(10),
        "the attempt to fail on the missing client certificate",
        |s| !reason(s).is_empty(),
    );
    println!(
        "mutual TLS without a certificate: reason {:?}",
        reason(&failed)
    );
    assert!(
        reason(&failed).contains("TLS client certificate required by 127.0.0.1"),
        "{failed:#}"
    );
}

#[test]
fn when_the_proxy_restarts_we_register_again_and_its_bye_still_reaches_us() {
    let mut callee = Sipp::start("kamailio_callee_hangs_up.xml", &["-d", "9000"]);
    let mut kamailio = Kamailio::start(
        &callee.addr(),
        KamailioOptions {
            accept_aliases: false,
            flow_timer: Some(20),
            require_client_cert: false,
        },
    );
    let daemon = Daemon::start();
    daemon.put_spec("restarted", &spec(kamailio.tcp, "tcp", ""));
    daemon.wait_status(
        "restarted",
        Duration::from_secs(15),
        "the call through Kamailio established",
        |s| call_state(s) == "established",
    );
    let before = kamailio.log().len();
    let restarted_at = sipcast::clock::monotonic();
    kamailio.restart();
    // Our registration's flow closed with the old Kamailio: we register again over a new one.
    let register = format!("REGISTER sip:127.0.0.1:{} from tcp:127.0.0.1", kamailio.tcp);
    while !kamailio.log_since(before).contains(&register) {
        assert!(
            restarted_at.elapsed() < Duration::from_secs(5),
            "no REGISTER after the restart:\n{}",
            kamailio.log_since(before)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "registered again {} ms after the proxy restart began",
        restarted_at.elapsed().as_millis()
    );
    // The call lives on; the callee's BYE reaches us through the restarted proxy.
    let ended = daemon.wait_status(
        "restarted",
        Duration::from_secs(15),
        "the callee's BYE to end the call",
        |s| call_state(s) != "established",
    );
    assert!(reason(&ended).contains("hung up"), "{ended:#}");
    callee.finish(Duration::from_secs(5));
}
