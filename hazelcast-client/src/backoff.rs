//! Reconnect backoff: exponential growth with a cap and jitter, as the official clients do
//! (protocol sheet §7.4). Pure: the random draw is passed in, so tests are deterministic.

use std::time::Duration;

/// Backoff settings. The companion's defaults are faster than the official clients'
/// (1 s initial, ×1.05, 30 s cap): a cache that lost its cluster serves nothing from it, and a
/// reconnect attempt against members on the same network costs almost nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The wait before the second attempt.
    pub initial: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
    /// How much each wait grows over the previous one (at least 1).
    pub multiplier: f64,
    /// Fraction (0..=1) by which each wait is randomly shortened or lengthened, so that many
    /// companions restarting together do not reconnect in lock step.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
            multiplier: 1.5,
            jitter: 0.2,
        }
    }
}

/// The state of one reconnect sequence.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    current: Duration,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            current: config.initial,
            config,
        }
    }

    /// The wait before the next attempt; `unit` is a random draw in `[0, 1)`.
    pub fn next_wait(&mut self, unit: f64) -> Duration {
        let base = self.current.as_secs_f64();
        let spread = base * self.config.jitter.clamp(0.0, 1.0);
        let wait = (base - spread + 2.0 * spread * unit.clamp(0.0, 1.0)).max(0.0);
        let grown = (base * self.config.multiplier.max(1.0)).min(self.config.max.as_secs_f64());
        self.current = Duration::from_secs_f64(grown);
        Duration::from_secs_f64(wait.min(self.config.max.as_secs_f64()))
    }

    /// Start over after a success.
    pub fn reset(&mut self) {
        self.current = self.config.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn waits_grow_by_the_multiplier_up_to_the_cap() {
        let mut b = Backoff::new(no_jitter());
        let waits: Vec<u128> = (0..5).map(|_| b.next_wait(0.5).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 400, 400]);
    }

    #[test]
    fn reset_starts_from_the_initial_wait_again() {
        let mut b = Backoff::new(no_jitter());
        b.next_wait(0.0);
        b.next_wait(0.0);
        b.reset();
        assert_eq!(b.next_wait(0.0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_the_wait_both_ways_within_its_fraction() {
        let cfg = BackoffConfig {
            jitter: 0.5,
            ..no_jitter()
        };
        assert_eq!(Backoff::new(cfg).next_wait(0.0), Duration::from_millis(50));
        assert_eq!(Backoff::new(cfg).next_wait(1.0), Duration::from_millis(150));
    }
}
