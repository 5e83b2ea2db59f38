//! `make faults`: resilience you can prove. Starts the real stack (3 Hazelcast members with
//! backups, 2 companions, 2 Envoys with the filter, a controllable origin) under a bounded steady
//! load with per-request outcomes, breaks one thing at a time (a companion killed or frozen, a
//! member killed or frozen, the whole cluster restarted, the origin failing or hanging, hostile
//! requests, a 5 MB body, a stampede), and checks the targets of issue 8. docs/faults.md has
//! the scenarios, the targets and the latest table.

pub mod hostile;
pub mod load;
pub mod origin;
pub mod report;
pub mod runtime;
pub mod scenarios;
pub mod stack;

use std::time::Instant;

use anyhow::Result;

pub use report::ScenarioResult;
pub use runtime::rt;
pub use scenarios::Options;

/// Starts the stack (3 members, 2 nodes) and runs `names` in order, returning one result per
/// scenario. Run it on a thread that lives until it returns (Envoy is tied to the thread that
/// started it). An error means the stack itself could not start.
pub fn run_suite(names: &[&str], opts: &Options) -> Result<Vec<ScenarioResult>> {
    let started = Instant::now();
    let mut stack = stack::FaultStack::start(3, 2)?;
    let mut ctx = scenarios::Ctx {
        stack: &mut stack,
        http: load::Http::new(),
        opts: opts.clone(),
    };
    let results = names.iter().map(|n| scenarios::run(&mut ctx, n)).collect();
    eprintln!("faults: suite done in {:.1?}", started.elapsed());
    Ok(results)
}
