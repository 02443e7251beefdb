//! The keyframe governor: keeps every GOP the targets receive within `keyframe_interval` by
//! asking the sender for an IDR picture early enough, and over the path it answers.
//!
//! CDNs want a keyframe at least every 2–4 s; SIP video phones often send one only every 10 s
//! unless asked, and answer RTCP PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1, when
//! negotiated) only some of the time, while SIP INFO `picture_fast_update` (RFC 5168) is
//! usually honoured at once. So the governor:
//! - **asks ahead of the limit**: a request episode opens at `last keyframe + limit − lead`,
//!   where the lead covers one unanswered request, a second request and its answer, using the
//!   sender's *measured* response time (request → next IDR; rises at once on a slower answer,
//!   falls slowly). The lead never exceeds half the limit;
//! - **retries quickly**: a request not answered within twice the response time (at least
//!   `min_wait`, at most a quarter of the limit) is repeated, with doubling waits up to a
//!   second while the sender stays silent;
//! - **escalates at once**: the first unanswered RTCP request of an episode brings
//!   [`KeyframeAction::SendInfo`] (the call leg sends SIP INFO), and once this sender has been
//!   seen ignoring RTCP, every episode asks with SIP INFO from its first round. Within an
//!   episode INFO is repeated after `info_retry`, then at doubling intervals.
//!
//! Requests pause while the sender sends no video at all (hold, camera off) and start afresh
//! with its next packet. Episodes also open on demand ([`KeyframePolicy::request`]: call
//! start, loss, an RTMP target that (re)connected); an IDR closes the episode, and counts as an
//! answer.
//!
//! Drive it (sans-IO, time is an input): call the `on_*` inputs and `request`, then
//! [`KeyframePolicy::poll_action`] until `None`, and wake up at
//! [`KeyframePolicy::poll_timeout`].

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyframePolicyConfig {
    /// The limit: the longest GOP the targets accept (the shortest `keyframe_interval`).
    pub max_interval: Duration,
    /// The sender's response time assumed until one is measured.
    pub initial_response: Duration,
    /// The shortest wait before a request counts as unanswered.
    pub min_wait: Duration,
    /// SIP INFO is not repeated within an episode sooner than this.
    pub info_retry: Duration,
    /// FIR was negotiated (`a=rtcp-fb:* ccm fir`); otherwise PLI.
    pub use_fir: bool,
}

impl Default for KeyframePolicyConfig {
    fn default() -> Self {
        KeyframePolicyConfig {
            max_interval: Duration::from_secs(4),
            initial_response: Duration::from_millis(500),
            min_wait: Duration::from_millis(150),
            info_retry: Duration::from_secs(1),
            use_fir: false,
        }
    }
}

/// Safety margin kept below the limit beyond the expected answer: answers vary by a frame or
/// two, an IDR takes longer to arrive than other frames, and the published timestamps follow
/// the sender's clock rather than our arrival times.
const MIN_MARGIN: Duration = Duration::from_millis(250);
/// The longest wait between retries while a sender stays silent.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(1);
/// No video for this long: the sender has stopped sending (hold, camera off, its stream
/// ended). Asking is pointless then, and SIP INFO would only burden the call; requests pause
/// until its packets come again (the output shows the slate meanwhile).
const VIDEO_IDLE: Duration = Duration::from_millis(1500);
/// SIP INFO within one episode backs off from `info_retry` by doubling up to this many times
/// (a caller that answers neither RTCP nor INFO gets one INFO a minute or so, not one a
/// second for the whole call).
const MAX_INFO_DOUBLINGS: u32 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyframeAction {
    SendPli,
    /// Send a FIR with this command sequence number.
    SendFir {
        seq: u8,
    },
    /// Ask through the signalling path (SIP INFO picture_fast_update): RTCP went unanswered,
    /// or this sender is known to ignore it.
    SendInfo,
}

/// What the governor did, for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyframeCounters {
    /// RTCP requests sent (PLI or FIR).
    pub requests: u64,
    /// Request episodes closed by an IDR.
    pub answers: u64,
    /// Requests sent as SIP INFO.
    pub via_info: u64,
    /// RTCP requests that went unanswered.
    pub rtcp_unanswered: u64,
}

/// One open request episode.
#[derive(Clone, Copy, Debug)]
struct Episode {
    /// When the next round of requests is due.
    next_round: Instant,
    /// Rounds sent so far (each an RTCP request, maybe with SIP INFO before it).
    rounds: u32,
    first_request: Option<Instant>,
    last_request: Option<Instant>,
    last_info: Option<Instant>,
    /// SIP INFO requests sent in this episode.
    infos: u32,
    /// The due round's SIP INFO went out; its RTCP request is next.
    info_sent_this_round: bool,
}

impl Episode {
    fn new(now: Instant) -> Self {
        Episode {
            next_round: now,
            rounds: 0,
            first_request: None,
            last_request: None,
            last_info: None,
            infos: 0,
            info_sent_this_round: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct KeyframePolicy {
    config: KeyframePolicyConfig,
    episode: Option<Episode>,
    last_keyframe: Option<Instant>,
    /// When the sender's last video packet came.
    last_video: Option<Instant>,
    observed_interval: Option<Duration>,
    /// The sender's response time as measured (request → IDR), once it has answered.
    response: Option<Duration>,
    fir_seq: u8,
    counters: KeyframeCounters,
}

impl KeyframePolicy {
    pub fn new(config: KeyframePolicyConfig) -> Self {
        KeyframePolicy {
            config,
            episode: None,
            last_keyframe: None,
            last_video: None,
            observed_interval: None,
            response: None,
            fir_seq: 0,
            counters: KeyframeCounters::default(),
        }
    }

    /// Opens a request episode (start, loss, RTMP reconnect); no-op when one is open.
    pub fn request(&mut self, now: Instant) {
        if self.episode.is_none() {
            self.episode = Some(Episode::new(now));
        }
    }

    /// A video packet from the sender came: it is sending, so asking makes sense. After a
    /// pause an open episode starts afresh: requests made while the sender sent nothing say
    /// nothing about whether it answers RTCP.
    pub fn on_video(&mut self, now: Instant) {
        if self.idle_at(now)
            && let Some(episode) = self.episode.as_mut()
        {
            *episode = Episode::new(now);
        }
        self.last_video = Some(now);
    }

    /// Whether the sender has sent no video for a while at `at` (see [`VIDEO_IDLE`]).
    fn idle_at(&self, at: Instant) -> bool {
        self.last_video.is_some_and(|seen| at >= seen + VIDEO_IDLE)
    }

    pub fn on_keyframe(&mut self, now: Instant) {
        let previous = self.last_keyframe.replace(now);
        if let Some(last) = previous {
            self.observed_interval = Some(now.saturating_duration_since(last));
        }
        let Some(episode) = self.episode.take() else {
            return;
        };
        // The first keyframe of a stream is the sender's start, not an answer to time.
        let measurable = previous.is_some();
        // An IDR in the first round answers the first request; after retries, the latest one
        // (an earlier one was ignored, which the escalation already accounts for).
        let asked = if episode.rounds <= 1 {
            episode.first_request
        } else {
            episode.last_request
        };
        if let Some(asked) = asked {
            self.counters.answers += 1;
            if measurable {
                self.measured(now.saturating_duration_since(asked));
            }
        }
    }

    /// Rises at once to a slower answer, falls by a quarter of the difference on a faster one:
    /// an occasional slow answer must not make the next GOP too long.
    fn measured(&mut self, sample: Duration) {
        self.response = Some(match self.response {
            Some(estimate) if sample < estimate => (estimate * 3 + sample) / 4,
            _ => sample,
        });
    }

    /// The sender's response time as measured so far.
    pub fn response_time(&self) -> Option<Duration> {
        self.response
    }

    fn expected_response(&self) -> Duration {
        self.response.unwrap_or(self.config.initial_response)
    }

    /// How long a request may go unanswered before the next round: twice the response time,
    /// but at most a quarter of the limit, so that a retry and its answer still fit in the
    /// largest lead (half the limit).
    fn wait(&self) -> Duration {
        (self.expected_response() * 2)
            .min(self.config.max_interval / 4)
            .max(self.config.min_wait)
    }

    /// How far ahead of the limit an episode opens: room for one unanswered request, another
    /// request and its answer, and a margin; never more than half the limit.
    pub fn lead(&self) -> Duration {
        let response = self.expected_response();
        let lead = self.wait() + response + response.max(MIN_MARGIN);
        lead.min(self.config.max_interval / 2)
    }

    /// When the next episode opens by itself, if no keyframe comes first.
    fn ask_at(&self) -> Option<Instant> {
        let last = self.last_keyframe?;
        Some(last + self.config.max_interval.saturating_sub(self.lead()))
    }

    /// Time between the last two keyframes.
    pub fn observed_interval(&self) -> Option<Duration> {
        self.observed_interval
    }

    /// Whether an episode is open (video is waiting for a keyframe).
    pub fn waiting(&self) -> bool {
        self.episode.is_some()
    }

    /// Whether this sender has been seen ignoring RTCP requests (SIP INFO goes first now).
    pub fn prefers_info(&self) -> bool {
        self.counters.rtcp_unanswered > 0
    }

    pub fn counters(&self) -> KeyframeCounters {
        self.counters
    }

    pub fn poll_action(&mut self, now: Instant) -> Option<KeyframeAction> {
        if self.idle_at(now) {
            return None;
        }
        if self.episode.is_none() && self.ask_at().is_some_and(|at| now >= at) {
            self.request(now);
        }
        let wait = self.wait();
        let info_retry = self.config.info_retry;
        let mut episode = self.episode?;
        if now < episode.next_round {
            return None;
        }
        if !episode.info_sent_this_round {
            // A round after the first means the previous RTCP request went unanswered.
            self.counters.rtcp_unanswered += u64::from(episode.rounds > 0);
            let backoff = 1u32 << episode.infos.saturating_sub(1).min(MAX_INFO_DOUBLINGS);
            let info_due = episode
                .last_info
                .is_none_or(|sent| now >= sent + info_retry * backoff);
            if self.prefers_info() && info_due {
                episode.info_sent_this_round = true;
                episode.last_info = Some(now);
                episode.infos += 1;
                episode.first_request.get_or_insert(now);
                episode.last_request = Some(now);
                self.counters.via_info += 1;
                self.episode = Some(episode);
                return Some(KeyframeAction::SendInfo);
            }
        }
        episode.info_sent_this_round = false;
        episode.first_request.get_or_insert(now);
        episode.last_request = Some(now);
        // Quick at first; doubling while the sender stays silent.
        let backoff = 1u32 << episode.rounds.min(8);
        episode.next_round = now + (wait * backoff).min(MAX_RETRY_WAIT.max(wait));
        episode.rounds += 1;
        self.episode = Some(episode);
        self.counters.requests += 1;
        Some(if self.config.use_fir {
            self.fir_seq = self.fir_seq.wrapping_add(1);
            KeyframeAction::SendFir { seq: self.fir_seq }
        } else {
            KeyframeAction::SendPli
        })
    }

    /// `None` also while the sender sends no video: its next packet wakes the driver anyway.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let due = match self.episode {
            Some(episode) => Some(episode.next_round),
            None => self.ask_at(),
        }?;
        (!self.idle_at(due)).then_some(due)
    }
}

#[cfg(test)]
#[path = "keyframe_tests.rs"]
mod tests;
