//! Circuit breaker for the companion callout. After `failures` consecutive failed callouts the
//! filter stops calling out for `cooldown_ms`, so a dead companion costs clients nothing but a
//! bypass. After the cool-down one probe request is let through: success closes the breaker,
//! failure opens it for another cool-down. Time is an argument (milliseconds on any monotonic
//! or wall clock); nothing here reads a clock. One breaker per worker VM.

use crate::config::BreakerSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        consecutive: u32,
    },
    /// No callouts until `until`.
    Open {
        until: u64,
    },
    /// One probe is in flight; others are refused until `deadline`. A probe whose answer never
    /// comes (the client went away and Envoy cancelled the callout) must not wedge the breaker,
    /// so after `deadline` the next request becomes a new probe.
    HalfOpen {
        deadline: u64,
    },
}

/// What [`Breaker::record_failure`] did, so the caller can count and log a trip once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: State,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: State::Closed { consecutive: 0 },
        }
    }

    /// Whether a callout may be made now. Call only when the request will really call out: in
    /// the half-open state this hands out the single probe.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { deadline: until } if now_ms < until => false,
            State::Open { .. } | State::HalfOpen { .. } => {
                self.state = State::HalfOpen {
                    deadline: now_ms.saturating_add(self.settings.cooldown_ms),
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
        let open = State::Open {
            until: now_ms.saturating_add(self.settings.cooldown_ms),
        };
        match self.state {
            State::Closed { consecutive } => {
                let consecutive = consecutive.saturating_add(1);
                if consecutive >= self.settings.failures {
                    self.state = open;
                    Transition::Opened
                } else {
                    self.state = State::Closed { consecutive };
                    Transition::None
                }
            }
            State::HalfOpen { .. } => {
                self.state = open;
                Transition::Opened
            }
            // A straggler dispatched before the breaker opened: the cool-down stands as it is.
            State::Open { .. } => Transition::None,
        }
    }

    pub fn is_open(&self, now_ms: u64) -> bool {
        match self.state {
            State::Closed { .. } => false,
            State::Open { until } | State::HalfOpen { deadline: until } => now_ms < until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(BreakerSettings {
            failures,
            cooldown_ms,
        })
    }

    #[test]
    fn stays_closed_below_the_threshold() {
        let mut b = breaker(3, 1000);
        assert_eq!(b.record_failure(0), Transition::None);
        assert_eq!(b.record_failure(1), Transition::None);
        assert!(b.allow(2));
        assert!(!b.is_open(2));
    }

    #[test]
    fn opens_after_n_consecutive_failures_and_refuses_during_cooldown() {
        let mut b = breaker(3, 1000);
        b.record_failure(0);
        b.record_failure(10);
        assert_eq!(b.record_failure(20), Transition::Opened);
        assert!(b.is_open(20));
        assert!(!b.allow(20));
        assert!(!b.allow(1019));
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = breaker(2, 1000);
        b.record_failure(0);
        b.record_success();
        assert_eq!(b.record_failure(1), Transition::None);
        assert!(b.allow(2));
        assert_eq!(b.record_failure(3), Transition::Opened);
    }

    #[test]
    fn one_probe_after_cooldown_then_success_closes() {
        let mut b = breaker(1, 1000);
        b.record_failure(0);
        assert!(!b.allow(999));
        assert!(b.allow(1000), "probe");
        assert!(!b.allow(1001), "only one probe in flight");
        b.record_success();
        assert!(!b.is_open(1002));
        assert!(b.allow(1002));
        assert!(b.allow(1003));
    }

    #[test]
    fn failed_probe_reopens_for_a_full_cooldown() {
        let mut b = breaker(5, 1000);
        for t in 0..5 {
            b.record_failure(t);
        }
        assert!(b.allow(1004));
        assert_eq!(b.record_failure(1500), Transition::Opened);
        assert!(!b.allow(2499));
        assert!(b.allow(2500));
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let mut b = breaker(1, 1000);
        b.record_failure(0);
        assert!(b.allow(1000));
        // No answer ever arrives for that probe.
        assert!(!b.allow(1999));
        assert!(b.allow(2000), "a new probe once the probe deadline passed");
    }

    #[test]
    fn stragglers_while_open_neither_extend_nor_count() {
        let mut b = breaker(1, 1000);
        b.record_failure(0);
        assert_eq!(b.record_failure(900), Transition::None);
        assert!(b.allow(1000));
    }

    #[test]
    fn a_straggling_success_closes_an_open_breaker() {
        let mut b = breaker(1, 1000);
        b.record_failure(0);
        b.record_success();
        assert!(b.allow(1));
    }

    #[test]
    fn time_near_the_end_of_the_clock_saturates() {
        let mut b = breaker(1, u64::MAX);
        b.record_failure(u64::MAX - 1);
        assert!(!b.allow(u64::MAX - 1));
        assert!(b.is_open(u64::MAX - 1));
    }
}
