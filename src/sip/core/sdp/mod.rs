//! SDP offer/answer for our calls (RFC 4566 syntax, RFC 3264 offer/answer).
//!
//! We offer every codec the media path can take (audio PCMU, PCMA, G722, opus/48000/2,
//! speex/16000, speex/8000, telephone-event/8000; video H264 packetization-mode 1 and 0 with
//! `nack pli` and `ccm fir` feedback) and read the answer into [`NegotiatedMedia`]: per stream
//! the first format we support, matched by name and clock rate, never by payload number (the
//! answerer may renumber dynamic types). The parser is bounded and never panics.
//!
//! With [`LocalMedia::crypto`] the offer is SRTP (`RTP/SAVP`, RFC 3711) with one `a=crypto` line
//! per suite we implement and a fresh key per m-line (SDES, RFC 4568 §5.1); the answer's crypto
//! lines are read into [`NegotiatedStream::crypto`], and the call matches them with its offer.

mod negotiate;

pub use negotiate::{negotiate, negotiate_preferring};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::srtp::sdes::{CryptoAttribute, NegotiatedSrtp, SdesOffer};
use crate::srtp::{KeyError, SrtpSuite};

/// SDP bodies larger than this are refused.
pub const MAX_SDP_LEN: usize = 16 * 1024;
pub(super) const MAX_MEDIA_SECTIONS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP larger than {MAX_SDP_LEN} bytes")]
    TooLarge,
    #[error("invalid SDP: {0}")]
    Invalid(&'static str),
}

/// `a=sendrecv` and friends (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub(super) fn parse(value: &str) -> Option<Direction> {
        Some(match value {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// Our direction answering a peer's (RFC 3264 §6.1): their sendonly is our recvonly.
    pub fn answer_to(self, ours: Direction) -> Direction {
        let peer_sends = matches!(self, Direction::SendRecv | Direction::SendOnly);
        let peer_receives = matches!(self, Direction::SendRecv | Direction::RecvOnly);
        let we_receive = peer_sends && matches!(ours, Direction::SendRecv | Direction::RecvOnly);
        let we_send = peer_receives && matches!(ours, Direction::SendRecv | Direction::SendOnly);
        match (we_send, we_receive) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

/// Which video a meeting sends we stream (RFC 4796 `a=content`): the people or the shared
/// slides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoContent {
    #[default]
    Main,
    Slides,
}

/// What we put in our offer, and what the media path binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address written in `o=` and `c=`: the configured public address or the socket's own.
    pub address: IpAddr,
    pub audio_rtp_port: Option<u16>,
    pub video_rtp_port: Option<u16>,
    /// Direction we offer. Default sendrecv: many gateways refuse recvonly, and we then simply
    /// send nothing (or DTMF events) ourselves.
    pub direction: Direction,
    /// The video we want; `Slides` is said in our offer (`a=content:slides`) and preferred in
    /// the answer.
    pub video_content: VideoContent,
    /// Our SDES keys when we offer SRTP; `None`: plain RTP (`RTP/AVP`).
    pub crypto: Option<OfferedCrypto>,
}

/// The `a=crypto` lines we offer: one per suite, each m-line with keys of its own (a key
/// protects one RTP session, RFC 4568 §5.1). Secrets: `Debug` shows no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCrypto {
    pub audio: Vec<CryptoAttribute>,
    pub video: Vec<CryptoAttribute>,
}

impl OfferedCrypto {
    /// Fresh keys from the OS RNG for every suite we implement, in our preference order.
    pub fn generate() -> Result<OfferedCrypto, KeyError> {
        Ok(OfferedCrypto {
            audio: SdesOffer::generate(&SrtpSuite::PREFERENCE)?.attributes,
            video: SdesOffer::generate(&SrtpSuite::PREFERENCE)?.attributes,
        })
    }

    pub fn for_kind(&self, kind: MediaKind) -> &[CryptoAttribute] {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    /// The suites offered, for messages: `AES_256_CM_HMAC_SHA1_80, …`.
    pub fn suite_names(&self) -> String {
        let names: Vec<&str> = self.audio.iter().map(|a| a.suite().sdes_name()).collect();
        names.join(", ")
    }

    /// After answer: only the line the answer chose, per m-line, so a refresh re-offers the
    /// keys in use and nothing else (RFC 4568 §7.1.4).
    pub fn keep_only(&mut self, chosen: &NegotiatedMedia) {
        let keep = |lines: &mut Vec<CryptoAttribute>, stream: &Option<NegotiatedStream>| {
            if let Some(tag) = stream.as_ref().and_then(|s| s.srtp.as_ref()).map(|n| n.tag) {
                lines.retain(|line| line.tag == tag);
            }
        };
        keep(&mut self.audio, &chosen.audio);
        keep(&mut self.video, &chosen.video);
    }
}

/// One codec we offer: (payload type, name, clock rate, channels, fmtp).
pub(super) struct Offered {
    pub(super) pt: u8,
    pub(super) name: &'static str,
    pub(super) rate: u32,
    pub(super) channels: u8,
    pub(super) fmtp: Option<&'static str>,
}

pub(super) const AUDIO_OFFER: &[Offered] = &[
    Offered {
        pt: 0,
        name: "PCMU",
        rate: 8000,
        channels: 1,
        fmtp: None,
    },
    Offered {
        pt: 8,
        name: "PCMA",
        rate: 8000,
        channels: 1,
        fmtp: None,
    },
    Offered {
        pt: 9,
        name: "G722",
        rate: 8000,
        channels: 1,
        fmtp: None,
    },
    Offered {
        pt: 111,
        name: "opus",
        rate: 48000,
        channels: 2,
        fmtp: None,
    },
    Offered {
        pt: 97,
        name: "speex",
        rate: 16000,
        channels: 1,
        fmtp: None,
    },
    Offered {
        pt: 98,
        name: "speex",
        rate: 8000,
        channels: 1,
        fmtp: None,
    },
    Offered {
        pt: 101,
        name: "telephone-event",
        rate: 8000,
        channels: 1,
        fmtp: Some("0-16"),
    },
];

pub(super) const VIDEO_OFFER: &[Offered] = &[
    Offered {
        pt: 99,
        name: "H264",
        rate: 90000,
        channels: 1,
        fmtp: Some("profile-level-id=42e01f;packetization-mode=1"),
    },
    Offered {
        pt: 100,
        name: "H264",
        rate: 90000,
        channels: 1,
        fmtp: Some("profile-level-id=42e01f;packetization-mode=0"),
    },
];

/// One negotiated stream, as the media path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedStream {
    pub kind: MediaKind,
    /// Where the peer receives RTP (and, symmetric RTP, where it sends from).
    pub remote_rtp: SocketAddr,
    /// RTCP port: `a=rtcp`, else RTP port + 1, or the RTP port with rtcp-mux.
    pub remote_rtcp_port: u16,
    pub rtcp_mux: bool,
    pub payload_type: u8,
    /// `PCMU`, `PCMA`, `G722`, `speex`, `opus` or `H264`.
    pub codec: String,
    pub clock_rate: u32,
    pub channels: u8,
    /// fmtp parameters of the chosen format (`packetization-mode`, `sprop-parameter-sets`, …).
    pub fmtp: BTreeMap<String, String>,
    /// rtcp-fb values for the chosen format or `*` (e.g. `nack pli`, `ccm fir`).
    pub rtcp_fb: Vec<String>,
    /// Payload type of telephone-event/8000 in this stream, if the peer accepts RFC 4733.
    pub telephone_event_pt: Option<u8>,
    /// The peer's direction attribute.
    pub direction: Direction,
    /// The m-line's profile is SRTP (`RTP/SAVP` or `RTP/SAVPF`).
    pub secure_profile: bool,
    /// The peer's `a=crypto` lines we can use, in its order.
    pub crypto: Vec<CryptoAttribute>,
    /// Why its other crypto lines are unusable (unknown suite, …), for failure reasons.
    pub crypto_unusable: Vec<String>,
    /// What SDES agreed for this stream, once the call matched the answer with its offer (or
    /// answered the peer's offer); `None`: plain RTP.
    pub srtp: Option<Box<NegotiatedSrtp>>,
}

impl NegotiatedStream {
    /// The profile as written on the m-line, for messages.
    pub fn profile(&self) -> &'static str {
        if self.secure_profile {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        }
    }
}

/// The outcome of offer/answer: what we receive and from where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiatedMedia {
    pub audio: Option<NegotiatedStream>,
    pub video: Option<NegotiatedStream>,
    /// Set when `media_encryption = "prefer"` fell back to plain RTP: why.
    pub srtp_fallback: Option<String>,
}

impl NegotiatedMedia {
    /// `none`, or the SRTP suite in use (the audio's, else the video's).
    pub fn encryption(&self) -> &'static str {
        [&self.audio, &self.video]
            .into_iter()
            .flatten()
            .find_map(|s| s.srtp.as_ref())
            .map_or("none", |n| n.suite.sdes_name())
    }
}

/// Our SDP. `session_version` increases with every new offer or answer in the session.
pub fn render(
    local: &LocalMedia,
    session_id: u64,
    session_version: u64,
    chosen: Option<&NegotiatedMedia>,
) -> String {
    let ip = match local.address {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let mut sdp = format!(
        "v=0\r\no=sipcast {session_id} {session_version} IN {ip} {addr}\r\ns=sipcast\r\nc=IN {ip} {addr}\r\nt=0 0\r\n",
        addr = local.address
    );
    let sections = [
        (
            MediaKind::Audio,
            local.audio_rtp_port,
            AUDIO_OFFER,
            chosen.map(|c| &c.audio),
        ),
        (
            MediaKind::Video,
            local.video_rtp_port,
            VIDEO_OFFER,
            chosen.map(|c| &c.video),
        ),
    ];
    for (kind, port, offer, chosen) in sections {
        let Some(port) = port else { continue };
        let media = match kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let mut formats: Vec<(u8, String, Option<String>)> = Vec::new();
        let mut direction = local.direction;
        // Our crypto line(s): the answer's choice when answering, every offered one otherwise.
        let mut crypto: Vec<String> = Vec::new();
        match chosen {
            // Answering: the chosen format (and telephone-event) with the peer's numbers.
            Some(Some(stream)) => {
                formats.push((
                    stream.payload_type,
                    rtpmap_value(&stream.codec, stream.clock_rate, stream.channels),
                    (!stream.fmtp.is_empty()).then(|| {
                        stream
                            .fmtp
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(";")
                    }),
                ));
                if let Some(pt) = stream.telephone_event_pt {
                    formats.push((pt, "telephone-event/8000".into(), Some("0-16".into())));
                }
                direction = stream.direction.answer_to(local.direction);
                if let Some(srtp) = &stream.srtp {
                    let ours = CryptoAttribute {
                        tag: srtp.tag,
                        key: srtp.local.key.clone(),
                        lifetime: srtp.local.lifetime,
                        mki: srtp.local.mki,
                    };
                    crypto.push(ours.to_sdp_line());
                }
            }
            Some(None) => {
                let _ = write!(sdp, "m={media} 0 RTP/AVP {}\r\n", offer[0].pt);
                continue;
            }
            None => {
                for o in offer {
                    formats.push((
                        o.pt,
                        rtpmap_value(o.name, o.rate, o.channels),
                        o.fmtp.map(str::to_string),
                    ));
                }
                if let Some(offered) = &local.crypto {
                    crypto.extend(offered.for_kind(kind).iter().map(|c| c.to_sdp_line()));
                }
            }
        }
        let pts: Vec<String> = formats.iter().map(|f| f.0.to_string()).collect();
        let profile = if crypto.is_empty() {
            "RTP/AVP"
        } else {
            "RTP/SAVP"
        };
        let _ = write!(sdp, "m={media} {port} {profile} {}\r\n", pts.join(" "));
        for line in &crypto {
            let _ = write!(sdp, "{line}\r\n");
        }
        for (pt, rtpmap, fmtp) in &formats {
            let _ = write!(sdp, "a=rtpmap:{pt} {rtpmap}\r\n");
            if let Some(fmtp) = fmtp {
                let _ = write!(sdp, "a=fmtp:{pt} {fmtp}\r\n");
            }
        }
        if kind == MediaKind::Video {
            sdp.push_str("a=rtcp-fb:* nack pli\r\na=rtcp-fb:* ccm fir\r\n");
            if local.video_content == VideoContent::Slides {
                sdp.push_str("a=content:slides\r\n");
            }
        }
        let _ = write!(sdp, "a={}\r\n", direction.attribute());
    }
    sdp
}

fn rtpmap_value(name: &str, rate: u32, channels: u8) -> String {
    if channels > 1 {
        format!("{name}/{rate}/{channels}")
    } else {
        format!("{name}/{rate}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalMedia {
        LocalMedia {
            address: "192.0.2.10".parse().unwrap(),
            audio_rtp_port: Some(40000),
            video_rtp_port: Some(40002),
            direction: Direction::SendRecv,
            video_content: Default::default(),
            crypto: None,
        }
    }

    #[test]
    fn our_offer_is_read_back_as_the_first_formats() {
        let offer = render(&local(), 7, 1, None);
        assert!(
            offer.contains("m=audio 40000 RTP/AVP 0 8 9 111 97 98 101\r\n"),
            "{offer}"
        );
        assert!(offer.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(offer.contains("a=rtcp-fb:* ccm fir\r\n"));
        let media = negotiate(offer.as_bytes()).unwrap();
        let audio = media.audio.unwrap();
        assert_eq!(
            (
                audio.codec.as_str(),
                audio.payload_type,
                audio.telephone_event_pt
            ),
            ("PCMU", 0, Some(101))
        );
        assert_eq!(audio.remote_rtcp_port, 40001);
        let video = media.video.unwrap();
        assert_eq!(
            video.fmtp.get("packetization-mode").map(String::as_str),
            Some("1")
        );
        assert_eq!(video.rtcp_fb, vec!["nack pli", "ccm fir"]);
    }

    #[test]
    fn answer_with_renumbered_h264_and_pcmu() {
        let answer = include_str!("../../../../testdata/sip/gateway_answer_h264_pcmu.sdp");
        let media = negotiate(answer.as_bytes()).unwrap();
        let audio = media.audio.unwrap();
        assert_eq!(audio.codec, "PCMU");
        assert_eq!(audio.remote_rtp, "198.51.100.7:20000".parse().unwrap());
        assert_eq!(audio.telephone_event_pt, Some(100));
        let video = media.video.unwrap();
        assert_eq!(
            (video.codec.as_str(), video.payload_type, video.clock_rate),
            ("H264", 126, 90000)
        );
        assert_eq!(video.remote_rtp, "198.51.100.8:20002".parse().unwrap());
        assert!(video.rtcp_mux);
        assert_eq!(video.remote_rtcp_port, 20002);
        assert_eq!(
            video.fmtp.get("sprop-parameter-sets").map(String::as_str),
            Some("Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==")
        );
        assert_eq!(video.rtcp_fb, vec!["nack pli", "ccm fir"]);
        assert_eq!(video.direction, Direction::SendOnly);
    }

    #[test]
    fn the_main_video_is_chosen_by_its_content_attribute_not_its_position() {
        let answer = include_str!("../../../../testdata/sip/connector_answer_slides_and_main.sdp");
        let video = negotiate(answer.as_bytes()).unwrap().video.unwrap();
        assert_eq!(video.payload_type, 96);
        assert_eq!(video.remote_rtp, "203.0.113.20:31002".parse().unwrap());
        // Slides alone are still better than no video.
        let slides_only = answer.replace("a=content:main", "a=content:slides");
        let video = negotiate(slides_only.as_bytes()).unwrap().video.unwrap();
        assert_eq!(video.payload_type, 97, "the first usable one");
        // A spec that asks for the slides gets them, and says so in its offer.
        let video = negotiate_preferring(answer.as_bytes(), VideoContent::Slides)
            .unwrap()
            .video
            .unwrap();
        assert_eq!(video.payload_type, 97);
        let local = LocalMedia {
            address: "192.0.2.1".parse().unwrap(),
            audio_rtp_port: Some(4000),
            video_rtp_port: Some(4002),
            direction: Direction::SendRecv,
            video_content: VideoContent::Slides,
            crypto: None,
        };
        assert!(render(&local, 1, 1, None).contains("a=content:slides\r\n"));
    }

    #[test]
    fn rejected_and_unsupported_streams_are_none() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\nm=video 5000 RTP/AVP 34\r\n";
        assert_eq!(
            negotiate(sdp.as_bytes()).unwrap(),
            NegotiatedMedia::default()
        );
    }

    #[test]
    fn answering_a_reoffer_keeps_the_peers_numbers_and_mirrors_hold() {
        let offer = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 18 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let media = negotiate(offer.as_bytes()).unwrap();
        let answer = render(&local(), 7, 2, Some(&media));
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 8 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=recvonly\r\n"));
        assert!(answer.contains("m=video 0 "));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "x",
            "v=0\r\nm=audio\r\n",
            "v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
            "v=0\r\nm=audio 5 RTP/AVP 0\r\n",
        ] {
            assert!(negotiate(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(
            negotiate(&vec![b'v'; MAX_SDP_LEN + 1]),
            Err(SdpError::TooLarge)
        );
    }
}
