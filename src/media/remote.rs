//! What the media path needs to know about the call: the negotiated streams (mapped by the call
//! leg from the SDP answer, RFC 4566 / RFC 3264) and local settings.

use std::net::SocketAddr;
use std::time::Duration;

use super::aac::AacConfig;
use super::keyframe::KeyframePolicyConfig;
use super::reorder::ReorderConfig;
use crate::srtp::sdes::NegotiatedSrtp;

/// One negotiated media stream (`m=` line) of the remote party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteStream {
    /// Where the peer wants RTP (connection address and `m=` port).
    pub rtp: SocketAddr,
    /// Where the peer wants RTCP (`a=rtcp`, RFC 3605); default the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux` negotiated (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// The payload type chosen for the media codec.
    pub payload_type: u8,
    /// The `a=rtpmap` encoding name (`PCMU`, `PCMA`, `G722`, `speex`, `opus`, `H264`).
    pub codec: String,
    /// The `a=rtpmap` clock rate.
    pub clock_rate: u32,
    pub channels: u8,
    /// The `a=fmtp` parameters for `payload_type` (e.g. `packetization-mode=1;
    /// sprop-parameter-sets=...`), empty if none.
    pub fmtp: String,
    /// The `a=rtcp-fb` values for `payload_type` or `*` (e.g. `nack pli`, `ccm fir`).
    pub rtcp_fb: Vec<String>,
    /// SRTP keys agreed by SDES for this stream; `None`: plain RTP.
    pub srtp: Option<Box<NegotiatedSrtp>>,
}

impl RemoteStream {
    /// A mono stream without fmtp, rtcp-fb or rtcp-mux; set those fields as negotiated.
    pub fn new(rtp: SocketAddr, payload_type: u8, codec: &str, clock_rate: u32) -> Self {
        RemoteStream {
            rtp,
            rtcp: None,
            rtcp_mux: false,
            payload_type,
            codec: codec.to_string(),
            clock_rate,
            channels: 1,
            fmtp: String::new(),
            rtcp_fb: Vec::new(),
            srtp: None,
        }
    }

    /// The address RTCP goes to before the peer's own RTCP source is latched.
    pub fn rtcp_destination(&self) -> SocketAddr {
        if self.rtcp_mux {
            return self.rtp;
        }
        self.rtcp.unwrap_or_else(|| {
            let mut addr = self.rtp;
            addr.set_port(addr.port().wrapping_add(1));
            addr
        })
    }

    /// A parameter of `fmtp`, matched case-insensitively by name.
    pub fn fmtp_param(&self, name: &str) -> Option<&str> {
        self.fmtp.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// Whether `ccm fir` was negotiated.
    pub fn has_fir(&self) -> bool {
        self.rtcp_fb
            .iter()
            .any(|fb| fb.trim().eq_ignore_ascii_case("ccm fir"))
    }
}

/// The negotiated call media; either may be absent (audio-only calls, muted video).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteMedia {
    pub audio: Option<RemoteStream>,
    pub video: Option<RemoteStream>,
}

/// Which audio flavours to produce; targets differ (`audio_codec = "aac"` or `"copy"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioOutputs {
    /// AAC-LC transcoded from the call audio, silence when there is none.
    pub aac: Option<AacConfig>,
    /// The call's G.711/Speex frames as they came.
    pub copy: bool,
}

impl Default for AudioOutputs {
    fn default() -> Self {
        AudioOutputs {
            aac: Some(AacConfig::default()),
            copy: false,
        }
    }
}

/// Local media settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaConfig {
    pub reorder: ReorderConfig,
    pub keyframes: KeyframePolicyConfig,
    pub audio_outputs: AudioOutputs,
    /// How far behind arrival time AAC silence is synthesised when audio stops.
    pub silence_lag: Duration,
    /// RTCP receiver report interval (RFC 3550 §6.2 minimum 5 s).
    pub report_interval: Duration,
    /// Our SSRC in RTCP.
    pub local_ssrc: u32,
    /// Our CNAME in RTCP SDES.
    pub cname: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            reorder: ReorderConfig::default(),
            keyframes: KeyframePolicyConfig::default(),
            audio_outputs: AudioOutputs::default(),
            silence_lag: Duration::from_millis(200),
            report_interval: Duration::from_secs(5),
            local_ssrc: 0x5143_4153,
            cname: "sipcast".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fmtp_and_rtcp_destinations() {
        let stream = RemoteStream {
            rtp: "192.0.2.1:4000".parse().unwrap(),
            rtcp: None,
            rtcp_mux: false,
            payload_type: 96,
            codec: "H264".into(),
            clock_rate: 90_000,
            channels: 1,
            fmtp: "packetization-mode=1; Sprop-Parameter-Sets=Z0I=,aM4=".into(),
            rtcp_fb: vec!["nack pli".into(), "ccm fir".into()],
            srtp: None,
        };
        assert_eq!(stream.fmtp_param("sprop-parameter-sets"), Some("Z0I=,aM4="));
        assert_eq!(stream.fmtp_param("profile-level-id"), None);
        assert_eq!(stream.rtcp_destination().port(), 4001);
        assert!(stream.has_fir());
        let muxed = RemoteStream {
            rtcp_mux: true,
            ..stream
        };
        assert_eq!(muxed.rtcp_destination().port(), 4000);
    }
}
