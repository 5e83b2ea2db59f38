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

// ---------------------------------------------------------------------------------------------
// The Falcon app hzcache grew from (deploy/demo-app/app.py) as the origin: it caches in the map `cache`
// itself with the official Python client (get → backend → put), and hzcache in front of it
// shares those entries both ways.

use std::time::Duration;

use hzcache_e2e::{
    free_port, loopback, probe_get, python_bin, root, wait_until, Companion, Envoy, Process,
};

struct AppStack {
    envoy: Envoy,
    _companion: Companion,
    app: Process,
    app_port: u16,
}

impl AppStack {
    fn start() -> AppStack {
        let member = shared_member();
        let app_port = free_port();
        let gunicorn = python_bin().unwrap().with_file_name("gunicorn");
        let mut cmd = std::process::Command::new(gunicorn);
        cmd.args(["--bind", &format!("127.0.0.1:{app_port}")])
            .args(["--workers", "1", "--threads", "8", "--access-logfile", "-"])
            .arg("--chdir")
            .arg(root().join("deploy/demo-app"))
            .arg("app:app")
            .env("HAZELCAST_MEMBERS", member.address())
            .env("HAZELCAST_CLUSTER_NAME", &member.cluster_name);
        let mut app = Process::spawn("falcon-app", &mut cmd).unwrap();
        let addr = loopback(app_port);
        wait_until("the app's /healthz", Duration::from_secs(40), || {
            probe_get(addr, "/healthz").is_some_and(|(s, _)| s == 200) || !app.is_running()
        })
        .unwrap();
        assert!(app.is_running(), "the app exited:\n{}", app.tail(30));
        let companion = Companion::start(
            &member.cluster_name,
            &[member.address()],
            &[format!("default=http://127.0.0.1:{app_port}")],
            &[],
        )
        .unwrap();
        companion.wait_ready(Duration::from_secs(30)).unwrap();
        let envoy = Envoy::start(
            &hzcache_e2e::demo_filter_config().unwrap(),
            app_port,
            companion.port,
        )
        .unwrap();
        AppStack {
            envoy,
            _companion: companion,
            app,
            app_port,
        }
    }

    fn app_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.app_port)
    }

    fn backend_calls(&self, key: &str) -> u64 {
        let stats: serde_json::Value =
            serde_json::from_str(&get(&self.app_url("/stats")).unwrap().text()).unwrap();
        stats["backend_calls"][key].as_u64().unwrap_or(0)
    }
}

impl Drop for AppStack {
    fn drop(&mut self) {
        self.app.stop(Duration::from_secs(5));
    }
}

#[test]
fn what_the_falcon_app_put_is_a_hit_through_envoy() {
    let stack = AppStack::start();
    let key = unique("app-put");
    let direct = get(&stack.app_url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(
        direct.header("x-app-cache"),
        Some("MISS"),
        "the app computed it"
    );

    let r = get(&stack.envoy.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(r.cache(), "HIT", "the app's map.put is hzcache's entry");
    assert_eq!(r.text(), direct.text());
    assert_eq!(stack.backend_calls(&key), 1, "the app's backend ran once");
}

#[test]
fn what_hzcache_stored_the_falcon_app_reads_with_map_get() {
    let stack = AppStack::start();
    let key = unique("hz-store");
    let miss = get(&stack.envoy.url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(miss.cache(), "MISS");
    assert_eq!(
        get(&stack.envoy.url(&format!("/data?key={key}")))
            .unwrap()
            .cache(),
        "HIT"
    );

    // The app's own map.get, without its backend.
    let peek: serde_json::Value = serde_json::from_str(
        &get(&stack.app_url(&format!("/cache?key={key}")))
            .unwrap()
            .text(),
    )
    .unwrap();
    assert_eq!(peek["found"], true, "{peek}");
    assert_eq!(peek["value"].as_str(), Some(miss.text().as_str()));
    let direct = get(&stack.app_url(&format!("/data?key={key}"))).unwrap();
    assert_eq!(direct.header("x-app-cache"), Some("HIT"));
    assert_eq!(direct.text(), miss.text());
    assert_eq!(
        stack.backend_calls(&key),
        1,
        "one backend call for the one miss"
    );
}

#[test]
fn the_falcon_apps_pages_are_cached_as_their_headers_say() {
    let stack = AppStack::start();
    for path in ["/", "/slow"] {
        let first = get(&stack.envoy.url(path)).unwrap();
        let second = get(&stack.envoy.url(path)).unwrap();
        assert_eq!(second.cache(), "HIT", "{path} is public: cached");
        assert_eq!(first.text(), second.text());
    }
    for _ in 0..2 {
        assert_ne!(get(&stack.envoy.url("/private")).unwrap().cache(), "HIT");
    }
    let de = [("accept-language", "de")];
    let _ = hzcache_e2e::get_with(&stack.envoy.url("/vary"), &de).unwrap();
    let hit = hzcache_e2e::get_with(&stack.envoy.url("/vary"), &de).unwrap();
    assert_eq!(hit.cache(), "HIT");
    assert!(hit.text().starts_with("Hallo"), "{}", hit.text());
    let fr =
        hzcache_e2e::get_with(&stack.envoy.url("/vary"), &[("accept-language", "fr")]).unwrap();
    assert!(
        fr.text().starts_with("Bonjour"),
        "a variant per language: {}",
        fr.text()
    );
}
