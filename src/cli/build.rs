//! `luabundle build` and `luabundle check`.

use std::path::PathBuf;

use clap::Args;

use super::{human_duration, human_size};

/// Options shared by `build` and `check`: what to read and how to resolve it.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// Source roots: DIR or PREFIX=DIR (module names under it start with PREFIX.).
    #[arg(required = true, value_name = "ROOT")]
    roots: Vec<String>,
    /// The entry module, run by `luabundle run` (e.g. app.main).
    #[arg(long, value_name = "MOD")]
    entry: Option<String>,
    /// A module the host program provides (C or Rust); `*` globs allowed. Repeatable.
    #[arg(long, value_name = "NAME")]
    external: Vec<String>,
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
}

/// `luabundle check` options.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
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
    builder.templates(&source.path);
    if let Some(jobs) = source.jobs {
        builder.jobs(jobs);
    }
    builder
}

pub fn build(args: BuildArgs) -> anyhow::Result<i32> {
    let mut builder = builder(&args.source);
    builder.output(&args.output).strip(args.strip);
    let report = builder.try_build()?;
    eprint!("{}", report.warnings.render());
    let state = if report.written { "" } else { " (unchanged)" };
    eprintln!(
        "bundled {} modules from {} files into {} ({}){state} in {}",
        report.modules,
        report.files,
        args.output.display(),
        human_size(report.bytes),
        human_duration(report.elapsed)
    );
    Ok(0)
}

pub fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let report = builder(&args.source).check()?;
    eprint!("{}", report.warnings.render());
    let (_, warnings) = report.warnings.counts();
    eprintln!(
        "checked {} modules from {} files: no errors, {warnings} warning{}",
        report.modules,
        report.files,
        if warnings == 1 { "" } else { "s" }
    );
    Ok(0)
}
