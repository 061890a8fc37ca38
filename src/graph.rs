//! The require graph: resolves every require site to a bundled module or a declared
//! external, and finds the require cycles that cannot work at run time.
//!
//! Nodes are module names (`a` and `a.init` are two nodes even when they are one file, as
//! they are two entries in `package.loaded`); edges are require sites.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef};

use crate::diagnostic::Diagnostic;
use crate::discover::ModuleName;
use crate::flavour;
use crate::requires::{RequireSite, Target, Timing};
use crate::source::{FileId, SourceFile};

/// Most cycles reported one by one; the rest are counted.
const MAX_CYCLES_SHOWN: usize = 20;

/// One resolved require: where it is and how it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The file holding the call.
    pub file: FileId,
    /// Byte range of the call.
    pub range: Range<usize>,
    /// Eager or deferred.
    pub timing: Timing,
    /// Protected by `pcall`/`xpcall`.
    pub optional: bool,
}

/// The resolved require graph over a build's modules.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Node weights are positions in the module list.
    pub graph: DiGraph<usize, Edge>,
    /// Host-provided names that bundled modules require, sorted.
    pub externals_used: BTreeSet<String>,
}

/// A module's dependency as stored in a bundle: strongest timing of all its sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// Position of the required module in the module list.
    pub module: usize,
    /// Eager if any site is eager.
    pub timing: Timing,
    /// Optional only if every site is protected.
    pub optional: bool,
}

impl ModuleGraph {
    /// The distinct dependencies of module `module`, sorted by module position.
    pub fn dependencies(&self, module: usize) -> Vec<Dependency> {
        let mut deps: BTreeMap<usize, Dependency> = BTreeMap::new();
        for edge in self.graph.edges(NodeIndex::new(module)) {
            let target = self.graph[edge.target()];
            let w = edge.weight();
            deps.entry(target)
                .and_modify(|d| {
                    if w.timing == Timing::Eager {
                        d.timing = Timing::Eager;
                    }
                    d.optional &= w.optional;
                })
                .or_insert(Dependency { module: target, timing: w.timing, optional: w.optional });
        }
        deps.into_values().collect()
    }
}

/// Resolves every site and checks for eager cycles. `sites[f]` holds the sites of file `f`;
/// `externals` are names or `*` globs of host-provided modules.
pub fn build_graph(
    modules: &[ModuleName],
    sites: &[Vec<RequireSite>],
    files: &[SourceFile],
    externals: &[String],
) -> (ModuleGraph, Vec<Diagnostic>) {
    let mut result = ModuleGraph::default();
    let mut diagnostics = Vec::new();
    let position: HashMap<&str, usize> = modules.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
    for i in 0..modules.len() {
        result.graph.add_node(i);
    }
    // Sites are reported once per file, even when the file has two module names.
    let mut reported = vec![false; files.len()];
    for (from, module) in modules.iter().enumerate() {
        let file = module.file;
        let first_visit = !std::mem::replace(&mut reported[file], true);
        for site in &sites[file] {
            let name = match &site.target {
                Target::Name(name) => name,
                Target::Dynamic(expression) => {
                    if first_visit {
                        diagnostics.push(dynamic_require(file, site, expression));
                    }
                    continue;
                }
            };
            if let Some(&to) = position.get(name.as_str()) {
                let edge = Edge { file, range: site.range.clone(), timing: site.timing, optional: site.optional };
                result.graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), edge);
            } else if flavour::STANDARD_MODULES.contains(&name.as_str()) {
                // Provided by the VM itself: `require "debug"` returns the library.
            } else if externals.iter().any(|pattern| glob_match(pattern, name)) {
                result.externals_used.insert(name.clone());
            } else if first_visit {
                diagnostics.push(unresolved_require(file, site, name, modules));
            }
        }
    }
    diagnostics.extend(eager_cycles(&result.graph, modules, files));
    (result, diagnostics)
}

fn dynamic_require(file: FileId, site: &RequireSite, expression: &str) -> Diagnostic {
    Diagnostic::warning("dynamic-require", "require with a name known only at run time")
        .with_primary(file, site.range.clone(), format!("`{expression}` is not a constant"))
        .with_note("the module it loads is not bundled unless something else requires it")
}

fn unresolved_require(file: FileId, site: &RequireSite, name: &str, modules: &[ModuleName]) -> Diagnostic {
    let make = if site.optional { Diagnostic::warning } else { Diagnostic::error };
    let mut d = make("unresolved-require", format!("module `{name}` not found")).with_primary(
        file,
        site.range.clone(),
        format!("no root provides `{name}`"),
    );
    if let Some(close) = modules.iter().find(|m| m.name.eq_ignore_ascii_case(name)) {
        d = d.with_note(format!("a module `{}` exists (names are case-sensitive)", close.name));
    }
    d.with_note(format!("if the host program provides `{name}`, declare it with --external {name}"))
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

/// One `require-cycle` error per strongly connected set of modules joined by eager edges.
fn eager_cycles(graph: &DiGraph<usize, Edge>, modules: &[ModuleName], files: &[SourceFile]) -> Vec<Diagnostic> {
    let eager = EdgeFiltered::from_fn(graph, |e| e.weight().timing == Timing::Eager);
    let mut cycles: Vec<Vec<EdgeIndex>> = petgraph::algo::tarjan_scc(&eager)
        .into_iter()
        .filter_map(|component| {
            let members: BTreeSet<NodeIndex> = component.into_iter().collect();
            let start = *members.iter().min_by_key(|n| &modules[graph[**n]].name)?;
            shortest_cycle(graph, start, &members)
        })
        .collect();
    cycles.sort_by_cached_key(|c| cycle_names(graph, modules, c));
    let hidden = cycles.len().saturating_sub(MAX_CYCLES_SHOWN);
    let mut out: Vec<Diagnostic> =
        cycles.iter().take(MAX_CYCLES_SHOWN).map(|c| cycle_diagnostic(graph, modules, files, c)).collect();
    if hidden > 0 {
        out.push(Diagnostic::error("require-cycle", format!("and {hidden} more require cycles")));
    }
    out
}

/// The shortest eager path from `start` back to itself inside `members`, as edges.
fn shortest_cycle(
    graph: &DiGraph<usize, Edge>,
    start: NodeIndex,
    members: &BTreeSet<NodeIndex>,
) -> Option<Vec<EdgeIndex>> {
    let mut came_from: HashMap<NodeIndex, EdgeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut edges: Vec<_> =
            graph.edges(node).filter(|e| e.weight().timing == Timing::Eager && members.contains(&e.target())).collect();
        edges.sort_by_key(|e| (e.weight().range.start, e.id()));
        for edge in edges {
            let next = edge.target();
            if next == start {
                let mut path = vec![edge.id()];
                let mut at = node;
                while at != start {
                    let back = came_from[&at];
                    path.push(back);
                    at = graph.edge_endpoints(back)?.0;
                }
                path.reverse();
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = came_from.entry(next) {
                slot.insert(edge.id());
                queue.push_back(next);
            }
        }
    }
    None
}

fn cycle_names(graph: &DiGraph<usize, Edge>, modules: &[ModuleName], cycle: &[EdgeIndex]) -> Vec<String> {
    cycle.iter().filter_map(|&e| graph.edge_endpoints(e)).map(|(from, _)| modules[graph[from]].name.clone()).collect()
}

fn cycle_diagnostic(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    files: &[SourceFile],
    cycle: &[EdgeIndex],
) -> Diagnostic {
    let mut names = cycle_names(graph, modules, cycle);
    names.push(names[0].clone());
    let chain = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" > ");
    let mut d = Diagnostic::error("require-cycle", format!("require cycle: {chain}"));
    for (i, &e) in cycle.iter().enumerate() {
        let edge = &graph[e];
        let (from, to) = (&names[i], &names[i + 1]);
        let file = &files[edge.file];
        let (line, _) = file.line_col(edge.range.start);
        let message = format!("`{from}` requires `{to}` while it loads");
        d = if i == 0 {
            d.with_primary(edge.file, edge.range.clone(), message)
        } else {
            d.with_secondary(edge.file, edge.range.clone(), message)
        };
        d = d.with_note(format!("{}:{line}: `{from}` requires `{to}`", file.display_path));
    }
    d.with_note(
        "every require here runs at load time, so Lua recurses without end; move one into the function that needs it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_library_modules_need_no_file() {
        let file = SourceFile { id: 0, disk_path: "m.lua".into(), display_path: "m.lua".into(), text: "".into() };
        let site = |name: &str| RequireSite {
            target: Target::Name(name.into()),
            range: 0..0,
            timing: Timing::Eager,
            optional: false,
        };
        let modules = vec![ModuleName { name: "m".into(), file: 0 }];
        let sites = vec![vec![site("debug"), site("string"), site("utf8"), site("lfs")]];
        let (graph, diagnostics) = build_graph(&modules, &sites, &[file], &[]);
        let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["unresolved-require"]);
        assert!(diagnostics[0].message.contains("`lfs`"));
        assert!(graph.externals_used.is_empty());
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("lfs", "lfs"));
        assert!(!glob_match("lfs", "lfs2"));
        assert!(glob_match("socket.*", "socket.http"));
        assert!(!glob_match("socket.*", "socket"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "axxbyyc"));
    }
}
