//! Shared helpers for the control-plane tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sipcast::call::scripted::{Script, ScriptedDialer};
use sipcast::clock::WallClock;
use sipcast::daemon::Engine;
use sipcast::source::SourceConfig;

/// A valid spec dialing `to` with `dtmf`.
pub fn spec(to: &str, dtmf: &str) -> String {
    format!(
        "[sip]\nuser = \"u\"\ndomain = \"pbx.test\"\n[rtmp]\nurl = \"rtmp://127.0.0.1/live/key\"\n[call]\nto = \"{to}\"\ndtmf = \"{dtmf}\"\n"
    )
}

/// Writes `text` to `path` atomically: a temp file beside it, then rename(2).
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// An engine on `dir` with a scripted dialer that answers at once.
pub async fn start(dir: &Path, clock: WallClock) -> (Engine, ScriptedDialer) {
    start_with(
        dir,
        clock,
        Script::Answer {
            after: Duration::ZERO,
        },
    )
    .await
}

pub async fn start_with(dir: &Path, clock: WallClock, script: Script) -> (Engine, ScriptedDialer) {
    let dialer = ScriptedDialer::new(script);
    let mut config = SourceConfig::new(dir);
    config.resync = Duration::from_secs(30);
    let engine = Engine::start(config, Arc::new(dialer.clone()), clock, |_| {});
    wait_for(Duration::from_secs(5), || engine.status.with(|s| s.ready)).await;
    (engine, dialer)
}

/// Polls `condition` every millisecond until it holds; panics after `limit`. Returns the time
/// it took.
pub async fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let start = sipcast::clock::monotonic();
    loop {
        if condition() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
