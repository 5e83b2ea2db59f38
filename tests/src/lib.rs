//! The end-to-end harness: starts the real components (Hazelcast members, the companion, Envoy
//! with the filter) and a small origin on 127.0.0.1, on ports chosen for each run; waits on
//! readiness, never a fixed sleep; keeps each process's log in its own file and prints the end
//! of every log when a test fails; and stops everything it started, even when a test fails or
//! the test binary exits.
//!
//! Paths come from the workspace (`make test` builds and installs them first); each can be
//! overridden by an environment variable: `HZCACHE_ENVOY`, `HZCACHE_HAZELCAST_JAR`,
//! `HZCACHE_JAVA`, `HZCACHE_PYTHON`, `HZCACHE_COMPANION_BIN`, `HZCACHE_FILTER_WASM`.

pub mod client;
pub mod cluster;
pub mod origin;
pub mod raw;
pub mod stack;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub use client::{get, get_with, Reply};
pub use origin::{Origin, OriginReply};

/// The workspace root (the folder with the top-level Cargo.toml).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn tool(var: &str, default: PathBuf, hint: &str) -> Result<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    if path.exists() {
        Ok(path)
    } else {
        bail!(
            "{} not found at {} ({hint}; or set {var})",
            var,
            path.display()
        )
    }
}

pub fn envoy_bin() -> Result<PathBuf> {
    tool(
        "HZCACHE_ENVOY",
        root().join(".cache/venv/bin/envoy"),
        "run `make setup`",
    )
}
pub fn python_bin() -> Result<PathBuf> {
    tool(
        "HZCACHE_PYTHON",
        root().join(".cache/venv/bin/python"),
        "run `make setup`",
    )
}
pub fn hazelcast_jar() -> Result<PathBuf> {
    tool(
        "HZCACHE_HAZELCAST_JAR",
        root().join(".cache/hazelcast/hazelcast-5.7.0.jar"),
        "run `make setup`",
    )
}
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}
pub fn companion_bin() -> Result<PathBuf> {
    tool(
        "HZCACHE_COMPANION_BIN",
        target_dir().join("debug/hzcache-companion"),
        "run `cargo build -p hzcache-companion`",
    )
}
pub fn filter_wasm() -> Result<PathBuf> {
    tool(
        "HZCACHE_FILTER_WASM",
        target_dir().join("wasm32-wasip1/release/hzcache_filter.wasm"),
        "run `cargo build -p hzcache-filter --target wasm32-wasip1 --release`",
    )
}

/// A folder for this test binary's logs and generated configs: `target/e2e/<pid>/`.
pub fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir()
            .join("e2e")
            .join(std::process::id().to_string());
        let _ = fs::create_dir_all(&dir);
        dir
    })
}

/// A name unique to this run, for cluster names, map names and keys, so runs side by side
/// never share state.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A port free right now on 127.0.0.1 (the OS picks it). Taken ports are remembered so two
/// components of one run never get the same one.
pub fn free_port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        if port != 0 && !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// PIDs of every process still running, killed when the test binary exits (statics such as a
/// shared Hazelcast member are never dropped).
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_leftovers() {
    let pids = LIVE.lock().map(|p| p.clone()).unwrap_or_default();
    for pid in pids {
        // SAFETY: kill(2) with a pid we spawned; failure (already gone) is harmless.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}

fn register_exit_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with atexit(3).
        unsafe {
            libc::atexit(kill_leftovers);
        }
    });
}

/// A child process with its log file; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Process {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Process> {
        register_exit_hook();
        let log = run_dir().join(format!("{}.log", unique(name)));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child.id());
        Ok(Process {
            name: name.to_string(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// Waits until `pred` holds for the log or `timeout` passes; fails early if the process
    /// exits.
    pub fn wait_for_log(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.log_text()) {
                return Ok(());
            }
            if !self.is_running() {
                bail!(
                    "{} exited before it was ready; log:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {timeout:?}; log:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Stops the process: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.is_running() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.is_running() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        let pid = self.child.id();
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != pid);
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid = self.child.id();
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != pid);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- last lines of {} ({}) -----\n{}\n-----",
                self.name,
                self.log.display(),
                self.tail(60)
            );
        }
        self.stop(Duration::from_secs(3));
    }
}

/// Polls `probe` until it succeeds or `timeout` passes; the error names `what`.
pub fn wait_until(what: &str, timeout: Duration, mut probe: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if probe() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("{what}: not ready within {timeout:?}")
}

/// A blocking one-shot HTTP/1.1 GET used for readiness probes: (status, body).
pub fn probe_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reader = BufReader::new(s);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    let body = rest.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Fills the `{{NAME}}` placeholders of a configuration template.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Hazelcast

/// One real Hazelcast member.
pub struct HazelcastMember {
    pub process: Process,
    pub port: u16,
    pub cluster_name: String,
}

impl HazelcastMember {
    /// Starts a member of `cluster_name` on `port`, joining the members at `member_ports`
    /// (include `port` itself), and waits until it reports STARTED.
    pub fn start_in(
        cluster_name: &str,
        port: u16,
        member_ports: &[u16],
    ) -> Result<HazelcastMember> {
        let template = fs::read_to_string(root().join("deploy/local/member.yaml.tmpl"))?;
        let members: String = member_ports
            .iter()
            .map(|p| format!("          - 127.0.0.1:{p}\n"))
            .collect();
        let yaml = fill(
            &template,
            &[
                ("CLUSTER_NAME", cluster_name.to_string()),
                ("PORT", port.to_string()),
                ("MEMBER_LIST", members.trim_end().to_string()),
            ],
        );
        let config = run_dir().join(format!("hazelcast-{port}.yaml"));
        fs::write(&config, yaml)?;
        let java = std::env::var_os("HZCACHE_JAVA").unwrap_or_else(|| "java".into());
        let mut cmd = Command::new(java);
        cmd.arg(format!("-Dhazelcast.config={}", config.display()))
            .arg("-Dhazelcast.local.localAddress=127.0.0.1")
            .arg("-Djava.net.preferIPv4Stack=true")
            // Small heaps and a quick JIT: tests start several members on two cores.
            .args([
                "-Xms64m",
                "-Xmx256m",
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
            ])
            .arg("-cp")
            .arg(hazelcast_jar()?)
            .arg("com.hazelcast.core.server.HazelcastMemberStarter");
        let mut process = Process::spawn(&format!("hazelcast-{port}"), &mut cmd)?;
        let needle = format!("127.0.0.1]:{port} is STARTED");
        process.wait_for_log(Duration::from_secs(120), |log| log.contains(&needle))?;
        Ok(HazelcastMember {
            process,
            port,
            cluster_name: cluster_name.to_string(),
        })
    }

    /// A single-member cluster with a unique name.
    pub fn start_single() -> Result<HazelcastMember> {
        let port = free_port();
        HazelcastMember::start_in(&unique("hzcache-test"), port, &[port])
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The single-member cluster shared by the tests of one test binary (started on first use,
/// killed when the binary exits). Tests keep apart by using unique map names and keys.
pub fn shared_member() -> &'static HazelcastMember {
    static MEMBER: OnceLock<HazelcastMember> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    let _guard = START.lock().unwrap_or_else(|p| p.into_inner());
    MEMBER.get_or_init(|| match HazelcastMember::start_single() {
        Ok(m) => m,
        Err(e) => panic!("cannot start the shared Hazelcast member: {e:#}"),
    })
}

// ---------------------------------------------------------------------------------------------
// Companion

pub struct Companion {
    pub process: Process,
    pub port: u16,
}

/// The callout secret shared by every companion and Envoy this test process starts (random
/// per process, so no test depends on a fixed value). Passed through the environment, as
/// production does: `HZCACHE_CALLOUT_SECRET` for the companion and, through
/// `vm_config.environment_variables`, for the filter.
pub fn callout_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| format!("test-callout-{:032x}", rand_u128()))
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let a = h.finish();
    h.write_u32(std::process::id());
    u128::from(a) << 64 | u128::from(h.finish())
}

/// Writes `value` to a private file under the run directory and returns its path: how tests
/// give the companion its admin token (`--admin-token-file`), since secrets never go on a
/// command line.
pub fn secret_file(name: &str, value: &str) -> String {
    let path = run_dir().join(format!("{name}-{}.secret", unique("s")));
    if let Err(e) = fs::write(&path, value) {
        panic!("cannot write {}: {e}", path.display());
    }
    path.display().to_string()
}

/// The maps (`NAME=MODE[:TYPE]`) a filter configuration's rules use, for the companion's
/// `--map` allow-list: the companion serves exactly the maps the Envoys in front of it name.
pub fn maps_of(filter_config: &str) -> Vec<String> {
    let Ok(config) = serde_json::from_str::<serde_json::Value>(filter_config) else {
        return Vec::new();
    };
    let mut maps: Vec<String> = Vec::new();
    for rule in config["rules"].as_array().into_iter().flatten() {
        let name = rule["map"].as_str().unwrap_or("hzcache");
        let spec = match (rule["mode"].as_str(), rule["value_type"].as_str()) {
            (Some("body"), Some("bytes")) => format!("{name}=body:bytes"),
            (Some("body"), _) => format!("{name}=body:string"),
            _ => format!("{name}=envelope"),
        };
        if !maps.iter().any(|m| m.split('=').next() == Some(name)) {
            maps.push(spec);
        }
    }
    maps
}

/// The demo's maps: what a companion serves when a test does not say.
pub const DEMO_MAPS: &str = "hzcache=envelope,cache=body:string";

impl Companion {
    /// Starts the companion for `cluster_name` at `members`, fetching misses from `origins`
    /// (`NAME=URL`), with `extra` arguments; waits until `/healthz` answers.
    pub fn start(
        cluster_name: &str,
        members: &[String],
        origins: &[String],
        extra: &[&str],
    ) -> Result<Companion> {
        Companion::start_on(free_port(), cluster_name, members, origins, extra)
    }

    /// [`Companion::start`] on a given port (a restart where the Envoys expect it).
    pub fn start_on(
        port: u16,
        cluster_name: &str,
        members: &[String],
        origins: &[String],
        extra: &[&str],
    ) -> Result<Companion> {
        let mut cmd = Command::new(companion_bin()?);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cluster-name")
            .arg(cluster_name)
            .arg("--hazelcast")
            .arg(members.join(","))
            .env(
                "RUST_LOG",
                std::env::var("HZCACHE_TEST_LOG").unwrap_or_else(|_| {
                    "info,hzcache_companion=debug,hazelcast_client=debug".into()
                }),
            )
            .env("HZCACHE_CALLOUT_SECRET", callout_secret())
            .env("HZCACHE_MAPS", DEMO_MAPS);
        for o in origins {
            cmd.arg("--origin").arg(o);
        }
        cmd.args(extra);
        let mut process = Process::spawn("companion", &mut cmd)?;
        let addr = loopback(port);
        wait_until("companion /healthz", Duration::from_secs(20), || {
            probe_get(addr, "/healthz").is_some_and(|(s, _)| s == 200) || !process.is_running()
        })?;
        if !process.is_running() {
            bail!("companion exited at start-up:\n{}", process.tail(20));
        }
        Ok(Companion { process, port })
    }

    /// Waits until the companion is connected to Hazelcast (`/readyz` 200).
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let addr = loopback(self.port);
        wait_until("companion /readyz", timeout, || {
            probe_get(addr, "/readyz").is_some_and(|(s, _)| s == 200)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Envoy

pub struct Envoy {
    pub process: Process,
    pub port: u16,
    pub admin_port: u16,
}

impl Envoy {
    /// Starts Envoy with the hzcache filter configured by `filter_config` (JSON), routing to
    /// the origin on `origin_port` and calling out to the companion on `companion_port`.
    /// Waits until the admin endpoint reports LIVE.
    pub fn start(filter_config: &str, origin_port: u16, companion_port: u16) -> Result<Envoy> {
        Envoy::start_with_secret(filter_config, origin_port, companion_port, callout_secret())
    }

    /// [`Envoy::start`] with `secret` as the filter's callout secret.
    pub fn start_with_secret(
        filter_config: &str,
        origin_port: u16,
        companion_port: u16,
        secret: &str,
    ) -> Result<Envoy> {
        let mut envoy =
            Envoy::spawn_with_secret(filter_config, origin_port, companion_port, secret)?;
        let admin = loopback(envoy.admin_port);
        let process = &mut envoy.process;
        wait_until("envoy /ready", Duration::from_secs(60), || {
            probe_get(admin, "/ready").is_some_and(|(s, b)| s == 200 && b.contains("LIVE"))
                || !process.is_running()
        })?;
        if !envoy.process.is_running() {
            bail!("envoy exited at start-up:\n{}", envoy.process.tail(40));
        }
        Ok(envoy)
    }

    /// Starts Envoy without waiting (for tests that expect it to refuse the configuration).
    pub fn spawn(filter_config: &str, origin_port: u16, companion_port: u16) -> Result<Envoy> {
        Envoy::spawn_with_secret(filter_config, origin_port, companion_port, callout_secret())
    }

    fn spawn_with_secret(
        filter_config: &str,
        origin_port: u16,
        companion_port: u16,
        secret: &str,
    ) -> Result<Envoy> {
        let port = free_port();
        let admin_port = free_port();
        let yaml = local_envoy_yaml(filter_config, port, admin_port, origin_port, companion_port)?;
        let config = run_dir().join(format!("envoy-{port}.yaml"));
        fs::write(&config, yaml)?;
        let mut cmd = Command::new(envoy_bin()?);
        cmd.arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                "2",
                "--use-dynamic-base-id",
                "--log-level",
                "info",
            ])
            .args(["--component-log-level", "wasm:debug"])
            .env("HZCACHE_CALLOUT_SECRET", secret);
        let process = Process::spawn(&format!("envoy-{port}"), &mut cmd)?;
        Ok(Envoy {
            process,
            port,
            admin_port,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Envoy's admin `/stats` in text form.
    pub fn stats(&self) -> String {
        probe_get(loopback(self.admin_port), "/stats")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

/// The shipped Envoy template (`envoy/envoy.yaml.tmpl`) filled for 127.0.0.1: the one
/// rendering behind the tests, `make compare`, `make faults` and `make bench-http`. A
/// placeholder left unfilled is an error here, not a YAML error from Envoy.
pub fn local_envoy_yaml(
    filter_config: &str,
    port: u16,
    admin_port: u16,
    origin_port: u16,
    companion_port: u16,
) -> Result<String> {
    let template = fs::read_to_string(root().join("envoy/envoy.yaml.tmpl"))?;
    let compact = one_line(filter_config);
    let yaml = fill(
        &template,
        &[
            ("BIND_ADDRESS", "127.0.0.1".to_string()),
            ("ADMIN_ADDRESS", "127.0.0.1".to_string()),
            ("ORIGIN_HOST", "127.0.0.1".to_string()),
            ("COMPANION_HOST", "127.0.0.1".to_string()),
            ("CLUSTER_TYPE", "STATIC".to_string()),
            ("ADMIN_PORT", admin_port.to_string()),
            ("LISTEN_PORT", port.to_string()),
            ("ORIGIN_PORT", origin_port.to_string()),
            ("COMPANION_PORT", companion_port.to_string()),
            ("WASM_PATH", filter_wasm()?.display().to_string()),
            // Inside a single-quoted YAML scalar a quote is written twice.
            ("FILTER_CONFIG", compact.replace('\'', "''")),
        ],
    );
    if let Some(at) = yaml.find("{{") {
        bail!(
            "envoy/envoy.yaml.tmpl has a placeholder the harness does not fill: {}",
            &yaml[at..yaml.len().min(at + 40)]
        );
    }
    Ok(yaml)
}

/// The filter configuration as one line (it is embedded in one YAML scalar).
fn one_line(json: &str) -> String {
    json.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

/// The filter configuration the demo uses (`envoy/filter-config.json`).
pub fn demo_filter_config() -> Result<String> {
    fs::read_to_string(root().join("envoy/filter-config.json"))
        .map_err(|e| anyhow!("reading envoy/filter-config.json: {e}"))
}

// ---------------------------------------------------------------------------------------------
// A whole stack

/// Envoy with the filter, the companion, the shared Hazelcast member and an origin, wired the
/// way the demo is.
pub struct Stack {
    pub envoy: Envoy,
    pub companion: Companion,
    pub origin: Origin,
}

impl Stack {
    /// Starts the stack with the demo's filter configuration.
    pub fn start(origin: Origin) -> Result<Stack> {
        Stack::start_with(origin, &demo_filter_config()?)
    }

    pub fn start_with(origin: Origin, filter_config: &str) -> Result<Stack> {
        let member = shared_member();
        let companion = Companion::start(
            &member.cluster_name,
            &[member.address()],
            &[origin.origin_arg()],
            &[],
        )?;
        companion.wait_ready(Duration::from_secs(30))?;
        let envoy = Envoy::start(filter_config, origin.port, companion.port)?;
        Ok(Stack {
            envoy,
            companion,
            origin,
        })
    }

    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }
}

/// A Hazelcast client of our own on the shared member, for checking what the stack stored.
pub fn shared_client() -> &'static hazelcast_client::Client {
    static CLIENT: OnceLock<hazelcast_client::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let member = shared_member();
        let config = hazelcast_client::ClientConfig {
            cluster_name: member.cluster_name.clone(),
            addresses: vec![member.address()],
            ..Default::default()
        };
        let client = client::runtime().block_on(async {
            let c = hazelcast_client::Client::start(config);
            c.wait_connected(Duration::from_secs(30)).await;
            c
        });
        client
    })
}

/// Runs the official Python client's interop script; returns its standard output.
pub fn python_interop(member: &HazelcastMember, map: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(python_bin()?)
        .arg(root().join("tests/python/interop.py"))
        .arg(member.address())
        .arg(&member.cluster_name)
        .arg(map)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "python interop {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
