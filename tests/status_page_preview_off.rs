//! `preview = false` in `sipcast.toml`: while a broadcast streams a sipp call to nginx-rtmp,
//! its preview endpoint answers 404 and the status page hides the player. (With the default,
//! `status_page.rs` plays the same preview.)

mod e2e_support;
mod peers;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e_support::*;

#[test]
fn preview_false_in_sipcast_toml_turns_the_preview_off_while_streaming() {
    let work = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(work.path(), None);
    let callee = Sipp::start("e2e_callee.xml", &[]);
    let specs = work.path().join("broadcasts.d");
    std::fs::create_dir(&specs).unwrap();
    let api = SocketAddr::from(([127, 0, 0, 1], rtmp_support::free_port()));
    let sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let (low, high) = free_udp_range(16);
    let config = work.path().join("sipcast.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"broadcasts.d\"\napi = \"{api}\"\nsip_listen = \"{sip}\"\n\
             rtp_ports = \"{low}-{high}\"\nlog_format = \"text\"\npreview = false\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(work.path().join("daemon.log")).unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sipcast run");
    let log = || std::fs::read_to_string(work.path().join("daemon.log")).unwrap_or_default();

    let spec = SpecText::direct(&callee.addr(), &[stream_url(&nginx, "allhands")]);
    std::fs::write(specs.join("allhands.toml"), spec.render()).unwrap();
    let start = sipcast::clock::monotonic();
    loop {
        let streaming = http_get(api, "/v1/broadcasts/allhands")
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .is_some_and(|status| is_streaming(&status));
        if streaming {
            break;
        }
        if start.elapsed() > Duration::from_secs(15) {
            peers::stop(&mut daemon, Duration::from_secs(3));
            panic!("not streaming within 15 s:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let preview = http_get(api, "/v1/broadcasts/allhands/preview.mp4");
    let page = http_get(api, "/");
    peers::stop(&mut daemon, Duration::from_secs(3));
    let (code, body) = preview.expect("an answer");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("turned off"), "{body}");
    let (code, page) = page.expect("the page");
    assert_eq!(code, 200);
    assert!(
        page.contains("<body data-preview=\"off\">"),
        "the page hides the player"
    );
}
