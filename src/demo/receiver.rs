//! The demo's RTMP receiver: a TCP listener that accepts publishers one at a time, runs the
//! RTMP handshake and `rml_rtmp`'s sans-IO server session (accepting any app and stream key),
//! and records the audio and video messages into an FLV file with [`FlvRecorder`].
//!
//! Like the publisher side (NOTES.md), every packet of a result batch is written before its
//! events are acted on, so chunk-size changes reach the wire in order.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::DemoEvent;
use super::recording::{FlvRecorder, RecordingStats};
use crate::rtmp::flv::TagKind;

type Recorder = FlvRecorder<BufWriter<File>>;

/// A running receiver.
pub struct ReceiverHandle {
    pub addr: SocketAddr,
    stats: Arc<Mutex<RecordingStats>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<RecordingStats>>,
}

impl ReceiverHandle {
    /// The counts so far.
    pub fn stats(&self) -> RecordingStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Closes any connection, finishes the FLV file and returns the final counts.
    pub async fn finish(mut self) -> io::Result<RecordingStats> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(format!("the RTMP receiver failed: {e}"))),
        }
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `ip` (a free port) and records into `path` (created or truncated).
pub async fn start(
    ip: IpAddr,
    path: &Path,
    events: mpsc::UnboundedSender<DemoEvent>,
) -> io::Result<ReceiverHandle> {
    let listener = TcpListener::bind((ip, 0)).await?;
    let addr = listener.local_addr()?;
    let file = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let stats = Arc::new(Mutex::new(RecordingStats::default()));
    let (stop_tx, stop_rx) = oneshot::channel();
    let receiver = Receiver {
        recorder: FlvRecorder::new(BufWriter::new(file)),
        stats: stats.clone(),
        events,
    };
    Ok(ReceiverHandle {
        addr,
        stats,
        stop: Some(stop_tx),
        task: tokio::spawn(receiver.run(listener, stop_rx)),
    })
}

struct Receiver {
    recorder: Recorder,
    stats: Arc<Mutex<RecordingStats>>,
    events: mpsc::UnboundedSender<DemoEvent>,
}

impl Receiver {
    async fn run(
        mut self,
        listener: TcpListener,
        mut stop: oneshot::Receiver<()>,
    ) -> io::Result<RecordingStats> {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((socket, peer)) = accepted else { continue };
                    let _ = self.events.send(DemoEvent::ReceiverConnected(peer));
                    self.recorder.new_connection();
                    let ended = tokio::select! {
                        ended = self.serve(socket) => ended,
                        _ = &mut stop => break,
                    };
                    let _ = self.events.send(DemoEvent::ReceiverClosed(
                        ended.err().map(|e| e.to_string()),
                    ));
                }
                _ = &mut stop => break,
            }
        }
        let (_, stats) = self.recorder.finish()?;
        Ok(stats)
    }

    /// One publisher, until it disconnects or breaks the protocol.
    async fn serve(&mut self, mut socket: TcpStream) -> io::Result<()> {
        let _ = socket.set_nodelay(true);
        let mut handshake = Handshake::new(PeerType::Server);
        let mut session: Option<ServerSession> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let input = &buf[..n];
            let results = match session.as_mut() {
                Some(session) => session.handle_input(input).map_err(rtmp_error)?,
                None => match handshake.process_bytes(input).map_err(rtmp_error)? {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        socket.write_all(&response_bytes).await?;
                        continue;
                    }
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        socket.write_all(&response_bytes).await?;
                        let (mut new_session, mut results) =
                            ServerSession::new(ServerSessionConfig::new()).map_err(rtmp_error)?;
                        results.extend(
                            new_session
                                .handle_input(&remaining_bytes)
                                .map_err(rtmp_error)?,
                        );
                        session = Some(new_session);
                        results
                    }
                },
            };
            if let Some(session) = session.as_mut() {
                self.process(session, &mut socket, results).await?;
            }
        }
    }

    /// Writes a batch's packets, then acts on its events (which may produce more batches).
    async fn process(
        &mut self,
        session: &mut ServerSession,
        socket: &mut TcpStream,
        results: Vec<ServerSessionResult>,
    ) -> io::Result<()> {
        let mut batches = VecDeque::from([results]);
        while let Some(batch) = batches.pop_front() {
            let mut events = Vec::new();
            for result in batch {
                match result {
                    ServerSessionResult::OutboundResponse(packet) => {
                        socket.write_all(&packet.bytes).await?;
                    }
                    ServerSessionResult::RaisedEvent(event) => events.push(event),
                    ServerSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
            for event in events {
                if let Some(more) = self.on_event(session, event)? {
                    batches.push_back(more);
                }
            }
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerSessionEvent,
    ) -> io::Result<Option<Vec<ServerSessionResult>>> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => session
                .accept_request(request_id)
                .map(Some)
                .map_err(rtmp_error),
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                ..
            } => {
                // The stream key is a secret in real life: the progress line names the app only.
                let _ = self.events.send(DemoEvent::ReceiverPublishing(app_name));
                session
                    .accept_request(request_id)
                    .map(Some)
                    .map_err(rtmp_error)
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.record(TagKind::Video, timestamp.value, data),
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.record(TagKind::Audio, timestamp.value, data),
            _ => Ok(None),
        }
    }

    fn record(
        &mut self,
        kind: TagKind,
        timestamp_ms: u32,
        data: bytes::Bytes,
    ) -> io::Result<Option<Vec<ServerSessionResult>>> {
        self.recorder.push(kind, timestamp_ms, data)?;
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = self.recorder.stats().clone();
        Ok(None)
    }
}

fn rtmp_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("RTMP: {e}"))
}
