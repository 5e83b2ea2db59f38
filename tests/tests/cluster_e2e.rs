//! The companion's Hazelcast client against a real three-member cluster (backup-count 1):
//! smart routing (every keyed request to its partition owner, as the official Python client
//! sees ownership), a member killed during a steady stream of operations, a whole-cluster
//! restart survived by the client and by the companion binary, acknowledged (backup-aware)
//! writes surviving their owner's SIGKILL, and entry / invalidation listeners fed by both
//! clients and still fed after a member dies.
//!
//! Tests run one at a time (a file-wide lock): each starts its own three JVMs, and two clusters
//! side by side on two cores would only make both slow.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hazelcast_client::{
    Client, ClientConfig, EntryEvent, EntryEventKind, EntryEventKinds, HazelcastError,
    Invalidation, Ttl, Value,
};
use hzcache_e2e::client::runtime;
use hzcache_e2e::cluster::{python_owners, Cluster};
use hzcache_e2e::{python_interop, unique, wait_until, Companion};

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a client and waits until it holds a connection to each of `members` members and a
/// partition table.
fn connected_client(config: ClientConfig, members: usize) -> Client {
    let client = runtime().block_on(async { Client::start(config) });
    wait_for_members(&client, members, Duration::from_secs(30));
    client
}

fn wait_for_members(client: &Client, n: usize, timeout: Duration) {
    wait_until("client connected to every member", timeout, || {
        let members = client.members();
        members.len() == n
            && members.iter().all(|m| m.connected)
            && client.partition_table_version().is_some()
    })
    .unwrap_or_else(|e| panic!("{e}; members: {:?}", client.members()));
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

#[test]
fn every_keyed_request_goes_to_its_partition_owner() {
    let _serial = one_at_a_time();
    let cluster = Cluster::start(3).expect("cluster");
    // Only one seed address: the client learns the other members from the cluster view.
    let client = connected_client(cluster.client_config(&[0]), 3);
    let map = client.map(&unique("routing"));
    let keys: Vec<String> = (0..400).map(|i| format!("route-{i}")).collect();

    // Ownership may still move right after the third member joined; compare until the
    // client's table and the Python client's agree (they read the same member pushes).
    let python = cluster.member(0).expect("member 0");
    let deadline = Instant::now() + Duration::from_secs(60);
    let ours = loop {
        let ours: Vec<Option<String>> = keys.iter().map(|k| client.owner_of(k)).collect();
        let theirs = python_owners(python, &keys).expect("python owners");
        let ours_known: Vec<String> = ours.iter().flatten().cloned().collect();
        if ours_known == theirs {
            break ours_known;
        }
        let differ = ours
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a.as_deref() != Some(b.as_str()))
            .count();
        assert!(
            Instant::now() < deadline,
            "owners still differ from the Python client's for {differ} of {} keys",
            keys.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for owner in &ours {
        *expected.entry(owner.clone()).or_default() += 2; // one set and one get per key
    }
    assert_eq!(expected.len(), 3, "400 keys spread over all three members");

    // Send a set and a get per key and count what each member's connection carried.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let version = client.partition_table_version();
        let before = client.stats();
        runtime().block_on(async {
            for k in &keys {
                map.set(k, &text(k), Ttl::MapDefault).await.expect("set");
                assert_eq!(map.get(k).await.expect("get"), Some(text(k)));
            }
        });
        let after = client.stats();
        if client.partition_table_version() != version && attempts < 3 {
            continue; // a migration moved owners mid-run; measure again
        }
        let sent: BTreeMap<String, u64> = after
            .members
            .iter()
            .map(|m| {
                let was = before
                    .members
                    .iter()
                    .find(|b| b.address == m.address)
                    .map_or(0, |b| b.keyed_requests);
                (m.address.clone(), m.keyed_requests - was)
            })
            .collect();
        assert_eq!(sent, expected, "keyed requests per member vs. owners");
        assert_eq!(after.keyed_not_to_owner, before.keyed_not_to_owner);
        break;
    }
    client.shutdown();
}

/// What one writer of the steady stream saw.
#[derive(Default)]
struct StreamOutcome {
    ops: u64,
    failures: Vec<(Duration, String)>,
    last: HashMap<String, String>,
    max_latency: Duration,
}

async fn steady_writer(
    map: hazelcast_client::Map,
    writer: usize,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> StreamOutcome {
    let mut out = StreamOutcome::default();
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{writer}-{}", i % 150);
        let value = format!("v{i}");
        let t0 = Instant::now();
        match map.set(&key, &text(&value), Ttl::Forever).await {
            Ok(()) => {
                out.last.insert(key.clone(), value.clone());
            }
            Err(e) => {
                // The write may or may not have happened: expect nothing of this key.
                out.last.remove(&key);
                out.failures
                    .push((started.elapsed(), format!("set {key}: {e}")));
            }
        }
        match map.get(&key).await {
            Ok(v) if out.last.get(&key).is_none_or(|want| v == Some(text(want))) => {}
            Ok(v) => out.failures.push((
                started.elapsed(),
                format!("get {key}: {v:?}, wanted {:?}", out.last.get(&key)),
            )),
            Err(e) => out
                .failures
                .push((started.elapsed(), format!("get {key}: {e}"))),
        }
        out.max_latency = out.max_latency.max(t0.elapsed());
        out.ops += 2;
        i += 1;
    }
    out
}

#[test]
fn killing_a_member_during_a_steady_stream_fails_no_operation_and_loses_no_entry() {
    let _serial = one_at_a_time();
    let mut cluster = Cluster::start(3).expect("cluster");
    let client = connected_client(cluster.client_config(&[0, 1, 2]), 3);
    let map = client.map(&unique("stream"));

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writers: Vec<_> = (0..3)
        .map(|w| runtime().spawn(steady_writer(map.clone(), w, started, stop.clone())))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = started.elapsed();
    cluster.kill(1);
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<StreamOutcome> = writers
        .into_iter()
        .map(|h| runtime().block_on(h).expect("writer task"))
        .collect();

    let ops: u64 = outcomes.iter().map(|o| o.ops).sum();
    let max_latency = outcomes
        .iter()
        .map(|o| o.max_latency)
        .max()
        .unwrap_or_default();
    let failures: Vec<&(Duration, String)> =
        outcomes.iter().flat_map(|o| o.failures.iter()).collect();
    eprintln!(
        "steady stream: {ops} operations, member killed at {killed_at:?}, slowest set+get \
         {max_latency:?}, {} failed",
        failures.len()
    );
    assert!(ops > 500, "the stream ran ({ops} operations)");
    assert!(
        failures.is_empty(),
        "operations failed around the member kill at {killed_at:?}: {failures:#?}"
    );
    // Bounded retry window: no single operation waited longer than the invocation deadline.
    assert!(max_latency < ClientConfig::default().invocation_timeout);

    wait_for_members(&client, 2, Duration::from_secs(30));
    // No lost entry: every key holds the last value written to it.
    let expected: Vec<(String, String)> = outcomes
        .iter()
        .flat_map(|o| o.last.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    assert!(expected.len() >= 150);
    runtime().block_on(async {
        for (k, v) in &expected {
            assert_eq!(map.get(k).await.expect("get"), Some(text(v)), "key {k}");
        }
    });
    client.shutdown();
}

/// Backup-aware writes (the client's default): a write the client saw succeed is on its
/// backup too, so killing the owner right after the acknowledgements loses none of them.
#[test]
fn acknowledged_writes_survive_their_owner_being_killed_right_after() {
    let _serial = one_at_a_time();
    let mut cluster = Cluster::start(3).expect("cluster");
    let client = connected_client(cluster.client_config(&[0, 1, 2]), 3);
    let map = client.map(&unique("survive"));
    let victim = cluster.address(1);

    // Writes go backup-aware once every member has a connection with the backup listener.
    wait_until("writes sent backup-aware", Duration::from_secs(30), || {
        let before = client.stats().backup_aware_requests;
        runtime()
            .block_on(map.set("probe", &text("probe"), Ttl::Forever))
            .is_ok()
            && client.stats().backup_aware_requests > before
    })
    .expect("backup-aware writes");

    // Keys whose partitions the victim owns, as the client routes them.
    let keys: Vec<String> = (0..20_000)
        .map(|i| format!("survive-{i}"))
        .filter(|k| client.owner_of(k).as_deref() == Some(victim.as_str()))
        .take(2000)
        .collect();
    assert_eq!(
        keys.len(),
        2000,
        "the victim owns a third of the partitions"
    );

    let before = client.stats();
    let acknowledged: Vec<(String, String)> = runtime().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in keys.chunks(keys.len() / 32) {
            let (map, chunk) = (map.clone(), chunk.to_vec());
            tasks.spawn(async move {
                let mut ok = Vec::new();
                for (n, k) in chunk.into_iter().enumerate() {
                    let v = format!("value-of-{k}");
                    // Half as put, half as set: both are backup-aware writes.
                    let written = if n % 2 == 0 {
                        map.set(&k, &text(&v), Ttl::Forever).await.map(|_| ())
                    } else {
                        map.put(&k, &text(&v), Ttl::Forever).await.map(|_| ())
                    };
                    written.unwrap_or_else(|e| panic!("write {k} before the kill: {e}"));
                    ok.push((k, v));
                }
                ok
            });
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.expect("writer task"));
        }
        all
    });
    // SIGKILL the owner the moment the last write was acknowledged.
    cluster.kill(1);
    let after = client.stats();
    assert_eq!(acknowledged.len(), keys.len());
    assert!(
        after.backup_aware_requests - before.backup_aware_requests >= keys.len() as u64,
        "every write was backup-aware: {before:?} -> {after:?}"
    );
    eprintln!(
        "{} acknowledged writes to {victim}, {} backup ack timeouts; owner killed",
        acknowledged.len(),
        after.backup_ack_timeouts - before.backup_ack_timeouts
    );

    wait_for_members(&client, 2, Duration::from_secs(30));
    let lost: Vec<&String> = runtime().block_on(async {
        let mut lost = Vec::new();
        for (k, v) in &acknowledged {
            // Retried within the invocation deadline while the backups are promoted.
            let mut got = map.get(k).await;
            for _ in 0..20 {
                if got.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                got = map.get(k).await;
            }
            if got.expect("read after the kill") != Some(text(v)) {
                lost.push(k);
            }
        }
        lost
    });
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost with their owner, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    client.shutdown();
}

#[test]
fn the_client_and_the_companion_survive_a_whole_cluster_restart() {
    let _serial = one_at_a_time();
    let mut cluster = Cluster::start(3).expect("cluster");
    let companion =
        Companion::start(&cluster.name, &cluster.addresses(), &[], &[]).expect("companion");
    companion
        .wait_ready(Duration::from_secs(30))
        .expect("companion ready");
    let client = connected_client(cluster.client_config(&[0, 1, 2]), 3);
    let map = client.map(&unique("restart"));
    runtime()
        .block_on(map.set("before", &text("old cluster"), Ttl::Forever))
        .expect("set before the restart");

    cluster.kill_all();
    wait_until(
        "client notices the cluster is gone",
        Duration::from_secs(10),
        || !client.is_connected(),
    )
    .expect("disconnected");
    // While no member is reachable, operations fail at once (the cache goes to the origin).
    let t0 = Instant::now();
    let down = runtime().block_on(map.get("before"));
    assert!(
        matches!(down, Err(HazelcastError::NotConnected)),
        "{down:?}"
    );
    assert!(t0.elapsed() < Duration::from_millis(200));

    cluster
        .start_all()
        .expect("cluster restarted on the same ports");
    let restarted = Instant::now();
    let recovered = runtime().block_on(async {
        loop {
            if map
                .set("after", &text("new cluster"), Ttl::Forever)
                .await
                .is_ok()
            {
                return restarted.elapsed();
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(30),
                "the client did not recover within 30 s of the restart"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    eprintln!("client recovered {recovered:?} after the members were up again");
    // A new cluster (new cluster id): nothing of the old one remains, the new one works.
    assert_eq!(runtime().block_on(map.get("before")).expect("get"), None);
    assert_eq!(
        runtime().block_on(map.get("after")).expect("get"),
        Some(text("new cluster"))
    );
    wait_for_members(&client, 3, Duration::from_secs(30));
    companion
        .wait_ready(Duration::from_secs(30))
        .expect("companion ready again after the restart");
    client.shutdown();
}

fn has_entry(events: &[EntryEvent], kind: EntryEventKind, key: &str, value: Option<&str>) -> bool {
    events.iter().any(|e| {
        e.kind == kind
            && e.key.as_deref() == Some(key)
            && value.is_none_or(|v| e.value == Some(text(v)))
    })
}

#[test]
fn entry_and_invalidation_events_arrive_from_both_clients_and_after_a_member_dies() {
    let _serial = one_at_a_time();
    let mut cluster = Cluster::start(3).expect("cluster");
    let client = connected_client(cluster.client_config(&[0]), 3);
    let name = unique("events");
    let map = client.map(&name);
    let entries: Arc<Mutex<Vec<EntryEvent>>> = Arc::default();
    let invalidations: Arc<Mutex<Vec<Invalidation>>> = Arc::default();
    let (e, i) = (entries.clone(), invalidations.clone());
    runtime().block_on(async {
        map.add_entry_listener(true, EntryEventKinds::ALL_CHANGES, move |ev| {
            e.lock().unwrap().push(ev)
        })
        .await
        .expect("entry listener");
        map.add_invalidation_listener(move |inv| i.lock().unwrap().push(inv))
            .await
            .expect("invalidation listener");
    });
    let python = |cluster: &Cluster, args: &[&str]| {
        python_interop(cluster.member(0).expect("member 0"), &name, args).expect("python")
    };

    runtime()
        .block_on(map.set("ours", &text("1"), Ttl::Forever))
        .expect("set");
    python(&cluster, &["put", "theirs", "2"]);
    runtime().block_on(map.delete("ours")).expect("delete");
    python(&cluster, &["remove", "theirs"]);
    let seen = || entries.lock().unwrap().clone();
    wait_until(
        "entry events from both clients",
        Duration::from_secs(15),
        || {
            let ev = seen();
            has_entry(&ev, EntryEventKind::Added, "ours", Some("1"))
                && has_entry(&ev, EntryEventKind::Added, "theirs", Some("2"))
                && has_entry(&ev, EntryEventKind::Removed, "ours", None)
                && has_entry(&ev, EntryEventKind::Removed, "theirs", None)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:#?}", seen()));
    wait_until(
        "invalidations for the Python client's writes",
        Duration::from_secs(15),
        || {
            let inv = invalidations.lock().unwrap();
            inv.iter()
                .filter(|i| i.key.as_deref() == Some("theirs") && !i.from_this_client)
                .count()
                >= 2
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:#?}", invalidations.lock().unwrap()));
    let own: Vec<Invalidation> = invalidations
        .lock()
        .unwrap()
        .iter()
        .filter(|i| i.key.as_deref() == Some("ours"))
        .cloned()
        .collect();
    eprintln!("invalidations for this client's own writes: {own:?}");
    assert!(own.iter().all(|i| i.from_this_client));

    // A member dies: its partitions move to the survivors, where the listeners also live.
    cluster.kill(1);
    wait_for_members(&client, 2, Duration::from_secs(30));
    let keys: Vec<String> = (0..30).map(|i| format!("after-{i}")).collect();
    runtime().block_on(async {
        for k in &keys {
            map.set(k, &text(k), Ttl::Forever)
                .await
                .expect("set after the kill");
        }
    });
    python(&cluster, &["put", "theirs-after", "3"]);
    wait_until(
        "entry events after the member died",
        Duration::from_secs(15),
        || {
            let ev = seen();
            keys.iter()
                .all(|k| has_entry(&ev, EntryEventKind::Added, k, Some(k)))
                && has_entry(&ev, EntryEventKind::Added, "theirs-after", Some("3"))
        },
    )
    .unwrap_or_else(|e| {
        let ev = seen();
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !has_entry(&ev, EntryEventKind::Added, k, Some(k)))
            .collect();
        panic!("{e}: missing {missing:?}")
    });
    // Each event arrived once (localOnly registrations: one member reports each partition).
    let ev = seen();
    let added_ours = ev
        .iter()
        .filter(|e| e.kind == EntryEventKind::Added && e.key.as_deref() == Some("ours"))
        .count();
    assert_eq!(added_ours, 1, "{ev:#?}");
    assert_eq!(client.stats().events_dropped, 0);
    client.shutdown();
}
