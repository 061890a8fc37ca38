//! `--depfile`: what a build read, in the Makefile syntax that `gcc -MD` and `rustc
//! --emit dep-info` write, so that make, ninja, Bazel and Buck2 rebuild the bundle exactly
//! when one of its inputs changes.
//!
//! The bundle is the target; every file the build read is a prerequisite: each source file
//! found under the roots (bundled or not: a new module changes what requires resolve to),
//! Luau's configuration files, rockspecs and rocks tree manifests, and the options and key
//! files. Each prerequisite also gets an
//! empty rule of its own (as `gcc -MP` writes), so that a deleted input makes the build run
//! again instead of failing.

use std::path::{Path, PathBuf};

use crate::analysis::Analysis;
use crate::plan::Options;

/// Every file the build read, sorted and without repeats.
pub(crate) fn inputs(options: &Options, analysis: &Analysis) -> Vec<PathBuf> {
    let files = analysis.discovered.files.iter().map(|f| f.disk_path.clone());
    #[cfg(feature = "luau")]
    let files = files.chain(analysis.discovered.luau_configs.iter().map(|c| c.file.clone()));
    let mut inputs: Vec<PathBuf> =
        files.chain(options.config_sources.iter().cloned()).chain(options.rock_files()).collect();
    inputs.sort();
    inputs.dedup();
    inputs
}

/// The dependency file of `target` built from `inputs`.
pub(crate) fn render(target: &Path, inputs: &[PathBuf]) -> String {
    let mut text = escape(target);
    text.push(':');
    for input in inputs {
        text.push_str(" \\\n  ");
        text.push_str(&escape(input));
    }
    text.push('\n');
    for input in inputs {
        text.push('\n');
        text.push_str(&escape(input));
        text.push_str(":\n");
    }
    text
}

/// A path as make reads it: spaces and `#` behind a backslash, `$` doubled.
fn escape(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            ' ' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped_for_make() {
        let text =
            render(Path::new("out dir/app.bundle"), &[PathBuf::from("src/a b.lua"), PathBuf::from("src/$x#.lua")]);
        assert_eq!(
            text,
            "out\\ dir/app.bundle: \\\n  src/a\\ b.lua \\\n  src/$$x\\#.lua\n\nsrc/a\\ b.lua:\n\nsrc/$$x\\#.lua:\n"
        );
    }
}
