//! The shape of `runtime/src`: no import cycle between its top-level modules, and no module
//! reaching up a layer (the shared leaves below the stages, the stages below the agent and the
//! commands). Read from the source, as a reviewer would: every `crate::<module>` path outside a
//! comment counts, `use` or not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first; a module may use modules of its own layer or below. A top-level module missing
/// here fails the test, so a new one is placed on purpose.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaves", &["text", "pod", "instance_id", "regular_file", "watchdog", "status"]),
    ("shared model and settings", &["model", "config", "tagger", "policy", "instance_options"]),
    ("pipeline stages", &["discover", "annotations", "confd", "store", "resolve", "schedule", "exec", "aggregate", "send", "dogstatsd", "secrets"]),
    ("the agent and the commands", &["agent", "cli", "lint"]),
];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The top-level modules each `crate::` path in `text` names, comments left out.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::X, b}`: the first segment of each item at the group's top level.
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && (c.is_alphanumeric() || c == '_') => {
                            let word: String = group[i..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            found.insert(word);
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !word.is_empty() {
                    found.insert(word);
                }
            }
        }
    }
    found
}

/// Module -> the modules it uses, with a file that does.
fn import_graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(source_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let mut uses = BTreeMap::new();
        for file in files {
            for used in referenced_modules(&std::fs::read_to_string(&file).unwrap()) {
                if used != name {
                    uses.entry(used).or_insert_with(|| file.clone());
                }
            }
        }
        graph.insert(name, uses);
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, PathBuf>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, node: &'a str) {
        let n = s.index.len();
        s.index.insert(node, n);
        s.low.insert(node, n);
        s.stack.push(node);
        s.on_stack.insert(node);
        let graph = s.graph;
        for next in graph[node].keys().filter(|m| graph.contains_key(*m)) {
            if !s.index.contains_key(next.as_str()) {
                visit(s, next);
                let low = s.low[next.as_str()].min(s.low[node]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next.as_str()) {
                let low = s.index[next.as_str()].min(s.low[node]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            loop {
                let member = s.stack.pop().unwrap();
                s.on_stack.remove(member);
                component.push(member.to_string());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state =
        State { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on_stack: BTreeSet::new(), found: Vec::new() };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

#[test]
fn the_reader_sees_every_kind_of_crate_path() {
    let text = "use crate::exec::{A, B};\nuse crate::{model::{Problem, Entity}, text};\n// crate::agent in a comment\nlet x = crate::pod::Pod::default(); // crate::cli\n";
    let found: Vec<String> = referenced_modules(text).into_iter().collect();
    assert_eq!(found, ["exec", "model", "pod", "text"]);
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeMap<String, PathBuf>> = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_string(), BTreeMap::from([(to.to_string(), PathBuf::new())])))
        .collect();
    assert_eq!(cycles(&graph), [["a", "b", "c"]]);
}

#[test]
fn no_import_cycle_between_the_top_level_modules() {
    let graph = import_graph();
    assert!(graph.len() >= 15, "read the modules of {}: {graph:?}", source_dir().display());
    let found = cycles(&graph);
    let explained: Vec<String> = found
        .iter()
        .map(|cycle| {
            let edges: Vec<String> = cycle
                .iter()
                .flat_map(|from| {
                    graph[from]
                        .iter()
                        .filter(|(to, _)| cycle.contains(to))
                        .map(move |(to, file)| format!("{from} -> {to} ({})", file.display()))
                })
                .collect();
            edges.join("; ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n{}", explained.join("\n"));
}

#[test]
fn no_module_reaches_up_a_layer() {
    let graph = import_graph();
    let layer_of = |module: &str| LAYERS.iter().position(|(_, members)| members.contains(&module));
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        let Some(own) = layer_of(module) else {
            wrong.push(format!("module `{module}` is in no layer of this test: place it"));
            continue;
        };
        for (used, file) in uses {
            if let Some(theirs) = layer_of(used)
                && theirs > own
            {
                wrong.push(format!("{module} ({}) uses {used} ({}) in {}", LAYERS[own].0, LAYERS[theirs].0, file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
