//! The companion's own Hazelcast client against a real member: the map operations the cache
//! uses, TTL expiry, and byte-compatibility with the official Python client (values and
//! partition ids).

use std::time::Duration;

use bytes::Bytes;
use hazelcast_client::{Ttl, Value};
use hzcache_e2e::client::runtime;
use hzcache_e2e::{python_interop, shared_client, shared_member, unique};

#[test]
fn map_operations_work_against_a_real_member() {
    let map = shared_client().map(&unique("ops"));
    runtime().block_on(async {
        assert_eq!(map.get("k").await.unwrap(), None);
        map.set("k", &Value::String("v1".into()), Ttl::MapDefault)
            .await
            .unwrap();
        assert_eq!(
            map.get("k").await.unwrap(),
            Some(Value::String("v1".into()))
        );
        let old = map
            .put(
                "k",
                &Value::Bytes(Bytes::from_static(b"\x00\xff")),
                Ttl::Forever,
            )
            .await
            .unwrap();
        assert_eq!(old, Some(Value::String("v1".into())));
        assert_eq!(
            map.get("k").await.unwrap(),
            Some(Value::Bytes(Bytes::from_static(b"\x00\xff")))
        );
        assert!(map.contains_key("k").await.unwrap());
        map.set("été/ключ", &Value::Long(42), Ttl::MapDefault)
            .await
            .unwrap();
        assert_eq!(map.get("été/ключ").await.unwrap(), Some(Value::Long(42)));
        assert_eq!(map.size().await.unwrap(), 2);
        assert_eq!(
            map.remove("k").await.unwrap(),
            Some(Value::Bytes(Bytes::from_static(b"\x00\xff")))
        );
        map.delete("été/ключ").await.unwrap();
        assert_eq!(map.size().await.unwrap(), 0);
        map.set("x", &Value::Int(1), Ttl::MapDefault).await.unwrap();
        map.clear().await.unwrap();
        assert!(!map.contains_key("x").await.unwrap());
    });
}

#[test]
fn remove_if_same_removes_only_the_value_it_names() {
    let map = shared_client().map(&unique("remove-if-same"));
    runtime().block_on(async {
        let ours = Value::String("companion-a/0000000000000001".into());
        let theirs = Value::String("companion-b/0000000000000002".into());
        map.set("marker", &theirs, Ttl::MapDefault).await.unwrap();
        assert!(
            !map.remove_if_same("marker", &ours).await.unwrap(),
            "another holder's value is not removed"
        );
        assert_eq!(map.get("marker").await.unwrap(), Some(theirs.clone()));
        assert!(map.remove_if_same("marker", &theirs).await.unwrap());
        assert_eq!(map.get("marker").await.unwrap(), None);
        assert!(
            !map.remove_if_same("marker", &theirs).await.unwrap(),
            "an absent key is not removed"
        );
    });
}

#[test]
fn key_pages_walk_every_key_while_each_page_is_deleted_before_the_next() {
    let map = shared_client().map(&unique("pages"));
    runtime().block_on(async {
        let entries: Vec<(String, Value)> =
            (0..600).map(|i| (format!("k{i}"), Value::Int(i))).collect();
        let refs: Vec<(&str, Value)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        map.put_all(&refs).await.unwrap();
        let mut pages = map.key_pages(4);
        let (mut seen, mut count, mut largest) = (std::collections::BTreeSet::new(), 0, 0);
        while let Some(page) = pages.next_page().await.unwrap() {
            count += 1;
            largest = largest.max(page.len());
            for k in page {
                map.delete(&k).await.unwrap();
                seen.insert(k);
            }
        }
        assert_eq!(seen.len(), 600, "every key once, deletions notwithstanding");
        // The member finishes the hash bucket it is in, so a page may hold a few more than
        // the batch, never the partition.
        assert!(largest <= 8, "a page holds about the batch: {largest}");
        assert!(count >= 150, "{count} pages");
        assert_eq!(map.size().await.unwrap(), 0);
    });
}

#[test]
fn an_entry_set_with_a_ttl_expires() {
    let map = shared_client().map(&unique("ttl"));
    runtime().block_on(async {
        // Three seconds, not one: on a loaded 2-core machine the two sets and the first
        // look can take over a second.
        map.set(
            "short",
            &Value::String("soon gone".into()),
            Ttl::After(Duration::from_secs(3)),
        )
        .await
        .unwrap();
        map.set(
            "long",
            &Value::String("stays".into()),
            Ttl::After(Duration::from_secs(600)),
        )
        .await
        .unwrap();
        assert!(map.contains_key("short").await.unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while map.contains_key("short").await.unwrap() {
            assert!(
                std::time::Instant::now() < deadline,
                "the entry never expired"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(map.contains_key("long").await.unwrap());
    });
}

#[test]
fn values_cross_between_this_client_and_the_official_python_client() {
    let map_name = unique("interop");
    let map = shared_client().map(&map_name);
    let member = shared_member();
    // Python writes a str and a bytearray; we read a String and bytes.
    python_interop(member, &map_name, &["put", "from-py", "texte été"]).unwrap();
    python_interop(member, &map_name, &["put", "from-py-bytes", "raw", "bytes"]).unwrap();
    runtime().block_on(async {
        assert_eq!(
            map.get("from-py").await.unwrap(),
            Some(Value::String("texte été".into()))
        );
        assert_eq!(
            map.get("from-py-bytes").await.unwrap(),
            Some(Value::Bytes(Bytes::from_static(b"raw")))
        );
        map.set(
            "from-rust",
            &Value::String("écrit en Rust".into()),
            Ttl::MapDefault,
        )
        .await
        .unwrap();
        map.set(
            "from-rust-bytes",
            &Value::Bytes(Bytes::from_static(b"abc")),
            Ttl::MapDefault,
        )
        .await
        .unwrap();
    });
    let s = python_interop(member, &map_name, &["get", "from-rust"]).unwrap();
    assert!(
        s.contains("\"type\": \"str\"") && s.contains("crit en Rust"),
        "{s}"
    );
    let b = python_interop(member, &map_name, &["get", "from-rust-bytes"]).unwrap();
    assert!(b.contains("\"type\": \"bytes\", \"value\": \"abc\""), "{b}");
}

#[test]
fn partition_ids_match_the_official_python_client() {
    let keys: Vec<String> = (0..3000)
        .map(|i| format!("key-{i}-{}", i * 7919 % 1000))
        .collect();
    let out = python_interop(shared_member(), "unused", &["partitions", &keys.join(",")]).unwrap();
    let theirs: Vec<i32> = out
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), keys.len());
    let ours: Vec<i32> = keys
        .iter()
        .map(|k| {
            shared_client()
                .partition_id(k)
                .expect("connected, so the count is known")
        })
        .collect();
    let differing: Vec<_> = keys
        .iter()
        .zip(ours.iter().zip(&theirs))
        .filter(|(_, (a, b))| a != b)
        .take(5)
        .collect();
    assert!(
        differing.is_empty(),
        "partition ids differ, e.g. {differing:?}"
    );
}

#[test]
fn bulk_and_conditional_operations_work_against_a_real_member() {
    let map = shared_client().map(&unique("bulk"));
    runtime().block_on(async {
        let entries: Vec<(String, Value)> = (0..200)
            .map(|i| (format!("k{i}"), Value::String(format!("v{i}"))))
            .collect();
        let refs: Vec<(&str, Value)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        map.put_all(&refs).await.unwrap();
        assert_eq!(map.size().await.unwrap(), 200);
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.push("absent");
        let mut got = map.get_all(&keys).await.unwrap();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want = entries.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want);

        assert_eq!(
            map.put_if_absent("k1", &Value::String("other".into()), Ttl::MapDefault)
                .await
                .unwrap(),
            Some(Value::String("v1".into()))
        );
        assert_eq!(
            map.put_if_absent("new", &Value::String("first".into()), Ttl::MapDefault)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            map.get("new").await.unwrap(),
            Some(Value::String("first".into()))
        );

        assert!(map
            .set_ttl("new", Ttl::After(Duration::from_millis(500)))
            .await
            .unwrap());
        assert!(!map
            .set_ttl("absent", Ttl::After(Duration::from_secs(5)))
            .await
            .unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while map.contains_key("new").await.unwrap() {
            assert!(
                std::time::Instant::now() < deadline,
                "set_ttl did not shorten the lifetime"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        map.evict_all().await.unwrap();
        assert_eq!(map.size().await.unwrap(), 0);
    });
}
