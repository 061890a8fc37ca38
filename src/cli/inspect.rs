//! `luabundle inspect`: what a bundle holds, as text, JSON or an HTML report.

use std::path::PathBuf;

use clap::Args;
use luabundle_runtime::format::{Encoding, ModuleRecord};
use luabundle_runtime::{Bundle, DepKind};

use super::human_size;

/// `luabundle inspect` options.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// What to write: a listing, one JSON document (schema in docs/GRAPH.md), or a
    /// self-contained HTML page (summary, modules by size, dependency graph, profiles).
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    format: InspectFormat,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The forms of `luabundle inspect`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InspectFormat {
    /// The listing for people.
    Text,
    /// One JSON document.
    Json,
    /// A self-contained HTML page.
    Html,
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<i32> {
    let bundle = Bundle::open(&args.bundle)?;
    let format = if args.json { InspectFormat::Json } else { args.format };
    let text = match format {
        InspectFormat::Text => listing(&bundle, &args.bundle)?,
        InspectFormat::Json => format!("{}\n", serde_json::to_string_pretty(&json_listing(&bundle)?)?),
        InspectFormat::Html => super::report::html(&bundle, &args.bundle)?,
    };
    match &args.output {
        Some(path) => {
            luabundle::internals::write_atomically(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(0)
}

/// The listing as JSON: format, target, entry, externals, profiles, groups, and the modules
/// with path, kind, size, hash and dependencies.
fn json_listing(bundle: &Bundle) -> anyhow::Result<serde_json::Value> {
    let index = bundle.index()?;
    let header = bundle.header();
    let name = |m: u32| index.modules[m as usize].name.clone();
    let modules: Vec<serde_json::Value> = index
        .modules
        .iter()
        .map(|m| {
            let deps: Vec<serde_json::Value> = m
                .deps
                .iter()
                .map(|d| {
                                        serde_json::json!({ "module": name(d.module), "kind": d.kind.as_str(), "optional": d.optional })
                })
                .collect();
            serde_json::json!({
                "name": m.name,
                "path": m.path,
                "chunk_name": m.chunk_name,
                "kind": if m.kind == luabundle_runtime::BlobKind::Bytecode { "bytecode" } else { "source" },
                "bytes": m.blob.len,
                "compression": match m.encoding { Encoding::Plain => "none", Encoding::Zstd { .. } => "zstd" },
                "loaded_bytes": loaded_len(m),
                "blake3": luabundle_runtime::format::hex(&m.hash),
                "embedded_source": m.source.is_some(),
                "dependencies": deps,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "format": format!("{}.{}", header.major, header.minor),
        "file_len": header.file_len,
        "signed": header.flags & luabundle_runtime::format::FLAG_SIGNED != 0,
        "target": {
            "flavour": bundle.target().flavour,
            "release": bundle.target().release,
            "bytecode_header": luabundle_runtime::format::hex(&bundle.target().bytecode_header),
        },
        "entry": bundle.entry()?,
        "externals": index.externals,
        "profiles": index.profiles.iter().map(|p| serde_json::json!({
            "name": p.name, "members": p.members.iter().map(|&m| name(m)).collect::<Vec<_>>() })).collect::<Vec<_>>(),
        "groups": index.groups.iter().map(|g| serde_json::json!({ "name": g.name, "members": g.members })).collect::<Vec<_>>(),
        "modules": modules,
    }))
}

/// The human-readable listing: summary lines, then one line per module.
fn listing(bundle: &Bundle, path: &std::path::Path) -> anyhow::Result<String> {
    let index = bundle.index()?;
    let header = bundle.header();
    let mut out = String::new();
    out.push_str(&format!(
        "bundle:    {} ({}, format {}.{})\n",
        printable(&path.display().to_string()),
        human_size(header.file_len),
        header.major,
        header.minor
    ));
    out.push_str(&format!("target:    {}\n", printable(&bundle.target().to_string())));
    out.push_str(&format!("entry:     {}\n", printable(bundle.entry()?.unwrap_or("(none)"))));
    let flagged = header.flags & luabundle_runtime::format::FLAG_SIGNED != 0;
    let region = header.signature.len == luabundle_runtime::format::SIGNATURE_LEN as u64;
    let signed = match (flagged, region) {
        (true, true) => "yes (check with verify --key)",
        (true, false) => "no: flagged as signed, but the signature region is missing or malformed",
        (false, true) => "no: a signature region without the signed flag",
        (false, false) => "no",
    };
    out.push_str(&format!("signed:    {signed}\n"));
    let externals =
        if index.externals.is_empty() { "(none)".to_string() } else { printable(&index.externals.join(", ")) };
    out.push_str(&format!("externals: {externals}\n"));
    let compressed: Vec<_> = index.modules.iter().filter(|m| m.encoding != Encoding::Plain).collect();
    if !compressed.is_empty() {
        let stored: u64 = compressed.iter().map(|m| m.blob.len).sum();
        let loaded: u64 = compressed.iter().map(|m| loaded_len(m)).sum();
        out.push_str(&format!(
            "zstd:      {} of {} modules, {} stored for {} loaded ({:.0}%)\n",
            compressed.len(),
            index.modules.len(),
            human_size(stored),
            human_size(loaded),
            100.0 * stored as f64 / loaded.max(1) as f64
        ));
    }
    for profile in &index.profiles {
        let members: Vec<&str> = profile.members.iter().map(|&m| index.modules[m as usize].name.as_str()).collect();
        out.push_str(&format!("profile:   {} ({})\n", printable(&profile.name), printable(&members.join(", "))));
    }
    for group in &index.groups {
        out.push_str(&format!("group:     {} ({})\n", printable(&group.name), printable(&group.members.join(", "))));
    }
    out.push_str(&module_table(index));
    Ok(out)
}

/// The module table of a listing: name, size, path and dependencies, one line each.
fn module_table(index: &luabundle_runtime::format::Index) -> String {
    let mut out = String::new();
    out.push_str(&format!("modules:   {}\n", index.modules.len()));
    let names: Vec<String> = index.modules.iter().map(|m| printable(&m.name)).collect();
    let paths: Vec<String> = index.modules.iter().map(|m| printable(&m.path)).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(6);
    let path_width = paths.iter().map(String::len).max().unwrap_or(0).max(4);
    out.push_str(&format!("  {:width$}  {:>9}  {:path_width$}  DEPENDENCIES\n", "MODULE", "SIZE", "PATH"));
    for (i, m) in index.modules.iter().enumerate() {
        let deps: Vec<String> = m
            .deps
            .iter()
            .map(|d| {
                let name = &names[d.module as usize];
                match (d.kind, d.optional) {
                    (DepKind::Eager, false) => name.clone(),
                    (DepKind::Eager, true) => format!("{name} (optional)"),
                    (kind, false) => format!("{name} ({})", kind.as_str()),
                    (kind, true) => format!("{name} ({}, optional)", kind.as_str()),
                }
            })
            .collect();
        let deps = if deps.is_empty() { "-".to_string() } else { deps.join(", ") };
        out.push_str(&format!(
            "  {:width$}  {:>9}  {:path_width$}  {deps}\n",
            names[i],
            human_size(m.blob.len),
            paths[i]
        ));
    }
    out
}

/// How many bytes module `m` loads: its stored bytes, or what they decompress to.
fn loaded_len(m: &ModuleRecord) -> u64 {
    match m.encoding {
        Encoding::Plain => m.blob.len,
        Encoding::Zstd { len } => u64::from(len),
    }
}

/// Text from a bundle made safe for a terminal: control characters (which could move the
/// cursor or retitle the window) are shown escaped.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}
