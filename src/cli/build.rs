//! `luabundle build`, `luabundle check` and `luabundle graph`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use luabundle::{export, Diagnostics};

use super::{count, human_duration, human_size};

/// Options shared by `build`, `check` and `graph`: what to read and how to resolve it.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// Source roots: DIR or PREFIX=DIR (module names under it start with PREFIX.).
    #[arg(required = true, value_name = "ROOT")]
    roots: Vec<String>,
    /// The entry module (e.g. app.main): only what it requires is bundled, and `run` starts it.
    #[arg(long, value_name = "MOD")]
    entry: Option<String>,
    /// A module the host program provides (C or Rust); `*` globs allowed. Repeatable.
    #[arg(long, value_name = "NAME")]
    external: Vec<String>,
    /// Bundle modules matching this name glob (e.g. 'plugins.*') even if no constant require
    /// names them; covers matching run-time requires. Repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Leave out files or directories: a name at any depth ('*_spec.lua', 'spec') or a path
    /// from the root ('test/fixtures/**'). Repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Module path templates, `;`-separated, tried in order like package.path.
    #[arg(long, value_name = "TEMPLATES", default_value = luabundle::discover::DEFAULT_TEMPLATES)]
    path: String,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

/// `luabundle build` options.
#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The bundle file to write (replaced atomically).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
    /// Strip debug info: smaller bundle, but tracebacks lose file names and lines.
    #[arg(long)]
    strip: bool,
    /// Print diagnostics as JSON, one object per line, on stdout.
    #[arg(long)]
    json: bool,
}

/// `luabundle check` options.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Also list the require cycles that pass because one require is deferred.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Print diagnostics as JSON, one object per line, on stdout.
    #[arg(long)]
    json: bool,
}

/// Output formats of `luabundle graph`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz (render with `dot -Tsvg`).
    Dot,
    /// JSON document (schema in docs/GRAPH.md).
    Json,
    /// Mermaid flowchart.
    Mermaid,
}

/// `luabundle graph` options.
#[derive(Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

fn builder(source: &SourceArgs) -> luabundle::Builder {
    let mut builder = luabundle::Builder::new();
    for root in &source.roots {
        builder.root(root.as_str());
    }
    if let Some(entry) = &source.entry {
        builder.entry(entry);
    }
    for external in &source.external {
        builder.external(external);
    }
    for include in &source.include {
        builder.include(include);
    }
    for exclude in &source.exclude {
        builder.exclude(exclude);
    }
    builder.templates(&source.path);
    if let Some(jobs) = source.jobs {
        builder.jobs(jobs);
    }
    builder
}

/// Prints diagnostics: rendered on stderr, or as JSON lines on stdout.
fn show(diagnostics: &Diagnostics, json: bool) {
    if json {
        print!("{}", diagnostics.to_json_lines());
    } else {
        eprint!("{}", diagnostics.render());
    }
}

/// Runs `step`; input errors are shown (as JSON if asked) and give exit code 1.
fn with_diagnostics<T>(
    json: bool,
    step: impl FnOnce() -> Result<T, luabundle::Error>,
) -> anyhow::Result<Result<T, i32>> {
    match step() {
        Ok(value) => Ok(Ok(value)),
        Err(luabundle::Error::Input(diagnostics)) => {
            show(&diagnostics, json);
            Ok(Err(1))
        }
        Err(other) => Err(other.into()),
    }
}

pub fn build(args: BuildArgs) -> anyhow::Result<i32> {
    let mut builder = builder(&args.source);
    builder.output(&args.output).strip(args.strip);
    let report = match with_diagnostics(args.json, || builder.try_build())? {
        Ok(report) => report,
        Err(code) => return Ok(code),
    };
    show(&report.warnings, args.json);
    let state = if report.written { "" } else { " (unchanged)" };
    eprintln!(
        "bundled {} from {} into {} ({}){state} in {}",
        count(report.modules, "module"),
        count(report.files, "file"),
        args.output.display(),
        human_size(report.bytes),
        human_duration(report.elapsed)
    );
    Ok(0)
}

pub fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let builder = builder(&args.source);
    let report = match with_diagnostics(args.json, || builder.check())? {
        Ok(report) => report,
        Err(code) => return Ok(code),
    };
    show(&report.warnings, args.json);
    if args.verbose {
        let c = report.site_counts;
        eprintln!(
            "require sites: {} ({} resolve to bundled modules, {} to the Lua standard library, {} to externals, \
             {} unresolved but optional, {} dynamic; {} names computed from the module's own name or constants)",
            c.total, c.bundled, c.standard, c.external, c.unresolved, c.dynamic, c.computed
        );
        if report.legal_cycles.is_empty() {
            eprintln!("no require cycles");
        }
        for cycle in &report.legal_cycles {
            eprintln!("cycle through a deferred require (allowed): {cycle}");
        }
    }
    let (_, warnings) = report.warnings.counts();
    eprintln!(
        "checked {} from {}: no errors, {}",
        count(report.modules, "module"),
        count(report.files, "file"),
        count(warnings, "warning")
    );
    Ok(0)
}

pub fn graph(args: GraphArgs) -> anyhow::Result<i32> {
    let builder = builder(&args.source);
    let analysis = match with_diagnostics(false, || builder.analyse())? {
        Ok(analysis) => analysis,
        Err(code) => return Ok(code),
    };
    eprint!("{}", analysis.warnings().render());
    let document = export::document(&analysis);
    let text = match args.format {
        GraphFormat::Dot => export::to_dot(&document),
        GraphFormat::Json => export::to_json(&document),
        GraphFormat::Mermaid => export::to_mermaid(&document),
    };
    match &args.output {
        Some(path) => luabundle::emit::write_atomically(path, text.as_bytes()).map(drop)?,
        None => print!("{text}"),
    }
    Ok(0)
}
