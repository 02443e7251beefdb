//! The spec file as written: serde + JSON Schema types, with source spans kept for errors.
//!
//! These mirror the TOML exactly (every key, `deny_unknown_fields`). [`super::convert`] turns
//! them into the validated [`super::BroadcastSpec`]. The doc comments become the JSON Schema's
//! descriptions.

use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

/// A value with the byte range it was read from.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Located {
            value: spanned.into_inner(),
            span,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A duration in humantime syntax: `90s`, `1h 30m`, `500ms`.
pub type DurationText = Located<String>;

/// A sipcast broadcast: one SIP call published to one or more RTMP targets.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sipcast broadcast spec", rename = "BroadcastSpec")]
pub struct RawSpec<R = OneOrMany<Located<RawRtmp>>> {
    /// Free text for people; changing it changes nothing on the wire.
    pub description: Option<String>,
    /// `false` keeps the broadcast idle (hung up) without deleting the file. Default true.
    pub enabled: Option<bool>,
    /// Our SIP identity and how to reach the network.
    #[schemars(required)]
    pub sip: Option<Located<RawSip>>,
    /// What to dial and how to behave in the call.
    #[schemars(required)]
    pub call: Option<Located<RawCall>>,
    /// When the broadcast is live. Absent: live whenever the file exists and is enabled.
    pub schedule: Option<Located<RawSchedule>>,
    /// One or more RTMP/RTMPS targets; a single `[rtmp]` table or an array `[[rtmp]]`.
    #[schemars(required)]
    pub rtmp: Option<Located<R>>,
    /// Redial backoff.
    pub redial: Option<Located<RawRedial>>,
    /// What the targets publish while the call gives no video, and for how long.
    pub output: Option<Located<RawOutput>>,
}

/// `[rtmp]` or `[[rtmp]]`, for the schema. Files are read as [`RawSpec<Located<RawRtmp>>`] or
/// [`RawSpec<Vec<Located<RawRtmp>>>`] instead (chosen by a first look), because serde's
/// untagged enums drop the spans that error positions need.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only described, never built
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// The RTMP targets of a spec, whichever way they were written.
pub trait Targets {
    fn into_targets(self) -> Vec<Located<RawRtmp>>;
}

impl Targets for Located<RawRtmp> {
    fn into_targets(self) -> Vec<Located<RawRtmp>> {
        vec![self]
    }
}

impl Targets for Vec<Located<RawRtmp>> {
    fn into_targets(self) -> Vec<Located<RawRtmp>> {
        self
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Sip")]
pub struct RawSip {
    /// User part of our SIP address (From / AOR).
    pub user: Located<String>,
    /// host[:port] of our address; REGISTER goes here unless `registrar` is set.
    pub domain: Located<String>,
    /// Authentication name; default = `user`.
    pub auth_user: Option<Located<String>>,
    /// Inline password (allowed, but `validate` warns: prefer `password_file`).
    pub password: Option<Located<String>>,
    /// File holding the password, read at each REGISTER/INVITE.
    pub password_file: Option<Located<String>>,
    /// Environment variable holding the password.
    pub password_env: Option<Located<String>>,
    /// REGISTER and keep it refreshed before dialing. Default false.
    pub register: Option<bool>,
    /// Registrar URI, e.g. `sip:pbx.example.com:5060`.
    pub registrar: Option<Located<String>>,
    /// Outbound proxy URI, e.g. `sip:sbc.example.com;transport=tcp`.
    pub proxy: Option<Located<String>>,
    /// Signalling transport. Default udp.
    pub transport: Option<Transport>,
    /// Display name in From.
    pub display_name: Option<Located<String>>,
    /// PEM file of CA certificates the SIP TLS server must chain to, instead of the system
    /// roots.
    pub ca_file: Option<Located<String>>,
    /// PEM certificate (chain) presented when a TLS server asks for one (mutual TLS).
    pub client_cert_file: Option<Located<String>>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<Located<String>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMethod {
    /// RTP events (RFC 4733); falls back to `info` if the answer has no telephone-event.
    #[default]
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`.
    Info,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OnRemoteHangup {
    /// Dial again (with backoff) while the broadcast is desired live.
    #[default]
    Redial,
    /// Stay down until the next schedule window.
    Complete,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Call")]
pub struct RawCall {
    /// A SIP URI, or a bare number/user dialed at `sip.domain`.
    pub to: Located<String>,
    /// Digits sent after answer: 0-9 * # A-D; `,` pauses 0.5 s.
    pub dtmf: Option<Located<String>>,
    /// How DTMF is sent. Default rfc4733.
    pub dtmf_method: Option<DtmfMethod>,
    /// Wait after answer before the first digit. Default 1s.
    pub dtmf_delay: Option<DurationText>,
    /// Receive audio. Default true.
    pub audio: Option<bool>,
    /// Receive video. Default true.
    pub video: Option<bool>,
    /// Give up (CANCEL) if not answered within this. Default 60s.
    pub answer_timeout: Option<DurationText>,
    /// No RTP and no RTCP this long: hang up and redial. Default 30s.
    pub media_timeout: Option<DurationText>,
    /// What to do when the far end hangs up. Default redial.
    pub on_remote_hangup: Option<OnRemoteHangup>,
    /// With two video streams (a meeting's people and its shared slides, told apart by
    /// `a=content`): which one to stream. `main` (default) or `slides`.
    pub video_content: Option<VideoContent>,
    /// SRTP for the call's media (SDES keys in the SDP): `require`, `prefer` or `off`.
    /// Default: `prefer` when the signalling is TLS (`sip.transport = "tls"` or a `sips:`
    /// URI), `off` otherwise.
    pub media_encryption: Option<Located<MediaEncryption>>,
    /// SDES keys travel in the SDP: over UDP or TCP signalling anyone on the path reads them.
    /// `validate` refuses SRTP without TLS signalling unless this is `true`. Default false.
    pub allow_sdes_over_plain_signalling: Option<bool>,
}

/// Whether the call's media is encrypted (SRTP, RFC 3711, keyed by SDES, RFC 4568).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaEncryption {
    /// Offer only SRTP (`RTP/SAVP` with crypto lines); a callee that cannot do it fails the
    /// call with a reason.
    Require,
    /// Offer SRTP; if the callee refuses it (488, or an answer without a usable crypto line),
    /// retry once with plain RTP.
    Prefer,
    /// Plain RTP (`RTP/AVP`) only.
    #[default]
    Off,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VideoContent {
    /// The people (or the only video).
    #[default]
    Main,
    /// The shared slides (RFC 4796 `a=content:slides`).
    Slides,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Schedule")]
pub struct RawSchedule {
    /// IANA time zone name, e.g. `Europe/Berlin`. Required: there is no implicit host zone.
    pub timezone: Located<String>,
    /// Dial this long before each window opens. Default 0.
    pub lead: Option<DurationText>,
    /// Recurring (`cron` + `duration`) or one-off (`start` + `end` or `duration`) windows.
    pub windows: Located<Vec<Located<RawWindow>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Window")]
pub struct RawWindow {
    /// Five-field cron expression in the schedule's time zone: `0 9 * * MON-FRI`.
    pub cron: Option<Located<String>>,
    /// Length of the window.
    pub duration: Option<DurationText>,
    /// One-off start: civil time in the schedule's zone (`2026-12-24T15:00`) or with offset.
    #[schemars(with = "Option<String>")]
    pub start: Option<Located<toml::Value>>,
    /// One-off end (exclusive).
    #[schemars(with = "Option<String>")]
    pub end: Option<Located<toml::Value>>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// AAC-LC, what YouTube, Facebook and Twitch require (G.711/Speex are transcoded).
    #[default]
    Aac,
    /// The call's audio as sent (G.711 or Speex in FLV).
    Copy,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RtmpTarget")]
pub struct RawRtmp {
    /// `rtmp://` or `rtmps://` URL; without a stream key source, its last path segment is the key.
    pub url: Located<String>,
    /// Inline stream key (prefer `stream_key_file`).
    pub stream_key: Option<Located<String>>,
    /// File holding the stream key, read at each connect.
    pub stream_key_file: Option<Located<String>>,
    /// Environment variable holding the stream key.
    pub stream_key_env: Option<Located<String>>,
    /// `aac` (default) or `copy`.
    pub audio_codec: Option<AudioCodec>,
    /// Ask the caller for a keyframe when the GOP grows past this. Default 4s.
    pub keyframe_interval: Option<DurationText>,
    /// PEM file of CA certificates for `rtmps://` instead of the system roots.
    pub ca_file: Option<Located<String>>,
    /// A second ingest for the same stream (YouTube, Facebook and Teams offer one): it gets the
    /// same frames over its own connection, with the same stream key.
    pub backup_url: Option<Located<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Output")]
pub struct RawOutput {
    /// H.264 Annex B file shown while the call gives no video (IDR first, an IDR at least every
    /// 20 frames; played at 10 fps). Default: a built-in slate matching the call's resolution.
    pub slate: Option<Located<String>>,
    /// Publish the slate as soon as the broadcast is desired live (default true); `false`
    /// connects the targets when the first call is answered.
    pub before_call: Option<bool>,
    /// Unpublish once the call has been down this long. Default: publish the slate for as long
    /// as the broadcast is desired live.
    pub unpublish_after: Option<DurationText>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Redial")]
pub struct RawRedial {
    /// First backoff; doubles with ±20 % jitter. Default 2s.
    pub initial: Option<DurationText>,
    /// Backoff ceiling. Default 60s.
    pub max: Option<DurationText>,
}

impl<R: Targets> RawSpec<R> {
    /// The same spec with its targets as a list.
    pub fn normalized(self) -> RawSpec<Vec<Located<RawRtmp>>> {
        RawSpec {
            description: self.description,
            enabled: self.enabled,
            sip: self.sip,
            call: self.call,
            schedule: self.schedule,
            rtmp: self.rtmp.map(|r| Located {
                value: r.value.into_targets(),
                span: r.span,
            }),
            redial: self.redial,
            output: self.output,
        }
    }
}
