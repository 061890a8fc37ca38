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
use crate::graph::{self, ModuleGraph};
use crate::parse;
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
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// The analysed input: files, module names, require sites and the graph.
struct Analysis {
    discovered: Discovered,
    graph: ModuleGraph,
    entry: Option<usize>,
    diagnostics: Vec<Diagnostic>,
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

    fn run(&self, output: Option<&Path>) -> Result<Report, Error> {
        let started = Instant::now();
        if self.roots.is_empty() {
            return Err(Error::Usage("no source roots given".into()));
        }
        let templates = Template::parse_list(self.templates.as_deref().unwrap_or(DEFAULT_TEMPLATES))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.jobs.unwrap_or(0))
            .stack_size(parse::PARSE_STACK_SIZE)
            .thread_name(|i| format!("luabundle-{i}"))
            .build()
            .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))?;
        pool.install(|| {
            let mut analysis = self.analyse(&templates)?;
            let compiled = compile_modules(&analysis, self.strip);
            let files = &analysis.discovered.files;
            let mut bytecode: Vec<Option<Vec<u8>>> = vec![None; files.len()];
            for (file, result) in compiled {
                match result {
                    Ok(bytes) => bytecode[file] = Some(bytes),
                    Err(diagnostic) => analysis.diagnostics.push(diagnostic),
                }
            }
            fail_on_errors(&analysis)?;
            let mut report = Report {
                output: output.map(Path::to_path_buf),
                written: false,
                modules: analysis.discovered.modules.len(),
                files: files.len(),
                bytes: 0,
                warnings: Diagnostics::new(std::mem::take(&mut analysis.diagnostics), files),
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
    fn analyse(&self, templates: &[Template]) -> Result<Analysis, Error> {
        let discovered = discover::discover(&self.roots, templates)?;
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
        let (graph, graph_diagnostics) =
            graph::build_graph(&discovered.modules, &sites, &discovered.files, &self.externals);
        diagnostics.extend(graph_diagnostics);
        let entry = self.entry.as_deref().and_then(|name| {
            let found = discovered.modules.binary_search_by(|m| m.name.as_str().cmp(name)).ok();
            if found.is_none() {
                diagnostics.push(
                    Diagnostic::error("unknown-entry", format!("entry module `{name}` is not in any root"))
                        .with_note(format!("{} modules were found", discovered.modules.len())),
                );
            }
            found
        });
        let analysis = Analysis { discovered, graph, entry, diagnostics };
        fail_on_errors(&analysis)?;
        Ok(analysis)
    }
}

/// Compiles each file that provides a module, once, in parallel. Returns `(file, result)`.
fn compile_modules(analysis: &Analysis, strip: bool) -> Vec<(usize, Result<Vec<u8>, Diagnostic>)> {
    let files = &analysis.discovered.files;
    let mut used: Vec<usize> = analysis.discovered.modules.iter().map(|m| m.file).collect();
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
    let modules = analysis
        .discovered
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let file = &files[m.file];
            // Every module's file was compiled; the last module naming a file takes its bytes.
            let shared = analysis.discovered.modules[i + 1..].iter().any(|later| later.file == m.file);
            let bytes = if shared { bytecode[m.file].clone() } else { bytecode[m.file].take() };
            EmitModule {
                name: m.name.clone(),
                chunk_name: file.chunk_name(),
                path: file.display_path.clone(),
                bytes: bytes.unwrap_or_default(),
                deps: analysis.graph.dependencies(i),
            }
        })
        .collect();
    let externals = analysis.graph.externals_used.iter().cloned().collect();
    emit::bundle_bytes(luabundle_runtime::target::linked(), modules, analysis.entry, externals)
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
