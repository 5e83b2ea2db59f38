//! The client: keeps one authenticated connection to the cluster (reconnecting with backoff and
//! jitter when it is lost) and runs invocations on it: correlation ids, partition ids, the
//! per-request deadline and the retry rules of protocol sheet §7.3.
//!
//! Routing is unisocket for now: every request travels on the one connection and carries its
//! key's partition id, so the member executes it on the right partition.

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::backoff::{Backoff, BackoffConfig};
use super::codec::error as error_codec;
use super::connection::{Connection, ConnectionSettings};
use super::error::HazelcastError;
use super::map::Map;
use super::partition;
use super::proto::{ClientMessage, ReaderLimits};
use super::serialization::Data;
use super::uuid::Uuid;

/// Everything the client needs; validated by the companion's configuration before use.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub cluster_name: String,
    /// Member addresses as `host:port`, tried in order.
    pub addresses: Vec<String>,
    pub client_name: String,
    /// Bounds the TCP connect and the authentication round trip together.
    pub connect_timeout: Duration,
    /// Deadline for one operation including its retries. Short by default: a cache answer that
    /// takes seconds is worth less than going to the origin.
    pub invocation_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub backoff: BackoffConfig,
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

/// A handle to the cluster; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    uuid: Uuid,
    ids: Arc<AtomicI64>,
    /// The live connection, if any. A std `RwLock`: readers clone the `Arc` and let go at once.
    current: RwLock<Option<Arc<Connection>>>,
    partition_count: AtomicI32,
    connected: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

/// Retries of retryable failures: the first few go at once, later ones wait a little longer
/// each time, up to this pause (protocol sheet §7.3, Java's scheme).
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

impl Client {
    /// Starts the client and its background connection manager. Never fails: an unreachable
    /// cluster is reported in the log and retried until `shutdown`.
    pub fn start(config: ClientConfig) -> Client {
        let (connected, _) = watch::channel(false);
        let (shutdown, _) = watch::channel(false);
        let client = Client {
            inner: Arc::new(Inner {
                config,
                uuid: Uuid::new_v4(),
                ids: Arc::new(AtomicI64::new(1)),
                current: RwLock::new(None),
                partition_count: AtomicI32::new(0),
                connected,
                shutdown,
            }),
        };
        tokio::spawn(manage_connection(client.clone()));
        client
    }

    pub fn is_connected(&self) -> bool {
        self.connection().is_some()
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

    /// Stops reconnecting and closes the connection.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        if let Some(c) = self.connection() {
            c.close("client shut down");
        }
    }

    fn connection(&self) -> Option<Arc<Connection>> {
        let guard = self
            .inner
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    fn set_connection(&self, conn: Option<Arc<Connection>>) {
        let up = conn.is_some();
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = conn;
        let _ = self.inner.connected.send(up);
    }

    /// The partition count the cluster reported (0 until the first connection).
    pub(crate) fn partition_count(&self) -> i32 {
        self.inner.partition_count.load(Ordering::Relaxed)
    }

    /// Runs one request: sets its partition id (from `target`) and a fresh correlation id
    /// for every attempt, waits for the answer within the invocation timeout, turns an error
    /// answer into `HazelcastError::Server`, and retries what §7.3 allows. `idempotent` is the
    /// message definition's `retryable` flag.
    pub(crate) async fn invoke(
        &self,
        mut request: ClientMessage,
        target: Target<'_>,
        idempotent: bool,
    ) -> Result<ClientMessage, HazelcastError> {
        let timeout = self.inner.config.invocation_timeout;
        let deadline = Instant::now() + timeout;
        let mut attempt: u32 = 0;
        loop {
            // Fail fast while disconnected: the caller (the cache) has a better answer than
            // waiting, the origin.
            let conn = self.connection().ok_or(HazelcastError::NotConnected)?;
            let pid = match target {
                Target::Key(k) => partition::partition_id(k, self.partition_count()),
                Target::Partition(p) => p,
                Target::Any => -1,
            };
            request.set_partition_id(pid);
            let id = conn.next_correlation_id();
            request.set_correlation_id(id);

            let err = match conn.send(request.clone()) {
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
    }
}

/// Keeps a connection up: tries each address in turn, waits with backoff after a full round of
/// failures, and starts over as soon as a live connection closes.
async fn manage_connection(client: Client) {
    let inner = &client.inner;
    let settings = settings(&inner.config, inner.uuid);
    let mut backoff = Backoff::new(inner.config.backoff);
    let mut shutdown = inner.shutdown.subscribe();
    let mut known_cluster: Option<Uuid> = None;
    let mut failures_in_a_row: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut last_error = None;
        for address in &inner.config.addresses {
            match Connection::open(address, &settings, inner.ids.clone()).await {
                Ok(conn) => {
                    let auth = &conn.auth;
                    let held = inner.partition_count.load(Ordering::Relaxed);
                    if held != 0 && held != auth.partition_count {
                        // A different partition count means a differently laid out cluster;
                        // routing by the old count would send keys to the wrong partitions.
                        tracing::error!(
                            member = %address, held, got = auth.partition_count,
                            "member reports a different partition count; refusing it"
                        );
                        conn.close("partition count mismatch");
                        continue;
                    }
                    inner
                        .partition_count
                        .store(auth.partition_count, Ordering::Relaxed);
                    if known_cluster.is_some() && known_cluster != auth.cluster_id {
                        tracing::warn!(member = %address, "the cluster was restarted or replaced (new cluster id)");
                    }
                    known_cluster = auth.cluster_id;
                    tracing::info!(
                        member = %address,
                        cluster = %inner.config.cluster_name,
                        server_version = %auth.server_version,
                        partitions = auth.partition_count,
                        "connected to Hazelcast"
                    );
                    client.set_connection(Some(conn.clone()));
                    backoff.reset();
                    failures_in_a_row = 0;
                    tokio::select! {
                        _ = conn.wait_closed() => {}
                        _ = shutdown.changed() => { conn.close("client shut down"); return; }
                    }
                    client.set_connection(None);
                    tracing::warn!(member = %address, "lost the Hazelcast connection; reconnecting");
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some(err) = last_error else { continue };
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
    }
}
