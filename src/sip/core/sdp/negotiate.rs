//! Reading the peer's SDP (RFC 4566 §5) and choosing, per stream, the first format we support
//! (RFC 3264 §6: formats in the answer are in the answerer's preference order).
//!
//! Meeting connectors (Cisco, Poly, Zoom) send two video m-lines, the people and the shared
//! slides, told apart by `a=content` (RFC 4796), not by position: we take the main one
//! (`a=content:main`, or no content attribute) and the slides only when nothing else is usable.

use super::{
    AUDIO_OFFER, Direction, MAX_MEDIA_SECTIONS, MAX_SDP_LEN, MediaKind, NegotiatedMedia,
    NegotiatedStream, SdpError, VIDEO_OFFER, VideoContent,
};
use crate::srtp::sdes::{self, MAX_ATTRIBUTES};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// A media section as read from the wire.
#[derive(Debug, Default)]
struct Section {
    kind: Option<MediaKind>,
    port: u16,
    formats: Vec<u8>,
    connection: Option<IpAddr>,
    rtpmap: BTreeMap<u8, (String, u32, u8)>,
    fmtp: BTreeMap<u8, String>,
    rtcp_fb: Vec<(String, String)>,
    rtcp_port: Option<u16>,
    rtcp_mux: bool,
    direction: Option<Direction>,
    /// `a=content` (RFC 4796): `main`, `slides`, `speaker`, `sl`, `alt`.
    content: Option<String>,
    /// `RTP/SAVP` or `RTP/SAVPF`.
    secure_profile: bool,
    /// `a=crypto` values as written (at most [`MAX_ATTRIBUTES`]).
    crypto: Vec<String>,
}

impl Section {
    /// Not the shared-content stream of a meeting (RFC 4796 `slides`, or `alt`).
    fn is_main(&self) -> bool {
        !self
            .content
            .as_deref()
            .is_some_and(|c| c.split(',').any(|v| matches!(v.trim(), "slides" | "alt")))
    }
}

/// Reads the peer's SDP (an answer to our offer, or an offer in a re-INVITE) and picks, per
/// stream, the first format we support. A stream with port 0 or no supported format is `None`.
pub fn negotiate(sdp: &[u8]) -> Result<NegotiatedMedia, SdpError> {
    negotiate_preferring(sdp, VideoContent::Main)
}

/// [`negotiate`], taking the video m-line whose `a=content` matches `wanted` first (audio is
/// never affected), then any other usable one.
pub fn negotiate_preferring(sdp: &[u8], wanted: VideoContent) -> Result<NegotiatedMedia, SdpError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge);
    }
    let text = std::str::from_utf8(sdp).map_err(|_| SdpError::Invalid("not UTF-8"))?;
    let mut session_connection = None;
    let mut session_direction = None;
    let mut sections: Vec<Section> = Vec::new();
    let mut saw_version = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((key, value)) = line.split_once('=') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(SdpError::Invalid("line without '='"));
        };
        match (key, sections.last_mut()) {
            ("v", _) => saw_version = true,
            ("m", _) => {
                if sections.len() >= MAX_MEDIA_SECTIONS {
                    return Err(SdpError::Invalid("too many media sections"));
                }
                sections.push(parse_media_line(value)?);
            }
            ("c", None) => session_connection = parse_connection(value),
            ("c", Some(section)) => section.connection = parse_connection(value),
            ("a", None) => {
                if let Some(d) = Direction::parse(value.trim()) {
                    session_direction = Some(d);
                }
            }
            ("a", Some(section)) => parse_attribute(section, value),
            _ => {}
        }
    }
    if !saw_version {
        return Err(SdpError::Invalid("missing v= line"));
    }
    let mut media = NegotiatedMedia::default();
    // The wanted content first, so a slides m-line listed before the camera never wins (or the
    // other way round when the spec asks for the slides).
    let wanted_main = wanted == VideoContent::Main;
    for first_pass in [true, false] {
        for section in sections
            .iter()
            .filter(|s| (s.is_main() == wanted_main) == first_pass)
        {
            let Some(kind) = section.kind else { continue };
            let slot = match kind {
                MediaKind::Audio => &mut media.audio,
                MediaKind::Video => &mut media.video,
            };
            if slot.is_some() || section.port == 0 {
                continue;
            }
            let Some(address) = section.connection.or(session_connection) else {
                return Err(SdpError::Invalid("no connection address"));
            };
            *slot = choose(section, kind, address, session_direction);
        }
    }
    Ok(media)
}

fn parse_media_line(value: &str) -> Result<Section, SdpError> {
    let mut parts = value.split_whitespace();
    let kind = match parts.next() {
        Some("audio") => Some(MediaKind::Audio),
        Some("video") => Some(MediaKind::Video),
        Some(_) => None,
        None => return Err(SdpError::Invalid("empty m= line")),
    };
    let port_text = parts.next().ok_or(SdpError::Invalid("m= without port"))?;
    let port_text = port_text.split('/').next().unwrap_or(port_text);
    let port = port_text
        .parse()
        .map_err(|_| SdpError::Invalid("bad m= port"))?;
    let proto = parts
        .next()
        .ok_or(SdpError::Invalid("m= without protocol"))?;
    let secure_profile = matches!(proto, "RTP/SAVP" | "RTP/SAVPF");
    let formats = parts
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|pt| *pt < 128)
        .collect();
    Ok(Section {
        kind,
        port,
        formats,
        secure_profile,
        ..Section::default()
    })
}

fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_whitespace();
    let (_net, _type, addr) = (parts.next()?, parts.next()?, parts.next()?);
    // Multicast TTL suffixes (`/127`) do not apply to the unicast peers we talk to.
    addr.split('/').next()?.parse().ok()
}

fn parse_attribute(section: &mut Section, value: &str) {
    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
    let rest = rest.trim();
    let pt_and = |rest: &str| -> Option<(u8, String)> {
        let (pt, tail) = rest.split_once(char::is_whitespace)?;
        Some((pt.parse().ok()?, tail.trim().to_string()))
    };
    match name.trim() {
        "rtpmap" => {
            if let Some((pt, map)) = pt_and(rest) {
                let mut parts = map.split('/');
                let name = parts.next().unwrap_or("").to_string();
                let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
                section.rtpmap.insert(pt, (name, rate, channels));
            }
        }
        "fmtp" => {
            if let Some((pt, params)) = pt_and(rest) {
                section.fmtp.insert(pt, params);
            }
        }
        "rtcp-fb" => {
            if let Some((pt, fb)) = rest.split_once(char::is_whitespace) {
                if section.rtcp_fb.len() < 32 {
                    section
                        .rtcp_fb
                        .push((pt.to_string(), fb.trim().to_string()));
                }
            }
        }
        "rtcp" => section.rtcp_port = rest.split_whitespace().next().and_then(|p| p.parse().ok()),
        "rtcp-mux" => section.rtcp_mux = true,
        "content" => section.content = Some(rest.chars().take(64).collect()),
        "crypto" => {
            if section.crypto.len() < MAX_ATTRIBUTES && rest.len() <= sdes::MAX_LINE_LEN {
                section.crypto.push(rest.to_string());
            }
        }
        other => {
            if let Some(d) = Direction::parse(other) {
                section.direction = Some(d);
            }
        }
    }
}

/// RFC 3551 static payload types we accept without rtpmap.
fn static_format(pt: u8) -> Option<(String, u32, u8)> {
    match pt {
        0 => Some(("PCMU".into(), 8000, 1)),
        8 => Some(("PCMA".into(), 8000, 1)),
        9 => Some(("G722".into(), 8000, 1)),
        _ => None,
    }
}

fn choose(
    section: &Section,
    kind: MediaKind,
    address: IpAddr,
    session_direction: Option<Direction>,
) -> Option<NegotiatedStream> {
    let offer = match kind {
        MediaKind::Audio => AUDIO_OFFER,
        MediaKind::Video => VIDEO_OFFER,
    };
    let format_of = |pt: u8| {
        section
            .rtpmap
            .get(&pt)
            .cloned()
            .or_else(|| static_format(pt))
    };
    let supported = |name: &str, rate: u32| {
        offer.iter().any(|o| {
            o.name != "telephone-event" && o.name.eq_ignore_ascii_case(name) && o.rate == rate
        })
    };
    let telephone_event_pt = section.formats.iter().copied().find(|pt| {
        format_of(*pt).is_some_and(|(name, rate, _)| {
            name.eq_ignore_ascii_case("telephone-event") && rate == 8000
        })
    });
    let (pt, (name, rate, channels)) = section
        .formats
        .iter()
        .filter_map(|pt| Some((*pt, format_of(*pt)?)))
        .find(|(_, (name, rate, _))| supported(name, *rate))?;
    let canonical = offer
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(&name))
        .map(|o| o.name.to_string())
        .unwrap_or(name);
    let fmtp = section
        .fmtp
        .get(&pt)
        .map(|params| {
            params
                .split(';')
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let pt_text = pt.to_string();
    let rtcp_fb = section
        .rtcp_fb
        .iter()
        .filter(|(p, _)| p == "*" || *p == pt_text)
        .map(|(_, fb)| fb.clone())
        .collect();
    let remote_rtcp_port = if section.rtcp_mux {
        section.port
    } else {
        section.rtcp_port.unwrap_or(section.port.saturating_add(1))
    };
    let (crypto, unusable) = sdes::parse_all(section.crypto.iter().map(String::as_str));
    Some(NegotiatedStream {
        kind,
        remote_rtp: SocketAddr::new(address, section.port),
        remote_rtcp_port,
        rtcp_mux: section.rtcp_mux,
        payload_type: pt,
        codec: canonical,
        clock_rate: rate,
        channels,
        fmtp,
        rtcp_fb,
        telephone_event_pt,
        direction: section.direction.or(session_direction).unwrap_or_default(),
        secure_profile: section.secure_profile,
        crypto,
        crypto_unusable: unusable.iter().map(ToString::to_string).collect(),
        srtp: None,
    })
}
