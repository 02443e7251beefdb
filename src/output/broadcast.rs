//! The tokio side of a broadcast's output: the [`Switcher`] and one publisher per target,
//! behind a lock that the media path's driver takes to hand over each frame (no task in
//! between), and a timer task that plays the slate and silence when they are due and reports
//! the targets' status.
//!
//! It lives while the broadcast is desired live, across any number of call attempts: each
//! attempt calls [`OutputSink::begin_source`] when its media starts and
//! [`OutputSink::end_source`] when it ends.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::preview::{PreviewHub, PreviewTap};
use super::slate::Slate;
use super::switcher::{Switcher, SwitcherConfig};
use super::targets::TargetLegs;
use crate::clock::monotonic;
use crate::frame::{AudioFormat, FrameSink, MediaFrame};
use crate::spec::{AudioCodec, RtmpTarget};
use crate::status::{CallState, Phase, RtmpState, RtmpStatus, StatusBoard};

/// How often target states are looked at and reported.
const REPORT_EVERY: Duration = Duration::from_millis(250);

struct State {
    switcher: Switcher,
    legs: TargetLegs,
    preview: PreviewTap,
    targets: Vec<RtmpTarget>,
    /// The targets are connected (or connecting); `false` while publishing waits for a call.
    connected: bool,
}

impl State {
    /// Hands everything the switcher produced to the targets.
    fn drain(&mut self) {
        while let Some(frame) = self.switcher.poll_output() {
            self.legs.send(&frame);
            self.preview.send(&frame);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the timer when an input moved the switcher's next deadline earlier.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent between statements; a panic in
        // one (a bug) must not silence the broadcast for good.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where a call attempt's media goes. Cheap to clone; never blocks on the network.
#[derive(Clone)]
pub struct OutputSink {
    shared: Arc<Shared>,
}

impl OutputSink {
    /// One frame of the current call attempt, on its own timeline.
    pub fn push(&self, frame: MediaFrame) {
        let now = monotonic().into_std();
        let mut state = self.shared.lock();
        let before = state.switcher.poll_timeout();
        state.switcher.push(now, frame);
        state.drain();
        if state.switcher.poll_timeout() < before {
            self.shared.wake.notify_one();
        }
    }

    /// A call attempt's media starts; `copy_format` is its audio as sent, for `copy` targets.
    pub fn begin_source(&self, copy_format: Option<AudioFormat>) {
        let mut state = self.shared.lock();
        state.switcher.begin_source(monotonic().into_std());
        state.legs.set_copy_format(copy_format);
        if !state.connected {
            state.connected = true;
            let targets = state.targets.clone();
            state.legs.update(&targets);
        }
        state.drain();
    }

    /// The call attempt is over: the targets get the slate at once.
    pub fn end_source(&self) {
        let mut state = self.shared.lock();
        state.switcher.end_source(monotonic().into_std());
        state.drain();
        self.shared.wake.notify_one();
    }

    /// True once after the output started wanting a keyframe from the call: a target
    /// (re)connected, or the slate waits for the call's video to come back.
    pub fn take_keyframe_wanted(&self) -> bool {
        let mut state = self.shared.lock();
        let targets = state.legs.take_keyframe_requests();
        state.switcher.take_keyframe_wanted() | targets
    }
}

impl FrameSink for OutputSink {
    fn push(&self, frame: MediaFrame) -> bool {
        OutputSink::push(self, frame);
        true
    }
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputSink")
    }
}

/// A broadcast's running output.
pub struct BroadcastOutput {
    sink: OutputSink,
    timer: JoinHandle<()>,
}

impl BroadcastOutput {
    /// Starts the output timeline on the slate. With `connect_now` every target connects and
    /// publishes the slate at once; otherwise they connect when a call's media begins. Status
    /// goes to `board` under `broadcast`.
    pub fn start(
        broadcast: &str,
        targets: &[RtmpTarget],
        slate: Option<Arc<Slate>>,
        connect_now: bool,
        board: StatusBoard,
        preview: &PreviewHub,
    ) -> BroadcastOutput {
        let now = monotonic().into_std();
        let custom = slate.is_some();
        let mut config =
            SwitcherConfig::new(slate.unwrap_or_else(|| Slate::built_in(None)), custom);
        (config.aac, config.copy) = audio_wanted(targets);
        let mut state = State {
            switcher: Switcher::new(now, config),
            legs: TargetLegs::start(if connect_now { targets } else { &[] }, None),
            preview: preview.tap(broadcast),
            targets: targets.to_vec(),
            connected: connect_now,
        };
        state.drain();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Notify::new(),
        });
        let timer = tokio::spawn(tracing::Instrument::in_current_span(run_timer(
            shared.clone(),
            broadcast.to_string(),
            board,
        )));
        BroadcastOutput {
            sink: OutputSink { shared },
            timer,
        }
    }

    pub fn sink(&self) -> OutputSink {
        self.sink.clone()
    }

    /// Publish to these targets from now on (unchanged ones keep their connection).
    pub fn update_targets(&self, targets: &[RtmpTarget]) {
        let mut state = self.sink.shared.lock();
        let (aac, copy) = audio_wanted(targets);
        state.switcher.want_audio(aac, copy);
        state.targets = targets.to_vec();
        if state.connected {
            state.legs.update(targets);
        }
        state.drain();
    }

    /// True while the targets are connected (publishing or trying to).
    pub fn is_connected(&self) -> bool {
        self.sink.shared.lock().connected
    }

    /// Unpublishes every target (bounded) but keeps the timeline: the targets connect again
    /// when the next call's media begins.
    pub async fn unpublish(&self) {
        let detached = {
            let mut state = self.sink.shared.lock();
            state.connected = false;
            state.legs.detach_all()
        };
        detached.stop().await;
    }

    /// Unpublishes every target (bounded) and stops the timer.
    pub async fn stop(self) {
        self.timer.abort();
        let detached = self.sink.shared.lock().legs.detach_all();
        detached.stop().await;
    }
}

/// Plays what is due and reports the targets, sleeping in between.
async fn run_timer(shared: Arc<Shared>, broadcast: String, board: StatusBoard) {
    let mut last_report: Vec<RtmpStatus> = Vec::new();
    let mut next_report = monotonic();
    loop {
        let due = {
            let mut state = shared.lock();
            let now = monotonic().into_std();
            state.switcher.handle_timeout(now);
            state.drain();
            state.switcher.poll_timeout()
        };
        if monotonic() >= next_report {
            next_report = monotonic() + REPORT_EVERY;
            let statuses = statuses(&shared);
            if statuses != last_report {
                let streaming = statuses.iter().any(|t| t.state == RtmpState::Publishing);
                board.update_broadcast(&broadcast, |b| {
                    b.counters.observe_targets(&statuses);
                    b.rtmp = statuses.clone();
                    // A connected call is "streaming" once a target publishes it.
                    if matches!(b.phase, Phase::Connected | Phase::Streaming) {
                        b.phase = if streaming && b.call.state == CallState::Established {
                            Phase::Streaming
                        } else {
                            Phase::Connected
                        };
                    }
                });
                last_report = statuses;
            }
        }
        let wake_at = due
            .map(tokio::time::Instant::from_std)
            .map_or(next_report, |at| at.min(next_report));
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = shared.wake.notified() => {}
        }
    }
}

/// Every target's status, with what the viewers see.
fn statuses(shared: &Shared) -> Vec<RtmpStatus> {
    let state = shared.lock();
    let stats = state.switcher.stats(monotonic().into_std());
    let showing = state.switcher.showing();
    let targets = if state.connected {
        state.legs.statuses()
    } else {
        super::targets::idle_statuses(&state.targets)
    };
    targets
        .into_iter()
        .map(|mut status| {
            status.showing = Some(showing);
            status.slate_seconds = stats.slate_ms / 1000;
            status.switches = stats.switches;
            status
        })
        .collect()
}

/// Whether some target wants AAC, and the G.711 silence `copy` targets get before a call says
/// which law it uses.
fn audio_wanted(targets: &[RtmpTarget]) -> (bool, Option<AudioFormat>) {
    (
        targets.iter().any(|t| t.audio_codec == AudioCodec::Aac),
        targets
            .iter()
            .any(|t| t.audio_codec == AudioCodec::Copy)
            .then_some(AudioFormat::Pcmu),
    )
}
