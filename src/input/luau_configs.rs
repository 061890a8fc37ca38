//! Luau's configuration files (`.luaurc`, `.config.luau`) that path requires read for their
//! aliases: every one in the directories under the roots, and in each root's ancestors up to
//! the file system's root, as Luau looks for them up the tree. Each is known by its path in
//! the tree of module paths (`./src/.luaurc`, relative to the directory holding the root, as
//! the modules' chunk names are), and bundled so that run-time requires read the same ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::GlobSet;
use luabundle_runtime::luau_paths::CONFIG_FILES;
use walkdir::WalkDir;

use crate::diagnostic::{Code, Diagnostic};
use crate::input::discover::Root;

/// Larger configuration files are refused (Luau's are a few hundred bytes).
const MAX_CONFIG_LEN: u64 = 1 << 20;

/// One configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// Its path in the tree of module paths, normalised: `./src/.luaurc`, `../.luaurc`.
    pub tree_path: String,
    /// Where it is on disk.
    pub file: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Every configuration file under and above `roots`, by tree path (the first root's wins
/// where two roots share a directory), and the problems found: unreadable files, and both
/// files in one directory.
pub fn find(roots: &[Root], excluded: &GlobSet) -> (Vec<ConfigFile>, Vec<Diagnostic>) {
    let mut found: BTreeMap<String, ConfigFile> = BTreeMap::new();
    let mut diagnostics = Vec::new();
    for root in roots {
        let Ok(dir) = std::fs::canonicalize(&root.dir) else { continue };
        let label = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Under the root: directories Lua's search enters (not hidden, not excluded).
        let walker = WalkDir::new(&dir).sort_by_file_name().into_iter().filter_entry(|e| {
            let hidden_dir = e.file_type().is_dir() && e.file_name().to_string_lossy().starts_with('.');
            let excluded = e.path().strip_prefix(&dir).is_ok_and(|relative| excluded.is_match(relative));
            e.depth() == 0 || !(hidden_dir || excluded)
        });
        for entry in walker.filter_map(Result::ok).filter(|e| e.file_type().is_dir()) {
            let Ok(relative) = entry.path().strip_prefix(&dir) else { continue };
            let relative = relative.to_string_lossy().replace('\\', "/");
            let tree_dir = luabundle_runtime::luau_paths::join(&format!("./{label}"), &relative);
            read_configs(entry.path(), &tree_dir, &mut found, &mut diagnostics);
        }
        // Above it: the directory holding the root is the tree's `.`, its parent `..`.
        let mut tree_dir = ".".to_string();
        let mut above = dir.parent();
        while let Some(ancestor) = above {
            read_configs(ancestor, &tree_dir, &mut found, &mut diagnostics);
            tree_dir = if tree_dir == "." { "..".to_string() } else { format!("{tree_dir}/..") };
            above = ancestor.parent();
        }
    }
    (found.into_values().collect(), diagnostics)
}

/// The configuration files of the directory `dir`, at `tree_dir` in the tree.
fn read_configs(
    dir: &Path,
    tree_dir: &str,
    found: &mut BTreeMap<String, ConfigFile>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let present: Vec<PathBuf> = CONFIG_FILES.iter().map(|name| dir.join(name)).filter(|p| p.is_file()).collect();
    if present.len() > 1 {
        diagnostics.push(
            Diagnostic::error(Code::LuauConfig, format!("{} holds both .luaurc and .config.luau", dir.display()))
                .with_note("Luau reads one configuration file per directory; keep one of them"),
        );
    }
    for file in present {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tree_path = luabundle_runtime::luau_paths::join(tree_dir, &name);
        if found.contains_key(&tree_path) {
            continue;
        }
        let read = crate::util::read_regular(&file, MAX_CONFIG_LEN);
        match read {
            Ok(bytes) => {
                found.insert(tree_path.clone(), ConfigFile { tree_path, file, bytes });
            }
            Err(err) => diagnostics.push(Diagnostic::error(
                Code::LuauConfig,
                format!("cannot read the Luau configuration file {}: {err}", file.display()),
            )),
        }
    }
}
