//! `hzcache-bench`: get and set of 1 KiB values at 1, 64 and 256 operations in flight against
//! one real Hazelcast member, for hzcache's own client, the official Java client and the
//! official Python client, in one run, with ratios to the Java client (see
//! `docs/benchmarks.md`).
//!
//! - `hzcache-bench [--seconds S] [--warmup W] [--inflight 1,64,256] [--clients java,rust,python]
//!   [--ops set,get] [--keys N] [--value-bytes B]` runs the whole benchmark.
//! - `hzcache-bench client --member HOST:PORT --cluster NAME --op get|set --inflight N
//!   --seconds S …` is the Rust runner of one cell (the orchestrator starts it).

mod args;
mod histogram;
mod orchestrator;
mod runner;

use args::Args;

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let result = if argv.first().map(String::as_str) == Some("client") {
        argv.remove(0);
        Args::parse(argv).and_then(runner::run)
    } else {
        Args::parse(argv).and_then(orchestrator::run)
    };
    if let Err(e) = result {
        eprintln!("hzcache-bench: {e:#}");
        // Exit through `exit` so the harness's exit hook kills anything still running.
        std::process::exit(1);
    }
}
