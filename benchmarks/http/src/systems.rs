//! Everything a run starts, on 127.0.0.1 with ports chosen per run, stopped when dropped (and
//! on Ctrl-C/SIGTERM through benchmarks/compare/src/procs.rs, shared with `make compare`):
//! - the origin: Debian's nginx serving static files (config/origin-nginx.conf.tmpl);
//! - plain Envoy 1.40, `--concurrency 1`, with `direct_response`, as a proxy without cache,
//!   or with its own `envoy.filters.http.cache` (SimpleHttpCache), from config/envoy.yaml.tmpl;
//! - hzcache: Envoy 1.40 (`--concurrency 1`) rendered from the shipped envoy/envoy.yaml.tmpl
//!   with the filter, its own release companion, and one Hazelcast member with the JVM's full
//!   JIT (as `make bench` starts it);
//! - Varnish with benchmarks/compare/'s builtin VCL, nginx `proxy_cache` (config/nginx-cache.conf.tmpl).
//!
//! The benchmarks/compare/ harness starts the same caches for conformance; here the settings are the
//! ones a throughput measurement needs (no access logs, no debug logging, one worker, upstream
//! keep-alive), each said where it is set.

use std::any::Any;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hzcache_e2e::{
    callout_secret, envoy_bin, fill, free_port, loopback, maps_of, probe_get, root, run_dir,
    unique, wait_until, Companion, Process,
};

use crate::procs::{descendants, Daemon};

pub const BODY_50: usize = 50;
pub const BODY_16K: usize = 16 * 1024;

/// The byte at offset `i` of a benchmark body (as the test origin's `size=N` bodies).
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"0123456789abcdef"[i % 16]).collect()
}

/// A folder of this run, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Result<TempDir> {
        if crate::procs::stopping() {
            bail!("not creating a folder for {name}: the run is being stopped");
        }
        let dir = std::env::temp_dir().join(unique(&format!("hzcache-bench-http-{name}")));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::procs::track_folder(&dir);
        Ok(TempDir(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        crate::procs::untrack_folder(&self.0);
    }
}

/// A binary from PATH or /usr/sbin (where Debian puts nginx and varnishd).
pub fn find_bin(name: &str) -> Result<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not installed (`make bench-http` installs it)"))
}

// ---------------------------------------------------------------------------------------------
// Origin

pub struct OriginServer {
    pub port: u16,
    pid: u32,
    _daemon: Daemon,
    _dir: TempDir,
}

impl OriginServer {
    pub fn start() -> Result<OriginServer> {
        let bin = find_bin("nginx")?;
        let dir = TempDir::new("origin")?;
        let www = dir.path().join("www");
        fs::create_dir_all(&www)?;
        fs::write(www.join("b50"), body(BODY_50))?;
        fs::write(www.join("b16k"), body(BODY_16K))?;
        let port = free_port();
        let conf = fill(
            include_str!("../config/origin-nginx.conf.tmpl"),
            &[
                ("DIR", dir.path().display().to_string()),
                ("PORT", port.to_string()),
            ],
        );
        let conf_path = dir.path().join("nginx.conf");
        fs::write(&conf_path, conf)?;
        let mut cmd = Command::new(bin);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-e", "stderr"]);
        let mut daemon = Daemon::spawn("origin-nginx", &mut cmd)?;
        wait_http("origin nginx", port, "/b50", daemon.process())?;
        Ok(OriginServer {
            port,
            pid: daemon.process().pid(),
            _daemon: daemon,
            _dir: dir,
        })
    }

    /// Requests the origin has answered so far (nginx `stub_status`; the status request
    /// itself counts one).
    pub fn requests(&self) -> u64 {
        probe_get(loopback(self.port), "/nginx-status")
            .and_then(|(_, body)| parse_stub_requests(&body))
            .unwrap_or(0)
    }

    pub fn pids(&self) -> Vec<u32> {
        family(self.pid)
    }
}

/// The `requests` figure of nginx's stub_status page ("server accepts handled requests\n
/// A H R").
pub fn parse_stub_requests(body: &str) -> Option<u64> {
    let mut lines = body.lines();
    lines.find(|l| l.trim_start().starts_with("server accepts"))?;
    lines.next()?.split_whitespace().nth(2)?.parse().ok()
}

/// A process and all its descendants.
fn family(pid: u32) -> Vec<u32> {
    let mut p = vec![pid];
    p.extend(descendants(pid));
    p
}

/// Waits until GET `path` gets any answer, or the process exits.
fn wait_http(what: &str, port: u16, path: &str, process: &mut Process) -> Result<()> {
    let addr = loopback(port);
    wait_until(what, Duration::from_secs(30), || {
        probe_get(addr, path).is_some() || !process.is_running()
    })?;
    if !process.is_running() {
        bail!("{what} exited at start-up:\n{}", process.tail(30));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Hazelcast

pub struct Member {
    pub process: Process,
    pub port: u16,
    pub cluster: String,
}

impl Member {
    /// One member like `make bench` starts it: the harness's member configuration, but the
    /// JVM's full JIT and a fixed 512 MiB heap (the harness trims both for start-up time).
    pub fn start() -> Result<Member> {
        let port = free_port();
        let cluster = unique("hzcache-bench-http");
        let yaml = fill(
            &fs::read_to_string(root().join("deploy/local/member.yaml.tmpl"))?,
            &[
                ("CLUSTER_NAME", cluster.clone()),
                ("PORT", port.to_string()),
                ("MEMBER_LIST", format!("          - 127.0.0.1:{port}")),
            ],
        );
        let config = run_dir().join(format!("member-{port}.yaml"));
        fs::write(&config, yaml)?;
        let java = std::env::var_os("HZCACHE_JAVA").unwrap_or_else(|| "java".into());
        let mut cmd = Command::new(java);
        cmd.arg(format!("-Dhazelcast.config={}", config.display()))
            .arg("-Dhazelcast.local.localAddress=127.0.0.1")
            .arg("-Djava.net.preferIPv4Stack=true")
            .args(["-Xms512m", "-Xmx512m"])
            .arg("-cp")
            .arg(hzcache_e2e::hazelcast_jar()?)
            .arg("com.hazelcast.core.server.HazelcastMemberStarter");
        let mut process = Process::spawn("bench-http-member", &mut cmd)?;
        let needle = format!("127.0.0.1]:{port} is STARTED");
        process.wait_for_log(Duration::from_secs(120), |log| log.contains(&needle))?;
        Ok(Member {
            process,
            port,
            cluster,
        })
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------------------------------------
// The systems under test

/// One system answering on `port`: Envoy (with or without a companion), Varnish or nginx.
pub struct System {
    pub port: u16,
    /// The answering process (Envoy, or the nginx/Varnish master).
    front: u32,
    /// The companion's pid and port, for hzcache.
    pub companion: Option<(u32, u16)>,
    /// Processes and folders, stopped and removed when dropped (in this order).
    _keep: Vec<Box<dyn Any>>,
}

impl System {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The front process and the workers it forked.
    pub fn front_pids(&self) -> Vec<u32> {
        family(self.front)
    }

    /// The companion's `/metrics` text ("" without a companion).
    pub fn companion_metrics(&self) -> String {
        self.companion
            .and_then(|(_, port)| probe_get(loopback(port), "/metrics"))
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

/// Starts Envoy on `yaml` (`--concurrency 1`, warnings only) and waits until it is LIVE; an
/// error says why it is not (for hzcache: usually a filter configuration the build refuses).
fn start_envoy(name: &str, yaml: String, admin_port: u16, env: &[(&str, &str)]) -> Result<Process> {
    let config = run_dir().join(format!("{}.yaml", unique(name)));
    fs::write(&config, yaml)?;
    let mut cmd = Command::new(envoy_bin()?);
    cmd.arg("-c").arg(&config).args([
        "--concurrency",
        "1",
        "--use-dynamic-base-id",
        "--log-level",
        "warn",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut process = Process::spawn(name, &mut cmd)?;
    let admin = loopback(admin_port);
    let ready = wait_until(&format!("{name} /ready"), Duration::from_secs(60), || {
        probe_get(admin, "/ready").is_some_and(|(s, b)| s == 200 && b.contains("LIVE"))
            || !process.is_running()
    });
    if !process.is_running() {
        // The first error Envoy logged says why (for the filter: the field it refused).
        let log = process.log_text();
        let why = log
            .lines()
            .find(|l| l.contains("][error][") || l.contains("][critical]["))
            .and_then(|l| l.rsplit_once("] "))
            .map_or("", |(_, msg)| msg.trim());
        bail!(
            "{name} refused its configuration: {why}\n{}",
            process.tail(12)
        );
    }
    ready?;
    Ok(process)
}

const ROUTE_ORIGIN: &str = "                        - match: { prefix: \"/\" }
                          route: { cluster: origin, timeout: 15s }";

fn envoy_plain(name: &str, origin_port: u16, routes: &str, filters: &str) -> Result<System> {
    let port = free_port();
    let admin_port = free_port();
    let yaml = fill(
        include_str!("../config/envoy.yaml.tmpl"),
        &[
            ("ADMIN_PORT", admin_port.to_string()),
            ("LISTEN_PORT", port.to_string()),
            ("ORIGIN_PORT", origin_port.to_string()),
            ("ROUTES", routes.to_string()),
            ("FILTERS", filters.to_string()),
        ],
    );
    let process = start_envoy(name, yaml, admin_port, &[])?;
    Ok(System {
        port,
        front: process.pid(),
        companion: None,
        _keep: vec![Box::new(process)],
    })
}

/// Envoy answering /b50 and /b16k itself (`direct_response` from files of the same bytes
/// the origin serves).
pub fn envoy_direct(origin_port: u16) -> Result<System> {
    let dir = TempDir::new("direct")?;
    let mut routes = String::new();
    for (path, len) in [("/b50", BODY_50), ("/b16k", BODY_16K)] {
        let file = dir.path().join(path.trim_start_matches('/'));
        fs::write(&file, body(len))?;
        routes.push_str(&format!(
            "                        - match: {{ path: \"{path}\" }}
                          direct_response:
                            status: 200
                            body: {{ filename: \"{}\" }}
",
            file.display()
        ));
    }
    routes.push_str(ROUTE_ORIGIN);
    let mut s = envoy_plain("envoy-direct", origin_port, &routes, "")?;
    s._keep.push(Box::new(dir));
    Ok(s)
}

pub fn envoy_proxy(origin_port: u16) -> Result<System> {
    envoy_plain("envoy-proxy", origin_port, ROUTE_ORIGIN, "")
}

/// Envoy's own cache filter with the in-memory SimpleHttpCache, as benchmarks/compare/ configures it.
pub fn envoy_cache(origin_port: u16) -> Result<System> {
    let filters = "                  - name: envoy.filters.http.cache
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.cache.v3.CacheConfig
                      typed_config:
                        \"@type\": type.googleapis.com/envoy.extensions.http.cache.simple_http_cache.v3.SimpleHttpCacheConfig";
    envoy_plain("envoy-cache", origin_port, ROUTE_ORIGIN, filters)
}

/// Envoy with the hzcache filter configured by `filter_config` and its own companion on
/// `member`. Envoy is rendered from the shipped envoy/envoy.yaml.tmpl, as the demo and the
/// tests do, but with `--concurrency 1` and warnings only (the tests' `wasm:debug` logging
/// would be measured too).
pub fn hzcache(
    name: &str,
    member: &Member,
    origin_port: u16,
    filter_config: &str,
) -> Result<System> {
    let args: Vec<String> = maps_of(filter_config)
        .into_iter()
        .flat_map(|m| ["--map".to_string(), m])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let companion = Companion::start(
        &member.cluster,
        &[member.address()],
        &[format!("default=http://127.0.0.1:{origin_port}")],
        &args,
    )?;
    companion.wait_ready(Duration::from_secs(30))?;
    let port = free_port();
    let admin_port = free_port();
    let yaml = hzcache_e2e::local_envoy_yaml(
        filter_config,
        port,
        admin_port,
        origin_port,
        companion.port,
    )?;
    let envoy = start_envoy(
        name,
        yaml,
        admin_port,
        &[("HZCACHE_CALLOUT_SECRET", callout_secret())],
    )?;
    Ok(System {
        port,
        front: envoy.pid(),
        companion: Some((companion.process.pid(), companion.port)),
        // Envoy first: it stops calling out before the companion goes.
        _keep: vec![Box::new(envoy), Box::new(companion)],
    })
}

/// Varnish with benchmarks/compare/'s builtin VCL (only the backend named) and a 256 MiB malloc store.
/// Varnish has no single-thread mode; it runs its default thread pools.
pub fn varnish(origin_port: u16) -> Result<System> {
    let bin = find_bin("varnishd")?;
    let dir = TempDir::new("varnish")?;
    let port = free_port();
    let vcl = fill(
        include_str!("../../compare/config/default.vcl.tmpl"),
        &[("ORIGIN_PORT", origin_port.to_string())],
    );
    let vcl_path = dir.path().join("default.vcl");
    fs::write(&vcl_path, vcl)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-F")
        .arg("-n")
        .arg(dir.path().join("work"))
        .arg("-a")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-T", "none", "-j", "none", "-s", "malloc,256m"])
        .arg("-f")
        .arg(&vcl_path);
    let mut daemon = Daemon::spawn("varnish", &mut cmd)?;
    wait_http("varnish", port, "/b50", daemon.process())?;
    Ok(System {
        port,
        front: daemon.process().pid(),
        companion: None,
        _keep: vec![Box::new(daemon), Box::new(dir)],
    })
}

pub fn nginx_cache(origin_port: u16) -> Result<System> {
    let bin = find_bin("nginx")?;
    let dir = TempDir::new("nginx-cache")?;
    let port = free_port();
    let conf = fill(
        include_str!("../config/nginx-cache.conf.tmpl"),
        &[
            ("DIR", dir.path().display().to_string()),
            ("PORT", port.to_string()),
            ("ORIGIN_PORT", origin_port.to_string()),
        ],
    );
    let conf_path = dir.path().join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .args(["-e", "stderr"]);
    let mut daemon = Daemon::spawn("nginx-cache", &mut cmd)?;
    wait_http("nginx proxy_cache", port, "/b50", daemon.process())?;
    Ok(System {
        port,
        front: daemon.process().pid(),
        companion: None,
        _keep: vec![Box::new(daemon), Box::new(dir)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_status_requests_are_read() {
        let page = "Active connections: 3 \nserver accepts handled requests\n 12 12 345 \n\
                    Reading: 0 Writing: 1 Waiting: 2 \n";
        assert_eq!(parse_stub_requests(page), Some(345));
        assert_eq!(parse_stub_requests("nothing"), None);
    }
}
