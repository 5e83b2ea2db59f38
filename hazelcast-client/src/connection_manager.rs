//! The connection manager (protocol sheet §4.4, §7.4): a background task that keeps at least
//! one connection (reconnecting with backoff and jitter when none is left), then the cluster
//! view listener, a connection per member (retrying missing ones every second), no connection
//! to a member that left, every listener on every connection, and a fresh start on a new
//! cluster id (whole-cluster restart). Also decides when backup-aware writes may be used. The
//! sockets themselves are `connection`'s; the view rules are `cluster`'s.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::backoff::Backoff;
use crate::cluster::ConnectionId;
use crate::connection::Connection;
use crate::error::HazelcastError;
use crate::state::Shared;

/// How often missing member connections are retried and the listeners checked (Python and Go
/// retry missing members every second, §4.4).
const MEMBER_RETRY_INTERVAL: Duration = Duration::from_secs(1);

impl Shared {
    /// Stops reconnecting and closes every connection.
    pub(crate) fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let conns: Vec<_> = self.state().connections.values().cloned().collect();
        for c in conns {
            c.close("client shut down");
        }
    }

    /// Takes a freshly authenticated connection into the set, applying §4.4: partition count
    /// check, cluster id change (restart) handling, duplicate member connections closed, the
    /// member list and partition table of the auth answer used as a first view.
    fn adopt(self: &Arc<Self>, conn: Arc<Connection>) -> bool {
        let auth = &conn.auth;
        let held = self.partition_count();
        if held != 0 && held != auth.partition_count {
            // A different partition count means a differently laid out cluster; routing by
            // the old count would send keys to the wrong partitions.
            tracing::error!(
                member = %conn.address, held, got = auth.partition_count,
                "member reports a different partition count; refusing it"
            );
            conn.close("partition count mismatch");
            return false;
        }
        self.partition_count
            .store(auth.partition_count, Ordering::Relaxed);
        let stale = {
            let mut state = self.state();
            let mut stale = Vec::new();
            if state.cluster_id.is_some() && state.cluster_id != auth.cluster_id {
                tracing::warn!(
                    member = %conn.address,
                    "the cluster was restarted or replaced (new cluster id); starting over"
                );
                state.view.clear();
                state.view_listener = None;
                let old: Vec<Arc<Connection>> = state.connections.drain().map(|(_, c)| c).collect();
                for c in old {
                    state.listeners.connection_closed(c.id);
                    stale.push(c);
                }
            }
            state.cluster_id = auth.cluster_id;
            if state
                .connections
                .get(&conn.member)
                .is_some_and(|c| !c.is_closed())
            {
                drop(state);
                conn.close("duplicate connection to the same member");
                return false;
            }
            if let Some(old) = state.connections.insert(conn.member, conn.clone()) {
                state.listeners.connection_closed(old.id);
            }
            if let Some(v) = auth.member_list_version {
                if !auth.members.is_empty() {
                    state.view.apply_members(v, auth.members.clone());
                }
            }
            if let Some(v) = auth.partition_list_version {
                let count = auth.partition_count;
                state
                    .view
                    .apply_partitions(conn.id, v, &auth.partitions, count);
            }
            stale
        };
        // The new connection has no backup listener yet.
        self.acks_ready.store(false, Ordering::Relaxed);
        for old in stale {
            old.close("cluster restarted");
        }
        tracing::info!(
            member = %conn.address,
            cluster = %self.config.cluster_name,
            server_version = %auth.server_version,
            partitions = auth.partition_count,
            connection = conn.id,
            "connected to Hazelcast member"
        );
        let weak = Arc::downgrade(self);
        let watched = conn.clone();
        tokio::spawn(async move {
            watched.wait_closed().await;
            if let Some(shared) = weak.upgrade() {
                // New writes go plain until every member has a connection with the backup
                // listener again; writes waiting for acks stop waiting (see `release_all`).
                shared.acks_ready.store(false, Ordering::Relaxed);
                shared.acks.release_all();
                shared.wake.notify_one();
            }
        });
        self.connected.send_replace(true);
        true
    }

    /// Drops closed connections from the set and what depended on them.
    fn prune(&self) -> usize {
        let mut state = self.state();
        let closed: Vec<(Uuid, ConnectionId)> = state
            .connections
            .iter()
            .filter(|(_, c)| c.is_closed())
            .map(|(m, c)| (*m, c.id))
            .collect();
        for (member, id) in closed {
            state.connections.remove(&member);
            state.listeners.connection_closed(id);
            if state.view_listener == Some(id) {
                state.view_listener = None;
            }
        }
        state.connections.len()
    }

    /// Backup-aware writes need an ack from every backup member on its own connection: only
    /// while every member of the list has an open connection carrying the backup listener.
    fn update_acks_ready(&self) {
        let ready = {
            let state = self.state();
            let open = state.open_ids();
            state.backup_listener.is_some_and(|id| {
                state.view.has_members()
                    && state.view.members().iter().all(|m| {
                        state
                            .connections
                            .get(&m.uuid)
                            .is_some_and(|c| !c.is_closed())
                    })
                    && state.listeners.active_on_all(id, &open)
            })
        };
        self.acks_ready.store(ready, Ordering::Relaxed);
    }

    /// Tries the known member addresses, then the configured ones, until one connection is up.
    async fn connect_to_cluster(self: &Arc<Self>) -> Result<(), HazelcastError> {
        let mut addresses: Vec<String> = self
            .state()
            .view
            .members()
            .iter()
            .map(|m| {
                let a = m.client_facing_address();
                format!("{}:{}", a.host, a.port)
            })
            .collect();
        for a in &self.config.addresses {
            if !addresses.contains(a) {
                addresses.push(a.clone());
            }
        }
        let mut last = HazelcastError::NotConnected;
        for address in addresses {
            match Connection::open(&address, &self.settings, self.ids.clone()).await {
                Ok(conn) => {
                    if self.adopt(conn) {
                        return Ok(());
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Opens connections to members of the list that have none, all at once.
    async fn connect_missing_members(self: &Arc<Self>) {
        let missing: Vec<String> = {
            let state = self.state();
            state
                .view
                .members()
                .iter()
                .filter(|m| !state.connections.contains_key(&m.uuid))
                .map(|m| {
                    let a = m.client_facing_address();
                    format!("{}:{}", a.host, a.port)
                })
                .collect()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for address in missing {
            let settings = self.settings.clone();
            let ids = self.ids.clone();
            tasks.spawn(async move {
                let r = Connection::open(&address, &settings, ids).await;
                (address, r)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(conn))) => {
                    self.adopt(conn);
                }
                Ok((address, Err(e))) => {
                    tracing::debug!(member = %address, error = %e, "cannot connect to member yet")
                }
                Err(_) => {}
            }
        }
    }

    /// Closes connections to members no longer in the member list.
    fn close_departed(&self) {
        let departed: Vec<Arc<Connection>> = {
            let state = self.state();
            if !state.view.has_members() {
                return;
            }
            state
                .connections
                .values()
                .filter(|c| !state.view.is_member(c.member))
                .cloned()
                .collect()
        };
        for c in departed {
            tracing::info!(member = %c.address, "member left the cluster; closing its connection");
            c.close("member left the cluster");
        }
    }
}

/// The connection manager's loop: runs until `shutdown`.
pub(crate) async fn manage(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(shared.config.backoff);
    let mut shutdown = shared.shutdown.subscribe();
    let mut failures_in_a_row: u32 = 0;
    let mut was_connected = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if shared.prune() == 0 {
            shared.connected.send_replace(false);
            if was_connected {
                tracing::warn!("lost every Hazelcast connection; reconnecting");
                was_connected = false;
            }
            if let Err(err) = shared.connect_to_cluster().await {
                failures_in_a_row += 1;
                let wait = backoff.next_wait(rand::random::<f64>());
                tracing::warn!(
                    cluster = %shared.config.cluster_name,
                    addresses = ?shared.config.addresses,
                    error = %err,
                    attempt = failures_in_a_row,
                    retry_in_ms = wait.as_millis() as u64,
                    "cannot reach the Hazelcast cluster; retrying"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            backoff.reset();
            failures_in_a_row = 0;
            was_connected = true;
        }
        if *shutdown.borrow() {
            shared.shutdown();
            return;
        }
        shared.ensure_view_listener().await;
        shared.ensure_partition_table().await;
        shared.connect_missing_members().await;
        shared.close_departed();
        shared.prune();
        shared.register_missing().await;
        shared.update_acks_ready();
        tokio::select! {
            _ = tokio::time::sleep(MEMBER_RETRY_INTERVAL) => {}
            _ = shared.wake.notified() => {}
            _ = shutdown.changed() => { shared.shutdown(); return; }
        }
    }
}
