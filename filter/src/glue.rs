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
use crate::host::{self, BufferType, HeaderMap, StreamType};
use crate::metrics::Counter;
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
}

impl Metrics {
    fn define() -> Self {
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
        Self { ids }
    }

    fn none() -> Self {
        Self {
            ids: [None; Counter::ALL.len()],
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
    metrics: Option<Rc<Metrics>>,
}

impl Default for Root {
    fn default() -> Self {
        Self {
            config: None,
            health: Rc::new(RefCell::new(
                Health::new(config::BreakerSettings::default()),
            )),
            metrics: None,
        }
    }
}

impl Context for Root {
    /// The answer to a health ping: a live companion says 200 to `/healthz` at once, whatever
    /// its origin fetches are doing.
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, _: usize, _: usize) {
        let alive = num_headers > 0
            && host::header_value(HeaderMap::CallResponse, ":status")
                .ok()
                .flatten()
                .is_some_and(|s| s == b"200");
        if let Some(now) = now_ms() {
            self.health.borrow_mut().answered(token_id, alive, now);
        }
    }
}

impl Root {
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
        // A new configuration starts with a fresh breaker; contexts still running keep the old.
        self.health = Rc::new(RefCell::new(Health::new(config.breaker)));
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
}

struct Http {
    id: u32,
    config: Option<Rc<Config>>,
    health: Rc<RefCell<Health>>,
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
        match reply {
            Reply::Serve {
                outcome,
                status,
                headers,
                body,
            } => {
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
        let request = match host::header_map(HeaderMap::Request) {
            Ok(headers) => headers,
            Err(e) => return self.bypass(&format_args!("cannot read headers: {e}")),
        };
        // Unsafe methods pass through untouched (body, query and all); their success is
        // remembered so the stored entries they change can be invalidated.
        self.invalidation = callout::plan_invalidation(&config, &request);
        let plan = match callout::plan(&config, &request, end_of_stream) {
            Ok(plan) => plan,
            Err(why) => return self.bypass(&why),
        };
        if !self.callout_allowed() {
            return self.bypass(&"breaker open or companion stalled");
        }
        match call_companion(&config, &plan.headers) {
            Ok(token) => {
                debug!(
                    "[ctx {}] rule {}: callout {token} for key {:?}",
                    self.id, plan.rule, plan.key
                );
                self.dispatched(token, Waiting::Request);
                self.pending = Some(Pending {
                    token,
                    rule: plan.rule,
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
