//! The tokio driver of a call's media: sockets, clock and channels around [`MediaReceiver`].
//!
//! Ports come in pairs from the configured range, RTP even and RTCP odd (RFC 3550 §11); with
//! rtcp-mux (RFC 5761) RTCP shares the RTP socket and is told apart by packet type. RTP is
//! symmetric (RFC 4961): each socket latches onto the callee's source as
//! [`super::latch`] decides, our RTCP goes back to the latched address, and packets from
//! anywhere else are dropped and counted. The driver does only I/O: it hands every datagram,
//! with the socket and address it came from, to [`MediaReceiver::handle_datagram`], which
//! makes every decision. Datagrams are received into buffers one byte larger than
//! [`MAX_DATAGRAM`], so an oversized one is seen as such (and dropped), never truncated.
//!
//! RTP sockets are emptied every [`RECEIVE_EVERY`] in batches ([`super::batch`]), each datagram
//! handed over at the time the kernel stamped it; RTCP sockets wake the driver on arrival.
//!
//! An encrypted stream (SDES keys in [`super::RemoteStream::srtp`]) goes through
//! [`MediaSrtp`] in the receive buffer before the receiver sees it, and our RTCP through it on
//! the way out.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::arrival;
use super::batch::{self, DatagramBatch};
use super::encryption::MediaSrtp;
use super::latch::MediaPort;
use super::receiver::{MAX_DATAGRAM, MediaError, MediaEvent, MediaReceiver, RtcpTransmit, Verdict};
use super::remote::{AudioOutputs, MediaConfig, RemoteMedia};
use super::rtcp;
use super::stats::MediaStats;
use super::timeline::Track;
use crate::clock::monotonic;
use crate::frame::{FrameSink, MediaFrame};

/// Frames buffered towards the consumer; beyond this they are dropped and counted.
const FRAME_QUEUE: usize = 1024;
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// Receive buffers: one byte more than the largest datagram taken, to see oversized ones.
const RECEIVE_BUFFER: usize = MAX_DATAGRAM + 1;
/// How often the RTP sockets are emptied. Media waits at most this long in the kernel, far
/// below any RTMP player's buffer (seconds), and the driver wakes 10 times a second instead of
/// for every packet: at 50 streams of 720p30 a 100 ms tick costs 0.13 CPU s per stream-minute
/// against 0.17 at 40 ms and 0.22 at 20 ms (`daemon_vs_ffmpeg`), the kernel's share falling
/// from 37 % to 17 %. The output places call frames at least this far ahead of its clock.
pub const RECEIVE_EVERY: Duration = Duration::from_millis(100);
/// Batches taken from one socket per tick at most (so one flooded socket cannot hold the
/// task); what is left waits for the next tick.
const BATCHES_PER_TICK: usize = 64;
/// The receive buffer asked for on each RTP socket: a keyframe's burst between two ticks
/// must fit (the kernel caps it at `net.core.rmem_max`).
const RTP_SOCKET_BUFFER: usize = 4 << 20;

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("no free even/odd port pair in {start}-{end} on {ip}")]
    NoPorts { ip: IpAddr, start: u16, end: u16 },
    #[error("cannot bind media socket: {0}")]
    Bind(#[source] io::Error),
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// An RTP socket and its RTCP sibling (port + 1).
#[derive(Clone, Debug)]
pub struct SocketPair {
    /// Polled in batches by the driver (see [`super::batch`]): a plain non-blocking socket,
    /// never woken for. RFC 4733 DTMF and multiplexed RTCP are sent from it.
    pub rtp: Arc<std::net::UdpSocket>,
    /// A packet or two a second: the driver waits on it.
    pub rtcp: Arc<UdpSocket>,
    /// `rtp`'s port, known from the bind (status reads it four times a second).
    rtp_port: u16,
}

impl SocketPair {
    pub fn rtp_port(&self) -> u16 {
        self.rtp_port
    }
}

/// Local sockets, bound before the SDP offer so it can name their ports.
#[derive(Clone, Debug)]
pub struct LocalMedia {
    pub audio: SocketPair,
    pub video: Option<SocketPair>,
}

impl LocalMedia {
    /// Binds an audio pair (and a video pair if `video`) on `ip` within `ports`. With video,
    /// the call takes one block of four ports when the range has one free (audio RTP, RTCP,
    /// then video RTP, RTCP: one rule for firewalls and captures, and what test callees that
    /// replay one capture of both streams need); a fragmented range falls back to any pairs.
    pub async fn bind(
        ip: IpAddr,
        ports: RangeInclusive<u16>,
        video: bool,
    ) -> Result<Self, SessionError> {
        if video && let Some((audio, video)) = bind_block_of_four(ip, &ports).await {
            return Ok(LocalMedia {
                audio,
                video: Some(video),
            });
        }
        let audio = bind_pair(ip, &ports, None).await?;
        let video = match video {
            true => Some(bind_pair(ip, &ports, Some(audio.rtp_port())).await?),
            false => None,
        };
        Ok(LocalMedia { audio, video })
    }
}

/// Two adjacent pairs, audio at a multiple of four from the range's first even port.
async fn bind_block_of_four(
    ip: IpAddr,
    ports: &RangeInclusive<u16>,
) -> Option<(SocketPair, SocketPair)> {
    let first = first_even(ports);
    let blocks = (u32::from(*ports.end()) + 1).saturating_sub(u32::from(first)) / 4;
    if blocks == 0 {
        return None;
    }
    // Start somewhere random so concurrent calls do not race for the same block.
    let offset = rand::random_range(0..blocks);
    for i in 0..blocks {
        let port = u32::from(first) + 4 * ((offset + i) % blocks);
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        let Some(audio) = bind_pair_at(ip, port).await else {
            continue;
        };
        if let Some(video) = bind_pair_at(ip, port + 2).await {
            return Some((audio, video));
        }
    }
    None
}

/// The range's first even port: RTP is even, RTCP the odd one above (RFC 3550 §11).
fn first_even(ports: &RangeInclusive<u16>) -> u16 {
    ports.start().saturating_add(1) & !1
}

/// RTP on `port`, RTCP on `port + 1`; `None` if either is taken.
async fn bind_pair_at(ip: IpAddr, port: u16) -> Option<SocketPair> {
    let rtp = std::net::UdpSocket::bind((ip, port)).ok()?;
    rtp.set_nonblocking(true).ok()?;
    batch::prepare(&rtp, RTP_SOCKET_BUFFER);
    let rtcp = UdpSocket::bind((ip, port.checked_add(1)?)).await.ok()?;
    Some(SocketPair {
        rtp_port: rtp.local_addr().ok()?.port(),
        rtp: Arc::new(rtp),
        rtcp: Arc::new(rtcp),
    })
}

async fn bind_pair(
    ip: IpAddr,
    ports: &RangeInclusive<u16>,
    taken: Option<u16>,
) -> Result<SocketPair, SessionError> {
    let first = first_even(ports);
    let last = *ports.end();
    let pairs = (last.saturating_sub(first) / 2 + 1).max(1);
    // Start somewhere random so concurrent calls do not race for the same pair.
    let offset = rand::random_range(0..pairs);
    for i in 0..pairs {
        let port = first + 2 * ((offset + i) % pairs);
        if Some(port) == taken || port.checked_add(1).is_none_or(|p| p > last) {
            continue;
        }
        if let Some(pair) = bind_pair_at(ip, port).await {
            return Ok(pair);
        }
    }
    Err(SessionError::NoPorts {
        ip,
        start: *ports.start(),
        end: last,
    })
}

/// What the session reports for status and the media watchdog.
#[derive(Clone, Debug, Default)]
pub struct MediaStatus {
    pub stats: MediaStats,
    pub last_rtp_at: Option<Instant>,
    pub last_rtcp_at: Option<Instant>,
    /// Where the peer's audio comes from (latched) or, before any, where the SDP said.
    pub audio_destination: Option<SocketAddr>,
    /// Our audio and video RTP ports (RTCP is each plus one).
    pub local_audio_port: Option<u16>,
    pub local_video_port: Option<u16>,
    /// The SRTP suite protecting the media, `None` for plain RTP.
    pub encryption: Option<&'static str>,
}

/// The receiving ends handed to the caller.
#[derive(Debug)]
pub struct MediaOutputs {
    pub frames: mpsc::Receiver<MediaFrame>,
    pub events: mpsc::UnboundedReceiver<MediaEvent>,
}

#[derive(Debug)]
enum Command {
    RequestKeyframe,
    UpdateRemote(Box<RemoteMedia>),
    SetAudioOutputs(AudioOutputs),
}

/// A running media session; dropping it stops the task.
#[derive(Debug)]
pub struct MediaSession {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<MediaStatus>,
    audio_rtp: Arc<std::net::UdpSocket>,
    task: Option<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MediaSession {
    /// Starts receiving on `local` for the negotiated `remote` media.
    pub fn start(
        local: LocalMedia,
        remote: RemoteMedia,
        config: MediaConfig,
    ) -> Result<(Self, MediaOutputs), SessionError> {
        let (frames_tx, frames) = mpsc::channel(FRAME_QUEUE);
        let (session, events) = Self::start_into(local, remote, config, Box::new(frames_tx))?;
        Ok((session, MediaOutputs { frames, events }))
    }

    /// Starts receiving, handing every frame to `sink` from the media task itself (no task in
    /// between): what a call does with its broadcast's output.
    pub fn start_into(
        local: LocalMedia,
        remote: RemoteMedia,
        config: MediaConfig,
        sink: Box<dyn FrameSink>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<MediaEvent>), SessionError> {
        let receiver = MediaReceiver::new(&remote, config.clone(), monotonic().into_std())?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(MediaStatus::default());
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let audio_rtp = local.audio.rtp.clone();
        let driver = Driver {
            srtp: MediaSrtp::new(&remote),
            receiver,
            config,
            remote,
            local,
            sink,
            events_tx,
            status_tx,
            frames_dropped: 0,
            last_rtp_at: None,
            last_rtcp_at: None,
        };
        let task = tokio::spawn(tracing::Instrument::in_current_span(
            driver.run(commands_rx, stop_rx),
        ));
        let session = MediaSession {
            commands,
            status,
            audio_rtp,
            task: Some(task),
            stop: Some(stop),
        };
        Ok((session, events))
    }

    /// Asks the sender for a keyframe (call after an RTMP target (re)connects).
    pub fn request_keyframe(&self) {
        let _ = self.commands.send(Command::RequestKeyframe);
    }

    /// A re-INVITE changed the remote media; the timeline continues.
    pub fn update_remote(&self, remote: RemoteMedia) {
        let _ = self.commands.send(Command::UpdateRemote(Box::new(remote)));
    }

    /// The targets changed what audio they want (AAC, copy); the timeline continues.
    pub fn set_audio_outputs(&self, outputs: AudioOutputs) {
        let _ = self.commands.send(Command::SetAudioOutputs(outputs));
    }

    pub fn status(&self) -> MediaStatus {
        self.status.borrow().clone()
    }

    pub fn watch_status(&self) -> watch::Receiver<MediaStatus> {
        self.status.clone()
    }

    /// The audio RTP socket, for sending RFC 4733 DTMF from the port the peer latched onto.
    pub fn audio_rtp_socket(&self) -> Arc<std::net::UdpSocket> {
        self.audio_rtp.clone()
    }

    /// Sends RTCP BYE and stops the task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Driver {
    /// SRTP contexts of the encrypted tracks (none for a plain call).
    srtp: MediaSrtp,
    receiver: MediaReceiver,
    config: MediaConfig,
    remote: RemoteMedia,
    local: LocalMedia,
    sink: Box<dyn FrameSink>,
    events_tx: mpsc::UnboundedSender<MediaEvent>,
    status_tx: watch::Sender<MediaStatus>,
    frames_dropped: u64,
    last_rtp_at: Option<Instant>,
    last_rtcp_at: Option<Instant>,
}

/// A call's RTP sockets: audio, and video when the call has it.
type RtpSockets<'a> = [Option<&'a std::net::UdpSocket>; 2];

async fn recv_on(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let audio = self.local.audio.clone();
        let video = self.local.video.clone();
        let rtp = [Some(&*audio.rtp), video.as_ref().map(|v| &*v.rtp)];
        let mut batches: [DatagramBatch<RECEIVE_BUFFER>; 2] = Default::default();
        let (mut a_rtcp, mut v_rtcp) = ([0u8; RECEIVE_BUFFER], [0u8; RECEIVE_BUFFER]);
        let mut receive_tick = tokio::time::interval(RECEIVE_EVERY);
        receive_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_status = monotonic();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::RequestKeyframe) => {
                        self.receiver.request_keyframe(monotonic().into_std());
                    }
                    Some(Command::SetAudioOutputs(outputs)) => {
                        let now = monotonic().into_std();
                        if let Err(e) = self.receiver.set_audio_outputs(outputs, now) {
                            tracing::warn!("audio outputs not changed: {e}");
                        }
                    }
                    Some(Command::UpdateRemote(remote)) => {
                        // A codec we cannot handle keeps the old paths; the call leg decides.
                        let _ = self.receiver.update_remote(&remote, monotonic().into_std());
                        self.srtp.update(&self.remote, &remote);
                        self.remote = *remote;
                    }
                },
                Ok((len, from)) = audio.rtcp.recv_from(&mut a_rtcp) => {
                    let datagram = a_rtcp.get_mut(..len).unwrap_or_default();
                    self.on_rtcp(Track::Audio, datagram, from, rtp, &mut batches);
                }
                Ok((len, from)) = recv_on(video.as_ref().map(|v| &*v.rtcp), &mut v_rtcp) => {
                    let datagram = v_rtcp.get_mut(..len).unwrap_or_default();
                    self.on_rtcp(Track::Video, datagram, from, rtp, &mut batches);
                }
                _ = receive_tick.tick() => {
                    self.receive_rtp(rtp, &mut batches);
                    let now = monotonic();
                    if self.receiver.poll_timeout().is_some_and(|t| Instant::from_std(t) <= now) {
                        self.receiver.handle_timeout(now.into_std());
                    }
                    if now >= next_status {
                        self.publish_status();
                        next_status = now + STATUS_EVERY;
                    }
                }
            }
            self.flush().await;
        }
        self.send_bye().await;
        self.publish_status();
    }

    /// Empties the RTP sockets (up to [`BATCHES_PER_TICK`] batches each) and hands their
    /// datagrams over in the order the kernel received them, each at that time: the receiver
    /// sees the call as it arrived (a keyframe before the audio that came after it), and the
    /// output gets audio and video interleaved, whatever the tick.
    fn receive_rtp(
        &mut self,
        rtp: RtpSockets<'_>,
        batches: &mut [DatagramBatch<RECEIVE_BUFFER>; 2],
    ) {
        arrival::receive_in_arrival_order(
            rtp,
            batches,
            BATCHES_PER_TICK,
            |lane, datagram, from, arrived| {
                let track = if lane == 0 {
                    Track::Audio
                } else {
                    Track::Video
                };
                self.on_datagram(MediaPort::new(track, false), datagram, from, arrived);
            },
        );
    }

    /// An RTCP datagram for `track`, just received: it comes after the RTP that arrived before
    /// it, as the sender sent them, so the RTP sockets are emptied first.
    fn on_rtcp(
        &mut self,
        track: Track,
        datagram: &mut [u8],
        from: SocketAddr,
        rtp: RtpSockets<'_>,
        batches: &mut [DatagramBatch<RECEIVE_BUFFER>; 2],
    ) {
        let arrived = monotonic();
        self.receive_rtp(rtp, batches);
        self.on_datagram(MediaPort::new(track, true), datagram, from, arrived);
    }

    /// One datagram, received into a buffer one byte larger than [`MAX_DATAGRAM`] (so a longer
    /// one arrives cut to a length the receiver refuses as oversize), at `arrived`.
    fn on_datagram(
        &mut self,
        port: MediaPort,
        datagram: &mut [u8],
        from: SocketAddr,
        arrived: Instant,
    ) {
        // Decrypt in place first (an oversized datagram is left for the receiver to refuse).
        let datagram = match datagram.len() <= MAX_DATAGRAM {
            true => match self.srtp.unprotect(port, datagram) {
                Ok(clear) => datagram.get_mut(..clear).unwrap_or_default(),
                // Counted by `srtp`, shown in status.
                Err(_) => return,
            },
            false => datagram,
        };
        match self
            .receiver
            .handle_datagram(arrived.into_std(), port, from, datagram)
        {
            Verdict::Rtp => self.last_rtp_at = Some(arrived),
            Verdict::Rtcp => self.last_rtcp_at = Some(arrived),
            // Counted by the receiver, shown in status; a stranger keeps no call alive.
            Verdict::Dropped(_) => {}
        }
    }

    async fn flush(&mut self) {
        while let Some(frame) = self.receiver.poll_frame() {
            if !self.sink.push(frame) {
                self.frames_dropped += 1;
            }
        }
        while let Some(event) = self.receiver.poll_event() {
            let _ = self.events_tx.send(event);
        }
        while let Some(transmit) = self.receiver.poll_transmit() {
            self.send_rtcp(&transmit).await;
        }
    }

    /// Where RTCP for `track` goes: the latched RTCP source, else the SDP's address.
    fn rtcp_destination(&self, track: Track) -> Option<(SocketAddr, bool)> {
        let stream = match track {
            Track::Audio => self.remote.audio.as_ref(),
            Track::Video => self.remote.video.as_ref(),
        }?;
        let latched = self
            .receiver
            .latched(MediaPort::new(track, !stream.rtcp_mux));
        Some((
            latched.unwrap_or_else(|| stream.rtcp_destination()),
            stream.rtcp_mux,
        ))
    }

    async fn send_rtcp(&mut self, transmit: &RtcpTransmit) {
        let Some((destination, mux)) = self.rtcp_destination(transmit.track) else {
            return;
        };
        let pair = match transmit.track {
            Track::Audio => Some(self.local.audio.clone()),
            Track::Video => self.local.video.clone(),
        };
        let Some(pair) = pair else { return };
        // `None` only for a malformed report of ours: then nothing goes out in clear.
        let Some(data) = self.srtp.protect_rtcp(transmit.track, &transmit.data) else {
            return;
        };
        // A lost report is harmless; the next one follows.
        if mux {
            let _ = pair.rtp.send_to(data, destination);
        } else {
            let _ = pair.rtcp.send_to(data, destination).await;
        }
    }

    async fn send_bye(&mut self) {
        for track in [Track::Audio, Track::Video] {
            let mut data = Vec::with_capacity(64);
            rtcp::write_receiver_report(&mut data, self.config.local_ssrc, &[]);
            rtcp::write_sdes_cname(&mut data, self.config.local_ssrc, &self.config.cname);
            rtcp::write_bye(&mut data, self.config.local_ssrc);
            self.send_rtcp(&RtcpTransmit { track, data }).await;
        }
    }

    fn publish_status(&self) {
        let mut stats = self.receiver.stats();
        stats.frames_dropped = self.frames_dropped;
        stats.dropped = stats.dropped.plus(self.srtp.dropped());
        let audio_destination = self
            .receiver
            .latched(MediaPort::new(Track::Audio, false))
            .or(self.remote.audio.as_ref().map(|a| a.rtp));
        self.status_tx.send_replace(MediaStatus {
            stats,
            last_rtp_at: self.last_rtp_at,
            last_rtcp_at: self.last_rtcp_at,
            audio_destination,
            local_audio_port: Some(self.local.audio.rtp_port()),
            local_video_port: self.local.video.as_ref().map(SocketPair::rtp_port),
            encryption: self.srtp.suite().map(|s| s.sdes_name()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A free range of `len` ports (even start), found by binding and releasing it.
    fn free_range(len: u16) -> RangeInclusive<u16> {
        for start in (40_000..60_000)
            .step_by(usize::from(len))
            .skip(usize::from(rand::random_range(0..200u16)))
        {
            let all_free =
                (start..start + len).all(|p| std::net::UdpSocket::bind((LOCALHOST, p)).is_ok());
            if all_free {
                return start..=start + len - 1;
            }
        }
        panic!("no free port range");
    }

    #[tokio::test]
    async fn a_video_call_takes_one_block_of_four_ports() {
        let range = free_range(16);
        for _ in 0..8 {
            let local = LocalMedia::bind(LOCALHOST, range.clone(), true)
                .await
                .unwrap();
            let audio = local.audio.rtp_port();
            let video = local.video.as_ref().unwrap().rtp_port();
            assert_eq!(audio % 4, range.start() % 4, "audio {audio} starts a block");
            assert_eq!(video, audio + 2);
        }
    }

    #[tokio::test]
    async fn a_fragmented_range_still_gives_two_pairs() {
        let range = free_range(8);
        let start = *range.start();
        // Take the second pair of each block: no block of four is left.
        let _held: Vec<_> = [start + 2, start + 6]
            .iter()
            .map(|&p| std::net::UdpSocket::bind((LOCALHOST, p)).unwrap())
            .collect();
        let local = LocalMedia::bind(LOCALHOST, range, true).await.unwrap();
        let ports = [local.audio.rtp_port(), local.video.unwrap().rtp_port()];
        assert!(
            ports.contains(&start) && ports.contains(&(start + 4)),
            "{ports:?}"
        );
    }
}
