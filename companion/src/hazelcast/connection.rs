//! One authenticated TCP connection to one Hazelcast member: the only file that touches a
//! socket. It writes `CP2` and the authentication request, then runs a reader task (bytes →
//! messages → the waiting invocation or the listener), a writer task (batches queued requests
//! into few writes) and a heartbeat task (ping on write-idleness, close on read-idleness,
//! protocol sheet §7.1). The protocol itself lives in `proto` and `codec`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use super::codec::client_authentication::{self, AuthRequest, AuthResponse};
use super::codec::{client_ping, error as error_codec};
use super::error::HazelcastError;
use super::proto::{ClientMessage, MessageReader, ReaderLimits};
use super::uuid::Uuid;

/// What a connection needs to know to open and keep itself alive.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionSettings {
    pub cluster_name: String,
    pub client_name: String,
    pub client_uuid: Uuid,
    pub connect_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub reader_limits: ReaderLimits,
}

type Reply = oneshot::Sender<Result<ClientMessage, HazelcastError>>;
type EventHandler = Arc<dyn Fn(ClientMessage) + Send + Sync>;

/// Requests queued for the writer. Bounded so that a stalled member pushes back on callers
/// instead of growing memory without limit.
const WRITE_QUEUE_DEPTH: usize = 4096;
/// The writer gathers queued messages into one buffer up to this size before a write: fewer
/// syscalls under load, and no extra latency when only one request is queued.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Initial read buffer; grows only as far as the reader's frame limit allows.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// The member caps unauthenticated messages at 4096 bytes (protocol sheet §1).
const MAX_AUTH_REQUEST_BYTES: usize = 4096;

/// Pending invocations by correlation id. A std `Mutex` is right here: every critical section is
/// a map insert or remove with no `.await` inside.
struct Pending {
    closed: Option<String>,
    waiting: HashMap<i64, Reply>,
}

pub(crate) struct Connection {
    pub address: String,
    pub auth: AuthResponse,
    id_source: Arc<AtomicI64>,
    writer: mpsc::Sender<ClientMessage>,
    pending: Mutex<Pending>,
    listeners: Mutex<HashMap<i64, EventHandler>>,
    started: Instant,
    last_read_ms: AtomicU64,
    last_write_ms: AtomicU64,
    closing: watch::Sender<bool>,
    closed: AtomicBool,
}

impl Connection {
    /// Connects, authenticates and starts the connection's tasks. Fails with a clear error when
    /// the member is unreachable, slow, or refuses the credentials.
    pub async fn open(
        address: &str,
        settings: &ConnectionSettings,
        id_source: Arc<AtomicI64>,
    ) -> Result<Arc<Connection>, HazelcastError> {
        let connect = async {
            let mut stream = TcpStream::connect(address).await.map_err(|e| {
                HazelcastError::ConnectionClosed {
                    member: address.to_string(),
                    reason: format!("connect: {e}"),
                }
            })?;
            // Requests are small and latency-bound; Nagle would hold them back.
            let _ = stream.set_nodelay(true);
            let auth = authenticate(&mut stream, address, settings, &id_source).await?;
            Ok::<_, HazelcastError>((stream, auth))
        };
        let (stream, (auth, leftover, reader)) =
            match tokio::time::timeout(settings.connect_timeout, connect).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(HazelcastError::ConnectionClosed {
                        member: address.to_string(),
                        reason: format!(
                            "no authenticated answer within {:?}",
                            settings.connect_timeout
                        ),
                    })
                }
            };

        let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE_DEPTH);
        let (closing_tx, closing_rx) = watch::channel(false);
        let conn = Arc::new(Connection {
            address: address.to_string(),
            auth,
            id_source,
            writer: writer_tx,
            pending: Mutex::new(Pending {
                closed: None,
                waiting: HashMap::new(),
            }),
            listeners: Mutex::new(HashMap::new()),
            started: Instant::now(),
            last_read_ms: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            closing: closing_tx,
            closed: AtomicBool::new(false),
        });

        let (read_half, write_half) = stream.into_split();
        tokio::spawn(read_loop(
            conn.clone(),
            read_half,
            reader,
            leftover,
            closing_rx.clone(),
        ));
        tokio::spawn(write_loop(
            conn.clone(),
            write_half,
            writer_rx,
            closing_rx.clone(),
        ));
        tokio::spawn(heartbeat_loop(
            conn.clone(),
            settings.heartbeat_interval,
            settings.heartbeat_timeout,
            closing_rx,
        ));
        Ok(conn)
    }

    pub fn next_correlation_id(&self) -> i64 {
        self.id_source.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request whose correlation id is already set and returns where its answer will
    /// arrive. Fails at once if the connection is closed or its write queue is full.
    pub fn send(
        &self,
        msg: ClientMessage,
    ) -> Result<oneshot::Receiver<Result<ClientMessage, HazelcastError>>, HazelcastError> {
        let id = msg.correlation_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.closed_error(reason));
            }
            pending.waiting.insert(id, tx);
        }
        if let Err(e) = self.writer.try_send(msg) {
            self.forget(id);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => HazelcastError::ConnectionClosed {
                    member: self.address.clone(),
                    reason: "write queue full (member not keeping up)".into(),
                },
                mpsc::error::TrySendError::Closed(_) => self.closed_error("writer stopped"),
            });
        }
        Ok(rx)
    }

    /// Drops the waiter for a request that timed out, so a late answer is discarded.
    pub fn forget(&self, correlation_id: i64) {
        lock(&self.pending).waiting.remove(&correlation_id);
    }

    /// Routes events carrying `correlation_id` (a listener registration's id) to `handler`.
    #[allow(dead_code)] // used by listeners (cluster view, invalidations) as they are added
    pub fn add_listener(&self, correlation_id: i64, handler: EventHandler) {
        lock(&self.listeners).insert(correlation_id, handler);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves once the connection has closed.
    pub async fn wait_closed(&self) {
        let mut rx = self.closing.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Closes the connection once: every waiting invocation fails with `ConnectionClosed`.
    pub fn close(&self, reason: &str) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let waiting = {
            let mut pending = lock(&self.pending);
            pending.closed = Some(reason.to_string());
            std::mem::take(&mut pending.waiting)
        };
        tracing::warn!(member = %self.address, reason, "Hazelcast connection closed");
        for (_, tx) in waiting {
            let _ = tx.send(Err(self.closed_error(reason)));
        }
        let _ = self.closing.send(true);
    }

    fn closed_error(&self, reason: &str) -> HazelcastError {
        HazelcastError::ConnectionClosed {
            member: self.address.clone(),
            reason: reason.to_string(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn dispatch(&self, msg: ClientMessage) {
        let id = msg.correlation_id();
        if msg.is_event() {
            let handler = lock(&self.listeners).get(&id).cloned();
            match handler {
                Some(h) => h(msg),
                // Events for listeners we do not hold (or MemberGroupsView, sent with id 0) are
                // dropped, never treated as errors (protocol sheet §8.3).
                None => tracing::trace!(correlation_id = id, "dropping unrouted event"),
            }
            return;
        }
        let waiter = lock(&self.pending).waiting.remove(&id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(msg));
            }
            None => tracing::debug!(
                correlation_id = id,
                "answer for an invocation no longer waiting"
            ),
        }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the maps it guards
/// stay consistent after any single insert or remove.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `CP2` and the authentication request, reads the answer and checks its status.
/// Returns the answer, any bytes read past it, and the reader (which may hold partial state).
async fn authenticate(
    stream: &mut TcpStream,
    address: &str,
    settings: &ConnectionSettings,
    id_source: &AtomicI64,
) -> Result<(AuthResponse, BytesMut, MessageReader), HazelcastError> {
    let labels: [String; 0] = [];
    let mut request = client_authentication::encode_request(&AuthRequest {
        cluster_name: &settings.cluster_name,
        client_uuid: settings.client_uuid,
        client_type: "RST",
        client_version: env!("CARGO_PKG_VERSION"),
        client_name: &settings.client_name,
        labels: &labels,
        // Unisocket for now: all requests travel on one connection, with the right partition id.
        routing_mode: 0,
    });
    let id = id_source.fetch_add(1, Ordering::Relaxed);
    request.set_correlation_id(id);
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(b"CP2");
    request.write_to(&mut out);
    if out.len() > MAX_AUTH_REQUEST_BYTES {
        return Err(HazelcastError::AuthenticationFailed {
            member: address.to_string(),
            reason: format!(
                "authentication request of {} bytes exceeds the member's 4096-byte limit; shorten the cluster or client name",
                out.len()
            ),
        });
    }
    let io_err = |e: std::io::Error| HazelcastError::ConnectionClosed {
        member: address.to_string(),
        reason: e.to_string(),
    };
    stream.write_all(&out).await.map_err(io_err)?;

    let mut reader = MessageReader::new(settings.reader_limits);
    let mut buf = BytesMut::with_capacity(4096);
    let answer = loop {
        if let Some(msg) = reader.read(&mut buf)? {
            if msg.correlation_id() == id {
                break msg;
            }
            continue;
        }
        let n = stream.read_buf(&mut buf).await.map_err(io_err)?;
        if n == 0 {
            return Err(HazelcastError::ConnectionClosed {
                member: address.to_string(),
                reason: "closed during authentication".into(),
            });
        }
    };
    if answer.message_type() == error_codec::ERROR_MESSAGE_TYPE {
        let holders = error_codec::decode_error(&answer)?;
        return Err(HazelcastError::from_holders(&holders));
    }
    let auth = client_authentication::decode_response(&answer)?;
    let reason = match auth.status {
        0 => return Ok((auth, buf, reader)),
        1 => format!(
            "credentials failed: is the cluster name '{}' right?",
            settings.cluster_name
        ),
        2 => "serialization version mismatch".to_string(),
        3 => "client not allowed in this cluster".to_string(),
        other => format!("unknown authentication status {other}"),
    };
    Err(HazelcastError::AuthenticationFailed {
        member: address.to_string(),
        reason,
    })
}

async fn read_loop(
    conn: Arc<Connection>,
    mut socket: tokio::net::tcp::OwnedReadHalf,
    mut reader: MessageReader,
    mut buf: BytesMut,
    mut closing: watch::Receiver<bool>,
) {
    buf.reserve(READ_BUFFER_BYTES);
    loop {
        loop {
            match reader.read(&mut buf) {
                Ok(Some(msg)) => conn.dispatch(msg),
                Ok(None) => break,
                Err(e) => {
                    conn.close(&format!("protocol error: {e}"));
                    return;
                }
            }
        }
        tokio::select! {
            read = socket.read_buf(&mut buf) => match read {
                Ok(0) => { conn.close("closed by the member"); return; }
                Ok(_) => conn.last_read_ms.store(conn.now_ms(), Ordering::Relaxed),
                Err(e) => { conn.close(&format!("read: {e}")); return; }
            },
            _ = closing.changed() => return,
        }
    }
}

async fn write_loop(
    conn: Arc<Connection>,
    mut socket: tokio::net::tcp::OwnedWriteHalf,
    mut queue: mpsc::Receiver<ClientMessage>,
    mut closing: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(WRITE_BATCH_BYTES);
    loop {
        let first = tokio::select! {
            m = queue.recv() => m,
            _ = closing.changed() => None,
        };
        let Some(first) = first else {
            let _ = socket.shutdown().await;
            return;
        };
        buf.clear();
        first.write_to(&mut buf);
        while buf.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(m) => m.write_to(&mut buf),
                Err(_) => break,
            }
        }
        if let Err(e) = socket.write_all(&buf).await {
            conn.close(&format!("write: {e}"));
            return;
        }
        conn.last_write_ms.store(conn.now_ms(), Ordering::Relaxed);
    }
}

async fn heartbeat_loop(
    conn: Arc<Connection>,
    interval: Duration,
    timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    // Check a few times per interval so an idle connection is pinged close to on time.
    let mut tick = tokio::time::interval((interval / 4).max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = closing.changed() => return,
        }
        let now = conn.now_ms();
        let since_read = now.saturating_sub(conn.last_read_ms.load(Ordering::Relaxed));
        if since_read > timeout.as_millis() as u64 {
            conn.close(&format!(
                "no data from the member for {since_read} ms (heartbeat timeout)"
            ));
            return;
        }
        let since_write = now.saturating_sub(conn.last_write_ms.load(Ordering::Relaxed));
        if since_write >= interval.as_millis() as u64 {
            let mut ping = client_ping::encode_request();
            ping.set_correlation_id(conn.next_correlation_id());
            let id = ping.correlation_id();
            match conn.send(ping) {
                Ok(rx) => {
                    let c = conn.clone();
                    tokio::spawn(async move {
                        // The answer only matters as proof of life, which the reader records;
                        // a missing one is caught by the read-idleness check above.
                        if tokio::time::timeout(timeout, rx).await.is_err() {
                            c.forget(id);
                        }
                    });
                }
                Err(_) => return,
            }
        }
    }
}
