//! The short form of `make faults` (docs/faults.md), run by `cargo test --workspace`: the real
//! stack (3 members, 2 companions, 2 Envoys, the controllable origin) under a steady load
//! through the hostile burst, an origin hang and a companion SIGKILL and restart, each checked
//! against its targets. The whole suite runs on this test's thread: Envoy gets SIGTERM when the
//! thread that started it ends.

use hzcache_faults::scenarios::SHORT;
use hzcache_faults::{report, run_suite, Options};

#[test]
fn the_short_fault_suite_meets_every_target() {
    let results = match run_suite(&SHORT, &Options::short()) {
        Ok(r) => r,
        Err(e) => panic!("the faults stack did not start: {e:#}"),
    };
    let table = report::table(&results);
    println!("{table}");
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "fault targets missed in {failed:?}:\n{table}"
    );
}
