//! The cache flow behind `/v1/fetch`, by RFC 9111 (the pure rules of [`http`](crate::http)): look the key (and its
//! variant) up in Hazelcast, then
//!
//! - **hit**: a fresh entry answers (a 304 to a matching conditional client);
//! - **stale**: within stale-while-revalidate the entry answers while one background refresh
//!   runs;
//! - **revalidate**: a stale entry (or a client's `no-cache`) is validated with a conditional
//!   origin GET; a 304 refreshes it; an origin failure within stale-if-error serves it;
//! - **miss**: one origin fetch per key ([`coalesce`](crate::coalesce): locally and across
//!   the fleet), then **store** ([`store`]) and answer;
//! - **too large**: a body over `--max-entry-bytes` is answered `pass` (the filter sends the
//!   request upstream, so the client gets it whole) and remembered with a too-large marker
//!   under the key for `--too-large-ttl-secs`; a lookup that finds the marker passes at once,
//!   so later requests cost the origin one fetch, not two.
//!
//! A stored 200 answers a single byte `Range` itself (206 or 416, [`range`](crate::http::range));
//! a miss asks the origin for the whole response. A 206 the origin sends anyway is stored as a
//! piece ([`partial`](crate::http::partial)): while fresh it answers the ranges it covers, and
//! for a range it lacks the missing bytes are asked for (`Range` + `If-Range`) and combined
//! within one representation, into the whole 200 once complete. A plain GET over a piece is a
//! miss that replaces it with the whole.
//!
//! Every failure of ours becomes `x-hzcache-outcome: error`, on which the filter fails open.
//! The parts: the request (`fetch_request`), the answers (`answer`), variants (`vary`),
//! coalescing (`coalesce`), writing and deleting (`store`).

pub mod store;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_RANGE, IF_RANGE, RANGE};
use hyper::StatusCode;
use tracing::Instrument;

use crate::answer::{
    body_value_answer, entry_answer, invalid_origin_answer, only_if_cached_answer, origin_answer,
    piece_plan, Answer, Forwarded, Served,
};
use crate::coalesce::{flight_key, Claim, Done, Inflight, Marker, Role, Waited, INFLIGHT_MAP};
use crate::config::{Config, Origin};
use crate::entry::{header_map, header_pairs, Entry, TooLarge, VaryIndex};
use crate::feed_driver::FeedHandle;
use crate::fetch_request::{key_digest, FetchRequest, Mode};
use crate::headers::{merge_not_modified, strip_for_client_in_place, strip_for_storage};
use crate::http::age::{age_to_send, Times};
use crate::http::lifetime::Freshness;
use crate::http::partial::{
    combine, if_range_for, may_combine, storable_piece, Piece, PieceAnswer,
};
use crate::http::reuse::{reuse, stale_if_unreachable, RequestRules, Reuse};
use crate::http::storable::{decide, Decision, Policy};
use crate::http::validation::conditional_request;
use crate::http::vary::top_language;
use crate::metrics::{ErrorKind, Event, Metrics, Outcome};
use crate::origin::{OriginClient, OriginError, OriginResponse};
use crate::vary::{decode_primary, language_alias, select_vary, variant_key};
use hazelcast_client::{Client, HazelcastError, Map, Ttl, Value};

/// The shared state of the cache flow.
pub struct Cache {
    pub config: Config,
    pub hazelcast: Client,
    pub origin: OriginClient,
    pub metrics: Metrics,
    /// Names this companion in its in-flight markers (for debugging who holds a key).
    pub instance: String,
    /// Keys with an origin fetch under way here.
    inflight: Arc<Inflight>,
    /// The invalidation feed of the served maps (`/v1/feed`); its driver is started apart.
    pub feed: FeedHandle,
}

/// Wall-clock milliseconds, for entry ages. Entries are compared across companions, so this is
/// the one place that reads the system clock rather than a monotonic one.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What Hazelcast holds for a request.
enum Found {
    /// Nothing usable. `index` is the variant index, when there is one, so a new variant joins
    /// its generation.
    Nothing {
        index: Option<VaryIndex>,
    },
    /// A value of a type hzcache does not write, in a `body` map: neither served nor replaced.
    Foreign,
    /// A `body`-mode value, ready to serve (no metadata: Hazelcast's TTL is its freshness).
    Body(Answer),
    Entry(Entry),
    /// A too-large marker this companion's entry limit does not fit: pass without fetching.
    TooLarge,
}

/// The answer for a key known to be too large to store.
fn too_large() -> Answer {
    Answer::pass("too-large")
}

/// How a fetch that ended with `answer` (a stored one, or a pass) ended for its waiters.
fn done_of(answer: &Answer) -> Done {
    if answer.outcome_name() == "pass" {
        Done::Pass
    } else {
        Done::Stored
    }
}

/// A stored entry being revalidated, and whether it may answer if the origin fails.
#[derive(Clone)]
struct Stale {
    entry: Entry,
    if_error: bool,
}

impl Cache {
    pub fn new(config: Config, hazelcast: Client, origin: OriginClient) -> Cache {
        let inflight = Arc::new(Inflight::new(config.origin_timeout));
        let feed = FeedHandle::new(config.maps.keys().cloned().collect());
        let mut metrics = Metrics::default();
        metrics.register_collector(Box::new(feed.clone()));
        Cache {
            feed,
            config,
            hazelcast,
            origin,
            metrics,
            instance: format!(
                "companion-{}-{:x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            inflight,
        }
    }

    pub async fn fetch(self: &Arc<Self>, req: FetchRequest) -> Answer {
        // The span shows up on every warning of this request: the key (URL and query) only
        // as a digest, and in full at debug level below.
        let span = tracing::info_span!(
            "fetch",
            map = %req.map,
            key = %key_digest(&req.key),
            method = %req.method,
            outcome = tracing::field::Empty
        );
        span.in_scope(|| tracing::debug!(key = %req.key, "looking up"));
        let answer = self
            .fetch_inner(Arc::new(req))
            .instrument(span.clone())
            .await;
        span.record("outcome", answer.outcome_name());
        let _enter = span.enter();
        tracing::debug!(status = answer.status.as_u16(), "answered");
        answer
    }

    async fn fetch_inner(self: &Arc<Self>, req: Arc<FetchRequest>) -> Answer {
        // The filter gives up at its callout timeout; answering before it is what lets a stale
        // entry (or a `pass`) reach the client while the origin hangs.
        let deadline = req.deadline.map(|d| tokio::time::Instant::now() + d);
        let rules = RequestRules::from_request(&req.client_headers);
        // The lookup is bounded on its own: a member that stopped answering (a GC pause, a
        // frozen VM) would hold its partitions' reads until the Hazelcast timeout, and a cache
        // slower than the origin helps nobody. Past the bound the request goes upstream as if
        // there were no cache; the companion itself is healthy, so this is a `pass`, not an
        // error the filter's breaker counts.
        let lookup_until = match (self.config.lookup_timeout, deadline) {
            (Some(t), Some(d)) => Some(d.min(tokio::time::Instant::now() + t)),
            (Some(t), None) => Some(tokio::time::Instant::now() + t),
            (None, d) => d,
        };
        let lookup = self.lookup(&req);
        let looked_up = match lookup_until {
            Some(until) => tokio::time::timeout_at(until, lookup).await.ok(),
            None => Some(lookup.await),
        };
        let found = match looked_up {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Hazelcast lookup failed; filter will fail open");
                self.metrics.error(ErrorKind::Hazelcast);
                self.metrics.outcome(Outcome::Error);
                return Answer::error(StatusCode::SERVICE_UNAVAILABLE, &format!("hazelcast: {e}"));
            }
            None => {
                tracing::warn!(
                    "Hazelcast lookup slower than --lookup-timeout-ms; passing upstream"
                );
                self.metrics.error(ErrorKind::HazelcastTimeout);
                self.metrics.outcome(Outcome::Pass);
                return Answer::pass("lookup-slow");
            }
        };
        let now = now_ms();
        // A stored piece (a 206, RFC 9111 §3.3) answers the ranges it covers while it is
        // fresh; a range it lacks is asked of the origin and combined with it (§3.4); anything
        // else (a plain GET, a stale piece, a piece without a strong validator) is a miss that
        // fetches the whole response and replaces the piece.
        let found = match found {
            Found::Entry(entry) if entry.status == 206 => {
                let fresh = reuse(&entry.freshness, &rules, now) == Reuse::Fresh;
                match piece_plan(&req, &entry, now) {
                    Some((_, PieceAnswer::Covered { .. } | PieceAnswer::Unsatisfiable))
                        if fresh =>
                    {
                        return self.served(&req, &entry, Served::Hit, Outcome::Hit, now);
                    }
                    Some((
                        piece,
                        PieceAnswer::Missing {
                            fetch_first,
                            fetch_last,
                            ..
                        },
                    )) if fresh && !rules.only_if_cached => {
                        let stored = header_map(&entry.headers);
                        match if_range_for(&stored, now.div_euclid(1000)) {
                            Some(if_range) => {
                                let fetch = (fetch_first, fetch_last);
                                let completing =
                                    self.complete_piece(&req, entry, piece, if_range, fetch);
                                return match deadline {
                                    None => completing.await,
                                    Some(d) => tokio::time::timeout_at(d, completing)
                                        .await
                                        .unwrap_or_else(|_| self.past_deadline(&req, None)),
                                };
                            }
                            None => Found::Nothing { index: None },
                        }
                    }
                    _ => Found::Nothing { index: None },
                }
            }
            found => found,
        };
        // only-if-cached (RFC 9111 §5.2.1.7): what storage can answer, or a 504; the origin
        // is never asked.
        if rules.only_if_cached {
            let answer = match found {
                Found::Body(answer) if !rules.revalidate => Some(answer),
                Found::Entry(entry) => match reuse(&entry.freshness, &rules, now) {
                    Reuse::Fresh => Some(self.served(&req, &entry, Served::Hit, Outcome::Hit, now)),
                    Reuse::StaleWhileRevalidate => Some(self.served(
                        &req,
                        &entry,
                        Served::Stale("stale-while-revalidate"),
                        Outcome::Stale,
                        now,
                    )),
                    Reuse::StaleAllowed => Some(self.served(
                        &req,
                        &entry,
                        Served::Stale("max-stale"),
                        Outcome::Stale,
                        now,
                    )),
                    Reuse::Revalidate { .. } => None,
                },
                _ => None,
            };
            return answer.unwrap_or_else(|| {
                self.metrics.outcome(Outcome::Miss);
                only_if_cached_answer()
            });
        }
        let (stale, overwrite, index) = match found {
            // The filter's own upstream request answers, a fresh one: no-cache is satisfied.
            Found::TooLarge => return self.known_too_large(),
            Found::Body(answer) if !rules.revalidate => {
                self.metrics.outcome(Outcome::Hit);
                return answer;
            }
            Found::Body(_) => (None, true, None),
            Found::Foreign => (None, false, None),
            Found::Nothing { index } => (None, true, index),
            Found::Entry(entry) => match reuse(&entry.freshness, &rules, now) {
                Reuse::Fresh => return self.served(&req, &entry, Served::Hit, Outcome::Hit, now),
                Reuse::StaleWhileRevalidate => {
                    self.refresh_in_background(&req, &entry);
                    let how = Served::Stale("stale-while-revalidate");
                    return self.served(&req, &entry, how, Outcome::Stale, now);
                }
                Reuse::StaleAllowed => {
                    let how = Served::Stale("max-stale");
                    return self.served(&req, &entry, how, Outcome::Stale, now);
                }
                Reuse::Revalidate { stale_if_error } => (
                    Some(Stale {
                        entry,
                        if_error: stale_if_error,
                    }),
                    true,
                    None,
                ),
            },
        };
        // A revalidation may only be satisfied by an entry stored after this request came
        // (a client's no-cache, or a stale entry refreshed by someone else meanwhile).
        let since = if stale.is_some() || rules.revalidate {
            now
        } else {
            i64::MIN
        };
        let Some(deadline) = deadline else {
            return self.coalesced(req, stale, overwrite, index, since).await;
        };
        let fallback = stale.clone();
        let fetch = self.coalesced(req.clone(), stale, overwrite, index, since);
        match tokio::time::timeout_at(deadline, fetch).await {
            Ok(answer) => answer,
            // The fetch runs on in its own task (a coalesced leader) and stores what it gets.
            Err(_) => self.past_deadline(&req, fallback),
        }
    }

    /// The origin has not answered within the filter's deadline: a stale entry that allows it
    /// answers (stale-if-error: the origin is failing to answer in time), else `pass`, so the
    /// filter sends the request upstream rather than timing out on the companion.
    fn past_deadline(&self, req: &FetchRequest, stale: Option<Stale>) -> Answer {
        self.metrics.event(Event::Deadline);
        match stale.filter(|s| s.if_error) {
            Some(s) => self.served(
                req,
                &s.entry,
                Served::Stale("origin-slow"),
                Outcome::Stale,
                now_ms(),
            ),
            None => {
                tracing::debug!("origin slower than the filter's deadline; passing");
                self.metrics.outcome(Outcome::Pass);
                Answer::pass("origin-slow")
            }
        }
    }

    /// The answer for a stored entry, counted under `outcome` (or as a 304).
    fn served(
        &self,
        req: &FetchRequest,
        entry: &Entry,
        how: Served,
        outcome: Outcome,
        now: i64,
    ) -> Answer {
        let a = entry_answer(req, entry, how, now);
        self.count_served(&a, outcome);
        a
    }

    fn known_too_large(&self) -> Answer {
        self.metrics.event(Event::TooLargeKnown);
        self.metrics.outcome(Outcome::Pass);
        too_large()
    }

    fn count_served(&self, a: &Answer, outcome: Outcome) {
        if matches!(
            a.status,
            StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE
        ) {
            self.metrics.event(Event::RangeAnswered);
        }
        self.metrics
            .outcome(if a.status == StatusCode::NOT_MODIFIED {
                Outcome::NotModified
            } else if a.outcome_name() == "pass" {
                Outcome::Pass
            } else {
                outcome
            });
    }

    async fn timed_get(&self, map: &Map, key: &str) -> Result<Option<Value>, HazelcastError> {
        let t = Instant::now();
        let r = map.get(key).await;
        self.metrics.hazelcast_latency(t.elapsed());
        r
    }

    /// Reads the primary key and, for a varying response, the request's variant.
    async fn lookup(&self, req: &FetchRequest) -> Result<Found, HazelcastError> {
        let map = self.hazelcast.map(&req.map);
        let value = self.timed_get(&map, &req.key).await?;
        let b = match (req.mode, value) {
            (_, None) => return Ok(Found::Nothing { index: None }),
            (Mode::Body, Some(v)) => {
                return Ok(body_value_answer(req, v).map_or(Found::Foreign, Found::Body))
            }
            (Mode::Envelope, Some(Value::Bytes(b))) => b,
            (Mode::Envelope, Some(_)) => return Ok(Found::Nothing { index: None }),
        };
        match TooLarge::decode(&b) {
            // A companion with a larger limit than the one that marked the key fetches (and
            // overwrites the marker if the body fits).
            Ok(Some(m)) if m.at_least > self.config.max_entry_bytes as u64 => {
                return Ok(Found::TooLarge)
            }
            Ok(Some(_)) => return Ok(Found::Nothing { index: None }),
            Err(e) => {
                tracing::warn!(error = %e, "stored too-large marker does not decode; refetching");
                return Ok(Found::Nothing { index: None });
            }
            Ok(None) => {}
        }
        match decode_primary(&b) {
            (Some(entry), _) => Ok(Found::Entry(entry)),
            (None, Some(index)) => {
                let selected = select_vary(&req.client_headers, &index.names);
                let vk = variant_key(&req.key, index.id, &selected);
                if let Some(e) = self.variant(&map, &vk, &selected).await? {
                    return Ok(Found::Entry(e));
                }
                // A variant whose Content-Language is the language this request prefers
                // above all (vary.rs, language aliases).
                let alias =
                    top_language(&req.client_headers).and_then(|l| language_alias(&selected, &l));
                if let Some(alias) = alias {
                    let ak = variant_key(&req.key, index.id, &alias);
                    if let Some(e) = self.variant(&map, &ak, &alias).await? {
                        return Ok(Found::Entry(e));
                    }
                }
                Ok(Found::Nothing { index: Some(index) })
            }
            (None, None) => {
                tracing::warn!("stored value is not a valid envelope; refetching");
                Ok(Found::Nothing { index: None })
            }
        }
    }

    /// The variant stored under `vk`, if it names exactly the `selected` values: a hash
    /// collision or a foreign value is a miss, never another client's variant.
    async fn variant(
        &self,
        map: &Map,
        vk: &str,
        selected: &[(String, bytes::Bytes)],
    ) -> Result<Option<Entry>, HazelcastError> {
        Ok(match self.timed_get(map, vk).await? {
            Some(Value::Bytes(vb)) => Entry::decode(&vb).ok().filter(|e| e.vary == selected),
            _ => None,
        })
    }

    /// A miss or revalidation, coalesced with every other one for the same key.
    async fn coalesced(
        self: &Arc<Self>,
        req: Arc<FetchRequest>,
        stale: Option<Stale>,
        overwrite: bool,
        index: Option<VaryIndex>,
        since: i64,
    ) -> Answer {
        match self.inflight.join_or_lead(flight_key(&req.map, &req.key)) {
            Role::Leader(flight) => {
                // The leader runs in its own task: if the filter stops waiting (its timeout),
                // the origin answer is still stored for the others rather than thrown away.
                let this = self.clone();
                let span = tracing::Span::current();
                let task = tokio::spawn(
                    async move {
                        let mut flight = flight;
                        let (answer, done) =
                            this.lead(&req, stale, overwrite, index, false, since).await;
                        flight.done = done;
                        answer
                    }
                    .instrument(span),
                );
                match task.await {
                    Ok(a) => a,
                    Err(e) => Answer::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("miss task failed: {e}"),
                    ),
                }
            }
            Role::Waiter(rx) => {
                self.metrics.event(Event::CoalescedLocal);
                match self.inflight.wait(rx).await {
                    Some(Done::Pass) => {
                        self.metrics.outcome(Outcome::Pass);
                        return Answer::pass("too-large");
                    }
                    Some(Done::Stored) => {
                        if let Some(a) = self.fresh_hit(&req, since).await {
                            return a;
                        }
                    }
                    Some(Done::NotStored) => {}
                    None => self.metrics.event(Event::CoalesceTimeout),
                }
                // Nothing shareable came of the other fetch: this request fetches for itself.
                let this = self.clone();
                let task = tokio::spawn(async move {
                    this.fetch_origin(&req, stale, overwrite, index).await.0
                });
                task.await.unwrap_or_else(|e| {
                    Answer::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("task failed: {e}"),
                    )
                })
            }
            Role::Alone => self.fetch_origin(&req, stale, overwrite, index).await.0,
        }
    }

    /// A fresh stored answer for `req`, if Hazelcast has one now (after a coalesced fetch),
    /// stored at `since` or later. The request's own no-cache is then satisfied: the entry
    /// was fetched after the request arrived.
    async fn fresh_hit(&self, req: &FetchRequest, since: i64) -> Option<Answer> {
        let now = now_ms();
        match self.lookup(req).await.ok()? {
            // A piece only for a range it covers.
            Found::Entry(e)
                if e.status == 206
                    && !matches!(
                        piece_plan(req, &e, now),
                        Some((_, PieceAnswer::Covered { .. } | PieceAnswer::Unsatisfiable))
                    ) =>
            {
                None
            }
            Found::Entry(e)
                if e.freshness.stored_at_ms >= since
                    && reuse(&e.freshness, &RequestRules::default(), now) == Reuse::Fresh =>
            {
                Some(self.served(req, &e, Served::Collapsed, Outcome::Hit, now))
            }
            Found::Body(a) if since == i64::MIN => {
                self.metrics.outcome(Outcome::Hit);
                Some(a)
            }
            // Marked by whoever fetched meanwhile: passing costs the origin one request.
            Found::TooLarge => Some(self.known_too_large()),
            _ => None,
        }
    }

    /// The leader of a coalesced fetch: takes the cluster-wide in-flight marker (or waits on
    /// whoever holds it), fetches, stores, releases. `background`: a stale-while-revalidate
    /// refresh, which gives up when another companion already refreshes.
    async fn lead(
        self: &Arc<Self>,
        req: &FetchRequest,
        stale: Option<Stale>,
        overwrite: bool,
        index: Option<VaryIndex>,
        background: bool,
        since: i64,
    ) -> (Answer, Done) {
        let marker = Marker::new(
            self.hazelcast.map(INFLIGHT_MAP),
            flight_key(&req.map, &req.key),
            self.config.origin_timeout,
            &self.instance,
        );
        match marker.claim_within(self.config.lookup_timeout).await {
            Claim::Held => {
                // Another companion may have finished between our lookup and taking the marker.
                let answer = match self.fresh_hit(req, since).await {
                    Some(a) => {
                        let done = done_of(&a);
                        (a, done)
                    }
                    None => self.fetch_origin(req, stale, overwrite, index).await,
                };
                marker.release().await;
                answer
            }
            Claim::Elsewhere if background => (Answer::pass("refresh-elsewhere"), Done::NotStored),
            Claim::Elsewhere => {
                self.metrics.event(Event::CoalescedRemote);
                match marker.wait_for_holder(|| self.fresh_hit(req, since)).await {
                    Waited::Found(a) => {
                        let done = done_of(&a);
                        return (a, done);
                    }
                    Waited::TimedOut => self.metrics.event(Event::CoalesceTimeout),
                    Waited::Released => {}
                }
                if let Some(a) = self.fresh_hit(req, since).await {
                    let done = done_of(&a);
                    return (a, done);
                }
                self.fetch_origin(req, stale, overwrite, index).await
            }
            Claim::Slow => {
                tracing::debug!(
                    "in-flight marker slower than --lookup-timeout-ms; fetching uncoordinated"
                );
                self.fetch_origin(req, stale, overwrite, index).await
            }
            Claim::Unavailable(e) => {
                tracing::debug!(error = %e, "no in-flight marker; fetching uncoordinated");
                self.fetch_origin(req, stale, overwrite, index).await
            }
        }
    }

    /// Starts one background refresh of a stale entry, unless one already runs here (the
    /// in-flight table) or in another companion (the marker).
    fn refresh_in_background(self: &Arc<Self>, req: &Arc<FetchRequest>, entry: &Entry) {
        let Role::Leader(flight) = self.inflight.join_or_lead(flight_key(&req.map, &req.key))
        else {
            return;
        };
        self.metrics.event(Event::BackgroundRefresh);
        let (this, req) = (self.clone(), req.clone());
        let stale = Stale {
            entry: entry.clone(),
            if_error: true,
        };
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
                let mut flight = flight;
                let since = now_ms();
                let (_, done) = this.lead(&req, Some(stale), true, None, true, since).await;
                flight.done = done;
            }
            .instrument(span),
        );
    }

    /// One origin fetch (conditional when revalidating), then store and answer.
    async fn fetch_origin(
        &self,
        req: &FetchRequest,
        stale: Option<Stale>,
        overwrite: bool,
        index: Option<VaryIndex>,
    ) -> (Answer, Done) {
        let Some(origin) = self.config.origins.get(&req.origin) else {
            // A rule naming an origin this companion lacks: that rule's requests go upstream
            // (`pass`), without counting against the companion for every other rule.
            tracing::warn!(origin = %req.origin, "origin is not configured (--origin NAME=URL); passing");
            self.metrics.error(ErrorKind::BadRequest);
            self.metrics.outcome(Outcome::Pass);
            return (Answer::pass("unknown-origin"), Done::NotStored);
        };
        let conditional = stale
            .as_ref()
            .map(|s| conditional_request(&header_map(&s.entry.headers)))
            .unwrap_or_default();
        // Why this request goes forward (RFC 9211 `fwd`): a stored entry that is stale, or
        // fresh but the client asked for validation; a variant not stored yet; nothing stored.
        let fwd = match (&stale, &index) {
            (Some(s), _) => {
                if reuse(&s.entry.freshness, &RequestRules::default(), now_ms()) == Reuse::Fresh {
                    "request"
                } else {
                    "stale"
                }
            }
            (None, Some(_)) => "vary-miss",
            (None, None) => "uri-miss",
        };
        if !conditional.is_empty() {
            self.metrics.event(Event::Revalidation);
        }
        let (fetched, times) = self.origin_get(origin, req, &conditional).await;
        let resp = match fetched {
            Ok(r) if r.status.is_server_error() && stale.as_ref().is_some_and(|s| s.if_error) => {
                self.metrics.error(ErrorKind::OriginStatus);
                return self.stale_if_error(req, stale, times.response_ms);
            }
            Ok(r) => r,
            Err(OriginError::TooLarge { limit, at_least }) => {
                tracing::debug!(limit, at_least, "origin body over the entry limit; passing");
                self.metrics.error(ErrorKind::TooLarge);
                self.metrics.outcome(Outcome::Pass);
                let over_variants =
                    index.is_some() || stale.as_ref().is_some_and(|s| !s.entry.vary.is_empty());
                if overwrite && !over_variants {
                    self.mark_too_large(req, at_least, times.response_ms).await;
                }
                return (too_large(), Done::Pass);
            }
            Err(OriginError::OverBudget { limit }) => {
                // Memory, not the origin, is short: a stale entry may still answer.
                if stale.as_ref().is_some_and(|s| s.if_error) {
                    self.metrics.event(Event::OverBudget);
                    return self.stale_if_error(req, stale, times.response_ms);
                }
                tracing::debug!(limit, "origin bodies in flight at the budget; passing");
                self.metrics.event(Event::OverBudget);
                self.metrics.outcome(Outcome::Pass);
                return (Answer::pass("busy"), Done::NotStored);
            }
            Err(e) => {
                self.metrics.error(match e {
                    OriginError::Timeout(_) => ErrorKind::OriginTimeout,
                    _ => ErrorKind::Origin,
                });
                if stale.as_ref().is_some_and(|s| s.if_error) {
                    tracing::info!(error = %e, "origin failed; serving stale (stale-if-error)");
                    return self.stale_if_error(req, stale, times.response_ms);
                }
                // A disconnected cache (RFC 9111 §4.2.4): the origin cannot be reached, and
                // the entry allows a short stale use for that (`--stale-if-unreachable-secs`).
                if let (OriginError::Unreachable(_), Some(s)) = (&e, &stale) {
                    if stale_if_unreachable(&s.entry.freshness, times.response_ms) {
                        tracing::info!(error = %e, "origin unreachable; serving stale");
                        let how = Served::Stale("origin-unreachable");
                        let a = self.served(req, &s.entry, how, Outcome::Stale, times.response_ms);
                        return (a, Done::NotStored);
                    }
                }
                // Not valid HTTP: the filter must not ask the origin again (its upstream
                // request would), so the companion answers a 502 itself; nothing is stored.
                if let OriginError::Invalid(_) = e {
                    tracing::warn!(origin = %req.origin, error = %e, "origin answer is not valid HTTP; answering 502");
                    self.metrics.outcome(Outcome::Miss);
                    return (invalid_origin_answer(), Done::NotStored);
                }
                // The origin's failure, not ours: `pass` sends the request upstream, where the
                // client gets what the origin (or Envoy) answers, and the filter's breaker
                // does not count it against the companion.
                tracing::warn!(origin = %req.origin, error = %e, "origin fetch failed; passing");
                self.metrics.outcome(Outcome::Pass);
                return (Answer::pass("origin-failed"), Done::NotStored);
            }
        };
        if resp.status == StatusCode::NOT_MODIFIED {
            if let Some(s) = stale.filter(|_| !conditional.is_empty()) {
                return self
                    .refreshed(req, s.entry, resp, times, overwrite, index, fwd)
                    .await;
            }
        }
        self.fresh_response(req, resp, times, overwrite, index, fwd)
            .await
    }

    /// One origin request for `req` with the cache's own request fields `extra` (validators,
    /// a `Range`), timed: the answer, and when it was asked and answered (RFC 9111 §4.2.3).
    async fn origin_get(
        &self,
        origin: &Origin,
        req: &FetchRequest,
        extra: &HeaderMap,
    ) -> (Result<OriginResponse, OriginError>, Times) {
        let request_ms = now_ms();
        let started = Instant::now();
        let fetched = self
            .origin
            .get(
                origin,
                &req.path,
                &req.host,
                req.scheme,
                &req.client_headers,
                extra,
                self.config.max_entry_bytes,
            )
            .await;
        self.metrics.origin_latency(started.elapsed());
        let times = Times {
            request_ms,
            response_ms: now_ms(),
        };
        (fetched, times)
    }

    /// Records under the request's key that its body is too large to store, for
    /// `--too-large-ttl-secs`, so the next lookups pass without fetching. Only in envelope maps
    /// (a `body`-mode map holds plain values an application may read) and never over a variant
    /// index (that would orphan the variants that do fit). Best effort: without the marker
    /// the next request just fetches and passes again.
    async fn mark_too_large(&self, req: &FetchRequest, at_least: u64, now: i64) {
        let ttl = self.config.too_large_ttl;
        if req.mode != Mode::Envelope || ttl.is_zero() {
            return;
        }
        let marker = TooLarge {
            marked_at_ms: now,
            at_least,
        };
        let map = self.hazelcast.map(&req.map);
        match map
            .set(&req.key, &Value::Bytes(marker.encode()), Ttl::After(ttl))
            .await
        {
            Ok(()) => self.metrics.event(Event::TooLargeMarked),
            Err(e) => {
                self.metrics.error(ErrorKind::Store);
                tracing::warn!(error = %e, "could not store the too-large marker");
            }
        }
    }

    fn stale_if_error(&self, req: &FetchRequest, stale: Option<Stale>, now: i64) -> (Answer, Done) {
        match stale {
            Some(s) => (
                self.served(
                    req,
                    &s.entry,
                    Served::Stale("stale-if-error"),
                    Outcome::Stale,
                    now,
                ),
                Done::NotStored,
            ),
            None => (Answer::pass("origin-failed"), Done::NotStored),
        }
    }

    /// The origin said 304: the stored entry, its headers updated, is fresh again.
    #[allow(clippy::too_many_arguments)]
    async fn refreshed(
        &self,
        req: &FetchRequest,
        old: Entry,
        resp: OriginResponse,
        times: Times,
        overwrite: bool,
        index: Option<VaryIndex>,
        fwd: &'static str,
    ) -> (Answer, Done) {
        let headers = merge_not_modified(&header_map(&old.headers), &resp.headers);
        let decision = decide(
            "GET",
            &req.client_headers,
            old.status,
            &headers,
            &self.policy(req),
            times,
        );
        let done = match decision {
            Decision::Store(f) if overwrite => {
                self.store(req, old.status, &headers, &old.body, f, index)
                    .await
            }
            _ => Done::NotStored,
        };
        let entry = Entry {
            status: old.status,
            freshness: match decision {
                Decision::Store(f) => f,
                Decision::DontStore(_) => Freshness {
                    stored_at_ms: times.response_ms,
                    ..Freshness::default()
                },
            },
            vary: old.vary,
            tags: old.tags,
            headers: header_pairs(&headers),
            body: old.body,
        };
        let a = entry_answer(req, &entry, Served::Revalidated(fwd), times.response_ms);
        self.count_served(&a, Outcome::Revalidated);
        (a, done)
    }

    /// Asks the origin for the bytes `fetch` a fresh stored piece lacks for this request, with
    /// `If-Range` naming the piece's strong validator, so that only the same representation
    /// comes back as a 206 (RFC 9110 §13.1.5). A 206 of that representation is combined with
    /// the piece (RFC 9111 §3.4: the same strong validator and complete length, the new
    /// response's fields updating the stored ones) and stored: as the whole 200 once it
    /// reaches from the first byte to the last, else as the larger piece; the client's range
    /// is cut from it. Anything else is treated as a fresh answer for the key: a 200 (the
    /// representation changed) is stored whole and relayed, a 206 that does not combine
    /// replaces the piece and answers only if it covers the range (else `pass`). Not
    /// coalesced: two requests for missing bytes fetch their own.
    async fn complete_piece(
        &self,
        req: &FetchRequest,
        stored: Entry,
        piece: Piece,
        if_range: HeaderValue,
        fetch: (u64, u64),
    ) -> Answer {
        let Some(origin) = self.config.origins.get(&req.origin) else {
            tracing::warn!(origin = %req.origin, "origin is not configured (--origin NAME=URL); passing");
            self.metrics.error(ErrorKind::BadRequest);
            self.metrics.outcome(Outcome::Pass);
            return Answer::pass("unknown-origin");
        };
        let mut ask = HeaderMap::new();
        // Digits only: always a valid field value.
        if let Ok(v) = HeaderValue::try_from(format!("bytes={}-{}", fetch.0, fetch.1)) {
            ask.insert(RANGE, v);
        }
        ask.insert(IF_RANGE, if_range);
        self.metrics.event(Event::PieceFetch);
        let (fetched, times) = self.origin_get(origin, req, &ask).await;
        let resp = match fetched {
            Ok(r) => r,
            Err(e) => {
                // The filter sends the client's own request upstream: one origin request, and
                // the piece stays as it was.
                tracing::debug!(error = %e, "fetching the rest of a piece failed; passing");
                self.metrics.error(match e {
                    OriginError::Timeout(_) => ErrorKind::OriginTimeout,
                    OriginError::TooLarge { .. } => ErrorKind::TooLarge,
                    _ => ErrorKind::Origin,
                });
                self.metrics.outcome(Outcome::Pass);
                return Answer::pass("origin-failed");
            }
        };
        if resp.status == StatusCode::PARTIAL_CONTENT {
            let stored_headers = header_map(&stored.headers);
            let now_secs = times.response_ms.div_euclid(1000);
            let combined =
                storable_piece(&resp.headers, resp.body.len(), self.config.max_entry_bytes)
                    .ok()
                    .filter(|new| {
                        may_combine(&stored_headers, piece, &resp.headers, *new, now_secs)
                    })
                    .and_then(|new| combine(piece, &stored.body, new, &resp.body));
            if let Some((union, body)) = combined {
                self.metrics.event(Event::PiecesCombined);
                return self
                    .store_combined(req, &stored_headers, &resp.headers, union, body, times)
                    .await;
            }
            tracing::debug!("the origin's piece is of another representation; replacing");
        }
        self.fresh_response(req, resp, times, true, None, "partial")
            .await
            .0
    }

    /// Stores the union of a piece and the bytes the origin sent for it, and answers the
    /// client's range from it.
    async fn store_combined(
        &self,
        req: &FetchRequest,
        stored: &HeaderMap,
        new: &HeaderMap,
        union: Piece,
        body: Vec<u8>,
        times: Times,
    ) -> Answer {
        // RFC 9111 §3.4: the new response's fields update the stored ones (as a 304's do,
        // §3.2), and the combined response says what it now holds.
        let mut headers = merge_not_modified(stored, new);
        let status = if union.is_whole() {
            headers.remove(CONTENT_RANGE);
            200
        } else {
            headers.insert(CONTENT_RANGE, union.content_range());
            206
        };
        let body = Bytes::from(body);
        let decision = decide(
            "GET",
            &req.client_headers,
            status,
            &headers,
            &self.policy(req),
            times,
        );
        let freshness = match decision {
            Decision::Store(f) => {
                self.store(req, status, &headers, &body, f, None).await;
                f
            }
            Decision::DontStore(why) => {
                self.metrics.event(Event::NotStored);
                tracing::debug!(why, "combined response not stored");
                Freshness {
                    stored_at_ms: times.response_ms,
                    ..Freshness::default()
                }
            }
        };
        let entry = Entry {
            status,
            freshness,
            vary: vec![],
            tags: vec![],
            headers: header_pairs(&headers),
            body,
        };
        let a = entry_answer(req, &entry, Served::Fetched("partial"), times.response_ms);
        self.count_served(&a, Outcome::Miss);
        a
    }

    /// The rule's policy with the companion's own settings.
    fn policy(&self, req: &FetchRequest) -> Policy {
        Policy {
            stale_if_unreachable: self.config.stale_if_unreachable_secs,
            ..req.policy
        }
    }

    /// A full response from the origin: store it if it may be, and answer the client.
    #[allow(clippy::too_many_arguments)]
    async fn fresh_response(
        &self,
        req: &FetchRequest,
        resp: OriginResponse,
        times: Times,
        overwrite: bool,
        index: Option<VaryIndex>,
        fwd: &'static str,
    ) -> (Answer, Done) {
        let status = resp.status.as_u16();
        let mut decision = decide(
            "GET",
            &req.client_headers,
            status,
            &resp.headers,
            &self.policy(req),
            times,
        );
        // A 206 is stored only as a consistent piece of a representation that fits the entry
        // limit (RFC 9111 §3.3; a hostile Content-Range is never stored).
        if let (206, Decision::Store(_)) = (status, &decision) {
            if let Err(why) =
                storable_piece(&resp.headers, resp.body.len(), self.config.max_entry_bytes)
            {
                decision = Decision::DontStore(why);
            }
        }
        let mut done = Done::NotStored;
        let mut stored_piece = None;
        // Age on every answer (RFC 9111 §5.1): the corrected initial age of §4.2.3, stored or
        // not; sent when it is not zero or the origin sent one (`Age: 0` included).
        let age = age_to_send(&resp.headers, times);
        let mut stored_ttl = None;
        match decision {
            Decision::Store(f) if overwrite => {
                let ttl = u64::from(f.lifetime_secs).saturating_sub(u64::from(f.initial_age_secs));
                let stored_headers = strip_for_storage(&resp.headers);
                done = self
                    .store(req, status, &stored_headers, &resp.body, f, index)
                    .await;
                if done == Done::Stored {
                    stored_ttl = Some(ttl);
                    if status == 206 {
                        stored_piece = Some(Entry {
                            status,
                            freshness: f,
                            vary: vec![],
                            tags: vec![],
                            headers: header_pairs(&stored_headers),
                            body: resp.body.clone(),
                        });
                    }
                }
            }
            Decision::Store(_) => tracing::debug!("not overwriting a value hzcache did not write"),
            Decision::DontStore(why) => {
                self.metrics.event(Event::NotStored);
                tracing::debug!(why, "not storing");
            }
        }
        if resp.status.is_server_error() {
            self.metrics.error(ErrorKind::OriginStatus);
        }
        // A piece just stored answers a range request from what it holds: the origin's 206
        // may be of other bytes than the client asked for (an origin that answers with a
        // piece unasked, or the bytes a stored piece lacked). A range it does not cover is
        // `pass`: the filter asks the origin for it.
        if let Some(piece) = stored_piece.filter(|_| req.client_headers.contains_key(RANGE)) {
            let a = entry_answer(req, &piece, Served::Fetched(fwd), times.response_ms);
            self.count_served(&a, Outcome::Miss);
            return (a, done);
        }
        // The bytes a stored piece lacked, of another representation and not stored: not
        // what the client asked for.
        if status == 206 && fwd == "partial" {
            self.metrics.outcome(Outcome::Pass);
            return (Answer::pass("partial-changed"), done);
        }
        self.metrics.outcome(Outcome::Miss);
        let mut headers = resp.headers;
        strip_for_client_in_place(&mut headers);
        let how = Forwarded { fwd, stored_ttl };
        let answer = origin_answer(
            req,
            resp.status,
            headers,
            resp.body,
            age,
            how,
            times.response_ms,
        );
        (answer, done)
    }
}
