//! Serving the API without letting clients take the daemon's descriptors.
//!
//! Every accepted connection costs a file descriptor, and the daemon needs descriptors for
//! calls (RTP/RTCP sockets, SIP connections) and RTMP publishers. So the API holds at most
//! [`ServeLimits::max_connections`] at once: a new client beyond that closes the oldest
//! connection (slow-header clients then cannot queue a real request behind them, and a
//! monitoring probe is answered at once). A client that does not send its request headers
//! within [`ServeLimits::header_timeout`] is cut off as well.

use std::collections::VecDeque;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How much a client may hold.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    pub max_connections: usize,
    /// Time to send a request's headers, including the wait for the next request on a kept-
    /// alive connection.
    pub header_timeout: Duration,
}

impl ServeLimits {
    /// A quarter of the descriptors the process may open, at most 256; the rest stay for
    /// calls and publishers.
    pub fn for_descriptor_limit(open_files: u64) -> ServeLimits {
        ServeLimits {
            max_connections: usize::try_from((open_files / 4).clamp(8, 256)).unwrap_or(256),
            header_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves `app` on `listener` until the task is dropped. Never returns on its own: accept
/// errors (EMFILE included) are logged at most once a second and retried after a pause.
pub async fn serve(listener: TcpListener, app: Router, limits: ServeLimits) {
    // One closer per open connection, oldest first; a closer whose connection ended is stale.
    let mut open: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let mut last_error_log: Option<tokio::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                let now = crate::clock::monotonic();
                if last_error_log.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
                {
                    tracing::warn!(%error, "API: cannot accept a connection");
                    last_error_log = Some(now);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        open.retain(|closer| !closer.is_closed());
        while open.len() >= limits.max_connections {
            if let Some(oldest) = open.pop_front() {
                let _ = oldest.send(());
            }
        }
        let (closer, closed) = oneshot::channel();
        open.push_back(closer);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = closed => {}
            }
        });
    }
}
