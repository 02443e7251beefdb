//! A call's SRTP (RFC 3711) on the media path: one [`SrtpSession`] per encrypted track, keyed
//! by what SDES agreed ([`super::RemoteStream::srtp`]).
//!
//! Every datagram from the peer goes through [`MediaSrtp::unprotect`] before the
//! receiver sees it, in the receive buffer: only a packet that authenticates may move the
//! source latch. On an RTP port an RTCP packet (rtcp-mux) is told apart by its clear header
//! ([`super::rtp::is_rtcp`]). What fails is dropped and counted by [`DropReason`]; a plain
//! track passes untouched. Our RTCP is protected into a buffer reserved once. Sans-IO; nothing
//! here allocates per packet.

use super::latch::MediaPort;
use super::remote::RemoteMedia;
use super::rtp::is_rtcp;
use super::stats::{DropReason, DroppedDatagrams};
use super::timeline::Track;
use crate::srtp::{SrtpError, SrtpSession, SrtpSuite};

/// Room for what SRTCP appends to a report of ours (E flag and index, MKI, tag).
const SRTCP_TRAILER_ROOM: usize = 32;
/// Our largest RTCP compound (RR, SDES, PLI/FIR, BYE) is far below this.
const MAX_OUR_RTCP: usize = 1500;

/// The SRTP state of a call's media: per track, the contexts when the track is encrypted.
pub struct MediaSrtp {
    audio: Option<SrtpSession>,
    video: Option<SrtpSession>,
    dropped: DroppedDatagrams,
    /// Where our RTCP is protected before it goes out (reserved once, never grown).
    out: Vec<u8>,
}

impl std::fmt::Debug for MediaSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSrtp")
            .field("suite", &self.suite())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl MediaSrtp {
    /// Contexts for every track `remote` says is encrypted.
    pub fn new(remote: &RemoteMedia) -> MediaSrtp {
        MediaSrtp {
            audio: session_for(remote, Track::Audio),
            video: session_for(remote, Track::Video),
            dropped: DroppedDatagrams::default(),
            out: Vec::with_capacity(MAX_OUR_RTCP + SRTCP_TRAILER_ROOM),
        }
    }

    /// A re-INVITE changed the remote media: new contexts only where the keys changed.
    pub fn update(&mut self, before: &RemoteMedia, next: &RemoteMedia) {
        for track in [Track::Audio, Track::Video] {
            if keys(before, track) != keys(next, track) {
                *self.slot(track) = session_for(next, track);
            }
        }
    }

    /// The suite in use (the audio's, else the video's); `None` for plain RTP.
    pub fn suite(&self) -> Option<SrtpSuite> {
        self.audio
            .as_ref()
            .or(self.video.as_ref())
            .map(SrtpSession::suite)
    }

    /// Datagrams refused so far, by reason.
    pub fn dropped(&self) -> DroppedDatagrams {
        self.dropped
    }

    /// Decrypts `datagram` in place when its track is encrypted; returns the length of the
    /// clear packet (the whole datagram for a plain track), or why it was dropped.
    pub fn unprotect(&mut self, port: MediaPort, datagram: &mut [u8]) -> Result<usize, DropReason> {
        let Some(srtp) = self.slot(port.track).as_mut() else {
            return Ok(datagram.len());
        };
        let result = if port.rtcp || is_rtcp(datagram) {
            srtp.unprotect_rtcp(datagram)
        } else {
            srtp.unprotect_rtp(datagram)
        };
        result.map_err(|error| {
            let reason = match error {
                SrtpError::Replayed { .. } => DropReason::SrtpReplay,
                _ => DropReason::SrtpAuth,
            };
            self.dropped.count(reason);
            reason
        })
    }

    /// Our RTCP compound for `track` as it goes on the wire: protected when the track is
    /// encrypted, as is otherwise. `None`: it cannot be protected (never sent in clear).
    pub fn protect_rtcp<'a>(&'a mut self, track: Track, rtcp: &'a [u8]) -> Option<&'a [u8]> {
        let srtp = match track {
            Track::Audio => self.audio.as_mut(),
            Track::Video => self.video.as_mut(),
        };
        let Some(srtp) = srtp else {
            return Some(rtcp);
        };
        self.out.clear();
        self.out.extend_from_slice(rtcp);
        srtp.protect_rtcp(&mut self.out).ok()?;
        Some(&self.out)
    }

    fn slot(&mut self, track: Track) -> &mut Option<SrtpSession> {
        match track {
            Track::Audio => &mut self.audio,
            Track::Video => &mut self.video,
        }
    }
}

fn keys(remote: &RemoteMedia, track: Track) -> Option<&crate::srtp::sdes::NegotiatedSrtp> {
    let stream = match track {
        Track::Audio => remote.audio.as_ref(),
        Track::Video => remote.video.as_ref(),
    }?;
    stream.srtp.as_deref()
}

fn session_for(remote: &RemoteMedia, track: Track) -> Option<SrtpSession> {
    let negotiated = keys(remote, track)?;
    match SrtpSession::new(negotiated) {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::warn!("SRTP for the {track:?} stream not set up: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::RemoteStream;
    use crate::srtp::MasterKey;
    use crate::srtp::sdes::{NegotiatedSrtp, SdesKey};

    fn encrypted(suite: SrtpSuite) -> (RemoteMedia, SrtpSession) {
        let ours = MasterKey::generate(suite).unwrap();
        let theirs = MasterKey::generate(suite).unwrap();
        let key = |key: &MasterKey| SdesKey {
            key: key.clone(),
            mki: None,
            lifetime: None,
        };
        let mut audio = RemoteStream::new("127.0.0.1:9".parse().unwrap(), 0, "PCMU", 8000);
        audio.srtp = Some(Box::new(NegotiatedSrtp {
            suite,
            tag: 1,
            local: key(&ours),
            remote: key(&theirs),
        }));
        let remote = RemoteMedia {
            audio: Some(audio),
            video: None,
        };
        let peer = SrtpSession::from_keys(&ours, None, &theirs, None).unwrap();
        (remote, peer)
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&[0xd5; 160]);
        packet
    }

    #[test]
    fn authenticated_packets_pass_forged_and_replayed_ones_are_counted() {
        let (remote, mut peer) = encrypted(SrtpSuite::Aes256CmHmacSha1_80);
        let mut media = MediaSrtp::new(&remote);
        assert_eq!(media.suite(), Some(SrtpSuite::Aes256CmHmacSha1_80));
        let port = MediaPort::new(Track::Audio, false);
        let mut packet = rtp(1);
        peer.protect_rtp(&mut packet).unwrap();
        let replay = packet.clone();
        let mut tampered = packet.clone();
        tampered[30] ^= 0x80;
        assert_eq!(
            media.unprotect(port, &mut tampered),
            Err(DropReason::SrtpAuth)
        );
        assert_eq!(media.unprotect(port, &mut packet), Ok(172));
        assert_eq!(packet[..172], rtp(1)[..]);
        let mut replay = replay;
        assert_eq!(
            media.unprotect(port, &mut replay),
            Err(DropReason::SrtpReplay)
        );
        let dropped = media.dropped();
        assert_eq!((dropped.srtp_auth, dropped.srtp_replay), (1, 1));
        // A plain packet on an encrypted track is no packet at all.
        assert_eq!(
            media.unprotect(port, &mut rtp(2)),
            Err(DropReason::SrtpAuth)
        );
        // The plain video track passes as is.
        let mut plain = rtp(3);
        assert_eq!(
            media.unprotect(MediaPort::new(Track::Video, false), &mut plain),
            Ok(172)
        );
    }

    #[test]
    fn our_rtcp_goes_out_as_srtcp_the_peer_decrypts() {
        let (remote, mut peer) = encrypted(SrtpSuite::AesCm128HmacSha1_32);
        let mut media = MediaSrtp::new(&remote);
        let mut report = Vec::new();
        crate::media::rtcp::write_receiver_report(&mut report, 0x5143_4153, &[]);
        let mut wire = media.protect_rtcp(Track::Audio, &report).unwrap().to_vec();
        assert_ne!(wire, report);
        let len = peer.unprotect_rtcp(&mut wire).unwrap();
        assert_eq!(wire[..len], report[..]);
        assert_eq!(media.protect_rtcp(Track::Video, &report), Some(&report[..]));
    }

    #[test]
    fn a_reinvite_that_drops_srtp_makes_the_track_plain() {
        let (remote, _) = encrypted(SrtpSuite::AesCm128HmacSha1_80);
        let mut media = MediaSrtp::new(&remote);
        let mut plain = remote.clone();
        if let Some(audio) = plain.audio.as_mut() {
            audio.srtp = None;
        }
        media.update(&remote, &plain);
        assert_eq!(media.suite(), None);
        let mut packet = rtp(1);
        assert_eq!(
            media.unprotect(MediaPort::new(Track::Audio, false), &mut packet),
            Ok(172)
        );
    }
}
