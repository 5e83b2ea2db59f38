//! The daemons this crate starts itself (nginx, Varnish) and the clean-up that no run may
//! skip: on a normal end, a failed start, a panic or Ctrl-C/SIGTERM, every master process
//! and every worker it forked is stopped, and the harness's own exit hook then kills the
//! Envoys, companions and the Hazelcast member.
//!
//! nginx and Varnish fork workers that outlive a master killed with SIGKILL, so stopping one
//! is: note its descendants, SIGTERM the master (both stop their workers on it), wait, then
//! SIGKILL whatever of the noted processes is left.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use hzcache_e2e::Process;

/// Set once a signal has come: nothing new is started after it (a case thread would
/// otherwise take the daemons it just lost for crashes and start them again).
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether the run is being stopped by a signal.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Masters of the daemons still running, for the signal handler.
static DAEMONS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Folders of this run still in place (configs, cache files), for the signal handler.
static FOLDERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Notes a folder the signal handler removes if the run is interrupted.
pub fn track_folder(dir: &Path) {
    FOLDERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(dir.to_path_buf());
}

/// Forgets a folder removed the ordinary way.
pub fn untrack_folder(dir: &Path) {
    FOLDERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|d| d != dir);
}

/// How long a master gets to stop its workers after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// A master process and its workers; stopped, workers included, when dropped.
pub struct Daemon {
    process: Process,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Daemon> {
        // Under the lock, so the signal handler either sees this daemon or stops it from
        // starting.
        let mut daemons = lock();
        if stopping() {
            anyhow::bail!("not starting {name}: the run is being stopped");
        }
        let process = Process::spawn(name, cmd)?;
        daemons.push(process.pid());
        Ok(Daemon { process })
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.process.pid();
        let family = descendants(pid);
        // Process::stop sends SIGTERM, waits, SIGKILLs and reaps the master.
        self.process.stop(GRACE);
        kill_all(&family);
        lock().retain(|p| *p != pid);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<u32>> {
    DAEMONS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every process below `pid` (children, their children, …), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and
            // parentheses, so read after the last ')'.
            if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) {
                if let Some(ppid) = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    parents.push((p, ppid));
                }
            }
        }
    }
    let mut found: HashSet<u32> = HashSet::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, ppid) in &parents {
            if *ppid == parent && found.insert(*child) {
                frontier.push(*child);
            }
        }
    }
    found.into_iter().collect()
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

fn kill_all(pids: &[u32]) {
    for pid in pids {
        if alive(*pid) {
            // SAFETY: kill(2) on a process this run started (noted as a descendant of our
            // own child before that child was stopped).
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Stops every daemon still registered: what the signal handler does before exiting.
fn stop_all_daemons() {
    let masters = {
        let daemons = lock();
        STOPPING.store(true, Ordering::SeqCst);
        daemons.clone()
    };
    let mut family: Vec<u32> = Vec::new();
    for m in &masters {
        family.extend(descendants(*m));
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(*m as i32, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && masters.iter().any(|m| alive(*m)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    family.extend(masters);
    kill_all(&family);
    let folders = FOLDERS.lock().map(|f| f.clone()).unwrap_or_default();
    for dir in folders {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (so in every thread started after it)
/// and starts one thread that waits for them: it stops the daemons and exits, which runs the
/// harness's exit hook for everything else. Call first thing in `main`. Children are not
/// affected: `std::process::Command` clears the signal mask in the child. SIGINT and SIGTERM
/// are set back to their default first: a shell starts background jobs with SIGINT ignored,
/// and an ignored signal never reaches `sigwait`.
pub fn handle_signals() {
    // SAFETY: resetting two dispositions, then plain sigset manipulation on a zeroed set.
    let set = unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on a set blocked in every thread.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc == 0 {
            eprintln!("compare: signal {sig}: stopping everything this run started");
            stop_all_daemons();
            std::process::exit(128 + sig);
        }
    });
}
