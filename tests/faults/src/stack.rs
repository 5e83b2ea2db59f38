//! The stack the scenarios break: a Hazelcast cluster of real members (backup-count 1, from
//! `deploy/local/member.yaml.tmpl`), two companions on all members, two Envoys each calling out to
//! its own companion, and the controllable origin. A companion can be killed and started again
//! on the same port (the Envoy in front of it is configured with that port).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hzcache_e2e::cluster::Cluster;
use hzcache_e2e::{
    callout_secret, companion_bin, demo_filter_config, free_port, loopback, maps_of, probe_get,
    wait_until, Companion, Envoy, Process, DEMO_MAPS,
};

use crate::origin::FaultOrigin;

/// One Envoy and the companion it calls out to (`None` while killed).
pub struct Node {
    pub envoy: Envoy,
    pub companion: Option<Companion>,
    pub companion_port: u16,
}

impl Node {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.port)
    }
}

pub struct FaultStack {
    pub cluster: Cluster,
    pub origin: FaultOrigin,
    pub nodes: Vec<Node>,
    companion_args: Vec<String>,
}

impl FaultStack {
    /// Starts `members` members, then `nodes` companion + Envoy pairs with the demo's filter
    /// configuration (whose catch-all rule caches by path with the origin's own lifetimes).
    /// Must run on a thread that outlives the stack: Envoy gets SIGTERM when the thread that
    /// started it ends.
    pub fn start(members: usize, nodes: usize) -> Result<FaultStack> {
        let started = Instant::now();
        let origin = FaultOrigin::start()?;
        let cluster = Cluster::start(members)?;
        let filter_config = demo_filter_config()?;
        let companion_args: Vec<String> = maps_of(&filter_config)
            .into_iter()
            .flat_map(|m| ["--map".to_string(), m])
            .collect();
        let mut stack = FaultStack {
            cluster,
            origin,
            nodes: Vec::new(),
            companion_args,
        };
        for _ in 0..nodes {
            let port = free_port();
            let companion = stack.spawn_companion(port)?;
            companion.wait_ready(Duration::from_secs(30))?;
            let envoy = Envoy::start(&filter_config, stack.origin.port, port)?;
            stack.nodes.push(Node {
                envoy,
                companion: Some(companion),
                companion_port: port,
            });
        }
        eprintln!(
            "faults: stack of {members} member(s), {nodes} companion(s) and {nodes} Envoy(s) up in {:.1?}",
            started.elapsed()
        );
        Ok(stack)
    }

    pub fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(Node::base).collect()
    }

    /// A companion for this stack's cluster and origin on `port` (what
    /// `hzcache_e2e::Companion::start` does, but on a port of our choosing, so a restarted
    /// companion is where its Envoy expects it). Waits for `/healthz`.
    fn spawn_companion(&self, port: u16) -> Result<Companion> {
        let mut last = String::new();
        // The port of a killed companion may take a moment to be free again.
        for _ in 0..20 {
            let mut cmd = Command::new(companion_bin()?);
            cmd.arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--cluster-name")
                .arg(&self.cluster.name)
                .arg("--hazelcast")
                .arg(self.cluster.addresses().join(","))
                .arg("--origin")
                .arg(self.origin.origin_arg())
                .args(&self.companion_args)
                .env(
                    "RUST_LOG",
                    std::env::var("HZCACHE_TEST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .env("HZCACHE_CALLOUT_SECRET", callout_secret())
                .env("HZCACHE_MAPS", DEMO_MAPS);
            let mut process = Process::spawn("companion", &mut cmd)?;
            let addr = loopback(port);
            let healthy = wait_until("companion /healthz", Duration::from_secs(20), || {
                probe_get(addr, "/healthz").is_some_and(|(s, _)| s == 200) || !process.is_running()
            });
            if healthy.is_ok() && process.is_running() {
                return Ok(Companion { process, port });
            }
            last = process.tail(10);
            process.kill();
            std::thread::sleep(Duration::from_millis(250));
        }
        bail!("companion on port {port} would not start:\n{last}")
    }

    /// Kills node `i`'s companion with SIGKILL.
    pub fn kill_companion(&mut self, i: usize) {
        if let Some(mut c) = self.nodes.get_mut(i).and_then(|n| n.companion.take()) {
            c.process.kill();
        }
    }

    /// Starts node `i`'s companion again on its port; returns once `/readyz` is 200.
    pub fn restart_companion(&mut self, i: usize) -> Result<()> {
        let Some(port) = self.nodes.get(i).map(|n| n.companion_port) else {
            bail!("no node {i}");
        };
        let companion = self.spawn_companion(port)?;
        companion.wait_ready(Duration::from_secs(30))?;
        if let Some(n) = self.nodes.get_mut(i) {
            n.companion = Some(companion);
        }
        Ok(())
    }

    pub fn signal_companion(&self, i: usize, sig: i32) {
        if let Some(c) = self.nodes.get(i).and_then(|n| n.companion.as_ref()) {
            c.process.signal(sig);
        }
    }

    pub fn signal_member(&self, i: usize, sig: i32) {
        if let Some(Some(m)) = self.cluster.members.get(i) {
            m.process.signal(sig);
        }
    }

    /// Whether every companion answers `/readyz` 200 now.
    pub fn companions_ready(&self) -> bool {
        self.nodes.iter().all(|n| {
            n.companion.is_some()
                && probe_get(loopback(n.companion_port), "/readyz").is_some_and(|(s, _)| s == 200)
        })
    }

    /// Brings back whatever an earlier scenario left down: missing members, missing
    /// companions; then waits for every companion to be ready.
    pub fn heal(&mut self) -> Result<()> {
        if self.cluster.live_count() < self.cluster.ports.len() {
            self.cluster.start_all()?;
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].companion.is_none() {
                self.restart_companion(i)?;
            }
        }
        wait_until("every companion ready", Duration::from_secs(60), || {
            self.companions_ready()
        })
    }

    /// Envoy's value of `wasmcustom.hzcache.NAME` on node `i` (None when unreadable).
    pub fn filter_stat(&self, i: usize, name: &str) -> Option<u64> {
        let stats = self.nodes.get(i)?.envoy.stats();
        let prefix = format!("wasmcustom.hzcache.{name}: ");
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }
}
