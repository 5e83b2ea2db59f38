//! The invalidation feed (`GET /v1/feed`, callout-protocol.md "Invalidation feed") against
//! the real shared Hazelcast member: keys changed by the official Python client, by a purge
//! and by expiry appear in the feed; a cleared map is one `* all`; a restarted companion has
//! a new epoch; the feed needs the callout secret.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hazelcast_client::{Ttl, Value};
use hzcache_companion::feed::encode;
use hzcache_e2e::client::send;
use hzcache_e2e::{
    callout_secret, get_with, python_interop, secret_file, shared_client, shared_member, unique,
    wait_until, Companion, Origin, OriginReply,
};

const TOKEN: &str = "feed-admin-token-0123456789";

/// One answer of the feed: status, outcome, and the body's lines.
struct FeedReply {
    status: u16,
    outcome: String,
    content_type: String,
    lines: Vec<String>,
}

impl FeedReply {
    /// (epoch, cursor) from the first line.
    fn head(&self) -> (String, u64) {
        let first = self.lines.first().expect("a first line");
        let parts: Vec<&str> = first.split(' ').collect();
        assert_eq!(parts.len(), 4, "{first}");
        assert_eq!(&parts[..2], ["hzcache-feed", "1"], "{first}");
        assert_eq!(parts[2].len(), 16, "{first}");
        (parts[2].to_string(), parts[3].parse().expect("cursor"))
    }

    fn events(&self) -> &[String] {
        &self.lines[1..]
    }
}

fn feed_with(port: u16, after: u64, auth: Option<&str>) -> FeedReply {
    let url = format!("http://127.0.0.1:{port}/v1/feed?after={after}");
    let headers: Vec<(&str, &str)> = auth.map(|a| ("x-hzcache-auth", a)).into_iter().collect();
    let r = get_with(&url, &headers).expect("feed answers");
    FeedReply {
        status: r.status,
        outcome: r.header("x-hzcache-outcome").unwrap_or("").to_string(),
        content_type: r.header("content-type").unwrap_or("").to_string(),
        lines: r.text().split('\n').map(str::to_string).collect(),
    }
}

fn feed(port: u16, after: u64) -> FeedReply {
    feed_with(port, after, Some(callout_secret()))
}

/// Waits until the feed answers 200 (listeners registered, baseline fetched).
fn wait_feed_ready(port: u16) -> (String, u64) {
    wait_until("the feed is ready", Duration::from_secs(30), || {
        feed(port, 0).status == 200
    })
    .expect("feed ready");
    feed(port, 0).head()
}

/// Polls the feed from `after` every 10 ms until a line `line` shows up (following the
/// cursor across answers); returns the wall-clock time it was seen and the cursor then.
fn wait_line(port: u16, mut after: u64, line: &str, timeout: Duration) -> Option<(f64, u64)> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let r = feed(port, after);
        assert_eq!(r.status, 200);
        let (_, cursor) = r.head();
        if r.events().iter().any(|l| l == line) {
            return Some((now_secs(), cursor));
        }
        assert!(
            !r.events().iter().any(|l| l == "* all"),
            "unexpected reset while waiting for {line}: {:?}",
            r.lines
        );
        after = cursor;
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn start_companion(maps: &[String], origin: Option<&Origin>) -> Companion {
    let member = shared_member();
    let token = secret_file("feed-admin", TOKEN);
    let mut extra: Vec<String> = vec!["--admin-token-file".into(), token];
    for m in maps {
        extra.push("--map".into());
        extra.push(m.clone());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let origins: Vec<String> = origin.map(Origin::origin_arg).into_iter().collect();
    let c = Companion::start(&member.cluster_name, &[member.address()], &origins, &extra)
        .expect("companion");
    c.wait_ready(Duration::from_secs(30)).expect("ready");
    c
}

/// Runs the Python client's `op` on `key` in another thread while this one watches the feed;
/// returns the latency from the member's acknowledgement to the line appearing.
fn python_change_seen(port: u16, after: u64, map: &str, op: &[&str]) -> (f64, u64) {
    let member = shared_member();
    let (map_owned, args): (String, Vec<String>) =
        (map.to_string(), op.iter().map(|s| s.to_string()).collect());
    let python = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python_interop(member, &map_owned, &args).expect("python")
    });
    let line = format!("{} {}", encode(map), encode(op[1]));
    let seen = wait_line(port, after, &line, Duration::from_secs(30));
    let out = python.join().expect("python thread");
    let (seen_at, cursor) = seen.unwrap_or_else(|| panic!("{line} never in the feed ({out})"));
    let json: serde_json::Value = serde_json::from_str(&out).expect("python json");
    let acked = json["at"].as_f64().expect("at");
    (seen_at - acked, cursor)
}

#[test]
fn changes_by_the_python_client_a_purge_and_an_expiry_reach_the_feed() {
    let body_map = unique("hzcache-feed-body");
    let env_map = unique("hzcache-feed-env");
    let origin = Origin::start(|_| {
        OriginReply::ok("short-lived").header("cache-control", "public, max-age=1")
    })
    .expect("origin");
    let c = start_companion(
        &[
            format!("{body_map}=body:string"),
            format!("{env_map}=envelope"),
        ],
        Some(&origin),
    );
    let (epoch, start) = wait_feed_ready(c.port);
    let r = feed(c.port, 0);
    assert_eq!(
        (r.status, r.outcome.as_str(), r.content_type.as_str()),
        (200, "feed", "text/plain")
    );
    assert!(
        r.events().is_empty(),
        "after=0 lists nothing: {:?}",
        r.lines
    );

    // An application's put and remove with the official client.
    let key = "app key/é?x=1";
    let (put_latency, cursor) =
        python_change_seen(c.port, start, &body_map, &["put", key, "from python"]);
    let (remove_latency, cursor) = python_change_seen(c.port, cursor, &body_map, &["remove", key]);
    eprintln!("python put → feed: {put_latency:.3} s, remove → feed: {remove_latency:.3} s");
    assert!(
        put_latency < 1.0,
        "put took {put_latency} s to reach the feed"
    );
    assert!(remove_latency < 1.0, "remove took {remove_latency} s");

    // A purge through the admin API.
    let purged = "http://feed.test/purged";
    hzcache_e2e::client::runtime()
        .block_on(shared_client().map(&env_map).set(
            purged,
            &Value::String("x".into()),
            Ttl::After(Duration::from_secs(300)),
        ))
        .expect("set");
    let line = format!("{} {}", encode(&env_map), encode(purged));
    let (_, cursor) = wait_line(c.port, cursor, &line, Duration::from_secs(5)).expect("set seen");
    let url = format!(
        "http://127.0.0.1:{}/admin/purge?map={env_map}&key={}",
        c.port,
        encode(purged)
    );
    let auth = format!("Bearer {TOKEN}");
    let t0 = Instant::now();
    let r = send("POST", &url, &[("authorization", &auth)], b"").expect("purge");
    assert_eq!((r.status, r.text().trim()), (200, "purged 1"));
    let (_, cursor) = wait_line(c.port, cursor, &line, Duration::from_secs(5)).expect("purge seen");
    eprintln!("purge → feed: {:?}", t0.elapsed());

    // An entry the companion stored with a one-second TTL: its store shows up, then its expiry.
    let key = "feed.test/expiring";
    let fetch = format!("http://127.0.0.1:{}/v1/fetch", c.port);
    let r = send(
        "GET",
        &fetch,
        &[
            ("x-hzcache-auth", callout_secret()),
            ("x-hzcache-map", &env_map),
            ("x-hzcache-key", key),
            ("x-hzcache-mode", "envelope"),
            ("x-hzcache-ttl", "0"),
            ("x-hzcache-request-method", "GET"),
            ("x-hzcache-request-path", "/expiring"),
        ],
        b"",
    )
    .expect("fetch");
    assert_eq!(r.header("x-hzcache-outcome"), Some("miss"), "{}", r.text());
    let line = format!("{} {}", encode(&env_map), encode(key));
    let (_, cursor) = wait_line(c.port, cursor, &line, Duration::from_secs(5)).expect("store seen");
    let t0 = Instant::now();
    let expired = wait_line(c.port, cursor, &line, Duration::from_secs(40));
    let (_, cursor) = expired.expect("the expiry reaches the feed");
    eprintln!(
        "1 s TTL entry: expiry in the feed {:?} after its store",
        t0.elapsed()
    );

    // A cleared map is one reset, told once.
    hzcache_e2e::client::runtime()
        .block_on(shared_client().map(&body_map).clear())
        .expect("clear");
    let mut reset = None;
    wait_until("a reset after the clear", Duration::from_secs(5), || {
        let r = feed(c.port, cursor);
        let all = r.events() == ["* all"];
        if all {
            reset = Some(r.head().1);
        }
        all
    })
    .expect("reset");
    let after_reset = feed(c.port, reset.expect("cursor"));
    assert!(after_reset.events().is_empty(), "{:?}", after_reset.lines);
    assert_eq!(after_reset.head().0, epoch, "a reset keeps the epoch");

    // Repair rounds (every 5 s, 2 s grace) agree with what the events said, the clear's
    // map-wide sequence included: no false alarm.
    std::thread::sleep(Duration::from_secs(8));
    let later = feed(c.port, reset.expect("cursor"));
    assert!(later.events().is_empty(), "{:?}", later.lines);

    let metrics = hzcache_e2e::probe_get(hzcache_e2e::loopback(c.port), "/metrics")
        .expect("metrics")
        .1;
    assert!(
        metrics.contains("hzcache_feed_resets_total{reason=\"clear\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("hzcache_feed_ready 1\n"));
    // Not "uuid": in the full suite other tests on the shared member (clears, restarts of their
    // own companions) can renew a partition's uuid, a true reason to drop everything.
    for reason in ["gap", "missed", "members", "reregistered", "overflow"] {
        let series = format!("hzcache_feed_resets_total{{reason=\"{reason}\"}} 0\n");
        assert!(metrics.contains(&series), "{reason}: {metrics}");
    }
    assert!(!metrics.contains("hzcache_feed_events_total 0\n"));
}

#[test]
fn a_restarted_companion_has_a_new_epoch_and_old_cursors_get_all() {
    let map = unique("hzcache-feed-restart");
    let spec = [format!("{map}=envelope")];
    let mut first = start_companion(&spec, None);
    let (epoch1, start) = wait_feed_ready(first.port);
    hzcache_e2e::client::runtime()
        .block_on(shared_client().map(&map).set(
            "k",
            &Value::String("v".into()),
            Ttl::After(Duration::from_secs(60)),
        ))
        .expect("set");
    let line = format!("{} k", encode(&map));
    let (_, cursor) = wait_line(first.port, start, &line, Duration::from_secs(5)).expect("seen");
    first.process.stop(Duration::from_secs(5));

    let second = start_companion(&spec, None);
    let (epoch2, _) = wait_feed_ready(second.port);
    assert_ne!(epoch1, epoch2);
    let r = feed(second.port, cursor + 1000);
    assert_eq!(r.events(), ["* all"], "{:?}", r.lines);
    assert_eq!(r.head().0, epoch2);
}

#[test]
fn the_feed_needs_the_callout_secret() {
    let map = unique("hzcache-feed-auth");
    let c = start_companion(&[format!("{map}=envelope")], None);
    wait_feed_ready(c.port);
    for auth in [None, Some("wrong-secret-0123456789")] {
        let r = feed_with(c.port, 0, auth);
        assert_eq!((r.status, r.outcome.as_str()), (401, "error"), "{auth:?}");
        assert!(!r.lines[0].starts_with("hzcache-feed"), "{auth:?}");
    }
    let bad = feed(c.port, 0);
    assert_eq!(bad.status, 200);
    let r = get_with(
        &format!("http://127.0.0.1:{}/v1/feed?after=x", c.port),
        &[("x-hzcache-auth", callout_secret())],
    )
    .expect("answer");
    assert_eq!(r.status, 400);
}
