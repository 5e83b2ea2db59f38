//! The client's shared core, one per `Client` (behind an `Arc`): its configuration and
//! identity, the open connections by member, the cluster view, the listener registry, the
//! outstanding backup acks and the counters. Owns the data and its locking only; the
//! invocation service, the cluster view listener, the listener binder and the connection
//! manager are `impl Shared` blocks in their own modules, each working on this state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::backup_acks::BackupAcks;
use crate::cluster::{ClusterView, ConnectionId};
use crate::codec::client_authentication::routing_mode;
use crate::config::ClientConfig;
use crate::connection::{Connection, ConnectionSettings};
use crate::listener_registry::{ListenerEntry, ListenerId, ListenerRegistry};

pub(crate) struct Shared {
    pub config: ClientConfig,
    pub settings: ConnectionSettings,
    /// This client's uuid, the same on every connection (§4.1).
    pub uuid: Uuid,
    /// Correlation ids, unique across all connections: a backup ack names the request it
    /// acknowledges on another connection than the one that carried the request.
    pub ids: Arc<AtomicI64>,
    /// Connections, cluster view and listeners. A std `Mutex`: every section is a few map
    /// operations with no `.await` inside.
    state: Mutex<State>,
    pub partition_count: AtomicI32,
    /// Round-robin position for requests that may go to any member.
    pub turn: AtomicUsize,
    pub keyed_not_to_owner: AtomicU64,
    pub events_dropped: AtomicU64,
    pub acks: BackupAcks,
    /// Whether writes may be sent backup-aware now: backup acks are on, every member of the
    /// list has an open connection, and the backup listener is registered on all of them
    /// (recomputed by the connection manager; false while any of it is missing).
    pub acks_ready: AtomicBool,
    pub backup_aware_requests: AtomicU64,
    pub backup_ack_timeouts: AtomicU64,
    /// Wakes the connection manager early (a connection closed, the member list changed).
    pub wake: Notify,
    pub connected: watch::Sender<bool>,
    pub shutdown: watch::Sender<bool>,
}

pub(crate) struct State {
    /// Open (or just closed, until the manager prunes them) connections by member uuid.
    pub connections: HashMap<Uuid, Arc<Connection>>,
    pub view: ClusterView,
    pub cluster_id: Option<Uuid>,
    /// The connection carrying the cluster view listener (also while it is being registered).
    pub view_listener: Option<ConnectionId>,
    /// User listeners and the client's own backup listener, as opaque entries.
    pub listeners: ListenerRegistry<Arc<dyn ListenerEntry>>,
    /// The client's own backup-ack listener among them, when backup acks are on.
    pub backup_listener: Option<ListenerId>,
}

impl Shared {
    pub fn new(config: ClientConfig) -> Shared {
        let (connected, _) = watch::channel(false);
        let (shutdown, _) = watch::channel(false);
        let uuid = Uuid::new_v4();
        Shared {
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
                backup_listener: None,
            }),
            partition_count: AtomicI32::new(0),
            turn: AtomicUsize::new(0),
            keyed_not_to_owner: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            acks: BackupAcks::default(),
            acks_ready: AtomicBool::new(false),
            backup_aware_requests: AtomicU64::new(0),
            backup_ack_timeouts: AtomicU64::new(0),
            wake: Notify::new(),
            connected,
            shutdown,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        // Recover from poisoning: every section leaves the maps consistent after each operation.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition count the cluster reported (0 until the first connection).
    pub fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Relaxed)
    }

    /// Whether at least one member connection is open.
    pub fn is_connected(&self) -> bool {
        self.state().connections.values().any(|c| !c.is_closed())
    }

    /// The open connections right now.
    pub fn open_connections(&self) -> Vec<Arc<Connection>> {
        self.state()
            .connections
            .values()
            .filter(|c| !c.is_closed())
            .cloned()
            .collect()
    }

    pub fn connection_by_id(&self, id: ConnectionId) -> Option<Arc<Connection>> {
        self.state()
            .connections
            .values()
            .find(|c| c.id == id && !c.is_closed())
            .cloned()
    }
}

impl State {
    /// Ids of the open connections.
    pub fn open_ids(&self) -> Vec<ConnectionId> {
        self.connections
            .values()
            .filter(|c| !c.is_closed())
            .map(|c| c.id)
            .collect()
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
        routing_mode: routing_mode::SMART,
    }
}
