//! The companion's health as one worker VM sees it, and the circuit breaker built on it.
//! Sans-IO: time is an argument (milliseconds on any clock), nothing here reads a clock or
//! calls the host.
//!
//! - **What counts**: only the companion's own failures (a callout reset, timeout or dispatch
//!   error, the companion's 5xx or a refused credential). An answer about one request (`pass`,
//!   a 4xx for its input) is a healthy companion; the origin's slowness never reaches here,
//!   because the companion answers within the deadline the filter gives it.
//! - **Open and probe**: after `failures` consecutive failures no callout is made; after a
//!   short probe interval one request probes. A failed probe doubles the interval, up to
//!   `cooldown_ms`; any success closes the breaker. So recovery follows health within
//!   `cooldown_ms` (2 s by default), and a dead companion costs one probe request per interval.
//! - **Stall**: a companion that accepts callouts and never answers (SIGSTOP, a hung process)
//!   would make every request wait the whole callout timeout before failures could be counted.
//!   So the callouts in flight are tracked. When one has waited `stall_ms` and the companion
//!   has answered nothing for that long, it is *suspect* — which a healthy companion waiting on
//!   a slow origin also is, so the glue then pings it (`/healthz`, answered at once by a live
//!   companion whatever the origin does). A ping with no answer at all for [`PING_GRACE_MS`]
//!   (not even Envoy's 503 for a refused connection: a companion that refuses connections is
//!   not hung, its callouts fail by themselves) means *stalled*: new requests bypass at once, and the waiting ones are handed back to the glue
//!   ([`Health::release_stalled`]) to continue upstream. Any answer ends the stall; late
//!   answers of released callouts still count for the breaker.

use std::collections::BTreeMap;

use crate::config::BreakerSettings;

/// The first probe interval after the breaker opens; it doubles after each failed probe.
pub const FIRST_PROBE_MS: u64 = 250;
/// How long a ping may go unanswered before the companion counts as stalled: a live companion
/// answers `/healthz` in milliseconds, even with every origin fetch hanging.
pub const PING_GRACE_MS: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        consecutive: u32,
    },
    /// No callouts until `until`; `interval` is the wait that led here.
    Open {
        until: u64,
        interval: u64,
    },
    /// One probe is in flight; others are refused until `deadline`. A probe whose answer never
    /// comes (the client went away and Envoy cancelled the callout) must not wedge the breaker,
    /// so after `deadline` the next request becomes a new probe.
    HalfOpen {
        deadline: u64,
        interval: u64,
    },
}

/// What [`Health::record_failure`] did, so the caller can count and log a trip once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
}

/// Which stream of a request waits for a callout: the request (a lookup) or the response (an
/// invalidation after an unsafe request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiting {
    Request,
    Response,
}

/// What an answered token was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Its stream still waits for it.
    Waiting,
    /// Its stream was already released upstream by [`Health::release_stalled`]: the answer
    /// only tells about the companion's health.
    Released,
    /// The health ping.
    Ping,
    /// Not tracked (never dispatched through [`Health::dispatched`]).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    context_id: u32,
    since: u64,
    waiting: Waiting,
    released: bool,
}

#[derive(Debug, Clone)]
pub struct Health {
    settings: BreakerSettings,
    state: State,
    /// Callouts dispatched and not answered yet, by token.
    in_flight: BTreeMap<u32, InFlight>,
    /// When the companion last answered anything (a reset or timeout is no answer).
    last_alive: Option<u64>,
    /// The health ping in flight, if any.
    ping: Option<u32>,
    /// Since when pings have gone unanswered (cleared by any answer).
    unanswered_since: Option<u64>,
}

impl Health {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: State::Closed { consecutive: 0 },
            in_flight: BTreeMap::new(),
            last_alive: None,
            ping: None,
            unanswered_since: None,
        }
    }

    fn first_interval(&self) -> u64 {
        FIRST_PROBE_MS.min(self.settings.cooldown_ms)
    }

    /// Whether a callout may be made now. Call only when the request will really call out: in
    /// the half-open state this hands out the single probe.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        if self.stalled(now_ms) {
            return false;
        }
        match self.state {
            State::Closed { .. } => true,
            State::Open { until, .. }
            | State::HalfOpen {
                deadline: until, ..
            } if now_ms < until => false,
            State::Open { interval, .. } | State::HalfOpen { interval, .. } => {
                // A probe may wait for the whole callout timeout; until then no other probe.
                self.state = State::HalfOpen {
                    deadline: now_ms.saturating_add(self.settings.probe_deadline_ms),
                    interval,
                };
                true
            }
        }
    }

    /// The companion answered: whatever the state, it is reachable again.
    pub fn record_success(&mut self) {
        self.state = State::Closed { consecutive: 0 };
    }

    pub fn record_failure(&mut self, now_ms: u64) -> Transition {
        match self.state {
            State::Closed { consecutive } => {
                let consecutive = consecutive.saturating_add(1);
                if consecutive >= self.settings.failures {
                    let interval = self.first_interval();
                    self.state = State::Open {
                        until: now_ms.saturating_add(interval),
                        interval,
                    };
                    Transition::Opened
                } else {
                    self.state = State::Closed { consecutive };
                    Transition::None
                }
            }
            State::HalfOpen { interval, .. } => {
                // Back off, but never past the cool-down: recovery stays within it.
                let interval = interval.saturating_mul(2).min(self.settings.cooldown_ms);
                self.state = State::Open {
                    until: now_ms.saturating_add(interval),
                    interval,
                };
                Transition::None
            }
            // A straggler dispatched before the breaker opened: the wait stands as it is.
            State::Open { .. } => Transition::None,
        }
    }

    pub fn is_open(&self, now_ms: u64) -> bool {
        match self.state {
            State::Closed { .. } => false,
            State::Open { until, .. }
            | State::HalfOpen {
                deadline: until, ..
            } => now_ms < until,
        }
    }

    /// A callout was dispatched for `context_id`'s `waiting` stream.
    pub fn dispatched(&mut self, token: u32, context_id: u32, waiting: Waiting, now_ms: u64) {
        self.in_flight.insert(
            token,
            InFlight {
                context_id,
                since: now_ms,
                waiting,
                released: false,
            },
        );
    }

    /// A callout ended: `alive` when the companion answered it (any answer), not when Envoy
    /// reported a reset or timeout.
    pub fn answered(&mut self, token: u32, alive: bool, now_ms: u64) -> Answered {
        if alive {
            self.last_alive = Some(now_ms);
            self.unanswered_since = None;
        }
        if self.ping == Some(token) {
            self.ping = None;
            return Answered::Ping;
        }
        match self.in_flight.remove(&token) {
            Some(f) if f.released => Answered::Released,
            Some(_) => Answered::Waiting,
            None => Answered::Unknown,
        }
    }

    /// The stream went away (Envoy cancels its callout, so no answer will come).
    pub fn forget(&mut self, token: u32) {
        self.in_flight.remove(&token);
    }

    /// Whether the companion is suspect: a callout has waited `stall_ms` and the companion has
    /// answered nothing for that long. A healthy companion waiting on a slow origin for every
    /// request in flight looks the same, so this only starts a ping.
    fn suspect(&self, now_ms: u64) -> bool {
        let Some(horizon) = now_ms.checked_sub(self.settings.stall_ms) else {
            return false;
        };
        let waited_long = self
            .in_flight
            .values()
            .any(|f| !f.released && f.since <= horizon);
        waited_long && self.last_alive.is_none_or(|t| t <= horizon)
    }

    /// Whether the companion is stalled: pings have gone unanswered for [`PING_GRACE_MS`].
    pub fn stalled(&self, now_ms: u64) -> bool {
        self.unanswered_since
            .is_some_and(|t| now_ms.saturating_sub(t) >= PING_GRACE_MS)
    }

    /// Whether the glue should ping the companion now (suspect or stalled, no ping out).
    pub fn wants_ping(&self, now_ms: u64) -> bool {
        self.ping.is_none() && (self.suspect(now_ms) || self.unanswered_since.is_some())
    }

    /// A ping was dispatched.
    pub fn ping_sent(&mut self, token: u32, now_ms: u64) {
        self.ping = Some(token);
        self.unanswered_since.get_or_insert(now_ms);
    }

    /// While stalled: every stream still waiting for a callout, to continue upstream now.
    /// Each is handed out once; its callout stays tracked for its health answer.
    pub fn release_stalled(&mut self, now_ms: u64) -> Vec<(u32, Waiting)> {
        if !self.stalled(now_ms) {
            return Vec::new();
        }
        self.in_flight
            .values_mut()
            .filter(|f| !f.released)
            .map(|f| {
                f.released = true;
                (f.context_id, f.waiting)
            })
            .collect()
    }

    /// Callouts dispatched and not answered (released ones included).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32, cooldown_ms: u64) -> Health {
        Health::new(BreakerSettings {
            failures,
            cooldown_ms,
            stall_ms: 1000,
            probe_deadline_ms: 5000,
        })
    }

    #[test]
    fn stays_closed_below_the_threshold() {
        let mut b = health(3, 2000);
        assert_eq!(b.record_failure(0), Transition::None);
        assert_eq!(b.record_failure(1), Transition::None);
        assert!(b.allow(2));
        assert!(!b.is_open(2));
    }

    #[test]
    fn opens_after_n_consecutive_failures_and_probes_soon() {
        let mut b = health(3, 2000);
        b.record_failure(0);
        b.record_failure(10);
        assert_eq!(b.record_failure(20), Transition::Opened);
        assert!(b.is_open(20));
        assert!(!b.allow(20));
        assert!(!b.allow(20 + FIRST_PROBE_MS - 1));
        assert!(b.allow(20 + FIRST_PROBE_MS), "the first probe");
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = health(2, 2000);
        b.record_failure(0);
        b.record_success();
        assert_eq!(b.record_failure(1), Transition::None);
        assert!(b.allow(2));
        assert_eq!(b.record_failure(3), Transition::Opened);
    }

    #[test]
    fn one_probe_at_a_time_then_success_closes() {
        let mut b = health(1, 2000);
        b.record_failure(0);
        assert!(b.allow(FIRST_PROBE_MS), "probe");
        assert!(!b.allow(FIRST_PROBE_MS + 1), "only one probe in flight");
        b.record_success();
        assert!(!b.is_open(FIRST_PROBE_MS + 2));
        assert!(b.allow(FIRST_PROBE_MS + 2));
        assert!(b.allow(FIRST_PROBE_MS + 3));
    }

    #[test]
    fn failed_probes_back_off_but_never_past_the_cooldown() {
        let mut b = health(1, 2000);
        b.record_failure(0);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let mut t = now;
            while !b.allow(t) {
                t += 1;
            }
            waits.push(t - now);
            now = t;
            assert_eq!(
                b.record_failure(now),
                Transition::None,
                "counted once per trip"
            );
        }
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
    }

    #[test]
    fn recovery_follows_health_within_the_cooldown() {
        // However long the companion was down, a healthy one is asked again within cooldown_ms.
        let mut b = health(1, 2000);
        b.record_failure(0);
        let mut now = 0;
        while now < 60_000 {
            if b.allow(now) {
                b.record_failure(now);
            }
            now += 10;
        }
        let healthy_at = now;
        while !b.allow(now) {
            now += 10;
        }
        assert!(
            now - healthy_at <= 2000,
            "probe {} ms after recovery",
            now - healthy_at
        );
        b.record_success();
        assert!(b.allow(now + 1));
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let mut b = health(1, 2000);
        b.record_failure(0);
        assert!(b.allow(FIRST_PROBE_MS));
        // No answer ever arrives for that probe.
        assert!(!b.allow(FIRST_PROBE_MS + 4999));
        assert!(
            b.allow(FIRST_PROBE_MS + 5000),
            "a new probe after the probe deadline"
        );
    }

    #[test]
    fn stragglers_while_open_neither_extend_nor_count() {
        let mut b = health(1, 2000);
        b.record_failure(0);
        assert_eq!(b.record_failure(100), Transition::None);
        assert!(b.allow(FIRST_PROBE_MS));
    }

    #[test]
    fn a_straggling_success_closes_an_open_breaker() {
        let mut b = health(1, 2000);
        b.record_failure(0);
        b.record_success();
        assert!(b.allow(1));
    }

    #[test]
    fn time_near_the_end_of_the_clock_saturates() {
        let mut b = health(1, u64::MAX);
        b.record_failure(u64::MAX - 1);
        assert!(!b.allow(u64::MAX - 1));
        assert!(b.is_open(u64::MAX - 1));
    }

    #[test]
    fn a_companion_that_answers_no_ping_is_stalled() {
        let mut b = health(5, 2000);
        b.dispatched(1, 10, Waiting::Request, 0);
        b.dispatched(2, 11, Waiting::Response, 500);
        assert!(!b.wants_ping(999));
        assert!(
            b.wants_ping(1000),
            "suspect: a callout waited a second, no answer"
        );
        b.ping_sent(100, 1000);
        assert!(!b.wants_ping(1100), "one ping at a time");
        assert!(!b.stalled(1000 + PING_GRACE_MS - 1));
        assert!(b.allow(1000 + PING_GRACE_MS - 1), "suspect is not stalled");
        b.dispatched(3, 12, Waiting::Request, 1400);
        let at = 1000 + PING_GRACE_MS;
        assert!(b.stalled(at));
        assert!(!b.allow(at), "new requests bypass at once");
        let mut released = b.release_stalled(at);
        released.sort_unstable();
        assert_eq!(
            released,
            [
                (10, Waiting::Request),
                (11, Waiting::Response),
                (12, Waiting::Request)
            ]
        );
        assert!(
            b.release_stalled(at + 1).is_empty(),
            "each is released once"
        );
        // The ping times out (no answer): still stalled, and another ping goes out.
        assert_eq!(b.answered(100, false, 2000), Answered::Ping);
        assert!(b.stalled(2001));
        assert!(b.wants_ping(2001));
        b.ping_sent(101, 2001);
        // The ends of released callouts still tell about health; a timeout is no sign of life.
        assert_eq!(b.answered(1, false, 5000), Answered::Released);
        assert_eq!(b.answered(9, false, 5000), Answered::Unknown);
        assert!(b.stalled(5001));
        assert_eq!(b.answered(101, true, 5100), Answered::Ping);
        assert!(!b.stalled(5101), "the companion answered again");
        assert!(b.allow(5101));
        assert_eq!(b.answered(2, true, 5200), Answered::Released);
    }

    #[test]
    fn a_companion_waiting_on_a_slow_origin_answers_the_ping_and_is_not_stalled() {
        let mut b = health(5, 2000);
        for t in 0..10 {
            b.dispatched(t, 10 + t, Waiting::Request, u64::from(t) * 10);
        }
        assert!(b.wants_ping(1100));
        b.ping_sent(99, 1100);
        assert_eq!(b.answered(99, true, 1105), Answered::Ping);
        assert!(!b.stalled(5000));
        assert!(b.release_stalled(5000).is_empty());
        assert!(b.allow(5000));
    }

    #[test]
    fn answers_to_other_callouts_mean_no_suspicion() {
        // A slow miss waits, but hits keep being answered: the companion is alive.
        let mut b = health(5, 2000);
        b.dispatched(1, 10, Waiting::Request, 0);
        for t in (100..5000).step_by(300) {
            b.dispatched(t as u32 + 100, 20, Waiting::Request, t);
            assert_eq!(b.answered(t as u32 + 100, true, t + 5), Answered::Waiting);
            assert!(!b.wants_ping(t + 10), "at {t}");
            assert!(b.allow(t + 10));
        }
        assert_eq!(b.answered(1, true, 5000), Answered::Waiting);
    }

    #[test]
    fn a_stream_that_went_away_is_forgotten() {
        let mut b = health(5, 2000);
        b.dispatched(1, 10, Waiting::Request, 0);
        b.forget(1);
        assert!(!b.wants_ping(10_000));
    }
}
