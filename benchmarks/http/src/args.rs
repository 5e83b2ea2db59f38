//! The benchmark's command line and its fixed sets: the systems under test (`SCENARIOS`), the
//! workloads and the L1 settings of the "L1 on" scenario.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hzcache_e2e::root;

/// One system under test.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub id: &'static str,
    pub label: &'static str,
    /// Whether it runs the Zipf key set too (systems that cache, and the uncached baseline).
    pub zipf: bool,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "direct",
        label: "Envoy direct_response",
        zipf: false,
    },
    Scenario {
        id: "proxy",
        label: "Envoy -> origin, no cache",
        zipf: true,
    },
    Scenario {
        id: "envoy-cache",
        label: "Envoy cache filter, hits",
        zipf: true,
    },
    Scenario {
        id: "hz-l1",
        label: "hzcache L1 hits",
        zipf: true,
    },
    Scenario {
        id: "hz-l2",
        label: "hzcache L2 hits (L1 off)",
        zipf: true,
    },
    Scenario {
        id: "hz-norule",
        label: "hzcache, no matching rule",
        zipf: false,
    },
    Scenario {
        id: "varnish",
        label: "Varnish, hits",
        zipf: true,
    },
    Scenario {
        id: "nginx",
        label: "nginx proxy_cache, hits",
        zipf: true,
    },
];

pub const WORKLOADS: &[&str] = &["50B", "16KiB", "zipf"];

/// The L1 settings of the "L1 on" scenario, and the one that turns L1 off.
pub const L1_ON: (u64, u64, u64) = (4096, 65536, 5000);

pub struct Args {
    pub rounds: usize,
    pub duration: f64,
    pub warmup: f64,
    pub connections: u32,
    pub scenarios: Vec<Scenario>,
    pub workloads: Vec<&'static str>,
    pub zipf_requests: u64,
    pub zipf_keys: u64,
    pub zipf_s: f64,
    pub out_dir: PathBuf,
    pub docs: bool,
    pub quick: bool,
    pub command: String,
}

pub fn parse_args() -> Result<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut a = Args {
        rounds: 3,
        duration: 6.0,
        warmup: 1.0,
        connections: 32,
        scenarios: SCENARIOS.to_vec(),
        workloads: WORKLOADS.to_vec(),
        zipf_requests: 40_000,
        zipf_keys: 100_000,
        zipf_s: 0.99,
        out_dir: root().join("docs"),
        docs: true,
        quick: false,
        command: std::iter::once("hzcache-bench-http".to_string())
            .chain(argv.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    if argv.iter().any(|x| x == "--quick") {
        // A smoke run: every scenario once, briefly; results under target/, docs untouched.
        a.quick = true;
        a.rounds = 1;
        a.duration = 2.0;
        a.warmup = 1.0;
        a.zipf_requests = 5_000;
        a.out_dir = root().join("target/bench-http");
        a.docs = false;
    }
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => {}
            "--rounds" => a.rounds = value()?.parse()?,
            "--duration" => a.duration = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--connections" => a.connections = value()?.parse()?,
            "--zipf-requests" => a.zipf_requests = value()?.parse()?,
            "--zipf-keys" => a.zipf_keys = value()?.parse()?,
            "--zipf-s" => a.zipf_s = value()?.parse()?,
            "--out-dir" => a.out_dir = PathBuf::from(value()?),
            "--no-docs" => a.docs = false,
            "--scenarios" => {
                let v = value()?;
                a.scenarios = Vec::new();
                for w in v.split(',').map(str::trim) {
                    match SCENARIOS.iter().find(|s| s.id == w) {
                        Some(s) => a.scenarios.push(*s),
                        None => bail!(
                            "unknown scenario {w:?}; known: {}",
                            SCENARIOS.iter().map(|s| s.id).collect::<Vec<_>>().join(",")
                        ),
                    }
                }
            }
            "--workloads" => {
                let v = value()?;
                a.workloads = Vec::new();
                for w in v.split(',').map(str::trim) {
                    match WORKLOADS.iter().find(|x| **x == w) {
                        Some(x) => a.workloads.push(x),
                        None => bail!("unknown workload {w:?}; known: {}", WORKLOADS.join(",")),
                    }
                }
            }
            "-h" | "--help" => {
                println!(
                    "hzcache-bench-http [--quick] [--rounds 3] [--duration 6] [--warmup 1] \
                     [--connections 32] [--scenarios {}] [--workloads {}] \
                     [--zipf-requests 40000] [--zipf-keys 100000] [--zipf-s 0.99] \
                     [--out-dir docs] [--no-docs]",
                    SCENARIOS.iter().map(|s| s.id).collect::<Vec<_>>().join(","),
                    WORKLOADS.join(",")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if a.rounds == 0 || a.duration <= 0.0 {
        bail!("--rounds and --duration must be positive");
    }
    Ok(a)
}
