//! The manifest (`luabundle.lock`): a sorted, diffable text listing of what a bundle holds,
//! one line per module: name, file, blake3 of the source, dependencies. Committed next to the
//! sources, it shows in review what a change does to the bundle, and `--locked` builds fail
//! when it would change.

use crate::analysis::requires::Timing;
use std::path::Path;

use crate::analysis::Analysis;
use crate::error::Error;

/// The manifest of the modules `analysis` bundles.
pub fn render(analysis: &Analysis) -> String {
    let modules = &analysis.discovered.modules;
    let files = &analysis.discovered.files;
    let mut out = String::from("# luabundle manifest: module, file, blake3 of the source, dependencies\n");
    for (i, module) in modules.iter().enumerate().filter(|(i, _)| analysis.graph.bundled[*i]) {
        let file = &files[module.file];
        let deps: Vec<String> = analysis
            .graph
            .dependencies(i)
            .iter()
            .map(|d| {
                let name = &modules[d.module].name;
                match (d.timing, d.optional) {
                    (Timing::Eager, false) => name.clone(),
                    (Timing::Eager, true) => format!("{name}?"),
                    (Timing::Deferred, false) => format!("{name}~"),
                    (Timing::Deferred, true) => format!("{name}~?"),
                }
            })
            .collect();
        let hash = blake3::Hash::from_bytes(file.content_hash).to_hex();
        out.push_str(&format!("{} {} {} [{}]\n", module.name, file.display_path, hash, deps.join(" ")));
    }
    out
}

/// With `--locked`: fails, before anything is written, when the manifest at `path` differs
/// from `new` (a missing one reads as empty).
///
/// # Errors
/// [`Error::ManifestChanged`] with the line diff.
pub(crate) fn check_unchanged(path: &Path, new: &str) -> Result<(), Error> {
    let old = crate::util::read_regular_text(path, crate::util::DATA_FILE_CAP).unwrap_or_default();
    if old != new {
        return Err(Error::ManifestChanged { path: path.to_path_buf(), diff: diff(&old, new) });
    }
    Ok(())
}

/// A line diff of two manifests: lines only in `old` start with `-`, only in `new` with `+`.
pub fn diff(old: &str, new: &str) -> String {
    let old_lines: std::collections::BTreeSet<&str> = old.lines().collect();
    let new_lines: std::collections::BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for line in old_lines.difference(&new_lines) {
        out.push_str(&format!("-{line}\n"));
    }
    for line in new_lines.difference(&old_lines) {
        out.push_str(&format!("+{line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_removed_and_added_lines() {
        assert_eq!(diff("a\nb\nc\n", "a\nc\nd\n"), "-b\n+d\n");
        assert_eq!(diff("same\n", "same\n"), "");
    }
}
