//! The records a Luau bundle adds for path requires: every bundled file a second time under
//! its path in the tree of module paths (`./src/util.luau`: the same bytes, stored once), and
//! every configuration file the build read (`./src/.luaurc`, as source), so that Luau's
//! navigator finds at run time exactly what it found at build time. Profiles make the path
//! records of their members and every configuration file visible.

use std::collections::{BTreeSet, HashMap};

use luabundle_runtime::format::{BlobKind, BundleContents, KnownBlob, ModuleInput};

use crate::analysis::luau_paths::tree_path;
use crate::analysis::Analysis;
use crate::input::source::FileId;

/// Adds the path and configuration records to `contents` (whose modules come from the files
/// `files[i]`), keeping the modules sorted by name and `known` beside them.
pub(crate) fn add<'p>(
    analysis: &Analysis,
    contents: &mut BundleContents,
    known: &mut Vec<Option<KnownBlob<'p>>>,
    files: &[FileId],
) {
    let old = std::mem::take(&mut contents.modules);
    let old_known = std::mem::take(known);
    let dotted = old.len();
    let mut entries: Vec<(ModuleInput, Option<KnownBlob<'p>>)> = Vec::with_capacity(dotted * 2);
    // Per dotted module, the position of its file's path record among `entries`.
    let mut path_record: HashMap<FileId, usize> = HashMap::new();
    let mut extra = Vec::new();
    for (i, &file) in files.iter().enumerate() {
        if path_record.contains_key(&file) {
            continue;
        }
        path_record.insert(file, dotted + extra.len());
        let mut input = old[i].clone();
        input.name = tree_path(&analysis.discovered.files[file].display_path);
        extra.push((input, old_known[i]));
    }
    let configs_from = dotted + extra.len();
    for config in &analysis.discovered.luau_configs {
        let display = config.tree_path.strip_prefix("./").unwrap_or(&config.tree_path).to_string();
        let input = ModuleInput {
            name: config.tree_path.clone(),
            chunk_name: format!("@{display}"),
            path: display,
            kind: BlobKind::Source,
            bytes: config.bytes.clone(),
            encoding: luabundle_runtime::format::Encoding::Plain,
            source: None,
            deps: Vec::new(),
        };
        extra.push((input, None));
    }
    entries.extend(old.into_iter().zip(old_known));
    entries.extend(extra);
    let count = entries.len();
    // Sorted by name, as the index wants; every position that refers to a module moves.
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by(|&a, &b| entries[a].0.name.cmp(&entries[b].0.name));
    let mut moved = vec![0u32; count];
    for (new, &old) in order.iter().enumerate() {
        moved[old] = new as u32;
    }
    let mut slots: Vec<Option<(ModuleInput, Option<KnownBlob<'p>>)>> = entries.into_iter().map(Some).collect();
    for &old in &order {
        let (mut input, blob) = slots[old].take().expect("each position once");
        input.deps.iter_mut().for_each(|dep| dep.module = moved[dep.module as usize]);
        contents.modules.push(input);
        known.push(blob);
    }
    contents.entry = contents.entry.map(|e| moved[e as usize]);
    for profile in &mut contents.profiles {
        let mut members: BTreeSet<u32> = BTreeSet::new();
        for &member in &profile.members {
            members.insert(moved[member as usize]);
            members.insert(moved[path_record[&files[member as usize]]]);
        }
        members.extend((configs_from..count).map(|c| moved[c]));
        profile.members = members.into_iter().collect();
    }
}
