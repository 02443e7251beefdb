//! SRTP/SRTCP against real peers on 127.0.0.1, both ways, for AES-256 and AES-128 suites:
//!
//! - GStreamer's `srtpenc` (libsrtp2) sends a 440 Hz PCMU tone and an RTCP RR+PLI; our
//!   `SrtpSession` must authenticate and decrypt every packet, and the payload must be the tone.
//!   The same packets under another key, tampered with, or replayed are refused and counted,
//!   and the forgeries tried first do not stop the genuine packets.
//! - We protect a PCMU tone and an RTCP RR+PLI; GStreamer's `srtpdec` must decrypt them (the
//!   tone comes out of `mulawdec`, the RTCP bytes out of its `rtcp_src` unchanged).
//! - ffmpeg's `srtp` protocol (AES_CM_128_HMAC_SHA1_80, its only AES-CM key size) sends a tone
//!   with its SRTCP sender report; and reads our SRTP through an SDP file whose `a=crypto:` line
//!   is our own `CryptoAttribute::to_sdp_line`.

mod peers;

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use sipcast::media::g711::{self, G711Law};
use sipcast::srtp::sdes::CryptoAttribute;
use sipcast::srtp::{MasterKey, SrtpSession, SrtpSuite};

const PACKETS: usize = 50;
const SSRC: u32 = 0x5eed_1234;

/// An RTCP RR with one report block, then a PLI (RFC 4585): what we send to callers.
fn rtcp_rr_pli() -> Vec<u8> {
    let mut packet = vec![0x81, 201, 0, 7];
    packet.extend_from_slice(&SSRC.to_be_bytes());
    packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    packet.extend_from_slice(&[0; 20]);
    packet.extend_from_slice(&[0x81, 206, 0, 2]);
    packet.extend_from_slice(&SSRC.to_be_bytes());
    packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    packet
}

/// 20 ms PCMU packets of a 440 Hz tone at -12 dBFS peak.
fn tone_packets() -> Vec<Vec<u8>> {
    (0..PACKETS)
        .map(|n| {
            let mut packet = vec![0x80, 0];
            packet.extend_from_slice(&(1000 + n as u16).to_be_bytes());
            packet.extend_from_slice(&(n as u32 * 160).to_be_bytes());
            packet.extend_from_slice(&SSRC.to_be_bytes());
            for i in 0..160 {
                let t = (n * 160 + i) as f64 / 8000.0;
                let sample = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
                packet.push(g711::encode_sample(G711Law::MuLaw, sample));
            }
            packet
        })
        .collect()
}

/// Power at `hz` of 8 kHz samples (Goertzel), normalised by length.
fn power_at(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for sample in samples {
        let s0 = f64::from(*sample) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / samples.len().max(1) as f64
}

fn assert_tone(samples: &[i16], what: &str) {
    let tone = power_at(samples, 440.0);
    let other = power_at(samples, 700.0).max(power_at(samples, 1250.0));
    eprintln!(
        "{what}: {} samples, 440 Hz {:.0} dB above 700/1250 Hz",
        samples.len(),
        10.0 * (tone / other).log10()
    );
    assert!(
        samples.len() >= 8000 * 9 / 10,
        "{what}: {} samples",
        samples.len()
    );
    assert!(tone > 1000.0 * other, "{what}: no 440 Hz tone");
}

/// SRTCP's authentication in GStreamer's terms: GCM authenticates within the cipher.
fn gst_rtcp_auth(suite: SrtpSuite) -> &'static str {
    if suite.is_aead() {
        "null"
    } else {
        "hmac-sha1-80"
    }
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

fn key_and_salt(key: &MasterKey) -> Vec<u8> {
    [key.key(), key.salt()].concat()
}

/// Spawns `gst-launch-1.0` and waits until its pipeline is playing.
fn gst_launch(pipeline: &str) -> peers_child::Guard {
    peers::require("gst-launch-1.0");
    let mut child = Command::new("gst-launch-1.0")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0 runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = sipcast::clock::monotonic().into_std() + Duration::from_secs(10);
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        if line.contains("PLAYING") || sipcast::clock::monotonic().into_std() > deadline {
            break;
        }
    }
    // Keep draining so gst never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(300));
    peers_child::Guard(child)
}

mod peers_child {
    use super::*;

    /// Stops the peer when the test ends, however it ends.
    pub struct Guard(pub Child);

    impl Guard {
        /// Waits up to `limit` for the peer to exit by itself; its stderr if it failed.
        pub fn wait(&mut self, limit: Duration) -> Result<(), String> {
            let deadline = sipcast::clock::monotonic().into_std() + limit;
            loop {
                match self.0.try_wait() {
                    Ok(Some(status)) if status.success() => return Ok(()),
                    Ok(Some(status)) => {
                        let mut stderr = String::new();
                        if let Some(mut pipe) = self.0.stderr.take() {
                            let _ = pipe.read_to_string(&mut stderr);
                        }
                        return Err(format!("{status}: {stderr}"));
                    }
                    _ if sipcast::clock::monotonic().into_std() > deadline => {
                        return Err("timed out".into());
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            peers::stop(&mut self.0, Duration::from_secs(1));
        }
    }
}

fn free_udp_ports() -> (UdpSocket, UdpSocket) {
    // An even RTP port with RTCP on the next one, as ffmpeg expects.
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 == 0 {
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                rtp.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                rtcp.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                return (rtp, rtcp);
            }
        }
    }
}

/// Receives until the socket is quiet for its read timeout, after the first packet.
fn receive_all(socket: &UdpSocket, first_wait: Duration) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let deadline = sipcast::clock::monotonic().into_std() + first_wait;
    let mut buffer = [0u8; 2048];
    loop {
        match socket.recv(&mut buffer) {
            Ok(len) => packets.push(buffer[..len].to_vec()),
            Err(_) if packets.is_empty() && sipcast::clock::monotonic().into_std() < deadline => {
                continue;
            }
            Err(_) => return packets,
        }
    }
}

fn unprotect_tone(session: &mut SrtpSession, packets: Vec<Vec<u8>>, what: &str) -> Vec<i16> {
    let mut samples = Vec::new();
    for mut packet in packets {
        let len = session
            .unprotect_rtp(&mut packet)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(packet[1] & 0x7f, 0, "{what}: PCMU");
        g711::decode(G711Law::MuLaw, &packet[12..len], &mut samples);
    }
    samples
}

fn gstreamer_sends(suite: SrtpSuite) {
    let key = MasterKey::generate(suite).unwrap();
    let (cipher, auth) = gst_cipher(suite);
    let rtcp_auth = gst_rtcp_auth(suite);
    let (rtp, rtcp) = free_udp_ports();
    let port = rtp.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let rtcp_file = dir.path().join("rr_pli.rtcp");
    std::fs::write(&rtcp_file, rtcp_rr_pli()).unwrap();
    let pipeline = format!(
        "audiotestsrc num-buffers={PACKETS} samplesperbuffer=160 freq=440 volume=0.25 \
         ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay ssrc={SSRC} pt=0 \
         ! srtpenc name=enc key={} rtp-cipher={cipher} rtp-auth={auth} \
         rtcp-cipher={cipher} rtcp-auth={rtcp_auth} \
         ! udpsink host=127.0.0.1 port={port} sync=false \
         filesrc location={} ! application/x-rtcp ! enc.rtcp_sink_0 \
         enc.rtcp_src_0 ! udpsink host=127.0.0.1 port={} sync=false async=false",
        hex::encode(key_and_salt(&key)),
        rtcp_file.display(),
        port + 1
    );
    let mut gst = gst_launch(&pipeline);
    let packets = receive_all(&rtp, Duration::from_secs(10));
    let control = receive_all(&rtcp, Duration::from_secs(2));
    gst.wait(Duration::from_secs(10))
        .expect("gst-launch finishes");

    let mut session = SrtpSession::from_keys(&key, None, &key, None).unwrap();
    assert_eq!(packets.len(), PACKETS, "{suite}: SRTP packets from srtpenc");
    assert!(
        packets
            .iter()
            .all(|p| p.len() == 12 + 160 + suite.rtp_tag_len())
    );
    rejects_forgeries(suite, &packets);
    for packet in &packets {
        let mut tampered = packet.clone();
        tampered[20] ^= 0x01;
        assert!(session.unprotect_rtp(&mut tampered).is_err());
    }
    assert_eq!(
        session.counters().auth_failed,
        PACKETS as u64,
        "{suite}: tampered"
    );
    let copies = packets.clone();
    let samples = unprotect_tone(&mut session, packets, &format!("srtpenc {suite}"));
    assert_tone(&samples, &format!("srtpenc {suite}"));
    for mut copy in copies {
        assert!(session.unprotect_rtp(&mut copy).is_err());
    }
    assert_eq!(
        session.counters().replayed,
        PACKETS as u64,
        "{suite}: replays counted"
    );

    assert_eq!(control.len(), 1, "{suite}: one SRTCP packet");
    let mut packet = control.into_iter().next().unwrap();
    let len = session
        .unprotect_rtcp(&mut packet)
        .expect("SRTCP from srtpenc");
    assert_eq!(packet[..len], rtcp_rr_pli()[..], "{suite}: RTCP bytes");
    // Only the tampered copies failed authentication.
    assert_eq!(session.counters().auth_failed, PACKETS as u64);
    assert_eq!(session.counters().rtp_unprotected, PACKETS as u64);
}

/// `srtpdec` must decrypt our tone (RTP) and our RR+PLI (RTCP). Each direction gets its own
/// pipeline with one source: gst-launch 1.22 with two `udpsrc` feeding one `srtpdec` now and
/// then hangs or dies of heap corruption (`malloc(): unaligned tcache chunk`) when both reach
/// end of stream.
fn gstreamer_receives(suite: SrtpSuite) {
    let key = MasterKey::generate(suite).unwrap();
    let (cipher, auth) = gst_cipher(suite);
    let rtcp_auth = gst_rtcp_auth(suite);
    let rtp_port = free_udp_ports().0.local_addr().unwrap().port();
    let rtcp_port = free_udp_ports().0.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    let rtcp_out = dir.path().join("out.rtcp");
    let key_hex = hex::encode(key_and_salt(&key));
    let caps = |media: &str| {
        format!(
            "caps=application/x-{media},payload=(int)0,ssrc=(uint){SSRC},srtp-key=(buffer){key_hex},\
             srtp-cipher=(string){cipher},srtp-auth=(string){auth},\
             srtcp-cipher=(string){cipher},srtcp-auth=(string){rtcp_auth},\
             clock-rate=(int)8000,encoding-name=(string)PCMU,media=(string)audio"
        )
    };
    let mut rtp_gst = gst_launch(&format!(
        "udpsrc address=127.0.0.1 port={rtp_port} num-buffers={PACKETS} {} ! dec.rtp_sink \
         srtpdec name=dec dec.rtp_src ! rtppcmudepay ! mulawdec ! wavenc ! filesink location={}",
        caps("srtp"),
        wav.display(),
    ));
    let mut rtcp_gst = gst_launch(&format!(
        "udpsrc address=127.0.0.1 port={rtcp_port} num-buffers=1 {} ! dec.rtcp_sink \
         srtpdec name=dec dec.rtcp_src ! filesink location={}",
        caps("srtcp"),
        rtcp_out.display()
    ));
    let mut session = SrtpSession::from_keys(&key, None, &key, None).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for mut packet in tone_packets() {
        session.protect_rtp(&mut packet).unwrap();
        socket.send_to(&packet, ("127.0.0.1", rtp_port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut rtcp = rtcp_rr_pli();
    session.protect_rtcp(&mut rtcp).unwrap();
    socket.send_to(&rtcp, ("127.0.0.1", rtcp_port)).unwrap();
    for gst in [&mut rtp_gst, &mut rtcp_gst] {
        gst.wait(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("srtpdec {suite}: {e}"));
    }

    let samples = read_wav_s16(&wav);
    assert_tone(&samples, &format!("srtpdec {suite}"));
    let decrypted = std::fs::read(&rtcp_out).unwrap();
    assert_eq!(decrypted, rtcp_rr_pli(), "srtpdec {suite}: RTCP bytes");
}

/// libsrtp's packets under another key are refused and counted, and left as they came.
fn rejects_forgeries(suite: SrtpSuite, packets: &[Vec<u8>]) {
    let other = MasterKey::generate(suite).unwrap();
    let mut wrong_key = SrtpSession::from_keys(&other, None, &other, None).unwrap();
    for packet in packets {
        let mut copy = packet.clone();
        assert!(wrong_key.unprotect_rtp(&mut copy).is_err());
        assert_eq!(&copy, packet, "a refused packet is left as it came");
    }
    let counters = wrong_key.counters();
    assert_eq!(counters.auth_failed, PACKETS as u64, "{suite}: wrong key");
    assert_eq!(counters.rtp_unprotected, 0);
}

/// The 16-bit samples of a canonical WAV file (as `wavenc` writes it).
fn read_wav_s16(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("WAV data chunk");
    bytes[data + 8..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn gstreamer_srtpenc_to_us_aes256_80() {
    gstreamer_sends(SrtpSuite::Aes256CmHmacSha1_80);
}

#[test]
fn gstreamer_srtpenc_to_us_aes256_32() {
    gstreamer_sends(SrtpSuite::Aes256CmHmacSha1_32);
}

#[test]
fn gstreamer_srtpenc_to_us_aes128_80() {
    gstreamer_sends(SrtpSuite::AesCm128HmacSha1_80);
}

#[test]
fn gstreamer_srtpenc_to_us_aes128_32() {
    gstreamer_sends(SrtpSuite::AesCm128HmacSha1_32);
}

#[test]
fn us_to_gstreamer_srtpdec_aes256_80() {
    gstreamer_receives(SrtpSuite::Aes256CmHmacSha1_80);
}

#[test]
fn us_to_gstreamer_srtpdec_aes256_32() {
    gstreamer_receives(SrtpSuite::Aes256CmHmacSha1_32);
}

#[test]
fn us_to_gstreamer_srtpdec_aes128_80() {
    gstreamer_receives(SrtpSuite::AesCm128HmacSha1_80);
}

#[test]
fn us_to_gstreamer_srtpdec_aes128_32() {
    gstreamer_receives(SrtpSuite::AesCm128HmacSha1_32);
}

#[test]
fn gstreamer_srtpenc_to_us_aead_aes256_gcm() {
    gstreamer_sends(SrtpSuite::AeadAes256Gcm);
}

#[test]
fn gstreamer_srtpenc_to_us_aead_aes128_gcm() {
    gstreamer_sends(SrtpSuite::AeadAes128Gcm);
}

#[test]
fn us_to_gstreamer_srtpdec_aead_aes256_gcm() {
    gstreamer_receives(SrtpSuite::AeadAes256Gcm);
}

#[test]
fn us_to_gstreamer_srtpdec_aead_aes128_gcm() {
    gstreamer_receives(SrtpSuite::AeadAes128Gcm);
}

#[test]
fn ffmpeg_srtp_to_us_aes128_80() {
    peers::require("ffmpeg");
    let key = MasterKey::generate(SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let params = base64::engine::general_purpose::STANDARD.encode(key_and_salt(&key));
    let (rtp, rtcp) = free_udp_ports();
    let port = rtp.local_addr().unwrap().port();
    let mut ffmpeg = peers_child::Guard(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i"])
            .arg("sine=frequency=440:sample_rate=8000:duration=1")
            .args([
                "-ac",
                "1",
                "-c:a",
                "pcm_mulaw",
                "-payload_type",
                "0",
                "-f",
                "rtp",
            ])
            .args([
                "-srtp_out_suite",
                "AES_CM_128_HMAC_SHA1_80",
                "-srtp_out_params",
            ])
            .arg(&params)
            .arg(format!("srtp://127.0.0.1:{port}?pkt_size=200"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg runs"),
    );
    let packets = receive_all(&rtp, Duration::from_secs(10));
    let control = receive_all(&rtcp, Duration::from_millis(500));
    ffmpeg
        .wait(Duration::from_secs(10))
        .expect("ffmpeg finishes");

    let mut session = SrtpSession::from_keys(&key, None, &key, None).unwrap();
    assert!(
        packets.len() >= 45,
        "{} SRTP packets from ffmpeg",
        packets.len()
    );
    let samples = unprotect_tone(&mut session, packets, "ffmpeg srtp");
    assert_tone(&samples, "ffmpeg srtp");
    assert!(!control.is_empty(), "ffmpeg sends an SRTCP sender report");
    for mut packet in control {
        let len = session
            .unprotect_rtcp(&mut packet)
            .expect("SRTCP from ffmpeg");
        assert_eq!(packet[1], 200, "a sender report");
        assert!(len >= 28);
    }
}

#[test]
fn us_to_ffmpeg_through_our_sdp_crypto_line_aes128_80() {
    peers::require("ffmpeg");
    let key = MasterKey::generate(SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let crypto = CryptoAttribute {
        tag: 1,
        key: key.clone(),
        lifetime: None,
        mki: None,
    };
    let port = free_udp_ports().0.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let sdp = dir.path().join("in.sdp");
    let wav = dir.path().join("out.wav");
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n{}\r\n",
            crypto.to_sdp_line()
        ),
    )
    .unwrap();
    let mut ffmpeg = peers_child::Guard(
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-protocol_whitelist",
                "file,udp,rtp,srtp",
            ])
            .args(["-i"])
            .arg(&sdp)
            .args(["-t", "0.9", "-y"])
            .arg(&wav)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg runs"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut session = SrtpSession::from_keys(&key, None, &key, None).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for mut packet in tone_packets() {
        session.protect_rtp(&mut packet).unwrap();
        socket.send_to(&packet, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    ffmpeg
        .wait(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("ffmpeg reading our SRTP: {e}"));
    let samples = read_wav_s16(&wav);
    assert_tone(
        &samples[..samples.len().min(7200)],
        "ffmpeg reading our SRTP",
    );
}
