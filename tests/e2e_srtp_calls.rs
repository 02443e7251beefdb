//! End to end with encrypted media: `sipcast run` dials a sipp callee whose answer carries
//! `RTP/SAVP` and an `a=crypto` line taking one of our offered suites; GStreamer's `srtpenc`
//! (libsrtp2) then sends H.264 and a 440 Hz PCMU tone, encrypted with the callee's key, to the
//! ports we offered. The nginx-rtmp recording must decode (ffprobe) and carry the tone; status
//! names the suite; forged and replayed packets sent mid-call are dropped and counted while
//! the call stays up. Our SRTCP PLI makes a sender with a 10 s GOP (rtpbin behind `srtpdec`)
//! send keyframes within the target's 2 s. Our RFC 4733 digits reach the callee as SRTP that
//! decrypts with the key we offered (read from the INVITE sipp logged; `srtpdec` cannot take a
//! stream whose SSRC it is not told in advance). Then the policy against callees that refuse:
//! `require` against a plain-only callee, `off` against an SRTP-only one (488), and `prefer`
//! falling back.
//!
//! Signalling is UDP on loopback with `allow_sdes_over_plain_signalling = true` (the keys cross
//! no network here, and these tests are about the media), except for one call over TLS (nginx
//! terminating TLS in front of sipp over TCP) that needs no such setting: SRTP is the default
//! there.

mod e2e_support;
mod peers;
mod sip_support;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e_support::*;
use serde_json::Value;
use sipcast::srtp::sdes::CryptoAttribute;
use sipcast::srtp::{MasterKey, SrtpSession, SrtpSuite};

/// The tag of `suite` in our offer: one line per suite in preference order, tagged from 1.
fn offered_tag(suite: SrtpSuite) -> usize {
    SrtpSuite::PREFERENCE
        .iter()
        .position(|s| *s == suite)
        .unwrap()
        + 1
}

fn gst_cipher(suite: SrtpSuite) -> (&'static str, &'static str) {
    match suite {
        SrtpSuite::Aes256CmHmacSha1_80 => ("aes-256-icm", "hmac-sha1-80"),
        SrtpSuite::Aes256CmHmacSha1_32 => ("aes-256-icm", "hmac-sha1-32"),
        SrtpSuite::AesCm128HmacSha1_80 => ("aes-128-icm", "hmac-sha1-80"),
        SrtpSuite::AesCm128HmacSha1_32 => ("aes-128-icm", "hmac-sha1-32"),
        SrtpSuite::AeadAes256Gcm => ("aes-256-gcm", "null"),
        SrtpSuite::AeadAes128Gcm => ("aes-128-gcm", "null"),
    }
}

/// The callee's crypto line for one m-line: its own key, our tag.
fn callee_line(suite: SrtpSuite, key: &MasterKey) -> String {
    CryptoAttribute {
        tag: offered_tag(suite) as u32,
        key: key.clone(),
        lifetime: None,
        mki: None,
    }
    .to_sdp_line()
}

/// A sipp callee answering with `RTP/SAVP`, taking our line of `suite` with keys of its own.
/// It checks our offer carries that line, sends nothing itself (GStreamer does), and waits
/// for our BYE.
/// Where the answer asks for our packets, when not at sipp's media port.
#[derive(Default)]
struct AnswerPorts {
    /// The video's RTCP (`a=rtcp`, RFC 3605): where the sender listens for our SRTCP keyframe
    /// requests.
    video_rtcp: Option<u16>,
    /// The audio's RTP: where our RFC 4733 events go.
    audio: Option<u16>,
}

fn srtp_callee(
    dir: &Path,
    suite: SrtpSuite,
    audio: &MasterKey,
    video: &MasterKey,
    ports: AnswerPorts,
) -> Sipp {
    let path = srtp_scenario(dir, suite, audio, video, ports);
    Sipp::start_file(&path, free_udp_port(), &[])
}

/// The scenario file of [`srtp_callee`], written into `dir`.
fn srtp_scenario(
    dir: &Path,
    suite: SrtpSuite,
    audio: &MasterKey,
    video: &MasterKey,
    ports: AnswerPorts,
) -> std::path::PathBuf {
    let tag = offered_tag(suite);
    let rtcp_line = ports
        .video_rtcp
        .map(|port| format!("a=rtcp:{port}\n"))
        .unwrap_or_default();
    let audio_port = ports
        .audio
        .map_or("[media_port]".to_string(), |p| p.to_string());
    let scenario = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="SRTP callee">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="m=audio [0-9]+ RTP/SAVP" search_in="body" check_it="true" assign_to="savp"/>
      <ereg regexp="a=crypto:{tag} {suite} inline:" search_in="body" check_it="true" assign_to="line"/>
    </action>
  </recv>
  <Reference variables="savp,line"/>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=callee 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {audio_port} RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
{audio_line}
a=sendrecv
m=video [media_port+2] RTP/SAVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1
a=rtcp-fb:* nack pli
{rtcp_line}{video_line}
a=sendrecv
]]></send>
  <recv request="ACK" crlf="true"/>
  <label id="wait"/>
  <recv request="INFO" optional="true" next="info"/>
  <recv request="BYE">
    <action><exec command="date +%s.%N > bye_at"/></action>
  </recv>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <nop next="end"/>
  <label id="info"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <nop next="wait"/>
  <label id="end"/>
  <pause milliseconds="1"/>
</scenario>
"#,
        audio_line = callee_line(suite, audio),
        video_line = callee_line(suite, video),
    );
    let path = dir.join(format!("srtp_callee_{tag}.xml"));
    std::fs::write(&path, scenario).unwrap();
    path
}

fn hex_key(key: &MasterKey) -> String {
    [key.key(), key.salt()]
        .concat()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Our RTCP sender SSRC (the media path's default `local_ssrc`).
const OUR_RTCP_SSRC: u32 = 0x5143_4153;

/// What the sender does with our keyframe requests: nothing (they go nowhere), or take them
/// as SRTCP on `port`, decrypt them with our video key and hand them to its RTP session,
/// which turns a PLI into a keyframe.
enum Requests<'a> {
    Ignored,
    Honoured { port: u16, our_key: &'a MasterKey },
}

/// gst-launch-1.0 sending a moving picture as H.264 and a 440 Hz PCMU tone, each through its
/// own `srtpenc`, to our video and audio ports. `gop` is its natural keyframe interval in
/// frames (15 fps).
struct SrtpSender(Child);

impl SrtpSender {
    fn start(
        suite: SrtpSuite,
        audio: &MasterKey,
        video: &MasterKey,
        ports: (u16, u16),
        gop: u32,
        requests: Requests<'_>,
    ) -> Self {
        peers::require("gst-launch-1.0");
        let (cipher, auth) = gst_cipher(suite);
        let enc = |key: &MasterKey| {
            format!(
                "srtpenc key={} rtp-cipher={cipher} rtp-auth={auth} rtcp-cipher={cipher} \
                 rtcp-auth=hmac-sha1-80",
                hex_key(key)
            )
        };
        let rtcp_in = match requests {
            Requests::Ignored => String::new(),
            Requests::Honoured { port, our_key } => format!(
                "srtpdec name=dec udpsrc address=127.0.0.1 port={port} \
                 caps=application/x-srtcp,ssrc=(uint){OUR_RTCP_SSRC},srtp-key=(buffer){},\
                 srtp-cipher=(string){cipher},srtp-auth=(string){auth},\
                 srtcp-cipher=(string){cipher},srtcp-auth=(string)hmac-sha1-80 \
                 ! dec.rtcp_sink dec.rtcp_src ! rb.recv_rtcp_sink_0",
                hex_key(our_key)
            ),
        };
        let pipeline = format!(
            "rtpbin name=rb \
             videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=300 key-int-max={gop} \
             ! rtph264pay config-interval=-1 pt=96 ! rb.send_rtp_sink_0 \
             rb.send_rtp_src_0 ! {venc} ! udpsink host=127.0.0.1 port={vport} \
             rb.send_rtcp_src_0 ! fakesink sync=false async=false {rtcp_in} \
             audiotestsrc is-live=true freq=440 volume=0.25 samplesperbuffer=160 \
             ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay pt=0 \
             ! {aenc} ! udpsink host=127.0.0.1 port={aport}",
            venc = enc(video),
            aenc = enc(audio),
            aport = ports.0,
            vport = ports.1,
        );
        let child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gst-launch-1.0");
        SrtpSender(child)
    }
}

impl Drop for SrtpSender {
    fn drop(&mut self) {
        peers::stop(&mut self.0, Duration::from_secs(2));
    }
}

fn srtp_spec(callee: &Sipp, url: String, mode: &str) -> SpecText {
    SpecText::direct(&callee.addr(), &[url])
        .call_line(&format!("media_encryption = \"{mode}\""))
        .call_line("allow_sdes_over_plain_signalling = true")
}

/// Our media ports, once status reports them.
fn local_ports(daemon: &Daemon, name: &str) -> (u16, u16) {
    let status = daemon.wait_status(name, Duration::from_secs(5), "media ports", |s| {
        s["call"]["media"]["local_video_port"].as_u64().is_some()
    });
    let port = |key: &str| status["call"]["media"][key].as_u64().unwrap() as u16;
    (port("local_audio_port"), port("local_video_port"))
}

fn dropped(status: &Value, reason: &str) -> u64 {
    status["call"]["media"]["rtp_dropped"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// Mid-call: a packet under a wrong key, a tampered copy of a good one, and the good one
/// twice (the second a replay), all to our audio port.
fn attack(audio_port: u16, suite: SrtpSuite, callee_audio: &MasterKey) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", audio_port);
    let rtp = |seq: u16| {
        let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0x0b, 0xad, 0xf0, 0x0d];
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&[0xff; 160]);
        packet
    };
    let wrong = MasterKey::generate(suite).unwrap();
    let mut stranger = SrtpSession::from_keys(&wrong, None, &wrong, None).unwrap();
    let mut forged = rtp(1);
    stranger.protect_rtp(&mut forged).unwrap();
    socket.send_to(&forged, to).unwrap();
    let mut callee = SrtpSession::from_keys(callee_audio, None, callee_audio, None).unwrap();
    let mut good = rtp(2);
    callee.protect_rtp(&mut good).unwrap();
    let mut tampered = good.clone();
    tampered[20] ^= 1;
    socket.send_to(&tampered, to).unwrap();
    socket.send_to(&good, to).unwrap();
    socket.send_to(&good, to).unwrap();
}

fn encrypted_call_streams_to_nginx(suite: SrtpSuite) {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    let name = format!("srtp{}", offered_tag(suite));
    let audio = MasterKey::generate(suite).unwrap();
    let video = MasterKey::generate(suite).unwrap();
    let mut callee = srtp_callee(work.path(), suite, &audio, &video, AnswerPorts::default());
    let spec = srtp_spec(&callee, stream_url(nginx, &name), "require");
    let live = daemon.go_live(&name, &spec);
    let answered = answered_at(&live);
    let ports = local_ports(daemon, &name);
    let _sender = SrtpSender::start(suite, &audio, &video, ports, 15, Requests::Ignored);

    std::thread::sleep(Duration::from_secs(4));
    attack(ports.0, suite, &audio);
    let midway = daemon.wait_status(&name, Duration::from_secs(3), "the attack counted", |s| {
        dropped(s, "srtp_auth") >= 2 && dropped(s, "srtp_replay") >= 1
    });
    let media = &midway["call"]["media"];
    eprintln!("{name}: {media}");
    assert_eq!(media["encryption"], suite.sdes_name(), "{midway}");
    assert!(media["encryption_fallback"].is_null(), "{midway}");
    assert_eq!(call_state(&midway), "established", "the call stays up");
    assert!(media["rtp_packets"].as_u64().unwrap_or(0) > 100, "{midway}");
    assert_eq!(media["audio_decode_errors"], 0, "{midway}");
    let gop = media["keyframe_interval_ms"].as_u64().unwrap_or(0);
    assert!((800..=1300).contains(&gop), "GOP {gop} ms: {midway}");
    // Neither key ever shows in status or the log.
    let shown = midway.to_string() + &daemon.log();
    for key in [&audio, &video] {
        let line = callee_line(suite, key);
        let inline = line.split("inline:").nth(1).unwrap();
        assert!(!shown.contains(inline), "a key leaked");
    }

    let call_seconds = hang_up_after_the_pcap(daemon, &mut callee, &name, answered);
    let probe = check_recording(nginx, &name, call_seconds);
    let video_seconds = covered_seconds(&probe, "video");
    assert!(
        video_seconds >= 0.7 * call_seconds,
        "H.264 covers {video_seconds:.2} s of {call_seconds:.2} s"
    );
}

#[test]
fn an_aes_256_srtp_call_streams_h264_and_the_tone_and_drops_forgeries_and_replays() {
    encrypted_call_streams_to_nginx(SrtpSuite::Aes256CmHmacSha1_80);
}

#[test]
fn an_aes_128_srtp_call_with_32_bit_tags_streams_h264_and_the_tone() {
    encrypted_call_streams_to_nginx(SrtpSuite::AesCm128HmacSha1_32);
}

/// Our offered key for `suite` on the `media` (`audio`, `video`) m-line, read from the INVITE
/// in sipp's message log.
fn our_key(callee: &Sipp, suite: SrtpSuite, media: &str) -> MasterKey {
    let prefix = format!("a=crypto:{} {suite} inline:", offered_tag(suite));
    for _ in 0..100 {
        for entry in std::fs::read_dir(&callee.dir).unwrap().flatten() {
            if !entry
                .file_name()
                .to_string_lossy()
                .ends_with("messages.log")
            {
                continue;
            }
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let video = log
                .split(&format!("m={media}"))
                .nth(1)
                .and_then(|section| section.lines().find(|l| l.starts_with(&prefix)));
            if let Some(line) = video {
                return CryptoAttribute::parse(line.trim()).unwrap().key;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no INVITE with our video crypto line in sipp's log");
}

/// The largest interval between keyframes in a recording, seconds.
fn largest_gop(probe: &Probe) -> f64 {
    let keyframes: Vec<f64> = probe
        .packets
        .iter()
        .filter(|p| p.0 == "video" && p.2)
        .map(|p| p.1)
        .collect();
    keyframes
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max)
}

#[test]
fn our_srtcp_pli_makes_an_encrypted_sender_send_keyframes() {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    let suite = SrtpSuite::Aes256CmHmacSha1_80;
    let audio = MasterKey::generate(suite).unwrap();
    let video = MasterKey::generate(suite).unwrap();
    let rtcp_port = free_udp_port();
    let ports = AnswerPorts {
        video_rtcp: Some(rtcp_port),
        audio: None,
    };
    let mut callee = srtp_callee(work.path(), suite, &audio, &video, ports);
    // The target wants a keyframe every 2 s; the sender's own GOP is 10 s.
    let url = target_with(&stream_url(nginx, "pli"), "keyframe_interval = \"2s\"");
    let spec = srtp_spec(&callee, url, "require");
    let live = daemon.go_live("pli", &spec);
    let answered = answered_at(&live);
    let ports = local_ports(daemon, "pli");
    let ours = our_key(&callee, suite, "video");
    let requests = Requests::Honoured {
        port: rtcp_port,
        our_key: &ours,
    };
    let _sender = SrtpSender::start(suite, &audio, &video, ports, 150, requests);
    std::thread::sleep(Duration::from_secs(8));
    let status = daemon.status("pli").expect("status");
    let media = &status["call"]["media"];
    eprintln!("pli: {media}");
    assert!(
        media["keyframe_answers"].as_u64().unwrap_or(0) >= 3,
        "{status}"
    );
    assert_eq!(
        media["keyframe_via_info"], 0,
        "RTCP alone was enough: {status}"
    );
    let call_seconds = hang_up_after_the_pcap(daemon, &mut callee, "pli", answered);
    let probe = check_recording(nginx, "pli", call_seconds);
    let gop = largest_gop(&probe);
    eprintln!("pli: largest recorded keyframe interval {gop:.2} s (sender's own: 10 s)");
    assert!(gop <= 2.05, "largest GOP {gop:.2} s");
}

#[test]
fn rfc4733_digits_go_out_as_srtp_the_callee_decrypts() {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let audio = MasterKey::generate(suite).unwrap();
    let video = MasterKey::generate(suite).unwrap();
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let ports = AnswerPorts {
        video_rtcp: None,
        audio: Some(listener.local_addr().unwrap().port()),
    };
    let callee = srtp_callee(work.path(), suite, &audio, &video, ports);
    let spec = srtp_spec(&callee, stream_url(nginx, "digits"), "require")
        .call_line("dtmf = \"1#\"")
        .call_line("dtmf_delay = \"500ms\"");
    daemon.put_spec("digits", &spec.render());
    let ours = our_key(&callee, suite, "audio");
    let mut decrypt = SrtpSession::from_keys(&ours, None, &ours, None).unwrap();
    // (event code, end bit) of every packet that authenticates; anything else is a failure.
    let mut events = Vec::new();
    let mut buffer = [0u8; 1500];
    let deadline = sipcast::clock::monotonic() + Duration::from_secs(8);
    while sipcast::clock::monotonic() < deadline {
        let Ok(len) = listener.recv(&mut buffer) else {
            continue;
        };
        let packet = &mut buffer[..len];
        if sipcast::media::rtp::is_rtcp(packet) {
            continue; // our SRTCP receiver reports
        }
        let clear = decrypt
            .unprotect_rtp(packet)
            .unwrap_or_else(|e| panic!("an event packet that does not decrypt: {e}"));
        assert_eq!(packet[1] & 0x7f, 101, "telephone-event");
        assert!(clear >= 16);
        events.push((packet[12], packet[13] & 0x80 != 0));
    }
    let status = daemon.status("digits").expect("status");
    assert_eq!(status["call"]["dtmf_sent"], "1#", "{status}");
    let ended: Vec<u8> = events.iter().filter(|e| e.1).map(|e| e.0).collect();
    assert!(ended.contains(&1) && ended.contains(&11), "{events:?}");
    eprintln!(
        "digits: {} SRTP event packets decrypted with our offered key, ends for {ended:?}",
        events.len()
    );
    daemon.delete_spec("digits");
    callee.wait_bye(Duration::from_secs(3));
}

#[test]
fn an_srtp_call_over_tls_signalling_needs_no_escape_hatch() {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    let suite = SrtpSuite::Aes256CmHmacSha1_80;
    let audio = MasterKey::generate(suite).unwrap();
    let video = MasterKey::generate(suite).unwrap();
    // sipp over TCP behind nginx terminating TLS (sipp has no TLS of its own).
    let tcp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let scenario = srtp_scenario(work.path(), suite, &audio, &video, AnswerPorts::default());
    let _callee = Sipp::start_file(&scenario, tcp_port, &["-t", "t1"]);
    let front = sip_support::TlsFront::new(tcp_port);
    let spec = SpecText {
        sip: vec![
            "user = \"sipcast\"".into(),
            format!("domain = \"127.0.0.1:{}\"", front.port),
            "transport = \"tls\"".into(),
            format!("ca_file = \"{}\"", front.ca_file().display()),
        ],
        ..SpecText::direct("unused", &[stream_url(nginx, "tls")])
    };
    // media_encryption left at its default: "prefer" over TLS, and `validate` has nothing to say.
    let live = daemon.go_live("tls", &spec);
    assert!(live["error"].is_null(), "{live}");
    let ports = local_ports(daemon, "tls");
    let _sender = SrtpSender::start(suite, &audio, &video, ports, 15, Requests::Ignored);
    let status = daemon.wait_status("tls", Duration::from_secs(8), "SRTP media", |s| {
        s["call"]["media"]["rtp_packets"].as_u64().unwrap_or(0) > 100
    });
    let media = &status["call"]["media"];
    assert_eq!(media["encryption"], suite.sdes_name(), "{status}");
    assert_eq!(dropped(&status, "srtp_auth"), 0, "{status}");
    // How the BYE finds its way back over TCP/TLS is the transport's business, tested there.
    daemon.delete_spec("tls");
    daemon.wait_gone("tls", Duration::from_secs(6));
}

/// Waits for the first attempt to end and returns its status.
fn failed_with(daemon: &Daemon, name: &str, what: &str) -> Value {
    daemon.wait_status(name, Duration::from_secs(10), what, |s| {
        s["call"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(what))
    })
}

#[test]
fn require_against_a_plain_only_callee_ends_with_the_reason() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let callee = Sipp::start("e2e_callee.xml", &[]);
    let spec = srtp_spec(&callee, stream_url(nginx, "plainonly"), "require");
    daemon.put_spec("plainonly", &spec.render());
    let status = failed_with(daemon, "plainonly", "callee does not support SRTP");
    let reason = status["call"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("answered RTP/AVP without a=crypto")
            && reason.contains("AES_256_CM_HMAC_SHA1_80"),
        "{status}"
    );
    drop(callee);
}

#[test]
fn off_against_an_srtp_only_callee_ends_with_callee_requires_srtp() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let callee = Sipp::start("e2e_callee_srtp_only_488.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "srtponly")])
        .call_line("media_encryption = \"off\"");
    daemon.put_spec("srtponly", &spec.render());
    let status = failed_with(daemon, "srtponly", "callee requires SRTP");
    let reason = status["call"]["reason"].as_str().unwrap();
    assert_eq!(status["call"]["sip_status"], 488, "{status}");
    assert!(
        reason.contains("488 Not Acceptable Here to our RTP/AVP offer")
            && reason.contains("SRTP required"),
        "{status}"
    );
}

#[test]
fn prefer_falls_back_to_plain_rtp_after_488_and_says_so() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee_refuses_srtp.xml", &[]);
    let spec = srtp_spec(&callee, stream_url(nginx, "fallback"), "prefer");
    let live = daemon.go_live("fallback", &spec);
    let status = daemon.wait_status("fallback", Duration::from_secs(5), "media", |s| {
        s["call"]["media"]["encryption"].is_string()
    });
    let media = &status["call"]["media"];
    assert_eq!(media["encryption"], "none", "{status}");
    let note = media["encryption_fallback"].as_str().unwrap_or("");
    assert!(
        note.starts_with("callee refused SRTP (488 Not Acceptable Here")
            && note.ends_with("plain RTP"),
        "{status}"
    );
    let call_seconds = hang_up_after_the_pcap(daemon, &mut callee, "fallback", answered_at(&live));
    check_recording(nginx, "fallback", call_seconds);
}
