//! Supervision of the engine task. The command receiver and the UDP socket live out here, so
//! they survive a panic; the engine's state does not (a fresh one starts), but its calls are
//! told that their attempt is over first, so their broadcasts redial.
//!
//! A panic is caught per poll (no extra crate: `catch_unwind` around `Future::poll`). Its
//! location comes from a panic hook that records it in a thread-local; while the engine is
//! being polled that hook does not pass the panic on to the previous hook, so the report goes
//! through `tracing` (and the configured log format) only, never as plain text on stderr.

use super::{Channels, Engine, now};
use crate::internal_tasks::{RESTART_RESET_AFTER, restart_backoff};
use crate::sip::driver::{Command, UaConfig, UaStats};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// What callers of a crashed engine's calls read as the end of their attempt.
pub(crate) const RESTART_REASON: &str = "SIP engine restarted after an internal error";

thread_local! {
    /// Set while this thread polls the engine: its panics are reported by the supervisor.
    static IN_ENGINE: Cell<bool> = const { Cell::new(false) };
    /// Where the last panic on this thread happened.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Chains a hook that records panic locations (once per process).
pub(super) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info.location().map(|l| l.to_string());
            let _ = LAST_PANIC.try_with(|last| *last.borrow_mut() = location);
            if !IN_ENGINE.try_with(Cell::get).unwrap_or(false) {
                previous(info);
            }
        }));
    });
}

/// Polls `future`, turning a panic in any poll into `Err(payload)`.
pub(crate) async fn catch_unwind<F: Future>(future: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| {
        IN_ENGINE.with(|flag| flag.set(true));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        IN_ENGINE.with(|flag| flag.set(false));
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

/// The panic message, whatever type the payload has.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

/// Runs engines until one ends normally (shutdown, or every handle dropped).
pub(super) async fn supervise(
    config: UaConfig,
    udp: Arc<UdpSocket>,
    local_addr: SocketAddr,
    mut channels: Channels,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<UaStats>,
) {
    // The same restart delays as every other internal task.
    let mut backoff = restart_backoff();
    loop {
        let mut engine = Engine::new(config.clone(), udp.clone(), local_addr, channels);
        let started = now();
        let outcome = catch_unwind(engine.run(&mut commands)).await;
        let Err(payload) = outcome else {
            return;
        };
        let location = LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| "unknown location".to_string());
        let restarts = stats.restarts.fetch_add(1, Ordering::Relaxed) + 1;
        stats.down.store(true, Ordering::Relaxed);
        if now().saturating_duration_since(started) >= RESTART_RESET_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay(0.0);
        tracing::error!(
            task = "sip",
            panic.location = %location,
            // Debug-escaped: the message may quote a peer's bytes.
            panic.message = ?panic_message(payload.as_ref()),
            restarts,
            backoff_ms = delay.as_millis() as u64,
            "SIP engine panicked; its calls end and it restarts"
        );
        let failed = catch_unwind(async { engine.state.fail_all(RESTART_REASON) }).await;
        if failed.is_err() {
            tracing::error!(
                task = "sip",
                "ending the calls of the crashed SIP engine failed"
            );
        }
        // The connection queues (and so the listeners) carry on into the next engine.
        channels = engine.into_channels();
        tokio::time::sleep(delay).await;
        stats.down.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::driver::{Account, CallConfig, LocalMedia, UaConfig, UserAgent};
    use crate::sip::{CallEvent, Transport};
    use std::time::Duration;

    fn call_to(callee: SocketAddr) -> CallConfig {
        CallConfig {
            account: Account {
                user: "1001".into(),
                domain: callee.to_string(),
                auth_user: None,
                password: None,
                register: false,
                registrar: None,
                proxy: None,
                transport: Transport::Udp,
                display_name: None,
                tls: Default::default(),
            },
            to: format!("sip:room@{callee}"),
            answer_timeout: Duration::from_secs(30),
            local_media: LocalMedia::default(),
            dtmf: Default::default(),
            dtmf_rtp: None,
        }
    }

    async fn invite_arrives(callee: &UdpSocket) -> bool {
        let mut buf = vec![0u8; 65_536];
        let received = tokio::time::timeout(Duration::from_secs(5), callee.recv_from(&mut buf));
        matches!(received.await, Ok(Ok((len, _))) if buf[..len].starts_with(b"INVITE "))
    }

    #[tokio::test]
    async fn a_panicking_engine_ends_its_calls_restarts_and_dials_again() {
        let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let callee_addr = callee.local_addr().unwrap();
        let ua = UserAgent::bind(UaConfig::new("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let (_call, mut events) = ua.dial(call_to(callee_addr));
        assert!(invite_arrives(&callee).await);
        assert!(!ua.is_down());
        ua.commands.send(Command::Panic).unwrap();
        let end = loop {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(CallEvent::Ended(end))) => break end,
                Ok(Some(_)) => continue,
                other => panic!("no Ended: {other:?}"),
            }
        };
        assert_eq!(end.reason, RESTART_REASON);
        assert_eq!(ua.restarts(), 1);
        assert!(ua.is_down(), "down during the restart backoff");
        // A dial made while the engine is down waits for the restarted engine.
        let (_again, _events) = ua.dial(call_to(callee_addr));
        assert!(invite_arrives(&callee).await, "the restarted engine dials");
        assert!(!ua.is_down());
        // The second call rings a callee that never answers: shutdown gives up on time.
        let started = crate::clock::monotonic();
        ua.shutdown().await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(3_500),
            "shutdown took {took:?}"
        );
    }
}
