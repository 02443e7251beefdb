//! The governor against simulated senders, in virtual time.

use super::*;

const MS: fn(u64) -> Duration = Duration::from_millis;
const S: fn(u64) -> Duration = Duration::from_secs;

fn drain(policy: &mut KeyframePolicy, now: Instant) -> Vec<KeyframeAction> {
    std::iter::from_fn(|| policy.poll_action(now)).collect()
}

fn config(limit: Duration) -> KeyframePolicyConfig {
    KeyframePolicyConfig {
        max_interval: limit,
        ..Default::default()
    }
}

/// A video phone's encoder: an IDR every `natural` unless asked, frames every 40 ms, an
/// answered request gives an IDR `latency` later (at the next frame; plus `jitter` × 0..3 by
/// request), and it ignores the PLIs `ignores_pli` picks (numbered from 1). SIP INFO is always
/// honoured.
struct Sender {
    natural: Duration,
    latency: Duration,
    jitter: Duration,
    ignores_pli: fn(u64) -> bool,
    plis: u64,
    requests: u32,
    /// When an asked-for IDR is due.
    asked: Option<Instant>,
}

/// What a run of the simulation saw.
#[derive(Debug, Default)]
struct Run {
    keyframes: Vec<Instant>,
    /// Per episode, the actions in order.
    episodes: Vec<Vec<KeyframeAction>>,
}

impl Run {
    fn gops(&self) -> Vec<Duration> {
        self.keyframes
            .windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .collect()
    }

    fn longest_gop(&self) -> Duration {
        self.gops().into_iter().max().unwrap_or_default()
    }
}

impl Sender {
    fn new(natural: Duration, latency: Duration, ignores_pli: fn(u64) -> bool) -> Self {
        Sender {
            natural,
            latency,
            jitter: Duration::ZERO,
            ignores_pli,
            plis: 0,
            requests: 0,
            asked: None,
        }
    }

    fn on_action(&mut self, now: Instant, action: KeyframeAction) {
        let honoured = match action {
            KeyframeAction::SendInfo => true,
            KeyframeAction::SendPli | KeyframeAction::SendFir { .. } => {
                self.plis += 1;
                !(self.ignores_pli)(self.plis)
            }
        };
        self.requests += 1;
        if honoured {
            let due = now + self.latency + self.jitter * (self.requests * 7 % 4);
            self.asked = Some(self.asked.map_or(due, |asked| asked.min(due)));
        }
    }

    /// Runs the call for `length`: the receiver asks at start, as [`super::super::receiver`] does.
    fn run(&mut self, policy: &mut KeyframePolicy, length: Duration) -> Run {
        let t0 = crate::clock::monotonic().into_std();
        let frame = MS(40);
        let mut run = Run::default();
        let mut last_natural = t0;
        let mut waiting = false;
        policy.request(t0);
        let mut now = t0;
        while now < t0 + length {
            // A frame: an IDR if asked for or naturally due.
            policy.on_video(now);
            let natural = now >= last_natural + self.natural;
            if natural || self.asked.is_some_and(|due| now >= due) {
                last_natural = now;
                self.asked = None;
                run.keyframes.push(now);
                policy.on_keyframe(now);
            }
            // The governor may act between frames: step through its timeouts.
            let next_frame = now + frame;
            let mut at = now;
            loop {
                let actions = drain(policy, at);
                for action in actions {
                    if !waiting {
                        run.episodes.push(Vec::new());
                    }
                    waiting = true;
                    if let Some(episode) = run.episodes.last_mut() {
                        episode.push(action);
                    }
                    self.on_action(at, action);
                }
                waiting = policy.waiting();
                match policy.poll_timeout() {
                    Some(next) if next > at && next < next_frame => at = next,
                    _ => break,
                }
            }
            now = next_frame;
        }
        run
    }
}

#[test]
fn a_sender_that_ignores_one_pli_in_three_stays_within_the_limit() {
    for limit in [S(2), S(4)] {
        for latency in [MS(50), MS(150), MS(400)] {
            let mut policy = KeyframePolicy::new(config(limit));
            let mut sender = Sender::new(S(10), latency, |n| n % 3 == 0);
            let run = sender.run(&mut policy, S(300));
            let counters = policy.counters();
            assert!(
                run.longest_gop() <= limit,
                "limit {limit:?}, latency {latency:?}: longest GOP {:?}, {counters:?}\n{:?}",
                run.longest_gop(),
                run.gops()
            );
            assert!(counters.rtcp_unanswered >= 1, "{counters:?}");
            assert!(counters.via_info >= 1, "{counters:?}");
            // Asking ahead does not mean asking needlessly early: no GOP under half the limit.
            let shortest = run.gops().into_iter().min().unwrap_or_default();
            assert!(shortest >= limit / 2, "{:?}", run.gops());
        }
    }
}

#[test]
fn an_answer_time_that_varies_by_request_still_fits() {
    for limit in [S(2), S(4)] {
        let mut policy = KeyframePolicy::new(config(limit));
        let mut sender = Sender::new(S(10), MS(40), |n| n % 3 == 0);
        sender.jitter = MS(40);
        let run = sender.run(&mut policy, S(300));
        assert!(
            run.longest_gop() <= limit,
            "limit {limit:?}: {:?}, {:?}",
            policy.counters(),
            run.gops()
        );
    }
}

#[test]
fn a_sender_that_never_answers_rtcp_is_asked_with_info_from_then_on() {
    let limit = S(4);
    let mut policy = KeyframePolicy::new(config(limit));
    let mut sender = Sender::new(S(10), MS(200), |_| true);
    let run = sender.run(&mut policy, S(120));
    // The first episode finds out: a PLI, unanswered, then INFO with the retry.
    let first = &run.episodes[0];
    assert_eq!(
        first[..3],
        [
            KeyframeAction::SendPli,
            KeyframeAction::SendInfo,
            KeyframeAction::SendPli
        ]
    );
    assert!(policy.prefers_info());
    // Every later episode asks with INFO from its first round, and one round is enough.
    assert!(run.episodes.len() >= 30, "{}", run.episodes.len());
    for episode in &run.episodes[1..] {
        assert_eq!(
            episode[..],
            [KeyframeAction::SendInfo, KeyframeAction::SendPli],
            "{:?}",
            run.episodes
        );
    }
    assert!(run.longest_gop() <= limit, "{:?}", run.gops());
}

#[test]
fn a_fast_sender_is_asked_once_per_gop_and_never_with_info() {
    let limit = S(2);
    let mut policy = KeyframePolicy::new(config(limit));
    let mut sender = Sender::new(S(10), MS(40), |_| false);
    let run = sender.run(&mut policy, S(120));
    let counters = policy.counters();
    assert_eq!(counters.via_info, 0, "{counters:?}");
    assert_eq!(counters.rtcp_unanswered, 0, "{counters:?}");
    assert!(
        counters.requests <= run.keyframes.len() as u64 + 1,
        "{counters:?}, {} keyframes",
        run.keyframes.len()
    );
    assert_eq!(counters.answers, counters.requests);
    assert!(run.longest_gop() <= limit, "{:?}", run.gops());
    // The measured response lets it ask late: GOPs close to the limit, not half of it.
    let response = policy.response_time().unwrap();
    assert!(response <= MS(80), "{response:?}");
    assert!(policy.lead() <= MS(550), "{:?}", policy.lead());
    let shortest = run.gops().into_iter().skip(2).min().unwrap();
    assert!(shortest >= limit - MS(600), "{:?}", run.gops());
}

#[test]
fn a_sender_with_short_gops_of_its_own_is_not_asked_after_the_start() {
    let mut policy = KeyframePolicy::new(config(S(4)));
    let mut sender = Sender::new(S(1), MS(100), |_| false);
    sender.run(&mut policy, S(60));
    assert_eq!(policy.counters().requests, 1, "{:?}", policy.counters());
}

#[test]
fn asks_on_demand_then_escalates_on_the_first_unanswered_request() {
    let t0 = crate::clock::monotonic().into_std();
    let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
    assert_eq!(drain(&mut policy, t0), vec![]);
    policy.on_keyframe(t0);
    policy.request(t0 + MS(100));
    assert_eq!(
        drain(&mut policy, t0 + MS(100)),
        vec![KeyframeAction::SendPli]
    );
    // Nothing measured yet: twice the assumed 500 ms.
    assert_eq!(policy.poll_timeout(), Some(t0 + MS(1100)));
    assert_eq!(drain(&mut policy, t0 + MS(1000)), vec![]);
    assert_eq!(
        drain(&mut policy, t0 + MS(1100)),
        vec![KeyframeAction::SendInfo, KeyframeAction::SendPli]
    );
    // Retries back off while the sender stays silent; INFO at most once a second.
    assert_eq!(policy.poll_timeout(), Some(t0 + MS(2100)));
    assert_eq!(
        drain(&mut policy, t0 + MS(2100)),
        vec![KeyframeAction::SendInfo, KeyframeAction::SendPli]
    );
    policy.on_keyframe(t0 + MS(2250));
    assert!(!policy.waiting());
    assert_eq!(policy.response_time(), Some(MS(150)));
    let counters = policy.counters();
    assert_eq!((counters.requests, counters.answers), (3, 1));
    assert_eq!((counters.via_info, counters.rtcp_unanswered), (2, 2));
}

#[test]
fn a_caller_that_sends_no_keyframe_for_a_minute_gets_few_sip_infos() {
    let t0 = crate::clock::monotonic().into_std();
    let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
    policy.on_keyframe(t0);
    let mut actions = Vec::new();
    let mut now = t0;
    while now < t0 + S(60) {
        actions.extend(drain(&mut policy, now));
        now = policy.poll_timeout().unwrap();
    }
    let infos = actions
        .iter()
        .filter(|a| **a == KeyframeAction::SendInfo)
        .count();
    let plis = actions.len() - infos;
    // INFO after 1, 2, 4, 8, 16 s…; PLI once a second at most.
    assert!((5..=7).contains(&infos), "{infos} INFOs");
    assert!((55..=62).contains(&plis), "{plis} PLIs");
}

#[test]
fn requests_pause_while_the_sender_sends_no_video_and_start_afresh_with_its_next_packet() {
    let t0 = crate::clock::monotonic().into_std();
    let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
    policy.on_video(t0);
    policy.on_keyframe(t0);
    policy.on_video(t0 + MS(1200));
    // Asks at half the limit (nothing measured yet), then the video stops (hold).
    assert_eq!(policy.poll_timeout(), Some(t0 + S(2)));
    assert_eq!(drain(&mut policy, t0 + S(2)), vec![KeyframeAction::SendPli]);
    // The retry would come after the sender fell silent: no timer, no SIP INFO.
    assert_eq!(policy.poll_timeout(), None);
    assert_eq!(drain(&mut policy, t0 + S(30)), vec![]);
    // Video again: the episode starts afresh (the silence was no unanswered request).
    policy.on_video(t0 + S(31));
    assert_eq!(
        drain(&mut policy, t0 + S(31)),
        vec![KeyframeAction::SendPli]
    );
    assert_eq!(policy.counters().rtcp_unanswered, 0);
    assert_eq!(policy.poll_timeout(), Some(t0 + S(32)));
}

#[test]
fn the_first_keyframe_of_a_stream_is_not_taken_as_a_response_time() {
    let t0 = crate::clock::monotonic().into_std();
    let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
    policy.request(t0);
    assert_eq!(drain(&mut policy, t0), vec![KeyframeAction::SendPli]);
    policy.on_keyframe(t0 + MS(5));
    assert_eq!(policy.response_time(), None);
    assert_eq!(policy.counters().answers, 1);
    // Until measured, the first episode opens at half the limit.
    assert_eq!(policy.poll_timeout(), Some(t0 + MS(2005)));
}

#[test]
fn asks_ahead_of_the_limit_by_the_measured_response_and_with_fir_when_negotiated() {
    let t0 = crate::clock::monotonic().into_std();
    let mut policy = KeyframePolicy::new(KeyframePolicyConfig {
        use_fir: true,
        ..Default::default()
    });
    policy.on_keyframe(t0);
    policy.request(t0);
    assert_eq!(
        drain(&mut policy, t0),
        vec![KeyframeAction::SendFir { seq: 1 }]
    );
    policy.on_keyframe(t0 + MS(200));
    assert_eq!(policy.response_time(), Some(MS(200)));
    // wait 400 + answer 200 + margin 250.
    assert_eq!(policy.lead(), MS(850));
    assert_eq!(policy.poll_timeout(), Some(t0 + MS(3350)));
    assert_eq!(drain(&mut policy, t0 + MS(3300)), vec![]);
    assert_eq!(
        drain(&mut policy, t0 + MS(3350)),
        vec![KeyframeAction::SendFir { seq: 2 }]
    );
    // A slower answer counts at once; a faster one only by a quarter.
    policy.on_keyframe(t0 + MS(4150));
    assert_eq!(policy.response_time(), Some(MS(800)));
    assert_eq!(policy.lead(), MS(2000), "never more than half the limit");
    policy.request(t0 + S(5));
    drain(&mut policy, t0 + S(5));
    policy.on_keyframe(t0 + MS(5400));
    assert_eq!(policy.response_time(), Some(MS(700)));
    assert_eq!(policy.observed_interval(), Some(MS(1250)));
}

#[test]
fn an_on_demand_request_during_an_episode_does_not_restart_it() {
    let t0 = crate::clock::monotonic().into_std();
    let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
    policy.request(t0);
    drain(&mut policy, t0);
    policy.request(t0 + MS(100));
    assert_eq!(drain(&mut policy, t0 + MS(100)), vec![]);
}
