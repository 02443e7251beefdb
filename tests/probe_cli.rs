//! `sipcast probe FILE` against real peers on 127.0.0.1: sipp answering OPTIONS, Kamailio as a
//! digest registrar, nginx-rtmp whose `on_publish` callback admits one stream key. Judged by
//! the exit code and the named cause on the checklist, and by no secret in the output.

mod e2e_support;
mod peers;
mod probe_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use e2e_support::Sipp;
use probe_support::{PublishGate, Registrar, free_tcp_port, free_udp_port};

const RIGHT_KEY: &str = "right-key-5e1d";
const WRONG_KEY: &str = "wrong-key-9a44";
const RIGHT_PASSWORD: &str = "right-pw-71c0";
const WRONG_PASSWORD: &str = "wrong-pw-0b3e";

fn probe(spec: &Path, timeout: &str) -> (Output, Duration) {
    let started = sipcast::clock::monotonic();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .args(["probe", "--timeout", timeout])
        .arg(spec)
        .output()
        .expect("run sipcast probe");
    (out, started.elapsed())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The checklist line of `check`.
fn line<'a>(text: &'a str, check: &str) -> &'a str {
    text.lines()
        .find(|l| l.get(6..26).map(str::trim_end) == Some(check))
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{text}"))
}

fn assert_no_secret(text: &str) {
    for secret in [RIGHT_KEY, WRONG_KEY, RIGHT_PASSWORD, WRONG_PASSWORD] {
        assert!(!text.contains(secret), "a secret leaked:\n{text}");
    }
}

/// A spec in `dir` whose key and password come from files there.
fn write_spec(
    dir: &Path,
    sip: &str,
    rtmp_port: u16,
    key: &str,
    password: &str,
) -> std::path::PathBuf {
    std::fs::write(dir.join("key"), format!("{key}\n")).unwrap();
    std::fs::write(dir.join("pw"), password).unwrap();
    let text = format!(
        "[sip]\nuser = \"1001\"\n{sip}\npassword_file = \"{pw}\"\n\
         [call]\nto = \"service\"\n\
         [[rtmp]]\nurl = \"rtmp://127.0.0.1:{rtmp_port}/live\"\nstream_key_file = \"{key}\"\n",
        pw = dir.join("pw").display(),
        key = dir.join("key").display(),
    );
    let path = dir.join("meeting.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sipp_answering_options_and_nginx_accepting_the_key_is_all_green() {
    let dir = tempfile::tempdir().unwrap();
    let gate = PublishGate::start(dir.path(), RIGHT_KEY);
    let sipp = Sipp::start("uas_options.xml", &[]);
    let sip = format!("domain = \"{}\"", sipp.addr());
    let spec = write_spec(dir.path(), &sip, gate.rtmp_port, RIGHT_KEY, RIGHT_PASSWORD);
    let (out, _) = probe(&spec, "5s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(line(&text, "spec").starts_with("ok "), "{text}");
    assert!(line(&text, "sip password").starts_with("ok "), "{text}");
    assert!(
        line(&text, "rtmp[0] stream key").starts_with("ok "),
        "{text}"
    );
    let sip_line = line(&text, "sip");
    assert!(sip_line.starts_with("ok "), "{text}");
    assert!(
        sip_line.contains(&format!("OPTIONS sip:service@{}: 200 OK", sipp.addr())),
        "{text}"
    );
    let rtmp_line = line(&text, "rtmp[0]");
    assert!(rtmp_line.starts_with("ok "), "{text}");
    assert!(
        rtmp_line.contains("publish accepted, then unpublished"),
        "{text}"
    );
    assert!(rtmp_line.contains("/live/****"), "{text}");
    assert!(text.ends_with("all 6 checks passed\n"), "{text}");
    assert_no_secret(&text);
    // The callback really was asked about our key, and said yes.
    let asked = gate.access_log();
    assert!(asked.contains(&format!("name={RIGHT_KEY}")), "{asked}");
    assert!(asked.contains("\" 204 "), "{asked}");
}

#[test]
fn a_wrong_stream_key_is_a_red_line_naming_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let gate = PublishGate::start(dir.path(), RIGHT_KEY);
    let sipp = Sipp::start("uas_options.xml", &[]);
    let sip = format!("domain = \"{}\"", sipp.addr());
    let spec = write_spec(dir.path(), &sip, gate.rtmp_port, WRONG_KEY, RIGHT_PASSWORD);
    let (out, _) = probe(&spec, "5s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(line(&text, "sip").starts_with("ok "), "{text}");
    let rtmp_line = line(&text, "rtmp[0]");
    assert!(rtmp_line.starts_with("FAIL "), "{text}");
    assert!(
        rtmp_line.contains("target refused publish of the stream key"),
        "{text}"
    );
    assert!(text.ends_with("1 of 6 checks failed\n"), "{text}");
    assert_no_secret(&text);
    assert!(
        gate.access_log().contains("\" 403 "),
        "{}",
        gate.access_log()
    );
}

#[test]
fn kamailio_registers_the_right_password_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let gate = PublishGate::start(dir.path(), RIGHT_KEY);
    let registrar = Registrar::start("1001", RIGHT_PASSWORD);
    let sip = format!("domain = \"127.0.0.1:{}\"\nregister = true", registrar.port);

    let spec = write_spec(dir.path(), &sip, gate.rtmp_port, RIGHT_KEY, RIGHT_PASSWORD);
    let (out, _) = probe(&spec, "5s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let sip_line = line(&text, "sip");
    assert!(
        sip_line.contains(&format!(
            "REGISTER sip:127.0.0.1:{}: 200 OK",
            registrar.port
        )),
        "{text}"
    );

    let spec = write_spec(dir.path(), &sip, gate.rtmp_port, RIGHT_KEY, WRONG_PASSWORD);
    let (out, _) = probe(&spec, "5s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let sip_line = line(&text, "sip");
    assert!(sip_line.starts_with("FAIL "), "{text}");
    assert!(
        sip_line.contains("registrar refused credentials (401 Unauthorized)"),
        "{text}"
    );
    assert!(line(&text, "rtmp[0]").starts_with("ok "), "{text}");
    assert_no_secret(&text);
    assert_no_secret(&registrar.log());
}

#[test]
fn a_registering_probe_removes_its_binding_again() {
    // sipp's registrar challenges, checks alice/wonderland, grants, and then insists on an
    // un-REGISTER (Expires: 0) before its scenario can pass.
    let dir = tempfile::tempdir().unwrap();
    let gate = PublishGate::start(dir.path(), RIGHT_KEY);
    let mut registrar = Sipp::start("e2e_registrar.xml", &[]);
    let sip = format!(
        "domain = \"{}\"\nregister = true\nauth_user = \"alice\"",
        registrar.addr()
    );
    let spec = write_spec(dir.path(), &sip, gate.rtmp_port, RIGHT_KEY, "wonderland");
    let (out, _) = probe(&spec, "5s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        line(&text, "sip").contains("REGISTER sip:127.0.0.1:"),
        "{text}"
    );
    registrar.finish(Duration::from_secs(5));
}

#[test]
fn unreachable_peers_are_red_lines_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // A UDP port that takes datagrams and never answers, and a TCP port nobody listens on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let closed_port = free_tcp_port();
    let sip = format!("domain = \"127.0.0.1:{silent_port}\"");
    let spec = write_spec(dir.path(), &sip, closed_port, RIGHT_KEY, RIGHT_PASSWORD);
    let (out, took) = probe(&spec, "1s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let sip_line = line(&text, "sip");
    assert!(
        sip_line.contains(&format!("no answer from 127.0.0.1:{silent_port}")),
        "{text}"
    );
    let rtmp_line = line(&text, "rtmp[0]");
    assert!(
        rtmp_line.contains(&format!("cannot connect to 127.0.0.1:{closed_port}")),
        "{text}"
    );
    assert!(text.ends_with("2 of 6 checks failed\n"), "{text}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // The silent port did hear us (OPTIONS, retransmitted).
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = silent.recv_from(&mut buf).expect("an OPTIONS arrived");
    let request = String::from_utf8_lossy(&buf[..n]);
    assert!(
        request.starts_with(&format!(
            "OPTIONS sip:service@127.0.0.1:{silent_port} SIP/2.0"
        )),
        "{request}"
    );

    // Nothing bound at all: the port-unreachable answer comes back at once.
    let sip = format!("domain = \"127.0.0.1:{}\"", free_udp_port());
    let spec = write_spec(dir.path(), &sip, closed_port, RIGHT_KEY, RIGHT_PASSWORD);
    let (out, _) = probe(&spec, "1s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(line(&text, "sip").starts_with("FAIL "), "{text}");
}

#[test]
fn an_unknown_host_an_invalid_spec_and_no_future_window_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sip = "domain = \"no-such-host.invalid\"";
    let spec = write_spec(dir.path(), sip, free_tcp_port(), RIGHT_KEY, RIGHT_PASSWORD);
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str(
        "[schedule]\ntimezone = \"UTC\"\nwindows = [{ start = \"2020-01-01T10:00\", duration = \"1h\" }]\n",
    );
    std::fs::write(&spec, text).unwrap();
    let (out, _) = probe(&spec, "2s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        line(&text, "sip").contains("no-such-host.invalid"),
        "{text}"
    );
    assert_eq!(
        line(&text, "schedule"),
        "FAIL  schedule             no future window"
    );

    std::fs::write(&spec, "[sip]\nuser = \"1001\"\nbogus = 1\n").unwrap();
    let (out, _) = probe(&spec, "1s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("FAIL  spec "), "{text}");
    assert!(first.contains("meeting.toml:3:1:"), "{text}");
}

#[test]
fn nginx_denying_the_publish_or_the_app_is_named() {
    // `deny publish all` (nginx-rtmp accepts, then hangs up) and an app nginx does not have.
    let dir = tempfile::tempdir().unwrap();
    let nginx = e2e_support::Nginx::start(dir.path(), None);
    let sipp = Sipp::start("uas_options.xml", &[]);
    let sip = format!("domain = \"{}\"", sipp.addr());
    let spec = write_spec(dir.path(), &sip, nginx.rtmp_port, RIGHT_KEY, RIGHT_PASSWORD);
    let mut text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("/live\"", "/closed\"");
    text.push_str(&format!(
        "[[rtmp]]\nurl = \"rtmp://127.0.0.1:{}/nosuchapp/{WRONG_KEY}\"\n",
        nginx.rtmp_port
    ));
    std::fs::write(&spec, text).unwrap();
    let (out, _) = probe(&spec, "3s");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        line(&text, "rtmp[0]").contains("target refused publish of the stream key"),
        "{text}"
    );
    assert!(
        line(&text, "rtmp[1]").contains("target refused connect to app \"nosuchapp\""),
        "{text}"
    );
    assert_no_secret(&text);
}
