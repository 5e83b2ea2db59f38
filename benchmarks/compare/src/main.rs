//! `hzcache-compare`: runs one set of HTTP-caching conformance cases (cases.rs) unchanged
//! against hzcache, Envoy's built-in cache filters, nginx and Varnish (caches.rs), all in
//! front of the same counting origin on 127.0.0.1 (origin.rs), and prints a scorecard.
//!
//! ```text
//! make compare                                   # installs nginx/varnish, builds, runs
//! cargo run -p hzcache-compare -- [--caches hzcache,nginx] [--cases stampede,range]
//!                                 [--out FILE.md] [--list]
//! ```
//!
//! The caches run side by side (one thread each), the cases of one cache one after another.
//! A cache that cannot start is scored "not available" with the reason. Everything started
//! is stopped at the end, on an error, a panic, Ctrl-C or SIGTERM (procs.rs).

mod caches;
mod cases;
mod origin;
mod procs;

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::caches::Cache;
use crate::cases::{Case, Outcome};

struct Args {
    caches: Vec<&'static str>,
    cases: Vec<String>,
    out: Option<String>,
    list: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        caches: caches::ALL.to_vec(),
        cases: Vec::new(),
        out: None,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--caches" => {
                let wanted = value()?;
                args.caches = Vec::new();
                for w in wanted.split(',').map(str::trim) {
                    match caches::ALL.iter().find(|c| **c == w) {
                        Some(c) => args.caches.push(c),
                        None => bail!("unknown cache {w:?}; known: {}", caches::ALL.join(", ")),
                    }
                }
            }
            "--cases" => args.cases = value()?.split(',').map(|s| s.trim().into()).collect(),
            "--out" => args.out = Some(value()?),
            "--list" => args.list = true,
            "-h" | "--help" => {
                println!(
                    "hzcache-compare [--caches {}] [--cases ID,ID (substrings)] [--out FILE.md] [--list]",
                    caches::ALL.join(",")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(args)
}

/// One column of the scorecard: a cache's outcomes, or why it is not available.
struct Column {
    name: &'static str,
    result: Result<Vec<Outcome>, String>,
}

fn main() -> Result<()> {
    procs::handle_signals();
    let args = parse_args()?;
    let started = Instant::now();
    let cases: Vec<Case> = cases::all()
        .into_iter()
        .filter(|c| args.cases.is_empty() || args.cases.iter().any(|w| c.id.contains(w.as_str())))
        .collect();
    if cases.is_empty() {
        bail!("no case matches {:?}", args.cases);
    }
    if args.list {
        for c in &cases {
            println!("| `{}` | {} | {} |", c.id, c.expect, c.rfc);
        }
        return Ok(());
    }

    let origin = origin::start()?;
    // Started on the main thread, which outlives every case: Envoy asks for a SIGTERM when
    // the thread that started it ends (see hzcache_e2e::stack::start_on_lasting_thread).
    let mut running: Vec<(&'static str, Result<Cache, String>)> = Vec::new();
    for name in &args.caches {
        eprintln!("compare: starting {name}");
        let started = caches::start(name, &origin).map_err(|e| format!("{e:#}"));
        if let Err(e) = &started {
            eprintln!("compare: {name} not available: {e}");
        }
        running.push((name, started));
    }
    eprintln!(
        "compare: running {} cases against {} caches",
        cases.len(),
        running.iter().filter(|(_, c)| c.is_ok()).count()
    );

    // One thread per cache; each owns its cache and stops it when its cases are done. A
    // cache whose process died during a case fails that case ("crashed") and is started
    // again for the cases after it, so one crash does not fail the rest.
    let columns: Vec<Column> = std::thread::scope(|s| {
        let handles: Vec<_> = running
            .into_iter()
            .map(|(name, cache)| {
                let (cases, origin) = (&cases, &origin);
                let handle = s.spawn(move || run_cases(name, cache?, cases, origin));
                (name, handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| Column {
                name,
                result: h
                    .join()
                    .unwrap_or_else(|_| Err("the case thread panicked".into())),
            })
            .collect()
    });

    let report = scorecard(&cases, &columns, started.elapsed().as_secs());
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {out}"))?;
        eprintln!("compare: scorecard written to {out}");
    }
    Ok(())
}

/// Runs `cases` one after another on `cache`; restarts it after a crash.
fn run_cases(
    name: &'static str,
    mut cache: Cache,
    cases: &[Case],
    origin: &hzcache_e2e::Origin,
) -> Result<Vec<Outcome>, String> {
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let t = Instant::now();
        let mut o = case.run(&cache, origin);
        // A crashing process may take a moment (writing its backtrace) to be gone; only a
        // transport error makes it worth waiting for.
        let died = o.detail.contains("error:") && {
            let deadline = Instant::now() + std::time::Duration::from_millis(1500);
            while cache.alive() && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            !cache.alive()
        };
        if died && procs::stopping() {
            return Err("stopped by a signal".into());
        }
        if died {
            o.pass = false;
            o.detail = format!(
                "CRASHED: the {name} process died during this case (log {}); {}",
                cache.log.display(),
                o.detail
            );
            // Started on this thread: an Envoy started here gets its parent-death SIGTERM
            // when the thread ends, which is after its last case anyway.
            match caches::start(name, origin) {
                Ok(fresh) => cache = fresh,
                Err(e) => {
                    eprintln!("compare: {name} could not be restarted: {e:#}");
                    return Err(format!("crashed in {} and could not restart", case.id));
                }
            }
        }
        eprintln!(
            "compare: {name:<15} {:<36} {} ({} ms) {}",
            case.id,
            if o.pass { "pass" } else { "FAIL" },
            t.elapsed().as_millis(),
            o.detail
        );
        outcomes.push(o);
    }
    Ok(outcomes)
}

/// The scorecard as Markdown: a table (case × cache), totals, then every failure's detail.
fn scorecard(cases: &[Case], columns: &[Column], secs: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| case | {} |", names(columns).join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(columns.len()));
    for (i, case) in cases.iter().enumerate() {
        let cells: Vec<&str> = columns
            .iter()
            .map(|c| match &c.result {
                Ok(o) if o[i].pass => "pass",
                Ok(_) => "**FAIL**",
                Err(_) => "n/a",
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", case.id, cells.join(" | "));
    }
    let totals: Vec<String> = columns
        .iter()
        .map(|c| match &c.result {
            Ok(o) => format!("**{}/{}**", o.iter().filter(|o| o.pass).count(), o.len()),
            Err(_) => "not available".into(),
        })
        .collect();
    let _ = writeln!(s, "| **passed** | {} |", totals.join(" | "));
    let _ = writeln!(s, "\n({} cases, {} s)\n", cases.len(), secs);
    for c in columns {
        match &c.result {
            Err(e) => {
                let _ = writeln!(s, "- **{}**: not available: {e}", c.name);
            }
            Ok(outcomes) => {
                for (case, o) in cases.iter().zip(outcomes) {
                    if !o.pass {
                        let _ = writeln!(s, "- **{}** / `{}`: {}", c.name, case.id, o.detail);
                    }
                }
            }
        }
    }
    s
}

fn names(columns: &[Column]) -> Vec<&str> {
    columns.iter().map(|c| c.name).collect()
}
