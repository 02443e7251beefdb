//! Hostile RTP/RTCP against the real daemon with a live call and a live publish: `sipcast run`,
//! a sipp callee playing the committed H.264 + PCMU pcap, nginx-rtmp recording.
//!
//! While the callee plays, strangers send to the call's four media ports: random bytes,
//! truncated headers and oversized datagrams (up to 65 000 bytes), from another port of the
//! callee's host and from another host (127.0.0.2). The callee's own source (sipp sends the
//! pcap from the address its answer gave) sends, mixed into its pcap, 1 000 forged SSRCs of a
//! 1250 Hz tone, forged video SSRCs, garbage, truncated headers and sender reports of unknown
//! SSRCs. Then the callee falls silent (the pcap ends) and strangers send well-formed RTP of
//! that 1250 Hz tone at the call's pace: the pause that used to let them take the audio over.
//!
//! After each batch: the call is still established and the target publishing, the counters in
//! status say exactly what was refused and why, nothing foreign was accepted, and the daemon's
//! memory stayed put. At the end the recording still decodes with the callee's 440 Hz tone, and
//! its silent tail is silent: no 1250 Hz from anyone.

mod e2e_support;
mod peers;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_support::*;
use serde_json::Value;

const AUDIO_PORT_IN_PCAP: u16 = 41_000;
const VIDEO_PORT_IN_PCAP: u16 = 41_002;
/// Seconds into the pcap where the callee's own address starts sending forged traffic.
const FLOOD_AT: f64 = 3.0;
const FORGED_AUDIO_SSRCS: u32 = 1000;
const FORGED_VIDEO_SSRCS: u32 = 100;
const FORGED_SENDER_REPORTS: u32 = 100;

/// One RTP packet.
fn rtp(payload_type: u8, seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, payload_type & 0x7f];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// 20 ms of a 1250 Hz tone as G.711 µ-law: what must never reach the recording.
fn foreign_tone(packet: u32) -> Vec<u8> {
    (0..160u32)
        .map(|n| {
            let t = f64::from(packet * 160 + n) / 8000.0;
            let sample = (12_000.0 * (t * 1250.0 * std::f64::consts::TAU).sin()) as i16;
            mulaw(sample)
        })
        .collect()
}

fn mulaw(sample: i16) -> u8 {
    let sign = if sample < 0 { 0x80 } else { 0 };
    let magnitude = (i32::from(sample).abs().min(32_635) + 0x84) as u32;
    let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

fn sender_report(ssrc: u32) -> Vec<u8> {
    let mut out = vec![0x80, 200, 0, 6];
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&0xe000_0000_0000_0000u64.to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

/// What the callee's own address sends besides its media: (seconds into the pcap, UDP port in
/// the pcap, datagram), and how many datagrams of it are malformed.
fn forged_traffic() -> Vec<(f64, u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = FLOOD_AT;
    let mut step = |out: &mut Vec<(f64, u16, Vec<u8>)>, port: u16, datagram: Vec<u8>| {
        at += 0.001;
        out.push((at, port, datagram));
    };
    for i in 0..FORGED_AUDIO_SSRCS {
        let ssrc = 0x5000_0000 + i;
        let datagram = rtp(0, rand::random(), rand::random(), ssrc, &foreign_tone(i));
        step(&mut out, AUDIO_PORT_IN_PCAP, datagram);
    }
    for i in 0..FORGED_VIDEO_SSRCS {
        let payload = [0x41, 0x9a, 0x02, 0x04];
        let datagram = rtp(
            96 | 0x80,
            rand::random(),
            rand::random(),
            0x6000_0000 + i,
            &payload,
        );
        step(&mut out, VIDEO_PORT_IN_PCAP, datagram);
    }
    for i in 0..FORGED_SENDER_REPORTS {
        step(
            &mut out,
            AUDIO_PORT_IN_PCAP + 1,
            sender_report(0x7000_0000 + i),
        );
    }
    for len in 1..12 {
        let header = rtp(0, 1, 1, 1, &[]);
        step(&mut out, AUDIO_PORT_IN_PCAP, header[..len].to_vec());
        step(&mut out, VIDEO_PORT_IN_PCAP, header[..len].to_vec());
    }
    // Not RTP version 2, so malformed whatever the rest: RTP and RTCP ports both.
    for _ in 0..50 {
        let mut garbage = random_bytes(1 + rand::random_range(0..400));
        garbage[0] &= 0x3f;
        let port = [
            AUDIO_PORT_IN_PCAP,
            VIDEO_PORT_IN_PCAP,
            AUDIO_PORT_IN_PCAP + 1,
        ][rand::random_range(0..3)];
        step(&mut out, port, garbage);
    }
    out
}

/// Number of datagrams [`forged_traffic`] makes that are malformed.
const FORGED_MALFORMED: u64 = 2 * 11 + 50;

/// The committed pcap with `extra` datagrams mixed in, for sipp to play from the callee's
/// address (it rewrites the UDP ports and checksums, and ignores the IP header but for its
/// length and protocol).
fn pcap_with(extra: &[(f64, u16, Vec<u8>)], path: &Path) {
    let original =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media/h264_pcmu.pcap"))
            .unwrap();
    assert_eq!(
        &original[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let word = |at: usize| u32::from_le_bytes(original[at..at + 4].try_into().unwrap());
    let mut records: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut at = 24;
    let mut template = None;
    while at + 16 <= original.len() {
        let seconds = f64::from(word(at)) + f64::from(word(at + 4)) / 1e6;
        let len = word(at + 8) as usize;
        let frame = original[at + 16..at + 16 + len].to_vec();
        template.get_or_insert_with(|| frame[..14 + 20].to_vec());
        records.push((seconds, frame));
        at += 16 + len;
    }
    let template = template.expect("a packet in the pcap");
    for (seconds, port, datagram) in extra {
        let mut frame = template.clone();
        let ip_len = u16::try_from(20 + 8 + datagram.len()).unwrap();
        frame[16..18].copy_from_slice(&ip_len.to_be_bytes());
        frame.extend_from_slice(&port.to_be_bytes()); // source port: rewritten by sipp
        frame.extend_from_slice(&port.to_be_bytes());
        frame.extend_from_slice(&(ip_len - 20).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(datagram);
        records.push((*seconds, frame));
    }
    records.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = original[..24].to_vec();
    for (seconds, frame) in records {
        let micros = (seconds * 1e6).round() as u64;
        out.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// `e2e_callee.xml` playing `pcap` instead of the committed one.
fn callee_scenario(dir: &Path, pcap: &Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario("e2e_callee.xml")).unwrap();
    assert!(text.contains("../media/h264_pcmu.pcap"));
    let text = text.replace("../media/h264_pcmu.pcap", &pcap.to_string_lossy());
    let path = dir.join("hostile_callee.xml");
    std::fs::write(&path, text).unwrap();
    path
}

fn dropped(status: &Value, reason: &str) -> u64 {
    status["call"]["media"]["rtp_dropped"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("call.media.rtp_dropped.{reason} missing: {status}"))
}

fn media_count(status: &Value, field: &str) -> u64 {
    status["call"]["media"][field].as_u64().unwrap_or(0)
}

/// The daemon's resident memory in KiB, found by its unique spec directory on its command line.
fn daemon_rss_kib(daemon: &Daemon) -> u64 {
    let needle = daemon.dir.path().to_string_lossy().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" run ") && cmdline.contains(&needle) {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            return rss.expect("VmRSS");
        }
    }
    panic!("daemon process not found");
}

/// Asserts the call is up and publishing, and returns the status.
fn still_live(daemon: &Daemon, name: &str, after: &str) -> Value {
    let status = daemon.status(name).expect("status");
    assert!(is_streaming(&status), "after {after}: {status}");
    status
}

#[test]
fn hostile_rtp_never_reaches_the_stream_nor_stops_the_call() {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    require("ffmpeg");
    let pcap = work.path().join("h264_pcmu_forged.pcap");
    pcap_with(&forged_traffic(), &pcap);
    let scenario = callee_scenario(work.path(), &pcap);
    let mut callee = Sipp::start(&scenario.to_string_lossy(), &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "hostile")]);
    let live = daemon.go_live("hostile", &spec);
    let answered = answered_at(&live);
    // The callee's media flowing: its address is latched on both RTP ports.
    let with_ports = daemon.wait_status("hostile", Duration::from_secs(5), "media flowing", |s| {
        s["call"]["media"]["local_video_port"].is_u64() && media_count(s, "rtp_packets") > 50
    });
    let media = &with_ports["call"]["media"];
    let audio = u16::try_from(media["local_audio_port"].as_u64().unwrap()).unwrap();
    let video = u16::try_from(media["local_video_port"].as_u64().unwrap()).unwrap();
    let ports = [audio, audio + 1, video, video + 1];
    let to = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let rss_before = daemon_rss_kib(daemon);
    eprintln!("media ports {ports:?}, daemon RSS {rss_before} KiB");

    // Batch 1: strangers on the callee's host and on another host, while the callee plays.
    // (Another port of the callee's host could still latch an RTCP port the callee has not
    // used yet: it is the callee's host. So that one sends to the latched RTP ports only.)
    let same_host = UdpSocket::bind("127.0.0.1:0").unwrap();
    let other_host = UdpSocket::bind("127.0.0.2:0").unwrap();
    let (mut foreign, mut oversize) = (0u64, 0u64);
    for round in 0..50 {
        for port in ports {
            let senders: &[&UdpSocket] = match port == audio || port == video {
                true => &[&same_host, &other_host],
                false => &[&other_host],
            };
            for socket in senders {
                let len = rand::random_range(1..1500);
                socket.send_to(&random_bytes(len), to(port)).unwrap();
                socket
                    .send_to(&rtp(0, 1, 1, 1, &[])[..round % 12], to(port))
                    .unwrap();
                foreign += 2;
            }
        }
    }
    for len in [2049, 4096, 9000, 65_000] {
        for port in ports {
            same_host.send_to(&random_bytes(len), to(port)).unwrap();
            oversize += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after_garbage = still_live(daemon, "hostile", "garbage from strangers");
    assert_eq!(
        dropped(&after_garbage, "oversize"),
        oversize,
        "{after_garbage}"
    );
    assert_eq!(
        dropped(&after_garbage, "foreign_source"),
        foreign,
        "{after_garbage}"
    );

    // Batch 2: the forged traffic in the pcap, from the callee's own address, has played.
    let flood_played = answered + FLOOD_AT + 2.5;
    std::thread::sleep(Duration::from_secs_f64(
        (flood_played - unix_now()).max(0.0),
    ));
    let after_flood = still_live(daemon, "hostile", "the callee's address flooded");
    let forged = u64::from(FORGED_AUDIO_SSRCS + FORGED_VIDEO_SSRCS + FORGED_SENDER_REPORTS);
    let (unknown, invalid) = (
        dropped(&after_flood, "unknown_ssrc"),
        dropped(&after_flood, "invalid"),
    );
    eprintln!(
        "after the flood: unknown_ssrc {unknown}, invalid {invalid}, {}",
        after_flood["call"]["media"]
    );
    assert_eq!(unknown, forged, "every forged SSRC refused: {after_flood}");
    assert_eq!(invalid, FORGED_MALFORMED, "{after_flood}");
    assert_eq!(
        media_count(&after_flood, "ssrc_changes"),
        0,
        "{after_flood}"
    );
    assert_eq!(dropped(&after_flood, "foreign_source"), foreign);

    // Batch 3: the callee has fallen silent; strangers send well-formed RTP at its pace.
    let pcap_over = answered + PCAP_SECONDS + 0.3;
    std::thread::sleep(Duration::from_secs_f64((pcap_over - unix_now()).max(0.0)));
    let paused = still_live(daemon, "hostile", "the callee paused");
    let packets = media_count(&paused, "rtp_packets");
    let foreign_before = dropped(&paused, "foreign_source");
    // Three seconds of it: longer than the pause after which a stranger used to take over.
    let mut sent = 0;
    for i in 0..150u32 {
        let seq = u16::try_from(i).unwrap();
        let audio_packet = rtp(0, seq, i * 160, 0x0bad_cafe, &foreign_tone(i));
        let video_packet = rtp(96 | 0x80, seq, i * 6000, 0x0bad_f00d, &[0x65, 0x88, 0x84]);
        for socket in [&same_host, &other_host] {
            socket.send_to(&audio_packet, to(audio)).unwrap();
            socket.send_to(&video_packet, to(video)).unwrap();
            socket
                .send_to(&sender_report(0x0bad_cafe), to(audio + 1))
                .unwrap();
            sent += 3;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(400));
    let after_pause = still_live(daemon, "hostile", "strangers during the pause");
    assert_eq!(
        media_count(&after_pause, "rtp_packets"),
        packets,
        "not one foreign packet accepted: {after_pause}"
    );
    assert_eq!(
        dropped(&after_pause, "foreign_source"),
        foreign_before + sent,
        "{after_pause}"
    );
    assert_eq!(media_count(&after_pause, "ssrc_changes"), 0);
    let rss_after = daemon_rss_kib(daemon);
    eprintln!("daemon RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 20 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );

    let deleted = daemon.delete_spec("hostile");
    let bye = callee.wait_bye(Duration::from_secs(3));
    assert!(
        bye - deleted < 1.0,
        "BYE {:.3} s after the deletion",
        bye - deleted
    );
    callee.finish(Duration::from_secs(5));
    let probe = check_recording(nginx, "hostile", bye - answered);
    let files = recordings_of(nginx, "hostile");
    assert_silent_after(&files[0], probe.duration - 2.0);
}

/// The recording's audio over 1.5 s from `from` seconds on is silence: the callee's pause, not
/// a stranger's tone.
fn assert_silent_after(path: &Path, from: f64) {
    let pcm = peers::tone::decode_pcm(path, Some((from, 1.5)));
    assert!(
        pcm.len() > 16_000,
        "{} samples after {from:.2} s",
        pcm.len()
    );
    let rms = (pcm.iter().map(|x| x * x).sum::<f64>() / pcm.len() as f64).sqrt();
    let dbfs = 20.0 * (rms.max(1e-9) / 32768.0).log10();
    eprintln!("recording after {from:.2} s: {dbfs:.1} dBFS");
    assert!(
        dbfs < -60.0,
        "the pause is silent, not a stranger's tone: {dbfs:.1} dBFS"
    );
}
