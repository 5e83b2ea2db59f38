//! The pure HTTP rules (`companion/src/http/`) stay pure: they name no other part of the
//! companion (not the cache flow, the store, the server, Hazelcast or the answers), and their
//! modules do not import each other in a cycle, so each concern can be read, tested and moved
//! on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `crate::…` paths named in `text`, as the module right after `crate::` (and after
/// `crate::http::` for the rule modules themselves).
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(path);
    }
    out
}

fn http_modules() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("src/http exists") {
        let path = entry.expect("readable directory").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 file name")
                .to_string();
            let text = std::fs::read_to_string(&path).expect("readable module");
            modules.insert(name, text);
        }
    }
    modules
}

#[test]
fn http_rule_modules_import_only_each_other() {
    for (name, text) in http_modules() {
        for path in crate_paths(&text) {
            assert!(
                path.starts_with("http::") || path == "http",
                "http/{name}.rs names crate::{path}: the pure rules must not depend on the rest of the companion"
            );
        }
    }
}

#[test]
fn http_rule_modules_have_no_import_cycle() {
    let modules = http_modules();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &modules {
        let deps = edges.entry(name.clone()).or_default();
        for path in crate_paths(text) {
            if let Some(dep) = path.strip_prefix("http::") {
                let dep = dep.split("::").next().unwrap_or("").to_string();
                if dep != *name && modules.contains_key(&dep) {
                    deps.insert(dep);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        trail: &mut Vec<String>,
    ) {
        match state.get(n) {
            Some(2) => return,
            Some(1) => panic!("import cycle among http modules: {trail:?} -> {n}"),
            _ => {}
        }
        state.insert(n.to_string(), 1);
        trail.push(n.to_string());
        for d in edges.get(n).into_iter().flatten() {
            visit(d, edges, state, trail);
        }
        trail.pop();
        state.insert(n.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        visit(n, &edges, &mut state, &mut Vec::new());
    }
    assert!(
        edges.len() >= 10,
        "found only {:?}: the checker must see the modules",
        edges.keys()
    );
}
