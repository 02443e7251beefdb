//! The probe's SIP check over TCP and TLS (the CLI tests cover UDP): sipp answering OPTIONS on
//! a TCP stream, directly and behind a TLS front with a throw-away CA.

mod peers;
mod sip_support;

use std::time::Duration;

use sip_support::{Sipp, TlsFront};
use sipcast::probe::{ProbeOptions, Verdict, sip};

fn spec(port: u16, transport: &str) -> sipcast::spec::BroadcastSpec {
    let text = format!(
        "[sip]\nuser = \"1001\"\ndomain = \"127.0.0.1:{port}\"\ntransport = \"{transport}\"\n\
         [call]\nto = \"service\"\n[rtmp]\nurl = \"rtmp://127.0.0.1/live/k\"\n"
    );
    sipcast::spec::parse("t.toml", &text).expect("spec parses")
}

#[tokio::test]
async fn options_over_tcp_is_framed_from_the_stream() {
    let sipp = Sipp::uas_tcp("uas_options.xml");
    let spec = spec(sipp.port, "tcp");
    let options = ProbeOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let check = sip::check(&spec.sip, &spec.call, &options).await;
    assert_eq!(check.verdict, Verdict::Ok, "{check:?}");
    assert!(
        check.detail.contains(": 200 OK from 127.0.0.1:"),
        "{check:?}"
    );
    sipp.finish().await;
}

#[tokio::test]
async fn options_over_tls_checks_the_certificate() {
    let sipp = Sipp::uas_tcp("uas_options.xml");
    let front = TlsFront::new(sipp.port);
    let spec = spec(front.port, "tls");

    // Without the test CA the certificate is not trusted: a red line, not a hang.
    let untrusted = sip::check(
        &spec.sip,
        &spec.call,
        &ProbeOptions {
            timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(untrusted.verdict, Verdict::Fail, "{untrusted:?}");

    let options = ProbeOptions {
        timeout: Duration::from_secs(5),
        sip_tls_ca_file: Some(front.ca_file()),
    };
    let check = sip::check(&spec.sip, &spec.call, &options).await;
    assert_eq!(check.verdict, Verdict::Ok, "{check:?}");
    sipp.finish().await;
}
