//! What a scenario measured, the targets it checks, and the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{ErrorKind, Family, Sample};

/// One target: met or missed, with what was measured.
#[derive(Debug, Clone)]
pub struct Check {
    pub target: String,
    pub ok: bool,
    pub measured: String,
}

/// Time to recover.
#[derive(Debug, Clone, Copy)]
pub enum Recovery {
    /// The scenario has no "ready again" moment.
    NotApplicable,
    /// From ready to the first moment after which hits were continuous on every node.
    After(Duration),
    /// Hits were not continuous by the end of the observation.
    Never { observed: Duration },
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub requests: usize,
    /// Client-visible errors that count (not excused), by kind.
    pub errors: BTreeMap<ErrorKind, usize>,
    /// Errors for requests only the failing origin could answer.
    pub excused: usize,
    pub wrong: usize,
    /// Entries checked and lost (the member-loss scenario).
    pub entries: Option<(usize, usize)>,
    /// Latency of load requests started during the fault: p50, p99, max.
    pub latency: Option<(Duration, Duration, Duration)>,
    pub recovery: Recovery,
    /// Share of fresh-key requests during the fault answered HIT.
    pub fresh_hits: Option<f64>,
    pub notes: Vec<String>,
    pub checks: Vec<Check>,
    pub elapsed: Duration,
}

impl ScenarioResult {
    pub fn new(name: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.to_string(),
            requests: 0,
            errors: BTreeMap::new(),
            excused: 0,
            wrong: 0,
            entries: None,
            latency: None,
            recovery: Recovery::NotApplicable,
            fresh_hits: None,
            notes: Vec::new(),
            checks: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// A scenario that could not run: one failed check saying why.
    pub fn broken(name: &str, why: String) -> ScenarioResult {
        let mut r = ScenarioResult::new(name);
        r.check("the scenario runs", false, why);
        r
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn check(&mut self, target: &str, ok: bool, measured: impl Into<String>) {
        self.checks.push(Check {
            target: target.to_string(),
            ok,
            measured: measured.into(),
        });
    }

    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }

    /// Counts `samples` into requests, errors (excused or not) and wrong bodies.
    pub fn count(&mut self, samples: &[Sample], excused: impl Fn(&Sample) -> bool) {
        self.requests += samples.len();
        for s in samples {
            let Some(kind) = s.error else { continue };
            if kind == ErrorKind::WrongBody {
                self.wrong += 1;
            }
            if excused(s) {
                self.excused += 1;
            } else {
                *self.errors.entry(kind).or_default() += 1;
            }
        }
    }

    /// The standard targets: no client-visible error, no wrong body.
    pub fn check_errors(&mut self) {
        let n = self.error_count();
        let by_kind = self.errors_text();
        self.check(
            "0 client-visible errors",
            n == 0,
            format!("{n} ({by_kind})"),
        );
        let w = self.wrong;
        self.check("0 wrong bodies", w == 0, w.to_string());
    }

    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "-".into();
        }
        self.errors
            .iter()
            .map(|(k, n)| format!("{} {n}", k.short()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// p50, p99 and max latency of `samples` started within `[from, to)`.
pub fn latency(
    samples: &[Sample],
    from: Duration,
    to: Duration,
) -> Option<(Duration, Duration, Duration)> {
    let mut l: Vec<Duration> = samples
        .iter()
        .filter(|s| s.start >= from && s.start < to)
        .map(|s| s.latency)
        .collect();
    if l.is_empty() {
        return None;
    }
    l.sort_unstable();
    let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.99), l[l.len() - 1]))
}

/// Share of the `family` samples started within `[from, to)` for which `good` holds, and how
/// many there were.
pub fn share(
    samples: &[Sample],
    family: Family,
    from: Duration,
    to: Duration,
    good: impl Fn(&Sample) -> bool,
) -> (f64, usize) {
    let of: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.family == family && s.start >= from && s.start < to)
        .collect();
    if of.is_empty() {
        return (0.0, 0);
    }
    let n = of.iter().filter(|s| good(s)).count();
    (n as f64 / of.len() as f64, of.len())
}

/// Time from `ready` to the first moment after which every fresh-key request on every one of
/// `nodes` nodes satisfied `good` until the end of the samples; `None` if some node's last
/// fresh request did not (or it had none after `ready`).
pub fn recovery(
    samples: &[Sample],
    nodes: usize,
    ready: Duration,
    good: impl Fn(&Sample) -> bool,
) -> Option<Duration> {
    let mut worst = Duration::ZERO;
    for node in 0..nodes {
        let mut after: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.node == node && s.family == Family::Fresh && s.start >= ready)
            .collect();
        after.sort_by_key(|s| s.start);
        let last_bad = after.iter().rposition(|s| !good(s));
        let from = match last_bad {
            None => after.first()?.start,
            Some(i) => after.get(i + 1)?.start,
        };
        worst = worst.max(from.saturating_sub(ready));
    }
    Some(worst)
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The table (Markdown), one row per scenario, then every missed target and the notes.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | requests | errors (by kind) | excused | wrong bodies | entries checked/lost | p50 | p99 | max | fresh HIT during fault | recovery | result |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let (p50, p99, max) = match r.latency {
            Some((a, b, c)) => (ms(a), ms(b), ms(c)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let entries = r.entries.map_or("-".into(), |(c, l)| format!("{c} / {l}"));
        let fresh = r
            .fresh_hits
            .map_or("-".into(), |f| format!("{:.1} %", f * 100.0));
        let recovery = match r.recovery {
            Recovery::NotApplicable => "-".to_string(),
            Recovery::After(d) => format!("{:.1} s", d.as_secs_f64()),
            Recovery::Never { observed } => {
                format!("none in {:.0} s", observed.as_secs_f64())
            }
        };
        let missed = r.checks.iter().filter(|c| !c.ok).count();
        let result = if missed == 0 {
            "pass".to_string()
        } else {
            format!("**FAIL** ({missed})")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.requests,
            r.error_count().to_string() + &format!(" ({})", r.errors_text()),
            r.excused,
            r.wrong,
            entries,
            p50,
            p99,
            max,
            fresh,
            recovery,
            result
        );
    }
    let mut details = String::new();
    for r in results {
        for c in r.checks.iter().filter(|c| !c.ok) {
            let _ = writeln!(
                details,
                "- {}: missed \"{}\": {}",
                r.name, c.target, c.measured
            );
        }
    }
    if !details.is_empty() {
        let _ = writeln!(out, "\nMissed targets:\n\n{details}");
    }
    let mut notes = String::new();
    for r in results {
        for n in &r.notes {
            let _ = writeln!(notes, "- {}: {n}", r.name);
        }
        let _ = writeln!(notes, "- {}: took {:.1} s", r.name, r.elapsed.as_secs_f64());
    }
    let _ = writeln!(out, "\nNotes:\n\n{notes}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(node: usize, start_ms: u64, cache: &str) -> Sample {
        Sample {
            start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(1),
            node,
            path: "/f/x".into(),
            family: Family::Fresh,
            status: 200,
            cache: cache.into(),
            error: None,
        }
    }

    #[test]
    fn recovery_is_the_start_of_the_last_run_of_hits_on_the_slowest_node() {
        let s = vec![
            fresh(0, 900, ""), // before ready: ignored
            fresh(0, 1100, ""),
            fresh(0, 1500, "HIT"),
            fresh(0, 1700, "HIT"),
            fresh(1, 1200, "HIT"),
            fresh(1, 1300, ""),
            fresh(1, 2500, "HIT"),
        ];
        let r = recovery(&s, 2, Duration::from_secs(1), Sample::is_hit);
        assert_eq!(r, Some(Duration::from_millis(1500)));
        let mut s2 = s.clone();
        s2.push(fresh(1, 3000, ""));
        assert_eq!(
            recovery(&s2, 2, Duration::from_secs(1), Sample::is_hit),
            None
        );
    }

    #[test]
    fn latency_quantiles() {
        let s: Vec<Sample> = (1..=100)
            .map(|i| {
                let mut x = fresh(0, i, "HIT");
                x.latency = Duration::from_millis(i);
                x
            })
            .collect();
        let (p50, p99, max) =
            latency(&s, Duration::ZERO, Duration::from_secs(1)).unwrap_or_default();
        assert_eq!(p50, Duration::from_millis(51));
        assert_eq!(p99, Duration::from_millis(99));
        assert_eq!(max, Duration::from_millis(100));
    }
}
