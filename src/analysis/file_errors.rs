//! Which errors in the files fail the build: Lua's refusal of a bundled file does (one
//! report per file, the parser's when it has one), an error in a file the bundle leaves out
//! becomes a warning.

use crate::analysis::graph::ModuleGraph;
use crate::analysis::FileBytecode;
use crate::diagnostic::Diagnostic;
use crate::input::discover::Discovered;

/// Lua's refusal of each bundled file, reported with the analysis so that one run shows
/// every error: a missing module does not hide a file that does not compile. A file whose
/// syntax errors are already reported (the parser's, more precise) gets no second one.
pub(crate) fn refusals_of_bundled_files(
    discovered: &Discovered,
    graph: &ModuleGraph,
    bytecode: &[FileBytecode],
    reported: &[Diagnostic],
) -> Vec<Diagnostic> {
    let has_error =
        |file: usize| reported.iter().any(|d| d.is_error() && d.labels.first().is_some_and(|l| l.file == file));
    let mut files: Vec<usize> =
        discovered.modules.iter().zip(&graph.bundled).filter(|(_, bundled)| **bundled).map(|(m, _)| m.file).collect();
    files.sort_unstable();
    files.dedup();
    files
        .into_iter()
        .filter_map(|file| match bytecode.get(file) {
            Some(FileBytecode::Refused(diagnostic)) if !has_error(file) => Some(diagnostic.clone()),
            _ => None,
        })
        .collect()
}

/// Errors in files that the bundle leaves out (nothing bundled requires them) become one
/// warning per file: Lua never loads such a file, so the program runs whatever it holds
/// (documentation stubs that are not Lua). So do errors in files whose modules load only
/// through optional or run-time requires (`--include` globs that take in a file written for
/// another Lua version): such a file is left out, and a require of it fails at run time, as
/// it fails from the sources.
pub(crate) fn left_out_files_are_not_errors(
    errors: Vec<Diagnostic>,
    discovered: &Discovered,
    bytecode: &[FileBytecode],
    graph: &mut ModuleGraph,
) -> Vec<Diagnostic> {
    // Per file: bundled at all, and bundled for certain. A file that Lua compiles (only the
    // parser of the analysis fails on it) stays in and its errors stay errors.
    let mut in_bundle = vec![(false, false); discovered.files.len()];
    for (i, module) in discovered.modules.iter().enumerate().filter(|(i, _)| graph.bundled[*i]) {
        let lua_refuses = matches!(bytecode.get(module.file), Some(FileBytecode::Refused(_)));
        let slot = &mut in_bundle[module.file];
        slot.0 = true;
        slot.1 |= !lua_refuses || !graph.maybe_loaded.get(i).copied().unwrap_or(false);
    }
    let mut kept = Vec::new();
    let mut left_out: std::collections::BTreeMap<usize, (Diagnostic, usize)> = Default::default();
    for d in errors {
        let file = d.labels.first().map(|l| l.file);
        match file.filter(|&f| d.is_error() && !in_bundle.get(f).is_none_or(|&(_, certain)| certain)) {
            Some(file) => left_out.entry(file).or_insert((d, 0)).1 += 1,
            None => kept.push(d),
        }
    }
    for (file, (mut d, count)) in left_out {
        d.severity = crate::diagnostic::Severity::Warning;
        if count > 1 {
            d.notes.push(format!("and {} more error{} in this file", count - 1, if count > 2 { "s" } else { "" }));
        }
        if in_bundle[file].0 {
            for (i, module) in discovered.modules.iter().enumerate().filter(|(_, m)| m.file == file) {
                if graph.bundled[i] {
                    graph.bundled[i] = false;
                    d.notes.push(format!(
                        "`{}` loads only through optional or run-time requires: it is left out of the bundle, and a require of it fails as from the sources",
                        module.name
                    ));
                }
            }
        } else {
            d.notes.push(
                "nothing bundled requires this file: it is left out of the bundle, and Lua never loads it".into(),
            );
        }
        kept.push(d);
    }
    kept
}
