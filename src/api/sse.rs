//! `GET /v1/events`: Server-Sent Events of status changes, for the status page and scripts.
//!
//! On connect one `snapshot` event with every broadcast (`{"broadcasts":[…]}`, the shape of
//! `GET /v1/broadcasts`), then as the status changes a `broadcast` event with a broadcast's
//! JSON (the shape of `GET /v1/broadcasts/{name}`) for each one that changed or appeared, and
//! a `removed` event (`{"name":"…"}`) for each one that is gone. A comment line every
//! [`KEEP_ALIVE`] keeps proxies from closing an idle stream.
//!
//! The status writer never waits for a client: each client has a task that reads the status
//! watch (which only ever holds the latest snapshot) and queues events for the response body
//! with `try_send`. A client whose queue is full (it stopped reading) is dropped; it
//! reconnects and gets a fresh snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::status::{BroadcastStatus, StatusReader};

/// How often an idle stream gets a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events queued for one client before it counts as stalled and is dropped.
const CLIENT_QUEUE: usize = 64;

/// The JSON of every broadcast, by name: what the client was last told.
type Sent = BTreeMap<String, String>;

pub fn events(status: StatusReader) -> Response {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE);
    tokio::spawn(feed(status, tx, KEEP_ALIVE));
    let body = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|event| event.map(Ok::<_, std::io::Error>))
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Tells nginx-style proxies not to buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// One client's task: ends when the client is gone or has fallen [`CLIENT_QUEUE`] events behind.
async fn feed(mut status: StatusReader, tx: mpsc::Sender<Bytes>, keep_alive: Duration) {
    let mut sent = Sent::new();
    let first = status.with(|s| {
        sent = s
            .broadcasts
            .iter()
            .map(|(name, b)| (name.clone(), json(b)))
            .collect();
        let list: Vec<&str> = sent.values().map(String::as_str).collect();
        event(
            "snapshot",
            &format!("{{\"broadcasts\":[{}]}}", list.join(",")),
        )
    });
    if tx.try_send(first).is_err() {
        return;
    }
    let mut ticker = tokio::time::interval(keep_alive);
    ticker.reset();
    loop {
        tokio::select! {
            changed = status.changed() => {
                if !changed {
                    return;
                }
                for message in status.with(|s| changes(&mut sent, &s.broadcasts)) {
                    if tx.try_send(message).is_err() {
                        return;
                    }
                }
            }
            _ = ticker.tick() => {
                if tx.try_send(Bytes::from_static(b": keep-alive\n\n")).is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}

fn json(b: &BroadcastStatus) -> String {
    serde_json::to_string(b).unwrap_or_else(|_| "{}".into())
}

/// The events that bring a client from `sent` to `now`, updating `sent`.
fn changes(sent: &mut Sent, now: &BTreeMap<String, BroadcastStatus>) -> Vec<Bytes> {
    let mut out = Vec::new();
    sent.retain(|name, _| {
        let kept = now.contains_key(name);
        if !kept {
            let name = serde_json::to_string(name).unwrap_or_default();
            out.push(event("removed", &format!("{{\"name\":{name}}}")));
        }
        kept
    });
    for (name, b) in now {
        let text = json(b);
        if sent.get(name) != Some(&text) {
            out.push(event("broadcast", &text));
            sent.insert(name.clone(), text);
        }
    }
    out
}

/// One event; `data` is single-line JSON (serde escapes newlines inside strings).
fn event(kind: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusBoard;

    fn board() -> StatusBoard {
        let (board, _) = StatusBoard::new();
        board.update(|s| {
            s.broadcasts
                .insert("a".into(), BroadcastStatus::new("a", "a.toml"));
        });
        board
    }

    #[tokio::test(start_paused = true)]
    async fn snapshot_then_changes_then_removal_then_keep_alive() {
        let board = board();
        let (tx, mut rx) = mpsc::channel(CLIENT_QUEUE);
        let task = tokio::spawn(feed(board.reader(), tx, KEEP_ALIVE));
        let first = rx.recv().await.unwrap();
        let text = std::str::from_utf8(&first).unwrap();
        assert!(text.starts_with("event: snapshot\ndata: {\"broadcasts\":[{\"name\":\"a\""));
        assert!(text.ends_with("\n\n"));

        board.update_broadcast("a", |b| b.error = Some("a.toml:3:1: bad\nkey".into()));
        let text = String::from_utf8(rx.recv().await.unwrap().to_vec()).unwrap();
        assert!(text.starts_with("event: broadcast\ndata: {"), "{text}");
        assert!(
            text.contains("a.toml:3:1: bad\\nkey"),
            "newlines stay escaped"
        );
        assert_eq!(text.matches('\n').count(), 3);

        board.update(|s| {
            s.broadcasts.remove("a");
        });
        let text = String::from_utf8(rx.recv().await.unwrap().to_vec()).unwrap();
        assert_eq!(text, "event: removed\ndata: {\"name\":\"a\"}\n\n");

        let text = String::from_utf8(rx.recv().await.unwrap().to_vec()).unwrap();
        assert_eq!(text, ": keep-alive\n\n");
        drop(rx);
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the task ends with its client")
            .unwrap();
    }

    #[tokio::test]
    async fn unchanged_broadcasts_send_nothing_and_a_stalled_client_is_dropped() {
        let board = board();
        let (tx, mut rx) = mpsc::channel(CLIENT_QUEUE);
        let task = tokio::spawn(feed(board.reader(), tx, KEEP_ALIVE));
        rx.recv().await.unwrap();
        board.update(|s| s.ready = true); // no broadcast changed
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err());
        // The client stops reading; the writer keeps writing and never waits.
        for i in 0..(CLIENT_QUEUE as u64 * 4) {
            board.update_broadcast("a", |b| b.attempts = i + 1);
            tokio::task::yield_now().await;
        }
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("a stalled client is dropped")
            .unwrap();
    }
}
