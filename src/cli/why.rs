//! `luabundle why`: the chain of requires that brings a module into the bundle.

use clap::Args;
use luabundle::config::{Config, CONFIG_FILE_NAME};
use luabundle::export;

use super::source_args::{builder, with_diagnostics, SourceArgs};

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
