//! The real [`Dialer`]: a SIP call leg and its media session, feeding the broadcast's output.
//!
//! One task per attempt owns both, for signalling only: frames go from the media task straight
//! into the broadcast's output. The RTMP targets belong to that output
//! ([`crate::output`]), which outlives the attempt and shows the slate when the call gives no
//! video. Keyframes are requested when media starts, whenever the output wants one (a target
//! reconnected, the slate waits for the call's video), and escalated to SIP INFO when RTCP
//! requests go unanswered. No RTP and no RTCP for `media_timeout` hangs up with a reason that
//! says so.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CallCommand, CallEnd, CallEvent, CallRequest, CallSession, Dialer, EndCause};
use crate::clock;
use crate::frame::{FrameSink, MediaFrame};
use crate::media::{self, AudioOutputs, MediaConfig, MediaEvent, MediaSession, RemoteMedia};
use crate::output::OutputSink;
use crate::output::targets::copy_format;
use crate::sip::{self, NegotiatedMedia, NegotiatedStream, UserAgent};
use crate::spec::{AudioCodec, BroadcastSpec, RtmpTarget};
use crate::status::CallMedia;

/// How often target states, media counters and the watchdog are looked at.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// Where media sockets come from.
#[derive(Clone, Debug)]
pub struct MediaPorts {
    pub ip: IpAddr,
    pub range: RangeInclusive<u16>,
}

/// Dials with the daemon's SIP user agent and publishes with real RTMP publishers.
pub struct LiveDialer {
    ua: UserAgent,
    ports: MediaPorts,
}

impl LiveDialer {
    pub fn new(ua: UserAgent, ports: MediaPorts) -> Self {
        LiveDialer { ua, ports }
    }
}

impl Dialer for LiveDialer {
    fn preflight(&self) -> Option<crate::probe::ProbeOptions> {
        Some(crate::probe::ProbeOptions::default())
    }

    fn dial(&self, request: CallRequest) -> CallSession {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        // The attempt's media and publisher tasks are spawned inside this span, so their lines
        // carry the broadcast and (once dialed) the Call-ID too.
        let span = tracing::info_span!(
            "call",
            broadcast = %request.broadcast,
            attempt = request.attempt,
            call_id = tracing::field::Empty
        );
        let attempt = Attempt {
            ua: self.ua.clone(),
            ports: self.ports.clone(),
            spec: request.spec,
            output: request.output,
            commands: command_rx,
            events,
        };
        let task = tokio::spawn(tracing::Instrument::instrument(attempt.run(), span));
        CallSession {
            commands,
            events: event_rx,
            abort: Some(task.abort_handle()),
        }
    }
}

struct Attempt {
    ua: UserAgent,
    ports: MediaPorts,
    spec: Arc<BroadcastSpec>,
    output: Option<OutputSink>,
    commands: mpsc::UnboundedReceiver<CallCommand>,
    events: mpsc::UnboundedSender<CallEvent>,
}

/// How phase one (until answer) ended.
#[allow(
    clippy::large_enum_variant,
    reason = "a few per call, never per packet: the negotiated media is moved once"
)]
enum Answered {
    Yes(NegotiatedMedia),
    No(CallEnd),
}

impl Attempt {
    async fn run(mut self) {
        let end = self.call().await;
        let _ = self.events.send(CallEvent::Ended(end));
    }

    fn emit(&self, event: CallEvent) {
        let _ = self.events.send(event);
    }

    async fn call(&mut self) -> CallEnd {
        let call_spec = &self.spec.call;
        let local =
            match media::LocalMedia::bind(self.ports.ip, self.ports.range.clone(), call_spec.video)
                .await
            {
                Ok(local) => local,
                Err(e) => return CallEnd::failed(None, format!("media: {e}")),
            };
        let (call, mut sip_events) = self.ua.dial(call_config(&self.spec, &local));
        tracing::Span::current().record("call_id", call.call_id());
        self.emit(CallEvent::Dialing {
            call_id: call.call_id().to_string(),
        });
        let mut targets = self.spec.rtmp.clone();
        let negotiated = match self
            .until_answer(&mut sip_events, &call, &mut targets)
            .await
        {
            Answered::Yes(negotiated) => negotiated,
            Answered::No(end) => return end,
        };
        let remote = remote_media(&negotiated);
        self.emit(CallEvent::Established {
            audio_codec: negotiated.audio.as_ref().map(|a| a.codec.clone()),
            video_codec: negotiated.video.as_ref().map(|v| v.codec.clone()),
        });
        // Frames go from the media task straight into the broadcast's output: this task
        // handles signalling only.
        let sink: Box<dyn FrameSink> = match &self.output {
            Some(output) => Box::new(output.clone()),
            None => Box::new(NoOutput),
        };
        let (media, mut media_events) =
            match MediaSession::start_into(local, remote, media_config(&targets), sink) {
                Ok(started) => started,
                Err(e) => {
                    hang_up_in_background(call);
                    return CallEnd::failed(None, format!("media: {e}"));
                }
            };
        media.request_keyframe();
        let copy = negotiated
            .audio
            .as_ref()
            .and_then(|a| copy_format(&a.codec, a.clock_rate));
        let output = self.output.clone();
        if let Some(output) = &output {
            output.begin_source(copy);
        }
        let media_timeout = self.spec.call.media_timeout;
        let established_at = clock::monotonic();
        let mut report = tokio::time::interval(REPORT_EVERY);
        // Whether the call is still up on the SIP side when the loop ends (we owe it a BYE).
        let (end, owe_bye) = loop {
            tokio::select! {
                Some(MediaEvent::KeyframeUnanswered) = media_events.recv() => {
                    tracing::debug!(broadcast = %self.spec.name, "asking for a keyframe with SIP INFO");
                    call.request_keyframe();
                }
                event = sip_events.recv() => match event {
                    Some(sip::CallEvent::DtmfSent { so_far }) => self.emit(CallEvent::DtmfSent(so_far)),
                    Some(sip::CallEvent::MediaChanged(negotiated)) => media.update_remote(remote_media(&negotiated)),
                    Some(sip::CallEvent::Ended(end)) => break (call_end(end), false),
                    Some(_) => {}
                    None => break (CallEnd::failed(None, "the SIP user agent stopped"), false),
                },
                command = self.commands.recv() => match command {
                    Some(CallCommand::UpdateTargets(next)) => {
                        // The output already retargeted; the media path produces the audio
                        // flavours the new set wants and re-announces its headers.
                        media.set_audio_outputs(media_config(&next).audio_outputs);
                        media.request_keyframe();
                    }
                    Some(CallCommand::Hangup) | None => break (local_hangup(), true),
                },
                _ = report.tick() => {
                    if output.as_ref().is_some_and(OutputSink::take_keyframe_wanted) {
                        media.request_keyframe();
                    }
                    let status = media.status();
                    self.emit(media_counters(&status, negotiated.srtp_fallback.as_deref()));
                    if let Some(silent) = silent_for(&status, established_at)
                        && silent >= media_timeout
                    {
                        tracing::warn!(broadcast = %self.spec.name, "no RTP or RTCP for {silent:?}; hanging up");
                        break (CallEnd::failed(None, format!("no RTP or RTCP for {}", humantime::format_duration(media_timeout))), true);
                    }
                }
            }
        };
        // The targets go back to the slate at once, then the media sockets close (bounded).
        // The BYE goes last and is not waited for.
        if let Some(output) = &output {
            output.end_source();
        }
        media.stop().await;
        if owe_bye {
            hang_up_in_background(call);
        }
        end
    }

    /// Reports progress until the call is answered, fails, or we are told to hang up.
    async fn until_answer(
        &mut self,
        sip_events: &mut mpsc::UnboundedReceiver<sip::CallEvent>,
        call: &sip::CallHandle,
        targets: &mut Vec<RtmpTarget>,
    ) -> Answered {
        loop {
            tokio::select! {
                event = sip_events.recv() => match event {
                    Some(sip::CallEvent::Registering) => self.emit(CallEvent::Registering),
                    Some(sip::CallEvent::Registered | sip::CallEvent::Trying) => self.emit(CallEvent::Dialing {
                        call_id: call.call_id().to_string(),
                    }),
                    Some(sip::CallEvent::Ringing { status }) => self.emit(CallEvent::Ringing { sip_status: status }),
                    Some(sip::CallEvent::Established { negotiated, .. }) => return Answered::Yes(negotiated),
                    Some(sip::CallEvent::Ended(end)) => return Answered::No(call_end(end)),
                    Some(_) => {}
                    None => return Answered::No(CallEnd::failed(None, "the SIP user agent stopped")),
                },
                command = self.commands.recv() => match command {
                    Some(CallCommand::UpdateTargets(next)) => *targets = next,
                    Some(CallCommand::Hangup) | None => {
                        hang_up_in_background(call.clone());
                        return Answered::No(local_hangup());
                    }
                },
            }
        }
    }
}

/// Where frames go when no output takes them (nothing publishes for this attempt).
struct NoOutput;

impl FrameSink for NoOutput {
    fn push(&self, _frame: MediaFrame) -> bool {
        true
    }
}

/// Sends BYE (or CANCEL) and lets the user agent finish the transaction on its own. A callee
/// that never answers keeps only that transaction alive (Timer F, 32 s), never the attempt:
/// the broadcast may dial again at once, and the user agent's shutdown bounds what is left.
fn hang_up_in_background(call: sip::CallHandle) {
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        call.hangup().await;
    }));
}

fn local_hangup() -> CallEnd {
    CallEnd {
        cause: EndCause::LocalHangup,
        sip_status: None,
        reason: "hung up".into(),
        retry_after: None,
    }
}

fn call_end(end: sip::CallEnd) -> CallEnd {
    CallEnd {
        cause: if end.by_remote {
            EndCause::RemoteHangup
        } else {
            EndCause::Failed
        },
        sip_status: end.sip_status,
        reason: end.reason,
        retry_after: end.retry_after,
    }
}

/// How long neither RTP nor RTCP has arrived (counting from the answer).
fn silent_for(status: &media::MediaStatus, established_at: Instant) -> Option<Duration> {
    let last = [
        status.last_rtp_at,
        status.last_rtcp_at,
        Some(established_at),
    ]
    .into_iter()
    .flatten()
    .max()?;
    Some(clock::monotonic().saturating_duration_since(last))
}

fn media_counters(status: &media::MediaStatus, srtp_fallback: Option<&str>) -> CallEvent {
    let stats = &status.stats;
    let tracks: Vec<&media::TrackStats> =
        [&stats.audio, &stats.video].into_iter().flatten().collect();
    CallEvent::Media(CallMedia {
        encryption: status.encryption.unwrap_or("none").to_string(),
        encryption_fallback: srtp_fallback.map(str::to_string),
        rtp_packets: tracks.iter().map(|t| t.packets).sum(),
        rtp_lost: tracks.iter().map(|t| t.lost).sum(),
        audio_decode_errors: stats.audio.as_ref().map_or(0, |a| a.errors),
        jitter_ms: tracks.iter().map(|t| t.jitter_ms).reduce(f64::max),
        keyframe_interval_ms: stats.keyframe_interval_ms,
        av_offset_ms: stats.av_offset_ms,
        rtp_dropped: stats.dropped,
        ssrc_changes: stats.ssrc_changes,
        local_audio_port: status.local_audio_port,
        local_video_port: status.local_video_port,
        keyframe_requests: stats.keyframe_requests,
        keyframe_answers: stats.keyframe_answers,
        keyframe_via_info: stats.keyframe_via_info,
        keyframe_rtcp_unanswered: stats.keyframe_rtcp_unanswered,
        keyframe_response_ms: stats.keyframe_response_ms,
    })
}

/// The SIP side of one attempt, from the spec and the media ports just bound.
fn call_config(spec: &BroadcastSpec, local: &media::LocalMedia) -> sip::CallConfig {
    let s = &spec.sip;
    sip::CallConfig {
        account: sip::Account {
            user: s.user.clone(),
            domain: s.domain.clone(),
            auth_user: Some(s.auth_user.clone()),
            password: s.password.clone(),
            register: s.register,
            registrar: s.registrar.clone(),
            proxy: s.proxy.clone(),
            transport: s.transport,
            display_name: s.display_name.clone(),
            tls: sip::ClientTls {
                ca_file: s.ca_file.clone(),
                cert_file: s.client_cert_file.clone(),
                key_file: s.client_key_file.clone(),
            },
        },
        to: spec.call.to.clone(),
        answer_timeout: spec.call.answer_timeout,
        local_media: sip::LocalMedia {
            audio_rtp_port: Some(local.audio.rtp_port()),
            video_rtp_port: local.video.as_ref().map(|v| v.rtp_port()),
            // Receive-only in spirit, but many gateways refuse anything but sendrecv; we offer
            // sendrecv and simply send nothing but DTMF.
            direction: sip::Direction::SendRecv,
            video_content: match spec.call.video_content {
                crate::spec::VideoContent::Main => sip::VideoContent::Main,
                crate::spec::VideoContent::Slides => sip::VideoContent::Slides,
            },
            encryption: spec.call.media_encryption,
        },
        dtmf: sip::DtmfPlan {
            digits: spec.call.dtmf.clone(),
            method: spec.call.dtmf_method,
            delay: spec.call.dtmf_delay,
        },
        dtmf_rtp: Some(local.audio.rtp.clone()),
    }
}

/// What the media path needs from the SDP answer.
pub fn remote_media(negotiated: &NegotiatedMedia) -> RemoteMedia {
    let stream = |s: &NegotiatedStream| media::RemoteStream {
        rtp: s.remote_rtp,
        rtcp: Some(std::net::SocketAddr::new(
            s.remote_rtp.ip(),
            s.remote_rtcp_port,
        )),
        rtcp_mux: s.rtcp_mux,
        payload_type: s.payload_type,
        codec: s.codec.clone(),
        clock_rate: s.clock_rate,
        channels: s.channels,
        fmtp: s
            .fmtp
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(";"),
        rtcp_fb: s.rtcp_fb.clone(),
        srtp: s.srtp.clone(),
    };
    RemoteMedia {
        audio: negotiated.audio.as_ref().map(stream),
        video: negotiated.video.as_ref().map(stream),
    }
}

/// Audio flavours and the keyframe limit from the targets.
fn media_config(targets: &[RtmpTarget]) -> MediaConfig {
    let defaults = MediaConfig::default();
    let mut keyframes = defaults.keyframes;
    if let Some(shortest) = targets.iter().map(|t| t.keyframe_interval).min() {
        keyframes.max_interval = shortest;
    }
    MediaConfig {
        audio_outputs: AudioOutputs {
            aac: targets
                .iter()
                .any(|t| t.audio_codec == AudioCodec::Aac)
                .then(Default::default),
            copy: targets.iter().any(|t| t.audio_codec == AudioCodec::Copy),
        },
        keyframes,
        ..defaults
    }
}
