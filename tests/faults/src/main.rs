//! `hzcache-faults [--short] [--scenario NAME[,NAME]] [--seconds N] [--rate N] [--out FILE.md]`:
//! runs the fault scenarios against the real stack, prints one table row per scenario and a
//! verdict, and exits non-zero when any target is missed (docs/faults.md).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hzcache_faults::scenarios::{ALL, SHORT};
use hzcache_faults::{report, run_suite, Options};

struct Args {
    names: Vec<String>,
    opts: Options,
    out: Option<String>,
}

fn parse() -> Result<Args> {
    let mut names: Option<Vec<String>> = None;
    let mut opts = Options::default();
    let mut short = false;
    let mut seconds = None;
    let mut rate = None;
    let mut out = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--short" => short = true,
            "--scenario" | "--scenarios" => {
                let list: Vec<String> = value()?.split(',').map(|s| s.trim().to_string()).collect();
                for n in &list {
                    if !ALL.contains(&n.as_str()) {
                        bail!("unknown scenario {n:?}; known: {}", ALL.join(", "));
                    }
                }
                names = Some(list);
            }
            "--seconds" => seconds = Some(value()?.parse::<u64>().context("--seconds N")?),
            "--rate" => rate = Some(value()?.parse::<u32>().context("--rate N")?),
            "--out" => out = Some(value()?),
            "--list" => {
                println!("{}", ALL.join("\n"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!(
                    "hzcache-faults [--short] [--scenario NAME[,NAME]] [--seconds N] [--rate REQ_PER_S] [--out FILE.md] [--list]\n\
                     scenarios: {}\nshort form: {}",
                    ALL.join(", "),
                    SHORT.join(", ")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if short {
        opts = Options::short();
    }
    if let Some(s) = seconds {
        opts.seconds = s.clamp(1, 60);
    }
    if let Some(r) = rate {
        opts.rate = r.clamp(1, 400);
    }
    let names = names.unwrap_or_else(|| {
        let list: &[&str] = if short { &SHORT } else { &ALL };
        list.iter().map(|s| s.to_string()).collect()
    });
    Ok(Args { names, opts, out })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hzcache-faults: {e:#}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let results = match run_suite(&names, &args.opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hzcache-faults: the stack did not start: {e:#}");
            return ExitCode::from(2);
        }
    };
    let table = report::table(&results);
    println!("{table}");
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name.as_str())
        .collect();
    let verdict = if failed.is_empty() {
        format!("verdict: PASS ({} scenarios)", results.len())
    } else {
        format!(
            "verdict: FAIL ({} of {} scenarios missed a target: {})",
            failed.len(),
            results.len(),
            failed.join(", ")
        )
    };
    println!("{verdict}");
    if let Some(path) = args.out {
        let text = format!(
            "Command: `{}`\n\n{table}\n{verdict}\n",
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("hzcache-faults: cannot write {path}: {e}");
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
