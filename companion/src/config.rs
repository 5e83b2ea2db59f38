//! The companion's configuration: command-line flags, each with an environment variable of the
//! same meaning (for containers), validated once at start-up with errors that name the setting.
//! clap reads the flags and variables and writes `--help` ([`Cli`]); the checks here turn the
//! text into a [`Config`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::Uri;

use crate::fetch_request::{Mode, ValueType, MAX_KEY_BYTES};
use crate::purge::PURGE_PAGE_KEYS;
use crate::secret::Secret;
use hazelcast_client::ClientConfig;
use hazelcast_client::ReaderLimits;

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
    /// Longest a request's Hazelcast lookup may take before the request goes upstream without
    /// the cache (`pass`); `None`: only the Hazelcast timeout and the filter's deadline bound
    /// it. A member that stops answering (a long GC pause, a frozen VM) holds the reads of its
    /// partitions until the Hazelcast timeout; a cache that is slower than its origin helps
    /// nobody, so past this the request is answered as if there were no cache.
    pub lookup_timeout: Option<Duration>,
    /// Bearer token of the purge API; `None`: the API is off.
    pub admin_token: Option<Secret>,
    /// The secret every `/v1/*` call must carry (`x-hzcache-auth`); `None`: calls need none,
    /// which is only allowed on a loopback listener.
    pub callout_secret: Option<Secret>,
    /// The maps the companion may read and write, with how each keeps its values. A call
    /// naming another map is refused (403) and touches nothing: the filter's configuration
    /// says which map a rule uses, but the companion owns what it lets anyone touch.
    pub maps: BTreeMap<String, MapPolicy>,
    pub log_format: LogFormat,
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

/// A configuration mistake, naming the setting, or what clap refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that is not valid for its setting (flag or variable).
    #[error("{setting}: {problem}")]
    Invalid { setting: String, problem: String },
    /// An unknown option or a missing value, or the `--help`/`--version` text to print
    /// (`clap::Error::exit` prints it with the right exit code).
    #[error("{0}")]
    Usage(#[from] clap::Error),
}

impl ConfigError {
    /// The flag or variable at fault, when there is one.
    pub fn setting(&self) -> Option<String> {
        match self {
            ConfigError::Invalid { setting, .. } => Some(setting.clone()),
            ConfigError::Usage(e) => match e.get(clap::error::ContextKind::InvalidArg) {
                // clap names a flag with its value, `--listen <ADDR>`.
                Some(clap::error::ContextValue::String(arg)) => {
                    arg.split([' ', '=']).next().map(str::to_string)
                }
                _ => None,
            },
        }
    }
}

fn err(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
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

/// The command line, as clap reads it: every flag with the environment variable that stands
/// for it in containers (a flag wins over its variable; a blank variable counts as unset).
/// Values stay text here: [`Invocation::parse`] validates them with errors that name the
/// setting. No `Debug`: it holds the secrets' values.
#[derive(clap::Parser)]
#[command(
    name = "hzcache-companion",
    version,
    about = "hzcache-companion: the Hazelcast side of the hzcache Envoy filter",
    // `--listen a --listen b` means b, as before: the last of a repeated flag wins.
    args_override_self = true,
    // `--max-entry-bytes -1` is a bad value of that flag, not an unknown option `-1`.
    allow_negative_numbers = true,
    after_help = "\
Secrets (16 to 256 visible ASCII characters) come from the environment (HZCACHE_CALLOUT_SECRET, \
HZCACHE_ADMIN_TOKEN) or from a file (--callout-secret-file, --admin-token-file), never from the \
command line, which every user of the machine can see.

Logging: RUST_LOG sets the level and filters (default info); --log-format picks text or JSON \
lines."
)]
pub struct Cli {
    /// Address to listen on; beyond loopback a callout secret is required
    #[arg(
        long,
        env = "HZCACHE_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8090"
    )]
    listen: String,

    /// Hazelcast members to connect to
    #[arg(
        long,
        env = "HZCACHE_HAZELCAST",
        value_name = "HOST:PORT[,...]",
        default_value = "127.0.0.1:5701"
    )]
    hazelcast: String,

    /// Hazelcast cluster name
    #[arg(
        long,
        env = "HZCACHE_CLUSTER_NAME",
        value_name = "NAME",
        default_value = "dev"
    )]
    cluster_name: String,

    /// An origin misses are fetched from, by the name filter rules use; the flag may repeat,
    /// HZCACHE_ORIGINS takes NAME=URL,... [default: none, misses fail open]
    #[arg(long = "origin", env = "HZCACHE_ORIGINS", value_name = "NAME=URL")]
    origins: Vec<String>,

    /// Deadline of one origin fetch, in milliseconds
    #[arg(
        long,
        env = "HZCACHE_ORIGIN_TIMEOUT_MS",
        value_name = "N",
        default_value = "10000"
    )]
    origin_timeout_ms: String,

    /// Largest response body stored; a larger one passes to Envoy's upstream
    #[arg(
        long,
        env = "HZCACHE_MAX_ENTRY_BYTES",
        value_name = "N",
        default_value = "1048576"
    )]
    max_entry_bytes: String,

    /// Origin body bytes held at once by all fetches; past it misses pass (at least
    /// --max-entry-bytes)
    #[arg(
        long,
        env = "HZCACHE_MAX_INFLIGHT_BODY_BYTES",
        value_name = "N",
        default_value = "67108864"
    )]
    max_inflight_body_bytes: String,

    /// How long a too-large response is remembered, so later requests pass at once (0: off)
    #[arg(
        long,
        env = "HZCACHE_TOO_LARGE_TTL_SECS",
        value_name = "N",
        default_value = "300"
    )]
    too_large_ttl_secs: String,

    /// How long past its freshness a stored response answers while the origin cannot be
    /// reached (0: off)
    #[arg(
        long,
        env = "HZCACHE_STALE_IF_UNREACHABLE_SECS",
        value_name = "N",
        default_value = "60"
    )]
    stale_if_unreachable_secs: String,

    /// Longest a request's cache lookup in Hazelcast may take before the request goes upstream
    /// without the cache, in milliseconds (0: bounded only by --hazelcast-timeout-ms and the
    /// filter's deadline)
    #[arg(
        long,
        env = "HZCACHE_LOOKUP_TIMEOUT_MS",
        value_name = "N",
        default_value = "1000"
    )]
    lookup_timeout_ms: String,

    /// Deadline of one Hazelcast call, in milliseconds
    #[arg(
        long,
        env = "HZCACHE_HAZELCAST_TIMEOUT_MS",
        value_name = "N",
        default_value = "3000"
    )]
    hazelcast_timeout_ms: String,

    /// A map the companion serves: MODE envelope or body, TYPE string (default) or bytes for
    /// body maps; the flag may repeat, HZCACHE_MAPS takes NAME=MODE[:TYPE],...
    /// [default: hzcache=envelope]
    #[arg(long = "map", env = "HZCACHE_MAPS", value_name = "NAME=MODE[:TYPE]")]
    maps: Vec<String>,

    /// File holding the secret every /v1/* call must carry (or the value itself in
    /// HZCACHE_CALLOUT_SECRET); required unless --listen is a loopback address
    #[arg(long, env = "HZCACHE_CALLOUT_SECRET_FILE", value_name = "PATH")]
    callout_secret_file: Option<String>,

    /// File holding the bearer token of the purge API (or the value itself in
    /// HZCACHE_ADMIN_TOKEN) [default: none, the purge API is off]
    #[arg(long, env = "HZCACHE_ADMIN_TOKEN_FILE", value_name = "PATH")]
    admin_token_file: Option<String>,

    /// The callout secret's value: read from HZCACHE_CALLOUT_SECRET only. On the command line
    /// (`ps` shows it to every user) it is refused; the flag exists to say so.
    #[arg(
        long,
        env = "HZCACHE_CALLOUT_SECRET",
        hide = true,
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = ""
    )]
    callout_secret: Option<String>,

    /// The admin token's value: read from HZCACHE_ADMIN_TOKEN only, like `callout_secret`.
    #[arg(
        long,
        env = "HZCACHE_ADMIN_TOKEN",
        hide = true,
        hide_env_values = true,
        num_args = 0..=1,
        default_missing_value = ""
    )]
    admin_token: Option<String>,

    /// Log line format: text for people, json (one object per line) for log collectors
    #[arg(
        long,
        env = "HZCACHE_LOG_FORMAT",
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,

    /// Validate, print the effective settings (secrets only as set or not) and exit
    #[arg(long)]
    check_config: bool,
}

/// How log lines are written (`--log-format`). Either way a line carries a key only as a
/// digest above debug level and never a secret (see `main.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// tracing's human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, the event's fields (`message` among
    /// them) and the current `span` with its fields.
    Json,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The variables of secret values: a blank one is kept (and refused as a secret), where a
/// blank variable of any other setting counts as unset.
const SECRET_VARS: [&str; 2] = ["HZCACHE_CALLOUT_SECRET", "HZCACHE_ADMIN_TOKEN"];

/// The command line's meaning: the validated settings, and whether only to check them.
pub struct Invocation {
    pub config: Config,
    /// `--check-config`: print [`Config::summary`] and exit.
    pub check_only: bool,
}

/// The clap command, reading the process environment. A variable set to blank (a compose
/// file's `VAR:` or `VAR=`) is as good as unset, as it always was: clap would take it as an
/// empty value.
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|arg| {
        let blank = arg.get_env().and_then(std::env::var_os).is_some_and(|v| {
            let secret = arg
                .get_env()
                .is_some_and(|n| SECRET_VARS.iter().any(|s| n == *s));
            if secret {
                v.is_empty()
            } else {
                v.to_string_lossy().trim().is_empty()
            }
        });
        if blank {
            arg.env(None)
        } else {
            arg
        }
    })
}

impl Invocation {
    /// Parses the command line (`args` without the program name) and the environment.
    pub fn parse<I, T>(args: I) -> Result<Invocation, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Invocation::parse_with(command(), args)
    }

    fn parse_with<I, T>(command: clap::Command, args: I) -> Result<Invocation, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::FromArgMatches;
        let argv = std::iter::once(std::ffi::OsString::from("hzcache-companion"))
            .chain(args.into_iter().map(Into::into));
        let matches = command.try_get_matches_from(argv)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let from_env =
            |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::EnvVariable);
        for (id, flag) in [
            ("callout_secret", "--callout-secret"),
            ("admin_token", "--admin-token"),
        ] {
            if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                // The old flag: a secret in argv is visible to every user through `ps`.
                return Err(err(
                    flag,
                    "secrets are never taken from the command line: set the environment variable or use the -file option (see --help)",
                ));
            }
        }
        // A variable holds a list, comma-separated; a flag holds one item and may repeat.
        let list = |values: Vec<String>, id: &str| -> Vec<String> {
            if from_env(id) {
                values
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(|s| s.trim().to_string())
                    .collect()
            } else {
                values
            }
        };
        let origins = list(cli.origins.clone(), "origins");
        let maps = list(cli.maps.clone(), "maps");
        let config = Config::from_cli(cli, origins, maps)?;
        Ok(Invocation {
            config,
            check_only: matches.get_flag("check_config"),
        })
    }
}

impl Config {
    /// Parses flags (`args` without the program name) and their environment variables.
    pub fn parse<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Invocation::parse(args).map(|i| i.config)
    }

    fn from_cli(
        cli: Cli,
        origin_specs: Vec<String>,
        map_specs: Vec<String>,
    ) -> Result<Config, ConfigError> {
        let listen: SocketAddr = cli.listen.parse().map_err(|_| {
            err(
                "--listen",
                format!("'{}' is not an IP:port address", cli.listen),
            )
        })?;

        let mut hazelcast = ClientConfig {
            // What members' logs and Management Center show for this client.
            client_name: "hzcache-companion".into(),
            ..ClientConfig::default()
        };
        let addresses: Vec<String> = cli
            .hazelcast
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
        if cli.cluster_name.is_empty() || cli.cluster_name.len() > 255 {
            return Err(err("--cluster-name", "must be 1 to 255 bytes"));
        }
        hazelcast.cluster_name = cli.cluster_name;
        hazelcast.invocation_timeout = Duration::from_millis(number(
            "--hazelcast-timeout-ms",
            &cli.hazelcast_timeout_ms,
            1,
            600_000,
        )?);

        let mut origins = BTreeMap::new();
        for spec in &origin_specs {
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

        let origin_timeout = Duration::from_millis(number(
            "--origin-timeout-ms",
            &cli.origin_timeout_ms,
            1,
            600_000,
        )?);
        let max_entry_bytes = number(
            "--max-entry-bytes",
            &cli.max_entry_bytes,
            0,
            MAX_ENTRY_BYTES_CEILING as u64,
        )? as usize;
        hazelcast.reader_limits = reader_limits(max_entry_bytes);
        let max_inflight_body_bytes = number(
            "--max-inflight-body-bytes",
            &cli.max_inflight_body_bytes,
            1,
            MAX_INFLIGHT_BODY_BYTES_CEILING,
        )? as usize;
        if max_inflight_body_bytes < max_entry_bytes {
            return Err(err(
                "--max-inflight-body-bytes",
                format!(
                    "{max_inflight_body_bytes} is below --max-entry-bytes ({max_entry_bytes}): one entry must fit"
                ),
            ));
        }
        let too_large_ttl = Duration::from_secs(number(
            "--too-large-ttl-secs",
            &cli.too_large_ttl_secs,
            0,
            MAX_TOO_LARGE_TTL_SECS,
        )?);
        let stale_if_unreachable_secs = number(
            "--stale-if-unreachable-secs",
            &cli.stale_if_unreachable_secs,
            0,
            MAX_STALE_IF_UNREACHABLE_SECS,
        )? as u32;
        let lookup_timeout =
            match number("--lookup-timeout-ms", &cli.lookup_timeout_ms, 0, 600_000)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            };
        // A write waits for its backups' acknowledgements at most this long too (Hazelcast's
        // own default is 5 s): a backup member that stopped answering would otherwise hold
        // every write whose partition it backs up, the store after a miss included. Past it
        // the write stands on its owner, as Hazelcast's own timeout leaves it.
        if let Some(t) = lookup_timeout {
            hazelcast.backup_ack_timeout = hazelcast.backup_ack_timeout.min(t);
        }
        let admin_token = secret(
            "--admin-token-file",
            cli.admin_token_file,
            "HZCACHE_ADMIN_TOKEN",
            cli.admin_token,
        )?;
        let callout_secret = secret(
            "--callout-secret-file",
            cli.callout_secret_file,
            "HZCACHE_CALLOUT_SECRET",
            cli.callout_secret,
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
        for spec in &map_specs {
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
            lookup_timeout,
            admin_token,
            callout_secret,
            maps,
            log_format: cli.log_format,
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
            "listen={}\nhazelcast={}\ncluster-name={}\norigins={}\norigin-timeout-ms={}\nmax-entry-bytes={}\nmax-inflight-body-bytes={}\ntoo-large-ttl-secs={}\nstale-if-unreachable-secs={}\nlookup-timeout-ms={}\nhazelcast-timeout-ms={}\nhazelcast-max-frame-bytes={}\nhazelcast-max-message-bytes={}\nmaps={}\ncallout-secret={}\nadmin-api={}\nlog-format={}",
            self.listen,
            self.hazelcast.addresses.join(","),
            self.hazelcast.cluster_name,
            origins.join(","),
            self.origin_timeout.as_millis(),
            self.max_entry_bytes,
            self.max_inflight_body_bytes,
            self.too_large_ttl.as_secs(),
            self.stale_if_unreachable_secs,
            self.lookup_timeout.map_or(0, |d| d.as_millis()),
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
            self.log_format.name(),
        )
    }
}

/// A secret from its file (`file`, named by `setting`) or from the variable `var` holding the
/// value itself (`value`); both at once is ambiguous, neither is `None`.
fn secret(
    setting: &str,
    file: Option<String>,
    var: &str,
    value: Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    match (file, value.filter(|v| !v.is_empty())) {
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
    fn secrets_come_from_a_file_and_are_never_shown() {
        // From the environment: tests/cli.rs, which runs the binary with variables set.
        let dir = std::env::temp_dir().join(format!("hzcache-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
        let path = file.display().to_string();
        let c = parse(&[
            "--admin-token-file",
            &path,
            "--callout-secret-file",
            &path,
            "--listen",
            "0.0.0.0:8090",
        ])
        .unwrap();
        assert!(c
            .admin_token
            .as_ref()
            .unwrap()
            .matches(b"from-a-file-0123456789"));
        assert!(c
            .callout_secret
            .as_ref()
            .unwrap()
            .matches(b"from-a-file-0123456789"));
        let shown = format!("{c:?}\n{}", c.summary());
        assert!(!shown.contains("from-a-file"), "{shown}");
        assert!(shown.contains("callout-secret=set"), "{shown}");
        std::fs::write(&file, "short\n").unwrap();
        let short = parse(&["--callout-secret-file", &path]);
        assert_eq!(
            short.unwrap_err().setting().as_deref(),
            Some("--callout-secret-file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_on_the_command_line_is_refused_with_or_without_a_value() {
        for args in [
            &["--admin-token", "0123456789abcdef"][..],
            &["--admin-token=0123456789abcdef"],
            &["--admin-token"],
            &["--callout-secret", "0123456789abcdef"],
            &["--callout-secret=0123456789abcdef"],
            &["--listen", "127.0.0.1:1", "--callout-secret"],
        ] {
            let e = parse(args).expect_err(&format!("{args:?}"));
            let text = e.to_string();
            assert!(text.contains("never taken from the command line"), "{text}");
            assert!(!text.contains("0123456789abcdef"), "{text}");
        }
    }

    #[test]
    fn help_lists_every_flag_with_its_variable_and_no_secret_value() {
        use clap::CommandFactory;
        // Width 0: no wrapping, so a flag and its variable stay on one line.
        let help = Cli::command().term_width(0).render_long_help().to_string();
        for (flag, var) in [
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
        ] {
            assert!(help.contains(&format!("{flag} <")), "{flag}: {help}");
            assert!(help.contains(&format!("[env: {var}")), "{var}: {help}");
        }
        assert!(help.contains("--check-config"));
        assert!(help.contains("HZCACHE_CALLOUT_SECRET,"), "{help}");
        assert!(
            !help.contains("--admin-token <"),
            "the refused flags stay hidden"
        );
    }

    #[test]
    fn only_allowed_maps_are_served_as_configured() {
        let c = parse(&[]).unwrap();
        assert!(c
            .check_map("hzcache", Mode::Envelope, ValueType::String)
            .is_ok());
        assert!(c.check_map("cache", Mode::Body, ValueType::String).is_err());
        // HZCACHE_MAPS (a comma-separated list, flags winning): tests/cli.rs.
        let c = parse(&[
            "--map",
            "hzcache=envelope",
            "--map",
            " cache=body:string",
            "--map=raw=body:bytes",
        ])
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

    /// Parses `args` with no environment variable read, whatever the test's environment holds.
    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        use clap::CommandFactory;
        let hermetic = Cli::command().mut_args(|a| a.env(None));
        Invocation::parse_with(hermetic, args.iter().copied()).map(|i| i.config)
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
    fn the_last_of_a_repeated_flag_wins() {
        let c = parse(&["--cluster-name", "first", "--cluster-name=last"]).unwrap();
        assert_eq!(c.hazelcast.cluster_name, "last");
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
            assert_eq!(e.setting().as_deref(), Some(*setting), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_in_flight_cap_may_equal_the_entry_limit() {
        let c = parse(&[
            "--max-entry-bytes",
            "2000",
            "--max-inflight-body-bytes=2000",
        ])
        .unwrap();
        assert_eq!(c.max_inflight_body_bytes, 2000);
        assert!(c.summary().contains("max-inflight-body-bytes=2000"));
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
        // The client measures what its reader admits in a Map.Get answer (tested there against
        // the reader itself).
        let admitted = reader_limits(max).max_bytes_value_len();
        assert!(encoded.len() <= admitted, "{} > {admitted}", encoded.len());
        assert!(max + ENTRY_OVERHEAD_BYTES > admitted);
    }
}
