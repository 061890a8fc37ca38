//! `luabundle graph`: the require graph as JSON, Graphviz dot, Mermaid or SVG.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use luabundle::config::Config;
use luabundle::export;

use super::source_args::{builder, with_diagnostics, SourceArgs};

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
