//! `luabundle check`: everything a build checks, nothing written.

use clap::Args;
use luabundle::config::{Config, CONFIG_FILE_NAME};
use luabundle::export;

use super::build::resolution_report;
use super::count;
use super::source_args::{builder, show, with_diagnostics, SourceArgs};

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
