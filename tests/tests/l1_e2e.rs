//! The in-Envoy L1 (issue 9), through the real Envoy, companion and Hazelcast: repeated hits
//! are answered without a callout; a purge, an invalidating POST and a write by the official
//! Python client reach every Envoy's L1 within a second; a companion restart (a new feed
//! epoch) makes the filter drop what it can no longer trust; memory stays within the slot bound
//! however many keys are asked for; and an L1 answer is the L2 answer for the same request.

use std::time::{Duration, Instant};

use hzcache_e2e::raw::stat;
use hzcache_e2e::stack::{metric, send, Fleet, Node};
use hzcache_e2e::{get, get_with, python_interop, shared_member, unique, Origin, OriginReply};

const TOKEN: &str = "l1-admin-token-0123456789";

/// Fresh for five minutes; the body says which request the origin saw, and how often.
fn origin() -> Origin {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    Origin::start(|seen| {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let mut r = OriginReply::ok(format!("{} #{n}", seen.path_and_query))
            .header("cache-control", "public, max-age=300")
            .header("etag", &format!("\"e{n}\""));
        if seen.path_and_query.starts_with("/vary/") {
            r = r.header("vary", "accept-language");
        }
        if seen.path_and_query.starts_with("/big/") {
            r.body = bytes::Bytes::from(vec![b'b'; 48 * 1024]);
        }
        r
    })
    .expect("origin")
}

fn config(slots: u32) -> String {
    let mut c: serde_json::Value =
        serde_json::from_str(&hzcache_e2e::demo_filter_config().unwrap()).unwrap();
    c["l1"] = serde_json::json!({ "slots": slots, "max_entry_bytes": 65536, "max_ttl_ms": 30000 });
    c.to_string()
}

fn fleet(n: usize, slots: u32) -> Fleet {
    let token = hzcache_e2e::secret_file("admin", TOKEN);
    Fleet::start(origin(), n, &config(slots), &["--admin-token-file", &token]).expect("fleet")
}

fn companion_hits(node: &Node) -> f64 {
    metric(&node.metrics(), "hzcache_requests_total{outcome=\"hit\"}")
}

fn l1_hits(node: &Node) -> u64 {
    stat(&node.envoy.stats(), "wasmcustom.hzcache.l1_hit").unwrap_or(0)
}

/// Waits until the filter has read the feed (L1 serves nothing before).
fn wait_for_feed(node: &Node) {
    hzcache_e2e::wait_until("the filter reads the feed", Duration::from_secs(10), || {
        stat(&node.envoy.stats(), "wasmcustom.hzcache.feed_lag_ms").is_some_and(|l| l < 1000)
    })
    .unwrap();
}

/// Asks until the answer comes from L1 (both of Envoy's workers keep their own view of the
/// feed, so the first answers may be L2 hits).
fn until_l1(node: &Node, path: &str, headers: &[(&str, &str)]) -> hzcache_e2e::Reply {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = l1_hits(node);
        let r = get_with(&node.url(path), headers).unwrap();
        if l1_hits(node) > before {
            return r;
        }
        assert!(Instant::now() < deadline, "{path} never came from L1");
    }
}

/// Asks until the answer is not from L1 any more; fails when that takes longer than `limit`
/// from `since` (when the change was made). Returns how long it took.
fn until_gone(
    node: &Node,
    path: &str,
    headers: &[(&str, &str)],
    since: Instant,
    limit: Duration,
) -> Duration {
    loop {
        let before = l1_hits(node);
        let r = get_with(&node.url(path), headers).unwrap();
        if l1_hits(node) == before && !r.cache().is_empty() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "{path} still served from L1 {:?} after the change",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn repeated_hits_are_answered_without_a_callout() {
    let f = fleet(1, 1024);
    let node = f.node();
    wait_for_feed(node);
    let p = format!("/page/{}", unique("p"));
    assert_eq!(get(&node.url(&p)).unwrap().cache(), "MISS");
    let first = until_l1(node, &p, &[]);
    let calls = companion_hits(node);
    for _ in 0..50 {
        let r = get(&node.url(&p)).unwrap();
        assert_eq!(r.cache(), "HIT");
        assert_eq!(r.body, first.body);
        assert!(r.header("age").is_some(), "Age on every answer");
    }
    assert!(
        companion_hits(node) - calls <= 2.0,
        "L1 hits need no callout: {} companion hits for 50 requests",
        companion_hits(node) - calls
    );
    assert_eq!(f.origin.count(&p), 1);
}

#[test]
fn purges_invalidations_and_application_writes_reach_every_envoy_within_a_second() {
    let f = fleet(2, 1024);
    for node in &f.nodes {
        wait_for_feed(node);
    }
    let host = [("host", "l1.example")];
    // A purge by key.
    let p = format!("/purged/{}", unique("p"));
    get_with(&f.nodes[0].url(&p), &host).unwrap();
    for node in &f.nodes {
        until_l1(node, &p, &host);
    }
    let key = format!("http://l1.example{p}");
    let purge = f.nodes[0].companion_url(&format!(
        "/admin/purge?map=hzcache&key={}",
        hzcache_e2e::stack::q(&key)
    ));
    let auth = format!("Bearer {TOKEN}");
    assert_eq!(
        send("POST", &purge, &[("authorization", &auth)], b"")
            .unwrap()
            .status,
        200
    );
    let purged = Instant::now();
    for node in &f.nodes {
        let took = until_gone(node, &p, &host, purged, Duration::from_secs(1));
        eprintln!("purge reached an L1 in {took:?}");
    }

    // An invalidating POST through the other Envoy.
    let p = format!("/posted/{}", unique("p"));
    get_with(&f.nodes[0].url(&p), &host).unwrap();
    for node in &f.nodes {
        until_l1(node, &p, &host);
    }
    let r = send("POST", &f.nodes[1].url(&p), &host, b"x").unwrap();
    assert_eq!(r.status, 200);
    let posted = Instant::now();
    for node in &f.nodes {
        let took = until_gone(node, &p, &host, posted, Duration::from_secs(1));
        eprintln!("an invalidating POST reached an L1 in {took:?}");
    }

    // The official Python client removes the entry behind hzcache's back.
    let p = format!("/app/{}", unique("p"));
    get_with(&f.nodes[0].url(&p), &host).unwrap();
    for node in &f.nodes {
        until_l1(node, &p, &host);
    }
    python_interop(
        shared_member(),
        "hzcache",
        &["remove", &format!("http://l1.example{p}")],
    )
    .expect("python remove");
    let removed = Instant::now();
    for node in &f.nodes {
        let took = until_gone(node, &p, &host, removed, Duration::from_secs(1));
        eprintln!("a Python client's remove reached an L1 in {took:?}");
    }
}

#[test]
fn a_companion_restart_makes_the_filter_drop_what_it_cannot_trust() {
    let mut f = fleet(1, 1024);
    wait_for_feed(f.node());
    let p = format!("/restart/{}", unique("p"));
    get(&f.node().url(&p)).unwrap();
    until_l1(f.node(), &p, &[]);
    let drops = stat(&f.node().envoy.stats(), "wasmcustom.hzcache.l1_drop_all").unwrap_or(0);
    let port = f.nodes[0].companion.port;
    f.nodes[0].companion.process.kill();
    let member = shared_member();
    let token = hzcache_e2e::secret_file("admin", TOKEN);
    let mut args: Vec<String> = hzcache_e2e::maps_of(&config(1024))
        .into_iter()
        .flat_map(|m| ["--map".to_string(), m])
        .collect();
    args.extend(["--admin-token-file".to_string(), token]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    f.nodes[0].companion = hzcache_e2e::Companion::start_on(
        port,
        &member.cluster_name,
        &[member.address()],
        &[f.origin.origin_arg()],
        &args,
    )
    .expect("restart");
    f.nodes[0]
        .companion
        .wait_ready(Duration::from_secs(30))
        .unwrap();
    // The restarted companion's feed has a new epoch: the filter drops everything it has.
    hzcache_e2e::wait_until(
        "L1 dropped for the new epoch",
        Duration::from_secs(5),
        || stat(&f.node().envoy.stats(), "wasmcustom.hzcache.l1_drop_all").unwrap_or(0) > drops,
    )
    .unwrap();
    // The entry is still in Hazelcast: an L2 hit, then L1 again.
    let r = get(&f.node().url(&p)).unwrap();
    assert_eq!(r.cache(), "HIT");
    until_l1(f.node(), &p, &[]);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn memory_stays_within_the_slot_bound_however_many_keys_are_asked_for() {
    // 64 slots of at most 64 KiB: 4 MiB at most, for 600 distinct 48 KiB answers (28 MiB).
    let f = fleet(1, 64);
    let node = f.node();
    wait_for_feed(node);
    let before = rss_kib(node.envoy.process.pid());
    let prefix = unique("big");
    // A miss, then two hits: a key is kept on its second answer from the companion.
    for round in 0..3 {
        for i in 0..600 {
            let r = get(&node.url(&format!("/big/{prefix}-{i}"))).unwrap();
            assert_eq!(r.status, 200, "round {round}");
        }
    }
    let stores = stat(&node.envoy.stats(), "wasmcustom.hzcache.l1_store").unwrap_or(0);
    // Each of Envoy's two workers keeps its own "answered once" memory, so not every key of
    // the third round is kept; still many times the 64 slots.
    assert!(
        stores >= 4 * 64,
        "the table was written far more often than it has slots: {stores}"
    );
    let grown = rss_kib(node.envoy.process.pid()).saturating_sub(before);
    eprintln!("Envoy RSS grew {grown} KiB for {stores} stores into 64 slots");
    assert!(
        grown < 4 * 1024 + 16 * 1024,
        "Envoy grew {grown} KiB: more than the 4 MiB table plus 16 MiB of slack"
    );
}

#[test]
fn an_l1_answer_is_the_l2_answer_for_the_same_request() {
    let f = fleet(1, 1024);
    let node = f.node();
    wait_for_feed(node);
    let p = format!("/vary/{}", unique("v"));
    let de = [("accept-language", "de")];
    let fr = [("accept-language", "fr")];
    let l2_de = {
        get_with(&node.url(&p), &de).unwrap();
        get_with(&node.url(&p), &de).unwrap()
    };
    let l1_de = until_l1(node, &p, &de);
    let l1_fr_first = get_with(&node.url(&p), &fr).unwrap();
    assert_eq!(
        l1_fr_first.cache(),
        "MISS",
        "another variant is not the stored one"
    );
    assert_ne!(l1_fr_first.body, l1_de.body);
    for (a, b) in [(&l2_de, &l1_de)] {
        assert_eq!(a.status, b.status);
        assert_eq!(a.body, b.body);
        for h in ["content-type", "etag", "vary", "cache-control", "x-cache"] {
            assert_eq!(a.header(h), b.header(h), "{h}");
        }
        let (age_a, age_b): (u64, u64) = (
            a.header("age").unwrap().parse().unwrap(),
            b.header("age").unwrap().parse().unwrap(),
        );
        assert!(
            age_b >= age_a && age_b <= age_a + 5,
            "age {age_a} then {age_b}"
        );
    }
    // HEAD: same status and headers, no body, from L1 too.
    let head = hzcache_e2e::client::request("HEAD", &node.url(&p), &de).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), l1_de.header("etag"));
    assert_eq!(
        head.header("content-length"),
        Some(l1_de.body.len().to_string().as_str())
    );
    // Conditional and range requests are answered by the companion, exactly as before.
    let etag = l1_de.header("etag").unwrap().to_string();
    let calls = companion_hits(node);
    let cond = get_with(
        &node.url(&p),
        &[("accept-language", "de"), ("if-none-match", &etag)],
    )
    .unwrap();
    assert_eq!(cond.status, 304);
    let range = get_with(
        &node.url(&p),
        &[("accept-language", "de"), ("range", "bytes=0-3")],
    )
    .unwrap();
    assert_eq!(range.status, 206);
    assert_eq!(range.body, l1_de.body.slice(0..4));
    assert!(companion_hits(node) > calls, "those went to the companion");
    // RFC 9110 §15.3.7: a 206 is never kept as the whole answer; the plain GET after it is
    // still the whole 200 from L1.
    let whole = until_l1(node, &p, &de);
    assert_eq!((whole.status, &whole.body), (200, &l1_de.body));
    assert_eq!(whole.header("content-range"), None);
}
