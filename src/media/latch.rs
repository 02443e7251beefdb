//! Which source address each of a call's receive sockets accepts: symmetric RTP (RFC 4961)
//! without letting a stranger take the call's media over.
//!
//! Anyone who can reach our RTP ports can send to them, so every datagram's source is checked
//! before its bytes are looked at. The rules, per socket (audio/video × RTP/RTCP):
//! - A source is ranked by how well it matches what the SDP answer gave for that socket: the
//!   exact address (`Exact`), the answer's host on another port (`Host`, e.g. a gateway whose
//!   send port differs from its receive port), or anything else (`Other`, e.g. the callee's
//!   public address behind NAT).
//! - The first datagram on a socket latches its source. While another socket of the call has
//!   latched a host, an `Other` source from a different host cannot latch: the callee's RTCP
//!   and video come from the host its audio came from.
//! - Once latched, only that exact source is accepted, except a better-ranked one, which takes
//!   over (a source matching the answer beats a stranger who happened to send first).
//! - Nothing else re-latches: not silence, not a new SSRC, not another port of the same host.
//!   A callee that moves its media (another host or port) must say so in a re-INVITE, whose
//!   new answer clears the latch of every socket whose SDP address changed. A NAT that remaps
//!   the callee's port mid-call silences the media until `media_timeout` redials.
//!
//! Sans-IO: addresses in, a verdict out; no clock, no socket.

use std::net::SocketAddr;

use super::remote::{RemoteMedia, RemoteStream};
use super::timeline::Track;

/// One of a call's receive sockets: a track's RTP port, or its RTCP port (`rtcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MediaPort {
    pub track: Track,
    /// The datagram arrived on the RTCP port (with rtcp-mux RTCP arrives on the RTP port).
    pub rtcp: bool,
}

impl MediaPort {
    pub const ALL: [MediaPort; 4] = [
        MediaPort::new(Track::Audio, false),
        MediaPort::new(Track::Audio, true),
        MediaPort::new(Track::Video, false),
        MediaPort::new(Track::Video, true),
    ];

    pub const fn new(track: Track, rtcp: bool) -> Self {
        MediaPort { track, rtcp }
    }

    fn index(self) -> usize {
        let track = match self.track {
            Track::Audio => 0,
            Track::Video => 2,
        };
        track + usize::from(self.rtcp)
    }
}

/// How well a source matches the SDP answer, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Other,
    Host,
    Exact,
}

/// The latched source of each socket of one call; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLatch {
    /// What the answer gave per socket (`MediaPort::index`); `None` for a track not negotiated.
    expected: [Option<SocketAddr>; 4],
    latched: [Option<(SocketAddr, Rank)>; 4],
}

/// An IPv4-mapped IPv6 source compares equal to the IPv4 address an SDP names.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn expected_addresses(remote: &RemoteMedia) -> [Option<SocketAddr>; 4] {
    let rtp = |s: Option<&RemoteStream>| s.map(|s| canonical(s.rtp));
    // With rtcp-mux nothing should arrive on the RTCP port; the RTP address is the best guess.
    let rtcp = |s: Option<&RemoteStream>| s.map(|s| canonical(s.rtcp_destination()));
    let (audio, video) = (remote.audio.as_ref(), remote.video.as_ref());
    [rtp(audio), rtcp(audio), rtp(video), rtcp(video)]
}

impl SourceLatch {
    pub fn new(remote: &RemoteMedia) -> Self {
        SourceLatch {
            expected: expected_addresses(remote),
            latched: [None; 4],
        }
    }

    /// A re-INVITE's answer: sockets whose SDP address changed latch afresh.
    pub fn update_remote(&mut self, remote: &RemoteMedia) {
        let expected = expected_addresses(remote);
        for ((old, new), latched) in self.expected.iter().zip(expected).zip(&mut self.latched) {
            if *old != new {
                *latched = None;
            }
        }
        self.expected = expected;
    }

    /// Whether a datagram from `from` on `port` is accepted (nothing changes until
    /// [`Self::confirm`]: only a well-formed packet may latch).
    pub fn accepts(&self, port: MediaPort, from: SocketAddr) -> bool {
        self.decide(port, from).is_some()
    }

    /// Latches `from` on `port` (or upgrades to it) if [`Self::accepts`] allows it.
    pub fn confirm(&mut self, port: MediaPort, from: SocketAddr) {
        if let Some(Some(latch)) = self.decide(port, from)
            && let Some(slot) = self.latched.get_mut(port.index())
        {
            *slot = Some(latch);
        }
    }

    /// `None`: refused; `Some(None)`: accepted, already latched; `Some(Some(latch))`:
    /// accepted as the socket's new latch.
    fn decide(&self, port: MediaPort, from: SocketAddr) -> Option<Option<(SocketAddr, Rank)>> {
        let from = canonical(from);
        // A track the answer did not negotiate has nobody to accept.
        self.expected.get(port.index()).copied().flatten()?;
        let rank = self.rank(port, from);
        match self.latched.get(port.index()).copied().flatten() {
            Some((addr, _)) if addr == from => Some(None),
            Some((_, current)) if rank > current => Some(Some((from, rank))),
            Some(_) => None,
            None => {
                let mut hosts = self.latched.iter().flatten().map(|(addr, _)| addr.ip());
                let known_host = hosts.clone().next().is_some();
                if rank == Rank::Other && known_host && !hosts.any(|ip| ip == from.ip()) {
                    return None;
                }
                Some(Some((from, rank)))
            }
        }
    }

    /// The source latched on `port`, if any.
    pub fn latched(&self, port: MediaPort) -> Option<SocketAddr> {
        self.latched
            .get(port.index())
            .copied()
            .flatten()
            .map(|(addr, _)| addr)
    }

    fn rank(&self, port: MediaPort, from: SocketAddr) -> Rank {
        match self.expected.get(port.index()).copied().flatten() {
            Some(expected) if expected == from => Rank::Exact,
            Some(expected) if expected.ip() == from.ip() && !from.ip().is_unspecified() => {
                Rank::Host
            }
            _ => Rank::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: MediaPort = MediaPort::new(Track::Audio, false);
    const AUDIO_RTCP: MediaPort = MediaPort::new(Track::Audio, true);
    const VIDEO: MediaPort = MediaPort::new(Track::Video, false);

    trait Admit {
        fn admit(&mut self, port: MediaPort, from: SocketAddr) -> bool;
    }

    impl Admit for SourceLatch {
        fn admit(&mut self, port: MediaPort, from: SocketAddr) -> bool {
            let accepted = self.accepts(port, from);
            self.confirm(port, from);
            accepted
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn latch(sdp: &str) -> SourceLatch {
        let stream = |port: u16| {
            let mut a = addr(sdp);
            a.set_port(a.port() + port);
            RemoteStream::new(a, 0, "PCMU", 8000)
        };
        SourceLatch::new(&RemoteMedia {
            audio: Some(stream(0)),
            video: Some(stream(2)),
        })
    }

    #[test]
    fn the_first_source_latches_and_no_other_port_or_host_gets_in_later() {
        let mut latch = latch("192.0.2.1:4000");
        assert!(latch.admit(AUDIO, addr("192.0.2.1:5000")));
        assert!(latch.admit(AUDIO, addr("192.0.2.1:5000")));
        assert!(
            !latch.admit(AUDIO, addr("192.0.2.1:5002")),
            "same host, other port"
        );
        assert!(!latch.admit(AUDIO, addr("198.51.100.7:5000")), "other host");
        assert_eq!(latch.latched(AUDIO), Some(addr("192.0.2.1:5000")));
    }

    #[test]
    fn the_answers_exact_address_takes_over_from_anyone_else() {
        let mut latch = latch("192.0.2.1:4000");
        assert!(
            latch.admit(AUDIO, addr("198.51.100.7:6000")),
            "a stranger first"
        );
        assert!(
            latch.admit(AUDIO, addr("192.0.2.1:4000")),
            "the answer's address wins"
        );
        assert!(!latch.admit(AUDIO, addr("198.51.100.7:6000")));
        assert!(
            !latch.admit(AUDIO, addr("192.0.2.1:5000")),
            "never a downgrade"
        );
    }

    #[test]
    fn behind_nat_the_callees_public_address_latches_and_holds() {
        let mut latch = latch("10.0.0.5:4000");
        assert!(latch.admit(AUDIO, addr("203.0.113.9:31000")));
        assert!(!latch.admit(AUDIO, addr("198.51.100.7:31000")));
        // Its RTCP and video come from the same host; a stranger's do not latch.
        assert!(!latch.admit(AUDIO_RTCP, addr("198.51.100.7:31001")));
        assert!(latch.admit(AUDIO_RTCP, addr("203.0.113.9:31001")));
        assert!(latch.admit(VIDEO, addr("203.0.113.9:31002")));
    }

    #[test]
    fn a_reinvite_moving_the_media_latches_afresh_only_where_it_moved() {
        let mut latch = latch("192.0.2.1:4000");
        assert!(latch.admit(AUDIO, addr("192.0.2.1:4000")));
        assert!(latch.admit(VIDEO, addr("192.0.2.1:4002")));
        let moved = RemoteMedia {
            audio: Some(RemoteStream::new(addr("192.0.2.9:7000"), 0, "PCMU", 8000)),
            video: Some(RemoteStream::new(
                addr("192.0.2.1:4002"),
                96,
                "H264",
                90_000,
            )),
        };
        latch.update_remote(&moved);
        assert_eq!(latch.latched(AUDIO), None);
        assert_eq!(latch.latched(VIDEO), Some(addr("192.0.2.1:4002")));
        assert!(latch.admit(AUDIO, addr("192.0.2.9:7000")));
    }

    #[test]
    fn ipv4_mapped_sources_match_the_ipv4_answer() {
        let mut latch = latch("192.0.2.1:4000");
        assert!(latch.admit(AUDIO, addr("[::ffff:192.0.2.1]:4000")));
        assert!(latch.admit(AUDIO, addr("192.0.2.1:4000")));
    }

    #[test]
    fn nothing_latches_before_confirmation_nor_on_a_track_not_negotiated() {
        let mut latch = SourceLatch::new(&RemoteMedia {
            audio: Some(RemoteStream::new(addr("192.0.2.1:4000"), 0, "PCMU", 8000)),
            video: None,
        });
        assert!(latch.accepts(AUDIO, addr("198.51.100.7:6000")));
        assert_eq!(latch.latched(AUDIO), None, "garbage cannot claim the port");
        assert!(!latch.admit(VIDEO, addr("192.0.2.1:4002")));
    }
}
