//! The sans-IO RTMP publish session for one connection (Adobe RTMP 1.0: §5.2 handshake, §7.2.1.1
//! connect, §7.2.2.6 publish, §5.4.1 chunk size, §5.4.3/5.4.4 acknowledgement), built on
//! `rml_rtmp`'s handshake and `ClientSession`.
//!
//! Flow: C0+C1 → handshake → `connect` (app, tcUrl) → releaseStream + FCPublish → createStream
//! → `publish(key, "live")` → `NetStream.Publish.Start` → media → FCUnpublish + deleteStream.
//!
//! What `rml_rtmp` 0.8 does not do, and this type adds:
//! - a rejected publish (`NetStream.Publish.BadName`, an `_error`) is only an unhandled event
//!   there: an *inbound guard* (a second chunk parser over the server's bytes, which are few)
//!   finds the status code and description, and any `NetStream.Publish.*` but `Start` fails the
//!   session; the whole setup also has a deadline;
//! - `rml_rtmp` panics on some malformed server messages: the guard rejects the known ones
//!   before it sees them, and any other panic in it becomes a protocol error (found by the
//!   `rtmp_server_bytes` fuzz target);
//! - releaseStream / FCPublish / FCUnpublish and `@setDataFrame onMetaData` (at the timestamp we
//!   choose) are written by us, as complete type-0 chunks on our own chunk stream
//!   ([`SIDE_CSID`]), so they never disturb the header compression of the session's streams.
//!
//! # Driving it
//! ```text
//! let mut s = PublishSession::new(now, params)?;         // queues C0+C1
//! loop {
//!     while let Some(bytes) = s.poll_transmit() { write(bytes) }   // always in order, all of it
//!     while let Some(event) = s.poll_event() { … }                 // Publishing
//!     select! { bytes = read() => s.handle_input(now, &bytes)?,
//!               _ = sleep_until(s.poll_timeout()) => s.handle_timeout(now)? }
//! }
//! ```
//! Any `Err` is fatal for the connection: close it and start over with a new session.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rml_rtmp::chunk_io::ChunkDeserializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{MessagePayload, RtmpMessage};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};

use super::amf0;
use super::flv::{FlvTag, TagKind};
use crate::secret::Secret;

/// Our chunk stream for the messages we serialize ourselves; `rml_rtmp` uses 2 to 6.
pub const SIDE_CSID: u8 = 8;
/// Our chunk streams for audio and video, which we serialize ourselves too (straight from the
/// frame's bytes, without the copies `rml_rtmp` makes).
const VIDEO_CSID: u8 = 9;
const AUDIO_CSID: u8 = 10;
const RTMP_MESSAGE_AUDIO: u8 = 8;
const RTMP_MESSAGE_VIDEO: u8 = 9;
/// A transmit buffer grown past this by a large keyframe is given back once written.
const TRANSMIT_KEEP: usize = 256 * 1024;
/// Our outgoing chunk size (RTMP's default of 128 costs a header every 128 bytes).
pub const CHUNK_SIZE: u32 = 4096;
/// Transaction ids for our own commands, far from the session's 1, 2, 3 ….
const SIDE_TRANSACTION_BASE: f64 = 1_000_000.0;
const RTMP_MESSAGE_AMF0_DATA: u8 = 18;
const RTMP_MESSAGE_AMF3_COMMAND: u8 = 17;
const RTMP_MESSAGE_AMF0_COMMAND: u8 = 20;

/// What one connection publishes where.
#[derive(Clone, Debug)]
pub struct SessionParams {
    pub app: String,
    pub tc_url: String,
    pub stream_key: Secret,
    /// Handshake through `NetStream.Publish.Start` must finish within this.
    pub setup_timeout: Duration,
}

/// Why a connection's session ended. Never contains the stream key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SessionError {
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),
    #[error("RTMP protocol error: {0}")]
    Protocol(String),
    #[error("server rejected connect: {0}")]
    ConnectRejected(String),
    #[error("server refused: {code} {description}")]
    Refused { code: String, description: String },
    #[error("timed out while {0}")]
    Timeout(Step),
    #[error("server closed the connection while {0}")]
    ClosedBy(Step),
    #[error("cannot send media: not publishing")]
    NotPublishing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// `NetStream.Publish.Start`: media may flow now.
    Publishing,
}

/// Where a session is, for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Handshaking,
    Connecting,
    AwaitingPublish,
    Publishing,
    Closing,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Handshaking => "handshaking",
            Step::Connecting => "connecting to the app",
            Step::AwaitingPublish => "waiting for the server to accept the publish",
            Step::Publishing => "publishing",
            Step::Closing => "closing",
        })
    }
}

enum Phase {
    Handshaking(Box<Handshake>),
    Connecting,
    AwaitingPublish,
    Publishing,
    Closed,
}

impl Phase {
    fn step(&self) -> Step {
        match self {
            Phase::Handshaking(_) => Step::Handshaking,
            Phase::Connecting => Step::Connecting,
            Phase::AwaitingPublish => Step::AwaitingPublish,
            Phase::Publishing => Step::Publishing,
            Phase::Closed => Step::Closing,
        }
    }
}

pub struct PublishSession {
    params: SessionParams,
    phase: Phase,
    client: Option<ClientSession>,
    /// A second parse of the server's bytes (they are few), ahead of `rml_rtmp`'s: it sees the
    /// status objects `rml_rtmp` drops and rejects messages that would make it panic.
    inbound: ChunkDeserializer,
    /// The message stream id `publish` was sent on (from `NetStream.Publish.Start`).
    stream_id: u32,
    /// The chunk size the server expects from us (128 until our SetChunkSize is written).
    announced_chunk_size: usize,
    deadline: Option<Instant>,
    /// Bytes to write, in order (one buffer, reused: the publish path allocates nothing).
    transmit: Vec<u8>,
    events: VecDeque<SessionEvent>,
}

fn protocol(error: impl std::fmt::Display) -> SessionError {
    SessionError::Protocol(error.to_string())
}

impl PublishSession {
    /// Starts a session: C0 and C1 are ready in [`Self::poll_transmit`].
    pub fn new(now: Instant, params: SessionParams) -> Result<Self, SessionError> {
        let mut handshake = Handshake::new(PeerType::Client);
        let c0c1 = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| SessionError::Handshake(e.to_string()))?;
        Ok(PublishSession {
            deadline: Some(now + params.setup_timeout),
            params,
            phase: Phase::Handshaking(Box::new(handshake)),
            client: None,
            inbound: ChunkDeserializer::new(),
            stream_id: 1,
            announced_chunk_size: 128,
            transmit: c0c1,
            events: VecDeque::new(),
        })
    }

    /// The error for the server hanging up now. nginx-rtmp, for one, refuses an unknown app or
    /// a denied publish by closing the connection.
    pub fn closed_by_server(&self) -> SessionError {
        SessionError::ClosedBy(self.phase.step())
    }

    pub fn is_publishing(&self) -> bool {
        matches!(self.phase, Phase::Publishing)
    }

    /// Everything there is to write, in order. Write all of it, then call
    /// [`Self::transmitted`].
    pub fn pending_transmit(&self) -> &[u8] {
        &self.transmit
    }

    /// The pending bytes are written: the buffer empties and keeps its capacity.
    pub fn transmitted(&mut self) {
        self.transmit.clear();
        if self.transmit.capacity() > TRANSMIT_KEEP {
            self.transmit.shrink_to(TRANSMIT_KEEP);
        }
    }

    /// Takes everything there is to write, in order (for drivers and tests that want to own
    /// the bytes; the publisher uses [`Self::pending_transmit`]).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called (the setup deadline), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        match self.deadline {
            Some(deadline) if now >= deadline => Err(SessionError::Timeout(self.phase.step())),
            _ => Ok(()),
        }
    }

    /// Bytes read from the server, in order.
    pub fn handle_input(&mut self, _now: Instant, bytes: &[u8]) -> Result<(), SessionError> {
        let remaining;
        let mut bytes = bytes;
        if let Phase::Handshaking(handshake) = &mut self.phase {
            match handshake
                .process_bytes(bytes)
                .map_err(|e| SessionError::Handshake(e.to_string()))?
            {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.queue(response_bytes);
                    return Ok(());
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.queue(response_bytes);
                    self.start_client()?;
                    remaining = remaining_bytes;
                    bytes = &remaining;
                }
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        guarded(|| self.inspect_inbound(bytes))?;
        let Some(client) = self.client.as_mut() else {
            return Ok(()); // closed
        };
        let results = guarded(|| client.handle_input(bytes).map_err(protocol))?;
        // Every packet of a batch goes out before any of its events is acted on: the connect
        // result's batch switches the serializer to the new chunk size before SetChunkSize.
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => self.queue(packet.bytes),
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        for event in events {
            self.on_client_event(event)?;
        }
        Ok(())
    }

    /// Sends one FLV tag on the publishing stream.
    pub fn send_tag(&mut self, tag: &FlvTag) -> Result<(), SessionError> {
        if !self.is_publishing() {
            return Err(SessionError::NotPublishing);
        }
        // Dropping is the queue's job, before muxing; on the wire nothing may be skipped.
        let (csid, type_id) = match tag.kind {
            TagKind::Video => (VIDEO_CSID, RTMP_MESSAGE_VIDEO),
            TagKind::Audio => (AUDIO_CSID, RTMP_MESSAGE_AUDIO),
            TagKind::Script => (SIDE_CSID, RTMP_MESSAGE_AMF0_DATA),
        };
        write_full_chunks(
            &mut self.transmit,
            csid,
            type_id,
            self.stream_id,
            tag.timestamp_ms,
            &tag.body_parts(),
            self.announced_chunk_size,
        );
        Ok(())
    }

    /// Ends the publish politely (FCUnpublish, deleteStream); the caller then closes the socket.
    pub fn finish(&mut self) -> Result<(), SessionError> {
        if self.is_publishing() {
            let key = self.params.stream_key.clone();
            self.side_command("FCUnpublish", 3.0, key.expose());
            if let Some(client) = self.client.as_mut() {
                for result in client.stop_publishing().map_err(protocol)? {
                    if let ClientSessionResult::OutboundResponse(packet) = result {
                        self.transmit.extend_from_slice(&packet.bytes);
                    }
                }
            }
        }
        self.phase = Phase::Closed;
        self.deadline = None;
        Ok(())
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        self.transmit.extend_from_slice(&bytes);
    }

    fn start_client(&mut self) -> Result<(), SessionError> {
        let mut config = ClientSessionConfig::new();
        config.chunk_size = CHUNK_SIZE;
        config.flash_version = "FMLE/3.0 (compatible; sipcast)".to_string();
        // Without tcUrl some servers refuse the connect or crash outright.
        config.tc_url = Some(self.params.tc_url.clone());
        let (mut client, results) = ClientSession::new(config).map_err(protocol)?;
        let connect = client
            .request_connection(self.params.app.clone())
            .map_err(protocol)?;
        for result in results.into_iter().chain([connect]) {
            if let ClientSessionResult::OutboundResponse(packet) = result {
                self.queue(packet.bytes);
            }
        }
        self.client = Some(client);
        self.phase = Phase::Connecting;
        Ok(())
    }

    fn on_client_event(&mut self, event: ClientSessionEvent) -> Result<(), SessionError> {
        match event {
            ClientSessionEvent::ConnectionRequestAccepted => {
                // The batch that carried this event also carried our SetChunkSize.
                self.announced_chunk_size = CHUNK_SIZE as usize;
                let key = self.params.stream_key.clone();
                self.side_command("releaseStream", 1.0, key.expose());
                self.side_command("FCPublish", 2.0, key.expose());
                let client = self.client.as_mut().ok_or(SessionError::NotPublishing)?;
                let request = client
                    .request_publishing(key.expose().to_string(), PublishRequestType::Live)
                    .map_err(protocol)?;
                if let ClientSessionResult::OutboundResponse(packet) = request {
                    self.queue(packet.bytes);
                }
                self.phase = Phase::AwaitingPublish;
            }
            ClientSessionEvent::ConnectionRequestRejected { description } => {
                return Err(SessionError::ConnectRejected(self.redact(&description)));
            }
            ClientSessionEvent::PublishRequestAccepted => {
                self.phase = Phase::Publishing;
                self.deadline = None;
                self.events.push_back(SessionEvent::Publishing);
            }
            ClientSessionEvent::UnhandleableOnStatusCode { code } if is_failure_code(&code) => {
                return Err(SessionError::Refused {
                    code,
                    description: String::new(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads the server's messages for what `rml_rtmp` does not report (the status object of a
    /// refusal, the stream id of `NetStream.Publish.Start`) and for what it cannot take.
    fn inspect_inbound(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let mut input = bytes;
        let mut refusal = None;
        while let Some(payload) = self.inbound.get_next_message(input).map_err(protocol)? {
            input = &[];
            reject_unparseable(&payload)?;
            match payload.to_rtmp_message().map_err(protocol)? {
                RtmpMessage::SetChunkSize { size } => {
                    self.inbound
                        .set_max_chunk_size(size as usize)
                        .map_err(protocol)?;
                }
                RtmpMessage::Amf0Command {
                    command_name,
                    additional_arguments,
                    ..
                } if command_name == "onStatus" || command_name == "_error" => {
                    let (level, code, description) = status_fields(&additional_arguments);
                    if code == "NetStream.Publish.Start" {
                        self.stream_id = payload.message_stream_id;
                    } else if level == "error" || is_failure_code(&code) {
                        refusal.get_or_insert((code, description));
                    }
                }
                _ => {}
            }
        }
        match refusal {
            // A connect `_error` is reported by the client session itself, with its description.
            Some((code, description)) if !matches!(self.phase, Phase::Connecting) => {
                Err(SessionError::Refused {
                    code,
                    description: self.redact(&description),
                })
            }
            _ => Ok(()),
        }
    }

    fn redact(&self, text: &str) -> String {
        let key = self.params.stream_key.expose();
        if key.is_empty() {
            text.to_string()
        } else {
            text.replace(key, "****")
        }
    }

    /// `name(transaction, null, key)` on stream 0, as FMLE and OBS send them.
    fn side_command(&mut self, name: &str, transaction_offset: f64, key: &str) {
        let mut body = Vec::with_capacity(64 + key.len());
        amf0::write_string(&mut body, name);
        amf0::write_number(&mut body, SIDE_TRANSACTION_BASE + transaction_offset);
        amf0::write_null(&mut body);
        amf0::write_string(&mut body, key);
        self.side_message(RTMP_MESSAGE_AMF0_COMMAND, 0, 0, &body);
    }

    fn side_message(&mut self, type_id: u8, stream_id: u32, timestamp: u32, body: &[u8]) {
        write_full_chunks(
            &mut self.transmit,
            SIDE_CSID,
            type_id,
            stream_id,
            timestamp,
            &[body],
            self.announced_chunk_size,
        );
    }
}

/// Runs `f`, turning a panic inside `rml_rtmp` (it has some on malformed input) into a protocol
/// error: the connection is dropped, the process and the other targets carry on.
fn guarded<T>(f: impl FnOnce() -> Result<T, SessionError>) -> Result<T, SessionError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(SessionError::Protocol(
            "malformed message from the server".to_string(),
        ))
    })
}

/// Refuses messages `rml_rtmp` 0.8 would panic on, before it sees them: a command (AMF0, or
/// AMF3-flagged) with fewer than three values (`drain(..3)` on a shorter vector).
fn reject_unparseable(payload: &MessagePayload) -> Result<(), SessionError> {
    let amf = match payload.type_id {
        RTMP_MESSAGE_AMF0_COMMAND => &payload.data[..],
        RTMP_MESSAGE_AMF3_COMMAND => match payload.data.first() {
            Some(0) => &payload.data[1..],
            _ => &payload.data[..],
        },
        _ => return Ok(()),
    };
    match rml_rtmp::rml_amf0::deserialize(&mut &amf[..]) {
        Ok(values) if values.len() < 3 => Err(SessionError::Protocol(format!(
            "command message with {} AMF values, need at least 3",
            values.len()
        ))),
        // Malformed AMF is reported by the parse that follows.
        _ => Ok(()),
    }
}

/// Status codes that end a publish attempt (anything about publishing but its start, and the
/// connection-level refusals).
fn is_failure_code(code: &str) -> bool {
    (code.starts_with("NetStream.Publish.") && code != "NetStream.Publish.Start")
        || matches!(
            code,
            "NetConnection.Connect.Rejected"
                | "NetConnection.Connect.Failed"
                | "NetConnection.Connect.Closed"
                | "NetStream.Failed"
        )
}

/// `level`, `code` and `description` of the first status object among `args`.
fn status_fields(args: &[Amf0Value]) -> (String, String, String) {
    let object = args.iter().find_map(|value| match value {
        Amf0Value::Object(properties) => Some(properties),
        _ => None,
    });
    let text = |name: &str| match object.and_then(|o| o.get(name)) {
        Some(Amf0Value::Utf8String(s)) => s.clone(),
        _ => String::new(),
    };
    (text("level"), text("code"), text("description"))
}

/// Writes one message, whose body is `body`'s parts in order, as a type-0 chunk plus type-3
/// continuations (RTMP 1.0 §5.3.1). Every message is self-contained (a full header), so our
/// chunk streams never depend on compression state.
pub fn write_full_chunks(
    out: &mut Vec<u8>,
    csid: u8,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    body: &[&[u8]],
    chunk_size: usize,
) {
    const EXTENDED: u32 = 0xff_ffff;
    let chunk_size = chunk_size.max(1);
    let len: usize = body.iter().map(|part| part.len()).sum();
    let extended = timestamp >= EXTENDED;
    let field = timestamp.min(EXTENDED);
    out.reserve(len + 16 + len / chunk_size * 5);
    out.push(csid & 0x3f);
    out.extend_from_slice(&field.to_be_bytes()[1..]);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    if extended {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    let mut room = chunk_size;
    for part in body {
        let mut rest = *part;
        while !rest.is_empty() {
            if room == 0 {
                out.push(0xc0 | (csid & 0x3f));
                if extended {
                    out.extend_from_slice(&timestamp.to_be_bytes());
                }
                room = chunk_size;
            }
            let (piece, after) = rest.split_at(rest.len().min(room));
            out.extend_from_slice(piece);
            room -= piece.len();
            rest = after;
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
