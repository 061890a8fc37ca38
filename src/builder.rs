//! `Builder`: the options of a build, and the one place that runs the stages in order:
//! discover -> parse and find requires -> graph -> compile -> emit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::compile;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::discover::{self, Discovered, Root, Template, DEFAULT_TEMPLATES};
use crate::emit::{self, EmitModule};
use crate::error::Error;
use crate::graph::{self, GraphOptions, ModuleGraph};
use crate::parse;
use crate::relative;
use crate::requires::{self, RequireSite};

/// Bundle file name used when only an output directory is known.
pub const DEFAULT_BUNDLE_NAME: &str = "app.bundle";

/// Options of a build. Setters take `&mut self` and chain, for use in `build.rs`:
///
/// ```no_run
/// luabundle::Builder::new().root("lua").entry("app.main").build();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    roots: Vec<Root>,
    entry: Option<String>,
    externals: Vec<String>,
    includes: Vec<String>,
    excludes: Vec<String>,
    strip: bool,
    templates: Option<String>,
    output: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    jobs: Option<usize>,
}

/// What a successful build or check produced.
#[derive(Debug)]
pub struct Report {
    /// The bundle written (`None` for a check).
    pub output: Option<PathBuf>,
    /// Whether the file was (re)written; `false` when it already held the same bytes.
    pub written: bool,
    /// Number of modules in the bundle.
    pub modules: usize,
    /// Number of source files read.
    pub files: usize,
    /// Size of the bundle in bytes (0 for a check).
    pub bytes: u64,
    /// Warnings, to show the user.
    pub warnings: Diagnostics,
    /// Require cycles that pass because one of their requires is deferred.
    pub legal_cycles: Vec<String>,
    /// How the require sites of the bundled files resolved.
    pub site_counts: graph::SiteCounts,
    /// Wall time of the whole run.
    pub elapsed: Duration,
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
    /// Warnings (errors fail the analysis).
    pub diagnostics: Vec<Diagnostic>,
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

impl Builder {
    /// A builder with no roots, the default templates (`?.lua;?/init.lua`) and debug info kept.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Adds a source root: `DIR` or `PREFIX=DIR`.
    pub fn root(&mut self, root: impl Into<Root>) -> &mut Builder {
        self.roots.push(root.into());
        self
    }

    /// Sets the entry module, which `luabundle run` runs and which must exist.
    pub fn entry(&mut self, module: impl Into<String>) -> &mut Builder {
        self.entry = Some(module.into());
        self
    }

    /// Declares a module the host provides (a C or Rust module); `*` globs allowed.
    pub fn external(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.externals.push(pattern.into());
        self
    }

    /// Bundles the modules whose names match `pattern` (`*` globs, e.g. `plugins.*`) even when
    /// nothing requires them by a constant name, for requires computed at run time. Such
    /// requires whose constant prefix the pattern may match no longer warn.
    pub fn include(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.includes.push(pattern.into());
        self
    }

    /// Leaves out files and directories matching `pattern`, relative to their root: a
    /// pattern without `/` matches a file or directory name at any depth (`*_spec.lua`,
    /// `spec`), one with `/` a path from the root (`test/fixtures/**`).
    pub fn exclude(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.excludes.push(pattern.into());
        self
    }

    /// Strips debug info (smaller, but tracebacks lose file and line). Off by default.
    pub fn strip(&mut self, strip: bool) -> &mut Builder {
        self.strip = strip;
        self
    }

    /// Sets the module path templates, `;`-separated like `package.path`.
    pub fn templates(&mut self, templates: impl Into<String>) -> &mut Builder {
        self.templates = Some(templates.into());
        self
    }

    /// Sets the bundle's path. A relative path is taken relative to the output directory
    /// when one is set, else to the working directory.
    pub fn output(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.output = Some(path.into());
        self
    }

    /// Sets the output directory (default: the `OUT_DIR` environment variable, as set by
    /// Cargo for build scripts).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Sets the number of worker threads (default: one per core).
    pub fn jobs(&mut self, jobs: usize) -> &mut Builder {
        self.jobs = Some(jobs.max(1));
        self
    }

    /// Analyses and compiles everything without writing a bundle.
    ///
    /// # Errors
    /// [`Error::Input`] with every diagnostic if the Lua input has errors; [`Error::Usage`]
    /// for bad options.
    pub fn check(&self) -> Result<Report, Error> {
        self.run(None)
    }

    /// Builds and writes the bundle.
    ///
    /// # Errors
    /// As [`Builder::check`], and [`Error::Io`] if the bundle cannot be written (an existing
    /// bundle is then left as it was).
    pub fn try_build(&self) -> Result<Report, Error> {
        let output = self.output_path()?;
        self.run(Some(&output))
    }

    /// Builds like [`Builder::try_build`]; on failure prints the diagnostics to stderr and
    /// exits with status 1 (input errors) or 2. Warnings are printed as `cargo:warning`
    /// lines when run by Cargo, else to stderr.
    pub fn build(&self) -> Report {
        match self.try_build() {
            Ok(report) => {
                print_warnings(&report.warnings);
                report
            }
            Err(err) => {
                eprint!("{err}");
                if !matches!(err, Error::Input(_)) {
                    eprintln!();
                }
                std::process::exit(err.exit_code());
            }
        }
    }

    fn output_path(&self) -> Result<PathBuf, Error> {
        let out_dir = self.out_dir.clone().or_else(|| std::env::var_os("OUT_DIR").map(PathBuf::from));
        match (&self.output, out_dir) {
            (Some(path), Some(dir)) if path.is_relative() => Ok(dir.join(path)),
            (Some(path), _) => Ok(path.clone()),
            (None, Some(dir)) => Ok(dir.join(DEFAULT_BUNDLE_NAME)),
            (None, None) => Err(Error::Usage("no output path: set one with -o/--output (or OUT_DIR)".into())),
        }
    }

    /// Discovers, parses and resolves everything without compiling, for tools that show the
    /// require graph.
    ///
    /// # Errors
    /// As [`Builder::check`].
    pub fn analyse(&self) -> Result<Analysis, Error> {
        let templates = self.validate()?;
        self.pool()?.install(|| self.analyse_with(&templates))
    }

    fn validate(&self) -> Result<Vec<Template>, Error> {
        if self.roots.is_empty() {
            return Err(Error::Usage("no source roots given".into()));
        }
        Template::parse_list(self.templates.as_deref().unwrap_or(DEFAULT_TEMPLATES))
    }

    /// Worker threads with stacks deep enough for full_moon.
    fn pool(&self) -> Result<rayon::ThreadPool, Error> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.jobs.unwrap_or(0))
            .stack_size(parse::PARSE_STACK_SIZE)
            .thread_name(|i| format!("luabundle-{i}"))
            .build()
            .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))
    }

    fn run(&self, output: Option<&Path>) -> Result<Report, Error> {
        let started = Instant::now();
        let templates = self.validate()?;
        self.pool()?.install(|| {
            let mut analysis = self.analyse_with(&templates)?;
            let mut bytecode = vec![None; analysis.discovered.files.len()];
            for (file, result) in compile_modules(&analysis, self.strip) {
                match result {
                    Ok(bytes) => bytecode[file] = Some(bytes),
                    Err(diagnostic) => analysis.diagnostics.push(diagnostic),
                }
            }
            fail_on_errors(&analysis)?;
            let mut report = Report {
                output: output.map(Path::to_path_buf),
                written: false,
                modules: analysis.bundled_count(),
                files: analysis.discovered.files.len(),
                bytes: 0,
                warnings: analysis.warnings(),
                legal_cycles: analysis.graph.legal_cycles.clone(),
                site_counts: analysis.graph.site_counts,
                elapsed: Duration::ZERO,
            };
            if let Some(output) = output {
                let bytes = bundle_bytes(&analysis, bytecode)?;
                report.bytes = bytes.len() as u64;
                report.written = emit::write_atomically(output, &bytes)?;
            }
            report.elapsed = started.elapsed();
            Ok(report)
        })
    }

    /// Discovery, parsing, require extraction and the graph; fails on any error so far.
    fn analyse_with(&self, templates: &[Template]) -> Result<Analysis, Error> {
        let discovered = discover::discover(&self.roots, templates, &self.excludes)?;
        let mut diagnostics = discovered.diagnostics.clone();
        let parsed: Vec<Result<Vec<RequireSite>, Vec<Diagnostic>>> = discovered
            .files
            .par_iter()
            .map(|file| parse::parse(file).map(|ast| requires::find_requires(&ast)))
            .collect();
        let mut sites = Vec::with_capacity(parsed.len());
        for result in parsed {
            match result {
                Ok(found) => sites.push(found),
                Err(errors) => {
                    diagnostics.extend(errors);
                    sites.push(Vec::new());
                }
            }
        }
        let entry = self.entry.as_deref().and_then(|name| {
            let found = discovered.modules.binary_search_by(|m| m.name.as_str().cmp(name)).ok();
            if found.is_none() {
                let mut d = Diagnostic::error("unknown-entry", format!("entry module `{name}` is not in any root"))
                    .with_note(format!("{} modules were found", discovered.modules.len()));
                if let Some(close) = graph::closest_name(name, &discovered.modules) {
                    d = d.with_note(format!("did you mean `{close}`?"));
                }
                diagnostics.push(d);
            }
            found
        });
        let evaluator = relative::Evaluator::new()
            .map_err(|e| Error::Usage(format!("cannot start the Lua state for computed requires: {e}")))?;
        let options = GraphOptions { externals: &self.externals, includes: &self.includes, entry };
        let (graph, graph_diagnostics) = graph::build_graph(
            &discovered.modules,
            &sites,
            &discovered.files,
            options,
            &mut |program, module, path| evaluator.module_name(program, module, path),
        );
        diagnostics.extend(graph_diagnostics);
        let analysis = Analysis { discovered, graph, entry, diagnostics };
        fail_on_errors(&analysis)?;
        Ok(analysis)
    }
}

/// Compiles each file that provides a module, once, in parallel. Returns `(file, result)`.
fn compile_modules(analysis: &Analysis, strip: bool) -> Vec<(usize, Result<Vec<u8>, Diagnostic>)> {
    let files = &analysis.discovered.files;
    let bundled = analysis.discovered.modules.iter().zip(&analysis.graph.bundled).filter(|(_, b)| **b);
    let mut used: Vec<usize> = bundled.map(|(m, _)| m.file).collect();
    used.sort_unstable();
    used.dedup();
    let sources: Vec<_> = used.iter().map(|&f| &files[f]).collect();
    let results = compile::compile_all(&sources, strip);
    used.into_iter().zip(results).collect()
}

fn fail_on_errors(analysis: &Analysis) -> Result<(), Error> {
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        let diagnostics = Diagnostics::new(analysis.diagnostics.clone(), &analysis.discovered.files);
        return Err(Error::Input(Box::new(diagnostics)));
    }
    Ok(())
}

fn bundle_bytes(analysis: &Analysis, mut bytecode: Vec<Option<Vec<u8>>>) -> Result<Vec<u8>, Error> {
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
        let bytes = if remaining_names[m.file] > 0 { bytecode[m.file].clone() } else { bytecode[m.file].take() };
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
            deps,
        });
    }
    let externals = analysis.graph.externals_used.iter().cloned().collect();
    let entry = analysis.entry.map(|e| position[e]);
    emit::bundle_bytes(luabundle_runtime::target::linked(), emitted, entry, externals)
}

fn print_warnings(warnings: &Diagnostics) {
    if warnings.items().is_empty() {
        return;
    }
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() && std::env::var_os("OUT_DIR").is_some() {
        for line in warnings.render().lines().filter(|l| !l.trim().is_empty()) {
            println!("cargo:warning={line}");
        }
    } else {
        eprint!("{}", warnings.render());
    }
}
