//! One benchmark run: starts one real Hazelcast member on 127.0.0.1 (unique cluster name,
//! `deploy/local/member.yaml.tmpl`), compiles the Java runner against the member's jar, fills the
//! key space, runs every cell (client × op × in-flight) as its own process, and prints the
//! table with each client's ratio to the official Java client measured in the same run.
//!
//! Every process it starts is stopped when it returns, fails, or gets SIGINT/SIGTERM.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use hazelcast_client::Ttl;
use hzcache_e2e::{free_port, hazelcast_jar, python_bin, root, unique, Process};

use crate::args::{rss_kb, Args, Op};
use crate::runner;

const OPTIONS: &[&str] = &[
    "seconds",
    "warmup",
    "inflight",
    "clients",
    "ops",
    "keys",
    "value-bytes",
];

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: the main loop notices it, stops its children and exits.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted; stopped everything this run started");
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Java,
    Rust,
    /// Another build of this binary (`HZCACHE_BENCH_BASELINE`), run right after `Rust`: a
    /// change and the build before it measured side by side against one member.
    RustBaseline,
    Python,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Java => "java",
            Kind::Rust => "rust (hzcache)",
            Kind::RustBaseline => "rust (baseline)",
            Kind::Python => "python",
        }
    }
}

struct Settings {
    seconds: f64,
    warmup: f64,
    inflight: Vec<usize>,
    clients: Vec<Kind>,
    ops: Vec<Op>,
    keys: usize,
    value_bytes: usize,
}

fn parse(args: &Args) -> Result<Settings> {
    args.only(OPTIONS)?;
    let list = |name: &str, default: &str| -> Vec<String> {
        args.text_or(name, default)
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let inflight = list("inflight", "1,64,256")
        .iter()
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("--inflight {s}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let clients = list("clients", "java,rust,python")
        .iter()
        .map(|s| match s.as_str() {
            "java" => Ok(Kind::Java),
            "rust" => Ok(Kind::Rust),
            "python" => Ok(Kind::Python),
            other => Err(anyhow!("unknown client '{other}' (java, rust, python)")),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut clients = clients;
    if baseline_exe().is_some() {
        if let Some(i) = clients.iter().position(|k| *k == Kind::Rust) {
            // `HZCACHE_BENCH_BASELINE_FIRST=1` runs the baseline before the build under test,
            // so that alternating runs cancel any advantage of going first or second.
            let first = std::env::var_os("HZCACHE_BENCH_BASELINE_FIRST").is_some_and(|v| v == "1");
            clients.insert(if first { i } else { i + 1 }, Kind::RustBaseline);
        }
    }
    let ops = list("ops", "set,get")
        .iter()
        .map(|s| s.parse::<Op>())
        .collect::<Result<Vec<_>>>()?;
    let s = Settings {
        seconds: args.number_or("seconds", 4.0)?,
        warmup: args.number_or("warmup", 2.0)?,
        inflight,
        clients,
        ops,
        keys: args.number_or("keys", 10_000)?,
        value_bytes: args.number_or("value-bytes", 1024)?,
    };
    if s.inflight.is_empty() || s.inflight.contains(&0) || s.keys == 0 || s.seconds <= 0.0 {
        bail!("--inflight values and --keys must be positive, --seconds > 0");
    }
    Ok(s)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `HZCACHE_BENCH_BASELINE`: path of an `hzcache-bench` built from other code (e.g. the
/// commit before a change, copied aside), whose Rust runner gets a row of its own, right after
/// the build under test's. Same-run
/// comparisons are the only ones this noisy, shared machine supports.
fn baseline_exe() -> Option<PathBuf> {
    std::env::var_os("HZCACHE_BENCH_BASELINE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn java() -> String {
    std::env::var("HZCACHE_JAVA").unwrap_or_else(|_| "java".into())
}

/// Compiles `benchmarks/client/java/HzBench.java` against the member jar into `target/bench/java/`
/// (again only when the source is newer than the class).
fn compile_java(jar: &Path) -> Result<PathBuf> {
    let source = root().join("benchmarks/client/java/HzBench.java");
    let out = target_dir().join("bench/java");
    let class = out.join("HzBench.class");
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((mtime(&class), mtime(&source)), (Some(c), Some(s)) if c >= s);
    if !fresh {
        fs::create_dir_all(&out)?;
        let javac = std::env::var("HZCACHE_JAVAC").unwrap_or_else(|_| "javac".into());
        let status = Command::new(&javac)
            .arg("-cp")
            .arg(jar)
            .arg("-d")
            .arg(&out)
            .arg(&source)
            .status()
            .with_context(|| format!("running {javac} (a JDK 17+ is needed)"))?;
        if !status.success() {
            bail!("{javac} failed on {}", source.display());
        }
    }
    Ok(out)
}

/// Starts one member, like the test harness does, but with the JVM's full JIT and a fixed
/// heap (the harness trims both for start-up time; a benchmark wants the steady state).
fn start_member(jar: &Path) -> Result<(Process, u16, String)> {
    let port = free_port();
    let cluster = unique("hzcache-bench");
    let template = fs::read_to_string(root().join("deploy/local/member.yaml.tmpl"))?;
    let yaml = template
        .replace("{{CLUSTER_NAME}}", &cluster)
        .replace("{{PORT}}", &port.to_string())
        .replace("{{MEMBER_LIST}}", &format!("          - 127.0.0.1:{port}"));
    let dir = target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let config = dir.join(format!("member-{port}.yaml"));
    fs::write(&config, yaml)?;
    let mut cmd = Command::new(java());
    cmd.arg(format!("-Dhazelcast.config={}", config.display()))
        .arg("-Dhazelcast.local.localAddress=127.0.0.1")
        .arg("-Djava.net.preferIPv4Stack=true")
        .args(["-Xms512m", "-Xmx512m"])
        .arg("-cp")
        .arg(jar)
        .arg("com.hazelcast.core.server.HazelcastMemberStarter");
    let mut process = Process::spawn("bench-member", &mut cmd)?;
    let needle = format!("127.0.0.1]:{port} is STARTED");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !process.log_text().contains(&needle) {
        check_interrupted()?;
        if !process.is_running() {
            bail!("the member exited at start-up:\n{}", process.tail(40));
        }
        if Instant::now() > deadline {
            bail!(
                "the member did not start within 120 s:\n{}",
                process.tail(40)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((process, port, cluster))
}

/// Stores every key once (so gets hit), then keeps the member busy for a few seconds so its
/// JIT has warmed up before the first measured cell.
fn fill_and_warm(member: &str, cluster: &str, map: &str, s: &Settings) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = runner::connect(member, cluster).await?;
        let map = client.map(map);
        let keys = std::sync::Arc::new(runner::keys(s.keys));
        let value = runner::value(s.value_bytes);
        let until = Instant::now() + Duration::from_secs(5);
        let mut tasks = Vec::new();
        for t in 0..64usize {
            let (map, keys, value) = (map.clone(), keys.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = t;
                let mut round = 0;
                while round == 0 || Instant::now() < until {
                    if i >= keys.len() {
                        i = t;
                        round += 1;
                        continue;
                    }
                    if round == 0 {
                        map.set(&keys[i], &value, Ttl::MapDefault).await?;
                    } else {
                        map.get(&keys[i]).await?;
                    }
                    i += 64;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        client.shutdown();
        Ok(())
    })
}

struct Cell {
    kind: Kind,
    op: Op,
    inflight: usize,
    ops_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
    /// Client process CPU time per operation in the measured window, µs.
    cpu_us_per_op: f64,
    peak_rss_kb: u64,
}

/// Runs one cell as its own process and reads its JSON line.
fn run_cell(cmd: &mut Command, kind: Kind, op: Op, inflight: usize, s: &Settings) -> Result<Cell> {
    let mut process = Process::spawn(&format!("bench-{}", kind.name()), cmd)?;
    let limit = Duration::from_secs_f64(s.warmup + s.seconds + 90.0);
    let started = Instant::now();
    while process.is_running() {
        check_interrupted()?;
        if started.elapsed() > limit {
            bail!(
                "{} did not finish within {limit:?}:\n{}",
                kind.name(),
                process.tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = process.log_text();
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with('{') && l.contains("\"ops\""))
        .ok_or_else(|| anyhow!("{} printed no result:\n{}", kind.name(), process.tail(30)))?;
    let v: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("{} printed an unreadable result: {line}", kind.name()))?;
    let int = |name: &str| v.get(name).and_then(|x| x.as_u64()).unwrap_or(0);
    let seconds = v
        .get("seconds")
        .and_then(|x| x.as_f64())
        .unwrap_or(s.seconds);
    let cpu_s = v.get("cpu_s").and_then(|x| x.as_f64()).unwrap_or(0.0);
    let ops = int("ops");
    Ok(Cell {
        kind,
        op,
        inflight,
        ops_per_s: ops as f64 / seconds,
        p50_us: int("p50_us"),
        p99_us: int("p99_us"),
        errors: int("errors"),
        cpu_us_per_op: if ops > 0 {
            cpu_s * 1e6 / ops as f64
        } else {
            0.0
        },
        peak_rss_kb: int("peak_rss_kb"),
    })
}

fn print_table(cells: &[Cell]) {
    println!(
        "\n{:<15} {:<4} {:>9} {:>9} {:>8} {:>8} {:>8} {:>11} {:>10} {:>6}",
        "client",
        "op",
        "in flight",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "vs java",
        "CPU µs/op",
        "peak RSS",
        "errors"
    );
    for c in cells {
        let java = cells
            .iter()
            .find(|j| j.kind == Kind::Java && j.op == c.op && j.inflight == c.inflight)
            .map(|j| j.ops_per_s)
            .filter(|j| *j > 0.0);
        let ratio = java.map_or("-".to_string(), |j| format!("{:.2}", c.ops_per_s / j));
        println!(
            "{:<15} {:<4} {:>9} {:>9.0} {:>8} {:>8} {:>8} {:>11.1} {:>6} MiB {:>6}",
            c.kind.name(),
            c.op.name(),
            c.inflight,
            c.ops_per_s,
            c.p50_us,
            c.p99_us,
            ratio,
            c.cpu_us_per_op,
            c.peak_rss_kb / 1024,
            c.errors
        );
    }
}

/// The target: hzcache's client at least as fast as the Java client at 64 in flight.
fn print_verdict(cells: &[Cell]) {
    for op in [Op::Get, Op::Set] {
        let find = |k: Kind| {
            cells
                .iter()
                .find(|c| c.kind == k && c.op == op && c.inflight == 64)
        };
        if let (Some(r), Some(j)) = (find(Kind::Rust), find(Kind::Java)) {
            if j.ops_per_s > 0.0 {
                let ratio = r.ops_per_s / j.ops_per_s;
                println!(
                    "target {} at 64 in flight (hzcache >= java): {:.2}x -> {}",
                    op.name(),
                    ratio,
                    if ratio >= 1.0 { "met" } else { "NOT met" }
                );
            }
        }
    }
    let rust_peak = cells
        .iter()
        .filter(|c| c.kind == Kind::Rust)
        .map(|c| c.peak_rss_kb)
        .max();
    let java_peak = cells
        .iter()
        .filter(|c| c.kind == Kind::Java)
        .map(|c| c.peak_rss_kb)
        .max();
    if let Some(r) = rust_peak {
        print!("hzcache client process peak RSS (VmHWM): {} KiB", r);
        if let Some(j) = java_peak {
            print!("; java client process: {} KiB", j);
        }
        println!();
    }
}

pub fn run(args: Args) -> Result<()> {
    catch_signals();
    let s = parse(&args)?;
    let jar = hazelcast_jar()?;
    let python = if s.clients.contains(&Kind::Python) {
        Some(python_bin()?)
    } else {
        None
    };
    let classes = if s.clients.contains(&Kind::Java) {
        Some(compile_java(&jar)?)
    } else {
        None
    };
    let me = std::env::current_exe()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "hzcache-bench: {} B values, {} keys, {} s warm-up + {} s measured per cell, in flight {:?}",
        s.value_bytes, s.keys, s.warmup, s.seconds, s.inflight
    );
    println!(
        "machine: {cores} cores, shared by the member (JVM) and the client under test: \
         numbers are relative, compare the ratios"
    );

    let (mut member, port, cluster) = start_member(&jar)?;
    let address = format!("127.0.0.1:{port}");
    let map = unique("bench");
    println!(
        "member 127.0.0.1:{port} cluster {cluster} (logs in {})",
        hzcache_e2e::run_dir().display()
    );
    fill_and_warm(&address, &cluster, &map, &s)?;

    let mut cells = Vec::new();
    let started = SystemTime::now();
    for &op in &s.ops {
        for &inflight in &s.inflight {
            for &kind in &s.clients {
                check_interrupted()?;
                let common = [
                    "--member".to_string(),
                    address.clone(),
                    "--cluster".into(),
                    cluster.clone(),
                    "--map".into(),
                    map.clone(),
                    "--op".into(),
                    op.name().into(),
                    "--inflight".into(),
                    inflight.to_string(),
                    "--seconds".into(),
                    s.seconds.to_string(),
                    "--warmup".into(),
                    s.warmup.to_string(),
                    "--value-bytes".into(),
                    s.value_bytes.to_string(),
                    "--keys".into(),
                    s.keys.to_string(),
                ];
                let mut cmd = match kind {
                    Kind::Rust | Kind::RustBaseline => {
                        let exe = match kind {
                            Kind::RustBaseline => baseline_exe().unwrap_or_else(|| me.clone()),
                            _ => me.clone(),
                        };
                        let mut c = Command::new(exe);
                        c.arg("client");
                        c
                    }
                    Kind::Java => {
                        let mut c = Command::new(java());
                        let cp = format!(
                            "{}:{}",
                            classes.as_deref().unwrap_or(Path::new(".")).display(),
                            jar.display()
                        );
                        // On 2 cores the common pool's default parallelism is 1, and Hazelcast
                        // then runs every future's completion stage on a new thread (its
                        // ConcurrencyUtil default async executor): ~5 000 ops/s whatever the
                        // in-flight count. Parallelism 2 is what a Java user would set; it keeps
                        // the baseline honest.
                        c.args([
                            "-Xmx512m",
                            "-Djava.net.preferIPv4Stack=true",
                            "-Djava.util.concurrent.ForkJoinPool.common.parallelism=2",
                            "-cp",
                        ])
                        .arg(cp)
                        .arg("HzBench");
                        c
                    }
                    Kind::Python => {
                        let mut c = Command::new(python.as_deref().unwrap_or(Path::new("python3")));
                        c.arg(root().join("benchmarks/client/python/hz_bench.py"));
                        c
                    }
                };
                cmd.args(&common);
                let cell = run_cell(&mut cmd, kind, op, inflight, &s)?;
                println!(
                    "  {:<15} {} {:>3} in flight: {:>9.0} ops/s  p50 {:>6} µs  p99 {:>6} µs  \
                     client CPU {:.1} µs/op",
                    kind.name(),
                    op.name(),
                    inflight,
                    cell.ops_per_s,
                    cell.p50_us,
                    cell.p99_us,
                    cell.cpu_us_per_op
                );
                cells.push(cell);
            }
        }
    }
    let (member_peak, member_now) = rss_kb(Some(member.pid()));
    print_table(&cells);
    println!();
    print_verdict(&cells);
    println!(
        "member RSS: {member_now} KiB now, {member_peak} KiB peak (JVM, -Xmx512m); cells took {:.0} s",
        started.elapsed().map_or(0.0, |d| d.as_secs_f64())
    );
    member.stop(Duration::from_secs(5));
    Ok(())
}
