//! The companion's Prometheus metrics: a fixed set of counters and latency histograms in a
//! `prometheus-client` registry, which writes the OpenMetrics text for `/metrics`. Every label
//! set is a closed enum, so the number of series is fixed (no key, map or origin names as
//! labels), and every series is created at start-up, so each is exposed from zero.
//!
//! A counter is registered under its family name and exposed with the `_total` suffix
//! (`hzcache_requests` → `hzcache_requests_total`), the names the dashboard and docs use.
//! Other parts add their series with [`Metrics::register_collector`] (the feed's).

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A one-label set (`outcome="hit"`); the values are the enums' fixed names.
type Label = [(&'static str, &'static str); 1];

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
    /// A lookup slower than `--lookup-timeout-ms` (the request was passed upstream).
    HazelcastTimeout,
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
    const ALL: [ErrorKind; 10] = [
        ErrorKind::Hazelcast,
        ErrorKind::HazelcastTimeout,
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
            ErrorKind::HazelcastTimeout => "hazelcast_timeout",
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
    /// The counter family (without `_total`) and its `scope` label, if any.
    fn family(self) -> (&'static str, Option<&'static str>) {
        match self {
            Event::CoalescedLocal => ("hzcache_coalesced_waits", Some("local")),
            Event::CoalescedRemote => ("hzcache_coalesced_waits", Some("cluster")),
            Event::CoalesceTimeout => ("hzcache_coalesce_timeouts", None),
            Event::Revalidation => ("hzcache_revalidations", None),
            Event::BackgroundRefresh => ("hzcache_background_refreshes", None),
            Event::Invalidation => ("hzcache_invalidations", None),
            Event::Purged => ("hzcache_purged_entries", None),
            Event::NotStored => ("hzcache_not_stored", None),
            Event::RangeAnswered => ("hzcache_range_answers", None),
            Event::PieceFetch => ("hzcache_piece_fetches", None),
            Event::PiecesCombined => ("hzcache_pieces_combined", None),
            Event::TooLargeMarked => ("hzcache_too_large_marks", None),
            Event::TooLargeKnown => ("hzcache_too_large_passes", None),
            Event::OverBudget => ("hzcache_inflight_budget_passes", None),
            Event::Deadline => ("hzcache_deadline_answers", None),
        }
    }

    fn help(self) -> &'static str {
        match self {
            Event::CoalescedLocal | Event::CoalescedRemote => {
                "Requests that waited for another request's origin fetch, here (local) or on another companion (cluster)"
            }
            Event::CoalesceTimeout => "Waits for another fetch that timed out, so the request fetched itself",
            Event::Revalidation => "Conditional requests sent to the origin",
            Event::BackgroundRefresh => "Background refreshes started by stale-while-revalidate",
            Event::Invalidation => "Entries removed by unsafe-method invalidation",
            Event::Purged => "Entries removed by the purge API.",
            Event::NotStored => "Responses fetched but not stored (not cacheable)",
            Event::RangeAnswered => "Range requests answered from a stored 200 (206 or 416)",
            Event::PieceFetch => "Range requests for the bytes a stored partial response (206) lacks",
            Event::PiecesCombined => "Stored partial responses completed into a whole 200",
            Event::TooLargeMarked => "Too-large markers written",
            Event::TooLargeKnown => "Requests passed at once for a too-large marker",
            Event::OverBudget => "Misses passed because origin bodies in flight held the budget",
            Event::Deadline => "Fetches that missed the filter's deadline (answered stale or pass)",
        }
    }
}

/// Histogram bucket bounds in seconds: 1 ms to 10 s, enough to tell a local Hazelcast get
/// from a slow origin.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The counters (clones sharing the registry's atomics, so counting takes no lock), the
/// histograms, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    outcomes: [Counter; Outcome::ALL.len()],
    errors: [Counter; ErrorKind::ALL.len()],
    events: [Counter; Event::ALL.len()],
    origin: Histogram,
    hazelcast: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let family = |registry: &mut Registry,
                      name: &str,
                      help: &str,
                      label: &'static str,
                      values: &[&'static str]| {
            let f = Family::<Label, Counter>::default();
            registry.register(name, help, f.clone());
            values
                .iter()
                .map(|v| f.get_or_create(&[(label, *v)]).clone())
                .collect::<Vec<_>>()
        };
        let outcomes = family(
            &mut registry,
            "hzcache_requests",
            "Cache lookups by outcome",
            "outcome",
            &Outcome::ALL.map(Outcome::name),
        );
        let errors = family(
            &mut registry,
            "hzcache_errors",
            "Errors by kind",
            "kind",
            &ErrorKind::ALL.map(ErrorKind::name),
        );
        // An event is a counter of its own, or one `scope` of a shared family.
        let mut scoped: Vec<(&str, Family<Label, Counter>)> = Vec::new();
        let events = Event::ALL.map(|e| match e.family() {
            (name, None) => {
                let c = Counter::default();
                registry.register(name, e.help(), c.clone());
                c
            }
            (name, Some(scope)) => {
                let f = match scoped.iter().find(|(n, _)| *n == name) {
                    Some((_, f)) => f.clone(),
                    None => {
                        let f = Family::<Label, Counter>::default();
                        registry.register(name, e.help(), f.clone());
                        scoped.push((name, f.clone()));
                        f
                    }
                };
                let c = f.get_or_create(&[("scope", scope)]).clone();
                c
            }
        });
        let origin = Histogram::new(BUCKETS);
        registry.register(
            "hzcache_origin_request_duration_seconds",
            "Origin fetch time (whole exchange)",
            origin.clone(),
        );
        let hazelcast = Histogram::new(BUCKETS);
        registry.register(
            "hzcache_hazelcast_request_duration_seconds",
            "Hazelcast lookup time",
            hazelcast.clone(),
        );
        Metrics {
            registry,
            outcomes: array(outcomes),
            errors: array(errors),
            events,
            origin,
            hazelcast,
        }
    }
}

/// The counters of one family, in the enum's order (one per value, by construction).
fn array<const N: usize>(counters: Vec<Counter>) -> [Counter; N] {
    let mut it = counters.into_iter();
    std::array::from_fn(|_| it.next().unwrap_or_default())
}

impl Metrics {
    pub fn outcome(&self, o: Outcome) {
        self.outcomes[o as usize].inc();
    }
    pub fn error(&self, e: ErrorKind) {
        self.errors[e as usize].inc();
    }
    pub fn event(&self, e: Event) {
        self.add(e, 1);
    }
    pub fn add(&self, e: Event, n: u64) {
        self.events[e as usize].inc_by(n);
    }
    pub fn origin_latency(&self, d: Duration) {
        self.origin.observe(d.as_secs_f64());
    }
    pub fn hazelcast_latency(&self, d: Duration) {
        self.hazelcast.observe(d.as_secs_f64());
    }

    /// Adds series that another part computes when scraped (the feed's).
    pub fn register_collector(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail; an encoder error would leave a partial text,
        // which a scraper refuses (no `# EOF`), never a wrong value.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
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
        m.add(Event::Purged, 3);
        m.origin_latency(Duration::from_millis(30));
        let text = m.render();
        assert!(
            text.contains("hzcache_requests_total{outcome=\"hit\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("hzcache_requests_total{outcome=\"miss\"} 0\n"));
        assert!(text.contains("hzcache_errors_total{kind=\"origin_timeout\"} 1\n"));
        assert!(text.contains("hzcache_coalesced_waits_total{scope=\"cluster\"} 1\n"));
        assert!(text.contains("hzcache_coalesced_waits_total{scope=\"local\"} 0\n"));
        assert!(text.contains("hzcache_purged_entries_total 3\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("hzcache_origin_request_duration_seconds_count 1\n"));
        assert!(text.contains("hzcache_hazelcast_request_duration_seconds_count 0\n"));
        assert_eq!(
            text.matches("# TYPE hzcache_coalesced_waits counter")
                .count(),
            1
        );
        assert!(text.ends_with("# EOF\n"));
    }

    /// The names the dashboard, the docs and the e2e tests read: the same as the hand-written
    /// exposition had, every one present from start-up.
    #[test]
    fn every_series_keeps_its_name_and_labels() {
        let text = Metrics::default().render();
        let mut series: Vec<String> = Vec::new();
        for o in Outcome::ALL {
            series.push(format!(
                "hzcache_requests_total{{outcome=\"{}\"}}",
                o.name()
            ));
        }
        for e in ErrorKind::ALL {
            series.push(format!("hzcache_errors_total{{kind=\"{}\"}}", e.name()));
        }
        for name in [
            "hzcache_coalesced_waits_total{scope=\"local\"}",
            "hzcache_coalesced_waits_total{scope=\"cluster\"}",
            "hzcache_coalesce_timeouts_total",
            "hzcache_revalidations_total",
            "hzcache_background_refreshes_total",
            "hzcache_invalidations_total",
            "hzcache_purged_entries_total",
            "hzcache_not_stored_total",
            "hzcache_range_answers_total",
            "hzcache_piece_fetches_total",
            "hzcache_pieces_combined_total",
            "hzcache_too_large_marks_total",
            "hzcache_too_large_passes_total",
            "hzcache_inflight_budget_passes_total",
            "hzcache_deadline_answers_total",
            "hzcache_origin_request_duration_seconds_sum",
            "hzcache_origin_request_duration_seconds_count",
            "hzcache_hazelcast_request_duration_seconds_sum",
            "hzcache_hazelcast_request_duration_seconds_count",
        ] {
            series.push(name.to_string());
        }
        for s in &series {
            assert!(
                text.lines().any(|l| l
                    .strip_prefix(s.as_str())
                    .is_some_and(|v| v.starts_with(' '))),
                "{s} missing:\n{text}"
            );
        }
        for b in BUCKETS
            .iter()
            .map(|b| format!("{b:?}"))
            .chain(["+Inf".to_string()])
        {
            for h in ["origin", "hazelcast"] {
                let s = format!("hzcache_{h}_request_duration_seconds_bucket{{le=\"{b}\"}} 0");
                assert!(text.contains(&s), "{s}:\n{text}");
            }
        }
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(
            samples,
            series.len() + 2 * (BUCKETS.len() + 1),
            "no other series:\n{text}"
        );
    }
}
