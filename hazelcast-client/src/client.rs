//! The client: a smart client in the sense of the official ones (protocol sheet §4.4, §6.4,
//! §7). It keeps one authenticated connection per cluster member, learns the member list and
//! the partition table from the cluster view listener, and runs invocations: correlation ids,
//! partition ids, routing each keyed request to its partition owner's connection (any
//! connection while the owner is unknown), the per-request deadline and the retry rules of
//! §7.3. A background task (`manage`) keeps the connections: it reconnects with backoff and
//! jitter when none is left, opens connections to members that joined (retrying missing ones
//! every second), closes those to members that left, re-registers the cluster view listener
//! and the user listeners, and starts over on a new cluster id (whole-cluster restart).
//!
//! The cluster view itself (versions, apply rules, routing decision) is sans-IO in `cluster`,
//! the listener bookkeeping in `listener_registry`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::backoff::{Backoff, BackoffConfig};
use super::cluster::{self, ClusterView, ConnectionId, Route};
use super::codec::client_add_cluster_view_listener as view_codec;
use super::codec::client_authentication::routing_mode;
use super::codec::error as error_codec;
use super::connection::{Connection, ConnectionSettings, EventHandler};
use super::error::HazelcastError;
use super::listener::{InvalidationMetadata, ListenerSpec};
use super::listener_registry::{ListenerId, ListenerRegistry};
use super::map::Map;
use super::partition;
use super::proto::{patch_request_ids, ClientMessage, ReaderLimits};
use super::serialization::Data;
use uuid::Uuid;

/// Everything the client needs. Start from [`Default`] and change what differs:
///
/// ```
/// use std::time::Duration;
/// use hazelcast_client::ClientConfig;
///
/// let config = ClientConfig {
///     cluster_name: "prod".into(),
///     addresses: vec!["10.0.0.1:5701".into(), "10.0.0.2:5701".into()],
///     invocation_timeout: Duration::from_secs(10),
///     ..ClientConfig::default()
/// };
/// assert_eq!(config.client_name, "hzcache-companion");
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The cluster to join: members refuse a client whose cluster name differs from theirs.
    pub cluster_name: String,
    /// Member addresses as `host:port`, tried in order.
    pub addresses: Vec<String>,
    /// The name this client shows in the member's logs and Management Center.
    pub client_name: String,
    /// Bounds the TCP connect and the authentication round trip together.
    pub connect_timeout: Duration,
    /// Deadline for one operation including its retries. Short by default: a cache answer that
    /// takes seconds is worth less than going to the origin.
    pub invocation_timeout: Duration,
    /// How long a connection may stay silent before the client sends a ping on it.
    pub heartbeat_interval: Duration,
    /// How long a connection may go without hearing anything from its member before the
    /// client closes it as dead.
    pub heartbeat_timeout: Duration,
    /// Waits between attempts to reach the cluster while no member answers.
    pub backoff: BackoffConfig,
    /// What one connection may make the client hold in memory; see
    /// [`ReaderLimits::max_bytes_value_len`] for sizing them from the largest value.
    pub reader_limits: ReaderLimits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            cluster_name: "dev".into(),
            addresses: vec!["127.0.0.1:5701".into()],
            client_name: "hzcache-companion".into(),
            connect_timeout: Duration::from_secs(5),
            invocation_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            backoff: BackoffConfig::default(),
            reader_limits: ReaderLimits::default(),
        }
    }
}

/// Where a request must execute: the partition of a key, a given partition (Map.GetAll and
/// PutAll, already grouped by partition), or anywhere (cluster-wide operations).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Key(&'a Data),
    Partition(i32),
    Any,
}

/// One cluster member as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `host:port` of its client endpoint.
    pub address: String,
    /// The member's uuid, as text.
    pub uuid: String,
    /// Whether the client holds an open connection to it.
    pub connected: bool,
}

/// Requests sent on one member's current connection (each attempt counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStats {
    /// `host:port` of the member.
    pub address: String,
    /// Requests carrying a partition (keyed requests, GetAll/PutAll groups).
    pub keyed_requests: u64,
    /// Requests without a partition (size, clear, listener registrations are not counted).
    pub other_requests: u64,
}

/// Counters for tests and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Per member with an open connection, sorted by address.
    pub members: Vec<MemberStats>,
    /// Keyed requests sent to a member other than the partition owner because the owner was
    /// unknown or not connected (the member forwards them).
    pub keyed_not_to_owner: u64,
    /// Events dropped because a listener's queue was full.
    pub events_dropped: u64,
}

/// A handle to the cluster; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: ClientConfig,
    settings: ConnectionSettings,
    pub(crate) uuid: Uuid,
    ids: Arc<AtomicI64>,
    /// Connections, cluster view and listeners. A std `Mutex`: every section is a few map
    /// operations with no `.await` inside.
    state: Mutex<State>,
    partition_count: AtomicI32,
    turn: AtomicUsize,
    keyed_not_to_owner: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    /// Wakes the connection manager early (a connection closed, the member list changed).
    wake: Notify,
    connected: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

struct State {
    /// Open (or just closed, until the manager prunes them) connections by member uuid.
    connections: HashMap<Uuid, Arc<Connection>>,
    view: ClusterView,
    cluster_id: Option<Uuid>,
    /// The connection carrying the cluster view listener (also while it is being registered).
    view_listener: Option<ConnectionId>,
    listeners: ListenerRegistry<ListenerSpec>,
}

/// Retries of retryable failures: the first few go at once, later ones wait a little longer
/// each time, up to this pause (protocol sheet §7.3, Java's scheme).
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How often missing member connections are retried and the listeners checked (Python and Go
/// retry missing members every second, §4.4).
const MEMBER_RETRY_INTERVAL: Duration = Duration::from_secs(1);

impl Client {
    /// Starts the client and its background connection manager. Never fails: an unreachable
    /// cluster is reported in the log and retried until `shutdown`.
    pub fn start(config: ClientConfig) -> Client {
        let (connected, _) = watch::channel(false);
        let (shutdown, _) = watch::channel(false);
        let uuid = Uuid::new_v4();
        let client = Client {
            inner: Arc::new(Inner {
                settings: settings(&config, uuid),
                config,
                uuid,
                ids: Arc::new(AtomicI64::new(1)),
                state: Mutex::new(State {
                    connections: HashMap::new(),
                    view: ClusterView::default(),
                    cluster_id: None,
                    view_listener: None,
                    listeners: ListenerRegistry::default(),
                }),
                partition_count: AtomicI32::new(0),
                turn: AtomicUsize::new(0),
                keyed_not_to_owner: AtomicU64::new(0),
                events_dropped: AtomicU64::new(0),
                wake: Notify::new(),
                connected,
                shutdown,
            }),
        };
        tokio::spawn(manage(client.clone()));
        client
    }

    /// Whether at least one member connection is open.
    pub fn is_connected(&self) -> bool {
        self.state().connections.values().any(|c| !c.is_closed())
    }

    /// Waits until connected or `timeout` passes; says which.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.connected.subscribe();
        let wait = async {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// A handle on the map `name` (maps are created by the member on first use).
    pub fn map(&self, name: &str) -> Map {
        Map::new(self.clone(), name)
    }

    /// Stops reconnecting and closes every connection.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let conns: Vec<_> = self.state().connections.values().cloned().collect();
        for c in conns {
            c.close("client shut down");
        }
    }

    /// The member list from the cluster view (empty until the first one arrives).
    pub fn members(&self) -> Vec<Member> {
        let state = self.state();
        let mut out: Vec<Member> = state
            .view
            .members()
            .iter()
            .map(|m| {
                let a = m.client_facing_address();
                Member {
                    address: format!("{}:{}", a.host, a.port),
                    uuid: m.uuid.to_string(),
                    connected: state
                        .connections
                        .get(&m.uuid)
                        .is_some_and(|c| !c.is_closed()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }

    /// The partition `key` belongs to, as every Hazelcast client computes it (MurmurHash3 of
    /// the serialized key, modulo the cluster's partition count): `None` until the first
    /// connection has told the client the partition count.
    pub fn partition_id(&self, key: &str) -> Option<i32> {
        let count = self.partition_count();
        (count > 0).then(|| partition::partition_id(&Data::from_string(key), count))
    }

    /// The address of the member owning `key`'s partition, as the client's partition table
    /// says (`None` while the table is unknown).
    pub fn owner_of(&self, key: &str) -> Option<String> {
        let pid = partition::partition_id(&Data::from_string(key), self.partition_count());
        let state = self.state();
        let owner = state.view.owner(pid)?;
        state
            .view
            .members()
            .iter()
            .find(|m| m.uuid == owner)
            .map(|m| {
                let a = m.client_facing_address();
                format!("{}:{}", a.host, a.port)
            })
    }

    /// The partition table's version (`None` until one arrives); changes on every migration.
    pub fn partition_table_version(&self) -> Option<i32> {
        self.state().view.partitions_version()
    }

    /// Request and event counters, for tests and metrics.
    pub fn stats(&self) -> ClientStats {
        let state = self.state();
        let mut members: Vec<MemberStats> = state
            .connections
            .values()
            .filter(|c| !c.is_closed())
            .map(|c| MemberStats {
                address: c.address.clone(),
                keyed_requests: c.keyed_requests.load(Ordering::Relaxed),
                other_requests: c.other_requests.load(Ordering::Relaxed),
            })
            .collect();
        members.sort_by(|a, b| a.address.cmp(&b.address));
        ClientStats {
            members,
            keyed_not_to_owner: self.inner.keyed_not_to_owner.load(Ordering::Relaxed),
            events_dropped: self.inner.events_dropped.load(Ordering::Relaxed),
        }
    }

    /// The partition count the cluster reported (0 until the first connection).
    pub(crate) fn partition_count(&self) -> i32 {
        self.inner.partition_count()
    }

    /// The id of the cluster the client is connected to (`None` before the first
    /// connection); changes when the whole cluster was restarted or replaced.
    pub fn cluster_id(&self) -> Option<Uuid> {
        self.state().cluster_id
    }

    /// Where listener `id` stands: whether it is registered on every open connection (so
    /// every member's events reach it), and how many registrations of it have succeeded so
    /// far (growing when it is registered on a new or reopened connection).
    pub fn listener_status(&self, id: ListenerId) -> ListenerStatus {
        let state = self.state();
        let open: Vec<ConnectionId> = state
            .connections
            .values()
            .filter(|c| !c.is_closed())
            .map(|c| c.id)
            .collect();
        ListenerStatus {
            everywhere: state.listeners.active_on_all(id, &open),
            registrations: state.listeners.registrations_made(id),
        }
    }

    /// Asks every connected member for its near-cache invalidation metadata of `maps`
    /// (§3.3 `Map.FetchNearCacheInvalidationMetadata`): each answers for the partitions it
    /// owns. All members are asked at once; the first failure fails the whole call (a repair
    /// round needs every member's answer to mean anything).
    pub async fn fetch_invalidation_metadata(
        &self,
        maps: &[String],
    ) -> Result<Vec<InvalidationMetadata>, HazelcastError> {
        use super::codec::map_fetch_near_cache_invalidation_metadata as md_codec;
        let conns: Vec<Arc<Connection>> = self
            .state()
            .connections
            .values()
            .filter(|c| !c.is_closed())
            .cloned()
            .collect();
        if conns.is_empty() {
            return Err(HazelcastError::NotConnected);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for conn in conns {
            let client = self.clone();
            let req = md_codec::encode_request(maps, conn.member);
            tasks.spawn(async move {
                let (_, answer) = client.invoke_on(&conn, req, None).await?;
                let md = md_codec::decode_response(&answer)?;
                Ok::<_, HazelcastError>(InvalidationMetadata {
                    member: conn.member,
                    sequences: md.sequences,
                    partition_uuids: md
                        .partition_uuids
                        .into_iter()
                        .filter_map(|(p, u)| Some((p, u?)))
                        .collect(),
                })
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(r) => out.push(r?),
                Err(e) => {
                    return Err(HazelcastError::Protocol(format!(
                        "metadata task failed: {e}"
                    )))
                }
            }
        }
        out.sort_by_key(|m| m.member.as_u128());
        Ok(out)
    }

    /// This client's uuid, the same on every connection (§4.1).
    pub(crate) fn uuid(&self) -> Uuid {
        self.inner.uuid
    }

    pub(crate) fn inner_weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock_state(&self.inner)
    }

    /// Picks the connection for one attempt (§6.4) and counts it.
    fn pick(&self, pid: i32) -> Option<Arc<Connection>> {
        let state = self.state();
        // The common case first, without building the lists below (two allocations per
        // operation): a keyed request whose owner is known and connected goes to that
        // connection, exactly what `cluster::route` decides for it. The round-robin `turn`
        // now advances only for the requests that use it.
        if pid >= 0 {
            if let Some(conn) = state
                .view
                .owner(pid)
                .and_then(|owner| state.connections.get(&owner))
                .filter(|c| !c.is_closed())
            {
                conn.keyed_requests.fetch_add(1, Ordering::Relaxed);
                return Some(conn.clone());
            }
        }
        let open: Vec<&Arc<Connection>> = state
            .connections
            .values()
            .filter(|c| !c.is_closed())
            .collect();
        let uuids: Vec<Uuid> = open.iter().map(|c| c.member).collect();
        let owner = if pid >= 0 {
            state.view.owner(pid)
        } else {
            None
        };
        let turn = self.inner.turn.fetch_add(1, Ordering::Relaxed);
        let chosen = match cluster::route(owner, &uuids, turn)? {
            Route::Owner(i) => open.get(i).copied(),
            Route::Any(i) => {
                if pid >= 0 {
                    self.inner
                        .keyed_not_to_owner
                        .fetch_add(1, Ordering::Relaxed);
                }
                open.get(i).copied()
            }
        }?;
        let counter = if pid >= 0 {
            &chosen.keyed_requests
        } else {
            &chosen.other_requests
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some(chosen.clone())
    }

    /// Runs one request: sets its partition id (from `target`) and a fresh correlation id
    /// for every attempt, sends it to the partition owner's connection (or any), waits for the
    /// answer within the invocation timeout, turns an error answer into
    /// `HazelcastError::Server`, and retries what §7.3 allows on whichever connection is then
    /// right. `idempotent` says the request may be sent again after its connection dropped
    /// (the message definition's `retryable` flag, or a map operation that is safe to redo).
    ///
    /// With no connection at all it fails at once: the caller (the cache) has a better answer
    /// than waiting, the origin. While at least one connection is open (a member died, the
    /// others live), retries continue within the deadline.
    pub(crate) async fn invoke(
        &self,
        request: ClientMessage,
        target: Target<'_>,
        idempotent: bool,
    ) -> Result<ClientMessage, HazelcastError> {
        let timeout = self.inner.config.invocation_timeout;
        let deadline = Instant::now() + timeout;
        let mut attempt: u32 = 0;
        loop {
            let pid = match target {
                Target::Key(k) => partition::partition_id(k, self.partition_count()),
                Target::Partition(p) => p,
                Target::Any => -1,
            };
            let conn = self.pick(pid).ok_or(HazelcastError::NotConnected)?;
            let id = conn.next_correlation_id();
            // Each attempt encodes `request` (kept untouched for a retry) into one wire buffer
            // and patches the two ids in place; the connection takes that buffer as is. This
            // replaced a clone of the frame list per attempt (in case of a retry) plus a copy
            // of the initial frame per patched id, several allocations per operation
            // (docs/benchmarks.md, "Hot-path work": mallocs per op counted before and after).
            let mut wire = request.to_wire();
            if !patch_request_ids(&mut wire, id, pid) {
                // Encoders always write a full request header; this is a bug, not input.
                return Err(HazelcastError::Protocol(format!(
                    "request of type {:#08x} has no room for its header",
                    request.message_type()
                )));
            }

            let err = match conn.send_wire(id, wire.freeze()) {
                Err(e) => e,
                Ok(rx) => match tokio::time::timeout_at(deadline.into(), rx).await {
                    Err(_) => {
                        conn.forget(id);
                        return Err(HazelcastError::Timeout(timeout));
                    }
                    Ok(Err(_)) => HazelcastError::ConnectionClosed {
                        member: conn.address.clone(),
                        reason: "connection dropped the request".into(),
                    },
                    Ok(Ok(Err(e))) => e,
                    Ok(Ok(Ok(answer))) => {
                        if answer.message_type() != error_codec::ERROR_MESSAGE_TYPE {
                            return Ok(answer);
                        }
                        let holders = error_codec::decode_error(&answer)?;
                        HazelcastError::from_holders(&holders)
                    }
                },
            };
            if !err.is_retryable(idempotent) || Instant::now() >= deadline {
                return Err(err);
            }
            attempt += 1;
            let pause = if attempt <= 5 {
                Duration::ZERO
            } else {
                Duration::from_millis(1u64 << (attempt - 5).min(20)).min(MAX_RETRY_PAUSE)
            };
            tracing::debug!(%err, attempt, ?pause, "retrying Hazelcast invocation");
            if !pause.is_zero() {
                tokio::time::sleep_until((Instant::now() + pause).min(deadline).into()).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Sends a request bound to one connection (listener registration and removal) and waits
    /// for its answer within the invocation timeout. Never retried elsewhere (§7.3): the
    /// registration belongs to that connection. `handler`, if given, receives the events of
    /// the registration; it is installed before the request leaves, since events may follow
    /// the answer at once.
    async fn invoke_on(
        &self,
        conn: &Connection,
        mut request: ClientMessage,
        handler: Option<EventHandler>,
    ) -> Result<(i64, ClientMessage), HazelcastError> {
        request.set_partition_id(-1);
        let id = conn.next_correlation_id();
        request.set_correlation_id(id);
        if let Some(h) = handler.clone() {
            conn.add_listener(id, h);
        }
        let result = async {
            let rx = conn.send(request)?;
            match tokio::time::timeout(self.inner.config.invocation_timeout, rx).await {
                Err(_) => {
                    conn.forget(id);
                    Err(HazelcastError::Timeout(
                        self.inner.config.invocation_timeout,
                    ))
                }
                Ok(Err(_)) => Err(HazelcastError::ConnectionClosed {
                    member: conn.address.clone(),
                    reason: "connection dropped the request".into(),
                }),
                Ok(Ok(Err(e))) => Err(e),
                Ok(Ok(Ok(answer))) if answer.message_type() == error_codec::ERROR_MESSAGE_TYPE => {
                    Err(HazelcastError::from_holders(&error_codec::decode_error(
                        &answer,
                    )?))
                }
                Ok(Ok(Ok(answer))) => Ok(answer),
            }
        }
        .await;
        if result.is_err() && handler.is_some() {
            conn.remove_listener(id);
        }
        result.map(|answer| (id, answer))
    }

    // -----------------------------------------------------------------------------------
    // User listeners (the public API is on `Map`, in `listener`).

    /// Adds a listener and registers it on every open connection; later connections get it
    /// from the manager. Fails (and keeps nothing) when there is no connection or a
    /// registration fails, so that a caller never believes in a feed that is not there.
    pub(crate) async fn add_listener(
        &self,
        spec: ListenerSpec,
    ) -> Result<ListenerId, HazelcastError> {
        if !self.is_connected() {
            return Err(HazelcastError::NotConnected);
        }
        let id = self.state().listeners.add(spec);
        let outcomes = self.register_missing().await;
        if let Some(err) = outcomes
            .into_iter()
            .filter(|(lid, _)| *lid == id)
            .find_map(|(_, r)| r.err())
        {
            let _ = self.remove_listener(id).await;
            return Err(err);
        }
        Ok(id)
    }

    /// Removes a listener from every connection; `false` if it was not there.
    pub(crate) async fn remove_listener(&self, id: ListenerId) -> Result<bool, HazelcastError> {
        let removed = self.state().listeners.remove(id);
        let Some((spec, undo)) = removed else {
            return Ok(false);
        };
        for (conn_id, correlation_id, server_id) in undo {
            if let Some(conn) = self.connection_by_id(conn_id) {
                conn.remove_listener(correlation_id);
                let req =
                    super::codec::map_remove_entry_listener::encode_request(&spec.map, server_id);
                // Best effort: if the member does not answer, the registration dies with the
                // connection anyway, and its events are already dropped here.
                if let Err(e) = self.invoke_on(&conn, req, None).await {
                    tracing::debug!(member = %conn.address, error = %e, "listener removal failed");
                }
            }
        }
        Ok(true)
    }

    /// Registers every listener missing on an open connection; returns each outcome.
    async fn register_missing(&self) -> Vec<(ListenerId, Result<(), HazelcastError>)> {
        let work = {
            let mut state = self.state();
            let open: Vec<ConnectionId> = state
                .connections
                .values()
                .filter(|c| !c.is_closed())
                .map(|c| c.id)
                .collect();
            state.listeners.take_missing(&open)
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (conn_id, lid, spec) in work {
            let client = self.clone();
            tasks.spawn(async move {
                let Some(conn) = client.connection_by_id(conn_id) else {
                    client.state().listeners.failed(conn_id, lid);
                    return (lid, Err(HazelcastError::NotConnected));
                };
                let outcome = async {
                    let handler = spec.handler(&client);
                    let (correlation_id, answer) =
                        client.invoke_on(&conn, spec.request(), Some(handler)).await?;
                    let server_id = spec.decode_registration(&answer)?;
                    Ok::<_, HazelcastError>((correlation_id, server_id))
                }
                .await;
                match outcome {
                    Ok((correlation_id, server_id)) => {
                        let keep = client.state().listeners.registered(
                            conn_id,
                            lid,
                            correlation_id,
                            server_id,
                        );
                        if !keep {
                            conn.remove_listener(correlation_id);
                        }
                        tracing::debug!(member = %conn.address, listener = ?lid, "listener registered");
                        (lid, Ok(()))
                    }
                    Err(e) => {
                        client.state().listeners.failed(conn_id, lid);
                        tracing::warn!(member = %conn.address, error = %e, "listener registration failed; will retry");
                        (lid, Err(e))
                    }
                }
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(r) = joined {
                out.push(r);
            }
        }
        out
    }

    fn connection_by_id(&self, id: ConnectionId) -> Option<Arc<Connection>> {
        self.state()
            .connections
            .values()
            .find(|c| c.id == id && !c.is_closed())
            .cloned()
    }

    // -----------------------------------------------------------------------------------
    // Connection management (driven by `manage`).

    /// Takes a freshly authenticated connection into the set, applying §4.4: partition count
    /// check, cluster id change (restart) handling, duplicate member connections closed, the
    /// member list and partition table of the auth answer used as a first view.
    fn adopt(&self, conn: Arc<Connection>) -> bool {
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
        self.inner
            .partition_count
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
        for old in stale {
            old.close("cluster restarted");
        }
        tracing::info!(
            member = %conn.address,
            cluster = %self.inner.config.cluster_name,
            server_version = %auth.server_version,
            partitions = auth.partition_count,
            connection = conn.id,
            "connected to Hazelcast member"
        );
        let weak = self.inner_weak();
        let watched = conn.clone();
        tokio::spawn(async move {
            watched.wait_closed().await;
            if let Some(inner) = weak.upgrade() {
                inner.wake.notify_one();
            }
        });
        let _ = self.inner.connected.send(true);
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

    /// Tries the known member addresses, then the configured ones, until one connection is up.
    async fn connect_to_cluster(&self) -> Result<(), HazelcastError> {
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
        for a in &self.inner.config.addresses {
            if !addresses.contains(a) {
                addresses.push(a.clone());
            }
        }
        let mut last = HazelcastError::NotConnected;
        for address in addresses {
            match Connection::open(&address, &self.inner.settings, self.inner.ids.clone()).await {
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
    async fn connect_missing_members(&self) {
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
            let settings = self.inner.settings.clone();
            let ids = self.inner.ids.clone();
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

    /// Asks a fresh cluster to assign partitions while the client has no table yet, so routing
    /// by owner starts without waiting for the first keyed operation (§3.4).
    async fn ensure_partition_table(&self) {
        if self.state().view.partitions_version().is_some() {
            return;
        }
        let req = super::codec::client_trigger_partition_assignment::encode_request();
        match self.invoke(req, Target::Any, true).await {
            Ok(answer) => {
                let _ = super::codec::client_trigger_partition_assignment::decode_response(&answer);
            }
            Err(e) => tracing::debug!(error = %e, "partition assignment trigger failed"),
        }
    }

    /// Registers the cluster view listener on one connection if none carries it (§3.4).
    async fn ensure_view_listener(&self) {
        let conn = {
            let mut state = self.state();
            if state.view_listener.is_some() {
                return;
            }
            let Some(conn) = state.connections.values().find(|c| !c.is_closed()).cloned() else {
                return;
            };
            state.view_listener = Some(conn.id);
            conn
        };
        let handler = view_handler(self.inner_weak(), conn.id);
        let result = self
            .invoke_on(&conn, view_codec::encode_request(), Some(handler))
            .await
            .and_then(|(_, answer)| Ok(view_codec::decode_response(&answer)?));
        match result {
            Ok(()) => tracing::debug!(member = %conn.address, "cluster view listener registered"),
            Err(e) => {
                tracing::warn!(member = %conn.address, error = %e, "cluster view listener registration failed; will retry");
                let mut state = self.state();
                if state.view_listener == Some(conn.id) {
                    state.view_listener = None;
                }
            }
        }
    }
}

impl Inner {
    pub(crate) fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Relaxed)
    }
}

/// See [`Client::listener_status`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Registered (answered by the member) on every open connection, and there is one.
    pub everywhere: bool,
    /// Successful registrations since the listener was added.
    pub registrations: u64,
}

fn lock_state(inner: &Inner) -> MutexGuard<'_, State> {
    // Recover from poisoning: every section leaves the maps consistent after each operation.
    inner.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies MembersView / PartitionsView events from connection `conn` to the view. Runs on the
/// reader task: decoding and a short locked update, nothing that blocks. Other event types
/// (MemberGroupsView, ClusterVersion) are dropped (§8.3).
fn view_handler(client: Weak<Inner>, conn: ConnectionId) -> EventHandler {
    Arc::new(move |msg: ClientMessage| {
        let Some(inner) = client.upgrade() else {
            return;
        };
        match msg.message_type() {
            view_codec::EVENT_MEMBERS_VIEW => match view_codec::decode_members_view(&msg) {
                Ok((version, members)) => {
                    let applied = {
                        let mut state = lock_state(&inner);
                        let addresses: Vec<String> = members
                            .iter()
                            .map(|m| {
                                let a = m.client_facing_address();
                                format!("{}:{}", a.host, a.port)
                            })
                            .collect();
                        state
                            .view
                            .apply_members(version, members)
                            .then_some(addresses)
                    };
                    if let Some(addresses) = applied {
                        tracing::info!(version, members = ?addresses, "cluster member list");
                        inner.wake.notify_one();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bad MembersView event dropped"),
            },
            view_codec::EVENT_PARTITIONS_VIEW => match view_codec::decode_partitions_view(&msg) {
                Ok((version, table)) => {
                    let count = inner.partition_count.load(Ordering::Relaxed);
                    let applied = lock_state(&inner)
                        .view
                        .apply_partitions(conn, version, &table, count);
                    if applied {
                        tracing::debug!(version, "partition table updated");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bad PartitionsView event dropped"),
            },
            _ => {}
        }
    })
}

fn settings(config: &ClientConfig, uuid: Uuid) -> ConnectionSettings {
    ConnectionSettings {
        cluster_name: config.cluster_name.clone(),
        client_name: config.client_name.clone(),
        client_uuid: uuid,
        connect_timeout: config.connect_timeout,
        heartbeat_interval: config.heartbeat_interval,
        heartbeat_timeout: config.heartbeat_timeout,
        reader_limits: config.reader_limits,
        routing_mode: routing_mode::SMART,
    }
}

/// The connection manager: keeps at least one connection (reconnecting with backoff when none
/// is left), then the view listener, the user listeners, a connection per member, and no
/// connection to a member that left. Runs until `shutdown`.
async fn manage(client: Client) {
    let inner = &client.inner;
    let mut backoff = Backoff::new(inner.config.backoff);
    let mut shutdown = inner.shutdown.subscribe();
    let mut failures_in_a_row: u32 = 0;
    let mut was_connected = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if client.prune() == 0 {
            let _ = inner.connected.send(false);
            if was_connected {
                tracing::warn!("lost every Hazelcast connection; reconnecting");
                was_connected = false;
            }
            if let Err(err) = client.connect_to_cluster().await {
                failures_in_a_row += 1;
                let wait = backoff.next_wait(rand::random::<f64>());
                tracing::warn!(
                    cluster = %inner.config.cluster_name,
                    addresses = ?inner.config.addresses,
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
            client.shutdown();
            return;
        }
        client.ensure_view_listener().await;
        client.ensure_partition_table().await;
        client.connect_missing_members().await;
        client.close_departed();
        client.prune();
        client.register_missing().await;
        tokio::select! {
            _ = tokio::time::sleep(MEMBER_RETRY_INTERVAL) => {}
            _ = inner.wake.notified() => {}
            _ = shutdown.changed() => { client.shutdown(); return; }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::error::{encode_error, ErrorHolder};
    use crate::codec::MessageBuilder;
    use crate::codec::{client_trigger_partition_assignment as trigger, map_get};
    use crate::fake_member::{self, Session};
    use crate::serialization::Value;

    /// A fake member that accepts the client's own housekeeping requests and answers Map.Get
    /// with whatever `get_answer` makes.
    async fn member_answering_gets_with(get_answer: fn() -> ClientMessage) -> Client {
        let address = fake_member::start(move |mut s: Session| async move {
            while let Some(req) = s.read().await {
                let id = req.correlation_id();
                let answer = match req.message_type() {
                    view_codec::REQUEST_TYPE => {
                        MessageBuilder::response(view_codec::RESPONSE_TYPE, |_| {}).build()
                    }
                    trigger::REQUEST_TYPE => trigger::encode_response(),
                    map_get::REQUEST_TYPE => get_answer(),
                    _ => continue,
                };
                s.send(answer, id).await;
            }
        })
        .await;
        let client = Client::start(ClientConfig {
            addresses: vec![address],
            ..ClientConfig::default()
        });
        assert!(client.wait_connected(Duration::from_secs(5)).await);
        client
    }

    #[tokio::test]
    async fn an_error_answer_becomes_a_server_error_with_the_members_class_and_message() {
        let client = member_answering_gets_with(|| {
            encode_error(&[ErrorHolder {
                error_code: 27,
                class_name: "java.lang.IllegalStateException".into(),
                message: Some("boom".into()),
            }])
        })
        .await;
        let err = client.map("m").get("k").await.unwrap_err();
        match err {
            HazelcastError::Server {
                code,
                class_name,
                message,
            } => {
                assert_eq!(code, 27);
                assert_eq!(class_name, "java.lang.IllegalStateException");
                assert_eq!(message, "boom");
            }
            other => panic!("{other:?}"),
        }
        client.shutdown();
    }

    #[tokio::test]
    async fn an_answer_of_an_unknown_type_fails_that_request_only() {
        let client =
            member_answering_gets_with(|| MessageBuilder::response(0x7f_7f_01, |_| {}).build())
                .await;
        let map = client.map("m");
        for _ in 0..2 {
            let err = map.get("k").await.unwrap_err();
            assert!(matches!(err, HazelcastError::Protocol(_)), "{err:?}");
        }
        assert!(client.is_connected(), "the connection survives");
        client.shutdown();
    }

    #[tokio::test]
    async fn a_keyed_request_falls_back_to_any_connection_while_the_partition_table_is_unknown() {
        let client =
            member_answering_gets_with(|| map_get::encode_response(Some(&Data::from_string("v"))))
                .await;
        assert_eq!(
            client.map("m").get("k").await.unwrap(),
            Some(Value::String("v".into()))
        );
        let stats = client.stats();
        assert_eq!(stats.members.len(), 1);
        assert!(stats.members[0].keyed_requests >= 1);
        assert!(stats.keyed_not_to_owner >= 1);
        assert_eq!(client.owner_of("k"), None);
        client.shutdown();
    }

    /// Polls `cond` until it holds or 10 s pass (readiness, not a fixed sleep).
    async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_new_cluster_id_clears_the_view_and_listeners_come_back_on_the_new_cluster() {
        use crate::codec::map_add_entry_listener as entry_codec;
        use crate::codec::{Address, MemberInfo};
        use crate::listener::{EntryEventKind, EntryEventKinds};
        use std::sync::atomic::AtomicBool;

        const OLD_MEMBER: Uuid = Uuid::from_u128(0x0a);
        const NEW_MEMBER: Uuid = Uuid::from_u128(0x0b);
        const OLD_CLUSTER: Uuid = Uuid::from_u128(0xc1);
        const NEW_CLUSTER: Uuid = Uuid::from_u128(0xc2);
        // The first cluster's view carries higher versions than the restarted one's: the new
        // view is applied only if the old one was thrown away.
        const OLD_VERSION: i32 = 5;
        const NEW_VERSION: i32 = 1;

        // Sessions before `restarted` are the old cluster, later ones the new cluster. Each
        // records the listener registrations it saw; the new cluster then sends one event.
        let restarted = Arc::new(AtomicBool::new(false));
        let stop_old = Arc::new(Notify::new());
        let registrations: Arc<Mutex<Vec<Uuid>>> = Arc::default();
        let (r, stop, regs) = (restarted.clone(), stop_old.clone(), registrations.clone());
        let identity = move || {
            if r.load(Ordering::SeqCst) {
                (NEW_MEMBER, NEW_CLUSTER)
            } else {
                (OLD_MEMBER, OLD_CLUSTER)
            }
        };
        let address = fake_member::start_as(identity, move |mut s: Session| {
            let (stop, regs) = (stop.clone(), regs.clone());
            async move {
                let old = s.member == OLD_MEMBER;
                let version = if old { OLD_VERSION } else { NEW_VERSION };
                let me = MemberInfo {
                    uuid: s.member,
                    address: Address {
                        host: "127.0.0.1".into(),
                        port: i32::from(s.port),
                    },
                    lite_member: false,
                    version: (5, 7, 0),
                    client_address: None,
                };
                loop {
                    let req = tokio::select! {
                        r = s.read() => r,
                        _ = stop.notified(), if old => None,
                    };
                    // Returning drops the socket: the old cluster is gone.
                    let Some(req) = req else { return };
                    let id = req.correlation_id();
                    match req.message_type() {
                        view_codec::REQUEST_TYPE => {
                            let ok = MessageBuilder::response(view_codec::RESPONSE_TYPE, |_| {});
                            s.send(ok.build(), id).await;
                            let members =
                                view_codec::encode_members_view(version, std::slice::from_ref(&me));
                            s.send(members, id).await;
                            let table = [(s.member, (0..271).collect::<Vec<i32>>())];
                            let parts = view_codec::encode_partitions_view(version, &table);
                            s.send(parts, id).await;
                        }
                        trigger::REQUEST_TYPE => s.send(trigger::encode_response(), id).await,
                        entry_codec::REQUEST_TYPE => {
                            let server_id = Uuid::from_u128(id as u128);
                            s.send(entry_codec::encode_response(server_id), id).await;
                            regs.lock().unwrap().push(s.member);
                            if !old {
                                let event =
                                    entry_codec::encode_entry_event(&entry_codec::EntryEvent {
                                        event_type: entry_codec::event_type::ADDED,
                                        member: Some(s.member),
                                        affected: 1,
                                        key: Some(Data::from_string("after-restart")),
                                        value: None,
                                        old_value: None,
                                        merging_value: None,
                                    });
                                s.send(event, id).await;
                            }
                        }
                        map_get::REQUEST_TYPE => {
                            let v = Data::from_string(if old { "old" } else { "new" });
                            s.send(map_get::encode_response(Some(&v)), id).await;
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        let client = Client::start(ClientConfig {
            addresses: vec![address.clone()],
            ..ClientConfig::default()
        });
        assert!(client.wait_connected(Duration::from_secs(5)).await);
        type Seen = Vec<(EntryEventKind, Option<String>)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let sink = seen.clone();
        client
            .map("m")
            .add_entry_listener(false, EntryEventKinds::ADDED, move |e| {
                sink.lock().unwrap().push((e.kind, e.key));
            })
            .await
            .unwrap();
        eventually("the old cluster's view", || {
            client.partition_table_version() == Some(OLD_VERSION)
                && client
                    .members()
                    .iter()
                    .any(|m| m.uuid == OLD_MEMBER.to_string())
        })
        .await;
        assert_eq!(*registrations.lock().unwrap(), vec![OLD_MEMBER]);

        // The whole cluster restarts: the old member drops the connection, and whoever
        // answers next belongs to a cluster with another id.
        restarted.store(true, Ordering::SeqCst);
        stop_old.notify_one();

        eventually("the new cluster's view", || {
            client.partition_table_version() == Some(NEW_VERSION)
        })
        .await;
        let members = client.members();
        assert_eq!(
            members,
            vec![Member {
                address: address.clone(),
                uuid: NEW_MEMBER.to_string(),
                connected: true,
            }],
            "the old cluster's member list is gone, not merged"
        );
        assert_eq!(client.owner_of("k"), Some(address));
        eventually("the listener on the new cluster", || {
            registrations.lock().unwrap().as_slice() == [OLD_MEMBER, NEW_MEMBER]
        })
        .await;
        eventually("the new cluster's event", || {
            !seen.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(EntryEventKind::Added, Some("after-restart".to_string()))]
        );
        assert_eq!(
            client.map("m").get("k").await.unwrap(),
            Some(Value::String("new".into()))
        );
        client.shutdown();
    }

    #[tokio::test]
    async fn with_no_reachable_member_operations_fail_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let client = Client::start(ClientConfig {
            addresses: vec![address],
            ..ClientConfig::default()
        });
        let t0 = Instant::now();
        let err = client.map("m").get("k").await.unwrap_err();
        assert!(matches!(err, HazelcastError::NotConnected), "{err:?}");
        assert!(t0.elapsed() < Duration::from_millis(100));
        client.shutdown();
    }
}
