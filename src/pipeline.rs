//! The one place that runs the stages in order: discover -> (cache) -> parse and find
//! requires -> graph -> compile -> (cache) -> emit. Each stage is a function of its input;
//! only this module knows the order.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::builder::{Output, OutputFormat, Progress, ProgressFn, Stage, Timings};
use crate::cache::{self, Cache};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::discover::{self, Discovered, Root, Template};
use crate::emit::{self, EmitModule};
use crate::error::Error;
use crate::front_end::{self, FileResult};
use crate::graph::{self, GraphOptions, ModuleGraph};
use crate::lua_output;
use crate::relative;
use luabundle_runtime::format::{BlobKind, Target};

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
    /// Per file: its bytecode, or why Lua refused it.
    bytecode: Vec<Result<Vec<u8>, Diagnostic>>,
    /// Files compiled and scanned in this run (the others came from the cache).
    parsed: usize,
    /// The cache as this build uses it.
    cache: Option<cache::Session>,
    /// Time spent in each stage so far.
    timings: Timings,
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

/// Worker threads with stacks deep enough for full_moon.
fn pool(plan: &Plan) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(plan.jobs.unwrap_or(0))
        .stack_size(crate::parse::PARSE_STACK_SIZE)
        .thread_name(|i| format!("luabundle-{i}"))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))
}

/// Discovery through the graph, without compiling.
pub(crate) fn analyse(plan: &Plan) -> Result<Analysis, Error> {
    pool(plan)?.install(|| analyse_in_pool(plan))
}

/// The whole build; writes the bundle to `output` when given.
pub(crate) fn run(plan: &Plan, output: Option<&Path>) -> Result<Output, Error> {
    let started = Instant::now();
    pool(plan)?.install(|| {
        let mut analysis = analyse_in_pool(plan)?;
        let store_started = Instant::now();
        let bytecode = compile_bundled(&mut analysis);
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
            site_counts: analysis.graph.site_counts,
            elapsed: Duration::ZERO,
            timings: analysis.timings,
        };
        let manifest = plan.manifest.as_ref().map(|path| (path, crate::manifest::render(&analysis)));
        if let (Some((path, new)), true) = (&manifest, plan.locked) {
            let old = std::fs::read_to_string(path).unwrap_or_default();
            if old != *new {
                return Err(Error::ManifestChanged {
                    path: path.to_path_buf(),
                    diff: crate::manifest::diff(&old, new),
                });
            }
        }
        if let Some(output) = output {
            let encode_started = Instant::now();
            let bytes = match plan.format {
                OutputFormat::Bundle | OutputFormat::Source => bundle_bytes(plan, &analysis, bytecode)?,
                OutputFormat::Lua | OutputFormat::LuaBytecode => lua_script(plan, &analysis, bytecode).into_bytes(),
            };
            result.timings.encode = encode_started.elapsed();
            let write_started = Instant::now();
            result.bytes = bytes.len() as u64;
            result.written = emit::write_atomically(output, &bytes)?;
            if let Some((path, text)) = &manifest {
                emit::write_atomically(path, text.as_bytes())?;
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

fn analyse_in_pool(plan: &Plan) -> Result<Analysis, Error> {
    let mut timings = Timings::default();
    let mut stage_started = Instant::now();
    let mut lap = || {
        let now = Instant::now();
        std::mem::replace(&mut stage_started, now).elapsed()
    };
    let discovered = discover::discover(&plan.roots, &plan.templates, &plan.excludes)?;
    timings.discover = lap();
    let mut diagnostics = discovered.diagnostics.clone();
    let files = &discovered.files;
    // The cache is looked up in parallel: hashing every file is most of a no-change build.
    let session = plan.cache.as_ref().map(Cache::session);
    let (keys, mut hits): (Vec<cache::Key>, Vec<Option<cache::Entry>>) = files
        .par_iter()
        .map(|file| {
            let key = Cache::key(&file.text, plan.strip);
            (key, session.as_ref().and_then(|s| s.load(&key)))
        })
        .unzip();
    let misses = hits.iter().filter(|entry| entry.is_none()).count();
    timings.cache_lookup = lap();
    let tracker = Tracker::new(plan, Stage::Compile, misses);
    // Files the cache lacks are compiled and scanned in one pass on the worker holding them.
    let processed: Vec<(FileResult, bool)> = files
        .par_iter()
        .zip(&mut hits)
        .map(|(file, entry)| match entry.take() {
            Some(entry) => (FileResult { sites: Ok(entry.sites), bytecode: Ok(entry.bytecode) }, false),
            None => {
                let result = front_end::process(file, plan.strip);
                tracker.step();
                (result, true)
            }
        })
        .collect();
    drop(hits);
    let mut session = session;
    let mut sites = Vec::with_capacity(processed.len());
    let mut bytecode = Vec::with_capacity(processed.len());
    for ((result, fresh), key) in processed.into_iter().zip(&keys) {
        if let (Some(session), true, Ok(found), Ok(bytes)) = (&mut session, fresh, &result.sites, &result.bytecode) {
            session.insert(*key, found, bytes);
        }
        match result.sites {
            Ok(found) => sites.push(found),
            Err(errors) => {
                diagnostics.extend(errors);
                sites.push(Vec::new());
            }
        }
        bytecode.push(result.bytecode);
    }
    timings.compile = lap();
    let entry = find_entry(plan, &discovered, &mut diagnostics);
    let profiles = find_profiles(plan, &discovered, &mut diagnostics);
    let evaluator = relative::Evaluator::new()
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
    let (graph, graph_diagnostics) =
        graph::build_graph(&discovered.modules, &sites, files, options, &mut |program, module, path| {
            evaluator.module_name(program, module, path)
        });
    diagnostics.extend(graph_diagnostics);
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
        timings,
    };
    fail_on_errors(&analysis)?;
    Ok(analysis)
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

/// The bytecode of each bundled file (a compile error of a bundled file becomes a
/// diagnostic), and closes the cache session.
fn compile_bundled(analysis: &mut Analysis) -> Vec<Option<Vec<u8>>> {
    let mut bundled_files = vec![false; analysis.discovered.files.len()];
    for (m, _) in analysis.discovered.modules.iter().zip(&analysis.graph.bundled).filter(|(_, b)| **b) {
        bundled_files[m.file] = true;
    }
    let mut bytecode = Vec::with_capacity(bundled_files.len());
    for (result, bundled) in std::mem::take(&mut analysis.bytecode).into_iter().zip(bundled_files) {
        match result {
            Ok(bytes) if bundled => bytecode.push(Some(bytes)),
            Err(diagnostic) if bundled => {
                analysis.diagnostics.push(diagnostic);
                bytecode.push(None);
            }
            _ => bytecode.push(None),
        }
    }
    if let Some(session) = analysis.cache.take() {
        session.finish(&analysis.keys.iter().copied().collect());
    }
    bytecode
}

fn fail_on_errors(analysis: &Analysis) -> Result<(), Error> {
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        let diagnostics = Diagnostics::new(analysis.diagnostics.clone(), &analysis.discovered.files);
        return Err(Error::Input(Box::new(diagnostics)));
    }
    Ok(())
}

fn bundle_bytes(plan: &Plan, analysis: &Analysis, mut bytecode: Vec<Option<Vec<u8>>>) -> Result<Vec<u8>, Error> {
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
    for (i, m) in modules.iter().enumerate().filter(|(i, _)| bundled[*i]) {
        let file = &files[m.file];
        // A file that provides two names is compiled once; the last name takes its bytes.
        remaining_names[m.file] -= 1;
        let bytes = if plan.format == OutputFormat::Source {
            Some(crate::source::prepare(&file.text).into_owned().into_bytes())
        } else if remaining_names[m.file] > 0 {
            bytecode[m.file].clone()
        } else {
            bytecode[m.file].take()
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
                .then(|| crate::source::prepare(&file.text).into_owned().into_bytes()),
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
    let contents = emit::contents(&target, emitted, entry, externals, profiles, groups);
    #[cfg(feature = "sign")]
    if let Some(key) = &plan.signing_key {
        return Ok(luabundle_runtime::format::encode_signed(&contents, |root| crate::sign::sign(key, root))?);
    }
    Ok(luabundle_runtime::format::encode(&contents)?)
}

/// The plain-Lua script of the bundled modules (sources, or bytecode for `LuaBytecode`).
fn lua_script(plan: &Plan, analysis: &Analysis, bytecode: Vec<Option<Vec<u8>>>) -> String {
    let files = &analysis.discovered.files;
    let module = |i: usize| {
        let m = &analysis.discovered.modules[i];
        let file = &files[m.file];
        let code = match plan.format {
            OutputFormat::LuaBytecode => bytecode[m.file].clone().unwrap_or_default(),
            _ => crate::source::prepare(&file.text).into_owned().into_bytes(),
        };
        lua_output::ScriptModule {
            name: m.name.clone(),
            chunk_name: file.chunk_name(),
            path: file.display_path.clone(),
            code,
        }
    };
    let modules: Vec<_> =
        (0..analysis.discovered.modules.len()).filter(|&i| analysis.graph.bundled[i]).map(module).collect();
    let entry = analysis.entry.map(module);
    lua_output::script(&modules, entry.as_ref(), plan.format == OutputFormat::LuaBytecode)
}
