//! What a build writes, assembled from the analysis and the bytecode: the bundle's contents
//! (laid out and signed by the runtime crate's format writer) or the plain-Lua script.

use std::fs::File;

use luabundle_runtime::format::{
    BlobKind, BundleContents, Dependency, Encoding, Group, KnownBlob, Layout, ModuleInput, Profile, Target,
};

use crate::analysis::compile::{Blob, BlobBytes};
use crate::analysis::graph;
use crate::analysis::Analysis;
use crate::error::Error;
use crate::input::source;
use crate::output::lua_script;
use crate::plan::{Options, OutputFormat};

/// What the bundle holds: the bundled modules (their bytecode moved in, not copied), the
/// entry, externals, profiles and groups. Also returns, per module, what is already known of
/// its bytes: their hash, and for bytes left in the bundle being replaced (`previous`), where
/// they are in it.
pub(crate) fn bundle_contents<'p>(
    options: &Options,
    analysis: &Analysis,
    mut bytecode: Vec<Option<Blob>>,
    previous: Option<&'p File>,
) -> (BundleContents, Vec<Option<KnownBlob<'p>>>) {
    let modules = &analysis.discovered.modules;
    let bundled = &analysis.graph.bundled;
    let position = bundle_positions(bundled);
    let mut remaining_names = vec![0usize; analysis.discovered.files.len()];
    for (m, _) in modules.iter().zip(bundled).filter(|(_, b)| **b) {
        remaining_names[m.file] += 1;
    }
    let mut inputs = Vec::new();
    let mut known = Vec::new();
    let mut files = Vec::new();
    for (i, m) in modules.iter().enumerate().filter(|(i, _)| bundled[*i]) {
        files.push(m.file);
        // A file that provides two names is compiled once; the last name takes its bytes.
        remaining_names[m.file] -= 1;
        let blob = match options.format {
            OutputFormat::Source => None,
            _ if remaining_names[m.file] > 0 => bytecode[m.file].clone(),
            _ => bytecode[m.file].take(),
        };
        known.push(blob.as_ref().map(|b| match (&b.bytes, previous) {
            (BlobBytes::InPrevious(span), Some(file)) => KnownBlob::InFile { file, span: *span, hash: b.hash },
            _ => KnownBlob::Hash(b.hash),
        }));
        inputs.push(module_input(options, analysis, i, blob, &position));
    }
    let profiles = analysis
        .profiles
        .iter()
        .map(|(name, members)| Profile {
            name: name.clone(),
            members: members.iter().map(|&m| position[m] as u32).collect(),
        })
        .collect();
    let mut contents = BundleContents {
        target: target(options.format),
        modules: inputs,
        entry: analysis.entry.map(|e| position[e] as u32),
        externals: analysis.graph.externals_used.iter().cloned().collect(),
        profiles,
        groups: options
            .groups
            .iter()
            .map(|(name, members)| Group { name: name.clone(), members: members.clone() })
            .collect(),
    };
    #[cfg(feature = "luau")]
    if analysis.luau_paths {
        crate::output::luau_records::add(analysis, &mut contents, &mut known, &files);
    }
    #[cfg(not(feature = "luau"))]
    let _ = (&mut contents, files);
    (contents, known)
}

/// Per module: its position among the bundled modules (still sorted by name), `usize::MAX`
/// for the others.
fn bundle_positions(bundled: &[bool]) -> Vec<usize> {
    let mut position = vec![usize::MAX; bundled.len()];
    for (next, i) in (0..bundled.len()).filter(|&i| bundled[i]).enumerate() {
        position[i] = next;
    }
    position
}

/// Module `i` as the bundle stores it: its bytecode (or source), the source beside it with
/// `--embed-source`, and its dependencies on other bundled modules.
fn module_input(
    options: &Options,
    analysis: &Analysis,
    i: usize,
    blob: Option<Blob>,
    position: &[usize],
) -> ModuleInput {
    let m = &analysis.discovered.modules[i];
    let file = &analysis.discovered.files[m.file];
    // Stored as written, so that `extract` gives the file back; the runtime makes a shebang
    // line loadable when it loads it.
    let source_text = || file.bytes().to_vec();
    let (kind, bytes, encoding) = match (options.format, blob) {
        (OutputFormat::Source, _) => {
            let (text, encoding) = source_blob(source_text(), options.zstd_level());
            (BlobKind::Source, text, encoding)
        }
        // Bytes left in the previous bundle are copied from there (see `bundle_contents`).
        (_, Some(Blob { bytes: BlobBytes::InMemory(bytes), encoding, .. })) => (BlobKind::Bytecode, bytes, encoding),
        (_, Some(Blob { bytes: BlobBytes::InPrevious(_), encoding, .. })) => (BlobKind::Bytecode, Vec::new(), encoding),
        (_, None) => (BlobKind::Bytecode, Vec::new(), Encoding::Plain),
    };
    let deps = analysis
        .graph
        .dependencies(i)
        .into_iter()
        .filter(|d| analysis.graph.bundled[d.module])
        .map(|d| dependency(&d, position[d.module]))
        .collect();
    ModuleInput {
        name: m.name.clone(),
        chunk_name: file.chunk_name(),
        path: file.display_path.clone(),
        kind,
        bytes,
        encoding,
        source: (options.embed_source && options.format == OutputFormat::Bundle).then(source_text),
        deps,
    }
}

/// The text of a source bundle's module as it is stored: compressed with zstd at `level`
/// when that is smaller (the text fits the format's limit: discovery caps file sizes).
fn source_blob(text: Vec<u8>, level: Option<i32>) -> (Vec<u8>, Encoding) {
    match level {
        Some(level) => luabundle_runtime::format::compress(text, level).expect("within the format's limits"),
        None => (text, Encoding::Plain),
    }
}

/// A dependency as the bundle stores it, `module` its position in the bundle.
fn dependency(dep: &graph::Dependency, module: usize) -> Dependency {
    Dependency { module: module as u32, kind: dep.timing.dep_kind(), optional: dep.optional }
}

/// The target the bundle is for: the linked VM, or any VM for a source bundle.
fn target(format: OutputFormat) -> Target {
    match format {
        OutputFormat::Source => Target {
            flavour: luabundle_runtime::target::SOURCE_FLAVOUR.to_string(),
            release: format!("source for {}", crate::flavour::NAME),
            bytecode_header: Vec::new(),
        },
        _ => luabundle_runtime::target::linked().clone(),
    }
}

/// The bundle laid out for writing, signed when the options hold a key.
pub(crate) fn bundle_layout<'a>(
    options: &Options,
    contents: &'a BundleContents,
    known: &[Option<KnownBlob<'a>>],
) -> Result<Layout<'a>, Error> {
    #[cfg(feature = "sign")]
    let signer = options.signing_key.as_ref().map(|key| move |root: &[u8; 32]| crate::sign::sign(key, root));
    #[cfg(not(feature = "sign"))]
    let signer = {
        let _ = options;
        None::<fn(&[u8; 32]) -> [u8; luabundle_runtime::format::SIGNATURE_LEN]>
    };
    Ok(Layout::with_known(contents, known, signer)?)
}

/// The plain-Lua script of the bundled modules (sources, or bytecode for `LuaBytecode`).
pub(crate) fn lua_script(options: &Options, analysis: &Analysis, bytecode: Vec<Option<Blob>>) -> String {
    let files = &analysis.discovered.files;
    let as_bytecode = options.format == OutputFormat::LuaBytecode;
    let module = |i: usize| {
        let m = &analysis.discovered.modules[i];
        let file = &files[m.file];
        let code = match as_bytecode {
            // Plain-Lua output never has a previous bundle, so its bytecode is all in memory.
            true => bytecode[m.file].as_ref().and_then(Blob::in_memory).map(<[u8]>::to_vec).unwrap_or_default(),
            false => source::prepare_bytes(file.bytes()).into_owned(),
        };
        lua_script::ScriptModule {
            name: m.name.clone(),
            chunk_name: file.chunk_name(),
            path: file.display_path.clone(),
            code,
        }
    };
    let modules: Vec<_> =
        (0..analysis.discovered.modules.len()).filter(|&i| analysis.graph.bundled[i]).map(module).collect();
    let entry = analysis.entry.map(module);
    lua_script::script(&modules, entry.as_ref(), as_bytecode)
}
