//! The public `Client`: a smart client in the sense of the official ones (protocol sheet §4.4,
//! §6.4, §7). It keeps one authenticated connection per cluster member, learns the member list
//! and the partition table from the cluster view listener, sends every keyed request to its
//! partition owner, and survives members coming and going. This file is the API surface only:
//! starting and stopping, maps, and what the client knows about the cluster. The work is done
//! below it, each part in its own module: `connection_manager` (connections per member,
//! reconnects), `view_listener` (member list and partition table), `listener_binder` (listeners
//! on every connection), `invocation` (routing, deadlines, retries, backup acks), all on the
//! shared `state`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::codec::map_fetch_near_cache_invalidation_metadata as md_codec;
use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::connection_manager::manage;
use crate::error::HazelcastError;
use crate::invocation::BackupListener;
use crate::listener::InvalidationMetadata;
use crate::listener_registry::ListenerId;
use crate::map::Map;
use crate::serialization::Data;
use crate::state::Shared;

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
    /// Writes sent backup-aware (each attempt counts): they completed once their backups
    /// acknowledged them to the client ([`ClientConfig::backup_acks`]).
    pub backup_aware_requests: u64,
    /// Backup-aware writes that completed after the backup timeout without all their acks.
    pub backup_ack_timeouts: u64,
}

/// A handle to the cluster; cheap to clone. Every clone drives the same connections;
/// [`Client::shutdown`] stops them all.
///
/// ```no_run
/// use std::time::Duration;
/// use hazelcast_client::{Client, ClientConfig};
/// # async fn run() {
/// let client = Client::start(ClientConfig {
///     addresses: vec!["127.0.0.1:5701".into()],
///     ..ClientConfig::default()
/// });
/// if !client.wait_connected(Duration::from_secs(10)).await {
///     eprintln!("no Hazelcast member reachable yet; the client keeps trying");
/// }
/// for member in client.members() {
///     println!("{} {} connected={}", member.address, member.uuid, member.connected);
/// }
/// client.shutdown();
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl Client {
    /// Starts the client and its background connection manager (on the current tokio
    /// runtime). Never fails: an unreachable cluster is reported in the log and retried until
    /// `shutdown`. Operations fail with [`HazelcastError::NotConnected`] meanwhile.
    pub fn start(config: ClientConfig) -> Client {
        let backup_acks = config.backup_acks;
        let shared = Arc::new(Shared::new(config));
        if backup_acks {
            let entry = Arc::new(BackupListener {
                acks: Arc::downgrade(&shared),
            });
            let mut state = shared.state();
            let id = state.listeners.add(entry);
            state.backup_listener = Some(id);
        }
        tokio::spawn(manage(shared.clone()));
        Client { shared }
    }

    /// Whether at least one member connection is open.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// Waits until connected or `timeout` passes; says which.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.connected.subscribe();
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
        Map::new(self.shared.clone(), name)
    }

    /// Stops reconnecting and closes every connection.
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    /// The member list from the cluster view (empty until the first one arrives).
    pub fn members(&self) -> Vec<Member> {
        let state = self.shared.state();
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
        (count > 0).then(|| Data::from_string(key).partition_id(count))
    }

    /// The address of the member owning `key`'s partition, as the client's partition table
    /// says (`None` while the table is unknown).
    pub fn owner_of(&self, key: &str) -> Option<String> {
        let pid = Data::from_string(key).partition_id(self.partition_count());
        let state = self.shared.state();
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
        self.shared.state().view.partitions_version()
    }

    /// Request and event counters, for tests and metrics.
    pub fn stats(&self) -> ClientStats {
        let state = self.shared.state();
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
            keyed_not_to_owner: self.shared.keyed_not_to_owner.load(Ordering::Relaxed),
            events_dropped: self.shared.events_dropped.load(Ordering::Relaxed),
            backup_aware_requests: self.shared.backup_aware_requests.load(Ordering::Relaxed),
            backup_ack_timeouts: self.shared.backup_ack_timeouts.load(Ordering::Relaxed),
        }
    }

    /// The partition count the cluster reported (0 until the first connection).
    pub(crate) fn partition_count(&self) -> i32 {
        self.shared.partition_count()
    }

    /// The id of the cluster the client is connected to (`None` before the first
    /// connection); changes when the whole cluster was restarted or replaced.
    pub fn cluster_id(&self) -> Option<Uuid> {
        self.shared.state().cluster_id
    }

    /// Where listener `id` stands: whether it is registered on every open connection (so
    /// every member's events reach it), and how many registrations of it have succeeded so
    /// far (growing when it is registered on a new or reopened connection).
    pub fn listener_status(&self, id: ListenerId) -> ListenerStatus {
        let state = self.shared.state();
        let open = state.open_ids();
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
        let conns: Vec<Arc<Connection>> = self.shared.open_connections();
        if conns.is_empty() {
            return Err(HazelcastError::NotConnected);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for conn in conns {
            let shared = self.shared.clone();
            let req = md_codec::encode_request(maps, conn.member);
            tasks.spawn(async move {
                let (_, answer) = shared.invoke_on(&conn, req, None).await?;
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
}

/// See [`Client::listener_status`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Registered (answered by the member) on every open connection, and there is one.
    pub everywhere: bool,
    /// Successful registrations since the listener was added.
    pub registrations: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::client_add_cluster_view_listener as view_codec;
    use crate::codec::error::{encode_error, ErrorHolder};
    use crate::codec::MessageBuilder;
    use crate::codec::{client_trigger_partition_assignment as trigger, map_get};
    use crate::fake_member::{self, Session};
    use crate::proto::ClientMessage;
    use crate::serialization::Value;
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::sync::Notify;

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

    /// `wait_connected` after the connection is up (nobody waited while it came up) says so at
    /// once. A `watch` send with no receiver stores nothing, so the flag must be replaced, not
    /// sent: the companion's feed asked only after connecting and never saw the connection.
    #[tokio::test]
    async fn wait_connected_sees_a_connection_made_before_anyone_asked() {
        let address = fake_member::start(move |mut s: Session| async move {
            while let Some(req) = s.read().await {
                let id = req.correlation_id();
                let answer = match req.message_type() {
                    view_codec::REQUEST_TYPE => {
                        MessageBuilder::response(view_codec::RESPONSE_TYPE, |_| {}).build()
                    }
                    trigger::REQUEST_TYPE => trigger::encode_response(),
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
        let started = std::time::Instant::now();
        while !client.is_connected() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never connected"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(client.wait_connected(Duration::from_millis(200)).await);
        client.shutdown();
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
        use crate::codec::custom::{Address, MemberInfo};
        use crate::codec::map_add_entry_listener as entry_codec;
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

    /// How the fake member of the backup-ack tests treats a backup-aware `Map.Set`.
    #[derive(Clone, Copy)]
    enum Acks {
        /// Answer announcing one backup ack, then send it after this delay.
        After(Duration),
        /// Announce one ack and never send it.
        Never,
    }

    /// A one-member cluster that owns every partition, takes the backup listener, and answers
    /// Map.Set and Map.Get; records the flags of each Map.Set and Map.Get it saw and the
    /// backup listener registrations.
    async fn cluster_with_backups(
        acks: Acks,
        config: ClientConfig,
    ) -> (Client, Arc<Mutex<Vec<u16>>>, Arc<Mutex<u32>>) {
        use crate::codec::client_local_backup_listener as backup_codec;
        use crate::codec::custom::{Address, MemberInfo};
        use crate::codec::map_set;
        use crate::proto::{flags, RESPONSE_BACKUP_ACKS_OFFSET};
        let sets: Arc<Mutex<Vec<u16>>> = Arc::default();
        let registrations: Arc<Mutex<u32>> = Arc::default();
        let (seen, regs) = (sets.clone(), registrations.clone());
        let address = fake_member::start(move |mut s: Session| {
            let (seen, regs) = (seen.clone(), regs.clone());
            async move {
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
                let mut backup_listener = None;
                while let Some(req) = s.read().await {
                    let id = req.correlation_id();
                    match req.message_type() {
                        view_codec::REQUEST_TYPE => {
                            let ok = MessageBuilder::response(view_codec::RESPONSE_TYPE, |_| {});
                            s.send(ok.build(), id).await;
                            let members =
                                view_codec::encode_members_view(1, std::slice::from_ref(&me));
                            s.send(members, id).await;
                            let table = [(s.member, (0..271).collect::<Vec<i32>>())];
                            s.send(view_codec::encode_partitions_view(1, &table), id)
                                .await;
                        }
                        trigger::REQUEST_TYPE => s.send(trigger::encode_response(), id).await,
                        backup_codec::REQUEST_TYPE => {
                            *regs.lock().unwrap() += 1;
                            backup_listener = Some(id);
                            let reg = Uuid::from_u128(id as u128);
                            s.send(backup_codec::encode_response(reg), id).await;
                        }
                        map_get::REQUEST_TYPE => {
                            seen.lock().unwrap().push(req.flags());
                            s.send(map_get::encode_response(None), id).await;
                        }
                        map_set::REQUEST_TYPE => {
                            let aware = req.flags() & flags::BACKUP_AWARE != 0;
                            seen.lock().unwrap().push(req.flags());
                            let mut answer = map_set::encode_response();
                            if aware {
                                let f = &mut answer.frames[0];
                                let mut b = bytes::BytesMut::from(&f.content[..]);
                                b[RESPONSE_BACKUP_ACKS_OFFSET] = 1;
                                f.content = b.freeze();
                            }
                            s.send(answer, id).await;
                            if let (true, Acks::After(delay), Some(listener)) =
                                (aware, acks, backup_listener)
                            {
                                tokio::time::sleep(delay).await;
                                s.send(backup_codec::encode_backup_event(id), listener)
                                    .await;
                            }
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        let client = Client::start(ClientConfig {
            addresses: vec![address],
            ..config
        });
        assert!(client.wait_connected(Duration::from_secs(5)).await);
        (client, sets, registrations)
    }

    #[tokio::test]
    async fn a_backup_aware_write_completes_only_once_its_backup_acknowledged_it() {
        let delay = Duration::from_millis(300);
        let (client, sets, registrations) =
            cluster_with_backups(Acks::After(delay), ClientConfig::default()).await;
        let shared = client.shared.clone();
        eventually("backup acks ready", || {
            shared.acks_ready.load(Ordering::Relaxed)
        })
        .await;
        assert_eq!(*registrations.lock().unwrap(), 1);
        let started = Instant::now();
        client
            .map("m")
            .set("k", &crate::Value::from("v"), crate::Ttl::MapDefault)
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took >= delay, "completed after {took:?}, before the ack");
        assert!(
            took < Duration::from_secs(3),
            "waited for the timeout: {took:?}"
        );
        let flags = sets.lock().unwrap().clone();
        assert_eq!(flags.len(), 1);
        assert_ne!(flags[0] & crate::proto::flags::BACKUP_AWARE, 0);
        let stats = client.stats();
        assert_eq!(
            (stats.backup_aware_requests, stats.backup_ack_timeouts),
            (1, 0)
        );
        assert_eq!(shared.acks.len(), 0, "nothing left behind");
        client.shutdown();
    }

    #[tokio::test]
    async fn a_write_whose_ack_never_comes_completes_after_the_backup_timeout() {
        let timeout = Duration::from_millis(300);
        let config = ClientConfig {
            backup_ack_timeout: timeout,
            ..ClientConfig::default()
        };
        let (client, _, _) = cluster_with_backups(Acks::Never, config).await;
        let shared = client.shared.clone();
        eventually("backup acks ready", || {
            shared.acks_ready.load(Ordering::Relaxed)
        })
        .await;
        let started = Instant::now();
        client
            .map("m")
            .set("k", &crate::Value::from("v"), crate::Ttl::MapDefault)
            .await
            .unwrap();
        assert!(started.elapsed() >= timeout);
        let stats = client.stats();
        assert_eq!(
            (stats.backup_aware_requests, stats.backup_ack_timeouts),
            (1, 1)
        );
        assert_eq!(shared.acks.len(), 0);
        client.shutdown();
    }

    #[tokio::test]
    async fn with_backup_acks_off_writes_are_plain_and_no_backup_listener_is_registered() {
        let config = ClientConfig {
            backup_acks: false,
            ..ClientConfig::default()
        };
        let (client, sets, registrations) =
            cluster_with_backups(Acks::After(Duration::ZERO), config).await;
        eventually("the partition table", || client.owner_of("k").is_some()).await;
        client
            .map("m")
            .set("k", &crate::Value::from("v"), crate::Ttl::MapDefault)
            .await
            .unwrap();
        let flags = sets.lock().unwrap().clone();
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0] & crate::proto::flags::BACKUP_AWARE, 0);
        assert_eq!(*registrations.lock().unwrap(), 0);
        assert!(!client.shared.acks_ready.load(Ordering::Relaxed));
        assert_eq!(client.stats().backup_aware_requests, 0);
        client.shutdown();
    }

    #[tokio::test]
    async fn reads_are_never_sent_backup_aware() {
        let (client, sets, _) =
            cluster_with_backups(Acks::After(Duration::ZERO), ClientConfig::default()).await;
        let shared = client.shared.clone();
        eventually("backup acks ready", || {
            shared.acks_ready.load(Ordering::Relaxed)
        })
        .await;
        assert_eq!(client.map("m").get("k").await.unwrap(), None);
        let flags = sets.lock().unwrap().clone();
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0] & crate::proto::flags::BACKUP_AWARE, 0);
        assert_eq!(client.stats().backup_aware_requests, 0);
        client.shutdown();
    }
}
