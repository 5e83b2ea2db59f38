//! The Rust side of one benchmark cell: hzcache's own Hazelcast client keeps `--inflight`
//! operations outstanding (one tokio task each, looping on `map.get` or `map.set`), warms up,
//! measures, and prints one JSON line like the Java and Python runners do.
//!
//! Counting rule, the same in all three runners: an operation counts when it started after the
//! warm-up and finished before the end of the measurement window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use hazelcast_client::{Client, ClientConfig, Map, Ttl, Value};

use crate::args::{rss_kb, Args, Op};
use crate::histogram::Histogram;

pub const RUNNER_OPTIONS: &[&str] = &[
    "member",
    "cluster",
    "map",
    "op",
    "inflight",
    "seconds",
    "warmup",
    "value-bytes",
    "keys",
];

/// The key names all runners use: `k-0` … `k-(keys-1)`.
pub fn keys(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("k-{i}")).collect()
}

pub fn value(bytes: usize) -> Value {
    Value::Bytes(Bytes::from(
        (0..bytes).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    ))
}

pub async fn connect(member: &str, cluster: &str) -> Result<Client> {
    let client = Client::start(ClientConfig {
        cluster_name: cluster.to_string(),
        addresses: vec![member.to_string()],
        client_name: "hzcache-bench".into(),
        ..ClientConfig::default()
    });
    if !client.wait_connected(Duration::from_secs(30)).await {
        bail!("no connection to {member} (cluster {cluster}) within 30 s");
    }
    Ok(client)
}

/// CPU time (user + system, all threads) this process has used so far.
fn process_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A small per-task random source (xorshift64): picking a key must cost next to nothing.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

struct Shared {
    map: Map,
    keys: Vec<String>,
    value: Value,
    op: Op,
    measure_from: Instant,
    end: Instant,
    histogram: Histogram,
    errors: AtomicU64,
}

async fn worker(shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    loop {
        let start = Instant::now();
        if start >= shared.end {
            return;
        }
        let key = &shared.keys[rng.next(shared.keys.len())];
        let ok = match shared.op {
            Op::Get => shared.map.get(key).await.is_ok(),
            Op::Set => shared
                .map
                .set(key, &shared.value, Ttl::MapDefault)
                .await
                .is_ok(),
        };
        let done = Instant::now();
        if !ok {
            shared.errors.fetch_add(1, Ordering::Relaxed);
        } else if start >= shared.measure_from && done <= shared.end {
            shared
                .histogram
                .record(done.duration_since(start).as_micros() as u64);
        }
    }
}

/// `hzcache-bench client --member … --op get|set --inflight N --seconds S …`
pub fn run(args: Args) -> Result<()> {
    args.only(RUNNER_OPTIONS)?;
    let member = args.text("member")?;
    let cluster = args.text("cluster")?;
    let map_name = args.text_or("map", "bench");
    let op: Op = args.text("op")?.parse()?;
    let inflight: usize = args.number("inflight")?;
    let seconds: f64 = args.number("seconds")?;
    let warmup: f64 = args.number_or("warmup", 2.0)?;
    let value_bytes: usize = args.number_or("value-bytes", 1024)?;
    let key_count: usize = args.number_or("keys", 10_000)?;
    if inflight == 0 || key_count == 0 || seconds <= 0.0 || warmup < 0.0 {
        bail!("--inflight and --keys must be positive, --seconds > 0, --warmup >= 0");
    }

    // The companion's own runtime shape: tokio's multi-thread scheduler, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = connect(&member, &cluster).await?;
        let began = Instant::now();
        let measure_from = began + Duration::from_secs_f64(warmup);
        let end = measure_from + Duration::from_secs_f64(seconds);
        let shared = Arc::new(Shared {
            map: client.map(&map_name),
            keys: keys(key_count),
            value: value(value_bytes),
            op,
            measure_from,
            end,
            histogram: Histogram::default(),
            errors: AtomicU64::new(0),
        });
        let cpu = tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let from = process_cpu_seconds();
            tokio::time::sleep_until(end.into()).await;
            process_cpu_seconds() - from
        });
        let tasks: Vec<_> = (0..inflight)
            .map(|i| tokio::spawn(worker(shared.clone(), i as u64 + 1)))
            .collect();
        for t in tasks {
            t.await?;
        }
        let cpu_s = cpu.await?;
        let (peak_kb, rss_now_kb) = rss_kb(None);
        let h = &shared.histogram;
        let line = serde_json::json!({
            "client": "rust",
            "op": op.name(),
            "inflight": inflight,
            "ops": h.count(),
            "seconds": seconds,
            "p50_us": h.percentile(0.50),
            "p99_us": h.percentile(0.99),
            "errors": shared.errors.load(Ordering::Relaxed),
            "cpu_s": (cpu_s * 1000.0).round() / 1000.0,
            "rss_kb": rss_now_kb,
            "peak_rss_kb": peak_kb,
        });
        println!("{line}");
        client.shutdown();
        Ok(())
    })
}
