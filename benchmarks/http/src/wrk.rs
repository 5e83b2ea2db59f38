//! The load generator: Debian's `wrk`, the same binary and settings (`-t1 -cC -dDs
//! --latency`) for every scenario; a fixed URL for the 50-byte and 16 KiB runs, and
//! config/zipf.lua for the Zipf key set. Its text output is parsed here.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// What one wrk run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

/// Runs wrk against `url` for at most `seconds` (a Zipf script may stop earlier).
pub fn run(
    connections: u32,
    seconds: f64,
    url: &str,
    script: Option<(&Path, &[String])>,
) -> Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{connections}")])
        .arg(format!("-d{}s", seconds.ceil().max(1.0) as u64))
        .args(["--latency", "--timeout", "5s"]);
    if let Some((lua, _)) = script {
        cmd.arg("-s").arg(lua);
    }
    cmd.arg(url);
    if let Some((_, args)) = script {
        cmd.arg("--").args(args);
    }
    let out = cmd
        .output()
        .context("running wrk (Debian package wrk; `make bench-http` installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

/// `300.00us`, `1.20ms`, `2.00s` → microseconds.
fn duration_us(s: &str) -> Option<f64> {
    let (num, mul) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * mul)
}

pub fn parse(text: &str) -> Result<WrkResult> {
    let mut r = WrkResult::default();
    let mut have = (false, false, false, false);
    for line in text.lines().map(str::trim) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["50%", v] => {
                r.p50_us = duration_us(v).context("p50")?;
                have.0 = true;
            }
            ["99%", v] => {
                r.p99_us = duration_us(v).context("p99")?;
                have.1 = true;
            }
            [n, "requests", "in", t, ..] => {
                r.requests = n.parse().context("request count")?;
                r.seconds = duration_us(t.trim_end_matches(',')).context("run time")? / 1e6;
                have.2 = true;
            }
            ["Requests/sec:", v] => {
                r.rps = v.parse().context("Requests/sec")?;
                have.3 = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                r.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if have != (true, true, true, true) {
        bail!("missing fields in wrk output");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let text = "Running 2s test @ http://127.0.0.1:1234/b50
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   543.21us  100.00us   5.00ms   90.00%
    Req/Sec    58.00k     1.00k   60.00k    80.00%
  Latency Distribution
     50%  520.00us
     75%  600.00us
     90%  700.00us
     99%    1.25ms
  116000 requests in 2.00s, 20.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  57999.50
Transfer/sec:     10.00MB
";
        let r = parse(text).unwrap();
        assert_eq!(r.requests, 116000);
        assert_eq!(r.seconds, 2.0);
        assert_eq!(r.rps, 57999.5);
        assert_eq!(r.p50_us, 520.0);
        assert_eq!(r.p99_us, 1250.0);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.socket_errors, 3);
    }

    #[test]
    fn incomplete_output_is_an_error() {
        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }
}
