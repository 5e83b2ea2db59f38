//! The filter's counters and their names. Each request increments exactly one of `l1_hit`,
//! `hit`, `miss`, `pass`, `bypass` and `fail_open`; `breaker_open` counts breaker trips and `invalidate` the
//! invalidation callouts after unsafe requests. Envoy exposes them as
//! `wasmcustom.hzcache.*`. Defining and incrementing them is the glue's job.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Served from this Envoy's L1, without a callout.
    L1Hit,
    /// Served from Hazelcast (through the companion).
    Hit,
    /// Served by the companion after an origin fetch.
    Miss,
    /// The companion answered `pass`; the request went upstream.
    Pass,
    /// No callout: no rule, no key, body, breaker open.
    Bypass,
    /// The callout failed in any way; the request went upstream.
    FailOpen,
    /// The circuit breaker opened (once per trip, not per request).
    BreakerOpen,
    /// An invalidation callout after a successful unsafe request (in addition to `bypass`).
    Invalidate,
    /// An answer copied into the L1.
    L1Store,
    /// An L1 entry dropped because the invalidation feed named its key.
    L1Invalidation,
    /// The whole L1 dropped (a feed gap, another companion process, a stale feed).
    L1DropAll,
    /// A feed poll that failed or did not read.
    FeedError,
}

impl Counter {
    pub const ALL: [Counter; 12] = [
        Counter::L1Hit,
        Counter::Hit,
        Counter::Miss,
        Counter::Pass,
        Counter::Bypass,
        Counter::FailOpen,
        Counter::BreakerOpen,
        Counter::Invalidate,
        Counter::L1Store,
        Counter::L1Invalidation,
        Counter::L1DropAll,
        Counter::FeedError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::L1Hit => "hzcache.l1_hit",
            Counter::Hit => "hzcache.hit",
            Counter::Miss => "hzcache.miss",
            Counter::Pass => "hzcache.pass",
            Counter::Bypass => "hzcache.bypass",
            Counter::FailOpen => "hzcache.fail_open",
            Counter::BreakerOpen => "hzcache.breaker_open",
            Counter::Invalidate => "hzcache.invalidate",
            Counter::L1Store => "hzcache.l1_store",
            Counter::L1Invalidation => "hzcache.l1_invalidation",
            Counter::L1DropAll => "hzcache.l1_drop_all",
            Counter::FeedError => "hzcache.feed_error",
        }
    }

    /// Position in [`Counter::ALL`], for indexing a table of metric ids.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The gauges and the histogram, beside the counters.
pub const CALLOUT_MS: &str = "hzcache.callout_ms";
pub const FEED_LAG_MS: &str = "hzcache.feed_lag_ms";
pub const BREAKER_STATE: &str = "hzcache.breaker_state";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_all_and_names_are_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(c.name().starts_with("hzcache."));
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
    }
}
