//! Interop with the official Hazelcast Python client, in both directions, through the whole
//! stack: what an application writes with `map.put` is served by Envoy as a hit, and what
//! hzcache stored is read back by the application with `map.get`.

use hzcache_e2e::{get, python_interop, shared_member, unique, Origin, OriginReply, Stack};

#[test]
fn an_entry_written_by_the_python_client_is_served_through_envoy_as_a_hit() {
    let stack = Stack::start(Origin::start(|_| OriginReply::ok("from the origin")).unwrap())
        .expect("stack");
    let key = unique("py");
    let out = python_interop(
        shared_member(),
        "cache",
        &["put", &key, "written by python: été"],
    )
    .unwrap();
    assert!(out.contains("\"ok\": true"), "{out}");

    let r = get(&stack.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(r.cache(), "HIT");
    assert_eq!(r.text(), "written by python: été");
    assert_eq!(stack.origin.count(&format!("/data?key={key}")), 0);
}

#[test]
fn an_entry_stored_by_hzcache_is_read_back_by_the_python_client() {
    let stack = Stack::start(
        Origin::start(|seen| OriginReply::ok(format!("origin says {}", seen.path_and_query)))
            .unwrap(),
    )
    .expect("stack");
    let key = unique("hz");
    let path = format!("/data?key={key}");
    assert_eq!(get(&stack.url(&path)).unwrap().cache(), "MISS");

    let out = python_interop(shared_member(), "cache", &["get", &key]).unwrap();
    let expected = format!("\"found\": true, \"type\": \"str\", \"value\": \"origin says {path}\"");
    assert!(out.contains(&expected), "python saw {out}");
}
