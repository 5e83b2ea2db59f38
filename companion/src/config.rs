//! The companion's configuration: command-line flags, each with an environment variable of the
//! same meaning (for containers), validated once at start-up with errors that name the setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::Uri;

use crate::fetch_request::{Mode, ValueType, MAX_KEY_BYTES};
use crate::hazelcast::proto::ReaderLimits;
use crate::hazelcast::ClientConfig;
use crate::purge::PURGE_PAGE_KEYS;
use crate::secret::Secret;

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub hazelcast: ClientConfig,
    /// Origins the companion may fetch from on a miss, by the name the filter rules use. Only
    /// these: the companion never fetches a URL a request names.
    pub origins: BTreeMap<String, Origin>,
    pub origin_timeout: Duration,
    /// Largest response body the companion stores (and relays); a larger one is passed through
    /// by the filter instead, never truncated.
    pub max_entry_bytes: usize,
    /// Most origin body bytes held at once by all fetches together; a fetch that finds the
    /// budget spent answers `pass` (the filter's upstream request answers instead). At least
    /// `max_entry_bytes`, so one entry always fits.
    pub max_inflight_body_bytes: usize,
    /// How long a key whose body was over `max_entry_bytes` is remembered as too large (a
    /// marker in its map), so later requests pass at once instead of fetching twice; zero:
    /// never remembered.
    pub too_large_ttl: Duration,
    /// How long past its freshness a stored response may answer when the origin cannot be
    /// reached (refused, reset, closed before answering; RFC 9111 §4.2.4), unless it forbids
    /// stale; seconds, 0: off.
    pub stale_if_unreachable_secs: u32,
    /// Bearer token of the purge API; `None`: the API is off.
    pub admin_token: Option<Secret>,
    /// The secret every `/v1/*` call must carry (`x-hzcache-auth`); `None`: calls need none,
    /// which is only allowed on a loopback listener.
    pub callout_secret: Option<Secret>,
    /// The maps the companion may read and write, with how each keeps its values. A call
    /// naming another map is refused (403) and touches nothing: the filter's configuration
    /// says which map a rule uses, but the companion owns what it lets anyone touch.
    pub maps: BTreeMap<String, MapPolicy>,
}

/// How one allowed map keeps its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapPolicy {
    pub mode: Mode,
    pub value_type: ValueType,
}

impl Config {
    /// Whether a call may touch `map` in `mode` (and `value_type`, which only `body` maps
    /// use): the map must be allowed, and configured the same way here, so a filter rule that
    /// disagrees with the companion is refused rather than reading values as another type.
    pub fn check_map(&self, map: &str, mode: Mode, value_type: ValueType) -> Result<(), String> {
        let Some(policy) = self.maps.get(map) else {
            return Err(format!(
                "map '{map}' is not one this companion serves (--map)"
            ));
        };
        let same =
            policy.mode == mode && (mode == Mode::Envelope || policy.value_type == value_type);
        if !same {
            return Err(format!(
                "map '{map}' is configured here as {} (--map), not as the call asks",
                policy.describe()
            ));
        }
        Ok(())
    }

    /// Whether `map` is allowed at all (for invalidation and purge, which only delete).
    pub fn map_allowed(&self, map: &str) -> bool {
        self.maps.contains_key(map)
    }
}

impl MapPolicy {
    fn describe(&self) -> &'static str {
        match (self.mode, self.value_type) {
            (Mode::Envelope, _) => "envelope",
            (Mode::Body, ValueType::String) => "body:string",
            (Mode::Body, ValueType::Bytes) => "body:bytes",
        }
    }
}

/// An origin base URL: `http://host:port` with an optional path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub authority: String,
    pub path_prefix: String,
}

/// A configuration mistake, naming the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

fn err(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

/// Hard ceiling on `--max-entry-bytes`: Envoy buffers a whole callout answer in memory, and a
/// cache entry is one Hazelcast value that must fit comfortably in a member's heap.
pub const MAX_ENTRY_BYTES_CEILING: usize = 64 * 1024 * 1024;

/// Default of `--max-entry-bytes`: most web objects worth sharing through a cache are smaller,
/// and a member's heap holds many of them.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// Default of `--max-inflight-body-bytes`: 64 one-MiB misses at once, a few times what a
/// companion sees in a burst of distinct large misses, and a memory bound a container can plan
/// for. Past it, misses pass to the filter's upstream request instead of queueing.
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Ceiling of `--max-inflight-body-bytes`: 16 GiB. Above that the cap no longer bounds
/// anything a companion host has.
pub const MAX_INFLIGHT_BODY_BYTES_CEILING: u64 = 16 * 1024 * 1024 * 1024;

/// Room in one Hazelcast frame for what an envelope holds besides the body: the stored response
/// headers and the Vary-selected request values, each at most what hyper reads for a message
/// head (408 KiB: 8 KiB + 100 × 4 KiB), plus at most 512 × 6 bytes of lengths per list, 40
/// bytes of fixed fields and the Data and frame headers. 2 × 408 KiB + 7 KiB < 1 MiB.
pub const ENTRY_OVERHEAD_BYTES: usize = 1024 * 1024;
/// Room for one `Map.FetchKeys` answer of a purge: up to twice `PURGE_PAGE_KEYS` keys (a page
/// may overshoot the batch by a hash bucket; twice is a wide margin), each a frame of at most
/// 8 KiB of key + 256 of purge tag + a NUL + 40 of variant suffix + 18 bytes of frame, Data
/// and length headers (9 KiB, rounded up), plus 64 KiB for the pointers and initial frame.
const FETCH_KEYS_PAGE_BYTES: usize =
    2 * PURGE_PAGE_KEYS as usize * (MAX_KEY_BYTES + 1024) + 64 * 1024;
/// Room beside the largest frame in one message: the initial frame and small fields of an
/// answer, and member error answers with stack traces (tens of KiB).
const MESSAGE_SLACK_BYTES: usize = 1024 * 1024;

/// The Hazelcast reader's limits for entries of at most `max_entry_bytes`: a frame holds one
/// value (an envelope, a body-mode value, a key), so the largest legitimate one is an entry
/// with its headers; a message holds one such frame or one page of a purge's key walk. With
/// the default 1 MiB entries: 2 MiB frames, about 18 MiB messages (the client's own defaults, 64 and
/// 256 MiB, are for callers that do not know their value sizes). A value larger than this,
/// written by an application into a shared map, closes the connection that reads it: the
/// companion could not have served it anyway.
pub fn reader_limits(max_entry_bytes: usize) -> ReaderLimits {
    let max_frame_len = max_entry_bytes.saturating_add(ENTRY_OVERHEAD_BYTES);
    ReaderLimits {
        max_frame_len,
        max_message_len: max_frame_len
            .saturating_add(MESSAGE_SLACK_BYTES)
            .max(FETCH_KEYS_PAGE_BYTES),
        ..ReaderLimits::default()
    }
}

/// Default of `--too-large-ttl-secs`: five minutes of one origin fetch per request instead of
/// two, while a response that shrinks back under the limit is cached again soon enough.
pub const DEFAULT_TOO_LARGE_TTL_SECS: u64 = 300;
/// Ceiling of `--too-large-ttl-secs`: a day. The marker only ever costs caching, never
/// correctness, but a longer memory of "too large" is more likely a mistake than a plan.
pub const MAX_TOO_LARGE_TTL_SECS: u64 = 86_400;
/// Default of `--stale-if-unreachable-secs`: a minute of stale answers covers an origin
/// restart or a brief network cut, and is short enough that nobody mistakes it for content.
pub const DEFAULT_STALE_IF_UNREACHABLE_SECS: u64 = 60;
/// Ceiling of `--stale-if-unreachable-secs`: a day (Traffic Server's `max_stale_age` default
/// is a week; a shared cache in front of live applications should be shorter).
pub const MAX_STALE_IF_UNREACHABLE_SECS: u64 = 86_400;

pub const USAGE: &str = "\
hzcache-companion: the Hazelcast side of the hzcache Envoy filter

Options (each also read from the environment variable shown):
  --listen ADDR                 HZCACHE_LISTEN              default 127.0.0.1:8090
  --hazelcast HOST:PORT[,...]   HZCACHE_HAZELCAST           default 127.0.0.1:5701
  --cluster-name NAME           HZCACHE_CLUSTER_NAME        default dev
  --origin NAME=URL             HZCACHE_ORIGINS (NAME=URL,...; flag may repeat)
                                                            default none (misses fail open)
  --origin-timeout-ms N         HZCACHE_ORIGIN_TIMEOUT_MS   default 10000
  --max-entry-bytes N           HZCACHE_MAX_ENTRY_BYTES     default 1048576
  --max-inflight-body-bytes N   HZCACHE_MAX_INFLIGHT_BODY_BYTES default 67108864
                                (origin bodies held at once; past it misses pass;
                                at least --max-entry-bytes)
  --too-large-ttl-secs N        HZCACHE_TOO_LARGE_TTL_SECS  default 300 (0: off)
  --stale-if-unreachable-secs N HZCACHE_STALE_IF_UNREACHABLE_SECS default 60 (0: off)
                                (stale answers while the origin cannot be reached)
  --hazelcast-timeout-ms N      HZCACHE_HAZELCAST_TIMEOUT_MS default 3000
  --map NAME=MODE[:TYPE]        HZCACHE_MAPS (NAME=MODE[:TYPE],...; flag may repeat)
                                maps the companion serves; MODE envelope or body,
                                TYPE string (default) or bytes for body maps
                                                            default hzcache=envelope
  --callout-secret-file PATH    HZCACHE_CALLOUT_SECRET_FILE
                                or the value itself in HZCACHE_CALLOUT_SECRET
                                the secret every /v1/* call must carry; required
                                unless --listen is a loopback address
  --admin-token-file PATH       HZCACHE_ADMIN_TOKEN_FILE
                                or the value itself in HZCACHE_ADMIN_TOKEN
                                default none (purge API off)
                                (secrets: 16 to 256 visible ASCII characters; never
                                given on the command line, which every user can see)
  --check-config                validate, print the effective settings and exit
  --help
Logging: RUST_LOG (default info).
";

impl Config {
    /// Parses flags (`args` without the program name) over environment values (`env`).
    pub fn parse<I, S>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        const FLAGS: [(&str, &str); 13] = [
            ("--listen", "HZCACHE_LISTEN"),
            ("--hazelcast", "HZCACHE_HAZELCAST"),
            ("--cluster-name", "HZCACHE_CLUSTER_NAME"),
            ("--origin", "HZCACHE_ORIGINS"),
            ("--origin-timeout-ms", "HZCACHE_ORIGIN_TIMEOUT_MS"),
            ("--max-entry-bytes", "HZCACHE_MAX_ENTRY_BYTES"),
            (
                "--max-inflight-body-bytes",
                "HZCACHE_MAX_INFLIGHT_BODY_BYTES",
            ),
            ("--too-large-ttl-secs", "HZCACHE_TOO_LARGE_TTL_SECS"),
            (
                "--stale-if-unreachable-secs",
                "HZCACHE_STALE_IF_UNREACHABLE_SECS",
            ),
            ("--hazelcast-timeout-ms", "HZCACHE_HAZELCAST_TIMEOUT_MS"),
            ("--map", "HZCACHE_MAPS"),
            ("--callout-secret-file", "HZCACHE_CALLOUT_SECRET_FILE"),
            ("--admin-token-file", "HZCACHE_ADMIN_TOKEN_FILE"),
        ];
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if flag == "--admin-token" || flag == "--callout-secret" {
                // The old flag: a secret in argv is visible to every user through `ps`.
                return Err(err(
                    &flag,
                    "secrets are never taken from the command line: set the environment variable or use the -file option (see --help)",
                ));
            }
            let Some((name, _)) = FLAGS.iter().find(|(f, _)| *f == flag) else {
                return Err(err(&arg, "unknown option (see --help)"));
            };
            let value = match inline {
                Some(v) => v,
                None => args.next().ok_or_else(|| err(name, "needs a value"))?,
            };
            values.entry(name).or_default().push(value);
        }
        for (flag, var) in FLAGS {
            if !values.contains_key(flag) {
                if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
                    let parts = if flag == "--origin" || flag == "--map" {
                        v.split(',').map(|s| s.trim().to_string()).collect()
                    } else {
                        vec![v]
                    };
                    values.insert(flag, parts);
                }
            }
        }
        let one = |flag: &str| values.get(flag).and_then(|v| v.last()).cloned();

        let listen = match one("--listen") {
            Some(v) => v
                .parse()
                .map_err(|_| err("--listen", format!("'{v}' is not an IP:port address")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8090)),
        };

        let mut hazelcast = ClientConfig::default();
        if let Some(v) = one("--hazelcast") {
            let addresses: Vec<String> = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if addresses.is_empty() {
                return Err(err("--hazelcast", "needs at least one HOST:PORT"));
            }
            for a in &addresses {
                let ok = a
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    return Err(err("--hazelcast", format!("'{a}' is not HOST:PORT")));
                }
            }
            hazelcast.addresses = addresses;
        }
        if let Some(v) = one("--cluster-name") {
            if v.is_empty() || v.len() > 255 {
                return Err(err("--cluster-name", "must be 1 to 255 bytes"));
            }
            hazelcast.cluster_name = v;
        }
        if let Some(v) = one("--hazelcast-timeout-ms") {
            hazelcast.invocation_timeout =
                Duration::from_millis(number("--hazelcast-timeout-ms", &v, 1, 600_000)?);
        }

        let mut origins = BTreeMap::new();
        for spec in values.get("--origin").into_iter().flatten() {
            let (name, url) = spec
                .split_once('=')
                .ok_or_else(|| err("--origin", format!("'{spec}' is not NAME=URL")))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    "--origin",
                    format!("'{name}' is not a name of letters, digits, - and _"),
                ));
            }
            let origin =
                parse_origin(url.trim()).map_err(|p| err("--origin", format!("{name}: {p}")))?;
            if origins.insert(name.to_string(), origin).is_some() {
                return Err(err("--origin", format!("'{name}' is given twice")));
            }
        }

        let origin_timeout = match one("--origin-timeout-ms") {
            Some(v) => Duration::from_millis(number("--origin-timeout-ms", &v, 1, 600_000)?),
            None => Duration::from_secs(10),
        };
        let max_entry_bytes = match one("--max-entry-bytes") {
            Some(v) => number("--max-entry-bytes", &v, 0, MAX_ENTRY_BYTES_CEILING as u64)? as usize,
            None => DEFAULT_MAX_ENTRY_BYTES,
        };
        hazelcast.reader_limits = reader_limits(max_entry_bytes);
        let max_inflight_body_bytes = match one("--max-inflight-body-bytes") {
            Some(v) => number(
                "--max-inflight-body-bytes",
                &v,
                1,
                MAX_INFLIGHT_BODY_BYTES_CEILING,
            )? as usize,
            None => DEFAULT_MAX_INFLIGHT_BODY_BYTES,
        };
        if max_inflight_body_bytes < max_entry_bytes {
            return Err(err(
                "--max-inflight-body-bytes",
                format!(
                    "{max_inflight_body_bytes} is below --max-entry-bytes ({max_entry_bytes}): one entry must fit"
                ),
            ));
        }
        let too_large_ttl = match one("--too-large-ttl-secs") {
            Some(v) => Duration::from_secs(number(
                "--too-large-ttl-secs",
                &v,
                0,
                MAX_TOO_LARGE_TTL_SECS,
            )?),
            None => Duration::from_secs(DEFAULT_TOO_LARGE_TTL_SECS),
        };
        let stale_if_unreachable_secs = match one("--stale-if-unreachable-secs") {
            Some(v) => number(
                "--stale-if-unreachable-secs",
                &v,
                0,
                MAX_STALE_IF_UNREACHABLE_SECS,
            )?,
            None => DEFAULT_STALE_IF_UNREACHABLE_SECS,
        } as u32;
        let admin_token = secret(
            "--admin-token-file",
            one("--admin-token-file"),
            "HZCACHE_ADMIN_TOKEN",
            &env,
        )?;
        let callout_secret = secret(
            "--callout-secret-file",
            one("--callout-secret-file"),
            "HZCACHE_CALLOUT_SECRET",
            &env,
        )?;
        if callout_secret.is_none() && !listen.ip().is_loopback() {
            return Err(err(
                "--listen",
                format!(
                    "{listen} is reachable from other hosts: set a callout secret (HZCACHE_CALLOUT_SECRET or --callout-secret-file) so that only the filter can call /v1/*"
                ),
            ));
        }
        let mut maps = BTreeMap::new();
        for spec in values.get("--map").into_iter().flatten() {
            let (name, policy) = parse_map(spec).map_err(|p| err("--map", p))?;
            if maps.insert(name.clone(), policy).is_some() {
                return Err(err("--map", format!("'{name}' is given twice")));
            }
        }
        if maps.is_empty() {
            maps.insert(
                "hzcache".to_string(),
                MapPolicy {
                    mode: Mode::Envelope,
                    value_type: ValueType::String,
                },
            );
        }
        Ok(Config {
            listen,
            hazelcast,
            origins,
            origin_timeout,
            max_entry_bytes,
            max_inflight_body_bytes,
            too_large_ttl,
            stale_if_unreachable_secs,
            admin_token,
            callout_secret,
            maps,
        })
    }
}

impl Config {
    /// The effective settings, one per line, for `--check-config`.
    pub fn summary(&self) -> String {
        let origins: Vec<String> = self
            .origins
            .iter()
            .map(|(n, o)| format!("{n}=http://{}{}", o.authority, o.path_prefix))
            .collect();
        format!(
            "listen={}\nhazelcast={}\ncluster-name={}\norigins={}\norigin-timeout-ms={}\nmax-entry-bytes={}\nmax-inflight-body-bytes={}\ntoo-large-ttl-secs={}\nstale-if-unreachable-secs={}\nhazelcast-timeout-ms={}\nhazelcast-max-frame-bytes={}\nhazelcast-max-message-bytes={}\nmaps={}\ncallout-secret={}\nadmin-api={}",
            self.listen,
            self.hazelcast.addresses.join(","),
            self.hazelcast.cluster_name,
            origins.join(","),
            self.origin_timeout.as_millis(),
            self.max_entry_bytes,
            self.max_inflight_body_bytes,
            self.too_large_ttl.as_secs(),
            self.stale_if_unreachable_secs,
            self.hazelcast.invocation_timeout.as_millis(),
            self.hazelcast.reader_limits.max_frame_len,
            self.hazelcast.reader_limits.max_message_len,
            self.maps
                .iter()
                .map(|(n, p)| format!("{n}={}", p.describe()))
                .collect::<Vec<_>>()
                .join(","),
            if self.callout_secret.is_some() { "set" } else { "none (loopback only)" },
            if self.admin_token.is_some() { "on" } else { "off" },
        )
    }
}

/// A secret from its file (`file`, named by `setting`) or from the variable `var` holding the
/// value itself; both at once is ambiguous, neither is `None`.
fn secret(
    setting: &str,
    file: Option<String>,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    let value = env(var).filter(|v| !v.is_empty());
    match (file, value) {
        (Some(_), Some(_)) => Err(err(
            setting,
            format!("give the secret either in a file or in {var}, not both"),
        )),
        (Some(path), None) => Secret::from_file(std::path::Path::new(&path))
            .map(Some)
            .map_err(|p| err(setting, p)),
        (None, Some(v)) => Secret::new(&v).map(Some).map_err(|p| err(var, p)),
        (None, None) => Ok(None),
    }
}

/// `NAME=MODE[:TYPE]`: a Hazelcast map name (1 to 255 printable ASCII bytes, no spaces or
/// commas), `envelope` or `body`, and for `body` maps `string` (default) or `bytes`.
fn parse_map(spec: &str) -> Result<(String, MapPolicy), String> {
    let (name, how) = spec
        .trim()
        .split_once('=')
        .ok_or_else(|| format!("'{spec}' is not NAME=MODE[:TYPE]"))?;
    let name = name.trim();
    if name.is_empty()
        || name.len() > 255
        || !name.bytes().all(|b| b.is_ascii_graphic() && b != b',')
    {
        return Err(format!(
            "'{name}' is not a map name (1 to 255 visible ASCII bytes)"
        ));
    }
    let (mode, value_type) = match how.trim() {
        "envelope" => (Mode::Envelope, ValueType::String),
        "body" | "body:string" => (Mode::Body, ValueType::String),
        "body:bytes" => (Mode::Body, ValueType::Bytes),
        other => {
            return Err(format!(
                "{name}: '{other}' is not envelope, body, body:string or body:bytes"
            ))
        }
    };
    Ok((name.to_string(), MapPolicy { mode, value_type }))
}

fn number(setting: &str, v: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(err(
            setting,
            format!("'{v}' is not a whole number from {min} to {max}"),
        )),
    }
}

fn parse_origin(url: &str) -> Result<Origin, String> {
    let uri: Uri = url.parse().map_err(|_| format!("'{url}' is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("scheme '{other}' is not supported (use http)")),
        None => return Err(format!("'{url}' has no scheme (use http://HOST:PORT)")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("'{url}' has no host"))?
        .to_string();
    if uri.query().is_some() {
        return Err(format!("'{url}' must not have a query"));
    }
    let path_prefix = uri.path().trim_end_matches('/').to_string();
    Ok(Origin {
        authority,
        path_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_are_never_shown() {
        let c = Config::parse(["--listen", "0.0.0.0:8090"], |k| match k {
            "HZCACHE_CALLOUT_SECRET" => Some("callout-secret-0123456789".into()),
            "HZCACHE_ADMIN_TOKEN" => Some("admin-token-0123456789".into()),
            _ => None,
        })
        .unwrap();
        assert!(c
            .callout_secret
            .as_ref()
            .unwrap()
            .matches(b"callout-secret-0123456789"));
        assert!(c
            .admin_token
            .as_ref()
            .unwrap()
            .matches(b"admin-token-0123456789"));
        let shown = format!("{c:?}\n{}", c.summary());
        assert!(!shown.contains("callout-secret-0"), "{shown}");
        assert!(!shown.contains("admin-token-0"), "{shown}");

        let dir = std::env::temp_dir().join(format!("hzcache-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
        let path = file.display().to_string();
        let c = parse(&["--admin-token-file", &path]).unwrap();
        assert!(c.admin_token.unwrap().matches(b"from-a-file-0123456789"));
        let both = Config::parse(["--admin-token-file", path.as_str()], |k| {
            (k == "HZCACHE_ADMIN_TOKEN").then(|| "x".repeat(20))
        });
        assert_eq!(both.unwrap_err().setting, "--admin-token-file");
        let short = Config::parse(Vec::<String>::new(), |k| {
            (k == "HZCACHE_CALLOUT_SECRET").then(|| "short".into())
        });
        assert_eq!(short.unwrap_err().setting, "HZCACHE_CALLOUT_SECRET");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_allowed_maps_are_served_as_configured() {
        let c = parse(&[]).unwrap();
        assert!(c
            .check_map("hzcache", Mode::Envelope, ValueType::String)
            .is_ok());
        assert!(c.check_map("cache", Mode::Body, ValueType::String).is_err());
        let c = Config::parse(["--map", "hzcache=envelope"], |k| {
            (k == "HZCACHE_MAPS").then(|| "ignored=envelope".into())
        })
        .unwrap();
        assert!(!c.map_allowed("ignored"), "flags win over the environment");
        let c = Config::parse(Vec::<String>::new(), |k| {
            (k == "HZCACHE_MAPS")
                .then(|| "hzcache=envelope, cache=body:string,raw=body:bytes".into())
        })
        .unwrap();
        assert!(c.check_map("cache", Mode::Body, ValueType::String).is_ok());
        assert!(c.check_map("cache", Mode::Body, ValueType::Bytes).is_err());
        assert!(c
            .check_map("cache", Mode::Envelope, ValueType::String)
            .is_err());
        assert!(c.check_map("raw", Mode::Body, ValueType::Bytes).is_ok());
        assert!(c
            .check_map("hzcache", Mode::Envelope, ValueType::Bytes)
            .is_ok());
        assert!(c
            .check_map("hzcache-inflight", Mode::Envelope, ValueType::String)
            .is_err());
        assert!(c
            .summary()
            .contains("maps=cache=body:string,hzcache=envelope,raw=body:bytes"));
    }

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        Config::parse(args.iter().copied(), |_| None)
    }

    #[test]
    fn defaults_listen_on_loopback_and_use_the_dev_cluster() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8090");
        assert_eq!(c.hazelcast.cluster_name, "dev");
        assert_eq!(c.hazelcast.addresses, vec!["127.0.0.1:5701"]);
        assert!(c.origins.is_empty());
        assert_eq!(c.max_entry_bytes, 1024 * 1024);
        assert_eq!(c.too_large_ttl, Duration::from_secs(300));
        assert_eq!(c.max_inflight_body_bytes, 64 * 1024 * 1024);
        let off = parse(&["--too-large-ttl-secs", "0"]).unwrap();
        assert_eq!(off.too_large_ttl, Duration::ZERO);
        assert_eq!(c.stale_if_unreachable_secs, 60);
        let off = parse(&["--stale-if-unreachable-secs", "0"]).unwrap();
        assert_eq!(off.stale_if_unreachable_secs, 0);
    }

    #[test]
    fn flags_take_values_separately_or_after_an_equals_sign() {
        let c = parse(&[
            "--listen=127.0.0.1:9000",
            "--hazelcast",
            "127.0.0.1:5701,127.0.0.1:5702",
            "--origin",
            "default=http://127.0.0.1:8081",
            "--origin=api=http://127.0.0.1:8082/v2/",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.hazelcast.addresses.len(), 2);
        assert_eq!(c.origins["default"].authority, "127.0.0.1:8081");
        assert_eq!(c.origins["api"].path_prefix, "/v2");
    }

    #[test]
    fn environment_fills_what_flags_leave_out() {
        let c = Config::parse(["--cluster-name", "flag"], |k| match k {
            "HZCACHE_CLUSTER_NAME" => Some("env".into()),
            "HZCACHE_ORIGINS" => Some("a=http://127.0.0.1:1, b=http://127.0.0.1:2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.hazelcast.cluster_name, "flag");
        assert_eq!(c.origins.len(), 2);
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--listen", "nowhere"], "--listen"),
            (&["--hazelcast", "127.0.0.1"], "--hazelcast"),
            (&["--hazelcast", "127.0.0.1:0"], "--hazelcast"),
            (&["--origin", "x"], "--origin"),
            (&["--origin", "x=https://a:1"], "--origin"),
            (&["--origin", "x=127.0.0.1:80"], "--origin"),
            (&["--origin", "bad name=http://a:1"], "--origin"),
            (
                &["--origin", "a=http://a:1", "--origin", "a=http://b:1"],
                "--origin",
            ),
            (&["--max-entry-bytes", "-1"], "--max-entry-bytes"),
            (&["--max-entry-bytes", "999999999999"], "--max-entry-bytes"),
            (
                &["--max-inflight-body-bytes", "0"],
                "--max-inflight-body-bytes",
            ),
            (
                &[
                    "--max-entry-bytes",
                    "2000",
                    "--max-inflight-body-bytes",
                    "1999",
                ],
                "--max-inflight-body-bytes",
            ),
            (&["--origin-timeout-ms", "0"], "--origin-timeout-ms"),
            (&["--too-large-ttl-secs", "86401"], "--too-large-ttl-secs"),
            (&["--too-large-ttl-secs", "x"], "--too-large-ttl-secs"),
            (
                &["--stale-if-unreachable-secs", "86401"],
                "--stale-if-unreachable-secs",
            ),
            (&["--cluster-name", ""], "--cluster-name"),
            (&["--listen"], "--listen"),
            (&["--bogus", "1"], "--bogus"),
            (&["--admin-token", "0123456789abcdef"], "--admin-token"),
            (&["--admin-token=0123456789abcdef"], "--admin-token"),
            (
                &["--admin-token-file", "/nonexistent/token"],
                "--admin-token-file",
            ),
            (&["--listen", "0.0.0.0:8090"], "--listen"),
            (&["--map", "x"], "--map"),
            (&["--map", "x=json"], "--map"),
            (&["--map", "a b=envelope"], "--map"),
            (&["--map", "a=envelope", "--map", "a=body"], "--map"),
        ];
        for (args, setting) in cases {
            let e = parse(args).expect_err(&format!("{args:?} should fail"));
            assert_eq!(&e.setting, setting, "{args:?}: {e}");
        }
    }

    #[test]
    fn the_in_flight_cap_may_equal_the_entry_limit_and_comes_from_the_environment_too() {
        let c = parse(&[
            "--max-entry-bytes",
            "2000",
            "--max-inflight-body-bytes=2000",
        ])
        .unwrap();
        assert_eq!(c.max_inflight_body_bytes, 2000);
        let e = Config::parse(Vec::<String>::new(), |k| {
            (k == "HZCACHE_MAX_INFLIGHT_BODY_BYTES").then(|| "5000000".to_string())
        })
        .unwrap();
        assert_eq!(e.max_inflight_body_bytes, 5_000_000);
        assert!(e.summary().contains("max-inflight-body-bytes=5000000"));
    }

    #[test]
    fn the_hazelcast_reader_limits_follow_the_entry_limit() {
        let c = parse(&[]).unwrap();
        let l = c.hazelcast.reader_limits;
        assert_eq!(l.max_frame_len, 2 * 1024 * 1024);
        assert!(l.max_message_len >= FETCH_KEYS_PAGE_BYTES);
        assert!(
            l.max_message_len < 32 * 1024 * 1024,
            "{}",
            l.max_message_len
        );
        let big = parse(&["--max-entry-bytes", "67108864"]).unwrap();
        let l = big.hazelcast.reader_limits;
        assert_eq!(l.max_frame_len, 65 * 1024 * 1024);
        assert_eq!(l.max_message_len, 66 * 1024 * 1024);
        assert!(c.summary().contains("hazelcast-max-frame-bytes=2097152"));
    }

    #[test]
    fn an_answer_holding_the_largest_entry_fits_the_reader_and_one_over_does_not() {
        use crate::entry::{Entry, MAX_HEADERS};
        use crate::hazelcast::codec::map_get;
        use crate::hazelcast::proto::MessageReader;
        use crate::hazelcast::serialization::Data;
        let max = 64 * 1024;
        // The biggest head hyper passes on: ~408 KiB of headers, stored whole, and as many
        // Vary-selected request values.
        let value = bytes::Bytes::from(vec![b'v'; 400 * 1024 / MAX_HEADERS]);
        let pairs: Vec<(String, bytes::Bytes)> = (0..MAX_HEADERS)
            .map(|i| (format!("x-h{i:03}"), value.clone()))
            .collect();
        let entry = Entry {
            status: 200,
            freshness: Default::default(),
            vary: pairs.clone(),
            tags: vec!["t".repeat(crate::entry::MAX_TAG_BYTES); crate::entry::MAX_TAGS],
            headers: pairs,
            body: bytes::Bytes::from(vec![0u8; max]),
        };
        let encoded = entry.encode().unwrap();
        let read = |data: &Data| {
            let mut wire = bytes::BytesMut::new();
            map_get::encode_response(Some(data)).write_to(&mut wire);
            MessageReader::new(reader_limits(max)).read(&mut wire)
        };
        assert!(read(&Data::from_bytes(&encoded)).unwrap().is_some());
        let over = vec![0u8; max + ENTRY_OVERHEAD_BYTES];
        assert!(read(&Data::from_bytes(&over)).is_err());
    }
}
