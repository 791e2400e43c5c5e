//! The crate's architecture, checked on its source: the import graph of
//! passt-core's top-level modules has no loop, and the sans-IO modules
//! never import the host side (`host`, `options`) or the test doubles.
//!
//! An import is any path `crate::name` in a file of a module (comments and
//! `#[cfg(test)] mod tests` blocks left out), or a name the crate root
//! re-exports (`crate::SockOp` counts as an import of `contract`). Doc
//! links to modules above are not imports, since comments are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Modules that do I/O or exist for tests: nothing sans-IO may import
/// them.
const OUTSIDE_SANS_IO: [&str; 4] = ["host", "options", "testing", "fuzzing"];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`lib` for lib.rs).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The source without comments and without unit-test modules.
fn code(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names the crate root re-exports, with the module each comes from.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let lib = code(lib);
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if name.chars().next().is_some_and(char::is_uppercase) {
                map.insert(name.to_string(), module.to_string());
            }
        }
    }
    map
}

/// Identifiers following each `crate::` in `code`, and the names of
/// `use crate::{...}` groups.
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        rest = after;
    }
    out
}

/// Module -> modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src_dir();
    let lib = fs::read_to_string(root.join("lib.rs")).unwrap();
    let re = reexports(&lib);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&root, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_of(&root, f);
        if m == "lib" {
            continue;
        }
        let src = fs::read_to_string(f).unwrap();
        for name in crate_refs(&code(&src)) {
            let target = match re.get(&name) {
                Some(t) => t.clone(),
                None if modules.contains(&name) => name,
                None => continue,
            };
            if target != m {
                g.entry(m.clone()).or_default().insert(target);
            }
        }
    }
    g
}

/// A cycle through `start`, if any (depth-first search).
fn cycle_from(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(g, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_module_graph_has_no_loop() {
    let g = graph();
    assert!(
        g.contains_key("translator") && g.contains_key("tcp"),
        "{g:?}"
    );
    for m in g.keys() {
        if let Some(c) = cycle_from(&g, m) {
            panic!("import loop: {}", c.join(" -> "));
        }
    }
}

#[test]
fn sans_io_modules_never_import_the_host_side() {
    for (m, deps) in graph() {
        if OUTSIDE_SANS_IO.contains(&m.as_str()) {
            continue;
        }
        for d in deps {
            assert!(
                !OUTSIDE_SANS_IO.contains(&d.as_str()),
                "sans-IO module `{m}` imports `{d}`"
            );
        }
    }
}

#[test]
fn the_checker_sees_imports_and_loops() {
    // The parser itself: a `use crate::{...}` group, a path, a re-export.
    let refs = crate_refs("use crate::{a::B, c};\nlet x = crate::d::e(); crate::SockOp");
    assert_eq!(refs, ["a", "c", "d", "SockOp"]);
    let re =
        reexports("pub use contract::{\n    SockOp, Event,\n};\npub use translator::Translator;");
    assert_eq!(re.get("SockOp").map(String::as_str), Some("contract"));
    assert_eq!(re.get("Translator").map(String::as_str), Some("translator"));
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle_from(&g, "a"), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle_from(&g, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
