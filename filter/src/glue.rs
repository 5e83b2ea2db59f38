//! proxy-wasm glue (wasm32 only): the root context (configuration, per-VM breaker, metrics) and
//! the per-request HTTP context. These only move data between Envoy and the pure modules; every
//! decision is made in `callout`, `key`, `rules` and `breaker`.
//!
//! Host calls go through `host`, which returns `Result` for every status, never through
//! `proxy_wasm::hostcalls` (it panics on statuses it did not expect) or the trait helpers (they
//! `unwrap`): a host error must fail one request open, not trap the VM. The SDK is used only
//! for `main!`, its dispatcher and the context traits; see the note below `main!` on why the
//! dispatcher's own panics cannot fire for this filter.

use crate::breaker::{Answered, Health, Transition, Waiting};
use crate::callout::{self, Outcome, Reply};
use crate::config::{self, Config, LogLevel};
use crate::host::{self, BufferType, HeaderMap, MetricKind, StreamType};
use crate::l1_table::L1;
use crate::metrics::{self, Counter};
use log::{debug, error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    // Info until the configuration says otherwise, so configuration errors are always logged.
    // Our logger, not `proxy_wasm::set_log_level`: the SDK's logger `unwrap`s every log call.
    host::set_log_level(log::LevelFilter::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

// The SDK dispatcher (proxy-wasm 0.2.5 `dispatcher.rs`) still panics in places; none of them
// can fire for this filter:
// - `create_http_context returned None`: `Root::create_http_context` always returns `Some`.
// - `missing ContextType on root_context`: `Root::get_type` always says `HttpContext`.
// - `invalid token_id` (`on_http_call_response`): every callout goes through
//   `host::dispatch_http_call`, which registers its token with the dispatcher; Envoy answers
//   each token once (it drops the handler before the callback) and cancels a context's
//   callouts when the context goes, so no answer arrives for a token the dispatcher dropped.
// - `duplicate token_id` (`register_callout`): Envoy's tokens come from one counter per VM
//   (`Wasm::nextHttpCallId`), so a repeat needs a callout left unanswered across ~10^9 others;
//   every callout has a timeout of at most 60 s.
// - `set_effective_context(..).unwrap()`: only called for a context the dispatcher still holds,
//   which Envoy then still holds too (it deletes its own after `proxy_on_delete`).
// - `invalid root_context_id`, `invalid context_id`, `duplicate context_id`: Envoy creates,
//   calls and deletes contexts by ids it assigned; nothing the filter does changes them.
// - `log::set_logger(..).unwrap()` in `proxy_wasm::set_log_level`: never called (see above).

/// Metric ids, defined once per VM. A metric that could not be defined is `None` and skipped.
struct Metrics {
    ids: [Option<u32>; Counter::ALL.len()],
    callout_ms: Option<u32>,
    feed_lag_ms: Option<u32>,
    breaker_state: Option<u32>,
}

impl Metrics {
    fn define() -> Self {
        let other = |kind, name| match host::define_metric(kind, name) {
            Ok(id) => Some(id),
            Err(status) => {
                error!("cannot define metric {name}: {status:?}");
                None
            }
        };
        let callout_ms = other(MetricKind::Histogram, metrics::CALLOUT_MS);
        let feed_lag_ms = other(MetricKind::Gauge, metrics::FEED_LAG_MS);
        let breaker_state = other(MetricKind::Gauge, metrics::BREAKER_STATE);
        let mut ids = [None; Counter::ALL.len()];
        for counter in Counter::ALL {
            match host::define_counter(counter.name()) {
                Ok(id) => {
                    if let Some(slot) = ids.get_mut(counter.index()) {
                        *slot = Some(id);
                    }
                }
                Err(status) => error!("cannot define metric {}: {status:?}", counter.name()),
            }
        }
        Self {
            ids,
            callout_ms,
            feed_lag_ms,
            breaker_state,
        }
    }

    fn none() -> Self {
        Self {
            ids: [None; Counter::ALL.len()],
            callout_ms: None,
            feed_lag_ms: None,
            breaker_state: None,
        }
    }

    fn record(&self, id: Option<u32>, value: u64) {
        if let Some(id) = id {
            let _ = host::record_metric(id, value);
        }
    }

    fn add(&self, counter: Counter, n: u64) {
        if let Some(id) = self.ids.get(counter.index()).copied().flatten() {
            let _ = host::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn inc(&self, counter: Counter) {
        if let Some(id) = self.ids.get(counter.index()).copied().flatten() {
            if let Err(status) = host::increment_metric(id, 1) {
                debug!("cannot increment {}: {status:?}", counter.name());
            }
        }
    }
}

/// Milliseconds since the epoch from the host clock; `None` if the host cannot say (the
/// breaker is then left alone rather than fed a made-up time).
fn now_ms() -> Option<u64> {
    let since = host::current_time().ok()?;
    u64::try_from(since.as_millis()).ok()
}

fn host_level(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Trace => log::LevelFilter::Trace,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Error => log::LevelFilter::Error,
    }
}

/// Whether `mark` is a valid origin-fetch mark for this request under the callout secret.
fn origin_fetch(config: &Config, request: &[(String, Vec<u8>)], mark: &[u8]) -> bool {
    let (Some(secret), Some(now)) = (&config.companion.secret, now_ms()) else {
        return false;
    };
    let pseudo = |name: &str| {
        request
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let (Some(method), Some(path)) = (pseudo(":method"), pseudo(":path")) else {
        return false;
    };
    hzcache_contract::origin_fetch_mark_valid(
        secret.expose().as_bytes(),
        mark,
        now / 1000,
        method,
        path,
    )
}

/// Sends a bodiless callout to the companion with the configured cluster and timeout.
fn call_companion(config: &Config, headers: &[(String, String)]) -> Result<u32, host::Status> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let timeout = Duration::from_millis(u64::from(config.companion.timeout_ms));
    host::dispatch_http_call(&config.companion.cluster, &headers, timeout)
}

struct Root {
    config: Option<Rc<Config>>,
    /// The companion's health and the breaker, per worker VM, shared with every HTTP context
    /// of this VM (single-threaded, so `RefCell`).
    health: Rc<RefCell<Health>>,
    /// This worker's view of the Envoy-wide L1 table.
    l1: Rc<RefCell<L1>>,
    metrics: Option<Rc<Metrics>>,
}

impl Default for Root {
    fn default() -> Self {
        Self {
            config: None,
            health: Rc::new(RefCell::new(
                Health::new(config::BreakerSettings::default()),
            )),
            l1: Rc::new(RefCell::new(L1::new(config::L1Settings {
                slots: 0,
                max_entry_bytes: 0,
                max_ttl_ms: 0,
                feed_interval_ms: 250,
                feed_stale_ms: 1000,
            }))),
            metrics: None,
        }
    }
}

impl Context for Root {
    /// The answer to a health ping (a live companion says 200 to `/healthz` at once, whatever
    /// its origin fetches are doing), or to a feed poll.
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        if self.l1.borrow().poll == Some(token_id) {
            self.feed_answered(num_headers, body_size);
            return;
        }
        // Any answer means the companion (or Envoy, for a companion that refuses connections,
        // whose callouts then fail by themselves) is not hung; only a ping that times out
        // keeps it stalled.
        let alive = num_headers > 0;
        if let Some(now) = now_ms() {
            self.health.borrow_mut().answered(token_id, alive, now);
        }
    }
}

impl Root {
    fn metrics(&self) -> Rc<Metrics> {
        self.metrics
            .clone()
            .unwrap_or_else(|| Rc::new(Metrics::none()))
    }

    /// The tick's L1 share: follow the shared generation, drop everything once if the feed
    /// went stale, poll the feed when due, and report the feed's lag.
    fn watch_l1(&self, now: u64) {
        let metrics = self.metrics();
        let mut l1 = self.l1.borrow_mut();
        if !l1.enabled() {
            return;
        }
        if l1.tick(now) {
            warn!("invalidation feed stale: L1 dropped and off until it is read again");
            metrics.inc(Counter::L1DropAll);
        }
        metrics.record(
            metrics.feed_lag_ms,
            l1.feed_lag(now).unwrap_or(u64::MAX >> 1),
        );
        if !l1.poll_due(now) {
            return;
        }
        let Some(config) = &self.config else { return };
        let path = format!("/v1/feed?after={}", l1.cursor());
        let mut headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", config.companion.authority.as_str()),
        ];
        if let Some(secret) = &config.companion.secret {
            headers.push((callout::AUTH_HEADER, secret.expose()));
        }
        let timeout = Duration::from_millis(l1.settings.feed_stale_ms);
        l1.last_poll_at = now;
        match host::dispatch_http_call(&config.companion.cluster, &headers, timeout) {
            Ok(token) => l1.poll = Some(token),
            Err(status) => {
                debug!("cannot poll the invalidation feed: {status:?}");
                metrics.inc(Counter::FeedError);
            }
        }
    }

    fn feed_answered(&self, num_headers: usize, body_size: usize) {
        let metrics = self.metrics();
        let mut l1 = self.l1.borrow_mut();
        l1.poll = None;
        let ok = num_headers > 0
            && host::header_value(HeaderMap::CallResponse, ":status")
                .ok()
                .flatten()
                .is_some_and(|s| s == b"200");
        let body = if ok {
            host::buffer(BufferType::HttpCallResponseBody, body_size)
                .ok()
                .flatten()
        } else {
            None
        };
        let (Some(body), Some(now)) = (body, now_ms()) else {
            metrics.inc(Counter::FeedError);
            return;
        };
        match l1.apply_feed(&body, now) {
            Some(applied) => {
                metrics.add(Counter::L1Invalidation, applied.dropped_keys);
                if applied.dropped_all {
                    metrics.inc(Counter::L1DropAll);
                }
            }
            None => metrics.inc(Counter::FeedError),
        }
    }

    fn ping(&self, now: u64) {
        let Some(config) = &self.config else { return };
        let headers = [
            (":method", "GET"),
            (":path", "/healthz"),
            (":authority", config.companion.authority.as_str()),
        ];
        // Twice the grace: an answer after the companion counted as stalled still ends it.
        let timeout = Duration::from_millis(crate::breaker::PING_GRACE_MS * 2);
        match host::dispatch_http_call(&config.companion.cluster, &headers, timeout) {
            Ok(token) => self.health.borrow_mut().ping_sent(token, now),
            Err(status) => debug!("cannot ping the companion: {status:?}"),
        }
    }

    /// The tick: pings a companion that looks stalled, and while it is stalled lets every
    /// stream that waits for a callout continue upstream instead of at the callout timeout.
    fn watch_health(&self) {
        let Some(now) = now_ms() else { return };
        if self.health.borrow().wants_ping(now) {
            self.ping(now);
        }
        {
            let health = self.health.borrow();
            let state = if health.stalled(now) {
                2
            } else if health.is_open(now) {
                1
            } else {
                0
            };
            if let Some(m) = &self.metrics {
                m.record(m.breaker_state, state);
            }
        }
        self.watch_l1(now);
        let released = self.health.borrow_mut().release_stalled(now);
        if released.is_empty() {
            return;
        }
        warn!(
            "companion stalled: {} request(s) continue upstream without waiting for it",
            released.len()
        );
        for (context_id, waiting) in released {
            if let Err(status) = host::set_effective_context(context_id) {
                debug!("[ctx {context_id}] gone before release: {status:?}");
                continue;
            }
            let stream = match waiting {
                Waiting::Request => StreamType::HttpRequest,
                Waiting::Response => StreamType::HttpResponse,
            };
            if let Err(status) = host::continue_stream(stream) {
                debug!("[ctx {context_id}] cannot resume: {status:?}");
            } else if waiting == Waiting::Request {
                if let Some(m) = &self.metrics {
                    m.inc(Counter::FailOpen);
                }
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = match host::buffer(BufferType::PluginConfiguration, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        // The secret comes from the VM's environment (Envoy's `vm_config.environment_variables`),
        // never from the JSON, so Envoy's config dump does not show it.
        let config = match config::parse(&raw).and_then(|c| {
            let value = std::env::var(&c.companion.secret_env).ok();
            config::with_secret(c, value)
        }) {
            Ok(config) => config,
            Err(e) => {
                error!("invalid configuration: {e}");
                return false;
            }
        };
        if config.companion.secret.is_none() {
            warn!(
                "{} is not set in the VM's environment: callouts carry no credential, which only a loopback companion without a secret accepts",
                config.companion.secret_env
            );
        }
        host::set_log_level(host_level(config.log_level));
        if config.rules.is_empty() {
            warn!("no rules configured; nothing will be cached");
        }
        info!(
            "configured {} rule(s), companion cluster {:?}, timeout {} ms",
            config.rules.len(),
            config.companion.cluster,
            config.companion.timeout_ms
        );
        // A new configuration starts with a fresh breaker and L1 view; contexts still running
        // keep the old. The new view starts stale: it serves nothing until the feed is read.
        self.health = Rc::new(RefCell::new(Health::new(config.breaker)));
        self.l1 = Rc::new(RefCell::new(L1::new(config.l1)));
        // Stall detection needs a look a few times per stall_ms.
        let tick = Duration::from_millis((config.breaker.stall_ms / 4).clamp(50, 250));
        if let Err(status) = host::set_tick_period(tick) {
            warn!("cannot set a tick ({status:?}): a stalled companion costs the full timeout");
        }
        if self.metrics.is_none() {
            self.metrics = Some(Rc::new(Metrics::define()));
        }
        self.config = Some(Rc::new(config));
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK panics on `None`, so even without a configuration (Envoy refuses the filter
        // then, so this should not happen) a pass-through context is returned.
        Some(Box::new(Http {
            id: context_id,
            config: self.config.clone(),
            health: Rc::clone(&self.health),
            l1: Rc::clone(&self.l1),
            metrics: self
                .metrics
                .clone()
                .unwrap_or_else(|| Rc::new(Metrics::none())),
            pending: None,
            invalidation: None,
            invalidation_token: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        self.watch_health();
    }
}

/// The callout this request is waiting for.
struct Pending {
    token: u32,
    rule: String,
    map: String,
    key: String,
    sent_at: Option<u64>,
    /// Set when the answer may be kept in L1.
    l1: Option<KeepInL1>,
}

/// What keeping an answer in L1 needs from its request.
struct KeepInL1 {
    /// The request headers, for the answer's Vary values.
    request: Vec<(String, Vec<u8>)>,
    /// The feed cursor at the callout: an answer that crossed an invalidation is not kept.
    cursor: u64,
}

struct Http {
    id: u32,
    config: Option<Rc<Config>>,
    health: Rc<RefCell<Health>>,
    l1: Rc<RefCell<L1>>,
    metrics: Rc<Metrics>,
    pending: Option<Pending>,
    /// An unsafe request's invalidation plan, until its response headers arrive.
    invalidation: Option<callout::Invalidation>,
    /// The invalidation callout the response waits for.
    invalidation_token: Option<u32>,
}

impl Http {
    fn bypass(&self, why: &dyn std::fmt::Display) -> Action {
        debug!("[ctx {}] bypass: {why}", self.id);
        self.metrics.inc(Counter::Bypass);
        Action::Continue
    }

    fn breaker_failure(&self) {
        let Some(now) = now_ms() else { return };
        if self.health.borrow_mut().record_failure(now) == Transition::Opened {
            self.metrics.inc(Counter::BreakerOpen);
            warn!(
                "[ctx {}] companion failing: breaker open, probing it from {} ms on",
                self.id,
                crate::breaker::FIRST_PROBE_MS
            );
        }
    }

    /// Feeds the end of a callout to the health tracker: whether the companion answered at
    /// all, and whether that answer was a failure. Returns whether the stream still waits.
    fn callout_ended(&self, token: u32, alive: bool, failure: bool) -> bool {
        let now = now_ms();
        let answered = match now {
            Some(now) => self.health.borrow_mut().answered(token, alive, now),
            None => Answered::Unknown,
        };
        if failure {
            self.breaker_failure();
        } else {
            self.health.borrow_mut().record_success();
        }
        answered != Answered::Released
    }

    /// Whether this request needs more than its request line: an unsafe method (it may
    /// invalidate), or a rule owns its path and host. Three single-header reads; when one
    /// cannot be read, the full map decides.
    fn any_rule_may_care(&self, config: &Config) -> bool {
        let read = |name| {
            host::header_value(HeaderMap::Request, name)
                .ok()
                .flatten()
                .and_then(|v| String::from_utf8(v).ok())
        };
        let (Some(method), Some(path)) = (read(":method"), read(":path")) else {
            return true;
        };
        let authority = read(":authority").unwrap_or_default();
        if callout::is_unsafe(&method) {
            return true;
        }
        let head = crate::rules::RequestHead {
            method: &method,
            path: &path,
            authority: &authority,
        };
        crate::rules::find_rule(&config.rules, &head).is_some()
    }

    /// Whether a callout may be made now (breaker closed or a probe, companion not stalled).
    fn callout_allowed(&self) -> bool {
        now_ms().is_none_or(|now| self.health.borrow_mut().allow(now))
    }

    fn dispatched(&self, token: u32, waiting: Waiting) {
        if let Some(now) = now_ms() {
            self.health
                .borrow_mut()
                .dispatched(token, self.id, waiting, now);
        }
    }

    /// Lets the paused request continue upstream.
    fn resume(&self) {
        if let Err(status) = host::continue_stream(StreamType::HttpRequest) {
            warn!("[ctx {}] cannot resume the request: {status:?}", self.id);
        }
    }

    fn read_reply(&self, num_headers: usize, body_size: usize) -> Option<Reply> {
        // Zero headers is how Envoy reports a reset or timeout; there is nothing to read.
        let headers = if num_headers == 0 {
            Vec::new()
        } else {
            match host::header_map(HeaderMap::CallResponse) {
                Ok(h) => h,
                Err(e) => {
                    warn!("[ctx {}] cannot read callout headers: {e}", self.id);
                    return None;
                }
            }
        };
        let body = if body_size == 0 {
            Vec::new()
        } else {
            match host::buffer(BufferType::HttpCallResponseBody, body_size) {
                Ok(b) => b.unwrap_or_default(),
                Err(status) => {
                    warn!("[ctx {}] cannot read callout body: {status:?}", self.id);
                    return None;
                }
            }
        };
        Some(callout::classify(&headers, body))
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.invalidation_token == Some(token_id) {
            // The reply only matters for the companion's health: the response goes on
            // whatever the companion said.
            self.invalidation_token = None;
            let alive = num_headers > 0;
            if self.callout_ended(token_id, alive, !alive) {
                if let Err(status) = host::continue_stream(StreamType::HttpResponse) {
                    warn!("[ctx {}] cannot resume the response: {status:?}", self.id);
                }
            }
            return;
        }
        let Some(pending) = self.pending.take_if(|p| p.token == token_id) else {
            debug!(
                "[ctx {}] ignoring reply to foreign callout {token_id}",
                self.id
            );
            return;
        };
        let Some(reply) = self.read_reply(num_headers, body_size) else {
            // A host-side problem, not the companion's: fail open without blaming it.
            if self.callout_ended(token_id, true, false) {
                self.metrics.inc(Counter::FailOpen);
                self.resume();
            }
            return;
        };
        let (alive, failure) = match &reply {
            Reply::Serve { .. } => (true, false),
            Reply::Resume(reason) => (reason.companion_answered(), reason.is_failure()),
        };
        if !self.callout_ended(token_id, alive, failure) {
            // Already released upstream while the companion was stalled: this answer only
            // told about its health.
            debug!("[ctx {}] late callout answer after release", self.id);
            return;
        }
        if let (Some(sent), Some(now)) = (pending.sent_at, now_ms()) {
            self.metrics
                .record(self.metrics.callout_ms, now.saturating_sub(sent));
        }
        match reply {
            Reply::Serve {
                outcome,
                status,
                headers,
                body,
                fresh_ms,
            } => {
                if let (Some(keep), Some(now)) = (&pending.l1, now_ms()) {
                    let l1 = self.l1.borrow();
                    if fresh_ms > 0
                        && l1.unchanged_since(keep.cursor, &pending.map, &pending.key)
                        && l1.store(
                            &pending.map,
                            &pending.key,
                            &keep.request,
                            status,
                            &headers,
                            &body,
                            fresh_ms,
                            now,
                        )
                    {
                        self.metrics.inc(Counter::L1Store);
                    }
                }
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                // The host sends the local reply once this callback returns; the request stays
                // paused, so it must not be resumed as well.
                match host::send_local_response(status, &headers, &body) {
                    Ok(()) => {
                        let counter = match outcome {
                            Outcome::Hit => Counter::Hit,
                            Outcome::Miss => Counter::Miss,
                        };
                        self.metrics.inc(counter);
                        debug!(
                            "[ctx {}] rule {}: {outcome:?}, {status}, {} bytes",
                            self.id,
                            pending.rule,
                            body.len()
                        );
                    }
                    Err(e) => {
                        warn!(
                            "[ctx {}] cannot send the local reply: {e}; failing open",
                            self.id
                        );
                        self.metrics.inc(Counter::FailOpen);
                        self.resume();
                    }
                }
            }
            Reply::Resume(reason) => {
                // `pass` and a refusal of this one request are a healthy companion answering.
                let counter = match reason {
                    callout::ResumeReason::Pass | callout::ResumeReason::Refused(_) => {
                        Counter::Pass
                    }
                    _ => Counter::FailOpen,
                };
                self.metrics.inc(counter);
                debug!(
                    "[ctx {}] rule {}: {reason}; resuming",
                    self.id, pending.rule
                );
                self.resume();
            }
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return self.bypass(&"no configuration");
        };
        // Cheap entry: a safe request no rule owns needs three header reads, not the map.
        if !self.any_rule_may_care(&config) {
            return self.bypass(&callout::Bypass::NoRule);
        }
        let request = match host::header_map(HeaderMap::Request) {
            Ok(headers) => headers,
            Err(e) => return self.bypass(&format_args!("cannot read headers: {e}")),
        };
        // A companion's own origin fetch (mesh sidecar in front of the origin) goes straight
        // upstream; a mark that is not valid is a client's forgery, removed and ignored.
        if let Some((_, mark)) = request
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(hzcache_contract::ORIGIN_FETCH_HEADER))
        {
            let valid = origin_fetch(&config, &request, mark);
            if let Err(status) =
                host::remove_header(HeaderMap::Request, hzcache_contract::ORIGIN_FETCH_HEADER)
            {
                debug!("[ctx {}] cannot remove the fetch mark: {status:?}", self.id);
            }
            if valid {
                return self.bypass(&"a companion's origin fetch");
            }
        }
        // Unsafe methods pass through untouched (body, query and all); their success is
        // remembered so the stored entries they change can be invalidated.
        self.invalidation = callout::plan_invalidation(&config, &request);
        let decided = match callout::decide(&config, &request, end_of_stream) {
            Ok(d) => d,
            Err(why) => return self.bypass(&why),
        };
        let now = now_ms();
        let eligible = crate::l1::request_eligible(&decided.method, &request);
        if eligible {
            let l1 = self.l1.borrow();
            let hit =
                now.and_then(|now| l1.lookup(&decided.rule.map, &decided.keyed.key, &request, now));
            if let Some(a) = hit {
                let headers: Vec<(&str, &str)> = a
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                if host::send_local_response(a.status, &headers, &a.body).is_ok() {
                    self.metrics.inc(Counter::L1Hit);
                    debug!("[ctx {}] rule {}: L1 hit", self.id, decided.rule.name);
                    return Action::Pause;
                }
            }
        }
        let headers = match decided.callout_headers(&config.companion, &request) {
            Ok(h) => h,
            Err(why) => return self.bypass(&why),
        };
        if !self.callout_allowed() {
            return self.bypass(&"breaker open or companion stalled");
        }
        match call_companion(&config, &headers) {
            Ok(token) => {
                debug!(
                    "[ctx {}] rule {}: callout {token} for key {:?}",
                    self.id, decided.rule.name, decided.keyed.key
                );
                self.dispatched(token, Waiting::Request);
                let cursor = self.l1.borrow().cursor();
                self.pending = Some(Pending {
                    token,
                    rule: decided.rule.name.clone(),
                    map: decided.rule.map.clone(),
                    key: decided.keyed.key,
                    sent_at: now,
                    l1: eligible.then_some(KeepInL1 { request, cursor }),
                });
                Action::Pause
            }
            Err(status) => {
                // BadArgument: usually an unknown cluster. Fail open and let the breaker damp
                // the repeats.
                warn!(
                    "[ctx {}] callout to cluster {:?} refused: {status:?}; failing open",
                    self.id, config.companion.cluster
                );
                self.breaker_failure();
                self.metrics.inc(Counter::FailOpen);
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (Some(inv), Some(config)) = (self.invalidation.take(), self.config.clone()) else {
            return Action::Continue;
        };
        let response = match host::header_map(HeaderMap::Response) {
            Ok(h) => h,
            Err(e) => {
                debug!("[ctx {}] cannot read response headers: {e}", self.id);
                return Action::Continue;
            }
        };
        let Some(targets) = callout::invalidation_targets(&config, &inv, &response) else {
            return Action::Continue;
        };
        // This Envoy's own L1 forgets them at once, so the client that sent the request reads
        // its write here whatever the companion and the feed do; other Envoys hear it from the
        // feed.
        for (map, key) in &targets {
            self.l1.borrow().drop_key(map, key);
        }
        let Some(headers) = callout::invalidation_callout(&config, &inv, &response) else {
            return Action::Continue;
        };
        // An invalidation honours the breaker too: a failing or stalled companion could not
        // delete anything, and holding the response for it would only slow the client.
        if !self.callout_allowed() {
            debug!("[ctx {}] invalidation skipped: breaker open", self.id);
            return Action::Continue;
        }
        match call_companion(&config, &headers) {
            Ok(token) => {
                // The response waits for the invalidation (at most the callout timeout, less
                // when the companion stalls), so a client that reads it and then GETs the URL
                // never sees the old entry.
                self.metrics.inc(Counter::Invalidate);
                self.dispatched(token, Waiting::Response);
                self.invalidation_token = Some(token);
                Action::Pause
            }
            Err(status) => {
                warn!("[ctx {}] invalidation callout refused: {status:?}", self.id);
                self.breaker_failure();
                Action::Continue
            }
        }
    }
}

impl Drop for Http {
    /// The stream is gone: Envoy cancels its callouts, so no answer will come for them.
    fn drop(&mut self) {
        let mut health = self.health.borrow_mut();
        if let Some(p) = &self.pending {
            health.forget(p.token);
        }
        if let Some(token) = self.invalidation_token {
            health.forget(token);
        }
    }
}
