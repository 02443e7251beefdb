//! The test callee's tokio driver: one UDP socket for SIP and one per media stream (RTP and
//! RTCP share it: the answer says `a=rtcp-mux`, RFC 5761). It feeds [`Callee`], answers a new
//! call as a phone would (100 at once, 180 after [`RING_AFTER`], 200 after another
//! [`RING_FOR`]: the caller's progress then shows each step), repeats the 200 OK until
//! ACK (RFC 3261 §13.3.1.4: T1 = 500 ms, doubling, capped at T2 = 4 s), and plays the clip in
//! real time while the call is up.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::DemoEvent;
use super::callee::{Callee, CalleeAction, CalleeMedia};
use super::clip::Clip;
use super::packetize::{AudioLoop, RtpStream, VideoLoop};
use crate::clock;
use crate::media::rtp::is_rtcp;
use crate::sip::core::message::{Framed, parse_datagram};
use crate::sip::core::sdp::NegotiatedMedia;

const RING_AFTER: Duration = Duration::from_millis(250);
const RING_FOR: Duration = Duration::from_millis(500);
const RETRANSMIT_EVERY: Duration = Duration::from_millis(500);
const RETRANSMIT_CAP: Duration = Duration::from_secs(4);
/// Timer H (64·T1): give up repeating the 200 after this long without ACK.
const ACK_WAIT: Duration = Duration::from_secs(32);
/// The callee's camera comes on this long after the answer (a meeting lobby or an IVR sends
/// audio first): the demo shows the slate until then.
const CAMERA_AFTER: Duration = Duration::from_secs(4);

/// What the callee saw, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalleeReport {
    pub answered: bool,
    pub hung_up: bool,
    pub digits: String,
    pub video_packets_sent: u64,
    pub audio_packets_sent: u64,
}

/// A running test callee.
pub struct CalleeHandle {
    pub sip_addr: SocketAddr,
    report: Arc<Mutex<CalleeReport>>,
    task: JoinHandle<()>,
}

impl CalleeHandle {
    pub fn report(&self) -> CalleeReport {
        lock(&self.report).clone()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for CalleeHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(report: &Mutex<CalleeReport>) -> std::sync::MutexGuard<'_, CalleeReport> {
    report.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds the callee's sockets on `ip` (free ports) and starts answering.
pub async fn start(
    ip: IpAddr,
    clip: Arc<Clip>,
    events: mpsc::UnboundedSender<DemoEvent>,
) -> std::io::Result<CalleeHandle> {
    let sip = UdpSocket::bind((ip, 0)).await?;
    let audio = Arc::new(UdpSocket::bind((ip, 0)).await?);
    let video = Arc::new(UdpSocket::bind((ip, 0)).await?);
    let sip_addr = sip.local_addr()?;
    let media = CalleeMedia {
        ip,
        audio_port: audio.local_addr()?.port(),
        video_port: video.local_addr()?.port(),
        sip_port: sip_addr.port(),
    };
    let report = Arc::new(Mutex::new(CalleeReport::default()));
    let tag = format!("{:08x}", rand::random::<u32>());
    let driver = Driver {
        callee: Callee::new(clip.clone(), media, tag),
        clip,
        sip,
        audio,
        video,
        events,
        report: report.clone(),
        unacked: None,
        ringing: None,
        player: None,
    };
    Ok(CalleeHandle {
        sip_addr,
        report,
        task: tokio::spawn(driver.run()),
    })
}

/// A 2xx being repeated until ACK.
struct Unacked {
    data: Bytes,
    to: SocketAddr,
    next_at: Instant,
    interval: Duration,
    give_up_at: Instant,
}

struct Driver {
    callee: Callee,
    clip: Arc<Clip>,
    sip: UdpSocket,
    audio: Arc<UdpSocket>,
    video: Arc<UdpSocket>,
    events: mpsc::UnboundedSender<DemoEvent>,
    report: Arc<Mutex<CalleeReport>>,
    unacked: Option<Unacked>,
    /// The 180 waiting for its moment.
    ringing: Option<(Instant, Bytes, SocketAddr)>,
    player: Option<JoinHandle<()>>,
}

impl Driver {
    async fn run(mut self) {
        let mut sip_buf = vec![0u8; 65_536];
        let mut audio_buf = vec![0u8; 2048];
        let mut video_buf = vec![0u8; 2048];
        loop {
            let retransmit_at = self.unacked.as_ref().map(|u| u.next_at);
            let ring_at = self.ringing.as_ref().map(|r| r.0);
            tokio::select! {
                received = self.sip.recv_from(&mut sip_buf) => {
                    let Ok((len, from)) = received else { continue };
                    if let Ok(Framed::Message(message, _)) = parse_datagram(&sip_buf[..len])
                        && message.method().is_some()
                    {
                        if message.method() == Some(&ezk_sip_types::Method::ACK) {
                            self.unacked = None;
                        }
                        for action in self.callee.handle_request(&message) {
                            self.act(action, from).await;
                        }
                    }
                }
                received = self.audio.recv_from(&mut audio_buf) => {
                    let Ok((len, from)) = received else { continue };
                    let datagram = &audio_buf[..len];
                    if !is_rtcp(datagram)
                        && let Some(action) = self.callee.handle_audio_rtp(datagram)
                    {
                        self.act(action, from).await;
                    }
                }
                // RTCP (receiver reports, PLI/FIR) arrives here; the clip has an IDR every second.
                _ = self.video.recv_from(&mut video_buf) => {}
                _ = sleep_until_some(retransmit_at) => self.retransmit().await,
                _ = sleep_until_some(ring_at) => {
                    if let Some((_, data, to)) = self.ringing.take() {
                        let _ = self.sip.send_to(&data, to).await;
                    }
                }
            }
        }
    }

    async fn act(&mut self, action: CalleeAction, from: SocketAddr) {
        match action {
            CalleeAction::Reply(message) => {
                let _ = self.sip.send_to(&message.to_bytes(), from).await;
            }
            CalleeAction::ReplyUntilAck(message) => {
                let data = message.to_bytes();
                let _ = self.sip.send_to(&data, from).await;
                self.await_ack(data, from, RETRANSMIT_EVERY, RETRANSMIT_EVERY);
            }
            CalleeAction::Ring(message) => {
                self.ringing = Some((clock::monotonic() + RING_AFTER, message.to_bytes(), from));
            }
            CalleeAction::AnswerAfterRinging(message) => {
                // The first "retransmission" is the answer itself, once the ringing is over.
                let answer_in = RING_AFTER + RING_FOR;
                self.await_ack(message.to_bytes(), from, answer_in, RETRANSMIT_EVERY / 2);
                lock(&self.report).answered = true;
            }
            CalleeAction::Invited => {
                let _ = self.events.send(DemoEvent::CalleeInvited);
            }
            CalleeAction::Play(to) => self.play(to),
            CalleeAction::Stop => {
                if let Some(player) = self.player.take() {
                    player.abort();
                }
                self.unacked = None;
                self.ringing = None;
                lock(&self.report).hung_up = true;
                let _ = self.events.send(DemoEvent::CalleeHungUp);
            }
            CalleeAction::Digit(digit, via) => {
                lock(&self.report).digits.push(digit);
                let _ = self.events.send(DemoEvent::CalleeDigit(digit, via));
            }
        }
    }

    /// Sends `data` to `to` after `first`, then again at doubling intervals until ACK.
    fn await_ack(&mut self, data: Bytes, to: SocketAddr, first: Duration, interval: Duration) {
        let now = clock::monotonic();
        self.unacked = Some(Unacked {
            data,
            to,
            next_at: now + first,
            interval,
            give_up_at: now + ACK_WAIT,
        });
    }

    async fn retransmit(&mut self) {
        let now = clock::monotonic();
        let Some(unacked) = self.unacked.as_mut() else {
            return;
        };
        if now >= unacked.give_up_at {
            self.unacked = None;
            return;
        }
        let _ = self.sip.send_to(&unacked.data, unacked.to).await;
        unacked.interval = (unacked.interval * 2).min(RETRANSMIT_CAP);
        unacked.next_at = now + unacked.interval;
    }

    fn play(&mut self, to: NegotiatedMedia) {
        if let Some(player) = self.player.take() {
            player.abort();
        }
        let (Some(audio_to), Some(video_to)) = (to.audio, to.video) else {
            return;
        };
        let _ = self.events.send(DemoEvent::CalleePlaying {
            audio: audio_to.remote_rtp,
            video: video_to.remote_rtp,
        });
        let stream = |payload_type| {
            RtpStream::new(payload_type, rand::random(), rand::random(), rand::random())
        };
        let player = Player {
            video: VideoLoop::new(self.clip.clone(), stream(video_to.payload_type)),
            audio: AudioLoop::new(self.clip.ulaw.clone(), stream(audio_to.payload_type)),
            video_socket: self.video.clone(),
            audio_socket: self.audio.clone(),
            video_to: video_to.remote_rtp,
            audio_to: audio_to.remote_rtp,
            report: self.report.clone(),
            camera_after: CAMERA_AFTER,
            events: self.events.clone(),
        };
        self.player = Some(tokio::spawn(player.run()));
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(player) = self.player.take() {
            player.abort();
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How often each stream sends an RTCP sender report (RFC 3550 §6.2 suggests 5 s minimum for
/// big sessions; a two-party call reports more often, and the caller then lines up audio and
/// video sooner).
const SENDER_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Sends the clip in real time: each packet group at its due time from the start, and a
/// sender report per stream every [`SENDER_REPORT_EVERY`] (rtcp-mux: on the RTP port).
struct Player {
    video: VideoLoop,
    audio: AudioLoop,
    video_socket: Arc<UdpSocket>,
    audio_socket: Arc<UdpSocket>,
    video_to: SocketAddr,
    audio_to: SocketAddr,
    report: Arc<Mutex<CalleeReport>>,
    /// Video is withheld (the clip still advances) until this long after the start.
    camera_after: Duration,
    events: mpsc::UnboundedSender<DemoEvent>,
}

impl Player {
    async fn run(mut self) {
        let start = clock::monotonic();
        let mut next_report = Duration::ZERO;
        let mut camera_on = false;
        loop {
            let video_next = self.video.due() <= self.audio.due();
            let due = self.video.due().min(self.audio.due());
            tokio::time::sleep_until(start + due).await;
            // A send error (the caller's port not open yet, or gone) only loses that packet.
            if video_next {
                let packets = self.video.next_packets();
                if due < self.camera_after {
                    continue;
                }
                if !camera_on {
                    camera_on = true;
                    let _ = self.events.send(DemoEvent::CalleeCameraOn);
                }
                for packet in &packets {
                    let _ = self.video_socket.send_to(packet, self.video_to).await;
                }
                lock(&self.report).video_packets_sent += packets.len() as u64;
            } else {
                let packet = self.audio.next_packet();
                let _ = self.audio_socket.send_to(&packet, self.audio_to).await;
                lock(&self.report).audio_packets_sent += 1;
            }
            let elapsed = clock::monotonic().saturating_duration_since(start);
            if elapsed >= next_report {
                if camera_on {
                    let video = self.video.sender_report(elapsed);
                    let _ = self.video_socket.send_to(&video, self.video_to).await;
                }
                let audio = self.audio.sender_report(elapsed);
                let _ = self.audio_socket.send_to(&audio, self.audio_to).await;
                next_report = elapsed + SENDER_REPORT_EVERY;
            }
        }
    }
}
