//! The filter's side of the companion callout (docs/callout-protocol.md): deciding whether a
//! request calls out at all ([`plan`]), the callout's header list, and what to do with the
//! companion's reply ([`classify`]). Pure: the glue feeds it header lists and bytes.

use crate::config::{never_forwarded, Companion, Config, CookiePolicy, Rule};
use crate::key::{cache_key, encode_key, KeyError, KeyInput, Keyed};
use crate::rules::{find_rule, method_cached, RequestHead};
use std::fmt;

pub const FETCH_PATH: &str = "/v1/fetch";
pub use hzcache_contract::{FRESH_MS_HEADER, OUTCOME_HEADER};

/// Connection-scoped headers (RFC 9110 §7.6.1 plus the legacy ones Envoy also strips); they
/// describe one hop and must not be relayed in either direction.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The header that carries the callout secret (docs/callout-protocol.md, "Authentication").
pub const AUTH_HEADER: &str = "x-hzcache-auth";

/// Request fields the companion reads itself (request directives, validators, ranges) and
/// answers from the cache; it never forwards the validators and ranges to the origin.
const FOR_THE_CACHE: [&str; 8] = [
    "cache-control",
    "pragma",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// Most client header lines one callout forwards, and their bytes: far above any real request
/// (the forwarded set is a short list of names), and far below what the companion accepts, so
/// a request cannot make the callout itself fail and count against the companion.
pub const MAX_FORWARDED_LINES: usize = 48;
pub const MAX_FORWARDED_BYTES: usize = 32 * 1024;

/// The deadline the companion is given to answer: the callout timeout less a margin for the
/// way back, so the companion's answer (a stale entry, `pass`) arrives before Envoy gives up.
pub fn deadline_ms(timeout_ms: u32) -> u32 {
    timeout_ms.saturating_sub((timeout_ms / 5).min(250)).max(1)
}

/// Why a request goes upstream without a callout. Not an error: counted as `bypass`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// No rule matches the path and host.
    NoRule,
    /// The rule that owns the path does not cache this method.
    MethodNotCached { rule: String },
    /// A pseudo-header the decision needs is absent or not UTF-8.
    MissingHeader(&'static str),
    /// A header that would be forwarded is not UTF-8; the callout API only carries strings, and
    /// dropping the header could change what the origin answers.
    NotUtf8Header(String),
    /// The request has a body; the companion's origin fetch would not carry it.
    HasBody,
    /// The request carries `Cookie` and the rule does not say how to cache with one.
    Cookie { rule: String },
    /// More forwarded header lines or bytes than one callout carries.
    TooManyHeaders,
    /// The matched rule yields no key for this request.
    NoKey { rule: String, reason: KeyError },
}

impl fmt::Display for Bypass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bypass::NoRule => write!(f, "no rule matches"),
            Bypass::MethodNotCached { rule } => write!(f, "rule {rule} does not cache this method"),
            Bypass::MissingHeader(name) => write!(f, "request has no usable {name}"),
            Bypass::NotUtf8Header(name) => write!(f, "request header {name} is not UTF-8"),
            Bypass::HasBody => write!(f, "request has a body"),
            Bypass::Cookie { rule } => write!(f, "rule {rule}: request has a cookie"),
            Bypass::TooManyHeaders => write!(f, "too many forwarded headers for a callout"),
            Bypass::NoKey { rule, reason } => write!(f, "rule {rule}: {reason}"),
        }
    }
}

/// A callout to make: the rule that matched, the (unencoded) key and the header list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub rule: String,
    pub key: String,
    pub headers: Vec<(String, String)>,
}

/// Decides whether this request calls out and, if so, builds the callout. `request` is the
/// client's header list as Envoy gives it (values as bytes, since they need not be UTF-8).
pub fn plan(
    config: &Config,
    request: &[(String, Vec<u8>)],
    end_of_stream: bool,
) -> Result<Plan, Bypass> {
    let decided = decide(config, request, end_of_stream)?;
    let headers = decided.callout_headers(&config.companion, request)?;
    Ok(Plan {
        rule: decided.rule.name.clone(),
        key: decided.keyed.key,
        headers,
    })
}

/// A request the cache answers: its rule and key, before any callout is built (an L1 hit needs
/// no more than this).
#[derive(Debug)]
pub struct Decided<'c> {
    pub rule: &'c Rule,
    pub method: String,
    pub keyed: Keyed,
    keyed_cookies: Vec<(String, String)>,
}

impl Decided<'_> {
    /// The callout for this request (see [`callout_headers`]).
    pub fn callout_headers(
        &self,
        companion: &Companion,
        request: &[(String, Vec<u8>)],
    ) -> Result<Vec<(String, String)>, Bypass> {
        let cookies: Vec<(&str, &str)> = self
            .keyed_cookies
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        callout_headers(
            companion,
            self.rule,
            &self.keyed,
            &self.method,
            request,
            &cookies,
        )
    }
}

/// Whether this request is cached, by which rule and under which key.
pub fn decide<'c>(
    config: &'c Config,
    request: &[(String, Vec<u8>)],
    end_of_stream: bool,
) -> Result<Decided<'c>, Bypass> {
    let method = pseudo(request, ":method")?;
    let path = pseudo(request, ":path")?;
    // HTTP/1.0 without Host has no authority; a parameter key does not need one.
    let authority = optional_pseudo(request, ":authority")?;
    let scheme = optional_pseudo(request, ":scheme")?;
    let head = RequestHead {
        method,
        path,
        authority,
    };
    let (_, rule) = find_rule(&config.rules, &head).ok_or(Bypass::NoRule)?;
    if !method_cached(&rule.matcher, method) {
        return Err(Bypass::MethodNotCached {
            rule: rule.name.clone(),
        });
    }
    if !end_of_stream {
        return Err(Bypass::HasBody);
    }
    let cookies = cookie_pairs(request)?;
    let keyed_cookies: Vec<(&str, &str)> = match &rule.cookies {
        CookiePolicy::Bypass if !cookies.is_empty() => {
            return Err(Bypass::Cookie {
                rule: rule.name.clone(),
            })
        }
        CookiePolicy::Bypass | CookiePolicy::Ignore => Vec::new(),
        // In the rule's order, the first of a repeated name: one answer per combination.
        CookiePolicy::Key(names) => names
            .iter()
            .filter_map(|n| {
                cookies
                    .iter()
                    .find(|(c, _)| c == n)
                    .map(|(_, v)| (n.as_str(), *v))
            })
            .collect(),
    };
    let input = KeyInput {
        scheme,
        authority,
        path,
        rule_host: rule.matcher.host.as_deref(),
        cookies: &keyed_cookies,
    };
    let keyed = cache_key(&rule.key, &input).map_err(|reason| Bypass::NoKey {
        rule: rule.name.clone(),
        reason,
    })?;
    Ok(Decided {
        rule,
        method: method.to_string(),
        keyed,
        keyed_cookies: keyed_cookies
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    })
}

fn pseudo<'r>(request: &'r [(String, Vec<u8>)], name: &'static str) -> Result<&'r str, Bypass> {
    request
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .ok_or(Bypass::MissingHeader(name))
}

/// A pseudo-header that may be absent (empty then), but not present and unreadable.
fn optional_pseudo<'r>(
    request: &'r [(String, Vec<u8>)],
    name: &'static str,
) -> Result<&'r str, Bypass> {
    match request.iter().find(|(n, _)| n == name) {
        None => Ok(""),
        Some((_, v)) => std::str::from_utf8(v).map_err(|_| Bypass::MissingHeader(name)),
    }
}

/// Every `name=value` pair of the request's `Cookie` fields (HTTP/2 may send several), in
/// order; empty pieces are skipped. Cookie bytes must be UTF-8 to be keyed or to bypass on.
fn cookie_pairs(request: &[(String, Vec<u8>)]) -> Result<Vec<(&str, &str)>, Bypass> {
    let mut pairs = Vec::new();
    for (name, value) in request {
        if !name.eq_ignore_ascii_case("cookie") {
            continue;
        }
        let text =
            std::str::from_utf8(value).map_err(|_| Bypass::NotUtf8Header("cookie".into()))?;
        for piece in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (n, v) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((n.trim(), v.trim()));
        }
    }
    Ok(pairs)
}

/// The callout's headers, in contract order: pseudo-headers, the credential, the
/// `x-hzcache-*` instructions, then the client headers the rule forwards (and those the cache
/// reads itself).
pub fn callout_headers(
    companion: &Companion,
    rule: &Rule,
    keyed: &Keyed,
    method: &str,
    request: &[(String, Vec<u8>)],
    keyed_cookies: &[(&str, &str)],
) -> Result<Vec<(String, String)>, Bypass> {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(24);
    let mut push = |n: &str, v: String| headers.push((n.to_string(), v));
    push(":method", "GET".into());
    push(":path", FETCH_PATH.into());
    push(":authority", companion.authority.clone());
    if let Some(secret) = &companion.secret {
        push(AUTH_HEADER, secret.expose().to_string());
    }
    push("x-hzcache-map", rule.map.clone());
    push("x-hzcache-key", encode_key(&keyed.key));
    push("x-hzcache-mode", rule.mode.as_str().into());
    push("x-hzcache-value-type", rule.value_type.as_str().into());
    push("x-hzcache-ttl", rule.ttl_seconds.to_string());
    push("x-hzcache-content-type", rule.content_type.clone());
    push("x-hzcache-origin", rule.origin.clone());
    push("x-hzcache-request-method", method.into());
    push(
        "x-hzcache-deadline-ms",
        deadline_ms(companion.timeout_ms).to_string(),
    );
    push("x-hzcache-request-path", keyed.origin_path.clone());
    if !keyed.origin_host.is_empty() {
        push("x-hzcache-request-host", keyed.origin_host.clone());
    }
    if let Some(scheme) = &keyed.scheme {
        push("x-hzcache-request-scheme", scheme.clone());
    }
    // Optional rule settings travel only when set, so the companion's defaults stay in force.
    if let Some(t) = rule.ttl_override_seconds {
        push("x-hzcache-ttl-override", t.to_string());
    }
    if rule.stale_while_revalidate_seconds > 0 {
        push(
            "x-hzcache-stale-while-revalidate",
            rule.stale_while_revalidate_seconds.to_string(),
        );
    }
    if rule.stale_if_error_seconds > 0 {
        push(
            "x-hzcache-stale-if-error",
            rule.stale_if_error_seconds.to_string(),
        );
    }
    if rule.strip_set_cookie {
        push("x-hzcache-strip-set-cookie", "1".into());
    }
    if let Some(t) = rule.last_modified_heuristic_max_seconds {
        push("x-hzcache-last-modified-heuristic-max", t.to_string());
    }
    if !keyed_cookies.is_empty() {
        let cookie: Vec<String> = keyed_cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        push("cookie", cookie.join("; "));
    }
    let (mut lines, mut bytes) = (0usize, 0usize);
    for (name, value) in request {
        let lower = name.to_ascii_lowercase();
        let wanted =
            FOR_THE_CACHE.contains(&lower.as_str()) || rule.forward_headers.contains(&lower);
        if !wanted || never_forwarded(&lower) {
            continue;
        }
        lines = lines.saturating_add(1);
        bytes = bytes.saturating_add(name.len()).saturating_add(value.len());
        if lines > MAX_FORWARDED_LINES || bytes > MAX_FORWARDED_BYTES {
            return Err(Bypass::TooManyHeaders);
        }
        let value =
            String::from_utf8(value.clone()).map_err(|_| Bypass::NotUtf8Header(name.clone()))?;
        headers.push((lower, value));
    }
    Ok(headers)
}

/// Header names listed in `Connection` values (lower-cased): hop-by-hop by declaration.
fn connection_tokens<'h>(headers: impl Iterator<Item = (&'h str, &'h [u8])>) -> Vec<String> {
    let mut tokens = Vec::new();
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("connection") {
            continue;
        }
        for token in String::from_utf8_lossy(value).split(',') {
            let token = token.trim();
            if !token.is_empty() {
                tokens.push(token.to_ascii_lowercase());
            }
        }
    }
    tokens
}

/// Whether a header may cross from one side to the other (both directions share the rule):
/// not a pseudo-header, not hop-by-hop (fixed or named in `Connection`), not `content-length`
/// (the receiving side sets its own), not `x-hzcache-*` (a client must not steer the cache, and
/// the companion's instructions are not for the client), not `x-envoy-*` (Envoy's own, such as
/// the callout's `x-envoy-upstream-service-time`, which would leak internal timing).
fn relayable(name: &str, connection_named: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    !(lower.starts_with(':')
        || lower.starts_with("x-hzcache-")
        || lower.starts_with("x-envoy-")
        || lower == "content-length"
        || HOP_BY_HOP.contains(&lower.as_str())
        || connection_named.contains(&lower))
}

// ---------------------------------------------------------------------------------------------
// Invalidation after unsafe requests (RFC 9111 §4.4)

pub const INVALIDATE_PATH: &str = "/v1/invalidate";
pub const INVALIDATE_HEADER: &str = "x-hzcache-invalidate";
/// Targets per invalidation callout (the companion accepts 16): the request URL plus Location
/// and Content-Location.
pub const MAX_INVALIDATE_TARGETS: usize = 16;

/// Whether a method is unsafe for RFC 9111 §4.4: anything but the safe methods GET, HEAD,
/// OPTIONS and TRACE (methods with unknown safety count as unsafe). Exact case, as methods are.
pub fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// What an unsafe request may invalidate, kept until its response arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// The client's `:scheme`, for the keys of relative Locations.
    pub scheme: String,
    /// The client's `:authority`, for deciding whether a Location is same-origin.
    pub authority: String,
    /// (map, key) of the request URL under the rule a GET of it would match.
    pub targets: Vec<(String, String)>,
}

/// The stored entry a URL maps to: the (map, key) under the rule that owns it (without
/// cookies: a rule keyed by cookies has one entry per cookie value, which a URL cannot name).
fn targets_for(
    config: &Config,
    scheme: &str,
    authority: &str,
    path: &str,
) -> Option<(String, String)> {
    let head = RequestHead {
        method: "GET",
        path,
        authority,
    };
    let (_, rule) = find_rule(&config.rules, &head)?;
    let input = KeyInput {
        scheme,
        authority,
        path,
        rule_host: rule.matcher.host.as_deref(),
        cookies: &[],
    };
    cache_key(&rule.key, &input)
        .ok()
        .map(|k| (rule.map.clone(), k.key))
}

/// For an unsafe request: what its success would invalidate. `None` for safe methods. The
/// request itself is never changed.
pub fn plan_invalidation(config: &Config, request: &[(String, Vec<u8>)]) -> Option<Invalidation> {
    let method = pseudo(request, ":method").ok()?;
    if !is_unsafe(method) {
        return None;
    }
    let path = pseudo(request, ":path").ok()?;
    let authority = pseudo(request, ":authority").unwrap_or("").to_string();
    let scheme = pseudo(request, ":scheme")
        .unwrap_or("")
        .to_ascii_lowercase();
    let targets = targets_for(config, &scheme, &authority, path)
        .into_iter()
        .collect();
    Some(Invalidation {
        scheme,
        authority,
        targets,
    })
}

/// The scheme and path of a same-origin URI reference: `/p?q` as is (the request's scheme),
/// `http(s)://AUTHORITY/p?q` when the authority is the request's (case-insensitive).
/// Relative references without a leading `/` and other origins give `None` (§4.4: other
/// origins must not be invalidated).
pub fn same_origin_path<'a>(
    reference: &'a str,
    authority: &str,
) -> Option<(Option<&'static str>, &'a str)> {
    let reference = reference.trim();
    if reference.starts_with('/') && !reference.starts_with("//") {
        return Some((None, reference));
    }
    let (scheme, rest) = if let Some(rest) = reference.strip_prefix("http://") {
        ("http", rest)
    } else {
        ("https", reference.strip_prefix("https://")?)
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!authority.is_empty() && auth.eq_ignore_ascii_case(authority)).then_some((Some(scheme), path))
}

/// The invalidation callout for an unsafe request's response, or `None` when nothing is to be
/// invalidated (an error status, no matching rule). `response` is the response header list.
pub fn invalidation_callout(
    config: &Config,
    inv: &Invalidation,
    response: &[(String, Vec<u8>)],
) -> Option<Vec<(String, String)>> {
    let targets = invalidation_targets(config, inv, response)?;
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), INVALIDATE_PATH.to_string()),
        (":authority".to_string(), config.companion.authority.clone()),
    ];
    if let Some(secret) = &config.companion.secret {
        headers.push((AUTH_HEADER.to_string(), secret.expose().to_string()));
    }
    for (map, key) in targets {
        headers.push((
            INVALIDATE_HEADER.to_string(),
            format!("{} {}", encode_key(&map), encode_key(&key)),
        ));
    }
    Some(headers)
}

/// The (map, key) entries an unsafe request's response invalidates (at most
/// [`MAX_INVALIDATE_TARGETS`]), or `None` when nothing is (an error status, no matching rule).
pub fn invalidation_targets(
    config: &Config,
    inv: &Invalidation,
    response: &[(String, Vec<u8>)],
) -> Option<Vec<(String, String)>> {
    let status = pseudo(response, ":status").ok().and_then(parse_status)?;
    // "Non-error status code": 2xx and 3xx.
    if !(200..400).contains(&status) {
        return None;
    }
    let mut targets = inv.targets.clone();
    for name in ["location", "content-location"] {
        let Some(value) = response
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
        else {
            continue;
        };
        if let Some((scheme, path)) = same_origin_path(value, &inv.authority) {
            let scheme = scheme.unwrap_or(inv.scheme.as_str());
            if let Some(t) = targets_for(config, scheme, &inv.authority, path) {
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
        }
    }
    if targets.is_empty() {
        return None;
    }
    targets.truncate(MAX_INVALIDATE_TARGETS);
    Some(targets)
}

/// How the companion's answer was produced, for hits and misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
}

/// What to do with the companion's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answer the client locally with this.
    Serve {
        outcome: Outcome,
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// How long the answer stays fresh, for the L1 (0: not to be kept).
        fresh_ms: u64,
    },
    /// Let the request continue upstream untouched.
    Resume(ResumeReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeReason {
    /// `pass`: the companion chose not to answer; it is healthy.
    Pass,
    /// A 4xx (other than 401) from the companion: it would not take this one request (its
    /// input, its map). Healthy, like `pass`.
    Refused(u32),
    /// `error`: the companion could not answer.
    Error,
    /// An outcome this filter does not know.
    UnknownOutcome(String),
    /// No outcome header: not the companion speaking (Envoy's own 503/504, a wrong cluster).
    NoOutcome { status: String },
    /// Zero headers: reset, overflow or timeout inside Envoy.
    Reset,
    /// `hit`/`miss` with a `:status` that is not an integer in 100..=599.
    BadStatus(String),
    /// `hit`/`miss` with a header value that is not UTF-8 (the local-reply API takes strings);
    /// relaying without it would change the response, so the origin answers instead.
    BadHeader(String),
}

impl ResumeReason {
    /// Whether this counts against the companion in the circuit breaker. `pass` and an
    /// unrelayable origin header are answers from a working companion.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            ResumeReason::Pass | ResumeReason::Refused(_) | ResumeReason::BadHeader(_)
        )
    }

    /// Whether the companion itself answered (anything): a sign of life for stall detection,
    /// unlike a reset or timeout, or an answer Envoy made up without one.
    pub fn companion_answered(&self) -> bool {
        !matches!(self, ResumeReason::Reset | ResumeReason::NoOutcome { .. })
    }
}

impl fmt::Display for ResumeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeReason::Pass => write!(f, "companion passed"),
            ResumeReason::Refused(code) => write!(f, "companion refused the request ({code})"),
            ResumeReason::Error => write!(f, "companion error"),
            ResumeReason::UnknownOutcome(v) => write!(f, "unknown outcome {v:?}"),
            ResumeReason::NoOutcome { status } => {
                write!(f, "reply without outcome (status {status:?})")
            }
            ResumeReason::Reset => write!(f, "callout reset or timed out (no headers)"),
            ResumeReason::BadStatus(s) => write!(f, "bad :status {s:?}"),
            ResumeReason::BadHeader(n) => write!(f, "reply header {n} is not UTF-8"),
        }
    }
}

/// Classifies the companion's reply. `headers` is the callout response header list (empty when
/// Envoy reports a reset or timeout), `body` its body.
pub fn classify(headers: &[(String, Vec<u8>)], body: Vec<u8>) -> Reply {
    if headers.is_empty() {
        return Reply::Resume(ResumeReason::Reset);
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
    };
    let status = value(":status").unwrap_or_default();
    let code = parse_status(&status);
    // A 4xx is the companion's answer about this request (its input, its map); only a refused
    // credential (401) says something about every request.
    let refused = code.filter(|c| (400..500).contains(c) && *c != 401);
    let outcome = match value(OUTCOME_HEADER) {
        None => {
            return Reply::Resume(match refused {
                Some(code) => ResumeReason::Refused(code),
                None => ResumeReason::NoOutcome { status },
            })
        }
        Some(o) if o.eq_ignore_ascii_case("hit") => Outcome::Hit,
        Some(o) if o.eq_ignore_ascii_case("miss") => Outcome::Miss,
        Some(o) if o.eq_ignore_ascii_case("pass") => return Reply::Resume(ResumeReason::Pass),
        Some(o) if o.eq_ignore_ascii_case("error") => {
            return Reply::Resume(match refused {
                Some(code) => ResumeReason::Refused(code),
                None => ResumeReason::Error,
            })
        }
        Some(o) => return Reply::Resume(ResumeReason::UnknownOutcome(o)),
    };
    let Some(code) = code else {
        return Reply::Resume(ResumeReason::BadStatus(status));
    };
    let named = connection_tokens(headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if !relayable(name, &named) {
            continue;
        }
        match String::from_utf8(value.clone()) {
            Ok(v) => out.push((name.clone(), v)),
            Err(_) => return Reply::Resume(ResumeReason::BadHeader(name.clone())),
        }
    }
    let fresh_ms = value(FRESH_MS_HEADER)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Reply::Serve {
        outcome,
        status: code,
        headers: out,
        body,
        fresh_ms,
    }
}

/// `:status` as a u32 in 100..=599: digits only (no sign, no spaces), at most three of them.
fn parse_status(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|c| (100..=599).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config() -> Config {
        parse(
            br#"{
              "companion": { "authority": "companion.local" },
              "rules": [
                { "name": "data", "match": { "path_prefix": "/data", "methods": ["GET", "HEAD"] },
                  "key": { "query_param": "key", "prefix": "d:" }, "map": "cache", "mode": "body",
                  "value_type": "bytes", "ttl_seconds": 300, "origin": "app" },
                { "name": "site", "match": { "path_prefix": "/", "host": "example.com" } }
              ]
            }"#,
        )
        .unwrap()
    }

    type Headers = Vec<(String, Vec<u8>)>;

    fn req(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn get(headers: &[(String, String)], name: &str) -> Option<String> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn names(headers: &[(String, String)]) -> Vec<&str> {
        headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn callout_carries_every_contract_header() {
        let request = req(&[
            (":method", "HEAD"),
            (":path", "/data?z=1&key=a%20b"),
            (":authority", "Shop.example:8443"),
            (":scheme", "https"),
            ("accept", "text/plain"),
        ]);
        let mut cfg = config();
        cfg.companion.secret = crate::config::with_secret(cfg.clone(), Some("s".repeat(16)))
            .unwrap()
            .companion
            .secret;
        let plan = plan(&cfg, &request, true).unwrap();
        assert_eq!(plan.rule, "data");
        assert_eq!(plan.key, "d:a b");
        let expect = [
            (":method", "GET"),
            (":path", "/v1/fetch"),
            (":authority", "companion.local"),
            ("x-hzcache-auth", "ssssssssssssssss"),
            ("x-hzcache-map", "cache"),
            ("x-hzcache-key", "d:a%20b"),
            ("x-hzcache-mode", "body"),
            ("x-hzcache-value-type", "bytes"),
            ("x-hzcache-ttl", "300"),
            ("x-hzcache-content-type", "application/octet-stream"),
            ("x-hzcache-origin", "app"),
            ("x-hzcache-request-method", "HEAD"),
            ("x-hzcache-deadline-ms", "4750"),
            // The canonical request: the rule's path and the one keyed parameter.
            ("x-hzcache-request-path", "/data?key=a%20b"),
            ("x-hzcache-last-modified-heuristic-max", "86400"),
            ("accept", "text/plain"),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(plan.headers, expect);
    }

    #[test]
    fn only_the_rules_forwarded_headers_and_the_caches_own_travel() {
        let request = req(&[
            (":method", "GET"),
            (":path", "/p"),
            (":authority", "example.com"),
            (":scheme", "http"),
            ("host", "example.com"),
            ("content-length", "0"),
            ("connection", "keep-alive, X-Secret , "),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-secret", "1"),
            ("x-hzcache-map", "evil"),
            ("X-HzCache-Key", "evil"),
            ("x-hzcache-auth", "forged"),
            ("x-forwarded-proto", "http"),
            ("X-Forwarded-Host", "evil.example"),
            ("forwarded", "host=evil.example"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-http-method-override", "DELETE"),
            ("x-envoy-original-path", "/x"),
            ("x-unknown", "1"),
            ("Accept-Encoding", "gzip"),
            ("authorization", "Bearer a"),
            ("cache-control", "no-cache"),
            ("if-none-match", "\"v1\""),
            ("range", "bytes=0-1"),
        ]);
        let plan = plan(&config(), &request, true).unwrap();
        let fixed = names(&plan.headers)
            .iter()
            .take_while(|n| n.starts_with(':') || n.starts_with("x-hzcache-"))
            .count();
        let forwarded: Vec<&str> = names(&plan.headers)[fixed..].to_vec();
        assert_eq!(
            forwarded,
            [
                "accept-encoding",
                "authorization",
                "cache-control",
                "if-none-match",
                "range"
            ]
        );
        for name in ["x-hzcache-map", "x-hzcache-key"] {
            assert_eq!(
                plan.headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .count(),
                1,
                "{name}"
            );
        }
        assert!(
            !plan.headers.iter().any(|(n, _)| n == "x-hzcache-auth"),
            "a client cannot supply the credential"
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-map").as_deref(),
            Some("hzcache")
        );
    }

    #[test]
    fn a_rule_lists_its_own_forwarded_headers() {
        let cfg =
            parse(br#"{ "rules": [ { "forward_headers": ["X-Tenant", "accept"] } ] }"#).unwrap();
        let request = req(&[
            (":method", "GET"),
            (":path", "/p"),
            (":authority", "h"),
            (":scheme", "http"),
            ("x-tenant", "t1"),
            ("accept", "a"),
            ("user-agent", "u"),
        ]);
        let plan = plan(&cfg, &request, true).unwrap();
        assert_eq!(get(&plan.headers, "x-tenant").as_deref(), Some("t1"));
        assert_eq!(get(&plan.headers, "accept").as_deref(), Some("a"));
        assert_eq!(get(&plan.headers, "user-agent"), None);
    }

    #[test]
    fn a_request_with_a_cookie_bypasses_unless_the_rule_says_how() {
        let with_cookie = |cookie: &str| {
            req(&[
                (":method", "GET"),
                (":path", "/p"),
                (":authority", "h"),
                (":scheme", "http"),
                ("cookie", cookie),
            ])
        };
        let bypass = parse(br#"{ "rules": [ { "name": "r" } ] }"#).unwrap();
        assert_eq!(
            plan(&bypass, &with_cookie("session=alice"), true),
            Err(Bypass::Cookie { rule: "r".into() })
        );
        // An empty Cookie field carries no cookie.
        assert!(plan(&bypass, &with_cookie(" ; "), true).is_ok());

        let ignore = parse(br#"{ "rules": [ { "cookies": "ignore" } ] }"#).unwrap();
        let p = plan(&ignore, &with_cookie("session=alice"), true).unwrap();
        assert_eq!(p.key, "http://h/p");
        assert_eq!(
            get(&p.headers, "cookie"),
            None,
            "an ignored cookie is not sent"
        );

        let keyed = parse(br#"{ "rules": [ { "cookies": { "key": ["lang", "ab"] } } ] }"#).unwrap();
        let p = plan(
            &keyed,
            &with_cookie("session=alice; ab=2; lang=de; lang=fr"),
            true,
        )
        .unwrap();
        assert_eq!(p.key, "http://h/p\0cookie:lang=de\0cookie:ab=2");
        assert_eq!(get(&p.headers, "cookie").as_deref(), Some("lang=de; ab=2"));
        let none = plan(&keyed, &with_cookie("session=alice"), true).unwrap();
        assert_eq!(none.key, "http://h/p");
        assert_eq!(get(&none.headers, "cookie"), None);
    }

    #[test]
    fn default_rule_uses_scheme_host_and_normalised_query() {
        let request = req(&[
            (":method", "GET"),
            (":path", "/p?b=1&a=2&a=1"),
            (":authority", "EXAMPLE.com"),
            (":scheme", "http"),
        ]);
        let plan = plan(&config(), &request, true).unwrap();
        assert_eq!(plan.rule, "site");
        assert_eq!(plan.key, "http://example.com/p?a=2&a=1&b=1");
        assert_eq!(
            get(&plan.headers, "x-hzcache-request-path").as_deref(),
            Some("/p?a=2&a=1&b=1")
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-request-host").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-request-scheme").as_deref(),
            Some("http")
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-mode").as_deref(),
            Some("envelope")
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-map").as_deref(),
            Some("hzcache")
        );
        // No ttl_seconds in the rule: no default lifetime (heuristics off).
        assert_eq!(get(&plan.headers, "x-hzcache-ttl").as_deref(), Some("0"));
    }

    #[test]
    fn requests_that_cannot_be_cached_bypass() {
        let cfg = config();
        let cases: Vec<(Headers, Bypass)> = vec![
            (
                req(&[
                    (":method", "POST"),
                    (":path", "/data?key=1"),
                    (":authority", "h"),
                ]),
                Bypass::MethodNotCached {
                    rule: "data".into(),
                },
            ),
            (
                req(&[
                    (":method", "GET"),
                    (":path", "/p"),
                    (":authority", "other.com"),
                ]),
                Bypass::NoRule,
            ),
            (
                req(&[(":method", "GET"), (":authority", "h")]),
                Bypass::MissingHeader(":path"),
            ),
            (
                req(&[(":path", "/"), (":authority", "h")]),
                Bypass::MissingHeader(":method"),
            ),
            (
                req(&[(":method", "GET"), (":path", "/data"), (":authority", "h")]),
                Bypass::NoKey {
                    rule: "data".into(),
                    reason: KeyError::MissingParam,
                },
            ),
            (
                req(&[
                    (":method", "GET"),
                    (":path", "/data?key=%FF"),
                    (":authority", "h"),
                ]),
                Bypass::NoKey {
                    rule: "data".into(),
                    reason: KeyError::NotUtf8,
                },
            ),
        ];
        for (request, expect) in cases {
            assert_eq!(plan(&cfg, &request, true), Err(expect));
        }
    }

    #[test]
    fn request_with_a_body_bypasses() {
        let request = req(&[
            (":method", "GET"),
            (":path", "/data?key=1"),
            (":authority", "h"),
        ]);
        assert_eq!(plan(&config(), &request, false), Err(Bypass::HasBody));
    }

    #[test]
    fn non_utf8_forwarded_header_bypasses_but_stripped_ones_do_not_matter() {
        let mut request = req(&[
            (":method", "GET"),
            (":path", "/data?key=1"),
            (":authority", "h"),
        ]);
        request.push(("x-hzcache-junk".into(), vec![0xff]));
        assert!(plan(&config(), &request, true).is_ok());
        request.push(("cookie".into(), vec![b'a', 0xff]));
        assert_eq!(
            plan(&config(), &request, true),
            Err(Bypass::NotUtf8Header("cookie".into()))
        );
    }

    #[test]
    fn parameter_key_works_without_authority() {
        let request = req(&[(":method", "GET"), (":path", "/data?key=1")]);
        let plan = plan(&config(), &request, true).unwrap();
        // No host in the key: the companion presents the origin's own.
        assert_eq!(get(&plan.headers, "x-hzcache-request-host"), None);
    }

    fn reply(pairs: &[(&str, &str)]) -> Headers {
        req(pairs)
    }

    #[test]
    fn hit_and_miss_are_served_with_relayable_headers() {
        for (outcome, expect) in [
            ("hit", Outcome::Hit),
            ("miss", Outcome::Miss),
            ("HIT", Outcome::Hit),
        ] {
            let headers = reply(&[
                (":status", "200"),
                ("x-hzcache-outcome", outcome),
                ("x-hzcache-stored", "1"),
                ("x-envoy-upstream-service-time", "4"),
                ("content-type", "text/plain"),
                ("content-length", "5"),
                ("connection", "close, x-hop"),
                ("x-hop", "1"),
                ("transfer-encoding", "chunked"),
                ("x-cache", "HIT"),
                ("age", "3"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("x-hzcache-fresh-ms", "1500"),
            ]);
            let got = classify(&headers, b"hello".to_vec());
            let Reply::Serve {
                outcome,
                status,
                headers,
                body,
                fresh_ms,
            } = got
            else {
                panic!("not served: {got:?}");
            };
            assert_eq!(outcome, expect);
            assert_eq!(fresh_ms, 1500, "read for the L1, not relayed");
            assert_eq!(status, 200);
            assert_eq!(body, b"hello");
            assert_eq!(
                names(&headers),
                ["content-type", "x-cache", "age", "set-cookie", "set-cookie"]
            );
        }
    }

    #[test]
    fn served_status_is_the_companions() {
        for s in ["100", "304", "404", "503", "599"] {
            let got = classify(
                &reply(&[(":status", s), ("x-hzcache-outcome", "hit")]),
                vec![],
            );
            assert!(
                matches!(got, Reply::Serve { status, .. } if status.to_string() == s),
                "{s}"
            );
        }
    }

    #[test]
    fn bad_status_fails_open() {
        for s in [
            "",
            "99",
            "600",
            "2000",
            "20x",
            "+200",
            " 200x",
            "-1",
            "4294967296",
        ] {
            let got = classify(
                &reply(&[(":status", s), ("x-hzcache-outcome", "miss")]),
                vec![],
            );
            assert!(
                matches!(&got, Reply::Resume(ResumeReason::BadStatus(_))),
                "{s:?}: {got:?}"
            );
        }
        let got = classify(&reply(&[("x-hzcache-outcome", "hit")]), vec![]);
        assert_eq!(got, Reply::Resume(ResumeReason::BadStatus(String::new())));
    }

    #[test]
    fn pass_error_unknown_and_absent_outcomes_resume() {
        let cases = [
            (
                reply(&[(":status", "200"), ("x-hzcache-outcome", "pass")]),
                ResumeReason::Pass,
            ),
            (
                reply(&[(":status", "503"), ("x-hzcache-outcome", "error")]),
                ResumeReason::Error,
            ),
            (
                reply(&[(":status", "200"), ("x-hzcache-outcome", "stale")]),
                ResumeReason::UnknownOutcome("stale".into()),
            ),
            (
                reply(&[(":status", "200"), ("content-type", "text/plain")]),
                ResumeReason::NoOutcome {
                    status: "200".into(),
                },
            ),
            (
                reply(&[(":status", "503"), ("content-length", "19")]),
                ResumeReason::NoOutcome {
                    status: "503".into(),
                },
            ),
            (
                reply(&[(":status", "504")]),
                ResumeReason::NoOutcome {
                    status: "504".into(),
                },
            ),
            (Vec::new(), ResumeReason::Reset),
            // The companion refusing one request's input is not a failing companion.
            (
                reply(&[(":status", "400"), ("x-hzcache-outcome", "error")]),
                ResumeReason::Refused(400),
            ),
            (
                reply(&[(":status", "403"), ("x-hzcache-outcome", "error")]),
                ResumeReason::Refused(403),
            ),
            // hyper's own answer to a request head it will not read.
            (reply(&[(":status", "431")]), ResumeReason::Refused(431)),
            // A refused credential is the same for every request: a failure.
            (
                reply(&[(":status", "401"), ("x-hzcache-outcome", "error")]),
                ResumeReason::Error,
            ),
        ];
        for (headers, reason) in cases {
            assert_eq!(classify(&headers, b"x".to_vec()), Reply::Resume(reason));
        }
    }

    #[test]
    fn a_client_cannot_make_the_callout_fail() {
        let base = [(":method", "GET"), (":authority", "h"), (":scheme", "http")];
        let with = |path: &str, extra: &[(&str, &str)]| {
            let mut r = req(&base);
            r.push((":path".into(), path.as_bytes().to_vec()));
            r.extend(
                extra
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
            );
            r
        };
        let site = |reason| Bypass::NoKey {
            rule: "site".into(),
            reason,
        };
        let mut cfg = config();
        cfg.rules[1].matcher.host = None;
        // Bytes a URI may not hold: the request goes upstream as it came, without a callout.
        for path in [
            "/p?a=\"b\"",
            "/p<x",
            "/p`x",
            "/p?a={b}",
            "/p|x",
            "/p^x",
            "/é",
        ] {
            assert_eq!(
                plan(&cfg, &with(path, &[]), true),
                Err(site(KeyError::NotUri)),
                "{path}"
            );
        }
        // Many forwarded lines: bypass, not a callout the companion refuses with 431.
        let many: Vec<(&str, &str)> = (0..=MAX_FORWARDED_LINES).map(|_| ("accept", "x")).collect();
        assert_eq!(
            plan(&cfg, &with("/p", &many), true),
            Err(Bypass::TooManyHeaders)
        );
        let big = "x".repeat(MAX_FORWARDED_BYTES);
        assert_eq!(
            plan(&cfg, &with("/p", &[("user-agent", &big)]), true),
            Err(Bypass::TooManyHeaders)
        );
        // Headers that are not forwarded do not count.
        let unforwarded: Vec<(&str, &str)> = (0..90).map(|_| ("x-junk", "x")).collect();
        assert!(plan(&cfg, &with("/p", &unforwarded), true).is_ok());
    }

    #[test]
    fn the_companion_is_given_a_deadline_inside_the_callout_timeout() {
        assert_eq!(deadline_ms(5000), 4750);
        assert_eq!(deadline_ms(1000), 800);
        assert_eq!(deadline_ms(100), 80);
        assert_eq!(deadline_ms(1), 1);
    }

    #[test]
    fn only_pass_refusals_and_unrelayable_headers_spare_the_breaker() {
        assert!(!ResumeReason::Pass.is_failure());
        assert!(!ResumeReason::Refused(400).is_failure());
        assert!(!ResumeReason::BadHeader("x".into()).is_failure());
        assert!(!ResumeReason::Reset.companion_answered());
        assert!(!ResumeReason::NoOutcome {
            status: "503".into()
        }
        .companion_answered());
        assert!(ResumeReason::Error.companion_answered());
        for r in [
            ResumeReason::Error,
            ResumeReason::UnknownOutcome("x".into()),
            ResumeReason::NoOutcome {
                status: "503".into(),
            },
            ResumeReason::Reset,
            ResumeReason::BadStatus("x".into()),
        ] {
            assert!(r.is_failure(), "{r}");
        }
    }

    #[test]
    fn non_utf8_reply_header_fails_open() {
        let mut headers = reply(&[(":status", "200"), ("x-hzcache-outcome", "hit")]);
        headers.push(("content-disposition".into(), vec![0xe9]));
        assert_eq!(
            classify(&headers, vec![]),
            Reply::Resume(ResumeReason::BadHeader("content-disposition".into()))
        );
    }

    #[test]
    fn only_safe_methods_are_safe() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(!is_unsafe(m), "{m}");
        }
        for m in ["POST", "PUT", "DELETE", "PATCH", "PURGE", "get", ""] {
            assert!(is_unsafe(m), "{m}");
        }
    }

    #[test]
    fn an_unsafe_request_plans_to_invalidate_its_url_under_the_get_rule() {
        let c = inv_config();
        let req = req(&[
            (":method", "POST"),
            (":path", "/page?b=2&a=1"),
            (":authority", "Shop.example"),
            (":scheme", "https"),
        ]);
        let inv = plan_invalidation(&c, &req).unwrap();
        assert_eq!(
            inv.targets,
            vec![(
                "hzcache".to_string(),
                "https://shop.example/page?a=1&b=2".to_string()
            )]
        );
        let get = req_get();
        assert_eq!(plan_invalidation(&c, &get), None);
    }

    fn inv_config() -> Config {
        parse(br#"{ "rules": [ { "name": "all", "match": { "path_prefix": "/" }, "ttl_seconds": 60 } ] }"#).unwrap()
    }

    fn req_get() -> Headers {
        req(&[
            (":method", "GET"),
            (":path", "/page"),
            (":authority", "h"),
            (":scheme", "http"),
        ])
    }

    #[test]
    fn a_successful_response_invalidates_the_url_and_same_origin_locations() {
        let c = inv_config();
        let inv = plan_invalidation(
            &c,
            &req(&[
                (":method", "PUT"),
                (":path", "/a"),
                (":authority", "h"),
                (":scheme", "http"),
            ]),
        )
        .unwrap();
        let resp = req(&[
            (":status", "201"),
            ("location", "/b?x=1"),
            ("content-location", "https://H/c"),
        ]);
        let call = invalidation_callout(&c, &inv, &resp).unwrap();
        assert_eq!(get(&call, ":method").as_deref(), Some("POST"));
        assert_eq!(get(&call, ":path").as_deref(), Some(INVALIDATE_PATH));
        let lines: Vec<&str> = call
            .iter()
            .filter(|(n, _)| n == INVALIDATE_HEADER)
            .map(|(_, v)| v.as_str())
            .collect();
        // A relative Location takes the request's scheme, an absolute one its own.
        assert_eq!(
            lines,
            [
                "hzcache http://h/a",
                "hzcache http://h/b?x=1",
                "hzcache https://h/c"
            ]
        );
        // Other origins and error statuses invalidate nothing more / nothing.
        let resp = req(&[
            (":status", "200"),
            ("location", "http://evil/x"),
            ("content-location", "//evil/y"),
        ]);
        assert_eq!(invalidation_callout(&c, &inv, &resp).unwrap().len(), 4);
        for s in ["404", "500", "101", "x"] {
            assert_eq!(
                invalidation_callout(&c, &inv, &req(&[(":status", s)])),
                None,
                "{s}"
            );
        }
    }

    #[test]
    fn same_origin_is_path_absolute_or_the_same_authority() {
        assert_eq!(same_origin_path("/x", "h"), Some((None, "/x")));
        assert_eq!(
            same_origin_path("https://h:8/x", "h:8"),
            Some((Some("https"), "/x"))
        );
        assert_eq!(same_origin_path("http://h", "h"), Some((Some("http"), "/")));
        assert_eq!(same_origin_path("http://h:9/x", "h:8"), None);
        assert_eq!(same_origin_path("//h/x", "h"), None);
        assert_eq!(same_origin_path("x", "h"), None);
        assert_eq!(same_origin_path("ftp://h/x", "h"), None);
        assert_eq!(same_origin_path("http://h/x", ""), None);
    }

    #[test]
    fn rule_stale_and_override_settings_travel_only_when_set() {
        let c = parse(
            br#"{ "rules": [ { "match": { "path_prefix": "/" }, "ttl_override_seconds": 7,
                 "stale_while_revalidate_seconds": 5, "stale_if_error_seconds": 9 } ] }"#,
        )
        .unwrap();
        let plan = plan(&c, &req_get(), true).unwrap();
        assert_eq!(get(&plan.headers, "x-hzcache-ttl").as_deref(), Some("0"));
        assert_eq!(
            get(&plan.headers, "x-hzcache-ttl-override").as_deref(),
            Some("7")
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-stale-while-revalidate").as_deref(),
            Some("5")
        );
        assert_eq!(
            get(&plan.headers, "x-hzcache-stale-if-error").as_deref(),
            Some("9")
        );
        let plain = plan_for_default();
        assert_eq!(get(&plain, "x-hzcache-stale-if-error"), None);
    }

    #[test]
    fn set_cookie_and_last_modified_heuristic_settings_travel_only_when_set() {
        let c = parse(
            br#"{ "rules": [ { "match": { "path_prefix": "/" }, "strip_set_cookie": true,
                 "last_modified_heuristic_max_seconds": 3600 } ] }"#,
        )
        .unwrap();
        let on = plan(&c, &req_get(), true).unwrap().headers;
        assert_eq!(get(&on, "x-hzcache-strip-set-cookie").as_deref(), Some("1"));
        assert_eq!(
            get(&on, "x-hzcache-last-modified-heuristic-max").as_deref(),
            Some("3600")
        );
        let plain = plan_for_default();
        assert_eq!(get(&plain, "x-hzcache-strip-set-cookie"), None);
        // The heuristic is on by default (a day); only `0` keeps the header off the wire.
        assert_eq!(
            get(&plain, "x-hzcache-last-modified-heuristic-max").as_deref(),
            Some("86400")
        );
    }

    fn plan_for_default() -> Vec<(String, String)> {
        plan(&inv_config(), &req_get(), true).unwrap().headers
    }
}
