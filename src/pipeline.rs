//! The one place that runs the stages in order: discover -> (cache) -> parse and find
//! requires -> graph -> compile -> (cache) -> emit. Each stage is a function of its input;
//! only this module knows the order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::analysis::compile;
use crate::analysis::computed_names;
use crate::analysis::graph::{self, GraphOptions, ModuleGraph};
use crate::analysis::per_file::{self, FileResult};
use crate::analysis::requires::RequireSite;
use crate::builder::{Output, OutputFormat, Progress, ProgressFn, Stage, Timings};
use crate::cache::bundle_record::Record;
use crate::cache::file_table::StatTable;
use crate::cache::{self, Cache};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::input::discover::{self, Discovered, Root, Template};
use crate::output::bundle_file::{self, EmitModule};
use crate::output::lua_script;
use crate::output::paths;
use luabundle_runtime::format::{BlobKind, BundleContents, Layout, Target};

/// Checked options of a build.
pub(crate) struct Plan {
    pub roots: Vec<Root>,
    pub templates: Vec<Template>,
    pub entry: Option<String>,
    pub externals: Vec<String>,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub profiles: Vec<(String, Vec<String>)>,
    pub groups: Vec<(String, Vec<String>)>,
    pub only_profile: Option<String>,
    pub format: OutputFormat,
    pub manifest: Option<std::path::PathBuf>,
    /// The configuration files the options came from (never to be written over).
    pub config_sources: Vec<PathBuf>,
    pub locked: bool,
    pub embed_source: bool,
    #[cfg(feature = "sign")]
    pub signing_key: Option<ed25519_dalek::SigningKey>,
    pub strip: bool,
    pub cache: Option<Cache>,
    pub jobs: Option<usize>,
    pub progress: Option<ProgressFn>,
}

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
    keys: Vec<cache::Key>,
    /// Per file: its bytecode, or where it is, or why Lua refused it.
    bytecode: Vec<Code>,
    /// Files compiled and scanned in this run (the others came from the cache).
    parsed: usize,
    /// The cache as this build uses it.
    cache: Option<cache::Session>,
    /// Time spent in each stage so far.
    timings: Timings,
    /// Whether the files' fingerprints differ from the ones the cache holds.
    stat_table_changed: bool,
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
}

/// Bytecode with its blake3 hash.
#[derive(Clone, Debug)]
struct Blob {
    bytes: Vec<u8>,
    hash: [u8; 32],
}

/// A file's bytecode as the analysis leaves it.
#[derive(Debug)]
enum Code {
    /// Compiled in this run.
    Ready(Vec<u8>),
    /// In the cache, read only if the file is bundled.
    Cached,
    /// Lua refused the file (reported only if it is bundled).
    Refused(Diagnostic),
}

/// Worker threads with stacks deep enough for full_moon.
fn pool(plan: &Plan) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(plan.jobs.unwrap_or(0))
        .stack_size(crate::syntax::parse::PARSE_STACK_SIZE)
        .thread_name(|i| format!("luabundle-{i}"))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))
}

/// Discovery through the graph, without compiling.
pub(crate) fn analyse(plan: &Plan) -> Result<Analysis, Error> {
    let outputs = paths::check(None, plan.manifest.as_deref(), &plan.config_sources)?;
    pool(plan)?.install(|| analyse_in_pool(plan, &outputs))
}

/// The whole build; writes the bundle to `output` when given.
pub(crate) fn run(plan: &Plan, output: Option<&Path>) -> Result<Output, Error> {
    let started = Instant::now();
    let outputs = paths::check(output, plan.manifest.as_deref(), &plan.config_sources)?;
    pool(plan)?.install(|| {
        let mut analysis = analyse_in_pool(plan, &outputs)?;
        let store_started = Instant::now();
        let fresh = output.and_then(|output| Freshness::check(plan, &analysis, output));
        let bytecode = match &fresh {
            Some(Freshness { up_to_date: Some(_), .. }) => {
                close_cache(&mut analysis, &[]);
                Vec::new()
            }
            _ => compile_bundled(plan, &mut analysis),
        };
        analysis.timings.store = store_started.elapsed();
        let compiled = analysis.parsed;
        fail_on_errors(&analysis)?;
        let mut result = Output {
            output: output.map(Path::to_path_buf),
            written: false,
            modules: analysis.bundled_count(),
            files: analysis.discovered.files.len(),
            parsed: analysis.parsed,
            compiled,
            bytes: 0,
            warnings: analysis.warnings(),
            legal_cycles: analysis.graph.legal_cycles.clone(),
            guarded: analysis.graph.guarded.clone(),
            site_counts: analysis.graph.site_counts,
            elapsed: Duration::ZERO,
            timings: analysis.timings,
        };
        let manifest = plan.manifest.as_ref().map(|path| (path, crate::output::manifest::render(&analysis)));
        if let (Some((path, new)), true) = (&manifest, plan.locked) {
            let old = crate::util::read_regular_text(path, crate::util::DATA_FILE_CAP).unwrap_or_default();
            if old != *new {
                return Err(Error::ManifestChanged {
                    path: path.to_path_buf(),
                    diff: crate::output::manifest::diff(&old, new),
                });
            }
        }
        if let Some(output) = output {
            let encode_started = Instant::now();
            let write_started;
            match plan.format {
                OutputFormat::Bundle | OutputFormat::Source => {
                    write_started = Instant::now();
                    if let Some(Freshness { up_to_date: Some(len), .. }) = fresh {
                        result.bytes = len;
                    } else {
                        let (contents, known) = bundle_contents(plan, &analysis, bytecode);
                        let layout = bundle_layout(plan, &contents, &known)?;
                        result.timings.encode = encode_started.elapsed();
                        result.bytes = layout.len();
                        // Without a cache, the bundle is always written anew.
                        let keep_identical = plan.cache.is_some();
                        result.written = bundle_file::write_bundle_atomically(output, &layout, keep_identical)?;
                        if let Some(fresh) = &fresh {
                            fresh.record(&layout, output);
                        }
                    }
                }
                OutputFormat::Lua | OutputFormat::LuaBytecode => {
                    let bytes = lua_script(plan, &analysis, bytecode).into_bytes();
                    result.timings.encode = encode_started.elapsed();
                    write_started = Instant::now();
                    result.bytes = bytes.len() as u64;
                    result.written = bundle_file::write_atomically(output, &bytes)?;
                }
            }
            if let Some((path, text)) = &manifest {
                bundle_file::write_atomically(path, text.as_bytes())?;
            }
            result.timings.write = write_started.elapsed();
        }
        result.elapsed = started.elapsed();
        Ok(result)
    })
}

/// Calls the progress callback as items of a stage complete.
struct Tracker<'a> {
    progress: Option<&'a ProgressFn>,
    stage: Stage,
    done: AtomicUsize,
    total: usize,
}

impl<'a> Tracker<'a> {
    fn new(plan: &'a Plan, stage: Stage, total: usize) -> Tracker<'a> {
        Tracker { progress: plan.progress.as_ref(), stage, done: AtomicUsize::new(0), total }
    }

    fn step(&self) {
        if let Some(report) = self.progress {
            let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
            report(Progress { stage: self.stage, done, total: self.total });
        }
    }
}

/// Everything up to the graph; `outputs` are the build's outputs, as [`paths::check`]
/// resolved them (discovery leaves them out).
fn analyse_in_pool(plan: &Plan, outputs: &[PathBuf]) -> Result<Analysis, Error> {
    let mut timings = Timings::default();
    let mut stage_started = Instant::now();
    let mut lap = || {
        let now = Instant::now();
        std::mem::replace(&mut stage_started, now).elapsed()
    };
    let known = plan.cache.as_ref().map(|cache| StatTable::load(&cache.stat_table_path()));
    let mut discovered = discover::discover(&plan.roots, &plan.templates, &plan.excludes, known.as_ref(), outputs)?;
    let stat_table_changed = known.as_ref().is_some_and(|known| !known.same_as(&discovered.stat_table));
    timings.discover = lap();
    let mut diagnostics = discovered.diagnostics.clone();
    // The cache is looked up in parallel: hashing every file is most of a no-change build.
    let session = plan.cache.as_ref().map(Cache::session);
    let (keys, mut hits): (Vec<cache::Key>, Vec<Option<Vec<RequireSite>>>) = discovered
        .files
        .par_iter()
        .map(|file| {
            let key = Cache::key_for_hash(&file.content_hash, &file.chunk_name(), plan.strip);
            (key, session.as_ref().and_then(|s| s.load_sites(&key)))
        })
        .unzip();
    let misses = hits.iter().filter(|entry| entry.is_none()).count();
    timings.cache_lookup = lap();
    let tracker = Tracker::new(plan, Stage::Compile, misses);
    // The output needs the text of no file it compiled cleanly: such texts are released as
    // soon as they are compiled (and read again only if a later diagnostic shows them).
    let output_needs_text = plan.embed_source || plan.format != OutputFormat::Bundle;
    // Files the cache lacks are compiled and scanned in one pass on the worker holding them.
    let processed: Vec<(FileResult, bool)> = discovered
        .files
        .par_iter_mut()
        .zip(&mut hits)
        .map(|(file, entry)| {
            let (result, fresh) = match entry.take() {
                Some(sites) => (FileResult { sites: Ok(sites), bytecode: Ok(Vec::new()) }, false),
                None => {
                    let result = per_file::process(file, plan.strip);
                    tracker.step();
                    (result, true)
                }
            };
            if !output_needs_text && result.sites.is_ok() && result.bytecode.is_ok() {
                file.release_text();
            }
            (result, fresh)
        })
        .collect();
    drop(hits);
    let mut session = session;
    let mut sites = Vec::with_capacity(processed.len());
    let mut bytecode = Vec::with_capacity(processed.len());
    let mut file_errors = Vec::new();
    for ((result, fresh), key) in processed.into_iter().zip(&keys) {
        if let (Some(session), true, Ok(found), Ok(bytes)) = (&mut session, fresh, &result.sites, &result.bytecode) {
            session.insert(*key, found, bytes);
        }
        match result.sites {
            Ok(found) => sites.push(found),
            Err(errors) => {
                file_errors.extend(errors);
                sites.push(Vec::new());
            }
        }
        bytecode.push(match (fresh, result.bytecode) {
            (false, _) => Code::Cached,
            (true, Ok(bytes)) => Code::Ready(bytes),
            (true, Err(diagnostic)) => Code::Refused(diagnostic),
        });
    }
    timings.compile = lap();
    let entry = find_entry(plan, &discovered, &mut diagnostics);
    let profiles = find_profiles(plan, &discovered, &mut diagnostics);
    let evaluator = computed_names::Evaluator::new()
        .map_err(|e| Error::Usage(format!("cannot start the Lua state for computed requires: {e}")))?;
    // With `--profile NAME`, that profile alone decides what is bundled.
    let mut profiles = profiles;
    if let Some(only) = &plan.only_profile {
        if !profiles.iter().any(|(name, _)| name == only) {
            let known: Vec<&str> = profiles.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::Usage(format!("no profile named `{only}` (profiles: {})", known.join(", "))));
        }
        profiles.retain(|(name, _)| name == only);
    }
    let roots: Vec<usize> = profiles.iter().flat_map(|(_, members)| members.iter().copied()).collect();
    let only = plan.only_profile.as_ref().map(|_| roots.as_slice());
    let options =
        GraphOptions { externals: &plan.externals, includes: &plan.includes, entry, extra_roots: &roots, only };
    let (mut graph, graph_diagnostics) =
        graph::build_graph(&discovered.modules, &sites, &discovered.files, options, &mut |program, module, path| {
            evaluator.module_name(program, module, path)
        });
    diagnostics.extend(graph_diagnostics);
    diagnostics.extend(left_out_files_are_not_errors(file_errors, &discovered, &bytecode, &mut graph));
    let profiles = profiles.into_iter().map(|(name, members)| (name, graph.closure(&members))).collect();
    let entry = entry.filter(|&e| {
        let outside = !graph.bundled[e];
        if outside {
            let only = plan.only_profile.as_deref().unwrap_or_default();
            diagnostics.push(Diagnostic::warning(
                "entry-outside-profile",
                format!("entry `{}` is not in profile `{only}`; the bundle has no entry", discovered.modules[e].name),
            ));
        }
        !outside
    });
    diagnostics.extend(check_groups(plan, &discovered));
    let refusals = refusals_of_bundled_files(&discovered, &graph, &bytecode, &diagnostics);
    diagnostics.extend(refusals);
    timings.graph = lap();
    let analysis = Analysis {
        discovered,
        graph,
        entry,
        profiles,
        diagnostics,
        keys,
        bytecode,
        parsed: misses,
        cache: session,
        stat_table_changed,
        timings,
    };
    fail_on_errors(&analysis)?;
    Ok(analysis)
}

/// Lua's refusal of each bundled file, reported with the analysis so that one run shows
/// every error: a missing module does not hide a file that does not compile. A file whose
/// syntax errors are already reported (the parser's, more precise) gets no second one.
fn refusals_of_bundled_files(
    discovered: &Discovered,
    graph: &ModuleGraph,
    bytecode: &[Code],
    reported: &[Diagnostic],
) -> Vec<Diagnostic> {
    let has_error =
        |file: usize| reported.iter().any(|d| d.is_error() && d.labels.first().is_some_and(|l| l.file == file));
    let mut files: Vec<usize> =
        discovered.modules.iter().zip(&graph.bundled).filter(|(_, bundled)| **bundled).map(|(m, _)| m.file).collect();
    files.sort_unstable();
    files.dedup();
    files
        .into_iter()
        .filter_map(|file| match bytecode.get(file) {
            Some(Code::Refused(diagnostic)) if !has_error(file) => Some(diagnostic.clone()),
            _ => None,
        })
        .collect()
}

/// Errors in files that the bundle leaves out (nothing bundled requires them) become one
/// warning per file: Lua never loads such a file, so the program runs whatever it holds
/// (documentation stubs that are not Lua). So do errors in files whose modules load only
/// through optional or run-time requires (`--include` globs that take in a file written for
/// another Lua version): such a file is left out, and a require of it fails at run time, as
/// it fails from the sources.
fn left_out_files_are_not_errors(
    errors: Vec<Diagnostic>,
    discovered: &Discovered,
    bytecode: &[Code],
    graph: &mut ModuleGraph,
) -> Vec<Diagnostic> {
    // Per file: bundled at all, and bundled for certain. A file that Lua compiles (only the
    // parser of the analysis fails on it) stays in and its errors stay errors.
    let mut in_bundle = vec![(false, false); discovered.files.len()];
    for (i, module) in discovered.modules.iter().enumerate().filter(|(i, _)| graph.bundled[*i]) {
        let lua_refuses = matches!(bytecode.get(module.file), Some(Code::Refused(_)));
        let slot = &mut in_bundle[module.file];
        slot.0 = true;
        slot.1 |= !lua_refuses || !graph.maybe_loaded.get(i).copied().unwrap_or(false);
    }
    let mut kept = Vec::new();
    let mut left_out: std::collections::BTreeMap<usize, (Diagnostic, usize)> = Default::default();
    for d in errors {
        let file = d.labels.first().map(|l| l.file);
        match file.filter(|&f| d.is_error() && !in_bundle.get(f).is_none_or(|&(_, certain)| certain)) {
            Some(file) => left_out.entry(file).or_insert((d, 0)).1 += 1,
            None => kept.push(d),
        }
    }
    for (file, (mut d, count)) in left_out {
        d.severity = crate::diagnostic::Severity::Warning;
        if count > 1 {
            d.notes.push(format!("and {} more error{} in this file", count - 1, if count > 2 { "s" } else { "" }));
        }
        if in_bundle[file].0 {
            for (i, module) in discovered.modules.iter().enumerate().filter(|(_, m)| m.file == file) {
                if graph.bundled[i] {
                    graph.bundled[i] = false;
                    d.notes.push(format!(
                        "`{}` loads only through optional or run-time requires: it is left out of the bundle, and a require of it fails as from the sources",
                        module.name
                    ));
                }
            }
        } else {
            d.notes.push(
                "nothing bundled requires this file: it is left out of the bundle, and Lua never loads it".into(),
            );
        }
        kept.push(d);
    }
    kept
}

fn find_entry(plan: &Plan, discovered: &Discovered, diagnostics: &mut Vec<Diagnostic>) -> Option<usize> {
    let name = plan.entry.as_deref()?;
    let found = position(discovered, name);
    if found.is_none() {
        let mut d = Diagnostic::error("unknown-entry", format!("entry module `{name}` is not in any root"))
            .with_note(format!("{} modules were found", discovered.modules.len()));
        if let Some(close) = graph::closest_name(name, &discovered.modules) {
            d = d.with_note(format!("did you mean `{close}`?"));
        }
        diagnostics.push(d);
    }
    found
}

fn find_profiles(plan: &Plan, discovered: &Discovered, diagnostics: &mut Vec<Diagnostic>) -> Vec<(String, Vec<usize>)> {
    let mut profiles = Vec::new();
    for (name, modules) in &plan.profiles {
        let mut members = Vec::new();
        for module in modules {
            match position(discovered, module) {
                Some(found) => members.push(found),
                None => {
                    let mut d = Diagnostic::error(
                        "unknown-profile-module",
                        format!("profile `{name}` names module `{module}`, which is not in any root"),
                    );
                    if let Some(close) = graph::closest_name(module, &discovered.modules) {
                        d = d.with_note(format!("did you mean `{close}`?"));
                    }
                    diagnostics.push(d);
                }
            }
        }
        profiles.push((name.clone(), members));
    }
    profiles
}

/// Groups must not shadow a module and must give each member its own field.
fn check_groups(plan: &Plan, discovered: &Discovered) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (name, members) in &plan.groups {
        if position(discovered, name).is_some() {
            problems
                .push(Diagnostic::error("group-shadows-module", format!("group `{name}` has the name of a module")));
        }
        for member in members {
            let external = || plan.externals.iter().any(|pattern| graph::glob_match(pattern, member));
            if position(discovered, member).is_none() && !external() {
                problems.push(
                    Diagnostic::error(
                        "group-member-missing",
                        format!("group `{name}`: member `{member}` is not a module of this build"),
                    )
                    .with_note(match graph::closest_name(member, &discovered.modules) {
                        Some(close) => format!("did you mean `{close}`? (requiring the group would fail when it loads the member)"),
                        None => "requiring the group would fail when it loads the member; declare it with --external if the host provides it".to_string(),
                    }),
                );
            }
        }
        let mut fields = std::collections::BTreeMap::new();
        for member in members {
            let field = member.rsplit('.').next().unwrap_or(member);
            if let Some(other) = fields.insert(field, member) {
                problems.push(Diagnostic::error(
                    "group-field-conflict",
                    format!("group `{name}`: members `{other}` and `{member}` both become field `{field}`"),
                ));
            }
        }
    }
    problems
}

fn position(discovered: &Discovered, name: &str) -> Option<usize> {
    discovered.modules.binary_search_by(|m| m.name.as_str().cmp(name)).ok()
}

/// The bytecode of each bundled file: compiled in this run, or read from the cache (in
/// parallel; a damaged entry is compiled again, and its compile error becomes a diagnostic).
/// Closes the cache session.
fn compile_bundled(plan: &Plan, analysis: &mut Analysis) -> Vec<Option<Blob>> {
    let mut bundled_files = vec![false; analysis.discovered.files.len()];
    for (m, _) in analysis.discovered.modules.iter().zip(&analysis.graph.bundled).filter(|(_, b)| **b) {
        bundled_files[m.file] = true;
    }
    let files = &analysis.discovered.files;
    let session = analysis.cache.as_ref();
    let keys = &analysis.keys;
    let hashed = |bytes: Vec<u8>| {
        let hash = *blake3::hash(&bytes).as_bytes();
        Blob { bytes, hash }
    };
    let results: Vec<(Option<Blob>, Option<Diagnostic>, bool)> = std::mem::take(&mut analysis.bytecode)
        .into_par_iter()
        .zip(bundled_files.par_iter())
        .enumerate()
        .map(|(i, (code, &bundled))| match code {
            _ if !bundled => (None, None, false),
            Code::Ready(bytes) => (Some(hashed(bytes)), None, false),
            // Already reported by the analysis.
            Code::Refused(_) => (None, None, false),
            Code::Cached => match session.and_then(|s| s.load_bytecode(&keys[i])) {
                Some((bytes, hash)) => (Some(Blob { bytes, hash }), None, false),
                // A damaged entry: the sites were intact, only the bytecode is made again.
                None => match compile::with_worker_lua(|lua| compile::compile_file(lua, &files[i], plan.strip)) {
                    Ok(bytes) => (Some(hashed(bytes)), None, true),
                    Err(diagnostic) => (None, Some(diagnostic), false),
                },
            },
        })
        .collect();
    let mut bytecode = Vec::with_capacity(results.len());
    let mut recompiled = Vec::new();
    for (i, (bytes, diagnostic, again)) in results.into_iter().enumerate() {
        analysis.diagnostics.extend(diagnostic);
        if again {
            recompiled.push(i);
        }
        bytecode.push(bytes);
    }
    close_cache(
        analysis,
        &recompiled.iter().filter_map(|&i| Some((i, &bytecode[i].as_ref()?.bytes))).collect::<Vec<_>>(),
    );
    bytecode
}

/// Stores the files compiled again (damaged cache entries), finishes the cache session and
/// saves the files' fingerprints when they changed.
fn close_cache(analysis: &mut Analysis, recompiled: &[(usize, &Vec<u8>)]) {
    let Some(mut session) = analysis.cache.take() else { return };
    for &(i, bytes) in recompiled {
        let sites = session.load_sites(&analysis.keys[i]).unwrap_or_default();
        session.insert(analysis.keys[i], &sites, bytes);
        analysis.parsed += 1;
    }
    let stat_table_path = session.stat_table_path();
    session.finish(&analysis.keys.iter().copied().collect());
    if analysis.stat_table_changed {
        analysis.discovered.stat_table.save(&stat_table_path);
    }
}

/// The build's inputs against the record of the bundle at the output path.
struct Freshness {
    record_path: PathBuf,
    fingerprint: [u8; 32],
    /// The bundle's length when it was built from exactly these inputs.
    up_to_date: Option<u64>,
}

impl Freshness {
    /// `None` without a cache (nowhere to keep records) or for plain-Lua output.
    fn check(plan: &Plan, analysis: &Analysis, output: &Path) -> Option<Freshness> {
        let cache = plan.cache.as_ref()?;
        if !matches!(plan.format, OutputFormat::Bundle | OutputFormat::Source) || crate::util::write::is_stream(output)
        {
            return None;
        }
        let record_path = Record::path(&cache.layout_dir(), output);
        let fingerprint = inputs_fingerprint(plan, analysis);
        let up_to_date = Record::load(&record_path)
            .filter(|record| record.fingerprint == fingerprint)
            .and_then(|record| record.matches_file(output));
        Some(Freshness { record_path, fingerprint, up_to_date })
    }

    /// Records the bundle just written to `output`.
    fn record(&self, layout: &Layout<'_>, output: &Path) {
        let Some(file) = crate::cache::file_table::Fingerprint::of_path(output) else { return };
        let record = Record {
            fingerprint: self.fingerprint,
            header: *layout.header_bytes(),
            trailer: layout.trailer_bytes(),
            file,
        };
        record.save(&self.record_path);
    }
}

/// blake3 of everything that decides the bundle's bytes: this tool and its VM, the output
/// options, and every bundled module's name, file, content key and resolved dependencies.
fn inputs_fingerprint(plan: &Plan, analysis: &Analysis) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    let mut text = |s: &str| {
        hasher.update(&(s.len() as u64).to_le_bytes());
        hasher.update(s.as_bytes());
    };
    text(env!("CARGO_PKG_VERSION"));
    text(&format!("{:?}", luabundle_runtime::target::linked()));
    text(&format!("{:?} strip={} embed={}", plan.format, plan.strip, plan.embed_source));
    #[cfg(feature = "sign")]
    text(&format!("{:?}", plan.signing_key.as_ref().map(|k| k.verifying_key().to_bytes())));
    let modules = &analysis.discovered.modules;
    text(&format!("entry={:?}", analysis.entry.map(|e| &modules[e].name)));
    text(&format!("externals={:?}", analysis.graph.externals_used));
    for (name, members) in &analysis.profiles {
        text(&format!("profile {name} {:?}", members.iter().map(|&m| &modules[m].name).collect::<Vec<_>>()));
    }
    text(&format!("groups={:?}", plan.groups));
    for (i, m) in modules.iter().enumerate().filter(|(i, _)| analysis.graph.bundled[*i]) {
        let file = &analysis.discovered.files[m.file];
        text(&m.name);
        text(&file.display_path);
        text(&blake3::Hash::from_bytes(analysis.keys[m.file]).to_hex());
        text(&format!("{:?}", analysis.graph.dependencies(i)));
    }
    *hasher.finalize().as_bytes()
}

fn fail_on_errors(analysis: &Analysis) -> Result<(), Error> {
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        let diagnostics = Diagnostics::new(analysis.diagnostics.clone(), &analysis.discovered.files);
        return Err(Error::Input(Box::new(diagnostics)));
    }
    Ok(())
}

/// What the bundle holds: the bundled modules (their bytecode moved in, not copied), the
/// entry, externals, profiles and groups.
/// Also returns, per module, the hash of its bytes where it is already known.
fn bundle_contents(
    plan: &Plan,
    analysis: &Analysis,
    mut bytecode: Vec<Option<Blob>>,
) -> (BundleContents, Vec<Option<[u8; 32]>>) {
    let files = &analysis.discovered.files;
    let modules = &analysis.discovered.modules;
    let bundled = &analysis.graph.bundled;
    // Positions in the bundle: bundled modules only, still sorted by name.
    let mut position = vec![usize::MAX; modules.len()];
    for (next, i) in (0..modules.len()).filter(|&i| bundled[i]).enumerate() {
        position[i] = next;
    }
    let mut remaining_names = vec![0usize; files.len()];
    for (m, _) in modules.iter().zip(bundled).filter(|(_, b)| **b) {
        remaining_names[m.file] += 1;
    }
    let mut emitted = Vec::new();
    let mut known = Vec::new();
    for (i, m) in modules.iter().enumerate().filter(|(i, _)| bundled[*i]) {
        let file = &files[m.file];
        // A file that provides two names is compiled once; the last name takes its bytes.
        remaining_names[m.file] -= 1;
        let blob = if plan.format == OutputFormat::Source {
            None
        } else if remaining_names[m.file] > 0 {
            bytecode[m.file].clone()
        } else {
            bytecode[m.file].take()
        };
        known.push(blob.as_ref().map(|b| b.hash));
        let bytes = match blob {
            Some(blob) => Some(blob.bytes),
            None if plan.format == OutputFormat::Source => {
                Some(crate::input::source::prepare_bytes(file.bytes()).into_owned())
            }
            None => None,
        };
        let deps = analysis
            .graph
            .dependencies(i)
            .into_iter()
            .filter(|d| bundled[d.module])
            .map(|d| graph::Dependency { module: position[d.module], ..d })
            .collect();
        emitted.push(EmitModule {
            name: m.name.clone(),
            chunk_name: file.chunk_name(),
            path: file.display_path.clone(),
            bytes: bytes.unwrap_or_default(),
            kind: if plan.format == OutputFormat::Source { BlobKind::Source } else { BlobKind::Bytecode },
            source: (plan.embed_source && plan.format == OutputFormat::Bundle)
                .then(|| crate::input::source::prepare_bytes(file.bytes()).into_owned()),
            deps,
        });
    }
    let externals = analysis.graph.externals_used.iter().cloned().collect();
    let entry = analysis.entry.map(|e| position[e]);
    let profiles = analysis
        .profiles
        .iter()
        .map(|(name, members)| (name.clone(), members.iter().map(|&m| position[m]).collect()))
        .collect();
    let groups = plan
        .groups
        .iter()
        .map(|(name, members)| luabundle_runtime::format::Group { name: name.clone(), members: members.clone() })
        .collect();
    let target = match plan.format {
        OutputFormat::Source => Target {
            flavour: luabundle_runtime::target::SOURCE_FLAVOUR.to_string(),
            release: format!("source for {}", crate::flavour::NAME),
            bytecode_header: Vec::new(),
        },
        _ => luabundle_runtime::target::linked().clone(),
    };
    (bundle_file::contents(&target, emitted, entry, externals, profiles, groups), known)
}

/// The bundle laid out for writing, signed when the plan has a key.
fn bundle_layout<'a>(
    plan: &Plan,
    contents: &'a BundleContents,
    known: &[Option<[u8; 32]>],
) -> Result<Layout<'a>, Error> {
    #[cfg(feature = "sign")]
    let signer = plan.signing_key.as_ref().map(|key| move |root: &[u8; 32]| crate::sign::sign(key, root));
    #[cfg(not(feature = "sign"))]
    let signer = {
        let _ = plan;
        None::<fn(&[u8; 32]) -> [u8; luabundle_runtime::format::SIGNATURE_LEN]>
    };
    Ok(Layout::with_known_hashes(contents, known, signer)?)
}

/// The plain-Lua script of the bundled modules (sources, or bytecode for `LuaBytecode`).
fn lua_script(plan: &Plan, analysis: &Analysis, bytecode: Vec<Option<Blob>>) -> String {
    let files = &analysis.discovered.files;
    let module = |i: usize| {
        let m = &analysis.discovered.modules[i];
        let file = &files[m.file];
        let code = match plan.format {
            OutputFormat::LuaBytecode => bytecode[m.file].as_ref().map(|b| b.bytes.clone()).unwrap_or_default(),
            _ => crate::input::source::prepare_bytes(file.bytes()).into_owned(),
        };
        lua_script::ScriptModule {
            name: m.name.clone(),
            chunk_name: file.chunk_name(),
            path: file.display_path.clone(),
            code,
        }
    };
    let modules: Vec<_> =
        (0..analysis.discovered.modules.len()).filter(|&i| analysis.graph.bundled[i]).map(module).collect();
    let entry = analysis.entry.map(module);
    lua_script::script(&modules, entry.as_ref(), plan.format == OutputFormat::LuaBytecode)
}
