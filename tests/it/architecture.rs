//! The shape of the code: the top-level modules of src/ import each other one
//! way (docs/architecture.md draws the flow), so no two of them form a cycle.
//! The check reads the sources as text: `crate::NAME` (also in grouped
//! `use crate::{..}` lines), `super::NAME` at a module's top level, and the
//! CLI's `opsdeploy::NAME`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::repo;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level module a file under src/ belongs to (`None` for the crate
/// roots, lib.rs and main.rs).
fn module_of(rel: &str) -> Option<&str> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then_some(name)
}

/// Whether a file sits at the top level of its module (`src/x.rs`,
/// `src/x/mod.rs`), where `super::` is the crate root.
fn at_top_level(rel: &str) -> bool {
    !rel.contains('/') || rel.matches('/').count() == 1 && rel.ends_with("/mod.rs")
}

/// The identifiers that follow `prefix` in `code`, a brace group counting as
/// each of its first path segments.
fn named_after(code: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut at = 0;
    while let Some(i) = code[at..].find(prefix) {
        let before = code[..at + i].chars().next_back();
        at += i + prefix.len();
        let rest = &code[at..];
        // `my_crate::x` and `super::super::x` are other paths.
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let Some(group) = rest.strip_prefix('{') else {
            out.insert(ident(rest));
            continue;
        };
        let (mut depth, mut start) = (0usize, true);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if c.is_whitespace() => {}
                _ if start && depth == 0 => {
                    out.insert(ident(&group[j..]));
                    start = false;
                }
                _ => {}
            }
        }
    }
}

/// Module -> the other modules it names, from (path under src/, text) pairs.
fn imports(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<&str> = files.iter().filter_map(|(p, _)| module_of(p)).collect();
    let mut graph = Graph::new();
    for (rel, text) in files {
        let Some(from) = module_of(rel) else { continue };
        // Whole-line comments (docs included) name modules in prose.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut named = BTreeSet::new();
        named_after(&code, "crate::", &mut named);
        named_after(&code, "opsdeploy::", &mut named);
        if at_top_level(rel) {
            named_after(&code, "super::", &mut named);
        }
        let entry = graph.entry(from.to_string()).or_default();
        entry.extend(
            named
                .into_iter()
                .filter(|m| m != from && modules.contains(m.as_str())),
        );
    }
    graph
}

/// A cycle of the graph, as the path that closes it (`a -> b -> a`).
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut found = path[i..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn the_top_level_modules_of_src_import_each_other_without_a_cycle() {
    let src = repo().join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let graph = imports(&files);
    // The check sees the imports there are (a reader that found none would pass anything).
    assert!(graph["workflow"].contains("store"), "{graph:#?}");
    assert!(graph["cli"].contains("workflow"), "{graph:#?}");
    if let Some(c) = cycle(&graph) {
        panic!(
            "the modules of src/ import each other in a cycle: {}\n\
             (move the shared record to the lower module; docs/architecture.md has the order)\n{graph:#?}",
            c.join(" -> ")
        );
    }
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn the_cycle_check_finds_a_planted_cycle_through_any_kind_of_import() {
    let planted = files(&[
        (
            "store/mod.rs",
            "use crate::{config::Enforcement, redact};\n",
        ),
        ("redact.rs", "fn f() { super::report::write(); }\n"),
        (
            "report/plan.rs",
            "use crate::{\n    fsutil,\n    workflow::{history::History, short},\n};\n",
        ),
        ("workflow/mod.rs", "pub use crate::store::Store;\n"),
        ("config/mod.rs", ""),
        ("fsutil.rs", ""),
    ]);
    let graph = imports(&planted);
    assert_eq!(
        graph["report"],
        BTreeSet::from(["fsutil".into(), "workflow".into()])
    );
    assert_eq!(
        cycle(&graph).unwrap().join(" -> "),
        "redact -> report -> workflow -> store -> redact"
    );
}

#[test]
fn the_cycle_check_passes_imports_that_flow_one_way() {
    let one_way = files(&[
        ("cli/plan.rs", "use opsdeploy::workflow::plan;\n"),
        (
            "workflow/plan.rs",
            "use crate::store::Store;\nuse super::tools;\n",
        ),
        // A comment, a nested `super::` and another crate's path name no module.
        (
            "store/mod.rs",
            "// crate::workflow reads the store\nuse super::super::workflow;\nuse my_crate::workflow;\n",
        ),
    ]);
    let graph = imports(&one_way);
    assert_eq!(graph["store"], BTreeSet::new());
    assert_eq!(cycle(&graph), None);
}
