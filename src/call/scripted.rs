//! A scripted [`Dialer`] for tests: it records every dial and hang-up with its time and plays a
//! chosen behaviour, so the control plane can be tested without SIP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{CallCommand, CallEnd, CallEvent, CallRequest, CallSession, Dialer, EndCause};
use crate::clock;

/// How a scripted call behaves.
#[derive(Clone, Debug, PartialEq)]
pub enum Script {
    /// Answer after the delay and stay up until hung up.
    Answer { after: Duration },
    /// Fail after the delay with this SIP status.
    Reject { after: Duration, sip_status: u16 },
    /// Fail at once with 503 Service Unavailable and a Retry-After.
    Unavailable { retry_after: Duration },
    /// Answer, then the far end hangs up after `hold`.
    AnswerThenRemoteBye { hold: Duration },
}

/// One thing that happened to a scripted call.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub broadcast: String,
    pub kind: RecordKind,
    pub at: tokio::time::Instant,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RecordKind {
    /// Dialed, with the spec's `call.to` and `call.dtmf` (to prove no partial content was used).
    Dial {
        to: String,
        dtmf: String,
    },
    HangUp,
    Retarget {
        targets: usize,
    },
}

#[derive(Default)]
struct Shared {
    records: Vec<Record>,
    active: usize,
    max_active: usize,
}

/// A [`Dialer`] that plays a [`Script`] and keeps a log.
#[derive(Clone)]
pub struct ScriptedDialer {
    script: Arc<Mutex<Script>>,
    shared: Arc<Mutex<Shared>>,
}

impl ScriptedDialer {
    pub fn new(script: Script) -> Self {
        ScriptedDialer {
            script: Arc::new(Mutex::new(script)),
            shared: Arc::default(),
        }
    }

    /// Changes what later attempts do.
    pub fn set_script(&self, script: Script) {
        *self.script.lock().expect("poisoned") = script;
    }

    pub fn records(&self) -> Vec<Record> {
        self.shared.lock().expect("poisoned").records.clone()
    }

    pub fn dials(&self) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| matches!(r.kind, RecordKind::Dial { .. }))
            .collect()
    }

    /// Calls up right now.
    pub fn active(&self) -> usize {
        self.shared.lock().expect("poisoned").active
    }

    /// The most calls that were ever up at once.
    pub fn max_active(&self) -> usize {
        self.shared.lock().expect("poisoned").max_active
    }

    fn record(&self, broadcast: &str, kind: RecordKind) {
        let mut shared = self.shared.lock().expect("poisoned");
        if let RecordKind::Dial { .. } = kind {
            shared.active += 1;
            shared.max_active = shared.max_active.max(shared.active);
        }
        shared.records.push(Record {
            broadcast: broadcast.to_string(),
            kind,
            at: clock::monotonic(),
        });
    }

    fn finished(&self) {
        let mut shared = self.shared.lock().expect("poisoned");
        shared.active = shared.active.saturating_sub(1);
    }
}

impl Dialer for ScriptedDialer {
    fn dial(&self, request: CallRequest) -> CallSession {
        let (commands, mut command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let script = self.script.lock().expect("poisoned").clone();
        let name = request.broadcast.clone();
        self.record(
            &name,
            RecordKind::Dial {
                to: request.spec.call.to.clone(),
                dtmf: request.spec.call.dtmf.clone(),
            },
        );
        let this = self.clone();
        tokio::spawn(async move {
            let _ = events.send(CallEvent::Dialing {
                call_id: format!("scripted-{name}-{}", request.attempt),
            });
            let (delay, answer) = match &script {
                Script::Answer { after } => (*after, true),
                Script::Reject { after, .. } => (*after, false),
                Script::Unavailable { .. } => (Duration::ZERO, false),
                Script::AnswerThenRemoteBye { .. } => (Duration::ZERO, true),
            };
            let end = tokio::select! {
                _ = tokio::time::sleep(delay) => None,
                cmd = command_rx.recv() => Some(cmd),
            };
            let end = match (end, &script) {
                (Some(_), _) => local_hangup(&this, &name),
                (None, Script::Reject { sip_status, .. }) => CallEnd::failed(
                    Some(*sip_status),
                    format!("{sip_status} rejected by script"),
                ),
                (None, Script::Unavailable { retry_after }) => CallEnd {
                    retry_after: Some(*retry_after),
                    ..CallEnd::failed(Some(503), "503 Service Unavailable")
                },
                (None, _) if answer => {
                    let _ = events.send(CallEvent::Established {
                        audio_codec: Some("PCMU".into()),
                        video_codec: Some("H264".into()),
                    });
                    let hold = match script {
                        Script::AnswerThenRemoteBye { hold } => hold,
                        _ => Duration::MAX,
                    };
                    let bye = tokio::time::sleep(hold.min(Duration::from_secs(86_400 * 365)));
                    tokio::pin!(bye);
                    loop {
                        tokio::select! {
                            _ = &mut bye => break CallEnd {
                                cause: EndCause::RemoteHangup,
                                sip_status: None,
                                reason: "remote BYE".into(),
                                retry_after: None,
                            },
                            cmd = command_rx.recv() => match cmd {
                                Some(CallCommand::UpdateTargets(t)) => {
                                    this.record(&name, RecordKind::Retarget { targets: t.len() });
                                }
                                Some(CallCommand::Hangup) | None => break local_hangup(&this, &name),
                            },
                        }
                    }
                }
                (None, _) => unreachable!("every script either answers or rejects"),
            };
            this.finished();
            let _ = events.send(CallEvent::Ended(end));
        });
        CallSession {
            commands,
            events: event_rx,
            abort: None,
        }
    }
}

fn local_hangup(dialer: &ScriptedDialer, name: &str) -> CallEnd {
    dialer.record(name, RecordKind::HangUp);
    CallEnd {
        cause: EndCause::LocalHangup,
        sip_status: None,
        reason: "hung up".into(),
        retry_after: None,
    }
}
