//! CPU time and memory of the processes under test, from /proc: utime+stime of
//! `/proc/PID/stat` and VmRSS/VmHWM of `/proc/PID/status`, summed over a process and (for
//! nginx and Varnish, which fork workers) its descendants. Sampled before and after each
//! measured run.

use std::fs;

/// One reading of a set of processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// utime + stime, in seconds.
    pub cpu_s: f64,
    /// VmRSS, KiB.
    pub rss_kb: u64,
    /// VmHWM (peak RSS over each process's life), KiB.
    pub hwm_kb: u64,
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of one process in clock ticks (fields 14 and 15 of /proc/PID/stat, counted
/// after the `(comm)` field, which may hold spaces).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    parse_cpu_ticks(&stat).unwrap_or(0)
}

pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15 → indexes 11 and 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// A `Name:   123 kB` line of /proc/PID/status, in KiB.
pub fn status_kb(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Reads `pids` (processes that are gone count as zero).
pub fn sample(pids: &[u32]) -> Sample {
    let tps = ticks_per_second();
    let mut s = Sample::default();
    for pid in pids {
        s.cpu_s += cpu_ticks(*pid) as f64 / tps;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.rss_kb += status_kb(&status, "VmRSS");
        s.hwm_kb += status_kb(&status, "VmHWM");
    }
    s
}

/// The 1-minute load average now.
pub fn load1() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (envoy (main) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    1234 567 0 0 20 0 12 0 100 2000000 3000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(1234 + 567));
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tenvoy\nVmHWM:\t   81236 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), 81236);
        assert_eq!(status_kb(status, "VmRSS"), 80000);
        assert_eq!(status_kb(status, "VmSwap"), 0);
    }
}
