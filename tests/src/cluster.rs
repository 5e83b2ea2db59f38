//! Multi-member Hazelcast clusters for the cluster tests: N real members on 127.0.0.1 with a
//! unique cluster name and per-run ports, started so that they form one cluster (the first
//! alone, the rest together, so no two of them elect themselves master side by side), killed
//! one at a time or all at once, and restarted on the same ports as a new cluster (new cluster
//! id). Also the official Python client's view of partition owners, for comparing routing.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use hazelcast_client::ClientConfig;

use crate::{free_port, python_interop, unique, HazelcastMember};

/// A cluster of real members. A killed member's slot is `None` until restarted.
pub struct Cluster {
    pub name: String,
    pub ports: Vec<u16>,
    pub members: Vec<Option<HazelcastMember>>,
}

impl Cluster {
    /// Starts `n` members and waits until each reports a cluster of `n`.
    pub fn start(n: usize) -> Result<Cluster> {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            name: unique("hzcache-cluster"),
            ports,
            members: (0..n).map(|_| None).collect(),
        };
        cluster.start_all()?;
        Ok(cluster)
    }

    /// Starts every member whose slot is empty, on its port.
    pub fn start_all(&mut self) -> Result<()> {
        let started = Instant::now();
        let empty: Vec<usize> = (0..self.ports.len())
            .filter(|i| self.members[*i].is_none())
            .collect();
        let Some((&first, rest)) = empty.split_first() else {
            return Ok(());
        };
        // The first alone (if no member is running, it becomes the master), then the others
        // side by side: two JVMs starting together is what saves time on two cores.
        let alive = self.members.iter().any(Option::is_some);
        let (solo, together): (Vec<usize>, Vec<usize>) = if alive {
            (vec![], empty.clone())
        } else {
            (vec![first], rest.to_vec())
        };
        for i in solo {
            self.members[i] = Some(HazelcastMember::start_in(
                &self.name,
                self.ports[i],
                &self.ports,
            )?);
        }
        let results: Vec<(usize, Result<HazelcastMember>)> = std::thread::scope(|s| {
            let handles: Vec<_> = together
                .iter()
                .map(|&i| {
                    let (name, port, ports) = (&self.name, self.ports[i], &self.ports);
                    (
                        i,
                        s.spawn(move || HazelcastMember::start_in(name, port, ports)),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| {
                    let r = h
                        .join()
                        .unwrap_or_else(|_| Err(anyhow!("member start-up thread panicked")));
                    (i, r)
                })
                .collect()
        });
        for (i, r) in results {
            self.members[i] = Some(r?);
        }
        self.wait_size(self.live_count(), Duration::from_secs(60))?;
        eprintln!(
            "cluster {}: {} member(s) started in {:?}",
            self.name,
            empty.len(),
            started.elapsed()
        );
        Ok(())
    }

    /// Waits until every live member's log shows a cluster of `n` members.
    pub fn wait_size(&mut self, n: usize, timeout: Duration) -> Result<()> {
        let needle = format!("Members {{size:{n},");
        for m in self.members.iter_mut().flatten() {
            m.process.wait_for_log(timeout, |log| {
                // The latest member list printed is the one that counts.
                log.rfind("Members {size:")
                    .is_some_and(|at| log[at..].starts_with(&needle))
            })?;
        }
        Ok(())
    }

    pub fn live_count(&self) -> usize {
        self.members.iter().filter(|m| m.is_some()).count()
    }

    pub fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    pub fn addresses(&self) -> Vec<String> {
        (0..self.ports.len()).map(|i| self.address(i)).collect()
    }

    /// A live member (for the Python client to connect to).
    pub fn member(&self, i: usize) -> Result<&HazelcastMember> {
        self.members
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("member {i} is not running"))
    }

    /// Kills member `i` with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut m) = self.members.get_mut(i).and_then(Option::take) {
            m.process.kill();
        }
    }

    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// A client configuration for this cluster, knowing only the given members' addresses.
    pub fn client_config(&self, seeds: &[usize]) -> ClientConfig {
        ClientConfig {
            cluster_name: self.name.clone(),
            addresses: seeds.iter().map(|i| self.address(*i)).collect(),
            ..Default::default()
        }
    }
}

/// The owner address (`127.0.0.1:port`) of each key's partition as the official Python client
/// sees it, through member `via`.
pub fn python_owners(via: &HazelcastMember, keys: &[String]) -> Result<Vec<String>> {
    let out = python_interop(via, "unused", &["owners", &keys.join(",")])?;
    let owners: Vec<String> =
        serde_json::from_str(&out).map_err(|e| anyhow!("python owners output {out:?}: {e}"))?;
    if owners.len() != keys.len() {
        bail!(
            "python returned {} owners for {} keys",
            owners.len(),
            keys.len()
        );
    }
    Ok(owners)
}
