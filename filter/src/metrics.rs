//! The filter's counters and their names. Each request increments exactly one of `hit`, `miss`,
//! `pass`, `bypass` and `fail_open`; `breaker_open` counts breaker trips and `invalidate` the
//! invalidation callouts after unsafe requests. Envoy exposes them as
//! `wasmcustom.hzcache.*`. Defining and incrementing them is the glue's job.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Served from Hazelcast.
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
}

impl Counter {
    pub const ALL: [Counter; 7] = [
        Counter::Hit,
        Counter::Miss,
        Counter::Pass,
        Counter::Bypass,
        Counter::FailOpen,
        Counter::BreakerOpen,
        Counter::Invalidate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Hit => "hzcache.hit",
            Counter::Miss => "hzcache.miss",
            Counter::Pass => "hzcache.pass",
            Counter::Bypass => "hzcache.bypass",
            Counter::FailOpen => "hzcache.fail_open",
            Counter::BreakerOpen => "hzcache.breaker_open",
            Counter::Invalidate => "hzcache.invalidate",
        }
    }

    /// Position in [`Counter::ALL`], for indexing a table of metric ids.
    pub fn index(self) -> usize {
        self as usize
    }
}

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
