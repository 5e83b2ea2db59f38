//! The cache flow behind `/v1/fetch`: read the filter's control headers (docs/callout-protocol.md),
//! look the key (and its variant) up in Hazelcast, and then, by RFC 9111 (`freshness`): serve a
//! fresh hit (or a 304 to a conditional client), serve stale while one background refresh runs,
//! or fetch from the origin — conditionally when the stored entry has validators — with every
//! concurrent miss for a key coalesced into one origin fetch per companion, and across
//! companions through an in-flight marker in Hazelcast. Every failure of ours becomes
//! `x-hzcache-outcome: error`, on which the filter fails open; stale-if-error answers with the
//! stored entry instead when it may.
//!
//! Also the two other entry points on stored data: invalidation after unsafe requests and the
//! purge API's key deletions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use tokio::sync::watch;
use tracing::Instrument;

use crate::config::Config;
use crate::entry::{variant_key, Entry, VaryIndex, ABSENT};
use crate::freshness::{
    self, current_age, has_validators, not_modified, reuse, Decision, Freshness, Policy,
    RequestRules, Reuse, Times,
};
use crate::hazelcast::{Client, HazelcastError, Map, Ttl, Value};
use crate::headers::{merge_not_modified, purge_tags, strip_for_client, strip_for_storage};
use crate::metrics::{ErrorKind, Event, Metrics, Outcome};
use crate::origin::{OriginClient, OriginError, OriginResponse};

pub const OUTCOME: &str = "x-hzcache-outcome";
/// The Hazelcast map holding in-flight markers (one per key being fetched anywhere in the
/// fleet). Kept apart from the cache maps, which applications may share.
pub const INFLIGHT_MAP: &str = "hzcache-inflight";
/// How often a companion that waits on another companion's fetch looks for its result: a
/// Hazelcast get every 25 ms is cheap, and only one request per key per companion polls.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Keys being fetched at once in one companion. Bounded by connections anyway; past this,
/// requests fetch without coalescing rather than grow the table.
const MAX_INFLIGHT: usize = 10_000;

/// How the value is kept in the map (rule `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Envelope,
    Body,
}

/// How a `body`-mode value is stored (rule `value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    Bytes,
}

/// One lookup as the filter asked for it.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    pub map: String,
    pub key: String,
    pub mode: Mode,
    pub value_type: ValueType,
    pub policy: Policy,
    pub content_type: HeaderValue,
    pub origin: String,
    pub method: String,
    pub path: String,
    pub host: String,
    /// The client's own request headers (control headers removed by the origin client).
    pub client_headers: HeaderMap,
}

/// Longest key accepted, after decoding. Hazelcast keys are Strings held in every member's
/// heap; a key this long is a mistake or an attack, not a cache key.
pub const MAX_KEY_BYTES: usize = 8 * 1024;
/// Longest lifetime or stale window a rule may send: one year, as the filter enforces.
const MAX_RULE_SECS: u32 = 31_536_000;

fn seconds(h: &HeaderMap, name: &str, zero_ok: bool) -> Result<Option<u32>, String> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let n = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|n| *n <= MAX_RULE_SECS && (zero_ok || *n > 0))
        .ok_or_else(|| {
            format!("{name}: must be a whole number of seconds up to {MAX_RULE_SECS}")
        })?;
    Ok(Some(n))
}

impl FetchRequest {
    /// Reads the control headers; the error names the header at fault.
    pub fn from_headers(h: &HeaderMap) -> Result<FetchRequest, String> {
        let text = |name: &str| -> Result<String, String> {
            let v = h.get(name).ok_or_else(|| format!("{name}: missing"))?;
            v.to_str()
                .map(str::to_string)
                .map_err(|_| format!("{name}: not visible ASCII"))
        };
        let map = text("x-hzcache-map")?;
        if map.is_empty() || map.len() > 255 {
            return Err("x-hzcache-map: must be 1 to 255 bytes".into());
        }
        let key = decode_key(&text("x-hzcache-key")?).map_err(|e| format!("x-hzcache-key: {e}"))?;
        let mode = match text("x-hzcache-mode")?.as_str() {
            "envelope" => Mode::Envelope,
            "body" => Mode::Body,
            other => return Err(format!("x-hzcache-mode: unknown mode '{other}'")),
        };
        let value_type = match h.get("x-hzcache-value-type").map(|v| v.as_bytes()) {
            None | Some(b"string") => ValueType::String,
            Some(b"bytes") => ValueType::Bytes,
            Some(_) => return Err("x-hzcache-value-type: must be string or bytes".into()),
        };
        if !h.contains_key("x-hzcache-ttl") {
            return Err("x-hzcache-ttl: missing".into());
        }
        // 0: no default lifetime (heuristic freshness off).
        let default_ttl = seconds(h, "x-hzcache-ttl", true)?.filter(|t| *t > 0);
        let policy = Policy {
            default_ttl,
            ttl_override: seconds(h, "x-hzcache-ttl-override", false)?,
            stale_while_revalidate: seconds(h, "x-hzcache-stale-while-revalidate", true)?
                .unwrap_or(0),
            stale_if_error: seconds(h, "x-hzcache-stale-if-error", true)?.unwrap_or(0),
        };
        let content_type = h
            .get("x-hzcache-content-type")
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
        let method = text("x-hzcache-request-method")?;
        if method != "GET" && method != "HEAD" {
            return Err(format!(
                "x-hzcache-request-method: '{method}' is not cacheable"
            ));
        }
        let path = text("x-hzcache-request-path")?;
        if !path.starts_with('/') {
            return Err("x-hzcache-request-path: must start with /".into());
        }
        Ok(FetchRequest {
            map,
            key,
            mode,
            value_type,
            policy,
            content_type,
            origin: h
                .get("x-hzcache-origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("default")
                .to_string(),
            method,
            path,
            host: text("x-hzcache-request-host")?,
            client_headers: h.clone(),
        })
    }
}

/// A percent-encoded key from the wire: decoded, UTF-8, 1 to `MAX_KEY_BYTES` bytes.
pub fn decode_key(s: &str) -> Result<String, String> {
    let key = percent_decode(s).ok_or("bad percent-encoding or not UTF-8")?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("must be 1 to {MAX_KEY_BYTES} bytes"));
    }
    Ok(key)
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What the companion answers the filter: status, headers (with the outcome) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    fn outcome(
        outcome: &'static str,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Answer {
        headers.insert(OUTCOME, HeaderValue::from_static(outcome));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn error(status: StatusCode, why: &str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Answer::outcome("error", status, headers, Bytes::from(format!("{why}\n")))
    }

    fn pass(reason: &'static str) -> Answer {
        let mut h = HeaderMap::new();
        h.insert("x-hzcache-reason", HeaderValue::from_static(reason));
        Answer::outcome("pass", StatusCode::OK, h, Bytes::new())
    }

    pub fn outcome_name(&self) -> &str {
        self.headers
            .get(OUTCOME)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// How a coalesced fetch ended, as the requests that waited for it need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    /// A reusable response is in Hazelcast now: look it up.
    Stored,
    /// Nothing shareable was stored (private, errors, …): fetch for yourself.
    NotStored,
    /// Too large to store: pass too.
    Pass,
}

/// A request's part in a coalesced fetch.
enum Role {
    Leader(Flight),
    Waiter(watch::Receiver<Option<Done>>),
    /// The in-flight table is full: fetch without coalescing.
    Alone,
}

/// The leader's hold on a key in the in-flight table. Dropping it (also when the leader's task
/// panics) removes the key and wakes the waiters, so nobody waits on a leader that is gone.
struct Flight {
    cache: Arc<Cache>,
    key: String,
    tx: watch::Sender<Option<Done>>,
    done: Done,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.cache
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
        let _ = self.tx.send(Some(self.done));
    }
}

/// The shared state of the cache flow.
pub struct Cache {
    pub config: Config,
    pub hazelcast: Client,
    pub origin: OriginClient,
    pub metrics: Metrics,
    /// Names this companion in its in-flight markers (for debugging who holds a key).
    pub instance: String,
    /// Keys with an origin fetch under way here. A std mutex: held only to look up or insert,
    /// never across an `.await`.
    inflight: Mutex<HashMap<String, watch::Receiver<Option<Done>>>>,
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
}

/// A stored entry being revalidated, and whether it may answer if the origin fails.
#[derive(Clone)]
struct Stale {
    entry: Entry,
    if_error: bool,
}

/// The request's values of the fields a response varies on, normalised: field lines joined
/// with ",", whitespace around commas removed; an absent field is `ABSENT`.
pub fn select_vary(request: &HeaderMap, names: &[String]) -> Vec<(String, Bytes)> {
    names
        .iter()
        .map(|n| {
            let mut parts: Vec<&[u8]> = Vec::new();
            for v in request.get_all(n.as_str()) {
                parts.extend(v.as_bytes().split(|&b| b == b',').map(freshness::trim));
            }
            let value = if request.contains_key(n.as_str()) {
                Bytes::from(parts.join(&b","[..]))
            } else {
                Bytes::from_static(ABSENT)
            };
            (n.clone(), value)
        })
        .collect()
}

fn header_map(pairs: &[(String, Bytes)]) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_maybe_shared(value.clone()),
        ) {
            h.append(n, v);
        }
    }
    h
}

/// The client answer for a stored entry: its status, headers and body, `age`, `x-cache`; a 304
/// when the client's conditional request matches. `label` is the `x-cache` value.
fn entry_answer(req: &FetchRequest, entry: &Entry, label: &'static str, now_ms: i64) -> Answer {
    let stored = header_map(&entry.headers);
    let age = current_age(&entry.freshness, now_ms);
    let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    if not_modified(
        &req.client_headers,
        entry.status,
        &stored,
        now_ms.div_euclid(1000),
    ) {
        let mut h = HeaderMap::new();
        for name in freshness::NOT_MODIFIED_HEADERS {
            for v in stored.get_all(name) {
                h.append(name, v.clone());
            }
        }
        h.insert("age", HeaderValue::from(age));
        h.insert("x-cache", HeaderValue::from_static(label));
        return Answer::outcome("hit", StatusCode::NOT_MODIFIED, h, Bytes::new());
    }
    let mut h = strip_for_client(&stored);
    h.insert("age", HeaderValue::from(age));
    h.insert("x-cache", HeaderValue::from_static(label));
    // For HEAD the body still goes to the filter: Envoy's local reply for a HEAD request sets
    // Content-Length from it and sends no body (docs/callout-protocol.md).
    Answer::outcome("hit", status, h, entry.body.clone())
}

/// Turns a `body`-mode value into a hit, or says why it is not one.
fn body_value_answer(req: &FetchRequest, value: Value) -> Found {
    let mut headers = HeaderMap::new();
    let body = match value {
        Value::String(s) => {
            headers.insert(CONTENT_TYPE, req.content_type.clone());
            Bytes::from(s)
        }
        Value::Bytes(b) => {
            headers.insert(CONTENT_TYPE, req.content_type.clone());
            b
        }
        Value::Json(s) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(s)
        }
        Value::Int(v) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Bytes::from(v.to_string())
        }
        Value::Long(v) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Bytes::from(v.to_string())
        }
        _ => return Found::Foreign,
    };
    headers.insert("x-cache", HeaderValue::from_static("HIT"));
    Found::Body(Answer::outcome("hit", StatusCode::OK, headers, body))
}

/// Decodes what the primary key holds, for envelope maps: an entry without variants, or a
/// variant index (then `None` plus the index: the caller fetches the variant).
fn decode_primary(b: &Bytes) -> (Option<Entry>, Option<VaryIndex>) {
    match VaryIndex::decode(b) {
        Ok(Some(index)) => (None, Some(index)),
        Ok(None) => match Entry::decode(b) {
            Ok(e) if e.vary.is_empty() => (Some(e), None),
            _ => (None, None),
        },
        Err(_) => (None, None),
    }
}

impl Cache {
    pub fn new(config: Config, hazelcast: Client, origin: OriginClient) -> Cache {
        Cache {
            config,
            hazelcast,
            origin,
            metrics: Metrics::default(),
            instance: format!(
                "companion-{}-{:x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    pub async fn fetch(self: &Arc<Self>, req: FetchRequest) -> Answer {
        let span = tracing::info_span!(
            "fetch",
            map = %req.map,
            key = %req.key,
            method = %req.method,
            outcome = tracing::field::Empty
        );
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
        let rules = RequestRules::from_request(&req.client_headers);
        let found = match self.lookup(&req).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "Hazelcast lookup failed; filter will fail open");
                self.metrics.error(ErrorKind::Hazelcast);
                self.metrics.outcome(Outcome::Error);
                return Answer::error(StatusCode::SERVICE_UNAVAILABLE, &format!("hazelcast: {e}"));
            }
        };
        let now = now_ms();
        let (stale, overwrite, index) = match found {
            Found::Body(answer) if !rules.revalidate => {
                self.metrics.outcome(Outcome::Hit);
                return answer;
            }
            Found::Body(_) => (None, true, None),
            Found::Foreign => (None, false, None),
            Found::Nothing { index } => (None, true, index),
            Found::Entry(entry) => match reuse(&entry.freshness, &rules, now) {
                Reuse::Fresh => return self.served(&req, &entry, "HIT", Outcome::Hit, now),
                Reuse::StaleWhileRevalidate => {
                    self.refresh_in_background(&req, &entry);
                    return self.served(&req, &entry, "STALE", Outcome::Stale, now);
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
        self.coalesced(req, stale, overwrite, index, since).await
    }

    fn served(
        &self,
        req: &FetchRequest,
        entry: &Entry,
        label: &'static str,
        outcome: Outcome,
        now: i64,
    ) -> Answer {
        let a = entry_answer(req, entry, label, now);
        self.metrics
            .outcome(if a.status == StatusCode::NOT_MODIFIED {
                Outcome::NotModified
            } else {
                outcome
            });
        a
    }

    async fn timed_get(&self, map: &Map, key: &str) -> Result<Option<Value>, HazelcastError> {
        let t = Instant::now();
        let r = map.get(key).await;
        self.metrics.hazelcast_latency(t.elapsed());
        r
    }

    async fn lookup(&self, req: &FetchRequest) -> Result<Found, HazelcastError> {
        let map = self.hazelcast.map(&req.map);
        let value = self.timed_get(&map, &req.key).await?;
        let b = match (req.mode, value) {
            (_, None) => return Ok(Found::Nothing { index: None }),
            (Mode::Body, Some(v)) => return Ok(body_value_answer(req, v)),
            (Mode::Envelope, Some(Value::Bytes(b))) => b,
            (Mode::Envelope, Some(_)) => return Ok(Found::Nothing { index: None }),
        };
        match decode_primary(&b) {
            (Some(entry), _) => Ok(Found::Entry(entry)),
            (None, Some(index)) => {
                let selected = select_vary(&req.client_headers, &index.names);
                let vk = variant_key(&req.key, index.id, &selected);
                match self.timed_get(&map, &vk).await? {
                    Some(Value::Bytes(vb)) => match Entry::decode(&vb) {
                        // The entry names the values it was stored for: a hash collision or
                        // a foreign value is a miss, never another client's variant.
                        Ok(e) if e.vary == selected => Ok(Found::Entry(e)),
                        _ => Ok(Found::Nothing { index: Some(index) }),
                    },
                    _ => Ok(Found::Nothing { index: Some(index) }),
                }
            }
            (None, None) => {
                tracing::warn!("stored value is not a valid envelope; refetching");
                Ok(Found::Nothing { index: None })
            }
        }
    }

    /// The in-flight table key of a request.
    fn flight_key(req: &FetchRequest) -> String {
        format!("{}\0{}", req.map, req.key)
    }

    fn join_or_lead(self: &Arc<Self>, key: &str) -> Role {
        let mut table = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = table.get(key) {
            return Role::Waiter(rx.clone());
        }
        if table.len() >= MAX_INFLIGHT {
            return Role::Alone;
        }
        let (tx, rx) = watch::channel(None);
        table.insert(key.to_string(), rx);
        Role::Leader(Flight {
            cache: self.clone(),
            key: key.to_string(),
            tx,
            done: Done::NotStored,
        })
    }

    /// How long a request waits for another's fetch before fetching itself: the other's origin
    /// timeout plus its wait on a third companion, plus slack for storing.
    fn coalesce_wait(&self) -> Duration {
        self.config.origin_timeout * 2 + Duration::from_secs(2)
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
        match self.join_or_lead(&Self::flight_key(&req)) {
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
            Role::Waiter(mut rx) => {
                self.metrics.event(Event::CoalescedLocal);
                let done = tokio::time::timeout(self.coalesce_wait(), rx.wait_for(|d| d.is_some()))
                    .await
                    .ok()
                    .and_then(|r| r.ok().and_then(|d| *d));
                match done {
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
            Found::Entry(e)
                if e.freshness.stored_at_ms >= since
                    && reuse(&e.freshness, &RequestRules::default(), now) == Reuse::Fresh =>
            {
                Some(self.served(req, &e, "HIT", Outcome::Hit, now))
            }
            Found::Body(a) if since == i64::MIN => {
                self.metrics.outcome(Outcome::Hit);
                Some(a)
            }
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
        let markers = self.hazelcast.map(INFLIGHT_MAP);
        let marker = Self::flight_key(req);
        // A crashed holder's marker expires after this; a live one releases it much earlier.
        let marker_ttl = Ttl::After(self.config.origin_timeout + Duration::from_secs(2));
        let held = markers
            .put_if_absent(&marker, &Value::String(self.instance.clone()), marker_ttl)
            .await;
        match held {
            Ok(None) => {
                // Another companion may have finished between our lookup and taking the marker.
                let answer = match self.fresh_hit(req, since).await {
                    Some(a) => (a, Done::Stored),
                    None => self.fetch_origin(req, stale, overwrite, index).await,
                };
                if let Err(e) = markers.delete(&marker).await {
                    tracing::debug!(error = %e, "could not release the in-flight marker; it expires");
                }
                answer
            }
            Ok(Some(_)) if background => (Answer::pass("refresh-elsewhere"), Done::NotStored),
            Ok(Some(_)) => {
                self.metrics.event(Event::CoalescedRemote);
                let deadline = Instant::now() + self.config.origin_timeout + Duration::from_secs(1);
                while Instant::now() < deadline {
                    tokio::time::sleep(POLL_INTERVAL).await;
                    if let Some(a) = self.fresh_hit(req, since).await {
                        return (a, Done::Stored);
                    }
                    match markers.contains_key(&marker).await {
                        Ok(true) => continue,
                        _ => break,
                    }
                }
                if Instant::now() >= deadline {
                    self.metrics.event(Event::CoalesceTimeout);
                }
                if let Some(a) = self.fresh_hit(req, since).await {
                    return (a, Done::Stored);
                }
                self.fetch_origin(req, stale, overwrite, index).await
            }
            Err(e) => {
                tracing::debug!(error = %e, "no in-flight marker; fetching uncoordinated");
                self.fetch_origin(req, stale, overwrite, index).await
            }
        }
    }

    /// Starts one background refresh of a stale entry, unless one already runs here (the
    /// in-flight table) or in another companion (the marker).
    fn refresh_in_background(self: &Arc<Self>, req: &Arc<FetchRequest>, entry: &Entry) {
        let Role::Leader(flight) = self.join_or_lead(&Self::flight_key(req)) else {
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
            self.metrics.error(ErrorKind::BadRequest);
            self.metrics.outcome(Outcome::Error);
            let why = format!(
                "origin '{}' is not configured (--origin NAME=URL)",
                req.origin
            );
            return (
                Answer::error(StatusCode::BAD_GATEWAY, &why),
                Done::NotStored,
            );
        };
        let mut conditional = HeaderMap::new();
        if let Some(s) = &stale {
            let stored = header_map(&s.entry.headers);
            if let Some(etag) = stored.get("etag") {
                conditional.insert("if-none-match", etag.clone());
            }
            if let Some(lm) = stored.get("last-modified") {
                conditional.insert("if-modified-since", lm.clone());
            }
            if !conditional.is_empty() {
                self.metrics.event(Event::Revalidation);
            }
        }
        let request_ms = now_ms();
        let started = Instant::now();
        let fetched = self
            .origin
            .get(
                origin,
                &req.path,
                &req.host,
                &req.client_headers,
                &conditional,
                self.config.max_entry_bytes,
            )
            .await;
        self.metrics.origin_latency(started.elapsed());
        let times = Times {
            request_ms,
            response_ms: now_ms(),
        };
        let resp = match fetched {
            Ok(r) if r.status.is_server_error() && stale.as_ref().is_some_and(|s| s.if_error) => {
                self.metrics.error(ErrorKind::OriginStatus);
                return self.stale_if_error(req, stale, times.response_ms);
            }
            Ok(r) => r,
            Err(OriginError::TooLarge(limit)) => {
                tracing::debug!(limit, "origin body over the entry limit; passing");
                self.metrics.error(ErrorKind::TooLarge);
                self.metrics.outcome(Outcome::Pass);
                return (Answer::pass("too-large"), Done::Pass);
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
                tracing::warn!(origin = %req.origin, error = %e, "origin fetch failed; filter will fail open");
                self.metrics.outcome(Outcome::Error);
                return (
                    Answer::error(StatusCode::BAD_GATEWAY, &e.to_string()),
                    Done::NotStored,
                );
            }
        };
        if resp.status == StatusCode::NOT_MODIFIED {
            if let Some(s) = stale.filter(|_| !conditional.is_empty()) {
                return self
                    .refreshed(req, s.entry, resp, times, overwrite, index)
                    .await;
            }
        }
        self.fresh_response(req, resp, times, overwrite, index)
            .await
    }

    fn stale_if_error(&self, req: &FetchRequest, stale: Option<Stale>, now: i64) -> (Answer, Done) {
        match stale {
            Some(s) => (
                self.served(req, &s.entry, "STALE", Outcome::Stale, now),
                Done::NotStored,
            ),
            None => (
                Answer::error(StatusCode::BAD_GATEWAY, "origin failed"),
                Done::NotStored,
            ),
        }
    }

    /// The origin said 304: the stored entry, its headers updated, is fresh again.
    async fn refreshed(
        &self,
        req: &FetchRequest,
        old: Entry,
        resp: OriginResponse,
        times: Times,
        overwrite: bool,
        index: Option<VaryIndex>,
    ) -> (Answer, Done) {
        let headers = merge_not_modified(&header_map(&old.headers), &resp.headers);
        let decision = freshness::decide(
            "GET",
            &req.client_headers,
            old.status,
            &headers,
            &req.policy,
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
            headers: pairs(&headers),
            body: old.body,
        };
        let a = entry_answer(req, &entry, "REVALIDATED", times.response_ms);
        self.metrics
            .outcome(if a.status == StatusCode::NOT_MODIFIED {
                Outcome::NotModified
            } else {
                Outcome::Revalidated
            });
        (a, done)
    }

    /// A full response from the origin: store it if it may be, and answer the client.
    async fn fresh_response(
        &self,
        req: &FetchRequest,
        resp: OriginResponse,
        times: Times,
        overwrite: bool,
        index: Option<VaryIndex>,
    ) -> (Answer, Done) {
        let decision = freshness::decide(
            "GET",
            &req.client_headers,
            resp.status.as_u16(),
            &resp.headers,
            &req.policy,
            times,
        );
        let stored_headers = strip_for_storage(&resp.headers);
        let mut done = Done::NotStored;
        let mut age = None;
        match decision {
            Decision::Store(f) if overwrite => {
                age = Some(f.initial_age_secs);
                done = self
                    .store(
                        req,
                        resp.status.as_u16(),
                        &stored_headers,
                        &resp.body,
                        f,
                        index,
                    )
                    .await;
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
        self.metrics.outcome(Outcome::Miss);
        let mut headers = strip_for_client(&resp.headers);
        if let Some(a) = age.filter(|a| *a > 0) {
            headers.insert("age", HeaderValue::from(a));
        }
        headers.insert("x-cache", HeaderValue::from_static("MISS"));
        let now_secs = times.response_ms.div_euclid(1000);
        if not_modified(
            &req.client_headers,
            resp.status.as_u16(),
            &headers,
            now_secs,
        ) {
            let mut h = HeaderMap::new();
            for name in freshness::NOT_MODIFIED_HEADERS
                .iter()
                .chain(["age", "x-cache"].iter())
            {
                for v in headers.get_all(*name) {
                    h.append(*name, v.clone());
                }
            }
            return (
                Answer::outcome("miss", StatusCode::NOT_MODIFIED, h, Bytes::new()),
                done,
            );
        }
        (
            Answer::outcome("miss", resp.status, headers, resp.body),
            done,
        )
    }

    /// Writes an entry (and its variant index and tag index records) to Hazelcast.
    async fn store(
        &self,
        req: &FetchRequest,
        status: u16,
        headers: &HeaderMap,
        body: &Bytes,
        f: Freshness,
        index: Option<VaryIndex>,
    ) -> Done {
        let map = self.hazelcast.map(&req.map);
        let names = freshness::vary_names(headers).unwrap_or_default();
        let result = match req.mode {
            Mode::Body => {
                let secs = u64::from(f.lifetime_secs).saturating_sub(u64::from(f.initial_age_secs));
                if !names.is_empty() || secs == 0 || status != 200 {
                    // A plain value has no room for variants, validators or a status.
                    self.metrics.event(Event::NotStored);
                    return Done::NotStored;
                }
                let value = match req.value_type {
                    ValueType::Bytes => Value::Bytes(body.clone()),
                    ValueType::String => match std::str::from_utf8(body) {
                        Ok(s) => Value::String(s.to_string()),
                        Err(_) => {
                            tracing::debug!("body is not UTF-8; not stored as a string");
                            return Done::NotStored;
                        }
                    },
                };
                map.set(&req.key, &value, Ttl::After(Duration::from_secs(secs)))
                    .await
            }
            Mode::Envelope => {
                let keep = f.keep_secs(has_validators(headers));
                let ttl = Ttl::After(Duration::from_secs(keep));
                let selected = select_vary(&req.client_headers, &names);
                let entry = Entry {
                    status,
                    freshness: f,
                    vary: selected.clone(),
                    tags: purge_tags(headers),
                    headers: pairs(headers),
                    body: body.clone(),
                };
                let bytes = match entry.encode() {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::debug!(error = %e, "response cannot be stored");
                        return Done::NotStored;
                    }
                };
                self.index_tags(req, &entry.tags, ttl).await;
                if names.is_empty() {
                    map.set(&req.key, &Value::Bytes(bytes), ttl).await
                } else {
                    let id = index
                        .filter(|i| i.names == names)
                        .map(|i| i.id)
                        .unwrap_or_else(rand::random);
                    let index = VaryIndex { id, names };
                    match index.encode() {
                        Ok(ib) => {
                            let vk = variant_key(&req.key, id, &selected);
                            match map.set(&vk, &Value::Bytes(bytes), ttl).await {
                                Ok(()) => map.set(&req.key, &Value::Bytes(ib), ttl).await,
                                Err(e) => Err(e),
                            }
                        }
                        Err(_) => return Done::NotStored,
                    }
                }
            }
        };
        match result {
            Ok(()) => Done::Stored,
            Err(e) => {
                tracing::warn!(error = %e, "could not store the entry");
                self.metrics.error(ErrorKind::Store);
                Done::NotStored
            }
        }
    }

    /// Records `tag\0key` in the map's tag index (`MAP:tags`) for each purge tag, with the
    /// entry's TTL, so a tag purge finds its keys without reading every entry. Best effort: a
    /// lost index record means that entry outlives a tag purge until its TTL, so failures are
    /// counted and logged.
    async fn index_tags(&self, req: &FetchRequest, tags: &[String], ttl: Ttl) {
        if tags.is_empty() {
            return;
        }
        let index = self.hazelcast.map(&tag_index_map(&req.map));
        let mut tasks = tokio::task::JoinSet::new();
        for tag in tags {
            let (index, record) = (index.clone(), format!("{tag}\0{}", req.key));
            tasks.spawn(async move { index.set(&record, &Value::Int(1), ttl).await });
        }
        while let Some(done) = tasks.join_next().await {
            if !matches!(done, Ok(Ok(()))) {
                self.metrics.error(ErrorKind::Store);
                tracing::warn!("could not index a purge tag");
            }
        }
    }

    /// Purges what `target` names; returns how many primary keys were deleted.
    pub async fn purge(&self, target: &crate::purge::PurgeTarget) -> Result<usize, HazelcastError> {
        use crate::purge::PurgeTarget;
        let (map, keys) = match target {
            PurgeTarget::Key { map, key } => (map, vec![key.clone()]),
            PurgeTarget::Prefix { map, prefix } => {
                let all = self.hazelcast.map(map).keys().await?;
                (
                    map,
                    all.into_iter()
                        .filter(|k| k.starts_with(prefix.as_str()))
                        .collect(),
                )
            }
            PurgeTarget::Tag { map, tag } => {
                let index = self.hazelcast.map(&tag_index_map(map));
                let start = format!("{tag}\0");
                let records: Vec<String> = index
                    .keys()
                    .await?
                    .into_iter()
                    .filter(|r| r.starts_with(&start))
                    .collect();
                let mut keys = Vec::with_capacity(records.len());
                for r in records {
                    keys.push(r[start.len()..].to_string());
                    index.delete(&r).await?;
                }
                (map, keys)
            }
        };
        let m = self.hazelcast.map(map);
        for k in &keys {
            m.delete(k).await?;
        }
        self.metrics.add(Event::Purged, keys.len() as u64);
        Ok(keys.len())
    }

    /// Removes the stored responses for these (map, key) pairs: the primary key holds the
    /// entry or the variant index, so deleting it makes every variant unreachable (a new
    /// index gets a new generation). Returns how many deletions succeeded.
    pub async fn invalidate(&self, targets: &[(String, String)]) -> usize {
        let mut ok = 0;
        for (map, key) in targets {
            match self.hazelcast.map(map).delete(key).await {
                Ok(()) => ok += 1,
                Err(e) => {
                    self.metrics.error(ErrorKind::Hazelcast);
                    tracing::warn!(%map, %key, error = %e, "invalidation failed");
                }
            }
        }
        ok
    }
}

/// The map holding a cache map's purge-tag index.
pub fn tag_index_map(map: &str) -> String {
    format!("{map}:tags")
}

fn pairs(h: &HeaderMap) -> Vec<(String, Bytes)> {
    h.iter()
        .map(|(n, v)| (n.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-hzcache-map", "hzcache"),
            ("x-hzcache-key", "example.com/a%20b?x=1"),
            ("x-hzcache-mode", "envelope"),
            ("x-hzcache-ttl", "60"),
            ("x-hzcache-request-method", "GET"),
            ("x-hzcache-request-path", "/a%20b?x=1"),
            ("x-hzcache-request-host", "example.com"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn control_headers_parse_and_the_key_is_percent_decoded() {
        let r = FetchRequest::from_headers(&control(&[])).unwrap();
        assert_eq!(r.key, "example.com/a b?x=1");
        assert_eq!(r.mode, Mode::Envelope);
        assert_eq!(r.origin, "default");
        assert_eq!(r.policy.default_ttl, Some(60));
        assert_eq!(r.policy.ttl_override, None);
    }

    #[test]
    fn a_zero_ttl_turns_the_default_lifetime_off_and_rule_windows_parse() {
        let r = FetchRequest::from_headers(&control(&[
            ("x-hzcache-ttl", "0"),
            ("x-hzcache-ttl-override", "9"),
            ("x-hzcache-stale-while-revalidate", "5"),
            ("x-hzcache-stale-if-error", "600"),
        ]))
        .unwrap();
        assert_eq!(r.policy.default_ttl, None);
        assert_eq!(r.policy.ttl_override, Some(9));
        assert_eq!(r.policy.stale_while_revalidate, 5);
        assert_eq!(r.policy.stale_if_error, 600);
    }

    #[test]
    fn bad_control_headers_are_refused_naming_the_header() {
        for (h, v) in [
            ("x-hzcache-key", "%zz"),
            ("x-hzcache-key", "%ff%fe"),
            ("x-hzcache-key", ""),
            ("x-hzcache-mode", "other"),
            ("x-hzcache-ttl", "-5"),
            ("x-hzcache-ttl", "1e3"),
            ("x-hzcache-ttl", "99999999999"),
            ("x-hzcache-ttl-override", "0"),
            ("x-hzcache-stale-if-error", "x"),
            ("x-hzcache-request-method", "POST"),
            ("x-hzcache-request-path", "nope"),
            ("x-hzcache-value-type", "float"),
            ("x-hzcache-map", ""),
        ] {
            let e = FetchRequest::from_headers(&control(&[(h, v)])).unwrap_err();
            assert!(e.starts_with(h), "{h}={v}: {e}");
        }
        let mut missing = control(&[]);
        missing.remove("x-hzcache-map");
        assert!(FetchRequest::from_headers(&missing)
            .unwrap_err()
            .contains("missing"));
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        let mut h = control(&[]);
        h.insert("x-hzcache-key", HeaderValue::from_str(&long).unwrap());
        assert!(FetchRequest::from_headers(&h).is_err());
    }

    #[test]
    fn percent_decoding_handles_utf8_and_rejects_truncated_escapes() {
        assert_eq!(percent_decode("%C3%A9t%C3%A9").as_deref(), Some("été"));
        assert_eq!(percent_decode("abc%2"), None);
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("plain"), Some("plain".into()));
    }

    fn request(mode: Mode, extra: &[(&'static str, &'static str)]) -> FetchRequest {
        let mut r = FetchRequest::from_headers(&control(extra)).unwrap();
        r.mode = mode;
        r.content_type = HeaderValue::from_static("text/plain; charset=utf-8");
        r
    }

    fn entry(stored_at_ms: i64, lifetime: u32) -> Entry {
        Entry {
            status: 200,
            freshness: Freshness {
                stored_at_ms,
                lifetime_secs: lifetime,
                initial_age_secs: 2,
                ..Freshness::default()
            },
            vary: vec![],
            tags: vec!["t".into()],
            headers: vec![
                ("etag".into(), Bytes::from_static(b"\"v\"")),
                ("cache-tag".into(), Bytes::from_static(b"t")),
                ("content-type".into(), Bytes::from_static(b"text/plain")),
            ],
            body: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn an_envelope_hit_carries_status_headers_age_and_body_but_not_cache_only_fields() {
        let a = entry_answer(
            &request(Mode::Envelope, &[]),
            &entry(10_000, 60),
            "HIT",
            15_500,
        );
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["age"], "7");
        assert_eq!(a.headers["etag"], "\"v\"");
        assert_eq!(a.headers["x-cache"], "HIT");
        assert_eq!(a.headers[OUTCOME], "hit");
        assert!(!a.headers.contains_key("cache-tag"));
        assert_eq!(a.body, "hello");
    }

    #[test]
    fn a_matching_conditional_request_gets_a_304_without_body() {
        let req = request(Mode::Envelope, &[("if-none-match", "\"v\"")]);
        let a = entry_answer(&req, &entry(10_000, 60), "HIT", 10_000);
        assert_eq!(a.status, StatusCode::NOT_MODIFIED);
        assert!(a.body.is_empty());
        assert_eq!(a.headers["etag"], "\"v\"");
        assert!(!a.headers.contains_key("content-type"));
        let req = request(Mode::Envelope, &[("if-none-match", "\"other\"")]);
        assert_eq!(
            entry_answer(&req, &entry(10_000, 60), "HIT", 10_000).status,
            StatusCode::OK
        );
    }

    #[test]
    fn a_primary_value_is_an_entry_an_index_or_nothing() {
        let e = entry(0, 1);
        let (got, idx) = decode_primary(&e.encode().unwrap());
        assert_eq!(got, Some(e.clone()));
        assert!(idx.is_none());
        let i = VaryIndex {
            id: 7,
            names: vec!["accept".into()],
        };
        let (got, idx) = decode_primary(&i.encode().unwrap());
        assert!(got.is_none());
        assert_eq!(idx, Some(i));
        // A variant stored under the primary key (never written so) is not served.
        let mut v = e;
        v.vary = vec![("accept".into(), Bytes::from_static(b"x"))];
        assert_eq!(decode_primary(&v.encode().unwrap()), (None, None));
        assert_eq!(
            decode_primary(&Bytes::from_static(b"garbage")),
            (None, None)
        );
    }

    #[test]
    fn vary_selection_normalises_lines_and_marks_absent_fields() {
        let mut h = HeaderMap::new();
        h.append("accept-language", HeaderValue::from_static("de ,  en"));
        h.append("accept-language", HeaderValue::from_static("fr"));
        let s = select_vary(&h, &["accept-language".into(), "user-agent".into()]);
        assert_eq!(s[0].1, "de,en,fr");
        assert_eq!(s[1].1, Bytes::from_static(ABSENT));
        let mut h2 = HeaderMap::new();
        h2.insert("accept-language", HeaderValue::from_static("de,en, fr"));
        assert_eq!(select_vary(&h2, &["accept-language".into()])[0], s[0]);
    }

    #[test]
    fn a_body_mode_string_is_served_with_the_rule_content_type() {
        let Found::Body(a) =
            body_value_answer(&request(Mode::Body, &[]), Value::String("v1".into()))
        else {
            panic!("expected a hit")
        };
        assert_eq!(a.body, "v1");
        assert_eq!(a.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(a.headers["x-cache"], "HIT");
    }

    #[test]
    fn a_body_mode_value_of_a_foreign_type_is_neither_served_nor_overwritten() {
        assert!(matches!(
            body_value_answer(&request(Mode::Body, &[]), Value::Other { type_id: -2 }),
            Found::Foreign
        ));
    }
}
