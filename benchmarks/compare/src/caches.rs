//! The caches under comparison, each started in front of the same origin on 127.0.0.1 with
//! its own ports, configuration and log under this run's folder, and stopped when dropped:
//! - `hzcache`: Envoy 1.40 + the hzcache filter + the companion + a real Hazelcast member
//!   (the e2e harness), one rule for every GET/HEAD, no default lifetime;
//! - `envoy-cache`: the same Envoy binary with its built-in `envoy.filters.http.cache` and
//!   the in-memory SimpleHttpCache;
//! - `envoy-cache-v2`: the same with the newer `envoy.filters.http.cache_v2`;
//! - `nginx`: Debian's nginx with `proxy_cache` (config/nginx.conf.tmpl);
//! - `varnish`: Debian's Varnish with its builtin VCL (config/default.vcl.tmpl) and default
//!   parameters;
//! - `varnish-strict`: the same VCL with two runtime parameters that bring Varnish closer to
//!   RFC 9111: `default_grace=0s` (no stale answers unless the origin's
//!   stale-while-revalidate grants them) and `default_keep=3600s` (stale entries are kept
//!   for conditional revalidation).

use std::any::Any;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hzcache_e2e::{
    envoy_bin, free_port, probe_get, run_dir, shared_member, unique, wait_until, Companion, Envoy,
    Origin, Process,
};
use hzcache_e2e::{fill, loopback};

use crate::procs::Daemon;

/// Every cache, in scorecard order.
pub const ALL: [&str; 6] = [
    "hzcache",
    "envoy-cache",
    "envoy-cache-v2",
    "nginx",
    "varnish",
    "varnish-strict",
];

/// A running cache: where to send requests, and what keeps it running.
pub struct Cache {
    pub name: &'static str,
    pub port: u16,
    /// The process that answers (Envoy, the nginx or Varnish master) and its log.
    pid: u32,
    pub log: PathBuf,
    /// Processes and folders, stopped and removed when the cache is dropped.
    _keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Cache {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Whether the answering process still runs (a crash fails the case it happened in).
    pub fn alive(&self) -> bool {
        crate::procs::alive(self.pid)
    }
}

/// Starts the cache called `name` in front of `origin`; an error says why it is not
/// available (not installed, refused its configuration, never became ready).
pub fn start(name: &'static str, origin: &Origin) -> Result<Cache> {
    match name {
        "hzcache" => hzcache(origin),
        "envoy-cache" => envoy_builtin(
            name,
            origin,
            "envoy.filters.http.cache",
            "type.googleapis.com/envoy.extensions.filters.http.cache.v3.CacheConfig",
            "type.googleapis.com/envoy.extensions.http.cache.simple_http_cache.v3.SimpleHttpCacheConfig",
        ),
        "envoy-cache-v2" => envoy_builtin(
            name,
            origin,
            "envoy.filters.http.cache_v2",
            "type.googleapis.com/envoy.extensions.filters.http.cache_v2.v3.CacheV2Config",
            "type.googleapis.com/envoy.extensions.http.cache_v2.simple_http_cache.v3.SimpleHttpCacheV2Config",
        ),
        "nginx" => nginx(origin),
        "varnish" => varnish(name, origin, &[]),
        "varnish-strict" => varnish(
            name,
            origin,
            &["default_grace=0s", "default_keep=3600s"],
        ),
        other => bail!("unknown cache {other:?} (known: {})", ALL.join(", ")),
    }
}

/// A binary from PATH or /usr/sbin (Debian puts nginx and varnishd there, and a non-root
/// PATH may lack it).
fn find_bin(name: &str, package: &str) -> Result<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{name} not installed (Debian package {package}; `make compare` installs it)")
        })
}

/// Waits until an HTTP GET through the cache gets any answer, or the process exits.
fn wait_http(what: &str, port: u16, process: &mut Process) -> Result<()> {
    let addr = loopback(port);
    wait_until(what, Duration::from_secs(30), || {
        probe_get(addr, "/compare-ready").is_some() || !process.is_running()
    })?;
    if !process.is_running() {
        bail!("{what} exited at start-up:\n{}", process.tail(30));
    }
    Ok(())
}

/// A folder of this run (configs, cache files, pid files), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<TempDir> {
        if crate::procs::stopping() {
            bail!("not creating a folder for {name}: the run is being stopped");
        }
        let dir = std::env::temp_dir().join(unique(&format!("hzcache-compare-{name}")));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::procs::track_folder(&dir);
        Ok(TempDir(dir))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        crate::procs::untrack_folder(&self.0);
    }
}

fn hzcache(origin: &Origin) -> Result<Cache> {
    let member = shared_member();
    let config = include_str!("../config/hzcache-filter.json");
    // The companion serves only the maps it is told to (`--map`): the ones the rules name.
    let maps: Vec<String> = hzcache_e2e::maps_of(config)
        .into_iter()
        .flat_map(|m| ["--map".to_string(), m])
        .collect();
    let maps: Vec<&str> = maps.iter().map(String::as_str).collect();
    let companion = Companion::start(
        &member.cluster_name,
        &[member.address()],
        &[origin.origin_arg()],
        &maps,
    )?;
    companion.wait_ready(Duration::from_secs(30))?;
    let envoy = Envoy::start(config, origin.port, companion.port)?;
    Ok(Cache {
        name: "hzcache",
        port: envoy.port,
        pid: envoy.process.pid(),
        log: envoy.process.log.clone(),
        // Envoy first: it stops calling out before the companion goes.
        _keep: vec![Box::new(envoy), Box::new(companion)],
    })
}

fn envoy_builtin(
    name: &'static str,
    origin: &Origin,
    filter_name: &str,
    filter_type: &str,
    storage_type: &str,
) -> Result<Cache> {
    let port = free_port();
    let admin_port = free_port();
    let yaml = fill(
        include_str!("../config/envoy-cache.yaml.tmpl"),
        &[
            ("ADMIN_PORT", admin_port.to_string()),
            ("LISTEN_PORT", port.to_string()),
            ("ORIGIN_PORT", origin.port.to_string()),
            ("FILTER_NAME", filter_name.to_string()),
            ("FILTER_TYPE", filter_type.to_string()),
            ("STORAGE_TYPE", storage_type.to_string()),
        ],
    );
    let config = run_dir().join(format!("{name}-{port}.yaml"));
    fs::write(&config, yaml)?;
    let mut cmd = Command::new(envoy_bin()?);
    cmd.arg("-c").arg(&config).args([
        "--concurrency",
        "2",
        "--use-dynamic-base-id",
        "--log-level",
        "warn",
    ]);
    let mut process = Process::spawn(name, &mut cmd)?;
    let admin = loopback(admin_port);
    wait_until(&format!("{name} /ready"), Duration::from_secs(60), || {
        probe_get(admin, "/ready").is_some_and(|(s, b)| s == 200 && b.contains("LIVE"))
            || !process.is_running()
    })?;
    if !process.is_running() {
        bail!("{name} refused its configuration:\n{}", process.tail(20));
    }
    let envoy = Envoy {
        process,
        port,
        admin_port,
    };
    Ok(Cache {
        name,
        port,
        pid: envoy.process.pid(),
        log: envoy.process.log.clone(),
        _keep: vec![Box::new(envoy)],
    })
}

fn nginx(origin: &Origin) -> Result<Cache> {
    let bin = find_bin("nginx", "nginx")?;
    let dir = TempDir::new("nginx")?;
    let port = free_port();
    let conf = fill(
        include_str!("../config/nginx.conf.tmpl"),
        &[
            ("DIR", dir.path().display().to_string()),
            ("PORT", port.to_string()),
            ("ORIGIN_PORT", origin.port.to_string()),
        ],
    );
    let conf_path = dir.path().join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        // Errors to stderr, which the harness keeps in this run's log folder.
        .args(["-e", "stderr"]);
    let mut daemon = Daemon::spawn("nginx", &mut cmd)?;
    wait_http("nginx", port, daemon.process())?;
    Ok(Cache {
        name: "nginx",
        port,
        pid: daemon.process().pid(),
        log: daemon.process().log.clone(),
        // The daemon before its folder.
        _keep: vec![Box::new(daemon), Box::new(dir)],
    })
}

fn varnish(name: &'static str, origin: &Origin, params: &[&str]) -> Result<Cache> {
    let bin = find_bin("varnishd", "varnish")?;
    let dir = TempDir::new("varnish")?;
    let port = free_port();
    let vcl = fill(
        include_str!("../config/default.vcl.tmpl"),
        &[("ORIGIN_PORT", origin.port.to_string())],
    );
    let vcl_path = dir.path().join("default.vcl");
    fs::write(&vcl_path, vcl)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-F") // foreground: the harness owns the process
        .arg("-n")
        .arg(dir.path().join("work"))
        .arg("-a")
        .arg(format!("127.0.0.1:{port}"))
        // No management port at all: nothing listens but the one HTTP port.
        .args(["-T", "none"])
        // Run as the invoking user in a folder of this run (no jail users or /var paths).
        .args(["-j", "none"])
        .args(["-s", "malloc,128m"])
        .arg("-f")
        .arg(&vcl_path);
    for p in params {
        cmd.args(["-p", p]);
    }
    let mut daemon = Daemon::spawn(name, &mut cmd)?;
    wait_http(name, port, daemon.process())?;
    Ok(Cache {
        name,
        port,
        pid: daemon.process().pid(),
        log: daemon.process().log.clone(),
        _keep: vec![Box::new(daemon), Box::new(dir)],
    })
}
