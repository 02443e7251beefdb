//! One supervisor per broadcast: it owns at most one call attempt at a time, redials with
//! backoff, follows spec edits and the schedule, and reports everything to the status board.
//!
//! The reconciler talks to it through a `watch` of the spec (`None` = the file is gone: hang
//! up and exit) and a "retry now" notification (SIGHUP). Wall time (for schedules) comes from a
//! [`WallClock`]; waiting uses tokio's clock, so tests run in virtual time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::call::{CallCommand, CallEnd, CallEvent, CallRequest, Dialer, EndCause};
use crate::clock::{self, WallClock};
use crate::output::targets::idle_statuses;
use crate::output::{BroadcastOutput, PreviewHub};
// A 503's `Retry-After` is honoured up to this long, whichever dialer reported it: the bound
// the SIP core already applies where the header is read.
use crate::sip::core::MAX_RETRY_AFTER;
use crate::spec::{BroadcastSpec, OnRemoteHangup, SpecChange};
use crate::status::{
    BroadcastStatus, CallState, ConditionStatus, Desired, Phase, PreflightFailure, PreflightStatus,
    ScheduleStatus, StatusBoard,
};

/// Wall time is re-read at least this often, so clock steps take effect without a restart.
const REEVALUATE: Duration = Duration::from_secs(30);
/// A call that stayed up this long resets the backoff: its next failure starts at `initial`.
const RESET_AFTER_CONNECTED: Duration = Duration::from_secs(600);
/// A session that has not reported `Ended` this long after a hang-up is aborted: its task is
/// cancelled, which closes its publishers and media sockets (the attempt itself closes them
/// within a few seconds; this is the backstop).
const HANGUP_GRACE: Duration = Duration::from_secs(10);

/// What every supervisor shares.
#[derive(Clone)]
pub struct SupervisorContext {
    pub dialer: Arc<dyn Dialer>,
    pub board: StatusBoard,
    pub clock: WallClock,
    /// Where outputs offer their frames to live-preview viewers.
    pub preview: PreviewHub,
    /// Rung by every supervisor as it exits, so the reconciler forgets it (and a deleted
    /// broadcast leaves status) at once rather than at its next tick.
    pub exited: Arc<Notify>,
}

/// The reconciler's grip on a running supervisor.
pub struct SupervisorHandle {
    spec_tx: watch::Sender<Option<Arc<BroadcastSpec>>>,
    retry_now: Arc<Notify>,
    join: JoinHandle<()>,
}

impl SupervisorHandle {
    pub fn spawn(spec: Arc<BroadcastSpec>, ctx: SupervisorContext) -> Self {
        let (spec_tx, spec_rx) = watch::channel(Some(spec.clone()));
        let retry_now = Arc::new(Notify::new());
        // `call_id` is recorded on the span at each dial, so every later line carries it.
        let span = tracing::info_span!(
            "broadcast",
            broadcast = %spec.name,
            call_id = tracing::field::Empty
        );
        let supervisor = Supervisor {
            name: spec.name.clone(),
            backoff: redial_backoff(&spec),
            spec,
            ctx,
            spec_rx,
            retry_now: retry_now.clone(),
            retry_at: None,
            attempts: 0,
            completed: false,
            call_id: None,
            output: None,
            call_down_since: None,
            held_back: false,
            was_desired: false,
        };
        SupervisorHandle {
            spec_tx,
            retry_now,
            join: tokio::spawn(tracing::Instrument::instrument(supervisor.run(), span)),
        }
    }

    /// The spec it runs, or `None` once it was told to stop.
    pub fn current(&self) -> Option<Arc<BroadcastSpec>> {
        self.spec_tx.borrow().clone()
    }

    /// Hands over a new version (`None`: hang up and exit).
    pub fn set_spec(&self, spec: Option<Arc<BroadcastSpec>>) {
        self.spec_tx.send_replace(spec);
    }

    /// Skips a backoff wait in progress (SIGHUP). Nothing is remembered for later: a nudge
    /// while a call is up must not make that call's eventual failure skip its backoff.
    pub fn retry_now(&self) {
        self.retry_now.notify_waiters();
    }

    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    pub async fn join(self) {
        let _ = self.join.await;
    }
}

struct Supervisor {
    name: String,
    spec: Arc<BroadcastSpec>,
    ctx: SupervisorContext,
    spec_rx: watch::Receiver<Option<Arc<BroadcastSpec>>>,
    retry_now: Arc<Notify>,
    backoff: Backoff,
    /// Redial not before this.
    retry_at: Option<Instant>,
    attempts: u64,
    /// `on_remote_hangup = "complete"` fired: stay down until the window ends or the spec changes.
    completed: bool,
    /// The current attempt's Call-ID, for log lines.
    call_id: Option<String>,
    /// What the targets publish while the broadcast is desired live, across attempts.
    output: Option<BroadcastOutput>,
    /// Since when no call has been up (for `output.unpublish_after`).
    call_down_since: Option<Instant>,
    /// `unpublish_after` fired: the targets stay down until a call is answered again.
    held_back: bool,
    /// Desired live at the last evaluation of the main loop (a rise runs the preflight).
    was_desired: bool,
}

/// Why a wait ended.
enum Wake {
    Timer,
    SpecChanged(SpecChange),
    Deleted,
    RetryNow,
}

/// Why we hung up, which decides what comes next.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HangupFor {
    Deleted,
    Restart,
    NotDesired,
}

enum Outcome {
    Deleted,
    /// Hung up on purpose; go round the loop again (redial at once if still desired).
    Again,
    Ended {
        end: CallEnd,
        connected_for: Duration,
    },
}

impl Supervisor {
    async fn run(mut self) {
        tracing::info!(broadcast = %self.name, "supervisor started");
        let targets = idle_statuses(&self.spec.rtmp);
        self.write(|b| b.rtmp = targets);
        loop {
            let (desired, next_change) = self.evaluate();
            if desired && !self.was_desired && self.spec.schedule.is_some() {
                match self.preflight().await {
                    Some(Wake::Deleted) => break,
                    // Edited meanwhile: evaluate (and preflight) the new version.
                    Some(_) => continue,
                    None => {}
                }
            }
            self.was_desired = desired;
            if !desired || self.completed {
                if !desired {
                    self.attempts = 0;
                    self.backoff.reset();
                    self.retry_at = None;
                    self.completed = false;
                }
                let waiting = self.spec.schedule.is_some() && self.spec.enabled && !self.completed;
                self.stop_output().await;
                self.set_phase(if waiting { Phase::Waiting } else { Phase::Idle });
                self.write(|b| b.next_attempt_at = None);
                if let Wake::Deleted = self.wait(next_change).await {
                    break;
                }
                continue;
            }
            self.ensure_output();
            if let Some(at) = self.retry_at
                && at > clock::monotonic()
            {
                self.set_phase(Phase::Backoff);
                let mut deadline = next_change.map_or(at, |n| n.min(at));
                if let Some(unpublish_at) = self.unpublish_at() {
                    deadline = deadline.min(unpublish_at);
                }
                match self.wait(Some(deadline)).await {
                    Wake::Deleted => break,
                    Wake::RetryNow => self.retry_at = None,
                    _ => {}
                }
                if self
                    .unpublish_at()
                    .is_some_and(|at| at <= clock::monotonic())
                {
                    self.unpublish_while_down().await;
                }
                continue;
            }
            self.retry_at = None;
            match self.attempt().await {
                Outcome::Deleted => break,
                Outcome::Again => {}
                Outcome::Ended { end, connected_for } => self.after_end(end, connected_for),
            }
        }
        self.stop_output().await;
        tracing::info!(broadcast = %self.name, "supervisor stopped");
        self.ctx.exited.notify_one();
    }

    /// Runs `sipcast probe`'s checks before the window's first dial and reports them as the
    /// `preflight` field, the `PreflightPassed` condition and metrics, so that a wrong key or
    /// password shows before the meeting. The outcome changes nothing else: the call is dialed
    /// either way. A spec edit or deletion cuts it short: it is adopted and returned.
    async fn preflight(&mut self) -> Option<Wake> {
        let options = self.ctx.dialer.preflight()?;
        let spec = self.spec.clone();
        let started = self.ctx.clock.now();
        let report = tokio::select! {
            report = crate::probe::run(&spec, &options, started) => report,
            changed = self.spec_rx.changed() => return Some(match changed {
                Err(_) => Wake::Deleted,
                Ok(()) => self.take_new_spec(),
            }),
        };
        let now = self.ctx.clock.now();
        let failures: Vec<PreflightFailure> = report
            .failures()
            .map(|c| PreflightFailure {
                check: c.check.clone(),
                cause: c.detail.clone(),
            })
            .collect();
        let ok = failures.is_empty();
        let message = failures
            .iter()
            .map(|f| format!("{}: {}", f.check, f.cause))
            .collect::<Vec<_>>()
            .join("; ");
        if ok {
            tracing::info!(broadcast = %self.name, "preflight passed");
        } else {
            tracing::warn!(broadcast = %self.name, failures = %message, "preflight failed");
        }
        self.write(|b| {
            b.counters.preflights += 1;
            let (status, reason) = if ok {
                (ConditionStatus::True, "AllChecksPassed")
            } else {
                b.counters.preflight_failures += 1;
                (ConditionStatus::False, "ChecksFailed")
            };
            b.set_condition("PreflightPassed", status, reason, message, now);
            b.preflight = Some(PreflightStatus {
                ok,
                checked_at: now,
                failures,
            });
        });
        None
    }

    /// Starts the output (the slate until a call gives media) if not already. Its targets
    /// connect at once unless `[output] before_call = false` or `unpublish_after` held them
    /// back; then they connect when a call's media begins.
    fn ensure_output(&mut self) {
        if self.output.is_some() {
            return;
        }
        let connect_now = self.spec.output.before_call && !self.held_back;
        tracing::info!(broadcast = %self.name, connect_now, "output starting");
        let slate = self.load_slate();
        self.output = Some(BroadcastOutput::start(
            &self.name,
            &self.spec.rtmp,
            slate,
            connect_now,
            self.ctx.board.clone(),
            &self.ctx.preview,
        ));
        self.call_down_since.get_or_insert_with(clock::monotonic);
    }

    /// The spec's own slate, or `None` for the built-in ones (also when the file is unusable:
    /// reported as the `SlateUsable` condition, never a reason to stay off air).
    fn load_slate(&self) -> Option<Arc<crate::output::slate::Slate>> {
        let path = self.spec.output.slate.as_ref()?;
        let now = self.ctx.clock.now();
        match crate::output::slate::Slate::load(path) {
            Ok(slate) => {
                self.write(|b| {
                    b.set_condition("SlateUsable", ConditionStatus::True, "Loaded", "", now)
                });
                Some(Arc::new(slate))
            }
            Err(error) => {
                tracing::warn!(broadcast = %self.name, %error, "slate unusable; using the built-in one");
                self.write(|b| {
                    b.set_condition(
                        "SlateUsable",
                        ConditionStatus::False,
                        "Unusable",
                        format!("{error}; the built-in slate is shown"),
                        now,
                    )
                });
                None
            }
        }
    }

    /// When `unpublish_after` ends the slate, if it applies now.
    fn unpublish_at(&self) -> Option<Instant> {
        let after = self.spec.output.unpublish_after?;
        let output = self.output.as_ref()?;
        if !output.is_connected() {
            return None;
        }
        Some(self.call_down_since? + after)
    }

    async fn unpublish_while_down(&mut self) {
        if let Some(output) = &self.output {
            tracing::info!(broadcast = %self.name, "the call stayed down past output.unpublish_after; unpublishing");
            output.unpublish().await;
            self.held_back = true;
        }
    }

    /// Unpublishes every target (bounded) and shows them idle.
    async fn stop_output(&mut self) {
        self.call_down_since = None;
        self.held_back = false;
        if let Some(output) = self.output.take() {
            tracing::info!(broadcast = %self.name, "output stopping");
            output.stop().await;
            let targets = idle_statuses(&self.spec.rtmp);
            self.write(|b| b.rtmp = targets);
        }
    }

    /// Desired live now? And when to look again (monotonic).
    fn evaluate(&mut self) -> (bool, Option<Instant>) {
        let now = self.ctx.clock.now();
        let state = self.spec.schedule.as_ref().map(|s| s.state_at(now));
        let desired = self.spec.enabled && state.is_none_or(|s| s.in_window);
        let mono = clock::monotonic();
        let next_change = state
            .and_then(|s| s.next_edge())
            .and_then(|at| Duration::try_from(at.duration_since(now)).ok())
            .map_or(mono + REEVALUATE, |d| mono + d.min(REEVALUATE));
        let schedule = state.map(|s| ScheduleStatus {
            in_window: s.in_window,
            next_start: s.next_start,
            next_end: s.next_end,
        });
        self.write(|b| {
            b.desired = if desired {
                Desired::Live
            } else {
                Desired::Idle
            };
            b.schedule = schedule;
        });
        (desired, Some(next_change))
    }

    /// Waits for a spec change, the deadline, or a retry-now nudge.
    async fn wait(&mut self, deadline: Option<Instant>) -> Wake {
        let deadline = deadline.unwrap_or_else(|| clock::monotonic() + REEVALUATE);
        tokio::select! {
            changed = self.spec_rx.changed() => match changed {
                Err(_) => Wake::Deleted,
                Ok(()) => self.take_new_spec(),
            },
            _ = tokio::time::sleep_until(deadline) => Wake::Timer,
            _ = self.retry_now.notified() => Wake::RetryNow,
        }
    }

    /// Adopts the latest spec from the watch; `Deleted` if it is gone.
    fn take_new_spec(&mut self) -> Wake {
        let Some(next) = self.spec_rx.borrow_and_update().clone() else {
            return Wake::Deleted;
        };
        let change = self.spec.change_to(&next);
        if change != SpecChange::None {
            tracing::info!(broadcast = %self.name, ?change, "spec changed");
        }
        if change == SpecChange::Call {
            // A fixed callee deserves a prompt try, not the tail of an old backoff.
            self.backoff.reset();
            self.retry_at = None;
        }
        if change != SpecChange::None {
            self.completed = false;
        }
        self.backoff
            .set_bounds(next.redial.initial, next.redial.max);
        if change == SpecChange::Targets {
            match &self.output {
                Some(output) => output.update_targets(&next.rtmp),
                None => {
                    let targets = idle_statuses(&next.rtmp);
                    self.write(|b| b.rtmp = targets);
                }
            }
        }
        self.spec = next;
        Wake::SpecChanged(change)
    }

    async fn attempt(&mut self) -> Outcome {
        self.attempts += 1;
        let attempts = self.attempts;
        tracing::info!(broadcast = %self.name, attempt = attempts, to = %self.spec.call.to, "dialing");
        let mut session = self.ctx.dialer.dial(CallRequest {
            broadcast: self.name.clone(),
            spec: self.spec.clone(),
            attempt: attempts,
            output: self.output.as_ref().map(BroadcastOutput::sink),
        });
        let now = self.ctx.clock.now();
        self.write(|b| {
            b.attempts = attempts;
            b.next_attempt_at = None;
            b.phase = Phase::Dialing;
            b.call = crate::status::CallStatus {
                state: CallState::Dialing,
                since: Some(now),
                ..Default::default()
            };
        });
        let mut established_at: Option<Instant> = None;
        let mut hanging_up: Option<(HangupFor, Instant)> = None;
        let end = loop {
            let (desired, next_change) = if hanging_up.is_none() {
                self.evaluate()
            } else {
                (true, None)
            };
            if !desired && hanging_up.is_none() {
                hanging_up = Some(self.hang_up(&session.commands, HangupFor::NotDesired));
                continue;
            }
            let tick = next_change.unwrap_or_else(|| clock::monotonic() + REEVALUATE);
            let grace = hanging_up.map(|(_, at)| at + HANGUP_GRACE);
            tokio::select! {
                event = session.events.recv() => match event {
                    Some(CallEvent::Ended(end)) => break end,
                    None => break CallEnd::failed(None, "the call ended without a report"),
                    Some(event) => self.apply_event(event, &mut established_at),
                },
                changed = self.spec_rx.changed(), if hanging_up.is_none() => {
                    let wake = match changed {
                        Err(_) => Wake::Deleted,
                        Ok(()) => self.take_new_spec(),
                    };
                    match wake {
                        Wake::Deleted => hanging_up = Some(self.hang_up(&session.commands, HangupFor::Deleted)),
                        Wake::SpecChanged(SpecChange::Call) => {
                            hanging_up = Some(self.hang_up(&session.commands, HangupFor::Restart));
                        }
                        Wake::SpecChanged(SpecChange::Targets) => {
                            let _ = session.commands.send(CallCommand::UpdateTargets(self.spec.rtmp.clone()));
                        }
                        _ => {}
                    }
                },
                _ = tokio::time::sleep_until(tick), if hanging_up.is_none() => {}
                _ = sleep_until_opt(grace) => {
                    tracing::error!(broadcast = %self.name, "call did not end within {HANGUP_GRACE:?} of hanging up; cancelling it");
                    if let Some(abort) = &session.abort {
                        abort.abort();
                    }
                    break CallEnd::failed(None, "hang-up timed out");
                }
            }
        };
        let connected_for = established_at.map_or(Duration::ZERO, |at| clock::monotonic() - at);
        self.call_down_since.get_or_insert_with(clock::monotonic);
        self.record_end(&end, established_at.is_some(), connected_for);
        match hanging_up.map(|(why, _)| why) {
            Some(HangupFor::Deleted) => Outcome::Deleted,
            Some(HangupFor::Restart | HangupFor::NotDesired) => Outcome::Again,
            None => Outcome::Ended { end, connected_for },
        }
    }

    fn hang_up(
        &self,
        commands: &tokio::sync::mpsc::UnboundedSender<CallCommand>,
        why: HangupFor,
    ) -> (HangupFor, Instant) {
        tracing::info!(broadcast = %self.name, reason = ?why, "hanging up");
        let _ = commands.send(CallCommand::Hangup);
        self.set_phase(Phase::HangingUp);
        (why, clock::monotonic())
    }

    fn apply_event(&mut self, event: CallEvent, established_at: &mut Option<Instant>) {
        let now = self.ctx.clock.now();
        let name = self.name.clone();
        match event {
            CallEvent::Registering => self.write(|b| {
                b.phase = Phase::Registering;
                b.call.state = CallState::Registering;
            }),
            CallEvent::Dialing { call_id } => {
                tracing::Span::current().record("call_id", call_id.as_str());
                self.call_id = Some(call_id.clone());
                self.write(|b| {
                    b.phase = Phase::Dialing;
                    b.call.state = CallState::Dialing;
                    b.call.call_id = Some(call_id);
                });
            }
            CallEvent::Ringing { sip_status } => self.write(|b| {
                b.phase = Phase::Ringing;
                b.call.state = CallState::Ringing;
                b.call.sip_status = Some(sip_status);
            }),
            CallEvent::Established {
                audio_codec,
                video_codec,
            } => {
                *established_at = Some(clock::monotonic());
                self.call_down_since = None;
                self.held_back = false;
                tracing::info!(broadcast = %name, "call established");
                self.write(|b| {
                    b.phase = Phase::Connected;
                    b.call.state = CallState::Established;
                    b.call.sip_status = Some(200);
                    b.call.since = Some(now);
                    b.call.audio_codec = audio_codec;
                    b.call.video_codec = video_codec;
                    b.set_condition(
                        "CallEstablished",
                        ConditionStatus::True,
                        "Answered",
                        "the callee answered",
                        now,
                    );
                });
            }
            CallEvent::DtmfSent(digits) => self.write(|b| b.call.dtmf_sent = Some(digits)),
            CallEvent::Media(media) => self.write(|b| {
                b.counters.observe_media(&media);
                b.call.media = Some(media);
            }),
            CallEvent::Ended(_) => {}
        }
    }

    fn record_end(&self, end: &CallEnd, was_established: bool, connected_for: Duration) {
        let now = self.ctx.clock.now();
        let class = end.result_class(was_established);
        tracing::info!(
            broadcast = %self.name,
            sip_status = end.sip_status,
            reason = %end.reason,
            "call ended"
        );
        self.write(|b| {
            b.call.state = match end.cause {
                EndCause::Failed => CallState::Failed,
                _ => CallState::Finished,
            };
            if end.sip_status.is_some() {
                b.call.sip_status = end.sip_status;
            }
            b.call.reason = Some(end.reason.clone());
            b.call.since = Some(now);
            *b.counters.attempts_by_result.entry(class).or_default() += 1;
            b.counters.connected_seconds += connected_for.as_secs_f64();
            b.counters.close_attempt();
            b.set_condition(
                "CallEstablished",
                ConditionStatus::False,
                "Ended",
                end.reason.clone(),
                now,
            );
        });
    }

    /// After a call ended by itself: redial with backoff, or stay down if told to.
    fn after_end(&mut self, end: CallEnd, connected_for: Duration) {
        if connected_for >= RESET_AFTER_CONNECTED {
            self.backoff.reset();
        }
        if end.cause == EndCause::RemoteHangup
            && self.spec.call.on_remote_hangup == OnRemoteHangup::Complete
        {
            tracing::info!(broadcast = %self.name, "remote hung up; staying down until the next window");
            self.completed = true;
            return;
        }
        let mut delay = self.backoff.next_delay(rand::random::<f64>());
        if let Some(retry_after) = end.retry_after {
            delay = delay.max(retry_after.min(MAX_RETRY_AFTER));
        }
        self.retry_at = Some(clock::monotonic() + delay);
        let at = self.ctx.clock.now().checked_add(delay).ok();
        tracing::info!(broadcast = %self.name, delay = ?delay, "redial after backoff");
        self.write(|b| {
            b.phase = Phase::Backoff;
            b.next_attempt_at = at;
        });
    }

    fn set_phase(&self, phase: Phase) {
        self.write(|b| b.phase = phase);
    }

    fn write(&self, change: impl FnOnce(&mut BroadcastStatus)) {
        self.ctx.board.update_broadcast(&self.name, change);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The redial backoff a spec asks for: `[redial]`, ±20 %.
fn redial_backoff(spec: &BroadcastSpec) -> Backoff {
    Backoff::new(
        spec.redial.initial,
        spec.redial.max,
        Jitter::PLUS_MINUS_20_PERCENT,
    )
}
