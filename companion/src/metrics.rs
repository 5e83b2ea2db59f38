//! The companion's Prometheus metrics: a fixed set of counters and latency histograms held in
//! atomics, written out by hand in the text exposition format for `/metrics`. Every label set
//! is a closed enum, so the number of series is fixed (no key, map or origin names as labels).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What happened to one `/v1/fetch`, counted in `hzcache_requests_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    /// Served stale (stale-while-revalidate or stale-if-error).
    Stale,
    /// A stored entry validated with the origin (304) and served.
    Revalidated,
    /// Answered 304 to a client's conditional request.
    NotModified,
    Pass,
    Error,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Stale,
        Outcome::Revalidated,
        Outcome::NotModified,
        Outcome::Pass,
        Outcome::Error,
    ];
    fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Revalidated => "revalidated",
            Outcome::NotModified => "not_modified",
            Outcome::Pass => "pass",
            Outcome::Error => "error",
        }
    }
}

/// Errors by kind, `hzcache_errors_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Hazelcast,
    Origin,
    OriginTimeout,
    OriginStatus,
    BadRequest,
    TooLarge,
    Store,
    /// A `/v1/*` call without the callout secret (answered 401, nothing touched).
    Unauthorized,
    /// A call naming a map this companion does not serve, or in another mode (403).
    ForbiddenMap,
}

impl ErrorKind {
    const ALL: [ErrorKind; 9] = [
        ErrorKind::Hazelcast,
        ErrorKind::Origin,
        ErrorKind::OriginTimeout,
        ErrorKind::OriginStatus,
        ErrorKind::BadRequest,
        ErrorKind::TooLarge,
        ErrorKind::Store,
        ErrorKind::Unauthorized,
        ErrorKind::ForbiddenMap,
    ];
    fn name(self) -> &'static str {
        match self {
            ErrorKind::Hazelcast => "hazelcast",
            ErrorKind::Origin => "origin",
            ErrorKind::OriginTimeout => "origin_timeout",
            ErrorKind::OriginStatus => "origin_5xx",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Store => "store",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::ForbiddenMap => "forbidden_map",
        }
    }
}

/// Other events, each its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request that waited for another request's origin fetch (same companion).
    CoalescedLocal,
    /// A request that waited for another companion's fetch (Hazelcast in-flight marker).
    CoalescedRemote,
    /// Waited, but the other fetch did not finish in time: fetched itself.
    CoalesceTimeout,
    /// Conditional requests sent to the origin.
    Revalidation,
    /// Background refreshes started by stale-while-revalidate.
    BackgroundRefresh,
    /// Entries removed by unsafe-method invalidation.
    Invalidation,
    /// Entries removed by the purge API.
    Purged,
    /// Responses fetched but not stored (not cacheable).
    NotStored,
    /// Range requests answered from a stored 200 or a stored piece with a 206 or a 416.
    RangeAnswered,
    /// Range requests to the origin for the bytes a stored piece lacked (RFC 9111 §3.4).
    PieceFetch,
    /// Pieces combined with the bytes the origin sent for them (of the same representation).
    PiecesCombined,
    /// Too-large markers written (a body over the entry limit).
    TooLargeMarked,
    /// Requests passed at once because a too-large marker was found (no origin fetch here).
    TooLargeKnown,
    /// Misses passed (or served stale) because origin bodies in flight held the whole
    /// `--max-inflight-body-bytes` budget.
    OverBudget,
    /// The origin had not answered by the filter's deadline: answered stale (stale-if-error)
    /// or `pass` in time, while the fetch goes on to be stored.
    Deadline,
}

impl Event {
    const ALL: [Event; 15] = [
        Event::CoalescedLocal,
        Event::CoalescedRemote,
        Event::CoalesceTimeout,
        Event::Revalidation,
        Event::BackgroundRefresh,
        Event::Invalidation,
        Event::Purged,
        Event::NotStored,
        Event::RangeAnswered,
        Event::PieceFetch,
        Event::PiecesCombined,
        Event::TooLargeMarked,
        Event::TooLargeKnown,
        Event::OverBudget,
        Event::Deadline,
    ];
    fn name(self) -> (&'static str, &'static str) {
        match self {
            Event::CoalescedLocal => ("hzcache_coalesced_waits_total", "scope=\"local\""),
            Event::CoalescedRemote => ("hzcache_coalesced_waits_total", "scope=\"cluster\""),
            Event::CoalesceTimeout => ("hzcache_coalesce_timeouts_total", ""),
            Event::Revalidation => ("hzcache_revalidations_total", ""),
            Event::BackgroundRefresh => ("hzcache_background_refreshes_total", ""),
            Event::Invalidation => ("hzcache_invalidations_total", ""),
            Event::Purged => ("hzcache_purged_entries_total", ""),
            Event::NotStored => ("hzcache_not_stored_total", ""),
            Event::RangeAnswered => ("hzcache_range_answers_total", ""),
            Event::PieceFetch => ("hzcache_piece_fetches_total", ""),
            Event::PiecesCombined => ("hzcache_pieces_combined_total", ""),
            Event::TooLargeMarked => ("hzcache_too_large_marks_total", ""),
            Event::TooLargeKnown => ("hzcache_too_large_passes_total", ""),
            Event::OverBudget => ("hzcache_inflight_budget_passes_total", ""),
            Event::Deadline => ("hzcache_deadline_answers_total", ""),
        }
    }
}

/// Histogram bucket bounds in seconds: 1 ms to 10 s, enough to tell a local Hazelcast get
/// from a slow origin.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds (an integer, so it fits an atomic).
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    errors: [AtomicU64; ErrorKind::ALL.len()],
    events: [AtomicU64; Event::ALL.len()],
    origin: Histogram,
    hazelcast: Histogram,
}

impl Metrics {
    pub fn outcome(&self, o: Outcome) {
        self.outcomes[o as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn error(&self, e: ErrorKind) {
        self.errors[e as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn event(&self, e: Event) {
        self.add(e, 1);
    }
    pub fn add(&self, e: Event, n: u64) {
        self.events[e as usize].fetch_add(n, Ordering::Relaxed);
    }
    pub fn origin_latency(&self, d: Duration) {
        self.origin.observe(d);
    }
    pub fn hazelcast_latency(&self, d: Duration) {
        self.hazelcast.observe(d);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP hzcache_requests_total Cache lookups by outcome.\n# TYPE hzcache_requests_total counter\n");
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "hzcache_requests_total{{outcome=\"{}\"}} {}",
                o.name(),
                self.outcomes[o as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP hzcache_errors_total Errors by kind.\n# TYPE hzcache_errors_total counter\n",
        );
        for e in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "hzcache_errors_total{{kind=\"{}\"}} {}",
                e.name(),
                self.errors[e as usize].load(Ordering::Relaxed)
            );
        }
        let mut typed: Vec<&str> = Vec::new();
        for e in Event::ALL {
            let (name, labels) = e.name();
            if !typed.contains(&name) {
                let _ = writeln!(out, "# TYPE {name} counter");
                typed.push(name);
            }
            let v = self.events[e as usize].load(Ordering::Relaxed);
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
        self.origin.write(
            &mut out,
            "hzcache_origin_request_duration_seconds",
            "Origin fetch time (whole exchange).",
        );
        self.hazelcast.write(
            &mut out,
            "hzcache_hazelcast_request_duration_seconds",
            "Hazelcast lookup time.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_series_with_its_count() {
        let m = Metrics::default();
        m.outcome(Outcome::Hit);
        m.outcome(Outcome::Hit);
        m.error(ErrorKind::OriginTimeout);
        m.event(Event::CoalescedRemote);
        m.origin_latency(Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("hzcache_requests_total{outcome=\"hit\"} 2\n"));
        assert!(text.contains("hzcache_errors_total{kind=\"origin_timeout\"} 1\n"));
        assert!(text.contains("hzcache_coalesced_waits_total{scope=\"cluster\"} 1\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_count 1\n"));
        assert_eq!(
            text.matches("# TYPE hzcache_coalesced_waits_total").count(),
            1
        );
    }
}
