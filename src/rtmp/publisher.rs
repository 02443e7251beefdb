//! The tokio driver for one RTMP target: owns the socket and the clock, runs a
//! [`PublishSession`] per connection, and reconnects with its own backoff.
//!
//! The producer side ([`PublisherHandle::send`]) only locks the target's [`FrameQueue`] for a
//! push and never waits for the network, so a slow or dead target cannot hold up the call or
//! other targets. On every successful (re)connect the driver resumes the queue, bumps the
//! keyframe-request counter ([`PublisherHandle::keyframe_requests`]) and lets the
//! [`PublishTimeline`] send metadata, sequence headers and then a keyframe.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::queue::{FrameQueue, QueueLimits};
use super::session::{PublishSession, SessionError, SessionEvent, SessionParams, Step};
use super::status::{TargetState, TargetStatus};
use super::timeline::PublishTimeline;
use super::tls::{self, TlsError};
use super::url::{RtmpUrl, UrlError, redacted_url};
use crate::backoff::{Backoff, Jitter};
use crate::clock::monotonic;
use crate::frame::MediaFrame;
use crate::secret::{SecretError, SecretSource};

/// One configured target.
#[derive(Clone, Debug)]
pub struct PublishTarget {
    /// `rtmp[s]://host[:port]/app[/…][/key]` as configured.
    pub url: String,
    /// The key, when not part of the URL; read at every connect.
    pub stream_key: Option<SecretSource>,
    /// PEM file of trusted CAs for `rtmps://`; the system roots when `None`.
    pub ca_file: Option<PathBuf>,
}

/// Timeouts, backoff and queue size; the defaults suit CDN ingests.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// RTMP handshake through `NetStream.Publish.Start`.
    pub setup_timeout: Duration,
    /// A write that cannot make progress this long means the connection is dead.
    pub write_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A connection that published this long resets the backoff.
    pub backoff_reset_after: Duration,
    pub queue: QueueLimits,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            connect_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            backoff_reset_after: Duration::from_secs(10),
            queue: QueueLimits::default(),
        }
    }
}

/// Why a connection ended. Never contains the stream key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PublishError {
    #[error("stream key: {0}")]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Url(#[from] UrlError),
    #[error("connect to {addr} failed: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("server closed the connection")]
    Closed,
    /// nginx-rtmp, for one, answers a denied publish with `NetStream.Publish.Start` and then
    /// hangs up.
    #[error("server closed the connection right after accepting the publish (publish denied?)")]
    ClosedAfterAccept,
    #[error("socket error: {0}")]
    Io(String),
    #[error("write stalled for {0:?}")]
    WriteStalled(Duration),
}

impl PublishError {
    /// The server said no, or the target cannot work as configured: `failed`, not
    /// `reconnecting`.
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            PublishError::Secret(_)
                | PublishError::Url(_)
                | PublishError::ClosedAfterAccept
                | PublishError::Tls(TlsError::CaFile { .. } | TlsError::NoCertificates(_))
                | PublishError::Session(
                    SessionError::ConnectRejected(_)
                        | SessionError::Refused { .. }
                        | SessionError::ClosedBy(Step::Connecting | Step::AwaitingPublish)
                )
        )
    }
}

/// A hang-up this soon after `NetStream.Publish.Start` is taken for a refusal.
const CLOSE_AFTER_ACCEPT_IS_REFUSAL: Duration = Duration::from_secs(1);

/// State shared between the handle (producer) and the driver.
struct Shared {
    queue: Mutex<FrameQueue>,
    wake: Notify,
    keyframe_requests: watch::Sender<u64>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, FrameQueue> {
        // A panic while holding the lock cannot leave the queue inconsistent in a way that
        // matters more than stopping the stream would.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn request_keyframe(&self) {
        self.keyframe_requests.send_modify(|n| *n += 1);
    }
}

/// Feeds frames to one publisher; cheap to clone, never blocks.
#[derive(Clone)]
pub struct FrameSender {
    shared: Arc<Shared>,
}

impl FrameSender {
    /// Queues a frame (or drops media per the queue's policy). Never waits.
    pub fn send(&self, frame: MediaFrame) {
        let outcome = self.shared.queue().push(frame);
        if outcome.keyframe_needed {
            self.shared.request_keyframe();
        }
        self.shared.wake.notify_one();
    }
}

/// The running publisher for one target.
pub struct PublisherHandle {
    sender: FrameSender,
    status: watch::Receiver<TargetStatus>,
    keyframes: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PublisherHandle {
    pub fn send(&self, frame: MediaFrame) {
        self.sender.send(frame);
    }

    pub fn sender(&self) -> FrameSender {
        self.sender.clone()
    }

    pub fn status(&self) -> watch::Receiver<TargetStatus> {
        self.status.clone()
    }

    /// A counter that goes up whenever this target needs a keyframe (after a (re)connect, after
    /// dropping video): the producer asks the caller for an IDR on every change.
    pub fn keyframe_requests(&self) -> watch::Receiver<u64> {
        self.keyframes.clone()
    }

    /// Unpublishes (FCUnpublish, deleteStream), closes the connection and waits for the driver
    /// to end, at most [`STOP_GRACE`]: a server that stopped reading gets its connection cut
    /// instead, so a stop never outlasts the grace. Dropping the handle stops the publisher
    /// the same way, without waiting.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!(
                rtmp_url = %self.status.borrow().url,
                "RTMP target did not close within {STOP_GRACE:?}; connection cut"
            );
            self.task.abort();
        }
    }
}

/// Starts publishing to `target` on the current tokio runtime.
pub fn spawn(target: PublishTarget, config: PublisherConfig) -> PublisherHandle {
    let url = redacted_url(&target.url, target.stream_key.is_some());
    let (status_tx, status) = watch::channel(TargetStatus::new(url));
    let (keyframes_tx, keyframes) = watch::channel(0);
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        queue: Mutex::new(FrameQueue::new(config.queue)),
        wake: Notify::new(),
        keyframe_requests: keyframes_tx,
    });
    let driver = Driver {
        target,
        config,
        shared: shared.clone(),
        status: status_tx,
        stop: stop_rx,
        timeline: PublishTimeline::new(),
        bytes_sent: 0,
    };
    PublisherHandle {
        sender: FrameSender { shared },
        status,
        keyframes,
        stop,
        task: tokio::spawn(tracing::Instrument::in_current_span(driver.run())),
    }
}

/// The longest a stop waits for a clean unpublish before cutting the connection.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// How a connection ended.
enum Ended {
    Stopped,
    Lost {
        error: PublishError,
        published_for: Option<Duration>,
    },
}

struct Driver {
    target: PublishTarget,
    config: PublisherConfig,
    shared: Arc<Shared>,
    status: watch::Sender<TargetStatus>,
    stop: watch::Receiver<bool>,
    timeline: PublishTimeline,
    bytes_sent: u64,
}

/// Resolves when a stop was asked for or the handle is gone.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = Backoff::new(
            self.config.backoff_initial,
            self.config.backoff_max,
            Jitter::HALF_TO_FULL,
        );
        self.set_state(TargetState::Connecting, None);
        loop {
            let ended = self.connection().await;
            self.shared.queue().pause();
            let (error, published_for) = match ended {
                Ended::Stopped => break,
                Ended::Lost {
                    error,
                    published_for,
                } => (error, published_for),
            };
            if published_for.is_some_and(|d| d >= self.config.backoff_reset_after) {
                backoff.reset();
            }
            let state = if error.is_refusal() {
                TargetState::Failed
            } else {
                TargetState::Reconnecting
            };
            tracing::warn!(rtmp_url = %self.status.borrow().url, %error, "rtmp target lost");
            self.set_state(state, Some(error.to_string()));
            let delay = backoff.next_delay(rand::random::<f64>());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop_requested(&mut self.stop) => break,
            }
            self.status.send_modify(|s| s.reconnects += 1);
        }
        self.set_state(TargetState::Idle, None);
    }

    /// `error` describes the new state: a failure also becomes `last_error` (with its time),
    /// which outlives the recovery; publishing clears `error`.
    fn set_state(&self, state: TargetState, error: Option<String>) {
        let drops = self.shared.queue().drops().total();
        self.status.send_modify(|s| {
            s.state = state;
            s.dropped_frames = drops;
            s.bytes_sent = self.bytes_sent;
            match error {
                Some(error) => {
                    s.last_error = Some(error.clone());
                    s.last_error_at = Some(crate::clock::WallClock::System.now());
                    s.error = Some(error);
                }
                None if state == TargetState::Publishing || state == TargetState::Idle => {
                    s.error = None;
                }
                None => {}
            }
        });
    }

    async fn connection(&mut self) -> Ended {
        let mut stop = self.stop.clone();
        let lost = |error| Ended::Lost {
            error,
            published_for: None,
        };
        let transport = tokio::select! {
            result = self.open() => match result {
                Ok(pair) => pair,
                Err(error) => return lost(error),
            },
            _ = stop_requested(&mut stop) => return Ended::Stopped,
        };
        let (url, transport) = transport;
        let params = SessionParams {
            app: url.app.clone(),
            tc_url: url.tc_url.clone(),
            stream_key: url.stream_key.clone(),
            setup_timeout: self.config.setup_timeout,
        };
        let session = match PublishSession::new(monotonic().into_std(), params) {
            Ok(session) => session,
            Err(error) => return lost(error.into()),
        };
        let (reader, writer) = tokio::io::split(transport);
        let mut io = Io {
            reader,
            writer,
            buf: vec![0; 16 * 1024],
            write_timeout: self.config.write_timeout,
        };
        let mut session = session;
        if let Err(ended) = self.setup(&mut session, &mut io, &mut stop).await {
            return ended;
        }
        let since = monotonic();
        let error = match self.publish(&mut session, &mut io, &mut stop).await {
            Ok(()) => return Ended::Stopped,
            Err(error) => error,
        };
        let published_for = monotonic().saturating_duration_since(since);
        let error = match error {
            PublishError::Closed if published_for < CLOSE_AFTER_ACCEPT_IS_REFUSAL => {
                PublishError::ClosedAfterAccept
            }
            other => other,
        };
        Ended::Lost {
            error,
            published_for: Some(published_for),
        }
    }

    /// TCP (and TLS) to the target's host.
    async fn open(&self) -> Result<(RtmpUrl, Box<dyn Transport>), PublishError> {
        let key = match &self.target.stream_key {
            Some(source) => Some(source.read()?),
            None => None,
        };
        let url = RtmpUrl::parse(&self.target.url, key.as_ref())?;
        let addr = format!("{}:{}", url.host, url.port);
        let connect = async {
            let tcp = TcpStream::connect((url.host.as_str(), url.port))
                .await
                .map_err(|e| PublishError::Connect {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            // Media is written in whole messages; Nagle would only add latency.
            let _ = tcp.set_nodelay(true);
            if !url.tls {
                return Ok(Box::new(tcp) as Box<dyn Transport>);
            }
            let connector = tls::connector(self.target.ca_file.as_ref())?;
            let stream = tls::handshake(&connector, &url.host, tcp).await?;
            Ok(Box::new(stream) as Box<dyn Transport>)
        };
        match timeout(self.config.connect_timeout, connect).await {
            Ok(result) => result.map(|transport| (url, transport)),
            Err(_) => Err(PublishError::Connect {
                addr,
                reason: format!("timed out after {:?}", self.config.connect_timeout),
            }),
        }
    }

    /// Handshake, connect and publish, up to `NetStream.Publish.Start`.
    async fn setup(
        &mut self,
        session: &mut PublishSession,
        io: &mut Io,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Ended> {
        let lost = |error: PublishError| Ended::Lost {
            error,
            published_for: None,
        };
        loop {
            self.bytes_sent += io.flush(session).await.map_err(lost)?;
            if let Some(SessionEvent::Publishing) = session.poll_event() {
                return Ok(());
            }
            let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                read = io.read() => {
                    let bytes = match read {
                        Err(PublishError::Closed) => return Err(lost(session.closed_by_server().into())),
                        other => other.map_err(lost)?,
                    };
                    session
                        .handle_input(monotonic().into_std(), &io.buf[..bytes])
                        .map_err(|e| lost(e.into()))?;
                }
                _ = sleep_until(deadline) => {
                    session.handle_timeout(monotonic().into_std()).map_err(|e| lost(e.into()))?;
                }
                _ = stop_requested(stop) => return Err(Ended::Stopped),
            }
        }
    }

    /// Media until the connection fails (`Err`) or a stop was asked for (`Ok`).
    async fn publish(
        &mut self,
        session: &mut PublishSession,
        io: &mut Io,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), PublishError> {
        tracing::info!(rtmp_url = %self.status.borrow().url, "rtmp target publishing");
        let headers = {
            let mut queue = self.shared.queue();
            queue.resume();
            queue.headers().clone()
        };
        self.timeline.on_connect(headers);
        self.shared.request_keyframe();
        self.set_state(TargetState::Publishing, None);
        let mut tags = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = stop_requested(stop) => {
                    session.finish()?;
                    self.bytes_sent += io.flush(session).await?;
                    let _ = timeout(io.write_timeout, io.writer.shutdown()).await;
                    return Ok(());
                }
                read = io.read() => {
                    let bytes = read?;
                    session.handle_input(monotonic().into_std(), &io.buf[..bytes])?;
                }
                _ = self.shared.wake.notified() => {
                    loop {
                        let popped = self.shared.queue().pop();
                        let Some(frame) = popped else { break };
                        self.timeline.tags_for(&frame, &mut tags);
                        for tag in tags.drain(..) {
                            session.send_tag(&tag)?;
                        }
                    }
                }
            }
            self.bytes_sent += io.flush(session).await?;
            let drops = self.shared.queue().drops().total();
            let bytes_sent = self.bytes_sent;
            let longest_gop_ms = self.timeline.longest_gop_ms();
            self.status.send_if_modified(|s| {
                let changed = s.bytes_sent != bytes_sent
                    || s.dropped_frames != drops
                    || s.longest_keyframe_interval_ms != longest_gop_ms;
                s.bytes_sent = bytes_sent;
                s.dropped_frames = drops;
                s.longest_keyframe_interval_ms = longest_gop_ms;
                changed
            });
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The connection's two halves and its read buffer.
struct Io {
    reader: tokio::io::ReadHalf<Box<dyn Transport>>,
    writer: tokio::io::WriteHalf<Box<dyn Transport>>,
    buf: Vec<u8>,
    write_timeout: Duration,
}

impl Io {
    /// Reads some bytes into `buf`; EOF is an error (the server hung up).
    async fn read(&mut self) -> Result<usize, PublishError> {
        match self.reader.read(&mut self.buf).await {
            Ok(0) => Err(PublishError::Closed),
            Ok(n) => Ok(n),
            Err(e) => Err(PublishError::Io(e.to_string())),
        }
    }

    /// Writes everything the session has to send (all the frames of one wake-up in one write)
    /// and flushes the transport. Returns the byte count.
    async fn flush(&mut self, session: &mut PublishSession) -> Result<u64, PublishError> {
        let pending = session.pending_transmit();
        let written = pending.len() as u64;
        if !pending.is_empty() {
            match timeout(self.write_timeout, self.writer.write_all(pending)).await {
                Ok(Ok(())) => session.transmitted(),
                Ok(Err(e)) => return Err(PublishError::Io(e.to_string())),
                Err(_) => return Err(PublishError::WriteStalled(self.write_timeout)),
            }
        }
        match timeout(self.write_timeout, self.writer.flush()).await {
            Ok(Ok(())) => Ok(written),
            Ok(Err(e)) => Err(PublishError::Io(e.to_string())),
            Err(_) => Err(PublishError::WriteStalled(self.write_timeout)),
        }
    }
}

#[cfg(test)]
#[path = "publisher_tests.rs"]
mod tests;
