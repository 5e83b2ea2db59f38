//! The filter never traps the VM, whatever the client sends: hostile requests through the real
//! Envoy (header counts and sizes close to Envoy's limits, non-UTF-8 header values, very long
//! paths and keys, odd methods, unsafe methods whose responses need an invalidation callout)
//! leave Envoy's VM failure stats at zero, and the cache still answers a HIT afterwards.
//! Requests are written as raw bytes, since an HTTP client library refuses most of them.

use hzcache_e2e::raw::{raw, stat};
use hzcache_e2e::{get, unique, Origin, OriginReply, Stack};

/// A GET of `target` with extra header lines.
fn get_head(target: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    hzcache_e2e::raw::get_head(target, "safety.example", extra)
}

/// The stats that move when a VM fails (filter/README.md "When the VM fails").
const FAILURE_STATS: [&str; 3] = [
    "wasm.hzcache.vm_reload_success",
    "wasm.hzcache.vm_reload_backoff",
    "wasm.hzcache.vm_reload_failure",
];
const VMS_CREATED: &str = "wasm.envoy.wasm.runtime.v8.created";

#[test]
fn hostile_requests_never_crash_the_vm_and_the_cache_still_hits() {
    let origin = Origin::start(|seen| {
        OriginReply::ok(format!("origin body for {}", seen.path_and_query))
            .header("cache-control", "max-age=300")
            // Unsafe requests' 2xx responses make the filter read these and call out.
            .header("location", &format!("/moved{}", "x".repeat(2000)))
            .header("content-location", "http://other.example/elsewhere")
    })
    .expect("origin");
    let stack = Stack::start(origin).expect("stack");
    let port = stack.envoy.port;
    let warm = format!("/safety/{}", unique("warm"));
    assert_eq!(get(&stack.url(&warm)).unwrap().cache(), "MISS");
    assert_eq!(get(&stack.url(&warm)).unwrap().cache(), "HIT");

    let before = stack.envoy.stats();
    for name in FAILURE_STATS {
        assert_eq!(stat(&before, name), Some(0), "{name} missing or not 0");
    }
    let created = stat(&before, VMS_CREATED).expect("VM creation counter");

    let path = |tag: &str| format!("/safety/{}", unique(tag)).into_bytes();
    let non_utf8: &[u8] = b"\xff\xfe\x80 \xc3\x28 \xed\xa0\x80";
    let mut hostile: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();

    // Header counts and sizes just under Envoy's defaults (100 headers, 60 KiB), and over.
    let many: Vec<Vec<u8>> = (0..95)
        .map(|i| format!("x-h{i}: v{i}").into_bytes())
        .collect();
    hostile.push(("95 headers", get_head(&path("many"), &many), vec![]));
    let dup: Vec<Vec<u8>> = (0..95)
        .map(|i| format!("cookie: c{i}=v").into_bytes())
        .collect();
    hostile.push(("95 cookie lines", get_head(&path("dup"), &dup), vec![]));
    let big = vec![format!("x-big: {}", "b".repeat(55 * 1024)).into_bytes()];
    hostile.push(("a 55 KiB header", get_head(&path("big"), &big), vec![]));
    let over: Vec<Vec<u8>> = (0..150)
        .map(|i| format!("x-o{i}: v").into_bytes())
        .collect();
    hostile.push(("150 headers", get_head(&path("over"), &over), vec![]));

    // Non-UTF-8 values, in headers the callout forwards and in ones it does not.
    for name in [
        "x-bin",
        "accept",
        "if-none-match",
        "range",
        "cookie",
        "authorization",
    ] {
        let mut line = format!("{name}: ").into_bytes();
        line.extend_from_slice(non_utf8);
        hostile.push(("a non-UTF-8 value", get_head(&path("bin"), &[line]), vec![]));
    }
    let mut target = path("rawpath");
    target.extend_from_slice(non_utf8);
    hostile.push(("a non-UTF-8 path", get_head(&target, &[]), vec![]));
    let mut host = b"GET /safety/h HTTP/1.1\r\nhost: ".to_vec();
    host.extend_from_slice(non_utf8);
    hostile.push(("a non-UTF-8 host", host, vec![]));
    hostile.push((
        "a non-token header name",
        get_head(&path("name"), &[b"x-\xffname: v".to_vec()]),
        vec![],
    ));

    // Very long paths and keys: over the filter's 4096-byte key limit, and near Envoy's.
    for len in [4097, 16 * 1024, 55 * 1024] {
        let mut target = path("long");
        target.extend(std::iter::repeat_n(b'p', len));
        hostile.push(("a long path", get_head(&target, &[]), vec![]));
    }
    let key = format!("/data?key={}&key=%zz%%%ff%C3%28&=&&", "k".repeat(8 * 1024));
    hostile.push(("a long query key", get_head(key.as_bytes(), &[]), vec![]));
    hostile.push((
        "a broken query",
        get_head(b"/data?key=%C3%28%ff&&&=&key", &[]),
        vec![],
    ));

    // Odd and unsafe methods (the latter trigger the invalidation callout on a 2xx).
    for method in [
        "PURGE",
        "FOO",
        "get",
        "M-SEARCH",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "TRACE",
        "HEAD",
        &"X".repeat(64),
    ] {
        let mut head = format!("{method} ").into_bytes();
        head.extend_from_slice(&path("m"));
        head.extend_from_slice(b" HTTP/1.1\r\nhost: safety.example");
        hostile.push(("an odd method", head, vec![]));
    }
    hostile.push((
        "CONNECT",
        b"CONNECT safety.example:443 HTTP/1.1\r\nhost: safety.example:443".to_vec(),
        vec![],
    ));
    let mut post = b"POST ".to_vec();
    post.extend_from_slice(&path("post"));
    post.extend_from_slice(b" HTTP/1.1\r\nhost: safety.example\r\ncontent-length: 5");
    hostile.push(("a POST with a body", post, b"hello".to_vec()));
    let mut get_body = get_head(&path("getbody"), &[b"content-length: 5".to_vec()]);
    get_body.extend_from_slice(b"\r\nx-bin: \xff");
    hostile.push(("a GET with a body", get_body, b"hello".to_vec()));

    for (what, head, body) in &hostile {
        let status = raw(port, head, body);
        // A trap shows as a 503 for the request that met it (FAIL_RELOAD).
        assert_ne!(status, 503, "{what}: 503, did the VM fail?");
    }

    let after = stack.envoy.stats();
    for name in FAILURE_STATS {
        assert_eq!(
            stat(&after, name),
            Some(0),
            "{name} moved: the VM failed\n{}",
            stack.envoy.process.tail(40)
        );
    }
    assert_eq!(
        stat(&after, VMS_CREATED),
        Some(created),
        "a VM was created after start-up"
    );
    let log = stack.envoy.process.log_text();
    for sign in ["RuntimeError", "panicked", "Function: proxy_on_"] {
        assert!(
            !log.contains(sign),
            "Envoy logged {sign:?}:\n{}",
            stack.envoy.process.tail(40)
        );
    }
    let reply = get(&stack.url(&warm)).unwrap();
    assert_eq!(reply.cache(), "HIT", "the cache stopped answering");
    assert_eq!(reply.text(), format!("origin body for {warm}"));
}
