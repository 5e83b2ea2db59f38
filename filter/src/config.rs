//! The filter's JSON configuration: the serde types that mirror the schema, its defaults and
//! limits, and validation into the typed [`Config`] the contexts use. Parsed once, in
//! `on_configure`; nothing here runs on the request path. The schema is documented in
//! `filter/README.md`.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;

/// Bounds the per-request rule scan (first match wins, linear): 256 is far more than a real
/// deployment needs and keeps the worst case cheap.
pub const MAX_RULES: usize = 256;
/// Hazelcast map names travel in a header and show up in dashboards; 255 bytes is generous.
pub const MAX_MAP_NAME_LEN: usize = 255;
/// One year: anything longer is almost certainly a unit mistake (ms for s).
pub const MAX_TTL_SECONDS: u32 = 31_536_000;
/// Default of a rule's `last_modified_heuristic_max_seconds`: a day, as Traffic Server and Squid cap
/// their `Last-Modified` heuristic (RFC 9111 §4.2.2 names 10 % of the age as typical).
pub const DEFAULT_LAST_MODIFIED_HEURISTIC_MAX_SECONDS: u32 = 86_400;
/// A callout that takes longer than a minute is useless to a waiting client; Envoy treats 0 as
/// "no timeout", which must never happen, so 0 is refused too.
pub const MAX_TIMEOUT_MS: u32 = 60_000;
/// A cool-down longer than an hour would hide a recovered companion for too long.
pub const MAX_COOLDOWN_MS: u64 = 3_600_000;
/// Upper bound on the breaker threshold; a larger value is indistinguishable from "never".
pub const MAX_BREAKER_FAILURES: u32 = 1_000_000;
/// Strings that are copied verbatim into callout headers (prefixes, names, hosts) stay short.
pub const MAX_STRING_LEN: usize = 1024;

/// Longest callout secret accepted (and shortest): the companion enforces the same bounds.
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;
/// Most request headers a rule may forward or key by name; each is one lookup per request.
pub const MAX_FORWARD_HEADERS: usize = 64;
/// Most cookies a rule may key by.
pub const MAX_KEY_COOKIES: usize = 16;

const DEFAULT_CLUSTER: &str = "hzcache_companion";
const DEFAULT_SECRET_ENV: &str = "HZCACHE_CALLOUT_SECRET";
const DEFAULT_AUTHORITY: &str = "hzcache-companion";
const DEFAULT_TIMEOUT_MS: u32 = 5_000;
const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// Recovery must follow health within seconds: an open breaker probes at least this often.
const DEFAULT_COOLDOWN_MS: u64 = 2_000;
/// A healthy companion answers a hit in milliseconds; half a second with callouts waiting and
/// no answer at all makes it suspect, and a ping tells a stall from a slow origin.
const DEFAULT_STALL_MS: u64 = 500;
const DEFAULT_MAP: &str = "hzcache";
const DEFAULT_ORIGIN: &str = "default";
const DEFAULT_PATH_PREFIX: &str = "/";
const CONTENT_TYPE_STRING: &str = "text/plain; charset=utf-8";
const CONTENT_TYPE_BYTES: &str = "application/octet-stream";

/// A configuration problem, with the JSON path of the offending field
/// (`rules[1].key.query_param`) so the operator can find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub companion: Companion,
    pub breaker: BreakerSettings,
    pub l1: L1Settings,
    pub rules: Vec<Rule>,
    pub log_level: LogLevel,
}

/// The in-Envoy L1 (`l1.rs`). Memory is at most `slots × max_entry_bytes` per Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Settings {
    /// Slots of the table; 0 turns L1 off.
    pub slots: u32,
    /// Largest entry a slot holds (answer headers and body included).
    pub max_entry_bytes: usize,
    /// Longest an entry is kept, whatever its freshness: the bound on staleness should the
    /// invalidation feed miss something.
    pub max_ttl_ms: u64,
    /// How often each worker polls the companion's invalidation feed.
    pub feed_interval_ms: u64,
    /// A feed not read for this long is stale: L1 stops answering and drops everything.
    pub feed_stale_ms: u64,
}

const DEFAULT_L1_SLOTS: u64 = 1024;
const MAX_L1_SLOTS: u64 = 1 << 20;
const DEFAULT_L1_ENTRY_BYTES: u64 = 32 * 1024;
const MAX_L1_ENTRY_BYTES: u64 = 16 * 1024 * 1024;
/// At most this much memory in all: a table bigger than this is a unit mistake.
const MAX_L1_TOTAL_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const DEFAULT_L1_TTL_MS: u64 = 5_000;
const MAX_L1_TTL_MS: u64 = 300_000;
const DEFAULT_FEED_INTERVAL_MS: u64 = 250;
const DEFAULT_FEED_STALE_MS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companion {
    /// Envoy cluster name (not a URL) that `dispatch_http_call` targets.
    pub cluster: String,
    /// `:authority` of the callout.
    pub authority: String,
    pub timeout_ms: u32,
    /// The environment variable (passed into the VM with `vm_config.environment_variables`)
    /// that holds the callout secret.
    pub secret_env: String,
    /// The callout secret, read from `secret_env` once in `on_configure` ([`with_secret`]);
    /// never part of the JSON, so it is never in Envoy's config dump.
    pub secret: Option<Secret>,
}

/// A credential: compared and sent, never printed (`Debug` shows only its length).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

/// The configuration with the callout secret from the environment: `value` is what
/// `companion.secret_env` holds (`None`: unset). A value that is set must be 16 to 256 visible
/// ASCII characters, as the companion requires; unset or empty leaves the callout without a
/// credential (only a loopback companion without a secret of its own accepts that).
pub fn with_secret(mut config: Config, value: Option<String>) -> Result<Config, ConfigError> {
    config.companion.secret = match value.filter(|v| !v.is_empty()) {
        None => None,
        Some(v) if SECRET_LEN.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()) => {
            Some(Secret(v))
        }
        Some(_) => {
            return Err(ConfigError::new(
                "companion.secret_env",
                format!(
                    "the value of {} must be {} to {} visible ASCII characters",
                    config.companion.secret_env,
                    SECRET_LEN.start(),
                    SECRET_LEN.end()
                ),
            ))
        }
    };
    Ok(config)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive callout failures that open the breaker.
    pub failures: u32,
    /// The longest wait between probes of an open breaker (they start at 250 ms and double).
    pub cooldown_ms: u64,
    /// How long a callout may wait with no answer from the companion at all before the
    /// companion counts as stalled.
    pub stall_ms: u64,
    /// How long a probe may be outstanding before another is allowed: the callout timeout.
    pub probe_deadline_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: DEFAULT_BREAKER_FAILURES,
            cooldown_ms: DEFAULT_COOLDOWN_MS,
            stall_ms: DEFAULT_STALL_MS,
            probe_deadline_ms: u64::from(DEFAULT_TIMEOUT_MS),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub matcher: Match,
    pub key: KeySpec,
    pub map: String,
    pub mode: Mode,
    pub value_type: ValueType,
    pub content_type: String,
    /// Default lifetime for responses without explicit freshness; 0 = none (heuristic
    /// freshness off, the default).
    pub ttl_seconds: u32,
    /// Replaces the origin's lifetime (except `Hzcache-Cache-Control`'s).
    pub ttl_override_seconds: Option<u32>,
    /// Stale windows when the response gives none and does not forbid stale.
    pub stale_while_revalidate_seconds: u32,
    pub stale_if_error_seconds: u32,
    /// Store responses that carry `Set-Cookie`, without it (RFC 9111 §7.3); off: such
    /// responses are not stored (the default).
    pub strip_set_cookie: bool,
    /// Heuristic freshness from `Last-Modified` (RFC 9111 §4.2.2): 10 % of the time since the
    /// last modification, at most this many seconds. Default
    /// [`DEFAULT_LAST_MODIFIED_HEURISTIC_MAX_SECONDS`]; `None` (configured `0`): off.
    pub last_modified_heuristic_max_seconds: Option<u32>,
    pub origin: String,
    /// What a request `Cookie` does to caching.
    pub cookies: CookiePolicy,
    /// Client request headers (lower-case) the origin fetch carries; nothing else reaches it
    /// (besides the request directives the cache itself reads, and the keyed cookies).
    pub forward_headers: Vec<String>,
}

/// What a rule does with a request that carries `Cookie` (RFC 9111 §3.5 leaves this to the
/// cache; a personal page without `Cache-Control` must never be shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookiePolicy {
    /// The request is neither answered from the cache nor stored (the default, like Varnish's
    /// built-in VCL).
    Bypass,
    /// The cookie is dropped: the origin fetch carries none and the key ignores it.
    Ignore,
    /// These cookies (by name) are part of the key and the only ones the origin fetch carries.
    Key(Vec<String>),
}

/// Request headers forwarded to the origin when a rule does not list its own: content
/// negotiation (which origins declare with `Vary`), credentials (an authorised response is
/// shared only when it says so, RFC 9111 §3.5) and tracing ids. Every other client header is
/// left out, so nothing the key does not hold can change what is stored.
pub const DEFAULT_FORWARD_HEADERS: [&str; 9] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "authorization",
    "origin",
    "user-agent",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Request headers that ask a server to act as if the URL, host, scheme, client or method were
/// other than what the key holds (the classic unkeyed inputs of cache poisoning). They never
/// reach the origin of a cached fetch, and a rule cannot list them in `forward_headers`.
const NEVER_FORWARDED: [&str; 14] = [
    "forwarded",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-original-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-host",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-proxyuser-ip",
    "x-wap-profile",
];

/// Prefixes of the same kind (`x-forwarded-for`, `-host`, `-proto`, `-port`, `-prefix`,
/// `-server`, `-scheme`, `-ssl` …), and the headers of Envoy and of hzcache itself.
const NEVER_FORWARDED_PREFIXES: [&str; 3] = ["x-forwarded-", "x-envoy-", "x-hzcache-"];

/// Headers that are the cache's own business or are set per hop, so a rule does not list them:
/// the request directives and validators (always given to the companion, which answers them
/// itself), `cookie` (see `cookies`), `host` and the hop-by-hop fields.
const NOT_LISTABLE: [&str; 17] = [
    "cache-control",
    "pragma",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
    "cookie",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a client header may never reach the origin of a cacheable fetch (see
/// [`NEVER_FORWARDED`]). `name` is lower-case.
pub fn never_forwarded(name: &str) -> bool {
    NEVER_FORWARDED.contains(&name) || NEVER_FORWARDED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Plain string prefix of the path (the part before `?`), like Envoy's route `prefix`.
    pub path_prefix: String,
    pub get: bool,
    pub head: bool,
    /// Lower-cased, without port.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub source: KeySource,
    /// Prepended to the computed key; empty when not configured.
    pub prefix: String,
}

impl KeySpec {
    /// The path a `query_param` key is fetched under (and the only path it caches): the one
    /// resource the parameter names. `None` for the default key, which keeps the whole URL.
    pub fn canonical_path(&self) -> Option<&str> {
        match &self.source {
            KeySource::Default => None,
            KeySource::QueryParam { path, .. } => Some(path),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// scheme + host + path + normalised query.
    Default,
    /// The percent-decoded value of the parameter `name` of requests for exactly `path`.
    QueryParam { name: String, path: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Envelope,
    Body,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Envelope => "envelope",
            Mode::Body => "body",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    String,
    Bytes,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Bytes => "bytes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

// ---------------------------------------------------------------------------------------------
// Raw serde types. Nested objects are kept as `Value` and deserialised one section at a time so
// that every error can be prefixed with the path of its section (see `section`).

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawTop {
    companion: Option<Value>,
    breaker: Option<Value>,
    l1: Option<Value>,
    rules: Option<Value>,
    log_level: Option<LogLevel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawCompanion {
    cluster: Option<String>,
    authority: Option<String>,
    timeout_ms: Option<u64>,
    secret_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawL1 {
    slots: Option<u64>,
    max_entry_bytes: Option<u64>,
    max_ttl_ms: Option<u64>,
    feed_interval_ms: Option<u64>,
    feed_stale_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawBreaker {
    failures: Option<u64>,
    cooldown_ms: Option<u64>,
    stall_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawRule {
    name: Option<String>,
    #[serde(rename = "match")]
    matcher: Option<Value>,
    key: Option<Value>,
    map: Option<String>,
    mode: Option<Mode>,
    value_type: Option<ValueType>,
    content_type: Option<String>,
    ttl_seconds: Option<u64>,
    ttl_override_seconds: Option<u64>,
    stale_while_revalidate_seconds: Option<u64>,
    stale_if_error_seconds: Option<u64>,
    strip_set_cookie: Option<bool>,
    last_modified_heuristic_max_seconds: Option<u64>,
    origin: Option<String>,
    cookies: Option<Value>,
    forward_headers: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawCookieKey {
    key: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawMatch {
    path_prefix: Option<String>,
    methods: Option<Vec<String>>,
    host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct RawKey {
    default: Option<bool>,
    query_param: Option<String>,
    path: Option<String>,
    prefix: Option<String>,
}

/// Parses and validates the plugin configuration bytes. Empty (or all-whitespace) input is the
/// same as `{}`: every default and no rules.
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ConfigError::new("configuration", format!("not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return from_value(&Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::new("configuration", format!("invalid JSON: {e}")))?;
    from_value(&value)
}

/// Validates an already-parsed JSON document.
pub fn from_value(value: &Value) -> Result<Config, ConfigError> {
    let top: RawTop = section(value, "")?;
    let companion = match &top.companion {
        Some(v) => companion(section(v, "companion")?)?,
        None => companion(RawCompanion {
            cluster: None,
            authority: None,
            timeout_ms: None,
            secret_env: None,
        })?,
    };
    let mut breaker = match &top.breaker {
        Some(v) => breaker(section(v, "breaker")?)?,
        None => breaker(RawBreaker {
            failures: None,
            cooldown_ms: None,
            stall_ms: None,
        })?,
    };
    breaker.probe_deadline_ms = u64::from(companion.timeout_ms);
    let l1 = match &top.l1 {
        Some(v) => l1(section(v, "l1")?)?,
        None => l1(RawL1::default())?,
    };
    let rules = match &top.rules {
        Some(v) => rules(v)?,
        None => Vec::new(),
    };
    Ok(Config {
        companion,
        breaker,
        l1,
        rules,
        log_level: top.log_level.unwrap_or(LogLevel::Info),
    })
}

/// Deserialises one object of the schema at `path`; an error names the field inside it that
/// failed (`serde_path_to_error`: `rules[2].methods[1]`, not just the section).
fn section<T: DeserializeOwned>(value: &Value, path: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        // The path within the section; "." is the section itself.
        let inner = err.path().to_string();
        let at = match (path, inner.as_str()) {
            ("", ".") => "configuration".to_string(),
            (_, ".") => path.to_string(),
            _ => join(path, &inner),
        };
        ConfigError::new(at, err.into_inner().to_string())
    })
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn companion(raw: RawCompanion) -> Result<Companion, ConfigError> {
    let cluster = raw.cluster.unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    check_name("companion.cluster", &cluster)?;
    let authority = raw
        .authority
        .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string());
    check_name("companion.authority", &authority)?;
    if authority.contains(' ') {
        return Err(ConfigError::new(
            "companion.authority",
            "must not contain spaces",
        ));
    }
    let timeout_ms = in_range(
        "companion.timeout_ms",
        raw.timeout_ms,
        DEFAULT_TIMEOUT_MS.into(),
        1,
        MAX_TIMEOUT_MS.into(),
    )?;
    let secret_env = raw
        .secret_env
        .unwrap_or_else(|| DEFAULT_SECRET_ENV.to_string());
    let valid_env = secret_env.len() <= 255
        && secret_env
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && secret_env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_env {
        return Err(ConfigError::new(
            "companion.secret_env",
            "must be an environment variable name (letters, digits and _, not starting with a digit)",
        ));
    }
    Ok(Companion {
        cluster,
        authority,
        // in_range bounded it by MAX_TIMEOUT_MS, which fits in u32.
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(MAX_TIMEOUT_MS),
        secret_env,
        secret: None,
    })
}

fn breaker(raw: RawBreaker) -> Result<BreakerSettings, ConfigError> {
    let failures = in_range(
        "breaker.failures",
        raw.failures,
        DEFAULT_BREAKER_FAILURES.into(),
        1,
        MAX_BREAKER_FAILURES.into(),
    )?;
    let cooldown_ms = in_range(
        "breaker.cooldown_ms",
        raw.cooldown_ms,
        DEFAULT_COOLDOWN_MS,
        1,
        MAX_COOLDOWN_MS,
    )?;
    let stall_ms = in_range(
        "breaker.stall_ms",
        raw.stall_ms,
        DEFAULT_STALL_MS,
        50,
        u64::from(MAX_TIMEOUT_MS),
    )?;
    Ok(BreakerSettings {
        failures: u32::try_from(failures).unwrap_or(MAX_BREAKER_FAILURES),
        cooldown_ms,
        stall_ms,
        // Set from companion.timeout_ms once both sections are read.
        probe_deadline_ms: u64::from(DEFAULT_TIMEOUT_MS),
    })
}

fn l1(raw: RawL1) -> Result<L1Settings, ConfigError> {
    let slots = in_range("l1.slots", raw.slots, DEFAULT_L1_SLOTS, 0, MAX_L1_SLOTS)?;
    let max_entry_bytes = in_range(
        "l1.max_entry_bytes",
        raw.max_entry_bytes,
        DEFAULT_L1_ENTRY_BYTES,
        1024,
        MAX_L1_ENTRY_BYTES,
    )?;
    if slots.saturating_mul(max_entry_bytes) > MAX_L1_TOTAL_BYTES {
        return Err(ConfigError::new(
            "l1",
            format!(
                "slots × max_entry_bytes is {} bytes, over the {MAX_L1_TOTAL_BYTES}-byte bound",
                slots.saturating_mul(max_entry_bytes)
            ),
        ));
    }
    let max_ttl_ms = in_range(
        "l1.max_ttl_ms",
        raw.max_ttl_ms,
        DEFAULT_L1_TTL_MS,
        1,
        MAX_L1_TTL_MS,
    )?;
    let feed_interval_ms = in_range(
        "l1.feed_interval_ms",
        raw.feed_interval_ms,
        DEFAULT_FEED_INTERVAL_MS,
        50,
        5_000,
    )?;
    let feed_stale_ms = in_range(
        "l1.feed_stale_ms",
        raw.feed_stale_ms,
        DEFAULT_FEED_STALE_MS,
        100,
        60_000,
    )?;
    if feed_stale_ms <= feed_interval_ms {
        return Err(ConfigError::new(
            "l1.feed_stale_ms",
            "must be longer than l1.feed_interval_ms",
        ));
    }
    Ok(L1Settings {
        slots: u32::try_from(slots).unwrap_or(0),
        max_entry_bytes: usize::try_from(max_entry_bytes).unwrap_or(0),
        max_ttl_ms,
        feed_interval_ms,
        feed_stale_ms,
    })
}

fn rules(value: &Value) -> Result<Vec<Rule>, ConfigError> {
    let Value::Array(items) = value else {
        return Err(ConfigError::new("rules", "expected an array of rules"));
    };
    if items.len() > MAX_RULES {
        return Err(ConfigError::new(
            "rules",
            format!(
                "at most {MAX_RULES} rules are allowed (got {})",
                items.len()
            ),
        ));
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("rules[{i}]");
        let rule = rule(section(item, &path)?, &path, i)?;
        if !names.insert(rule.name.clone()) {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate rule name {:?}", rule.name),
            ));
        }
        out.push(rule);
    }
    Ok(out)
}

fn rule(raw: RawRule, path: &str, index: usize) -> Result<Rule, ConfigError> {
    let name = raw.name.unwrap_or_else(|| format!("rule{index}"));
    check_name(&join(path, "name"), &name)?;

    let match_path = join(path, "match");
    let matcher = match &raw.matcher {
        Some(v) => matcher(section(v, &match_path)?, &match_path)?,
        None => matcher(
            RawMatch {
                path_prefix: None,
                methods: None,
                host: None,
            },
            &match_path,
        )?,
    };

    let key_path = join(path, "key");
    let key = match &raw.key {
        Some(v) => key(section(v, &key_path)?, &key_path, &matcher.path_prefix)?,
        None => KeySpec {
            source: KeySource::Default,
            prefix: String::new(),
        },
    };

    let map = raw.map.unwrap_or_else(|| DEFAULT_MAP.to_string());
    check_header_value(&join(path, "map"), &map)?;
    if map.len() > MAX_MAP_NAME_LEN {
        return Err(ConfigError::new(
            join(path, "map"),
            format!("must be at most {MAX_MAP_NAME_LEN} bytes"),
        ));
    }

    let mode = raw.mode.unwrap_or(Mode::Envelope);
    let value_type = raw.value_type.unwrap_or(ValueType::String);
    let content_type = raw.content_type.unwrap_or_else(|| {
        match value_type {
            ValueType::String => CONTENT_TYPE_STRING,
            ValueType::Bytes => CONTENT_TYPE_BYTES,
        }
        .to_string()
    });
    check_header_value(&join(path, "content_type"), &content_type)?;

    // Absent: no default lifetime, so only responses with explicit freshness are stored.
    let ttl = match raw.ttl_seconds {
        None => 0,
        v => in_range(&join(path, "ttl_seconds"), v, 0, 1, MAX_TTL_SECONDS.into())?,
    };
    let ttl_override = match raw.ttl_override_seconds {
        None => None,
        v => Some(in_range(
            &join(path, "ttl_override_seconds"),
            v,
            0,
            1,
            MAX_TTL_SECONDS.into(),
        )?),
    };
    let swr = in_range(
        &join(path, "stale_while_revalidate_seconds"),
        raw.stale_while_revalidate_seconds,
        0,
        0,
        MAX_TTL_SECONDS.into(),
    )?;
    let sie = in_range(
        &join(path, "stale_if_error_seconds"),
        raw.stale_if_error_seconds,
        0,
        0,
        MAX_TTL_SECONDS.into(),
    )?;

    // On by default, as Traffic Server and Squid have it; 0 turns it off.
    let heuristic_max = match in_range(
        &join(path, "last_modified_heuristic_max_seconds"),
        raw.last_modified_heuristic_max_seconds,
        DEFAULT_LAST_MODIFIED_HEURISTIC_MAX_SECONDS.into(),
        0,
        MAX_TTL_SECONDS.into(),
    )? {
        0 => None,
        t => Some(t),
    };

    let origin = raw.origin.unwrap_or_else(|| DEFAULT_ORIGIN.to_string());
    check_header_value(&join(path, "origin"), &origin)?;

    let cookies = match &raw.cookies {
        None => CookiePolicy::Bypass,
        Some(v) => cookie_policy(v, &join(path, "cookies"))?,
    };
    let forward_headers = match raw.forward_headers {
        None => DEFAULT_FORWARD_HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect(),
        Some(list) => forward_list(list, &join(path, "forward_headers"))?,
    };

    Ok(Rule {
        name,
        matcher,
        key,
        map,
        mode,
        value_type,
        content_type,
        // in_range bounded each by MAX_TTL_SECONDS, which fits in u32.
        ttl_seconds: u32::try_from(ttl).unwrap_or(MAX_TTL_SECONDS),
        ttl_override_seconds: ttl_override.map(|t| u32::try_from(t).unwrap_or(MAX_TTL_SECONDS)),
        stale_while_revalidate_seconds: u32::try_from(swr).unwrap_or(MAX_TTL_SECONDS),
        stale_if_error_seconds: u32::try_from(sie).unwrap_or(MAX_TTL_SECONDS),
        strip_set_cookie: raw.strip_set_cookie.unwrap_or(false),
        last_modified_heuristic_max_seconds: heuristic_max
            .map(|t| u32::try_from(t).unwrap_or(MAX_TTL_SECONDS)),
        origin,
        cookies,
        forward_headers,
    })
}

/// `"bypass"`, `"ignore"` or `{"key": ["name", …]}`.
fn cookie_policy(value: &Value, path: &str) -> Result<CookiePolicy, ConfigError> {
    match value {
        Value::String(s) if s == "bypass" => Ok(CookiePolicy::Bypass),
        Value::String(s) if s == "ignore" => Ok(CookiePolicy::Ignore),
        Value::Object(_) => {
            let raw: RawCookieKey = section(value, path)?;
            let key_path = join(path, "key");
            if raw.key.is_empty() || raw.key.len() > MAX_KEY_COOKIES {
                return Err(ConfigError::new(
                    key_path,
                    format!("must list 1 to {MAX_KEY_COOKIES} cookie names"),
                ));
            }
            let mut names: Vec<String> = Vec::with_capacity(raw.key.len());
            for (i, name) in raw.key.into_iter().enumerate() {
                let ok = !name.is_empty()
                    && name.len() <= MAX_STRING_LEN
                    && name.bytes().all(is_token_byte);
                if !ok {
                    return Err(ConfigError::new(
                        format!("{key_path}[{i}]"),
                        "must be a cookie name (an RFC 9110 token)",
                    ));
                }
                if names.contains(&name) {
                    return Err(ConfigError::new(
                        format!("{key_path}[{i}]"),
                        format!("cookie {name:?} is listed twice"),
                    ));
                }
                names.push(name);
            }
            Ok(CookiePolicy::Key(names))
        }
        _ => Err(ConfigError::new(
            path,
            "expected \"bypass\", \"ignore\" or {\"key\": [cookie names]}",
        )),
    }
}

/// A rule's own list of forwarded headers: tokens, lower-cased, none that the key cannot hold.
fn forward_list(list: Vec<String>, path: &str) -> Result<Vec<String>, ConfigError> {
    if list.len() > MAX_FORWARD_HEADERS {
        return Err(ConfigError::new(
            path,
            format!("at most {MAX_FORWARD_HEADERS} headers"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, name) in list.into_iter().enumerate() {
        let item = format!("{path}[{i}]");
        if name.is_empty() || name.len() > MAX_STRING_LEN || !name.bytes().all(is_token_byte) {
            return Err(ConfigError::new(item, "must be a header name"));
        }
        let lower = name.to_ascii_lowercase();
        if never_forwarded(&lower) {
            return Err(ConfigError::new(
                item,
                format!(
                    "{lower} would change what the origin answers without being part of the key; it is never forwarded"
                ),
            ));
        }
        if NOT_LISTABLE.contains(&lower.as_str()) {
            return Err(ConfigError::new(
                item,
                format!("{lower} is handled by the cache itself (see `cookies` for cookie)"),
            ));
        }
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    Ok(out)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn matcher(raw: RawMatch, path: &str) -> Result<Match, ConfigError> {
    let prefix_path = join(path, "path_prefix");
    let path_prefix = raw
        .path_prefix
        .unwrap_or_else(|| DEFAULT_PATH_PREFIX.to_string());
    if !path_prefix.starts_with('/') {
        return Err(ConfigError::new(prefix_path, "must start with '/'"));
    }
    check_header_value(&prefix_path, &path_prefix)?;

    let methods_path = join(path, "methods");
    let methods = raw.methods.unwrap_or_else(|| vec!["GET".to_string()]);
    if methods.is_empty() {
        return Err(ConfigError::new(methods_path, "must not be empty"));
    }
    let (mut get, mut head) = (false, false);
    for (i, method) in methods.iter().enumerate() {
        match method.as_str() {
            "GET" => get = true,
            "HEAD" => head = true,
            other => {
                return Err(ConfigError::new(
                    format!("{methods_path}[{i}]"),
                    format!(
                        "unsupported method {other:?}: only the safe methods GET and HEAD can be cached"
                    ),
                ))
            }
        }
    }

    let host = match raw.host {
        None => None,
        Some(host) => {
            let host_path = join(path, "host");
            check_name(&host_path, &host)?;
            if host.contains(' ') {
                return Err(ConfigError::new(host_path, "must not contain spaces"));
            }
            if crate::url::host_without_port(&host) != host {
                return Err(ConfigError::new(
                    host_path,
                    "must not include a port (the request's port is ignored when matching)",
                ));
            }
            Some(host.to_ascii_lowercase())
        }
    };

    Ok(Match {
        path_prefix,
        get,
        head,
        host,
    })
}

fn key(raw: RawKey, path: &str, path_prefix: &str) -> Result<KeySpec, ConfigError> {
    if raw.path.is_some() && raw.query_param.is_none() {
        return Err(ConfigError::new(
            join(path, "path"),
            "only a query_param key has a path (the default key keeps the request's)",
        ));
    }
    let source = match (raw.default, raw.query_param) {
        (Some(true), None) => KeySource::Default,
        (Some(false), None) => {
            return Err(ConfigError::new(
                join(path, "default"),
                "must be true (use query_param for a parameter key)",
            ))
        }
        (None, Some(param)) => {
            let param_path = join(path, "query_param");
            if param.is_empty() {
                return Err(ConfigError::new(param_path, "must not be empty"));
            }
            if param.len() > MAX_STRING_LEN {
                return Err(ConfigError::new(
                    param_path,
                    format!("must be at most {MAX_STRING_LEN} bytes"),
                ));
            }
            // The one resource the parameter names: what the origin is asked for, and the
            // only path the rule caches (`/database?key=a` must not share `/data?key=a`).
            let canonical = raw.path.unwrap_or_else(|| path_prefix.to_string());
            let canonical_path = join(path, "path");
            if !canonical.starts_with('/') || canonical.contains(['?', '#']) {
                return Err(ConfigError::new(
                    canonical_path,
                    "must be a path starting with '/', without query or fragment",
                ));
            }
            check_header_value(&canonical_path, &canonical)?;
            if !canonical.starts_with(path_prefix) {
                return Err(ConfigError::new(
                    canonical_path,
                    format!("must be under the rule's path_prefix {path_prefix:?}"),
                ));
            }
            KeySource::QueryParam {
                name: param,
                path: canonical,
            }
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                path,
                "set exactly one of `default` and `query_param`, not both",
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(
                path,
                "set exactly one of `default: true` and `query_param`",
            ))
        }
    };
    let prefix = raw.prefix.unwrap_or_default();
    if prefix.len() > MAX_STRING_LEN {
        return Err(ConfigError::new(
            join(path, "prefix"),
            format!("must be at most {MAX_STRING_LEN} bytes"),
        ));
    }
    Ok(KeySpec { source, prefix })
}

/// Non-empty, bounded, no control characters.
fn check_name(path: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(path, "must not be empty"));
    }
    if value.len() > MAX_STRING_LEN {
        return Err(ConfigError::new(
            path,
            format!("must be at most {MAX_STRING_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigError::new(
            path,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The value is sent verbatim as a callout header value, so it must be one Envoy accepts and
/// does not rewrite: printable ASCII, no leading or trailing space.
fn check_header_value(path: &str, value: &str) -> Result<(), ConfigError> {
    check_name(path, value)?;
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(ConfigError::new(
            path,
            "must be printable ASCII (it is sent as a header value)",
        ));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(ConfigError::new(path, "must not start or end with a space"));
    }
    Ok(())
}

fn in_range(
    path: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let value = value.unwrap_or(default);
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            path,
            format!("must be in {min}..={max} (got {value})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(v: Value) -> Result<Config, ConfigError> {
        parse(v.to_string().as_bytes())
    }

    fn err_of(v: Value) -> ConfigError {
        match parse_json(v) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn example_from_the_brief_is_accepted() {
        let cfg = parse_json(json!({
          "companion": { "cluster": "hzcache_companion", "authority": "hzcache-companion", "timeout_ms": 5000 },
          "breaker": { "failures": 5, "cooldown_ms": 10000 },
          "rules": [
            { "name": "data", "match": { "path_prefix": "/data", "methods": ["GET"] },
              "key": { "query_param": "key" },
              "map": "cache", "mode": "body", "value_type": "string", "content_type": "text/plain; charset=utf-8",
              "ttl_seconds": 300, "origin": "default" },
            { "name": "default", "match": { "path_prefix": "/" }, "key": { "default": true }, "map": "hzcache", "mode": "envelope", "ttl_seconds": 60 }
          ]
        }))
        .unwrap();
        assert_eq!(cfg.rules.len(), 2);
        let data = &cfg.rules[0];
        assert_eq!(data.name, "data");
        assert_eq!(
            data.key.source,
            KeySource::QueryParam {
                name: "key".into(),
                path: "/data".into()
            }
        );
        assert_eq!(data.mode, Mode::Body);
        assert_eq!(data.map, "cache");
        assert_eq!(data.ttl_seconds, 300);
        assert_eq!(cfg.rules[1].key.source, KeySource::Default);
        assert_eq!(cfg.rules[1].mode, Mode::Envelope);
    }

    #[test]
    fn empty_configuration_means_defaults_and_no_rules() {
        for input in [&b""[..], b"  \n", b"{}"] {
            let cfg = parse(input).unwrap();
            assert_eq!(
                cfg.companion,
                Companion {
                    cluster: "hzcache_companion".into(),
                    authority: "hzcache-companion".into(),
                    timeout_ms: 5000,
                    secret_env: "HZCACHE_CALLOUT_SECRET".into(),
                    secret: None,
                }
            );
            assert_eq!(
                cfg.breaker,
                BreakerSettings {
                    failures: 5,
                    cooldown_ms: 2_000,
                    stall_ms: 500,
                    probe_deadline_ms: 5_000,
                }
            );
            assert!(cfg.rules.is_empty());
            assert_eq!(cfg.log_level, LogLevel::Info);
        }
    }

    #[test]
    fn every_rule_field_has_a_default() {
        let cfg = parse_json(json!({ "rules": [{}] })).unwrap();
        let r = &cfg.rules[0];
        assert_eq!(r.name, "rule0");
        assert_eq!(
            r.matcher,
            Match {
                path_prefix: "/".into(),
                get: true,
                head: false,
                host: None
            }
        );
        assert_eq!(
            r.key,
            KeySpec {
                source: KeySource::Default,
                prefix: String::new()
            }
        );
        assert_eq!(r.map, "hzcache");
        assert_eq!(r.mode, Mode::Envelope);
        assert_eq!(r.value_type, ValueType::String);
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(r.ttl_seconds, 0, "no default lifetime unless configured");
        assert_eq!(r.ttl_override_seconds, None);
        assert_eq!(r.stale_while_revalidate_seconds, 0);
        assert_eq!(r.stale_if_error_seconds, 0);
        assert!(
            !r.strip_set_cookie,
            "Set-Cookie responses are not stored unless opted in"
        );
        assert_eq!(
            r.last_modified_heuristic_max_seconds,
            Some(86_400),
            "the Last-Modified heuristic is on by default, capped at a day"
        );
        let off =
            parse_json(json!({ "rules": [{ "last_modified_heuristic_max_seconds": 0 }] })).unwrap();
        assert_eq!(
            off.rules[0].last_modified_heuristic_max_seconds, None,
            "0: off"
        );
        assert_eq!(r.origin, "default");
    }

    #[test]
    fn content_type_default_follows_value_type() {
        let cfg = parse_json(json!({ "rules": [{ "value_type": "bytes" }] })).unwrap();
        assert_eq!(cfg.rules[0].content_type, "application/octet-stream");
        let cfg = parse_json(
            json!({ "rules": [{ "value_type": "bytes", "content_type": "image/png" }] }),
        )
        .unwrap();
        assert_eq!(cfg.rules[0].content_type, "image/png");
    }

    #[test]
    fn key_prefix_host_and_head_are_kept() {
        let cfg = parse_json(json!({ "rules": [{
            "match": { "host": "Example.COM", "methods": ["HEAD", "GET"], "path_prefix": "/x" },
            "key": { "default": true, "prefix": "v1:" }
        }] }))
        .unwrap();
        let r = &cfg.rules[0];
        assert_eq!(r.matcher.host.as_deref(), Some("example.com"));
        assert!(r.matcher.get && r.matcher.head);
        assert_eq!(r.key.prefix, "v1:");
    }

    #[test]
    fn log_level_is_configurable() {
        let cfg = parse_json(json!({ "log_level": "debug" })).unwrap();
        assert_eq!(cfg.log_level, LogLevel::Debug);
        assert_eq!(err_of(json!({ "log_level": "loud" })).path, "log_level");
    }

    #[test]
    fn bad_json_is_reported_against_the_configuration() {
        let e = parse(b"{\"rules\": [").unwrap_err();
        assert_eq!(e.path, "configuration");
        assert!(e.message.contains("invalid JSON"), "{e}");
        let e = parse(b"[]").unwrap_err();
        assert_eq!(e.path, "configuration");
        assert!(e.message.contains("a JSON object"), "{e}");
        let e = parse(&[0xff, 0xfe]).unwrap_err();
        assert_eq!(e.path, "configuration");
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let cases = [
            (json!({ "rulez": [] }), "rulez"),
            (
                json!({ "companion": { "clustr": "x" } }),
                "companion.clustr",
            ),
            (json!({ "breaker": { "failure": 1 } }), "breaker.failure"),
            (json!({ "rules": [{}, { "ttl": 5 }] }), "rules[1].ttl"),
            (
                json!({ "rules": [{ "match": { "prefix": "/" } }] }),
                "rules[0].match.prefix",
            ),
            (
                json!({ "rules": [{ "key": { "param": "k" } }] }),
                "rules[0].key.param",
            ),
        ];
        for (input, path) in cases {
            let e = err_of(input);
            assert_eq!(e.path, path, "{e}");
            assert!(e.message.contains("unknown field"), "{e}");
        }
    }

    #[test]
    fn a_wrong_type_is_named_down_to_the_list_item() {
        let cases = [
            (
                json!({ "rules": [{}, { "forward_headers": ["accept", 5] }] }),
                "rules[1].forward_headers[1]",
            ),
            (
                json!({ "rules": [{ "ttl_seconds": "sixty" }] }),
                "rules[0].ttl_seconds",
            ),
            (
                json!({ "companion": { "timeout_ms": -1 } }),
                "companion.timeout_ms",
            ),
            (json!({ "companion": 5 }), "companion"),
            (json!({ "rules": [{ "match": [] }] }), "rules[0].match"),
        ];
        for (input, path) in cases {
            let e = err_of(input);
            assert_eq!(e.path, path, "{e}");
            assert!(e.message.starts_with("invalid"), "{e}");
        }
    }

    #[test]
    fn unknown_field_message_lists_the_valid_ones() {
        let e = err_of(json!({ "rules": [{ "match": { "prefix": "/" } }] }));
        assert_eq!(
            e.to_string(),
            "rules[0].match.prefix: unknown field `prefix`, expected one of `path_prefix`, `methods`, `host`"
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (
                json!({ "companion": { "timeout_ms": "5" } }),
                "companion.timeout_ms",
            ),
            (json!({ "companion": 5 }), "companion"),
            (json!({ "rules": {} }), "rules"),
            (json!({ "rules": [5] }), "rules[0]"),
            (json!({ "rules": [{ "mode": "bodies" }] }), "rules[0].mode"),
            (
                json!({ "rules": [{ "value_type": 1 }] }),
                "rules[0].value_type",
            ),
            (
                json!({ "rules": [{ "match": { "methods": "GET" } }] }),
                "rules[0].match.methods",
            ),
            (
                json!({ "rules": [{ "ttl_seconds": -1 }] }),
                "rules[0].ttl_seconds",
            ),
            (
                json!({ "rules": [{ "key": { "default": "yes" } }] }),
                "rules[0].key.default",
            ),
        ];
        for (input, path) in cases {
            let e = err_of(input);
            assert_eq!(e.path, path, "{e}");
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({ "companion": { "timeout_ms": 0 } }),
                "companion.timeout_ms",
            ),
            (
                json!({ "companion": { "timeout_ms": 60001 } }),
                "companion.timeout_ms",
            ),
            (
                json!({ "companion": { "cluster": "" } }),
                "companion.cluster",
            ),
            (
                json!({ "companion": { "authority": "a b" } }),
                "companion.authority",
            ),
            (json!({ "breaker": { "failures": 0 } }), "breaker.failures"),
            (
                json!({ "breaker": { "cooldown_ms": 0 } }),
                "breaker.cooldown_ms",
            ),
            (json!({ "breaker": { "stall_ms": 49 } }), "breaker.stall_ms"),
            (
                json!({ "rules": [{}, { "key": { "query_param": "" } }] }),
                "rules[1].key.query_param",
            ),
            (json!({ "rules": [{ "key": {} }] }), "rules[0].key"),
            (
                json!({ "rules": [{ "key": { "default": true, "query_param": "k" } }] }),
                "rules[0].key",
            ),
            (
                json!({ "rules": [{ "key": { "default": false } }] }),
                "rules[0].key.default",
            ),
            (
                json!({ "rules": [{ "match": { "methods": ["GET", "POST"] } }] }),
                "rules[0].match.methods[1]",
            ),
            (
                json!({ "rules": [{ "match": { "methods": ["get"] } }] }),
                "rules[0].match.methods[0]",
            ),
            (
                json!({ "rules": [{ "match": { "methods": [] } }] }),
                "rules[0].match.methods",
            ),
            (
                json!({ "rules": [{ "match": { "path_prefix": "data" } }] }),
                "rules[0].match.path_prefix",
            ),
            (
                json!({ "rules": [{ "match": { "host": "example.com:8080" } }] }),
                "rules[0].match.host",
            ),
            (
                json!({ "rules": [{ "match": { "host": "" } }] }),
                "rules[0].match.host",
            ),
            (
                json!({ "rules": [{ "ttl_seconds": 0 }] }),
                "rules[0].ttl_seconds",
            ),
            (
                json!({ "rules": [{ "ttl_seconds": 31_536_001 }] }),
                "rules[0].ttl_seconds",
            ),
            (
                json!({ "rules": [{ "ttl_override_seconds": 0 }] }),
                "rules[0].ttl_override_seconds",
            ),
            (
                json!({ "rules": [{ "stale_if_error_seconds": 31_536_001 }] }),
                "rules[0].stale_if_error_seconds",
            ),
            (
                json!({ "rules": [{ "stale_while_revalidate_seconds": -1 }] }),
                "rules[0].stale_while_revalidate_seconds",
            ),
            (
                json!({ "rules": [{ "last_modified_heuristic_max_seconds": -1 }] }),
                "rules[0].last_modified_heuristic_max_seconds",
            ),
            (
                json!({ "rules": [{ "last_modified_heuristic_max_seconds": 31_536_001 }] }),
                "rules[0].last_modified_heuristic_max_seconds",
            ),
            (
                json!({ "rules": [{ "strip_set_cookie": "yes" }] }),
                "rules[0].strip_set_cookie",
            ),
            (json!({ "rules": [{ "map": "" }] }), "rules[0].map"),
            (
                json!({ "rules": [{ "map": "m".repeat(256) }] }),
                "rules[0].map",
            ),
            (json!({ "rules": [{ "map": "caché" }] }), "rules[0].map"),
            (json!({ "rules": [{ "origin": "" }] }), "rules[0].origin"),
            (
                json!({ "rules": [{ "content_type": "text/plain\n" }] }),
                "rules[0].content_type",
            ),
            (json!({ "rules": [{ "name": "" }] }), "rules[0].name"),
            (
                json!({ "rules": [{ "name": "a" }, { "name": "a" }] }),
                "rules[1].name",
            ),
            (
                json!({ "companion": { "secret_env": "1BAD" } }),
                "companion.secret_env",
            ),
            (
                json!({ "companion": { "secret_env": "A-B" } }),
                "companion.secret_env",
            ),
            (
                json!({ "rules": [{ "cookies": "keep" }] }),
                "rules[0].cookies",
            ),
            (
                json!({ "rules": [{ "cookies": { "key": [] } }] }),
                "rules[0].cookies.key",
            ),
            (
                json!({ "rules": [{ "cookies": { "key": ["a b"] } }] }),
                "rules[0].cookies.key[0]",
            ),
            (
                json!({ "rules": [{ "cookies": { "key": ["a", "a"] } }] }),
                "rules[0].cookies.key[1]",
            ),
            (
                json!({ "rules": [{ "cookies": { "names": ["a"] } }] }),
                "rules[0].cookies.names",
            ),
            (
                json!({ "rules": [{ "forward_headers": ["accept", "X-Forwarded-Host"] }] }),
                "rules[0].forward_headers[1]",
            ),
            (
                json!({ "rules": [{ "forward_headers": ["x-original-url"] }] }),
                "rules[0].forward_headers[0]",
            ),
            (
                json!({ "rules": [{ "forward_headers": ["cookie"] }] }),
                "rules[0].forward_headers[0]",
            ),
            (
                json!({ "rules": [{ "forward_headers": ["bad name"] }] }),
                "rules[0].forward_headers[0]",
            ),
            (
                json!({ "rules": [{ "key": { "default": true, "path": "/x" } }] }),
                "rules[0].key.path",
            ),
            (
                json!({ "rules": [{ "match": { "path_prefix": "/data" },
                                    "key": { "query_param": "k", "path": "/other" } }] }),
                "rules[0].key.path",
            ),
            (
                json!({ "rules": [{ "key": { "query_param": "k", "path": "/x?y" } }] }),
                "rules[0].key.path",
            ),
        ];
        for (input, path) in cases {
            let e = err_of(input.clone());
            assert_eq!(e.path, path, "input {input}: {e}");
        }
    }

    #[test]
    fn cookies_forwarded_headers_and_the_canonical_path_have_safe_defaults() {
        let cfg = parse_json(json!({ "rules": [
            {},
            { "match": { "path_prefix": "/data" }, "key": { "query_param": "key" },
              "cookies": { "key": ["lang"] }, "forward_headers": ["X-Tenant"] },
            { "key": { "query_param": "k", "path": "/one" }, "cookies": "ignore" }
        ] }))
        .unwrap();
        let plain = &cfg.rules[0];
        assert_eq!(
            plain.cookies,
            CookiePolicy::Bypass,
            "like Varnish's built-in VCL"
        );
        assert_eq!(plain.forward_headers, DEFAULT_FORWARD_HEADERS.to_vec());
        assert_eq!(plain.key.canonical_path(), None);
        assert_eq!(cfg.rules[1].key.canonical_path(), Some("/data"));
        assert_eq!(cfg.rules[1].cookies, CookiePolicy::Key(vec!["lang".into()]));
        assert_eq!(cfg.rules[1].forward_headers, ["x-tenant"]);
        assert_eq!(cfg.rules[2].key.canonical_path(), Some("/one"));
        assert_eq!(cfg.rules[2].cookies, CookiePolicy::Ignore);
        for name in DEFAULT_FORWARD_HEADERS {
            assert!(!never_forwarded(name), "{name}");
        }
    }

    #[test]
    fn the_secret_comes_from_its_variable_and_is_never_printed() {
        let cfg = parse(b"{}").unwrap();
        assert_eq!(cfg.companion.secret_env, "HZCACHE_CALLOUT_SECRET");
        let with = with_secret(cfg.clone(), Some("a-secret-of-16+chars".into())).unwrap();
        assert_eq!(
            with.companion.secret.as_ref().map(Secret::expose),
            Some("a-secret-of-16+chars")
        );
        assert!(!format!("{with:?}").contains("a-secret"), "{with:?}");
        assert_eq!(
            with_secret(cfg.clone(), None).unwrap().companion.secret,
            None
        );
        assert_eq!(
            with_secret(cfg.clone(), Some(String::new()))
                .unwrap()
                .companion
                .secret,
            None
        );
        for bad in ["short", "with space in it 123", &"x".repeat(257)] {
            let e = with_secret(cfg.clone(), Some(bad.to_string())).unwrap_err();
            assert_eq!(e.path, "companion.secret_env");
            assert!(
                !e.message.contains(bad),
                "the error does not echo the value"
            );
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let cfg = parse_json(json!({
            "companion": { "timeout_ms": 60000 },
            "rules": [{ "ttl_seconds": 31_536_000, "map": "m".repeat(255) }, { "ttl_seconds": 1 }]
        }))
        .unwrap();
        assert_eq!(cfg.companion.timeout_ms, 60_000);
        assert_eq!(cfg.rules[0].ttl_seconds, 31_536_000);
        assert_eq!(cfg.rules[1].ttl_seconds, 1);
    }

    #[test]
    fn at_most_256_rules() {
        let ok: Vec<Value> = (0..MAX_RULES).map(|_| json!({})).collect();
        assert_eq!(parse_json(json!({ "rules": ok })).unwrap().rules.len(), 256);
        let too_many: Vec<Value> = (0..=MAX_RULES).map(|_| json!({})).collect();
        assert_eq!(err_of(json!({ "rules": too_many })).path, "rules");
    }

    #[test]
    fn error_display_is_path_then_message() {
        let e = err_of(json!({ "rules": [{}, { "key": { "query_param": "" } }] }));
        assert_eq!(e.to_string(), "rules[1].key.query_param: must not be empty");
    }

    #[test]
    fn null_means_default() {
        let cfg = parse_json(json!({ "companion": null, "rules": [{ "map": null, "key": null }] }))
            .unwrap();
        assert_eq!(cfg.rules[0].map, "hzcache");
    }
}
