//! One authenticated TCP connection to one Hazelcast member: the only file that touches a
//! socket. It writes `CP2` and the authentication request, then runs a reader task (bytes →
//! messages → the waiting invocation or the listener), a writer task (batches queued requests
//! into few writes) and a heartbeat task (ping on write-idleness, close on read-idleness,
//! protocol sheet §7.1). The protocol itself lives in `proto` and `codec`; which connections
//! exist and what travels on each is the client's business.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use super::cluster::ConnectionId;
use super::codec::client_authentication::{self, AuthRequest, AuthResponse};
use super::codec::{client_ping, error as error_codec};
use super::error::HazelcastError;
use super::proto::{ClientMessage, MessageReader, ReaderLimits};
use uuid::Uuid;

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
    /// Authentication `routingMode` (§4.1): 1 = SMART (a connection per member).
    pub routing_mode: u8,
}

type Reply = oneshot::Sender<Result<ClientMessage, HazelcastError>>;
/// Called on the reader task for each event of a listener: must not block (it holds up every
/// answer on the connection), so handlers only decode cheaply or hand the event on.
pub(crate) type EventHandler = Arc<dyn Fn(ClientMessage) + Send + Sync>;

/// Source of connection ids, unique for the process.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

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
    waiting: HashMap<i64, Reply, BuildHasherDefault<CorrelationIdHasher>>,
}

/// Hashes correlation ids for the pending map with one multiplication. Ids are our own, from
/// an increasing counter (never attacker-chosen), so the DoS resistance of the default SipHash
/// buys nothing, and SipHash was ~0.9 % of the benchmark client's CPU samples (two hashes per
/// operation). The multiplication by an odd constant spreads sequential ids over the
/// high bits, which the map's control bytes use; an identity hash would put them all in one
/// group.
#[derive(Default)]
struct CorrelationIdHasher(u64);

impl Hasher for CorrelationIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for `i64` keys; a plain FNV-1a keeps any other key type correct.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_i64(&mut self, id: i64) {
        self.0 = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) struct Connection {
    /// Unique for the process; names this connection in logs and in the cluster view rules.
    pub id: ConnectionId,
    pub address: String,
    pub auth: AuthResponse,
    /// The member behind it (the auth answer's member uuid, never null once authenticated).
    pub member: Uuid,
    /// Keyed requests sent on this connection (each attempt counts), for tests and metrics.
    pub keyed_requests: AtomicU64,
    /// Requests without a partition sent on this connection.
    pub other_requests: AtomicU64,
    id_source: Arc<AtomicI64>,
    /// Requests in wire form: the invocation encodes each attempt once, straight into the
    /// bytes the writer copies into its batch.
    writer: mpsc::Sender<Bytes>,
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

        let Some(member) = auth.member_uuid else {
            return Err(HazelcastError::Protocol(format!(
                "{address} authenticated without a member uuid"
            )));
        };
        let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE_DEPTH);
        let (closing_tx, closing_rx) = watch::channel(false);
        let conn = Arc::new(Connection {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            address: address.to_string(),
            auth,
            member,
            keyed_requests: AtomicU64::new(0),
            other_requests: AtomicU64::new(0),
            id_source,
            writer: writer_tx,
            pending: Mutex::new(Pending {
                closed: None,
                waiting: HashMap::default(),
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
        self.send_wire(msg.correlation_id(), msg.to_wire().freeze())
    }

    /// [`Self::send`] for a request already in wire form whose header carries `id` (see
    /// `proto::patch_request_ids`).
    pub fn send_wire(
        &self,
        id: i64,
        wire: Bytes,
    ) -> Result<oneshot::Receiver<Result<ClientMessage, HazelcastError>>, HazelcastError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if let Some(reason) = &pending.closed {
                return Err(self.closed_error(reason));
            }
            pending.waiting.insert(id, tx);
        }
        if let Err(e) = self.writer.try_send(wire) {
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
    pub fn add_listener(&self, correlation_id: i64, handler: EventHandler) {
        lock(&self.listeners).insert(correlation_id, handler);
    }

    /// Stops routing events of `correlation_id`; later ones are dropped.
    pub fn remove_listener(&self, correlation_id: i64) {
        lock(&self.listeners).remove(&correlation_id);
    }

    /// Why the connection closed, once it has.
    #[cfg(test)]
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.pending).closed.clone()
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
        self.closing.send_replace(true);
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
        routing_mode: settings.routing_mode,
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
    mut queue: mpsc::Receiver<Bytes>,
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
        if first.len() >= WRITE_BATCH_BYTES {
            // A large request (an entry being stored) goes out as it is: copying it into the
            // batch would hold it twice and grow the batch buffer to its size for good.
            if let Err(e) = socket.write_all(&first).await {
                conn.close(&format!("write: {e}"));
                return;
            }
            conn.last_write_ms.store(conn.now_ms(), Ordering::Relaxed);
            continue;
        }
        buf.clear();
        buf.extend_from_slice(&first);
        // Let the tasks that are ready right now queue their requests before this write. The
        // request that woke us lands us in tokio's LIFO slot, so without the yield we write
        // ~3 requests per syscall under load and the member pays a read per write; with it,
        // ~18 (docs/benchmarks.md: get at 64 in flight went from ~115k to ~180k ops/s).
        tokio::task::yield_now().await;
        while buf.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(m) => buf.extend_from_slice(&m),
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

#[cfg(test)]
mod tests {
    //! Bad input from a member, through a real loopback socket to an in-process fake member:
    //! each case ends the connection with a clear reason (or, for unknown messages, does not).

    use super::*;
    use crate::codec::MessageBuilder;
    use crate::codec::{client_add_cluster_view_listener as view_codec, map_size};
    use crate::fake_member::{self, Session};
    use crate::proto::flags;

    fn settings(max_frame_len: usize) -> ConnectionSettings {
        settings_with(ReaderLimits {
            max_frame_len,
            ..ReaderLimits::default()
        })
    }

    fn settings_with(reader_limits: ReaderLimits) -> ConnectionSettings {
        ConnectionSettings {
            cluster_name: "dev".into(),
            client_name: "test".into(),
            client_uuid: Uuid::new_v4(),
            connect_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            reader_limits,
            routing_mode: 1,
        }
    }

    /// Opens a connection to a fake member that answers the first request with `bytes`, sends
    /// that request, and returns the connection and what became of the request.
    async fn answer_first_request_with(
        bytes: Vec<u8>,
        close_after: bool,
        max_frame_len: usize,
    ) -> (Arc<Connection>, Result<ClientMessage, HazelcastError>) {
        answer_first_request_within(
            bytes,
            close_after,
            ReaderLimits {
                max_frame_len,
                ..ReaderLimits::default()
            },
        )
        .await
    }

    async fn answer_first_request_within(
        bytes: Vec<u8>,
        close_after: bool,
        limits: ReaderLimits,
    ) -> (Arc<Connection>, Result<ClientMessage, HazelcastError>) {
        let bytes = Arc::new(bytes);
        let address = fake_member::start(move |mut s: Session| {
            let bytes = bytes.clone();
            async move {
                if s.read().await.is_some() {
                    s.send_raw(&bytes).await;
                    if !close_after {
                        s.wait_closed_by_client(Duration::from_secs(10)).await;
                    }
                }
            }
        })
        .await;
        let conn = Connection::open(
            &address,
            &settings_with(limits),
            Arc::new(AtomicI64::new(1)),
        )
        .await
        .unwrap();
        let mut req = map_size::encode_request("m");
        req.set_correlation_id(conn.next_correlation_id());
        let rx = conn.send(req).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("the request is settled, not left hanging")
            .unwrap_or_else(|_| Err(HazelcastError::Protocol("dropped".into())));
        (conn, answer)
    }

    fn frame_header(len: i32, flags: u16) -> Vec<u8> {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(&flags.to_le_bytes());
        v
    }

    #[tokio::test]
    async fn a_truncated_frame_then_close_fails_the_waiting_request() {
        // A frame announcing 40 bytes of which only 16 arrive before the member closes.
        let mut bytes = frame_header(40, flags::UNFRAGMENTED);
        bytes.extend_from_slice(&[0u8; 10]);
        let (conn, answer) = answer_first_request_with(bytes, true, 1024).await;
        assert!(
            matches!(answer, Err(HazelcastError::ConnectionClosed { .. })),
            "{answer:?}"
        );
        conn.wait_closed().await;
        assert_eq!(conn.close_reason().as_deref(), Some("closed by the member"));
    }

    #[tokio::test]
    async fn a_frame_longer_than_the_limit_closes_the_connection_with_a_clear_error() {
        // 1 GiB announced, limit 1 KiB: refused from the 6-byte header, before any of it is
        // reserved or read.
        let (conn, answer) =
            answer_first_request_with(frame_header(1 << 30, flags::UNFRAGMENTED), false, 1024)
                .await;
        assert!(
            matches!(answer, Err(HazelcastError::ConnectionClosed { .. })),
            "{answer:?}"
        );
        let reason = conn.close_reason().unwrap();
        assert!(
            reason.contains("frame length 1073741824 exceeds the limit of 1024 bytes"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_value_over_a_configured_frame_limit_is_refused_from_its_header() {
        // The client's own default would take a 64 MiB frame; limits sized for 1 MiB values
        // (2 MiB frames, what hzcache's companion configures) refuse it from the 6-byte header,
        // with nothing of it reserved.
        let limits = ReaderLimits {
            max_frame_len: 2 * 1024 * 1024,
            max_message_len: 18 * 1024 * 1024,
            ..ReaderLimits::default()
        };
        let mut bytes = frame_header(64 << 20, flags::UNFRAGMENTED);
        bytes.extend_from_slice(&[0u8; 64]);
        let (conn, answer) = answer_first_request_within(bytes, false, limits).await;
        assert!(
            matches!(answer, Err(HazelcastError::ConnectionClosed { .. })),
            "{answer:?}"
        );
        let reason = conn.close_reason().unwrap();
        assert!(
            reason.contains("frame length 67108864 exceeds the limit of 2097152 bytes"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_message_of_frames_that_each_fit_but_together_do_not_closes_the_connection() {
        let limits = ReaderLimits {
            max_frame_len: 1024,
            max_message_len: 2048,
            max_pending_fragments: 1,
        };
        // An answer's initial frame, then 1000-byte frames without an end: the third one's
        // header already takes the message past 2048 bytes.
        let mut bytes = frame_header(22, flags::UNFRAGMENTED);
        bytes.extend_from_slice(&[0u8; 16]);
        for _ in 0..3 {
            bytes.extend(frame_header(1000, 0));
            bytes.extend_from_slice(&[0u8; 994]);
        }
        let (conn, answer) = answer_first_request_within(bytes, false, limits).await;
        assert!(answer.is_err(), "{answer:?}");
        conn.wait_closed().await;
        let reason = conn.close_reason().unwrap();
        assert!(
            reason.contains("message of at least 3022 bytes exceeds the limit of 2048 bytes"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_frame_length_below_the_header_size_closes_the_connection() {
        for len in [5, 0, -1] {
            let (conn, answer) =
                answer_first_request_with(frame_header(len, flags::UNFRAGMENTED), false, 1024)
                    .await;
            assert!(answer.is_err());
            let reason = conn.close_reason().unwrap();
            assert!(reason.contains("below the 6-byte frame header"), "{reason}");
        }
    }

    #[tokio::test]
    async fn events_of_unknown_types_or_listeners_are_dropped_and_the_connection_keeps_serving() {
        let address = fake_member::start(|mut s: Session| async move {
            while let Some(req) = s.read().await {
                let id = req.correlation_id();
                // An event nobody registered for, an event of a type nobody knows on a
                // registered id, then the real answer.
                let unknown = MessageBuilder::event(0x7f_7f_00, |_| {}).build();
                s.send(unknown.clone(), 424242).await;
                s.send(unknown, id - 1).await;
                s.send(map_size::encode_response(7), id).await;
            }
        })
        .await;
        let conn = Connection::open(&address, &settings(1024), Arc::new(AtomicI64::new(1)))
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        // A listener that, like the client's, ignores message types it does not know.
        let listener_id = conn.next_correlation_id();
        conn.add_listener(
            listener_id,
            Arc::new(move |m: ClientMessage| {
                if m.message_type() == view_codec::EVENT_MEMBERS_VIEW {
                    lock(&s).push(m.correlation_id());
                }
            }),
        );
        for _ in 0..3 {
            let mut req = map_size::encode_request("m");
            req.set_correlation_id(conn.next_correlation_id());
            let answer = conn.send(req).unwrap().await.unwrap().unwrap();
            assert_eq!(map_size::decode_response(&answer).unwrap(), 7);
        }
        assert!(!conn.is_closed());
        assert!(lock(&seen).is_empty());
    }
}
