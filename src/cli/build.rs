//! `luabundle build`, `luabundle check` and `luabundle graph`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use luabundle::config::{Config, ConfigFile, CONFIG_FILE_NAME};
use luabundle::{export, Diagnostics};

use super::{count, human_duration, human_size, progress};

/// Options shared by `build`, `check` and `graph`: what to read and how to resolve it.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// Source roots: DIR or PREFIX=DIR (module names under it start with PREFIX.). Default:
    /// the `roots` of luabundle.toml.
    #[arg(value_name = "ROOT")]
    roots: Vec<String>,
    /// Options file (default: luabundle.toml beside the first root, or in the current
    /// directory when no root is given). Flags override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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
    /// Module path templates, `;`-separated, tried in order like package.path
    /// [default: ?.lua;?/init.lua].
    #[arg(long, value_name = "TEMPLATES")]
    path: Option<String>,
    /// Directory of the compile cache [default: .luabundle-cache].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Parse and compile every file, without reading or writing the cache.
    #[arg(long)]
    no_cache: bool,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

/// `luabundle build` options.
#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The bundle file to write, replaced atomically [default: `output` of luabundle.toml].
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Strip debug info: smaller bundle, but tracebacks lose file names and lines.
    #[arg(long)]
    strip: bool,
    /// Print diagnostics as JSON, one object per line, on stdout.
    #[arg(long)]
    json: bool,
    /// Print only diagnostics: no summary line, no progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the wall time of each stage and the peak memory on stderr after the build.
    #[arg(long)]
    timings: bool,
    /// Also print how the require sites resolved and the require cycles that pass because
    /// one require is deferred.
    #[arg(long, short = 'v', conflicts_with = "quiet")]
    verbose: bool,
    /// Keep running and rebuild whenever a file under the roots changes.
    #[arg(long)]
    watch: bool,
    /// Write only this profile's modules (from luabundle.toml), with what they require.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// What to write: a bytecode bundle, a source bundle (loads on any flavour whose syntax
    /// accepts it), or one plain Lua file that stock interpreters run.
    #[arg(long, value_enum, default_value_t = BuildFormat::Bundle)]
    format: BuildFormat,
    /// Write the manifest (module, file, source hash, dependencies) to FILE, e.g. luabundle.lock.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Fail, writing nothing, if the manifest would change; print what would.
    #[arg(long, requires = "manifest")]
    locked: bool,
    /// Sign the bundle with this secret key (from `luabundle keygen`).
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Store each module's source beside its bytecode, for runtimes whose Lua cannot run it.
    #[arg(long)]
    embed_source: bool,
    /// With --format lua: embed bytecode for the one interpreter luabundle links instead of
    /// source.
    #[arg(long, requires = "format")]
    bytecode: bool,
}

/// Output formats of `luabundle build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BuildFormat {
    /// Bytecode bundle for the runtime.
    Bundle,
    /// Source bundle for the runtime.
    Source,
    /// One plain .lua file.
    Lua,
}

/// `luabundle check` options.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Also list the require cycles that pass because one require is deferred.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// List the files no require from the entry reaches, one per line on stdout.
    #[arg(long)]
    unused: bool,
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
    /// SVG picture, drawn by Graphviz `dot` (which must be installed).
    Svg,
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

/// The options file: `--config`, else luabundle.toml beside the first root, else in the
/// current directory when no root is given.
fn config_file(source: &SourceArgs) -> anyhow::Result<Option<ConfigFile>> {
    let path = match (&source.config, source.roots.first()) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(root)) => ConfigFile::beside(&luabundle::Root::parse(root).dir),
        (None, None) => Some(PathBuf::from(CONFIG_FILE_NAME)).filter(|p| p.is_file()),
    };
    Ok(path.map(|p| ConfigFile::load(&p)).transpose()?)
}

/// The flags of `source` as configuration values, so that each flag given replaces the
/// file's value (a list as a whole) through [`Config::overridden_by`].
fn flag_values(source: &SourceArgs) -> Config {
    let list = |values: &Vec<String>| (!values.is_empty()).then(|| values.clone());
    Config {
        roots: (!source.roots.is_empty()).then(|| source.roots.iter().map(|r| luabundle::Root::parse(r)).collect()),
        entry: source.entry.clone(),
        externals: list(&source.external),
        include: list(&source.include),
        exclude: list(&source.exclude),
        path: source.path.clone(),
        cache_dir: source.cache_dir.clone(),
        ..Config::default()
    }
}

/// The builder for these flags (and the command's own, `more`) over the options file, and
/// the values it was given.
fn builder(source: &SourceArgs, more: Config) -> anyhow::Result<(luabundle::Builder, Config)> {
    let file = config_file(source)?;
    let flags = more.overridden_by(flag_values(source));
    let config = match &file {
        Some(file) => file.resolved().overridden_by(flags),
        None => flags,
    };
    if config.roots.as_ref().is_none_or(Vec::is_empty) {
        anyhow::bail!("no source roots: pass ROOT... or set `roots` in {CONFIG_FILE_NAME}");
    }
    let mut builder = luabundle::Builder::new();
    builder.ignore_out_dir_env(true).config(&config).no_cache(source.no_cache);
    if let Some(file) = &file {
        builder.config_source(&file.path);
    }
    if let Some(jobs) = source.jobs {
        if jobs > luabundle::MAX_JOBS {
            eprintln!(
                "warning: -j {jobs} is more than the {} worker threads a build starts; using {}",
                luabundle::MAX_JOBS,
                luabundle::MAX_JOBS
            );
        }
        builder.jobs(jobs);
    }
    Ok((builder, config))
}

/// Prints diagnostics: rendered on stderr, or as JSON lines on stdout.
pub fn show(diagnostics: &Diagnostics, json: bool) {
    if json {
        print!("{}", diagnostics.to_json_lines());
    } else {
        eprint!("{}", diagnostics.render_styled(super::color()));
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
    let (builder, output) = configured(&args)?;
    if args.watch {
        // The options are read again when a configuration file changes.
        return super::watch::watch(builder, output, args.quiet, || configured(&args));
    }
    let result = match with_diagnostics(args.json, || builder.try_build())? {
        Ok(result) => result,
        Err(code) => return Ok(code),
    };
    show(&result.warnings, args.json);
    if !args.quiet {
        eprintln!("{}", summary(&result, &output));
    }
    if args.verbose {
        eprint!("{}", resolution_report(&result));
    }
    if args.timings {
        eprint!("{}", timings_table(&result));
    }
    Ok(0)
}

/// The `--timings` table: each stage's wall time and share, the total, and the peak memory.
fn timings_table(result: &luabundle::Output) -> String {
    let total = result.elapsed.as_secs_f64().max(f64::EPSILON);
    let mut out = String::from("stage          time   share\n");
    for (name, time) in result.timings.stages() {
        let ms = time.as_secs_f64() * 1000.0;
        out.push_str(&format!("{name:<12} {ms:>7.1} ms {:>5.1}%\n", 100.0 * time.as_secs_f64() / total));
    }
    out.push_str(&format!("{:<12} {:>7.1} ms\n", "total", total * 1000.0));
    if let Some(peak) = super::peak_memory() {
        out.push_str(&format!("peak memory  {:>7.1} MiB\n", peak as f64 / (1024.0 * 1024.0)));
    }
    out
}

/// How the require sites resolved and the cycles that pass (`check -v`, `build -v`).
fn resolution_report(result: &luabundle::Output) -> String {
    let c = result.site_counts;
    let mut out = format!(
        "require sites: {} ({} resolve to bundled modules, {} to the Lua standard library, {} to externals, \
         {} unresolved but optional, {} dynamic; {} names computed from the module's own name or constants)\n",
        c.total, c.bundled, c.standard, c.external, c.unresolved, c.dynamic, c.computed
    );
    if result.legal_cycles.is_empty() {
        out.push_str("no require cycles\n");
    }
    for cycle in &result.legal_cycles {
        out.push_str(&format!("cycle through a deferred require (allowed): {cycle}\n"));
    }
    for guarded in &result.guarded {
        out.push_str(&format!("guarded require: {guarded}\n"));
    }
    out
}

/// `bundled 9 modules from 9 files into app.bundle (4.7 KiB) in 3 ms (1 compiled, 8 cached)`.
pub fn summary(result: &luabundle::Output, output: &std::path::Path) -> String {
    let state = if result.written { "" } else { " (unchanged)" };
    let cached = result.files.saturating_sub(result.parsed);
    let work = if cached > 0 { format!(" ({} compiled, {cached} from cache)", result.compiled) } else { String::new() };
    format!(
        "bundled {} from {} into {} ({}){state} in {}{work}",
        count(result.modules, "module"),
        count(result.files, "file"),
        output.display(),
        human_size(result.bytes),
        human_duration(result.elapsed)
    )
}

pub fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let (builder, _) = builder(&args.source, Config::default())?;
    if args.unused {
        let analysis = match with_diagnostics(args.json, || builder.analyse())? {
            Ok(analysis) => analysis,
            Err(code) => return Ok(code),
        };
        if analysis.entry.is_none() {
            eprintln!("no entry module (--entry or `entry` in {CONFIG_FILE_NAME}): every file is bundled");
            return Ok(0);
        }
        let document = export::document(&analysis);
        let used: std::collections::BTreeSet<&str> =
            document.modules.iter().filter(|m| m.bundled).map(|m| m.path.as_str()).collect();
        let unused: std::collections::BTreeSet<&str> =
            document.modules.iter().map(|m| m.path.as_str()).filter(|p| !used.contains(p)).collect();
        for path in unused {
            println!("{path}");
        }
        return Ok(0);
    }
    let report = match with_diagnostics(args.json, || builder.check())? {
        Ok(report) => report,
        Err(code) => return Ok(code),
    };
    show(&report.warnings, args.json);
    if args.verbose {
        eprint!("{}", resolution_report(&report));
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
    let (builder, _) = builder(&args.source, Config::default())?;
    let analysis = match with_diagnostics(false, || builder.analyse())? {
        Ok(analysis) => analysis,
        Err(code) => return Ok(code),
    };
    eprint!("{}", analysis.warnings().render_styled(super::color()));
    let document = export::document(&analysis);
    let text = match args.format {
        GraphFormat::Dot => export::to_dot(&document),
        GraphFormat::Json => export::to_json(&document),
        GraphFormat::Mermaid => export::to_mermaid(&document),
        GraphFormat::Svg => render_svg(&export::to_dot(&document))?,
    };
    match &args.output {
        Some(path) => luabundle::internals::write_atomically(path, text.as_bytes()).map(drop)?,
        None => print!("{text}"),
    }
    Ok(0)
}

/// `luabundle why` options.
#[derive(Args, Debug)]
pub struct WhyArgs {
    /// The module to explain.
    #[arg(value_name = "MOD")]
    module: String,
    #[command(flatten)]
    source: SourceArgs,
}

/// Prints the shortest require chain from the entry to the module, each step with its file
/// and line, and every module that requires it directly.
pub fn why(args: WhyArgs) -> anyhow::Result<i32> {
    let (builder, _) = builder(&args.source, Config::default())?;
    let analysis = match with_diagnostics(false, || builder.analyse())? {
        Ok(analysis) => analysis,
        Err(code) => return Ok(code),
    };
    let document = export::document(&analysis);
    let Some(target) = document.modules.iter().find(|m| m.name == args.module) else {
        eprintln!("error: no module `{}` in the roots", args.module);
        if let Some(close) = luabundle::analysis::graph::closest_name(&args.module, &analysis.discovered.modules) {
            eprintln!("help: did you mean `{close}`?");
        }
        return Ok(1);
    };
    let Some(entry) = &document.entry else {
        eprintln!("error: `why` needs an entry module (--entry or `entry` in {CONFIG_FILE_NAME})");
        return Ok(2);
    };
    match export::chain(&document, entry, &target.name) {
        Some(chain) if chain.is_empty() => println!("`{entry}` is the entry module"),
        Some(chain) => {
            println!("`{}` is bundled because:", target.name);
            for edge in chain {
                println!("  `{}` requires `{}` ({}, {}:{})", edge.from, edge.to, edge.kind, edge.file, edge.line);
            }
        }
        None => println!("`{}` is not reached from `{entry}`, so it is not bundled", target.name),
    }
    let direct: Vec<String> = document
        .edges
        .iter()
        .filter(|e| e.to == target.name)
        .map(|e| format!("{} ({}:{})", e.from, e.file, e.line))
        .collect();
    if !direct.is_empty() {
        println!("required directly by: {}", direct.join(", "));
    }
    Ok(0)
}

/// Runs Graphviz `dot -Tsvg` on `dot`.
fn render_svg(dot: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let spawned = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("--format svg needs Graphviz's `dot` on PATH (e.g. apt-get install graphviz); --format dot writes its input")
        }
        Err(err) => return Err(err.into()),
    };
    child.stdin.take().expect("piped").write_all(dot.as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "dot failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8(output.stdout)?)
}

/// The build the arguments and the configuration file ask for, and its output path.
fn configured(args: &BuildArgs) -> anyhow::Result<(luabundle::Builder, PathBuf)> {
    let more = Config { output: args.output.clone(), strip: args.strip.then_some(true), ..Config::default() };
    let (mut builder, config) = builder(&args.source, more)?;
    let output = match config.output {
        Some(output) if output.as_os_str().is_empty() || output.to_str().is_some_and(|o| o.trim().is_empty()) => {
            anyhow::bail!("`output` in {CONFIG_FILE_NAME} is empty: name the bundle file (output = \"app.bundle\")")
        }
        Some(output) => output,
        None => anyhow::bail!("no output file: pass -o FILE or set `output` in {CONFIG_FILE_NAME}"),
    };
    if let Some(profile) = &args.profile {
        builder.only_profile(profile);
    }
    builder.embed_source(args.embed_source);
    if let Some(manifest) = &args.manifest {
        builder.manifest(manifest).locked(args.locked);
    }
    if let Some(key) = &args.sign {
        builder.signing_key(luabundle::sign::read_signing_key(key)?);
    }
    builder.format(match (args.format, args.bytecode) {
        (BuildFormat::Bundle, false) => luabundle::OutputFormat::Bundle,
        (BuildFormat::Source, false) => luabundle::OutputFormat::Source,
        (BuildFormat::Lua, false) => luabundle::OutputFormat::Lua,
        (BuildFormat::Lua, true) => luabundle::OutputFormat::LuaBytecode,
        (_, true) => anyhow::bail!("--bytecode goes with --format lua"),
    });
    if !args.quiet && !args.json {
        progress::attach(&mut builder);
    }
    Ok((builder, output))
}
