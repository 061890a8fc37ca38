//! The require graph: resolves every require site to a bundled module, a module of the
//! Lua VM itself, or a declared external; decides which modules the bundle holds; and finds
//! the require cycles that cannot work at run time.
//!
//! Nodes are module names (`a` and `a.init` are two nodes even when they are one file, as
//! they are two entries in `package.loaded`); edges are require sites.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::{Bfs, EdgeFiltered, EdgeRef, NodeFiltered};

use luabundle_runtime::names::edit_distance;

use crate::analysis::name_patterns::NamePatterns;
use crate::analysis::requires::{Guard, GuardWhen, LuauPath, RequireSite, Target, Timing};
use crate::diagnostic::Severity;
use crate::diagnostic::{Code, Diagnostic};
use crate::flavour;
use crate::input::discover::ModuleName;
use crate::input::source::{FileId, SourceFile};

/// Most cycles reported one by one; the rest are counted.
const MAX_CYCLES_SHOWN: usize = 20;
/// Most unreachable files named in the `unreachable-file` warning.
const MAX_UNREACHABLE_SHOWN: usize = 10;

/// One resolved require: where it is and how it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The file holding the call.
    pub file: FileId,
    /// Byte range of the call.
    pub range: Range<usize>,
    /// Eager or deferred.
    pub timing: Timing,
    /// Protected by `pcall`/`xpcall`, or needed only when another require succeeded, or a
    /// fallback for a bundled module.
    pub optional: bool,
    /// Why the call is optional when a guard decides it: the protected require it depends on.
    pub guard: Option<Guard>,
    /// A Luau path require: a cycle through one is legal (Luau hands the second requirer a
    /// placeholder that becomes the module's table once it has loaded).
    pub by_path: bool,
}

/// A require whose module name is not known before run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicSite {
    /// The requiring module's position.
    pub module: usize,
    /// The file holding the call.
    pub file: FileId,
    /// Byte range of the call.
    pub range: Range<usize>,
    /// The argument as written.
    pub expression: String,
    /// Whether an `--include` pattern covers the names it may load.
    pub covered: bool,
    /// Why a name computed from the module's own name could not be computed.
    pub reason: Option<String>,
}

/// How the require sites of the bundled files resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteCounts {
    /// Every require site.
    pub total: usize,
    /// Sites that name a bundled module.
    pub bundled: usize,
    /// Of those and the others, sites whose name was computed from the module's own name or
    /// top-level constants.
    pub computed: usize,
    /// Sites that name a module of the Lua VM (`string`, `debug`, ...).
    pub standard: usize,
    /// Sites that name a declared external.
    pub external: usize,
    /// Sites whose name nothing provides.
    pub unresolved: usize,
    /// Sites whose name is known only at run time.
    pub dynamic: usize,
}

impl SiteCounts {
    fn add(&mut self, other: &SiteCounts) {
        self.total += other.total;
        self.bundled += other.bundled;
        self.computed += other.computed;
        self.standard += other.standard;
        self.external += other.external;
        self.unresolved += other.unresolved;
        self.dynamic += other.dynamic;
    }
}

/// What the graph stage needs besides the modules and their sites.
#[derive(Clone, Copy, Debug)]
pub struct GraphOptions<'a> {
    /// Host-provided module names or `*` globs.
    pub externals: &'a NamePatterns,
    /// Module name globs to bundle even when nothing requires them by a constant name.
    pub includes: &'a NamePatterns,
    /// The entry module's position: when set, only what it (and the includes) reach is bundled.
    pub entry: Option<usize>,
    /// More modules to bundle with what they reach when an entry is set (profile members).
    pub extra_roots: &'a [usize],
    /// When set, exactly these modules and what they reach are bundled (`--profile`),
    /// whatever the entry and includes.
    pub only: Option<&'a [usize]>,
}

impl Default for GraphOptions<'_> {
    /// No externals, no includes, no entry: every module is bundled.
    fn default() -> Self {
        static NONE: std::sync::LazyLock<NamePatterns> = std::sync::LazyLock::new(NamePatterns::default);
        GraphOptions { externals: &NONE, includes: &NONE, entry: None, extra_roots: &[], only: None }
    }
}

/// The resolved require graph over a build's modules.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Node weights are positions in the module list.
    pub graph: DiGraph<usize, Edge>,
    /// Whether each module goes into the bundle (reachable from the entry or included).
    pub bundled: Vec<bool>,
    /// Host-provided names that bundled modules require, sorted.
    pub externals_used: BTreeSet<String>,
    /// Requires with names known only at run time, in bundled modules.
    pub dynamic: Vec<DynamicSite>,
    /// How the require sites of bundled files resolved.
    pub site_counts: SiteCounts,
    /// Requires whose running depends on how a protected require ended, in bundled modules,
    /// as lines like ``src/a.lua:9: `ltn12` runs only if `socket.http` (line 3) loaded``.
    pub guarded: Vec<String>,
    /// Cycles that pass because at least one of their requires is deferred, as chains like
    /// `` `a` > `b` (deferred, src/b.lua:3) > `a` ``.
    pub legal_cycles: Vec<String>,
    /// Whether each module loads only if an optional require of it succeeds or a run-time
    /// require names it: it is no root, and every require of it is optional or in such a
    /// module.
    pub maybe_loaded: Vec<bool>,
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
    /// `modules` and every module they reach through any require, sorted.
    pub fn closure(&self, modules: &[usize]) -> Vec<usize> {
        let reached = reach(&self.graph, modules.iter().copied());
        (0..reached.len()).filter(|&i| reached[i]).collect()
    }

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

/// Resolves computed require names: `(program, module name, module path) -> name`.
pub type ComputedResolver<'r> = dyn FnMut(&str, &str, &str) -> Result<String, String> + 'r;

/// Resolves every site, decides what is bundled, and checks for eager cycles. `sites[f]`
/// holds the sites of file `f`.
pub fn build_graph(
    modules: &[ModuleName],
    sites: &[Vec<RequireSite>],
    files: &[SourceFile],
    options: GraphOptions<'_>,
    resolve_computed: &mut ComputedResolver<'_>,
) -> (ModuleGraph, Vec<Diagnostic>) {
    let mut result = ModuleGraph::default();
    let position: HashMap<&str, usize> = modules.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
    for i in 0..modules.len() {
        result.graph.add_node(i);
    }
    let mut resolver = Resolver { files, modules, position: &position, options, resolve_computed };
    let mut resolutions = Vec::with_capacity(modules.len());
    for (from, module) in modules.iter().enumerate() {
        let resolution = resolver.resolve_module(from, module, &sites[module.file]);
        for (to, edge) in &resolution.edges {
            result.graph.add_edge(NodeIndex::new(from), NodeIndex::new(*to), edge.clone());
        }
        resolutions.push(resolution);
    }
    result.bundled = bundled_modules(&result.graph, modules, options);
    result.maybe_loaded = soften_optional_only(&result.graph, modules, files, options, &mut resolutions);
    let (mut diagnostics, dynamic) = gather_bundled(&mut result, modules, &mut resolutions);
    diagnostics.extend(dynamic.iter().filter(|d| !d.covered).map(dynamic_require));
    result.dynamic = dynamic;
    if options.entry.is_some() || options.only.is_some() {
        diagnostics.extend(unreachable_files(modules, files, &result.bundled));
    }
    let (errors, legal) = cycles(&result.graph, modules, files, &result.bundled, options.entry);
    diagnostics.extend(errors);
    result.legal_cycles = legal;
    (result, diagnostics)
}

/// Per module, whether it loads only if an optional require of it succeeds. Such a module
/// may itself require what is missing, and the program works without it: its unresolved
/// requires become warnings that say why.
fn soften_optional_only(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    files: &[SourceFile],
    options: GraphOptions<'_>,
    resolutions: &mut [ModuleResolution],
) -> Vec<bool> {
    let optional_only = reached_only_optionally(graph, modules, options);
    for (i, resolution) in resolutions.iter_mut().enumerate().filter(|(i, _)| optional_only[*i]) {
        let why = match optional_edge_into(graph, files, i) {
            how if how.is_empty() => {
                format!("optional: `{}` is bundled by --include and loaded only by run-time requires", modules[i].name)
            }
            how => format!("optional: `{}` is loaded only through optional requires ({how})", modules[i].name),
        };
        let unresolved = Code::UnresolvedRequire.as_str();
        for problem in resolution.problems.iter_mut().filter(|p| p.code == unresolved) {
            if problem.severity == Severity::Error {
                problem.severity = Severity::Warning;
                problem.notes.insert(0, why.clone());
            }
        }
    }
    optional_only
}

/// What the bundled modules' resolutions add to the graph (externals, guarded requires, site
/// counts) and report (problems, dynamic requires). A file with two names (`a` and `a.init`)
/// is reported and counted once.
fn gather_bundled(
    result: &mut ModuleGraph,
    modules: &[ModuleName],
    resolutions: &mut [ModuleResolution],
) -> (Vec<Diagnostic>, Vec<DynamicSite>) {
    let mut diagnostics = Vec::new();
    let mut dynamic = Vec::new();
    let mut reported_files = BTreeSet::new();
    for (i, module) in modules.iter().enumerate().filter(|(i, _)| result.bundled[*i]) {
        let resolution = &mut resolutions[i];
        result.externals_used.append(&mut resolution.externals);
        if reported_files.insert(module.file) {
            diagnostics.append(&mut resolution.problems);
            result.guarded.append(&mut resolution.guarded);
            dynamic.append(&mut resolution.dynamic);
            result.site_counts.add(&resolution.counts);
        }
    }
    (diagnostics, dynamic)
}

/// The outcome of resolving one module's require sites.
#[derive(Default)]
struct ModuleResolution {
    edges: Vec<(usize, Edge)>,
    problems: Vec<Diagnostic>,
    externals: BTreeSet<String>,
    dynamic: Vec<DynamicSite>,
    counts: SiteCounts,
    guarded: Vec<String>,
}

/// What resolving a site needs to know about the whole build.
struct Resolver<'a, 'r> {
    files: &'a [SourceFile],
    modules: &'a [ModuleName],
    position: &'a HashMap<&'a str, usize>,
    options: GraphOptions<'a>,
    resolve_computed: &'a mut ComputedResolver<'r>,
}

impl Resolver<'_, '_> {
    fn resolve_module(&mut self, from: usize, module: &ModuleName, sites: &[RequireSite]) -> ModuleResolution {
        let file = &self.files[module.file];
        let mut out = ModuleResolution::default();
        for site in sites {
            out.counts.total += 1;
            let Some(name) = self.site_name(from, module, site, &mut out) else { continue };
            // A fallback that runs only if a module of this build failed to load never runs
            // while that module is bundled.
            let fallback = site
                .guard
                .as_ref()
                .is_some_and(|g| g.when == GuardWhen::Failed && self.position.contains_key(g.module.as_str()));
            if let Some(guard) = &site.guard {
                out.guarded.push(guarded_line(file, site, guard, fallback));
            }
            self.link(file, site, name, site.optional || fallback, fallback, &mut out);
        }
        out
    }

    /// The module name a site requires; `None` (the site counted and reported) when it is
    /// known only at run time or cannot be a module name.
    fn site_name(
        &mut self,
        from: usize,
        module: &ModuleName,
        site: &RequireSite,
        out: &mut ModuleResolution,
    ) -> Option<String> {
        let file = &self.files[module.file];
        let includes = self.options.includes;
        let dynamic = |expression: &str, prefix: &str, reason: Option<String>| DynamicSite {
            module: from,
            file: file.id,
            range: site.range.clone(),
            expression: expression.to_string(),
            covered: is_covered(prefix, includes.patterns()),
            reason,
        };
        match &site.target {
            Target::Name(name) => return Some(name.clone()),
            Target::Computed { program, expression } => {
                match (self.resolve_computed)(program, &module.name, &file.display_path) {
                    Ok(name) => {
                        out.counts.computed += 1;
                        return Some(name);
                    }
                    Err(reason) => {
                        out.counts.dynamic += 1;
                        let why = format!("evaluating it with `...` = \"{}\" failed: {reason}", module.name);
                        out.dynamic.push(dynamic(expression, "", Some(why)));
                    }
                }
            }
            Target::Dynamic { expression, prefix } => {
                out.counts.dynamic += 1;
                out.dynamic.push(dynamic(expression, prefix, None));
            }
            Target::Value { expression } => {
                out.counts.dynamic += 1;
                let why = format!(
                    "here `{expression}` is the require function itself, taken as a value (stored, passed on or indexed out of a table): whatever calls it later loads modules that cannot be seen"
                );
                out.dynamic.push(dynamic(expression, "", Some(why)));
            }
            Target::NotUtf8 { escaped } => {
                out.counts.unresolved += 1;
                let mut d = unresolved_require(file.id, site, escaped, &[]);
                // No host can provide a name that `--external` cannot spell.
                d.notes.retain(|note| !note.starts_with("if the host program"));
                out.problems.push(d.with_note(
                    "the name holds bytes that are not UTF-8 (shown as \\ddd escapes); module names come from file paths, which must be UTF-8, so no bundled module has it",
                ));
            }
        }
        None
    }

    /// Resolves `name`, required at `site` of `file`: an edge to a module of the build, the
    /// VM's own library, an external, or an unresolved require.
    fn link(
        &self,
        file: &SourceFile,
        site: &RequireSite,
        name: String,
        optional: bool,
        fallback: bool,
        out: &mut ModuleResolution,
    ) {
        if let Some(&to) = self.position.get(name.as_str()) {
            out.counts.bundled += 1;
            let edge = Edge {
                file: file.id,
                range: site.range.clone(),
                timing: site.timing,
                optional,
                guard: site.guard.clone(),
                by_path: site.luau_path.is_some(),
            };
            out.edges.push((to, edge));
        } else if flavour::STANDARD_MODULES.contains(&name.as_str()) {
            // Provided by the VM itself: `require "debug"` returns the library.
            out.counts.standard += 1;
        } else if self.options.externals.matches(&name) {
            out.counts.external += 1;
            out.externals.insert(name);
        } else {
            out.counts.unresolved += 1;
            let mut site = RequireSite { optional, ..site.clone() };
            if !fallback && site.guard.as_ref().is_some_and(|g| g.when == GuardWhen::Failed) {
                // A fallback for a module this build lacks runs like any other require.
                site.guard = None;
            }
            out.problems.push(unresolved_require(file.id, &site, &name, self.modules));
        }
    }
}

/// The `--guarded` line of a site that runs only after a protected require succeeded or
/// failed; `fallback` when it runs only if a bundled module fails (so never).
fn guarded_line(file: &SourceFile, site: &RequireSite, guard: &Guard, fallback: bool) -> String {
    let name = match &site.target {
        Target::Name(name) => name.as_str(),
        Target::NotUtf8 { escaped } => escaped.as_str(),
        Target::Computed { expression, .. } | Target::Dynamic { expression, .. } | Target::Value { expression } => {
            expression.as_str()
        }
    };
    let (line, _) = file.line_col(site.range.start);
    let (guard_line, _) = file.line_col(guard.range.start);
    let when = match (guard.when, fallback) {
        (GuardWhen::Loaded, _) => "loaded",
        (GuardWhen::Failed, true) => "failed to load (it is bundled: this never runs)",
        (GuardWhen::Failed, false) => "failed to load",
    };
    format!("{}:{line}: `{name}` runs only if `{}` (line {guard_line}) {when}", file.display_path, guard.module)
}

/// Which modules the bundle holds: all of them, or with an entry what the entry and the
/// included modules reach through any require.
fn bundled_modules(graph: &DiGraph<usize, Edge>, modules: &[ModuleName], options: GraphOptions<'_>) -> Vec<bool> {
    if let Some(only) = options.only {
        return reach(graph, only.iter().copied());
    }
    let Some(entry) = options.entry else { return vec![true; modules.len()] };
    let included = modules.iter().enumerate().filter(|(_, m)| options.includes.matches(&m.name));
    reach(graph, std::iter::once(entry).chain(included.map(|(i, _)| i)).chain(options.extra_roots.iter().copied()))
}

/// Per module, whether it loads only if an optional require succeeds: it is no root (the
/// entry, an included module, or a module nothing requires), and every require of it is
/// optional or in such a module.
fn reached_only_optionally(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    options: GraphOptions<'_>,
) -> Vec<bool> {
    let count = graph.node_count();
    let mut roots: Vec<usize> = options.entry.into_iter().chain(options.extra_roots.iter().copied()).collect();
    roots.extend(options.only.unwrap_or_default());
    if options.entry.is_none() && options.only.is_none() {
        roots.extend(modules.iter().enumerate().filter(|(_, m)| options.includes.matches(&m.name)).map(|(i, _)| i));
    }
    // With an entry, a module that only `--include` bundles is loaded, if ever, by a require
    // whose name is known at run time only: no more certain than an optional one.
    if options.entry.is_none() && options.only.is_none() {
        roots.extend(
            (0..count)
                .filter(|&i| graph.edges_directed(NodeIndex::new(i), petgraph::Direction::Incoming).next().is_none()),
        );
    }
    let mut sure = vec![false; count];
    loop {
        // What the roots load for certain, through requires that are not optional.
        let mut queue: Vec<usize> = roots.drain(..).filter(|&r| !sure[r]).collect();
        while let Some(node) = queue.pop() {
            if std::mem::replace(&mut sure[node], true) {
                continue;
            }
            for edge in graph.edges(NodeIndex::new(node)).filter(|e| !e.weight().optional) {
                queue.push(graph[edge.target()]);
            }
        }
        // Modules that nothing certain reaches in any way (a cycle no root requires) are
        // roots of their own.
        let reached = reach(graph, (0..count).filter(|&i| sure[i]));
        match (0..count).find(|&i| !reached[i]) {
            Some(unreached) if options.entry.is_none() && options.only.is_none() => roots.push(unreached),
            _ => break,
        }
    }
    sure.iter().map(|&s| !s).collect()
}

/// `file:line` of one optional require of module `module`, for messages.
fn optional_edge_into(graph: &DiGraph<usize, Edge>, files: &[SourceFile], module: usize) -> String {
    graph
        .edges_directed(NodeIndex::new(module), petgraph::Direction::Incoming)
        .map(|e| e.weight())
        .find(|w| w.optional)
        .or_else(|| {
            graph.edges_directed(NodeIndex::new(module), petgraph::Direction::Incoming).map(|e| e.weight()).next()
        })
        .map(|w| {
            let (line, _) = files[w.file].line_col(w.range.start);
            format!("as at {}:{line}", files[w.file].display_path)
        })
        .unwrap_or_default()
}

/// Per module, whether it is one of `starts` or reached from them through any require.
fn reach(graph: &DiGraph<usize, Edge>, starts: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut reached = vec![false; graph.node_count()];
    for start in starts {
        if reached[start] {
            continue;
        }
        let mut bfs = Bfs::new(graph, NodeIndex::new(start));
        while let Some(node) = bfs.next(graph) {
            reached[graph[node]] = true;
        }
    }
    reached
}

/// Whether an include pattern may match a name that starts with `prefix`.
fn is_covered(prefix: &str, includes: &[String]) -> bool {
    includes.iter().any(|pattern| {
        let head = pattern.split('*').next().unwrap_or_default();
        head.starts_with(prefix) || prefix.starts_with(head)
    })
}

fn dynamic_require(site: &DynamicSite) -> Diagnostic {
    let mut d = Diagnostic::warning(Code::DynamicRequire, "require with a name known only at run time").with_primary(
        site.file,
        site.range.clone(),
        format!("`{}` is not a constant", site.expression),
    );
    if let Some(reason) = &site.reason {
        d = d.with_note(reason.clone());
    }
    d.with_note("the module it loads is bundled only if something else requires it or --include names it")
}

fn unresolved_require(file: FileId, site: &RequireSite, name: &str, modules: &[ModuleName]) -> Diagnostic {
    let make = if site.optional { Diagnostic::warning } else { Diagnostic::error };
    // A Luau path: Luau's own reason, and the advice that fits a path.
    if let Some(LuauPath { resolved: Err(reason), .. }) = &site.luau_path {
        return make(Code::UnresolvedRequire, format!("cannot resolve `{name}`"))
            .with_primary(file, site.range.clone(), reason.clone())
            .with_note("Luau resolves a path from the requiring file: `./x` and `../x` through directories, `@alias/x` through the aliases of the nearest .luaurc or .config.luau")
            .with_note(format!("if the host program provides `{name}` (Lua::register_module), declare it with --external {name}"));
    }
    let mut d = make(Code::UnresolvedRequire, format!("module `{name}` not found")).with_primary(
        file,
        site.range.clone(),
        format!("no root provides `{name}`"),
    );
    match &site.guard {
        Some(Guard { module, when: GuardWhen::Loaded, range }) => {
            d = d.with_secondary(file, range.clone(), format!("runs only if this require of `{module}` succeeded"));
            d = d.with_note(format!("optional: it runs only where `{module}` can be loaded"));
        }
        Some(Guard { module, when: GuardWhen::Failed, range }) => {
            d = d.with_secondary(file, range.clone(), format!("runs only if this require of `{module}` failed"));
            d = d.with_note(format!("optional: a fallback that never runs while `{module}` is bundled"));
        }
        _ => {}
    }
    if let Some(close) = closest_name(name, modules) {
        d = d.with_note(format!("did you mean `{close}`?"));
    }
    d.with_note(format!("if the host program provides `{name}`, declare it with --external {name}"))
}

/// The module name closest to `name`: equal but for case, or within a small edit distance.
pub fn closest_name<'a>(name: &str, modules: &'a [ModuleName]) -> Option<&'a str> {
    closest(name, modules.iter().map(|m| m.name.as_str()))
}

/// The name among `names` closest to `name`: equal but for case, or within a small edit
/// distance (a quarter of its length, from 1 to 3).
pub fn closest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 4).clamp(1, 3);
    names
        .map(|candidate| {
            let distance = if candidate.eq_ignore_ascii_case(name) { 0 } else { edit_distance(name, candidate) };
            (distance, candidate)
        })
        .filter(|&(distance, _)| distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// One warning listing the files that no require from the entry reaches.
fn unreachable_files(modules: &[ModuleName], files: &[SourceFile], bundled: &[bool]) -> Option<Diagnostic> {
    let reached: BTreeSet<FileId> = modules.iter().zip(bundled).filter(|(_, b)| **b).map(|(m, _)| m.file).collect();
    let unreached: BTreeSet<FileId> = modules.iter().map(|m| m.file).filter(|f| !reached.contains(f)).collect();
    if unreached.is_empty() {
        return None;
    }
    let mut d = Diagnostic::warning(
        Code::UnreachableFile,
        format!(
            "{} file{} not reached from the entry, left out of the bundle",
            unreached.len(),
            plural(unreached.len())
        ),
    );
    for &file in unreached.iter().take(MAX_UNREACHABLE_SHOWN) {
        d = d.with_note(files[file].display_path.clone());
    }
    if unreached.len() > MAX_UNREACHABLE_SHOWN {
        d = d.with_note(format!("and {} more", unreached.len() - MAX_UNREACHABLE_SHOWN));
    }
    Some(d.with_note("bundle them anyway with --include, or leave them out of the roots with --exclude"))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `require-cycle` errors for every strongly connected set of bundled modules joined by
/// eager requires, and descriptions of the cycles that pass because one require is deferred.
fn cycles(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    files: &[SourceFile],
    bundled: &[bool],
    #[cfg_attr(not(feature = "luau"), allow(unused_variables))] entry: Option<usize>,
) -> (Vec<Diagnostic>, Vec<String>) {
    let eager = |e: &Edge| e.timing == Timing::Eager && !e.by_path;
    let mut errors = find_cycles(graph, modules, bundled, &eager);
    errors.sort_by_cached_key(|c| cycle_names(graph, modules, c));
    let hidden = errors.len().saturating_sub(MAX_CYCLES_SHOWN);
    let mut out: Vec<Diagnostic> =
        errors.iter().take(MAX_CYCLES_SHOWN).map(|c| cycle_diagnostic(graph, modules, files, c)).collect();
    if hidden > 0 {
        out.push(Diagnostic::error(Code::RequireCycle, format!("and {hidden} more require cycles")));
    }
    #[cfg(feature = "luau")]
    out.extend(cyclic_reads(graph, modules, files, bundled, entry));
    let mut legal: Vec<String> = find_cycles(graph, modules, bundled, &|_| true)
        .iter()
        .filter(|c| !c.iter().all(|&e| eager(&graph[e])))
        .map(|c| describe_cycle(graph, modules, files, c))
        .collect();
    legal.sort();
    (out, legal)
}

/// Luau: a cycle of eager requires through a path require is legal (the module required
/// again gets an export table that becomes the module), unless the requirer then reads that
/// table at its top level, while the module it belongs to is still loading. With an entry,
/// the load order is known (requires run in file order from the entry) and each such read is
/// an error; without one, a read inside a cycle is a warning (it fails if the other module
/// loads first).
#[cfg(feature = "luau")]
fn cyclic_reads(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    files: &[SourceFile],
    bundled: &[bool],
    entry: Option<usize>,
) -> Vec<Diagnostic> {
    let eager_edges = |node: NodeIndex| {
        let mut edges: Vec<_> = graph.edges(node).filter(|e| e.weight().timing == Timing::Eager).collect();
        edges.sort_by_key(|e| (e.weight().range.start, e.id()));
        edges
    };
    let read = |edge: &Edge| {
        let file = &files[edge.file];
        edge.by_path.then(|| crate::analysis::luau_paths::top_level_read(file.bytes(), &edge.range)).flatten()
    };
    let report = |from: NodeIndex, to: NodeIndex, edge: &Edge, at: Range<usize>, certain: bool| {
        let (reader, module) = (&modules[graph[from]].name, &modules[graph[to]].name);
        let make = if certain { Diagnostic::error } else { Diagnostic::warning };
        let label = match certain {
            true => format!("`{module}` is still loading here, and its table refuses access"),
            false => format!("`{module}` is still loading here if it loads first"),
        };
        make(Code::RequireCycle, format!("`{reader}` reads `{module}` at its top level, inside a require cycle"))
            .with_primary(edge.file, at, label)
            .with_secondary(edge.file, edge.range.clone(), "required here")
            .with_note("Luau hands a module required again while it loads a table that refuses access until it has loaded; read it inside a function, or break the cycle")
    };
    let mut out = Vec::new();
    if let Some(entry) = entry {
        // The load from the entry: a require of a module that is loading returns its table.
        let mut state: HashMap<NodeIndex, bool> = HashMap::new(); // true: loading, false: loaded
        let mut stack: Vec<(NodeIndex, Vec<petgraph::graph::EdgeReference<'_, Edge>>, usize)> = Vec::new();
        let start = NodeIndex::new(entry);
        state.insert(start, true);
        stack.push((start, eager_edges(start), 0));
        while let Some((node, edges, next)) = stack.last_mut() {
            let Some(edge) = edges.get(*next).copied() else {
                state.insert(*node, false);
                stack.pop();
                continue;
            };
            *next += 1;
            let from = *node;
            match state.get(&edge.target()) {
                Some(true) => {
                    if let Some(at) = read(edge.weight()) {
                        out.push(report(from, edge.target(), edge.weight(), at, true));
                    }
                }
                Some(false) => {}
                None => {
                    state.insert(edge.target(), true);
                    stack.push((edge.target(), eager_edges(edge.target()), 0));
                }
            }
        }
        return out;
    }
    let eager = EdgeFiltered::from_fn(graph, |e| e.weight().timing == Timing::Eager);
    let subgraph = NodeFiltered::from_fn(&eager, |n| bundled[graph[n]]);
    for component in petgraph::algo::tarjan_scc(&subgraph) {
        let members: BTreeSet<NodeIndex> = component.into_iter().collect();
        for &from in &members {
            for edge in eager_edges(from) {
                let inside = members.contains(&edge.target()) && (members.len() > 1 || edge.target() == from);
                if let Some(at) = read(edge.weight()).filter(|_| inside) {
                    out.push(report(from, edge.target(), edge.weight(), at, false));
                }
            }
        }
    }
    out
}

/// One shortest cycle per strongly connected set of bundled modules over the edges `keep`
/// accepts, starting at the set's first module by name.
fn find_cycles(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    bundled: &[bool],
    keep: &dyn Fn(&Edge) -> bool,
) -> Vec<Vec<EdgeIndex>> {
    let kept_edges = EdgeFiltered::from_fn(graph, |e| keep(e.weight()));
    let subgraph = NodeFiltered::from_fn(&kept_edges, |n| bundled[graph[n]]);
    petgraph::algo::tarjan_scc(&subgraph)
        .into_iter()
        .filter_map(|component| {
            let members: BTreeSet<NodeIndex> = component.into_iter().collect();
            let start = *members.iter().min_by_key(|n| &modules[graph[**n]].name)?;
            shortest_cycle(graph, start, &members, keep)
        })
        .collect()
}

fn describe_cycle(
    graph: &DiGraph<usize, Edge>,
    modules: &[ModuleName],
    files: &[SourceFile],
    cycle: &[EdgeIndex],
) -> String {
    let names = cycle_names(graph, modules, cycle);
    let mut out = format!("`{}`", names[0]);
    for (i, &e) in cycle.iter().enumerate() {
        let edge = &graph[e];
        let (line, _) = files[edge.file].line_col(edge.range.start);
        let kind = edge.timing.as_str();
        let next = names.get(i + 1).unwrap_or(&names[0]);
        out.push_str(&format!(" > `{next}` ({kind}, {}:{line})", files[edge.file].display_path));
    }
    out
}

/// The shortest path over kept edges from `start` back to itself inside `members`.
fn shortest_cycle(
    graph: &DiGraph<usize, Edge>,
    start: NodeIndex,
    members: &BTreeSet<NodeIndex>,
    keep: &dyn Fn(&Edge) -> bool,
) -> Option<Vec<EdgeIndex>> {
    let mut came_from: HashMap<NodeIndex, EdgeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut edges: Vec<_> =
            graph.edges(node).filter(|e| keep(e.weight()) && members.contains(&e.target())).collect();
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
    let mut d = Diagnostic::error(Code::RequireCycle, format!("require cycle: {chain}"));
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
    use std::sync::Arc;

    use super::*;

    #[test]
    fn standard_library_modules_need_no_file() {
        let file = SourceFile::new(0, "m.lua".into(), "m.lua".into(), "");
        let site = |name: &str| RequireSite {
            target: Target::Name(name.into()),
            range: 0..0,
            timing: Timing::Eager,
            optional: false,
            guard: None,
            luau_path: None,
        };
        let modules = vec![ModuleName { name: "m".into(), file: 0 }];
        let sites = vec![vec![site("debug"), site("string"), site("table"), site("lfs")]];
        let (graph, diagnostics) =
            build_graph(&modules, &sites, &[file], GraphOptions::default(), &mut |_, _, _| Err(String::new()));
        let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["unresolved-require"]);
        assert!(diagnostics[0].message.contains("`lfs`"));
        assert!(graph.externals_used.is_empty());
    }

    fn eager_site(name: String, at: usize) -> RequireSite {
        RequireSite {
            target: Target::Name(name),
            range: at..at + 1,
            timing: Timing::Eager,
            optional: false,
            guard: None,
            luau_path: None,
        }
    }

    #[test]
    fn cycles_are_sorted_and_capped() {
        // 25 pairs of modules that require each other while loading.
        let count = 50;
        let text: Arc<str> = "x".repeat(10).into();
        let files: Vec<SourceFile> = (0..count)
            .map(|i| SourceFile::new(i, format!("m{i}.lua").into(), format!("m{i:02}.lua"), text.clone()))
            .collect();
        let modules: Vec<ModuleName> = (0..count).map(|i| ModuleName { name: format!("m{i:02}"), file: i }).collect();
        let sites: Vec<Vec<RequireSite>> = (0..count).map(|i| vec![eager_site(format!("m{:02}", i ^ 1), 0)]).collect();
        let (_, diagnostics) =
            build_graph(&modules, &sites, &files, GraphOptions::default(), &mut |_, _, _| Err(String::new()));
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), MAX_CYCLES_SHOWN + 1);
        assert_eq!(messages[0], "require cycle: `m00` > `m01` > `m00`");
        assert_eq!(messages[19], "require cycle: `m38` > `m39` > `m38`");
        assert_eq!(messages[20], "and 5 more require cycles");
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        let modules: Vec<ModuleName> = ["app.config", "app.util", "App.Main"]
            .iter()
            .map(|n| ModuleName { name: n.to_string(), file: 0 })
            .collect();
        assert_eq!(closest_name("app.utils", &modules), Some("app.util"));
        assert_eq!(closest_name("app.confg", &modules), Some("app.config"));
        assert_eq!(closest_name("app.main", &modules), Some("App.Main"));
        assert_eq!(closest_name("socket", &modules), None);
    }

    #[test]
    fn includes_cover_dynamic_requires_with_a_compatible_prefix() {
        let includes = vec!["plugins.*".to_string()];
        assert!(is_covered("plugins.", &includes));
        assert!(is_covered("plug", &includes));
        assert!(is_covered("", &includes));
        assert!(!is_covered("themes.", &includes));
        assert!(!is_covered("plugins.", &[]));
    }
}
