//! The publish session against `rml_rtmp`'s own server session, in memory and virtual time.

use super::*;
use bytes::Bytes;
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};

/// An in-memory RTMP server: accepts connects; accepts or refuses publishes.
struct Server {
    handshake: Option<Handshake>,
    session: Option<ServerSession>,
    events: Vec<ServerSessionEvent>,
    to_client: Vec<u8>,
    refuse_publish: bool,
}

impl Server {
    fn new(refuse_publish: bool) -> Self {
        Server {
            handshake: Some(Handshake::new(PeerType::Server)),
            session: None,
            events: Vec::new(),
            to_client: Vec::new(),
            refuse_publish,
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        if let Some(handshake) = self.handshake.as_mut() {
            match handshake.process_bytes(bytes).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.to_client.extend(response_bytes);
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.to_client.extend(response_bytes);
                    self.handshake = None;
                    let (session, results) =
                        ServerSession::new(ServerSessionConfig::new()).unwrap();
                    self.session = Some(session);
                    self.apply(results);
                    if !remaining_bytes.is_empty() {
                        self.input(&remaining_bytes);
                    }
                }
            }
            return;
        }
        let results = self.session.as_mut().unwrap().handle_input(bytes).unwrap();
        self.apply(results);
    }

    fn apply(&mut self, results: Vec<ServerSessionResult>) {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.to_client.extend(packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => {
                    let session = self.session.as_mut().unwrap();
                    let reaction = match &event {
                        ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                            Some(session.accept_request(*request_id).unwrap())
                        }
                        ServerSessionEvent::PublishStreamRequested { request_id, .. }
                            if self.refuse_publish =>
                        {
                            Some(
                                session
                                    .reject_request(
                                        *request_id,
                                        "NetStream.Publish.BadName",
                                        "stream live_secret_key is already publishing",
                                    )
                                    .unwrap(),
                            )
                        }
                        ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                            Some(session.accept_request(*request_id).unwrap())
                        }
                        _ => None,
                    };
                    self.events.push(event);
                    if let Some(results) = reaction {
                        self.apply(results);
                    }
                }
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }
}

/// Any instant will do: the session only compares instants it was given.
fn t0() -> Instant {
    crate::clock::monotonic().into_std()
}

fn params() -> SessionParams {
    SessionParams {
        app: "live".into(),
        tc_url: "rtmp://127.0.0.1/live".into(),
        stream_key: Secret::new("live_secret_key"),
        setup_timeout: Duration::from_secs(10),
    }
}

/// Exchanges bytes until both sides are quiet.
fn pump(
    client: &mut PublishSession,
    server: &mut Server,
    now: Instant,
) -> Result<(), SessionError> {
    loop {
        while let Some(bytes) = client.poll_transmit() {
            server.input(&bytes);
        }
        if server.to_client.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut server.to_client);
        client.handle_input(now, &bytes)?;
    }
}

fn published(now: Instant) -> (PublishSession, Server) {
    let mut client = PublishSession::new(now, params()).unwrap();
    let mut server = Server::new(false);
    pump(&mut client, &mut server, now).unwrap();
    (client, server)
}

#[test]
fn publishes_after_handshake_connect_release_and_publish() {
    let now = t0();
    let (mut client, server) = published(now);
    assert_eq!(client.poll_event(), Some(SessionEvent::Publishing));
    assert!(client.is_publishing());
    assert_eq!(client.poll_timeout(), None, "no deadline once publishing");
    assert!(server.events.iter().any(|e| matches!(e,
        ServerSessionEvent::ConnectionRequested { app_name, .. } if app_name == "live")));
    for name in ["releaseStream", "FCPublish"] {
        assert!(
            server.events.iter().any(|e| matches!(e,
            ServerSessionEvent::UnhandleableAmf0Command { command_name, additional_values, .. }
                if command_name == name
                    && additional_values == &[Amf0Value::Utf8String("live_secret_key".into())])),
            "{name}"
        );
    }
    assert!(server.events.iter().any(|e| matches!(e,
        ServerSessionEvent::PublishStreamRequested { stream_key, .. } if stream_key == "live_secret_key")));
}

#[test]
fn media_and_metadata_reach_the_server_with_our_timestamps() {
    let now = t0();
    let (mut client, mut server) = published(now);
    let meta = crate::rtmp::flv::metadata_body(
        &crate::frame::StreamMetadata {
            width: Some(320),
            height: Some(240),
            video: true,
            ..Default::default()
        },
        crate::rtmp::flv::ScriptForm::Rtmp,
    );
    // Three 4096-byte chunks: arrives intact only if the server learned our chunk size. The
    // tag is muxed from a frame, so its body is the FLV head plus the frame's own bytes.
    let access_unit: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let video = crate::rtmp::flv::mux(
        &crate::frame::MediaFrame::Video {
            dts_ms: 0,
            cts_ms: 0,
            keyframe: true,
            data: Bytes::from(access_unit.clone()),
        },
        0,
    );
    let big_video = Bytes::from([&[0x17, 1, 0, 0, 0][..], &access_unit].concat());
    let tags = [
        FlvTag::from_body(TagKind::Script, 0, meta),
        video,
        FlvTag::from_body(TagKind::Audio, 0x0100_0000, Bytes::from_static(&[0x82, 1])),
    ];
    for tag in &tags {
        client.send_tag(tag).unwrap();
    }
    pump(&mut client, &mut server, now).unwrap();
    assert!(server.events.iter().any(|e| matches!(e,
        ServerSessionEvent::StreamMetadataChanged { metadata, .. } if metadata.video_width == Some(320))));
    assert!(server.events.iter().any(|e| matches!(e,
        ServerSessionEvent::VideoDataReceived { data, timestamp, .. }
            if *data == big_video && timestamp.value == 0)));
    assert!(
        server.events.iter().any(|e| matches!(e,
        ServerSessionEvent::AudioDataReceived { timestamp, .. } if timestamp.value == 0x0100_0000))
    );
}

#[test]
fn refused_publish_is_an_error_with_code_and_redacted_description() {
    let now = t0();
    let mut client = PublishSession::new(now, params()).unwrap();
    let mut server = Server::new(true);
    let err = pump(&mut client, &mut server, now).unwrap_err();
    assert_eq!(
        err,
        SessionError::Refused {
            code: "NetStream.Publish.BadName".into(),
            description: "stream **** is already publishing".into(),
        }
    );
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn setup_has_a_deadline() {
    let now = t0();
    let mut client = PublishSession::new(now, params()).unwrap();
    assert!(client.poll_transmit().is_some(), "C0+C1 first");
    let deadline = client.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    assert_eq!(
        client.handle_timeout(deadline - Duration::from_millis(1)),
        Ok(())
    );
    assert_eq!(
        client.handle_timeout(deadline),
        Err(SessionError::Timeout(Step::Handshaking))
    );
}

#[test]
fn media_before_publishing_is_refused() {
    let mut client = PublishSession::new(t0(), params()).unwrap();
    let tag = FlvTag::from_body(TagKind::Audio, 0, Bytes::new());
    assert_eq!(client.send_tag(&tag), Err(SessionError::NotPublishing));
}

#[test]
fn finish_unpublishes_and_deletes_the_stream() {
    let now = t0();
    let (mut client, mut server) = published(now);
    client.finish().unwrap();
    assert!(!client.is_publishing());
    pump(&mut client, &mut server, now).unwrap();
    assert!(server.events.iter().any(|e| matches!(e,
        ServerSessionEvent::PublishStreamFinished { stream_key, .. } if stream_key == "live_secret_key")));
}

#[test]
fn garbage_after_the_handshake_is_a_protocol_error_not_a_panic() {
    let now = t0();
    let (mut client, _server) = published(now);
    // A type-0 chunk header announcing a message type the chunk layer accepts, then a
    // SetChunkSize of zero-length payload: malformed.
    let result = client.handle_input(now, &[0x02, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    assert!(
        matches!(result, Err(SessionError::Protocol(_))),
        "{result:?}"
    );
}

#[test]
fn full_chunks_golden_bytes_with_extended_timestamp_and_continuation() {
    let mut out = Vec::new();
    write_full_chunks(&mut out, 8, 18, 1, 0x0100_0000, &[&[1], &[2, 3]], 2);
    assert_eq!(
        out,
        [
            0x08, 0xff, 0xff, 0xff, 0, 0, 3, 18, 1, 0, 0, 0, 0x01, 0, 0, 0, 1, 2, //
            0xc8, 0x01, 0, 0, 0, 3,
        ]
    );
    let mut out = Vec::new();
    write_full_chunks(&mut out, 8, 20, 0, 5, &[&[9]], 128);
    assert_eq!(out, [0x08, 0, 0, 5, 0, 0, 1, 20, 0, 0, 0, 0, 9]);
}

mod arbitrary_server_bytes {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever a server sends, the session returns an error or carries on; it never panics.
        #[test]
        fn while_publishing(data in vec(any::<u8>(), 0..3000), split in 0usize..3000) {
            let now = t0();
            let (mut client, _server) = published(now);
            let (a, b) = data.split_at(split.min(data.len()));
            for piece in [a, b] {
                if client.handle_input(now, piece).is_err() {
                    break;
                }
                while client.poll_transmit().is_some() {}
            }
        }

        #[test]
        fn during_the_handshake(data in vec(any::<u8>(), 0..4000)) {
            let now = t0();
            let mut client = PublishSession::new(now, params()).unwrap();
            let _ = client.handle_input(now, &data);
        }
    }
}

/// A session that completed its handshake with `rml_rtmp`'s server side, C0..C2 written.
fn handshaken(now: Instant) -> PublishSession {
    let mut client = PublishSession::new(now, params()).unwrap();
    let mut server = Handshake::new(PeerType::Server);
    while let Some(bytes) = client.poll_transmit() {
        match server.process_bytes(&bytes).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                client.handle_input(now, &response_bytes).unwrap();
            }
            // C2 arrived; what follows is the connect request, for nginx in the capture.
            HandshakeProcessResult::Completed { .. } => break,
        }
    }
    while client.poll_transmit().is_some() {}
    client
}

/// Replays a capture from `testdata/rtmp/` (see its README), read by read.
fn replay(name: &str, client: &mut PublishSession, now: Instant) -> Result<(), SessionError> {
    let path = format!("{}/testdata/rtmp/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(path).unwrap();
    let mut rest = &data[..];
    while let [a, b, c, d, tail @ ..] = rest {
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let (read, after) = tail.split_at(len);
        client.handle_input(now, read)?;
        while client.poll_transmit().is_some() {}
        rest = after;
    }
    Ok(())
}

#[test]
fn nginx_accepting_a_publish_replayed() {
    let now = t0();
    let mut client = handshaken(now);
    replay("nginx_1.22_publish_accepted.reads", &mut client, now).unwrap();
    assert_eq!(client.poll_event(), Some(SessionEvent::Publishing));
    assert!(client.is_publishing());
}

#[test]
fn nginx_refusing_a_busy_key_replayed() {
    let now = t0();
    let mut client = handshaken(now);
    let err = replay("nginx_1.22_publish_badname.reads", &mut client, now).unwrap_err();
    assert_eq!(
        err,
        SessionError::Refused {
            code: "NetStream.Publish.BadName".into(),
            description: "Already publishing".into(),
        }
    );
}

/// Fuzzer find (`rtmp_server_bytes`): a command message with fewer than three AMF values made
/// `rml_rtmp` panic (`drain(..3)`). Now it is a protocol error.
#[test]
fn short_command_from_the_server_is_an_error_not_a_panic() {
    let now = t0();
    let crasher: &[u8] = &[
        16, 0, 0, 0, 0, 0, 0, 20, 255, 251, 255, 200, 177, 164, 232, 0, 16, 0, 0, 0, 0, 49, 0, 0,
        0, 0, 0, 4,
    ];
    let mut client = handshaken(now);
    let (a, b) = crasher.split_at(crasher.len() / 2);
    let result = client
        .handle_input(now, a)
        .and_then(|()| client.handle_input(now, b));
    assert!(
        matches!(result, Err(SessionError::Protocol(_))),
        "{result:?}"
    );

    // The plain form: `_result` with only a name and a transaction id, on csid 3.
    let mut body = Vec::new();
    amf0::write_string(&mut body, "_result");
    amf0::write_number(&mut body, 1.0);
    let mut chunk = Vec::new();
    write_full_chunks(&mut chunk, 3, 20, 0, 0, &[&body], 128);
    let mut client = handshaken(now);
    let result = client.handle_input(now, &chunk);
    assert_eq!(
        result,
        Err(SessionError::Protocol(
            "command message with 2 AMF values, need at least 3".into()
        ))
    );
}
