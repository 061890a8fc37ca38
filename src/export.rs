//! The require graph for people and machines: a versioned JSON document, Graphviz `dot`
//! and Mermaid. `docs/GRAPH.md` documents the JSON schema.

use serde::Serialize;

use crate::analysis::requires::{GuardWhen, Timing};
use crate::analysis::Analysis;

/// Version of the JSON document's schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole graph as data.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GraphDocument {
    /// Schema version, [`SCHEMA_VERSION`].
    pub version: u32,
    /// The entry module, if one was given.
    pub entry: Option<String>,
    /// Every module found, sorted by name.
    pub modules: Vec<ModuleNode>,
    /// Every require of one bundled-or-not module by another, in source order per module.
    pub edges: Vec<EdgeRecord>,
    /// Requires whose module name is known only at run time.
    pub dynamic: Vec<DynamicRecord>,
    /// Host-provided modules that bundled modules require.
    pub externals: Vec<String>,
}

/// A module.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ModuleNode {
    /// The name `require` takes.
    pub name: String,
    /// Its file, relative to its root's parent.
    pub path: String,
    /// Whether the bundle holds it.
    pub bundled: bool,
}

/// A require of one module by another.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EdgeRecord {
    /// The requiring module.
    pub from: String,
    /// The required module.
    pub to: String,
    /// `eager` (runs while `from` loads) or `deferred` (inside a function).
    pub kind: &'static str,
    /// Whether the program works without the module: the call is protected by
    /// `pcall`/`xpcall` (or runs only inside a function that runs only under them), or a guard
    /// makes it so.
    pub optional: bool,
    /// The file of the call.
    pub file: String,
    /// One-based line of the call.
    pub line: usize,
    /// One-based column of the call.
    pub column: usize,
    /// The protected require whose outcome decides whether the call runs, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardRecord>,
}

/// The guard of a require: `if ok then require "b" end` after `ok = pcall(require, "a")`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GuardRecord {
    /// The module of the protected require.
    pub module: String,
    /// `loaded` (the call runs only if that require succeeded) or `failed` (a fallback that
    /// runs only if it failed).
    pub when: &'static str,
    /// One-based line of the protected require.
    pub line: usize,
}

/// A require with a run-time name.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DynamicRecord {
    /// The requiring module.
    pub module: String,
    /// The file of the call.
    pub file: String,
    /// One-based line of the call.
    pub line: usize,
    /// One-based column of the call.
    pub column: usize,
    /// The argument as written.
    pub expression: String,
    /// Whether an `--include` pattern covers it.
    pub covered: bool,
}

/// The document for an analysed build.
pub fn document(analysis: &Analysis) -> GraphDocument {
    let modules = &analysis.discovered.modules;
    let files = &analysis.discovered.files;
    let graph = &analysis.graph;
    let mut edges = Vec::new();
    for (i, module) in modules.iter().enumerate() {
        let mut outgoing: Vec<_> = graph.graph.edges(petgraph::graph::NodeIndex::new(i)).collect();
        outgoing.sort_by_key(|e| (e.weight().file, e.weight().range.start));
        for edge in outgoing {
            use petgraph::visit::EdgeRef;
            let w = edge.weight();
            let (line, column) = files[w.file].line_col(w.range.start);
            edges.push(EdgeRecord {
                from: module.name.clone(),
                to: modules[graph.graph[edge.target()]].name.clone(),
                kind: w.timing.as_str(),
                optional: w.optional,
                file: files[w.file].display_path.clone(),
                line,
                column,
                guard: w.guard.as_ref().map(|g| GuardRecord {
                    module: g.module.clone(),
                    when: if g.when == GuardWhen::Loaded { "loaded" } else { "failed" },
                    line: files[w.file].line_col(g.range.start).0,
                }),
            });
        }
    }
    let dynamic = graph
        .dynamic
        .iter()
        .map(|d| {
            let (line, column) = files[d.file].line_col(d.range.start);
            DynamicRecord {
                module: modules[d.module].name.clone(),
                file: files[d.file].display_path.clone(),
                line,
                column,
                expression: d.expression.clone(),
                covered: d.covered,
            }
        })
        .collect();
    GraphDocument {
        version: SCHEMA_VERSION,
        entry: analysis.entry.map(|e| modules[e].name.clone()),
        modules: modules
            .iter()
            .zip(&graph.bundled)
            .map(|(m, &bundled)| ModuleNode { name: m.name.clone(), path: files[m.file].display_path.clone(), bundled })
            .collect(),
        edges,
        dynamic,
        externals: graph.externals_used.iter().cloned().collect(),
    }
}

/// The shortest require chain from `from` to `to` (empty when they are the same module), or
/// `None` if `to` cannot be reached.
pub fn chain<'a>(document: &'a GraphDocument, from: &str, to: &str) -> Option<Vec<&'a EdgeRecord>> {
    if from == to {
        return Some(Vec::new());
    }
    let mut came_by: std::collections::HashMap<&str, &EdgeRecord> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(module) = queue.pop_front() {
        for edge in document.edges.iter().filter(|e| e.from == module) {
            if edge.to == from || came_by.contains_key(edge.to.as_str()) {
                continue;
            }
            came_by.insert(&edge.to, edge);
            if edge.to == to {
                let mut path = vec![edge];
                while path.last().map(|e| e.from.as_str()) != Some(from) {
                    path.push(came_by[path.last()?.from.as_str()]);
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(&edge.to);
        }
    }
    None
}

/// Pretty-printed JSON.
pub fn to_json(document: &GraphDocument) -> String {
    serde_json::to_string_pretty(document).expect("graph serialises") + "\n"
}

/// Graphviz: one arrow per pair of modules, solid when a require runs while the module loads,
/// dashed when all run later (inside functions), dotted when all are optional; modules left
/// out of the bundle grey; the entry bold.
pub fn to_dot(document: &GraphDocument) -> String {
    let mut out = String::from("digraph requires {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for m in &document.modules {
        let mut style = Vec::new();
        if !m.bundled {
            style.push("color=gray60, fontcolor=gray50");
        }
        if document.entry.as_deref() == Some(m.name.as_str()) {
            style.push("style=bold");
        }
        let attrs = if style.is_empty() { String::new() } else { format!(", {}", style.join(", ")) };
        out.push_str(&format!("  {} [label={}{attrs}];\n", quote(&m.name), quote(&format!("{}\n{}", m.name, m.path))));
    }
    // One arrow per pair of modules, drawn as its strongest require.
    let mut pairs: Vec<(&str, &str, Vec<&EdgeRecord>)> = Vec::new();
    for e in &document.edges {
        match pairs.iter_mut().find(|(from, to, _)| *from == e.from && *to == e.to) {
            Some((_, _, sites)) => sites.push(e),
            None => pairs.push((&e.from, &e.to, vec![e])),
        }
    }
    for (from, to, sites) in pairs {
        let required = sites.iter().filter(|e| !e.optional);
        let style = match (required.clone().any(|e| e.kind == Timing::Eager.as_str()), required.count() > 0) {
            (true, _) => "solid",
            (false, true) => "dashed",
            (false, false) => "dotted",
        };
        let places: Vec<String> = sites.iter().map(|e| format!("{}:{}", e.file, e.line)).collect();
        out.push_str(&format!(
            "  {} -> {} [style={style}, tooltip={}];\n",
            quote(from),
            quote(to),
            quote(&places.join(" "))
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart: `-->` eager, `-.->` deferred, optional ones labelled.
pub fn to_mermaid(document: &GraphDocument) -> String {
    let id =
        |name: &str| document.modules.iter().position(|m| m.name == name).map_or_else(String::new, |i| format!("m{i}"));
    let mut out = String::from("flowchart LR\n");
    for (i, m) in document.modules.iter().enumerate() {
        out.push_str(&format!("  m{i}[\"{}\"]\n", m.name.replace('"', "#quot;")));
    }
    for e in &document.edges {
        let arrow = if e.kind == Timing::Deferred.as_str() { "-.->" } else { "-->" };
        let label = if e.optional { "|optional|" } else { "" };
        out.push_str(&format!("  {} {arrow}{label} {}\n", id(&e.from), id(&e.to)));
    }
    out
}

/// A Graphviz string literal.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}
