//! The README's layout section names every source file of the crates (the build tool, the
//! runtime, the Lua module), and only files that exist: the tree can be read from it.

use std::collections::BTreeSet;
use std::path::Path;

/// The files the layout block lists, as paths from the repository: each line is one entry,
/// indented two spaces per level under the folder (ending in `/`) above it.
fn listed(readme: &str) -> BTreeSet<String> {
    let section = &readme[readme.find("## Layout").expect("a layout section")..];
    let block = section.split("```").nth(1).expect("a code block in the layout section");
    let mut folders: Vec<(usize, String)> = Vec::new();
    let mut files = BTreeSet::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let name = line.split_whitespace().next().unwrap_or_default();
        folders.retain(|(depth, _)| *depth < indent);
        let parent: String = folders.iter().map(|(_, f)| f.as_str()).collect();
        if name.ends_with('/') {
            folders.push((indent, name.to_string()));
        } else {
            files.insert(format!("{parent}{name}"));
        }
    }
    files
}

/// The source files of both crates: Rust, and the Lua they include.
fn in_tree(root: &Path) -> BTreeSet<String> {
    ["src", "runtime/src", "lua-module/src", "lua-module/tests"]
        .iter()
        .flat_map(|dir| walkdir::WalkDir::new(root.join(dir)))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs" || x == "lua"))
        .map(|e| e.path().strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"))
        .collect()
}

#[test]
fn the_readme_layout_names_every_source_file_and_no_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let listed = listed(&readme);
    let present = in_tree(root);
    let missing: Vec<&String> = present.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&present).collect();
    assert!(missing.is_empty(), "files the README's layout does not name: {missing:?}");
    assert!(stale.is_empty(), "files the README's layout names that do not exist: {stale:?}");
}
