//! The callee's media as sipp plays it: the recorded source sent once, in real time, as RTP to
//! two UDP sockets of ours, and what arrived written as a pcap with its arrival times.
//!
//! Layout as `tests/media/h264_pcmu.pcap`: Ethernet/IPv4/UDP on 127.0.0.1, audio (PCMU, PT 0)
//! to UDP port 41000 and video (H.264, PT 96, packetization-mode=1) to 41002. sipp's
//! `play_pcap_audio` sends each packet to the audio port of our offer plus the packet's port
//! minus the lowest port in the file: audio to ours, video two above, where a call's video is.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sipcast::clock::{WallClock, monotonic};

use crate::peers::words;
use crate::{Fallible, LOOPBACK};

const AUDIO_PORT: u16 = 41000;
const VIDEO_PORT: u16 = AUDIO_PORT + 2;
/// The capture ends this long after the sender has exited.
const DRAIN: Duration = Duration::from_millis(500);

/// One datagram as it arrived.
struct Arrival {
    at: Duration,
    port: u16,
    payload: Vec<u8>,
}

/// Sends `source` (H.264 + PCMU in Matroska) once in real time as RTP and writes `source.pcap`
/// in `dir`. The source has SPS and PPS in-band before every keyframe (the callee's SDP
/// carries no sprop-parameter-sets). Returns the pcap and its packet count.
pub fn capture_pcap(source: &Path, dir: &Path) -> Fallible<(PathBuf, usize)> {
    let bind = || {
        let socket = UdpSocket::bind((LOOPBACK, 0)).map_err(|e| format!("UDP bind: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| format!("UDP timeout: {e}"))?;
        let port = socket.local_addr().map_err(|e| e.to_string())?.port();
        Fallible::Ok((socket, port))
    };
    let (audio, audio_port) = bind()?;
    let (video, video_port) = bind()?;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(None::<Instant>));
    let listeners: Vec<_> = [(audio, AUDIO_PORT), (video, VIDEO_PORT)]
        .into_iter()
        .map(|(socket, port)| {
            let (arrivals, done) = (arrivals.clone(), done.clone());
            std::thread::spawn(move || listen(&socket, port, &arrivals, &done))
        })
        .collect();
    let output = Command::new("ffmpeg")
        .args(words("-nostdin -hide_banner -loglevel error -re -i"))
        .arg(source)
        .args(words("-map 0:v -c copy -payload_type 96 -ssrc 1111 -f rtp"))
        .arg(format!("rtp://{LOOPBACK}:{video_port}?pkt_size=1200"))
        .args(words("-map 0:a -c copy -payload_type 0 -ssrc 2222 -f rtp"))
        .arg(format!("rtp://{LOOPBACK}:{audio_port}?pkt_size=172"))
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    *done.lock().map_err(|_| "capture lock")? = Some(monotonic().into_std());
    for listener in listeners {
        listener.join().map_err(|_| "capture thread panicked")?;
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("ffmpeg sending the source as RTP: {stderr}"));
    }
    let mut arrivals = std::mem::take(&mut *arrivals.lock().map_err(|_| "capture lock")?);
    arrivals.sort_by_key(|a| a.at);
    let path = dir.join("source.pcap");
    let mut pcap = pcap_header();
    for arrival in &arrivals {
        write_record(&mut pcap, arrival);
    }
    std::fs::write(&path, pcap).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, arrivals.len()))
}

/// Receives until the sender has been gone for [`DRAIN`].
fn listen(
    socket: &UdpSocket,
    port: u16,
    arrivals: &Mutex<Vec<Arrival>>,
    done: &Mutex<Option<Instant>>,
) {
    let mut buffer = [0u8; 2048];
    loop {
        match socket.recv(&mut buffer) {
            Ok(len) => {
                // Wall time, as a capture tool stamps packets.
                let micros = WallClock::System.now().as_microsecond();
                let at = Duration::from_micros(u64::try_from(micros).unwrap_or(0));
                if let (Ok(mut list), Some(payload)) = (arrivals.lock(), buffer.get(..len)) {
                    list.push(Arrival {
                        at,
                        port,
                        payload: payload.to_vec(),
                    });
                }
            }
            Err(_) => {
                let finished = done
                    .lock()
                    .ok()
                    .and_then(|d| *d)
                    .is_some_and(|t| t.elapsed() >= DRAIN);
                if finished {
                    return;
                }
            }
        }
    }
}

/// libpcap's file header: microsecond timestamps, Ethernet link type.
fn pcap_header() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
    out.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snap length
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    out
}

/// One packet: record header, then Ethernet, IPv4 and UDP headers around the RTP payload.
fn write_record(out: &mut Vec<u8>, arrival: &Arrival) {
    let udp_len = 8 + arrival.payload.len();
    let ip_len = 20 + udp_len;
    let frame_len = 14 + ip_len;
    out.extend_from_slice(&(arrival.at.as_secs() as u32).to_le_bytes());
    out.extend_from_slice(&arrival.at.subsec_micros().to_le_bytes());
    out.extend_from_slice(&(frame_len as u32).to_le_bytes());
    out.extend_from_slice(&(frame_len as u32).to_le_bytes());
    // Ethernet: zero MACs, IPv4.
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&LOOPBACK.octets());
    ip[16..20].copy_from_slice(&LOOPBACK.octets());
    let checksum = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    out.extend_from_slice(&ip);
    // UDP from the port above the destination; checksum 0 (none), as IPv4 allows.
    out.extend_from_slice(&(arrival.port + 10).to_be_bytes());
    out.extend_from_slice(&arrival.port.to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&arrival.payload);
}

/// RFC 791's header checksum: the ones' complement of the ones' complement sum of the words.
fn ip_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
