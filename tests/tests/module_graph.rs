//! The module dependency graph of every crate in the workspace has no cycles (issue 13): each
//! helper lives in the leaf module that owns it, and a layer only uses the layers below it.
//!
//! How it is checked, with no tool beyond this file: every crate root (`src/lib.rs`,
//! `src/main.rs`) of every workspace member is walked through its `mod NAME;` declarations to
//! the files they name; each module file is read with comments, string literals and
//! `#[cfg(test)]` items removed (tests may reach anywhere); every path that starts with
//! `crate::`, `super::`, `self::` or the name of one of the module's own child modules
//! (use trees `a::{b, c::{d}}` included) is resolved to the deepest module it names; that is
//! an edge from the module holding the path to that module. Declaring a child (`mod x;`) is not
//! an edge; re-exporting from it (`pub use x::Thing`) is. Strongly connected components
//! (Tarjan) larger than one module are cycles, reported with the references that make them.
//! Inline modules other than test modules are rare here and are read as part of their file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hzcache_e2e::root;

/// A module: its path from the crate root (`[]` is the root) and its file.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    children: BTreeSet<String>,
    /// Code with comments, strings and test items blanked out.
    code: String,
}

/// The workspace members named in the root Cargo.toml.
fn members() -> Vec<PathBuf> {
    let text = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let start = text.find("members").expect("workspace members");
    let list = &text[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(|s| root().join(s))
        .collect()
}

/// Blanks comments, string and char literals (keeping newlines, so line numbers stay right).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // Raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let end = b[j + 1..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map(|p| j + 1 + p + close.len())
                    .unwrap_or(b.len());
                for &c in &b[i..end] {
                    blank(&mut out, c);
                }
                i = end;
            } else {
                out.push(b[i]);
                i += 1;
            }
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): only blank the former.
            let rest = &b[i + 1..];
            let len = if rest.first() == Some(&b'\\') {
                rest.iter().position(|&c| c == b'\'').map(|p| p + 1)
            } else if rest.len() >= 2 && rest[1] == b'\'' {
                Some(2)
            } else {
                // A multi-byte UTF-8 char literal.
                std::str::from_utf8(&rest[..rest.len().min(5)])
                    .ok()
                    .or_else(|| std::str::from_utf8(&rest[..rest.len().min(4)]).ok())
                    .and_then(|s| s.chars().next())
                    .filter(|c| c.len_utf8() > 1 && rest.get(c.len_utf8()) == Some(&b'\''))
                    .map(|c| c.len_utf8() + 1)
            };
            match len {
                Some(n) => {
                    out.extend(std::iter::repeat_n(b' ', n + 1));
                    i += n + 1;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Blanks every item marked `#[cfg(test)]` (to the end of its `{…}` or `;`).
fn strip_tests(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]").map(|p| p + from) {
        let mut i = p;
        let mut depth = 0usize;
        let end = loop {
            if i >= b.len() {
                break b.len();
            }
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break i + 1;
                    }
                }
                b';' if depth == 0 => break i + 1,
                _ => {}
            }
            i += 1;
        };
        for c in &mut b[p..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `mod NAME;` declarations (not inline `mod NAME { … }`).
fn declared_children(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("mod ") {
        if i > 0 && code[..i].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[i + 4..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|&c| is_ident(c))
            .collect();
        let after = rest.trim_start()[name.len()..].trim_start();
        if !name.is_empty() && after.starts_with(';') {
            out.insert(name);
        }
    }
    out
}

/// `#[path = "FILE"] mod NAME;` declarations: NAME → FILE (read from the unstripped source).
fn path_attributes(src: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, _) in src.match_indices("#[path") {
        let rest = &src[i..];
        let (Some(q1), Some(close)) = (rest.find('"'), rest.find("]")) else {
            continue;
        };
        let Some(q2) = rest[q1 + 1..].find('"').map(|p| p + q1 + 1) else {
            continue;
        };
        if q2 > close {
            continue;
        }
        let after = rest[close + 1..].trim_start();
        let after = after.strip_prefix("pub ").unwrap_or(after).trim_start();
        if let Some(decl) = after.strip_prefix("mod ") {
            let name: String = decl
                .trim_start()
                .chars()
                .take_while(|&c| is_ident(c))
                .collect();
            out.insert(name, rest[q1 + 1..q2].to_string());
        }
    }
    out
}

/// Loads a crate's modules from its root file through its `mod` declarations.
fn load_crate(root_file: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    let mut todo = vec![(Vec::<String>::new(), root_file.to_path_buf())];
    while let Some((path, file)) = todo.pop() {
        let src = fs::read_to_string(&file).unwrap();
        let code = strip_tests(&strip(&src));
        let children = declared_children(&code);
        // Children of `x.rs` live in `x/`; of `lib.rs`, `main.rs` and `mod.rs`, beside them.
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = if path.is_empty() || stem == "mod" {
            file.parent().unwrap().to_path_buf()
        } else {
            file.parent().unwrap().join(&stem)
        };
        let paths = path_attributes(&src);
        for c in &children {
            let a = dir.join(format!("{c}.rs"));
            let b = dir.join(c).join("mod.rs");
            // `#[path = "…"]` is relative to the declaring file's folder.
            let f = match paths.get(c) {
                Some(p) => file.parent().unwrap().join(p),
                None if a.exists() => a,
                None => b,
            };
            assert!(f.exists(), "{}: `mod {c};` has no file", file.display());
            let mut p = path.clone();
            p.push(c.clone());
            todo.push((p, f));
        }
        out.push(Module {
            path,
            file,
            children,
            code,
        });
    }
    out
}

/// Every path in `code` with its line: `a::b::c`, and use trees expanded (`a::{b, c::d}` gives
/// `a::b` and `a::c::d`).
fn paths(code: &str) -> Vec<(Vec<String>, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        let starts_word =
            is_ident(chars[i]) && (i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':'));
        if !starts_word {
            i += 1;
            continue;
        }
        let (prefixes, next) = parse_tree(&chars, i);
        for p in prefixes {
            if p.len() >= 2 {
                out.push((p, line));
            }
        }
        // Count the lines the tree spanned.
        line += chars[i..next].iter().filter(|&&c| c == '\n').count();
        i = next.max(i + 1);
    }
    out
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Parses `seg(::seg)*(::{tree, …})?` at `i`; returns every full path and the end index.
fn parse_tree(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut segs = Vec::new();
    loop {
        i = skip_ws(chars, i);
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i == start {
            break;
        }
        segs.push(chars[start..i].iter().collect::<String>());
        let j = skip_ws(chars, i);
        if j + 1 < chars.len() && chars[j] == ':' && chars[j + 1] == ':' {
            let k = skip_ws(chars, j + 2);
            if k < chars.len() && chars[k] == '{' {
                // A use group.
                let mut out = Vec::new();
                let mut m = k + 1;
                loop {
                    m = skip_ws(chars, m);
                    if m >= chars.len() || chars[m] == '}' {
                        m += 1;
                        break;
                    }
                    if chars[m] == ',' || chars[m] == '*' {
                        m += 1;
                        continue;
                    }
                    if is_ident(chars[m]) {
                        let (subs, end) = parse_tree(chars, m);
                        for s in subs {
                            let mut p = segs.clone();
                            if s.first().map(String::as_str) != Some("self") {
                                p.extend(s);
                            }
                            out.push(p);
                        }
                        m = end;
                        // `x as y`
                        let n = skip_ws(chars, m);
                        if chars[n..].starts_with(&['a', 's']) {
                            m = n + 2;
                            m = skip_ws(chars, m);
                            while m < chars.len() && is_ident(chars[m]) {
                                m += 1;
                            }
                        }
                    } else {
                        m += 1;
                    }
                }
                return (out, m);
            }
            i = j + 2;
            continue;
        }
        break;
    }
    (vec![segs], i)
}

/// The module a path names from `from`, or `None` when it is not a path into this crate.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeMap<Vec<String>, &Module>,
) -> Option<Vec<String>> {
    let mut base: Vec<String>;
    let mut rest = path;
    match path[0].as_str() {
        "crate" => {
            base = Vec::new();
            rest = &path[1..];
        }
        "self" => {
            base = from.to_vec();
            rest = &path[1..];
        }
        "super" => {
            base = from.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        first => {
            let child = modules.get(from)?.children.contains(first);
            if !child {
                return None;
            }
            base = from.to_vec();
        }
    }
    for seg in rest {
        let mut next = base.clone();
        next.push(seg.clone());
        if modules.contains_key(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

/// Tarjan's strongly connected components.
fn sccs(
    nodes: &[Vec<String>],
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on: BTreeSet<Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit(s: &mut State, v: &Vec<String>) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on.insert(v.clone());
        let targets: Vec<Vec<String>> = s.edges.get(v).into_iter().flatten().cloned().collect();
        for w in targets {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low[v];
                s.low.insert(v.clone(), lv.min(lw));
            } else if s.on.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low[v];
                s.low.insert(v.clone(), lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The cycles of one crate, described; empty when its module graph is a DAG.
fn cycles(root_file: &Path) -> Vec<String> {
    let loaded = load_crate(root_file);
    let modules: BTreeMap<Vec<String>, &Module> =
        loaded.iter().map(|m| (m.path.clone(), m)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut why: BTreeMap<(Vec<String>, Vec<String>), String> = BTreeMap::new();
    for m in &loaded {
        for (p, line) in paths(&m.code) {
            if let Some(to) = resolve(&m.path, &p, &modules) {
                if to != m.path {
                    edges.entry(m.path.clone()).or_default().insert(to.clone());
                    why.entry((m.path.clone(), to)).or_insert_with(|| {
                        format!(
                            "{}:{line} `{}`",
                            m.file.strip_prefix(root()).unwrap_or(&m.file).display(),
                            p.join("::")
                        )
                    });
                }
            }
        }
    }
    let nodes: Vec<Vec<String>> = modules.keys().cloned().collect();
    let mut out = Vec::new();
    for comp in sccs(&nodes, &edges) {
        if comp.len() < 2 {
            continue;
        }
        let set: BTreeSet<&Vec<String>> = comp.iter().collect();
        let mut lines = vec![format!(
            "cycle in {}: {}",
            root_file
                .strip_prefix(root())
                .unwrap_or(root_file)
                .display(),
            comp.iter().map(|p| name(p)).collect::<Vec<_>>().join(", ")
        )];
        for ((a, b), w) in &why {
            if set.contains(a) && set.contains(b) {
                lines.push(format!("    {} -> {}: {w}", name(a), name(b)));
            }
        }
        out.push(lines.join("\n"));
    }
    out
}

#[test]
fn every_crates_module_graph_is_acyclic() {
    let mut crates = 0;
    let mut found = Vec::new();
    for member in members() {
        for f in ["src/lib.rs", "src/main.rs"] {
            let file = member.join(f);
            if file.exists() {
                crates += 1;
                found.extend(cycles(&file));
            }
        }
    }
    assert!(crates >= 8, "found only {crates} crate roots");
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

/// The checker itself finds a cycle it is shown, follows use trees and `super::`, and ignores
/// comments, strings and test modules.
#[test]
fn the_checker_finds_a_planted_cycle_and_nothing_in_comments() {
    let dir = std::env::temp_dir().join(format!("hzcache-modgraph-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::write(dir.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").unwrap();
    fs::write(dir.join("a.rs"), "mod inner;\npub use inner::X;\n").unwrap();
    fs::write(
        dir.join("a/inner.rs"),
        "use crate::{c::Z, b::{self, Y as W}};\npub struct X;\n",
    )
    .unwrap();
    fs::write(
        dir.join("b.rs"),
        "pub struct Y;\n// crate::c::Z in a comment\n",
    )
    .unwrap();
    fs::write(
        dir.join("c.rs"),
        "pub struct Z;\nfn f() { let _ = \"crate::b::Y\"; }\n#[cfg(test)]\nmod tests { use crate::b::Y; }\n",
    )
    .unwrap();
    assert!(
        cycles(&dir.join("lib.rs")).is_empty(),
        "{:?}",
        cycles(&dir.join("lib.rs"))
    );
    // c -> a::inner -> c.
    fs::write(dir.join("c.rs"), "pub struct Z;\nfn f() { super::a::X; }\n").unwrap();
    let found = cycles(&dir.join("lib.rs"));
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    // a -> a::inner (the re-export), a::inner -> c (the use tree), c -> a (`super::a::X`).
    assert!(found[0].contains("a::inner -> c:"), "{found:?}");
    assert!(found[0].contains("c -> a:"), "{found:?}");
    assert!(found[0].contains("a -> a::inner:"), "{found:?}");
}
