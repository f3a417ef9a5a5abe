//! The architecture the folder tree shows, checked: top-level modules depend only downward
//! (no cycle among them), and the code routes reach the database only through `codes`.
//!
//! Dependencies are read from the source text: every `crate::name` path (in `use` lines
//! and in code) of a file under `src/name/` or `src/name.rs` is an edge from `name`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level module a file of `src/` belongs to; `None` for `lib.rs` and `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The top-level modules `text` names as `crate::name`, including inside `use crate::{a, b}`.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// Edges between top-level modules (self-references left out).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file).expect("source is UTF-8");
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(
            referenced_modules(&text)
                .into_iter()
                .filter(|m| *m != module),
        );
    }
    graph
}

/// A cycle through `start`, if there is one: the modules on it, in order.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let current = path.last().cloned().unwrap_or_default();
        for next in graph.get(&current).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(graph, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "modules found: {:?}", graph.keys());

    for module in graph.keys() {
        if let Some(cycle) = cycle_through(&graph, module) {
            panic!(
                "modules depend on each other in a cycle: {}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    graph.insert("d".to_string(), BTreeSet::from(["a".to_string()]));

    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".to_string(), "b".to_string(), "c".to_string()])
    );
    assert_eq!(cycle_through(&graph, "d"), None);
    assert_eq!(
        referenced_modules("use crate::{auth::X, store};\nlet a = crate::codes::f();"),
        BTreeSet::from(["auth".into(), "codes".into(), "store".into()])
    );
}

#[test]
fn the_code_routes_reach_the_database_only_through_codes() {
    let route = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes/qrcode.rs");
    let text = fs::read_to_string(route).expect("the code routes exist");

    let used = referenced_modules(&text);

    assert!(used.contains("codes"), "{used:?}");
    assert!(!used.contains("store"), "{used:?}");
    assert!(!used.contains("wechat"), "{used:?}");
}
