//! `luabundle build`: the bundle (or script) written, with a summary, timings and how the
//! requires resolved.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use luabundle::config::{Config, CONFIG_FILE_NAME};
use luabundle::Compression;

use super::source_args::{builder, show, with_diagnostics, SourceArgs};
use super::{count, human_duration, human_size, progress};

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
    /// Store each module compressed (decompressed on its first require only) [default:
    /// `compress` of luabundle.toml, else none].
    #[arg(long, value_enum, value_name = "HOW")]
    compress: Option<CompressArg>,
    /// The zstd level, 1 (fastest build) to 22 (smallest bundle) [default: 19].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    compress_level: Option<i32>,
    /// Also write FILE, a standalone executable: this luabundle with the bundle appended,
    /// which runs the entry module with its arguments (`luabundle run BUNDLE -- ARGS`).
    #[arg(long, value_name = "FILE")]
    exe: Option<PathBuf>,
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
    /// Write FILE: the bundle and every file the build read, in Makefile syntax (as `gcc
    /// -MD`), for make, ninja, Bazel or Buck2.
    #[arg(long, value_name = "FILE")]
    depfile: Option<PathBuf>,
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

/// `--compress` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    /// Modules stored as compiled.
    None,
    /// Each module compressed with zstd on its own.
    Zstd,
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
    if let Some(exe) = &args.exe {
        if luabundle_runtime::Bundle::open(&output)?.entry()?.is_none() {
            anyhow::bail!("--exe needs an entry module for the executable to run: pass --entry MOD");
        }
        super::exe::write(&output, exe)?;
        if !args.quiet {
            eprintln!("wrote {}, which runs the bundle's entry module", exe.display());
        }
    }
    if args.verbose {
        eprint!("{}", resolution_report(&result));
    }
    if args.timings {
        eprint!("{}", timings_table(&result));
    }
    Ok(0)
}

/// The build the arguments and the configuration file ask for, and its output path.
fn configured(args: &BuildArgs) -> anyhow::Result<(luabundle::Builder, PathBuf)> {
    let more = Config {
        output: args.output.clone(),
        strip: args.strip.then_some(true),
        compress: args.compress.map(|how| match how {
            CompressArg::None => Compression::None,
            CompressArg::Zstd => Compression::Zstd,
        }),
        compress_level: args.compress_level,
        ..Config::default()
    };
    let (mut builder, config) = builder(&args.source, more)?;
    if let (Some(level), None | Some(Compression::None)) = (args.compress_level, config.compress) {
        anyhow::bail!("--compress-level {level} needs --compress zstd (or compress = \"zstd\" in {CONFIG_FILE_NAME})");
    }
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
    if let Some(depfile) = &args.depfile {
        builder.depfile(depfile);
    }
    if let Some(key) = &args.sign {
        // The key is an input (a depfile lists it) and never an output.
        builder.config_source(key);
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
pub(super) fn resolution_report(result: &luabundle::Output) -> String {
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

/// `bundled 9 modules from 9 files into app.bundle (4.7 KiB) in 3 ms (1 compiled, 8 from
/// cache, 8 copied from the previous bundle)`.
pub fn summary(result: &luabundle::Output, output: &std::path::Path) -> String {
    let state = if result.written { "" } else { " (unchanged)" };
    // A file compiled again because its cached bytecode was damaged did not come from the cache.
    let cached = result.files.saturating_sub(result.compiled);
    let copied = match result.copied {
        0 => String::new(),
        n => format!(", {n} copied from the previous bundle"),
    };
    let work = match cached {
        0 => String::new(),
        _ => format!(" ({} compiled, {cached} from cache{copied})", result.compiled),
    };
    format!(
        "bundled {} from {} into {} ({}){state} in {}{work}",
        count(result.modules, "module"),
        count(result.files, "file"),
        output.display(),
        human_size(result.bytes),
        human_duration(result.elapsed)
    )
}
