//! Analysis: per file, compiling with Lua and finding the requires (the quick token scan, or
//! the syntax tree); then the require graph over all files, with the entry, profiles and
//! groups selected from it.
//!
//! `analyse` runs the steps in order, each timed: discover the files, look them up in the
//! cache, compile and scan the files the cache lacks, resolve the graph.

pub(crate) mod compile;
pub(crate) mod computed_names;
mod file_errors;
pub mod graph;
#[cfg(feature = "luau")]
pub(crate) mod luau_paths;
pub(crate) mod name_patterns;
pub(crate) mod per_file;
pub(crate) mod quick_scan;
pub mod requires;
mod selection;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cache::{self, file_table::FileTable};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::input::discover::{self, Discovered};
use crate::plan::{OutputFormat, Plan, Progress, ProgressFn, Stage, Timings};
use graph::{GraphOptions, ModuleGraph};
use per_file::FileResult;
use requires::RequireSite;

/// The analysed input: files, module names, require sites and the resolved graph.
#[derive(Debug)]
pub struct Analysis {
    /// Files and module names.
    pub discovered: Discovered,
    /// The resolved require graph, with what the bundle holds.
    pub graph: ModuleGraph,
    /// Position of the entry module.
    pub entry: Option<usize>,
    /// Profiles as positions in the module list, each with its require closure.
    pub profiles: Vec<(String, Vec<usize>)>,
    /// Warnings (errors fail the analysis).
    pub diagnostics: Vec<Diagnostic>,
    /// Per file: its cache key.
    pub(crate) keys: Vec<cache::Key>,
    /// Per file: its bytecode, or where it is, or why Lua refused it.
    pub(crate) bytecode: Vec<FileBytecode>,
    /// Files whose requires were found in this run (the others came from the cache).
    pub(crate) parsed: usize,
    /// Files compiled in this run: those parsed, and those whose cached bytecode was damaged.
    pub(crate) compiled: usize,
    /// The cache as this build uses it.
    pub(crate) cache: Option<cache::Session>,
    /// Time spent in each stage so far.
    pub(crate) timings: Timings,
    /// Whether the files' fingerprints differ from the ones the cache holds.
    pub(crate) file_table_changed: bool,
    /// Luau: whether the project requires by path (or has a configuration file), so that the
    /// bundle stores its modules under their paths too.
    pub(crate) luau_paths: bool,
}

impl Analysis {
    /// The warnings with the sources they point into.
    pub fn warnings(&self) -> Diagnostics {
        Diagnostics::new(self.diagnostics.clone(), &self.discovered.files)
    }

    /// Number of modules the bundle holds.
    pub fn bundled_count(&self) -> usize {
        self.graph.bundled.iter().filter(|b| **b).count()
    }

    /// Per file: whether a bundled module comes from it.
    pub(crate) fn bundled_files(&self) -> Vec<bool> {
        let mut bundled = vec![false; self.discovered.files.len()];
        for (m, _) in self.discovered.modules.iter().zip(&self.graph.bundled).filter(|(_, b)| **b) {
            bundled[m.file] = true;
        }
        bundled
    }

    /// Finishes the cache session, storing the files compiled again (damaged entries, by
    /// position) and the files' fingerprints when they changed.
    pub(crate) fn close_cache(&mut self, recompiled: &[(usize, &[u8])]) {
        let Some(session) = self.cache.take() else { return };
        let recompiled: Vec<(cache::Key, &[u8])> = recompiled.iter().map(|&(i, bytes)| (self.keys[i], bytes)).collect();
        self.compiled += recompiled.len();
        let file_table = self.file_table_changed.then_some(&self.discovered.file_table);
        session.close(&self.keys, &recompiled, file_table);
    }

    /// Fails with every diagnostic when one of them is an error.
    pub(crate) fn fail_on_errors(&self) -> Result<(), Error> {
        if self.diagnostics.iter().any(Diagnostic::is_error) {
            let diagnostics = Diagnostics::new(self.diagnostics.clone(), &self.discovered.files);
            return Err(Error::Input(Box::new(diagnostics)));
        }
        Ok(())
    }
}

/// A file's bytecode as the analysis leaves it.
#[derive(Debug)]
pub(crate) enum FileBytecode {
    /// Compiled in this run.
    Ready(Vec<u8>),
    /// In the cache under this hash, read only if the file is bundled (and not already in
    /// the bundle being replaced).
    Cached([u8; 32]),
    /// Lua refused the file (reported only if it is bundled).
    Refused(Diagnostic),
}

/// What the per-file pass found, file by file.
struct FilePass {
    sites: Vec<Vec<RequireSite>>,
    bytecode: Vec<FileBytecode>,
    /// Errors in the files (syntax and the like), before the graph decides which count.
    errors: Vec<Diagnostic>,
}

/// Measures consecutive steps.
struct Laps(Instant);

impl Laps {
    /// The time since the previous lap (or the start).
    fn lap(&mut self) -> Duration {
        let now = Instant::now();
        std::mem::replace(&mut self.0, now).elapsed()
    }
}

/// Everything up to the graph; `outputs` are the build's outputs, as
/// [`crate::output::paths::check`] resolved them (discovery leaves them out).
pub(crate) fn analyse(plan: &Plan, outputs: &[PathBuf]) -> Result<Analysis, Error> {
    let mut laps = Laps(Instant::now());
    let mut timings = Timings::default();
    let (mut discovered, file_table_changed) = discover_files(plan, outputs)?;
    timings.discover = laps.lap();
    let mut session = plan.cache.as_ref().map(cache::Cache::session);
    let (keys, hits) = cache::look_up(session.as_ref(), &discovered.files, plan.options.blob_options());
    let misses = hits.iter().filter(|entry| entry.is_none()).count();
    timings.cache_lookup = laps.lap();
    let pass = compile_and_scan(plan, &mut discovered, hits, &keys, session.as_mut(), misses);
    timings.compile = laps.lap();
    let mut diagnostics = discovered.diagnostics.clone();
    #[cfg_attr(not(feature = "luau"), allow(unused_mut))]
    let mut sites = pass.sites;
    #[cfg(feature = "luau")]
    let uses_luau_paths = {
        let (refused, uses_paths) = luau_paths::resolve(&discovered, &mut sites, plan.options.luau_dotted_names)
            .map_err(|err| Error::Usage(format!("cannot start Luau to resolve path requires: {err}")))?;
        diagnostics.extend(refused);
        uses_paths
    };
    #[cfg(not(feature = "luau"))]
    let uses_luau_paths = false;
    let (mut graph, selection) = resolve_graph(plan, &discovered, sites, &mut diagnostics)?;
    let left_out = file_errors::left_out_files_are_not_errors(pass.errors, &discovered, &pass.bytecode, &mut graph);
    diagnostics.extend(left_out);
    let entry = selection::entry_in_bundle(plan.options, &discovered, &graph, selection.entry, &mut diagnostics);
    diagnostics.extend(selection::check_groups(plan.options, &plan.externals, &discovered));
    diagnostics.extend(file_errors::refusals_of_bundled_files(&discovered, &graph, &pass.bytecode, &diagnostics));
    let profiles = selection.profiles.into_iter().map(|(name, members)| (name, graph.closure(&members))).collect();
    timings.graph = laps.lap();
    let analysis = Analysis {
        discovered,
        graph,
        entry,
        profiles,
        diagnostics,
        keys,
        bytecode: pass.bytecode,
        parsed: misses,
        compiled: misses,
        cache: session,
        file_table_changed,
        timings,
        luau_paths: uses_luau_paths,
    };
    analysis.fail_on_errors()?;
    Ok(analysis)
}

/// The files under the roots (outputs left out), and whether their fingerprints differ from
/// the ones the cache holds.
fn discover_files(plan: &Plan, outputs: &[PathBuf]) -> Result<(Discovered, bool), Error> {
    let known = plan.cache.as_ref().map(|cache| FileTable::load(&cache.file_table_path()));
    let options = plan.options;
    let discovered = discover::discover(
        &options.roots,
        &plan.rocks.modules,
        &plan.templates,
        &plan.excludes,
        known.as_ref(),
        outputs,
    )?;
    let changed = known.as_ref().is_some_and(|known| !known.same_as(&discovered.file_table));
    Ok((discovered, changed))
}

/// The per-file pass over the files the cache lacks (`hits[i]` is `None`), in parallel: each
/// is compiled and scanned on the worker holding it, and stored in the cache.
fn compile_and_scan(
    plan: &Plan,
    discovered: &mut Discovered,
    mut hits: Vec<Option<cache::Hit>>,
    keys: &[cache::Key],
    mut session: Option<&mut cache::Session>,
    misses: usize,
) -> FilePass {
    let tracker = Tracker::new(plan.options.progress.as_ref(), Stage::Compile, misses);
    // The output needs the text of no file it compiled cleanly: such texts are released as
    // soon as they are compiled (and read again only if a later diagnostic shows them).
    let output_needs_text = plan.options.embed_source || plan.options.format != OutputFormat::Bundle;
    let processed: Vec<(FileResult, Option<[u8; 32]>)> = discovered
        .files
        .par_iter_mut()
        .zip(&mut hits)
        .map(|(file, entry)| {
            let (result, cached) = match entry.take() {
                Some(hit) => (FileResult { sites: Ok(hit.sites), bytecode: Ok(Vec::new()) }, Some(hit.bytecode_hash)),
                None => {
                    let mut result = per_file::process(file, plan.options.strip);
                    if let Some(level) = plan.options.zstd_level() {
                        result.bytecode = result.bytecode.and_then(|bytes| compile::compressed(file, bytes, level));
                    }
                    tracker.step();
                    (result, None)
                }
            };
            if !output_needs_text && result.sites.is_ok() && result.bytecode.is_ok() {
                file.release_text();
            }
            (result, cached)
        })
        .collect();
    let mut pass = FilePass { sites: Vec::new(), bytecode: Vec::new(), errors: Vec::new() };
    for ((result, cached), key) in processed.into_iter().zip(keys) {
        if let (Some(session), None, Ok(found), Ok(bytes)) = (&mut session, cached, &result.sites, &result.bytecode) {
            session.insert(*key, found, bytes);
        }
        pass.sites.push(result.sites.unwrap_or_else(|errors| {
            pass.errors.extend(errors);
            Vec::new()
        }));
        pass.bytecode.push(match (cached, result.bytecode) {
            (Some(hash), _) => FileBytecode::Cached(hash),
            (None, Ok(bytes)) => FileBytecode::Ready(bytes),
            (None, Err(diagnostic)) => FileBytecode::Refused(diagnostic),
        });
    }
    pass
}

/// The graph over the require sites, with the entry and profiles the options name.
fn resolve_graph(
    plan: &Plan,
    discovered: &Discovered,
    sites: Vec<Vec<RequireSite>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(ModuleGraph, selection::Selection), Error> {
    let options = plan.options;
    let selection = selection::select(options, discovered, diagnostics)?;
    let evaluator = computed_names::Evaluator::new()
        .map_err(|e| Error::Usage(format!("cannot start the Lua state for computed requires: {e}")))?;
    let roots: Vec<usize> = selection.profiles.iter().flat_map(|(_, members)| members.iter().copied()).collect();
    let only = options.only_profile.as_ref().map(|_| roots.as_slice());
    let graph_options = GraphOptions {
        externals: &plan.externals,
        includes: &plan.includes,
        entry: selection.entry,
        extra_roots: &roots,
        only,
    };
    let (graph, found) = graph::build_graph(
        &discovered.modules,
        &sites,
        &discovered.files,
        graph_options,
        &mut |program, module, path| evaluator.module_name(program, module, path),
    );
    diagnostics.extend(found);
    Ok((graph, selection))
}

/// Calls the progress callback as items of a stage complete.
struct Tracker<'a> {
    progress: Option<&'a ProgressFn>,
    stage: Stage,
    done: AtomicUsize,
    total: usize,
}

impl<'a> Tracker<'a> {
    fn new(progress: Option<&'a ProgressFn>, stage: Stage, total: usize) -> Tracker<'a> {
        Tracker { progress, stage, done: AtomicUsize::new(0), total }
    }

    fn step(&self) {
        if let Some(report) = self.progress {
            let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
            report(Progress { stage: self.stage, done, total: self.total });
        }
    }
}
