//! Map listeners (protocol sheet §8): the public event types, the `Map` methods that add and
//! remove listeners, and the delivery of events to user handlers. Registration on every member
//! connection (and again on new ones) is the client's job, with `listener_registry` keeping the
//! books.
//!
//! Delivery never blocks the connection's reader, which also carries every answer on that
//! connection: the reader only `try_send`s the raw event into a bounded queue per listener,
//! and a task per listener decodes it and calls the handler. When the queue is full the event is
//! dropped, counted (`ClientStats::events_dropped`) and logged once per listener. Dropping is
//! the right trade for the cache: events are already lossy in Hazelcast itself (§8.2, members
//! do not retry them), so their consumer (the L1 coherence feed) needs a repair path anyway
//! (entry TTLs, reconciliation), whereas a blocked reader would stall every cache lookup on
//! that member.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::codec::map_add_entry_listener as entry_codec;
use super::codec::map_add_near_cache_invalidation_listener as invalidation_codec;
use super::codec::map_remove_entry_listener as remove_codec;
use super::connection::EventHandler;
use super::error::HazelcastError;
use super::listener_registry::{ListenerEntry, ListenerId};
use super::map::Map;
use super::proto::ClientMessage;
use super::serialization::{Data, Value};
use super::state::Shared;
use uuid::Uuid;

/// Events queued per listener before new ones are dropped. Bursts (a put-all of a few thousand
/// entries) fit; a consumer that falls further behind than this is not keeping up, and holding
/// more would only grow memory (events with values can be as large as the values).
const EVENT_QUEUE_DEPTH: usize = 4096;

/// What happened to an entry (§8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryEventKind {
    /// A new entry.
    Added,
    /// An entry was removed (or deleted).
    Removed,
    /// An existing entry got a new value.
    Updated,
    /// An entry was evicted (memory policy, `evict`).
    Evicted,
    /// An entry's time to live or max idle ran out.
    Expired,
    /// `evict_all` on the map: no key, `affected_entries` says how many.
    EvictAll,
    /// `clear` on the map: no key, `affected_entries` says how many.
    ClearAll,
    /// An entry was merged after a split-brain heal.
    Merged,
    /// An invalidation (for near caches; this API delivers those as [`Invalidation`]s).
    Invalidation,
    /// An entry was loaded from a map store.
    Loaded,
    /// A type this client does not know (a newer member).
    Other(i32),
}

impl EntryEventKind {
    fn from_wire(t: i32) -> EntryEventKind {
        use entry_codec::event_type as t_;
        match t {
            t_::ADDED => EntryEventKind::Added,
            t_::REMOVED => EntryEventKind::Removed,
            t_::UPDATED => EntryEventKind::Updated,
            t_::EVICTED => EntryEventKind::Evicted,
            t_::EXPIRED => EntryEventKind::Expired,
            t_::EVICT_ALL => EntryEventKind::EvictAll,
            t_::CLEAR_ALL => EntryEventKind::ClearAll,
            t_::MERGED => EntryEventKind::Merged,
            t_::INVALIDATION => EntryEventKind::Invalidation,
            t_::LOADED => EntryEventKind::Loaded,
            other => EntryEventKind::Other(other),
        }
    }
}

/// Which entry events a listener wants; combine with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryEventKinds(i32);

impl EntryEventKinds {
    /// [`EntryEventKind::Added`].
    pub const ADDED: EntryEventKinds = EntryEventKinds(entry_codec::event_type::ADDED);
    /// [`EntryEventKind::Removed`].
    pub const REMOVED: EntryEventKinds = EntryEventKinds(entry_codec::event_type::REMOVED);
    /// [`EntryEventKind::Updated`].
    pub const UPDATED: EntryEventKinds = EntryEventKinds(entry_codec::event_type::UPDATED);
    /// [`EntryEventKind::Evicted`].
    pub const EVICTED: EntryEventKinds = EntryEventKinds(entry_codec::event_type::EVICTED);
    /// [`EntryEventKind::Expired`].
    pub const EXPIRED: EntryEventKinds = EntryEventKinds(entry_codec::event_type::EXPIRED);
    /// [`EntryEventKind::EvictAll`].
    pub const EVICT_ALL: EntryEventKinds = EntryEventKinds(entry_codec::event_type::EVICT_ALL);
    /// [`EntryEventKind::ClearAll`].
    pub const CLEAR_ALL: EntryEventKinds = EntryEventKinds(entry_codec::event_type::CLEAR_ALL);
    /// Every change of an entry's presence or value: what a cache's coherence needs.
    pub const ALL_CHANGES: EntryEventKinds = EntryEventKinds(
        entry_codec::event_type::ADDED
            | entry_codec::event_type::REMOVED
            | entry_codec::event_type::UPDATED
            | entry_codec::event_type::EVICTED
            | entry_codec::event_type::EXPIRED
            | entry_codec::event_type::EVICT_ALL
            | entry_codec::event_type::CLEAR_ALL,
    );
}

impl std::ops::BitOr for EntryEventKinds {
    type Output = EntryEventKinds;
    fn bitor(self, rhs: EntryEventKinds) -> EntryEventKinds {
        EntryEventKinds(self.0 | rhs.0)
    }
}

/// One entry event. Keys are the map's String keys; an event for a key of another type (written
/// by some other application) is not delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryEvent {
    /// What happened.
    pub kind: EntryEventKind,
    /// `None` only for `EvictAll` / `ClearAll`.
    pub key: Option<String>,
    /// The new value, when the listener asked for values (and the value is of a kind
    /// [`Value`] represents).
    pub value: Option<Value>,
    /// The value before the change, when the listener asked for values.
    pub old_value: Option<Value>,
    /// Entries affected by `EvictAll` / `ClearAll`.
    pub affected_entries: i32,
}

/// One near-cache invalidation: drop `key` from a local copy, or everything when `all` (after
/// a clear or evict-all).
///
/// The repair fields say where the event stands in its partition's history (§8.2): members
/// number the invalidations of each map and partition (`sequence`, increasing by one) and give
/// each partition a uuid that changes when its history does (data lost with a member). A
/// consumer that tracks them, and compares them with [`Client::fetch_invalidation_metadata`](crate::Client::fetch_invalidation_metadata),
/// knows when it missed events. Partition ids appear here, against this module's habit of
/// hiding them, because the repair metadata is per partition by nature.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalidation {
    /// The key, when it is a String. `None` for `all`, and for a key of another type (written
    /// by some other application): such events still carry their sequence.
    pub key: Option<String>,
    /// The whole map was cleared or evicted: everything of this map is invalid.
    pub all: bool,
    /// The write came from this client (members name the writing client as the source).
    pub from_this_client: bool,
    /// The partition of the key; for `all`, the partition of the map's name (where members
    /// count map-wide invalidations, as the official clients assume).
    pub partition: i32,
    /// The partition's current history uuid, as the member sent it.
    pub partition_uuid: Option<Uuid>,
    /// The invalidation's number in its map and partition (increasing by one).
    pub sequence: i64,
}

/// What one member reported of its invalidation history (§3.3
/// `Map.FetchNearCacheInvalidationMetadata`), for the partitions it owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvalidationMetadata {
    /// The member's uuid.
    pub member: Uuid,
    /// Per map asked about: (partition id, latest sequence).
    pub sequences: Vec<(String, Vec<(i32, i64)>)>,
    /// (partition id, partition uuid).
    pub partition_uuids: Vec<(i32, Uuid)>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Entry { include_value: bool, flags: i32 },
    Invalidation,
}

/// The bounded queue between the readers and one listener's delivery task.
struct Sink {
    tx: mpsc::Sender<ClientMessage>,
    dropped: AtomicU64,
    warned: AtomicBool,
}

/// What the client needs to (re-)register one listener on any connection.
struct ListenerSpec {
    map: Arc<str>,
    kind: Kind,
    sink: Arc<Sink>,
    /// For the client-wide count of dropped events.
    client: std::sync::Weak<Shared>,
}

impl ListenerEntry for ListenerSpec {
    /// The registration request. `localOnly = true`: a smart client registers on every member
    /// and each member reports only its own partitions, so every event arrives once (§8).
    fn add_request(&self) -> ClientMessage {
        match self.kind {
            Kind::Entry {
                include_value,
                flags,
            } => entry_codec::encode_request(&self.map, include_value, flags, true),
            Kind::Invalidation => invalidation_codec::encode_request(
                &self.map,
                invalidation_codec::INVALIDATION_FLAG,
                true,
            ),
        }
    }

    fn decode_add(&self, answer: &ClientMessage) -> Result<Uuid, HazelcastError> {
        Ok(match self.kind {
            Kind::Entry { .. } => entry_codec::decode_response(answer)?,
            Kind::Invalidation => invalidation_codec::decode_response(answer)?,
        })
    }

    /// Both kinds are removed with `Map.RemoveEntryListener`.
    fn remove_request(&self, server_id: Uuid) -> Option<ClientMessage> {
        Some(remove_codec::encode_request(&self.map, server_id))
    }

    /// The reader-side handler: hands the event to the queue or drops it.
    fn handler(&self) -> EventHandler {
        let sink = self.sink.clone();
        let client = self.client.clone();
        let map = self.map.clone();
        Arc::new(move |msg: ClientMessage| {
            if sink.tx.try_send(msg).is_err() {
                sink.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(shared) = client.upgrade() {
                    shared.events_dropped.fetch_add(1, Ordering::Relaxed);
                }
                if !sink.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        map = %map,
                        queue = EVENT_QUEUE_DEPTH,
                        "listener is not keeping up; dropping its events (counted in stats; logged once)"
                    );
                }
            }
        })
    }
}

impl Map {
    /// Calls `handler` for the entry events of this map whose kinds are in `kinds`, with values
    /// when `include_value`. The listener lives on every member connection and is registered
    /// again on new connections and after a reconnect; events that arrive while the client is
    /// disconnected are lost. Fails if the client is not connected or a member refuses the
    /// registration.
    pub async fn add_entry_listener(
        &self,
        include_value: bool,
        kinds: EntryEventKinds,
        handler: impl Fn(EntryEvent) + Send + Sync + 'static,
    ) -> Result<ListenerId, HazelcastError> {
        let kind = Kind::Entry {
            include_value,
            flags: kinds.0,
        };
        self.add_listener(kind, move |msg, _, _| {
            if msg.message_type() != entry_codec::EVENT_ENTRY {
                return;
            }
            match entry_codec::decode_entry_event(&msg) {
                Ok(e) => {
                    let kind = EntryEventKind::from_wire(e.event_type);
                    let key = match e.key.as_ref().map(string_key) {
                        Some(Some(k)) => Some(k),
                        Some(None) => return,
                        None => None,
                    };
                    handler(EntryEvent {
                        kind,
                        key,
                        value: e.value.and_then(|d| d.to_value().ok()),
                        old_value: e.old_value.and_then(|d| d.to_value().ok()),
                        affected_entries: e.affected,
                    })
                }
                Err(err) => tracing::warn!(error = %err, "bad entry event dropped"),
            }
        })
        .await
    }

    /// Calls `handler` for each near-cache invalidation of this map (single and batched, §8.2).
    /// The member may batch them (`hazelcast.map.invalidation.batch.*`), delaying them up to
    /// its batch frequency.
    pub async fn add_invalidation_listener(
        &self,
        handler: impl Fn(Invalidation) + Send + Sync + 'static,
    ) -> Result<ListenerId, HazelcastError> {
        let name = self.name.clone();
        self.add_listener(Kind::Invalidation, move |msg, me, partition_count| {
            let batch = match msg.message_type() {
                invalidation_codec::EVENT_IMAP_INVALIDATION => {
                    invalidation_codec::decode_invalidation_event(&msg).map(|i| vec![i])
                }
                invalidation_codec::EVENT_IMAP_BATCH_INVALIDATION => {
                    invalidation_codec::decode_batch_invalidation_event(&msg)
                }
                _ => return,
            };
            match batch {
                Ok(batch) => {
                    for inv in batch {
                        // Map-wide events count in the partition of the map's name.
                        let partition = match &inv.key {
                            Some(k) => k.partition_id(partition_count),
                            None => Data::from_string(&name).partition_id(partition_count),
                        };
                        handler(Invalidation {
                            all: inv.key.is_none(),
                            key: inv.key.as_ref().and_then(string_key),
                            from_this_client: inv.source == Some(me),
                            partition,
                            partition_uuid: inv.partition_uuid,
                            sequence: inv.sequence,
                        });
                    }
                }
                Err(err) => tracing::warn!(error = %err, "bad invalidation event dropped"),
            }
        })
        .await
    }

    /// Removes a listener from every member; `false` if it was not registered.
    pub async fn remove_listener(&self, id: ListenerId) -> Result<bool, HazelcastError> {
        self.shared.remove_listener(id).await
    }

    async fn add_listener(
        &self,
        kind: Kind,
        deliver: impl Fn(ClientMessage, Uuid, i32) + Send + Sync + 'static,
    ) -> Result<ListenerId, HazelcastError> {
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE_DEPTH);
        let spec = ListenerSpec {
            map: self.name.clone(),
            kind,
            sink: Arc::new(Sink {
                tx,
                dropped: AtomicU64::new(0),
                warned: AtomicBool::new(false),
            }),
            client: Arc::downgrade(&self.shared),
        };
        let me = self.shared.uuid;
        let client = Arc::downgrade(&self.shared);
        // Ends when the listener is removed and its connections let go of the queue.
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                // Read per event: 0 only before the first connection, when no event can come.
                let count = client.upgrade().map_or(0, |c| c.partition_count());
                // A panicking handler loses that event, not the listener.
                if std::panic::catch_unwind(AssertUnwindSafe(|| deliver(msg, me, count))).is_err() {
                    tracing::error!("listener handler panicked; event lost");
                }
            }
        });
        self.shared.add_listener(Arc::new(spec)).await
    }
}

fn string_key(d: &Data) -> Option<String> {
    match d.to_value() {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_combine_into_the_protocol_flags() {
        assert_eq!((EntryEventKinds::ADDED | EntryEventKinds::REMOVED).0, 3);
        assert_eq!(EntryEventKinds::ALL_CHANGES.0, 0x7f);
    }

    #[test]
    fn wire_event_types_map_to_kinds_and_unknown_ones_are_kept() {
        assert_eq!(EntryEventKind::from_wire(1), EntryEventKind::Added);
        assert_eq!(EntryEventKind::from_wire(64), EntryEventKind::ClearAll);
        assert_eq!(EntryEventKind::from_wire(4096), EntryEventKind::Other(4096));
    }

    #[test]
    fn only_string_keys_are_delivered() {
        assert_eq!(string_key(&Data::from_string("k")), Some("k".into()));
        assert_eq!(string_key(&Data::from_i32(1)), None);
    }
}
