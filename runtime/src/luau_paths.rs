//! Luau's require-by-string (`./x`, `../x`, `@alias/x`, `@self/x`) over a tree of module
//! paths that need not be the disk: the records of a bundle at run time, the files a build
//! discovered at build time.
//!
//! Luau's own navigator parses the path, reads the configuration files (`.luaurc`,
//! `.config.luau`) and follows aliases; mlua hands its questions to a [`mlua::Require`].
//! [`TreeRequirer`] answers them about a [`ModuleTree`] exactly as mlua's `FsRequirer`
//! answers them about the disk (the same candidate files, the same ambiguities, directories
//! without `init` as intermediate steps), so one require finds the same module in the
//! sources and in their bundle.
//!
//! Paths are `/`-separated and normalised: `./a/b` for a path relative to the tree's base,
//! `../a` above it, `/a` absolute.

use std::sync::{Arc, Mutex};

use mlua::luau::{NavigateError, Require};
use mlua::{Function, Lua};

/// The extensions a module file has, in the order they are tried.
pub const EXTENSIONS: [&str; 2] = ["luau", "lua"];

/// The configuration files a directory may hold, in the order they are read.
pub const CONFIG_FILES: [&str; 2] = [".luaurc", ".config.luau"];

/// A tree of module files and configuration files, as [`TreeRequirer`] asks about it.
pub trait ModuleTree {
    /// Whether `path` (normalised) is a file of the tree.
    fn is_file(&self, path: &str) -> bool;
    /// Whether `path` (normalised) is a directory of the tree.
    fn is_dir(&self, path: &str) -> bool;
    /// The bytes of a file of the tree that is not a module (a configuration file).
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// A function that runs the module in file `path` and returns its value.
    ///
    /// # Errors
    /// What loading it reports.
    fn load(&self, lua: &Lua, path: &str) -> mlua::Result<Function>;
}

/// `path` normalised: `.` and empty components dropped, `..` applied where it can be.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `..` of the root is the root.
                _ if absolute => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (absolute, parts.first()) {
        (true, _) => format!("/{joined}"),
        (false, Some(&"..")) => joined,
        (false, None) => ".".to_string(),
        (false, Some(_)) => format!("./{joined}"),
    }
}

/// The directory `path` is in; `None` above the root of an absolute path.
pub fn parent(path: &str) -> Option<String> {
    match path {
        "/" => None,
        "." => Some("..".to_string()),
        _ if path.split('/').all(|part| part == "..") => Some(format!("{path}/..")),
        _ => Some(normalize(&format!("{path}/.."))),
    }
}

/// `name` under the directory `dir`.
pub fn join(dir: &str, name: &str) -> String {
    normalize(&format!("{dir}/{name}"))
}

/// The file a module path names: `path.luau` or `path.lua`, or, for a directory, its
/// `init.luau` or `init.lua`. `Ok(None)` for a directory without one (a step on the way to a
/// module); ambiguous when two candidates exist.
///
/// # Errors
/// [`NavigateError::Ambiguous`] or [`NavigateError::NotFound`].
pub fn resolve_module(tree: &impl ModuleTree, path: &str) -> Result<Option<String>, NavigateError> {
    let mut found = None;
    let mut consider = |candidate: String| {
        if tree.is_file(&candidate) && found.replace(candidate).is_some() {
            return Err(NavigateError::Ambiguous);
        }
        Ok(())
    };
    if path.rsplit('/').next() != Some("init") {
        for extension in EXTENSIONS {
            consider(format!("{path}.{extension}"))?;
        }
    }
    if tree.is_dir(path) {
        for extension in EXTENSIONS {
            consider(join(path, &format!("init.{extension}")))?;
        }
        if found.is_none() {
            return Ok(None);
        }
    }
    found.map(Some).ok_or(NavigateError::NotFound)
}

/// mlua's [`Require`] over a [`ModuleTree`]. Each module it finds is also reported to
/// `found` (its cache key, the file's path), which is how a build learns what a require
/// resolved to.
pub struct TreeRequirer<T> {
    tree: T,
    /// Where navigation is: a module path, not necessarily a file.
    current: String,
    /// The file `current` names, if any.
    resolved: Option<String>,
    found: Option<Arc<Mutex<Option<String>>>>,
    /// Put before every cache key, so two requirers over one tree keep apart in the state's
    /// cache of loaded modules.
    key_prefix: &'static str,
}

impl<T: ModuleTree> TreeRequirer<T> {
    /// A requirer over `tree`.
    pub fn new(tree: T) -> TreeRequirer<T> {
        TreeRequirer { tree, current: ".".to_string(), resolved: None, found: None, key_prefix: "" }
    }

    /// A requirer over `tree` that puts the path of every module it finds in `found`.
    pub fn reporting(tree: T, found: Arc<Mutex<Option<String>>>) -> TreeRequirer<T> {
        TreeRequirer { found: Some(found), ..TreeRequirer::new(tree) }
    }

    /// The same requirer with `prefix` before its cache keys.
    pub fn with_key_prefix(self, prefix: &'static str) -> TreeRequirer<T> {
        TreeRequirer { key_prefix: prefix, ..self }
    }

    fn go_to(&mut self, path: String) -> Result<(), NavigateError> {
        self.resolved = resolve_module(&self.tree, &path)?;
        self.current = path;
        Ok(())
    }

    fn config_path(&self) -> Option<String> {
        CONFIG_FILES.iter().map(|name| join(&self.current, name)).find(|path| self.tree.is_file(path))
    }
}

/// The module path of a module file: `./a/b.luau` is `./a/b`, `./a/init.luau` is `./a`.
pub fn module_of_file(path: &str) -> Option<String> {
    let stem = EXTENSIONS.iter().find_map(|extension| path.strip_suffix(&format!(".{extension}")[..]))?;
    Some(match stem.strip_suffix("/init") {
        Some(dir) => normalize(dir),
        None => stem.to_string(),
    })
}

/// The path a chunk name gives: `@src/x.luau` and `@src/x.luau:12` are `./src/x.luau`.
pub fn chunk_path(chunk_name: &str) -> Option<String> {
    let path = chunk_name.strip_prefix('@')?;
    let path = match path.rsplit_once(':') {
        Some((path, line)) if line.parse::<u32>().is_ok() => path,
        _ => path,
    };
    Some(normalize(&path.replace('\\', "/")))
}

impl<T: ModuleTree> Require for TreeRequirer<T> {
    fn is_require_allowed(&self, chunk_name: &str) -> bool {
        chunk_name.starts_with('@')
    }

    fn reset(&mut self, chunk_name: &str) -> Result<(), NavigateError> {
        let path = chunk_path(chunk_name).ok_or(NavigateError::NotFound)?;
        // Code loaded from Rust is named after its source file: it requires from the base.
        if path.ends_with(".rs") {
            let file = path.rsplit('/').next().unwrap_or_default();
            self.current = join(".", file);
            self.resolved = None;
            return Ok(());
        }
        // A chunk is named after its file, but requires from the module the file is: the path
        // without its extension, and for `init.luau` its directory (so `./x` in `pkg/init.luau`
        // is a sibling of `pkg`, and `@self/x` is `pkg/x`), as for a module Luau loaded.
        if let Some(module) = module_of_file(&path).filter(|_| self.tree.is_file(&path)) {
            self.current = module;
            self.resolved = Some(path);
            return Ok(());
        }
        // A chunk the tree lacks (code the host loaded from elsewhere) still requires from its
        // place.
        self.resolved = match resolve_module(&self.tree, &path) {
            Err(NavigateError::NotFound) if self.tree.is_file(&path) => Some(path.clone()),
            Err(NavigateError::NotFound) => None,
            result => result?,
        };
        self.current = path;
        Ok(())
    }

    fn jump_to_alias(&mut self, path: &str) -> Result<(), NavigateError> {
        self.go_to(normalize(&path.replace('\\', "/")))
    }

    fn to_parent(&mut self) -> Result<(), NavigateError> {
        let up = parent(&self.current).filter(|up| self.tree.is_dir(up)).ok_or(NavigateError::NotFound)?;
        self.go_to(up)
    }

    fn to_child(&mut self, name: &str) -> Result<(), NavigateError> {
        let path = join(&self.current, name);
        self.go_to(path)
    }

    fn has_module(&self) -> bool {
        self.resolved.as_deref().is_some_and(|path| self.tree.is_file(path))
    }

    fn cache_key(&self) -> String {
        let key = self.resolved.clone().unwrap_or_default();
        if let Some(found) = &self.found {
            if let Ok(mut found) = found.lock() {
                *found = Some(key.clone());
            }
        }
        format!("{}{key}", self.key_prefix)
    }

    fn has_config(&self) -> bool {
        self.tree.is_dir(&self.current) && self.config_path().is_some()
    }

    fn config(&self) -> std::io::Result<Vec<u8>> {
        self.config_path()
            .and_then(|path| self.tree.read(&path))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no configuration file"))
    }

    fn loader(&self, lua: &Lua) -> mlua::Result<Function> {
        let path = self.resolved.as_deref().ok_or_else(|| mlua::Error::runtime("no module here"))?;
        self.tree.load(lua, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_as_luau_normalises_them() {
        for (input, expected) in [
            ("", "."),
            (".", "."),
            ("a/relative/path", "./a/relative/path"),
            ("./remove/extraneous//symbols/", "./remove/extraneous/symbols"),
            ("./remove/extraneous/./symbols/.", "./remove/extraneous/symbols"),
            ("../remove/extraneous/symbols/", "../remove/extraneous/symbols"),
            ("/remove/extraneous//symbols", "/remove/extraneous/symbols"),
            ("./remove/me/..", "./remove"),
            ("../remove/me/../", "../remove"),
            ("/remove/me/..", "/remove"),
            ("./..", ".."),
            ("../..", "../.."),
            ("/../", "/"),
        ] {
            assert_eq!(normalize(input), expected, "{input}");
        }
        assert_eq!(parent("./a/b").as_deref(), Some("./a"));
        assert_eq!(parent("./a").as_deref(), Some("."));
        assert_eq!(parent(".").as_deref(), Some(".."));
        assert_eq!(parent("../..").as_deref(), Some("../../.."));
        assert_eq!(parent("/a").as_deref(), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(chunk_path("@src/x.luau:12").as_deref(), Some("./src/x.luau"));
        assert_eq!(chunk_path("=stdin"), None);
        assert_eq!(module_of_file("./a/b.luau").as_deref(), Some("./a/b"));
        assert_eq!(module_of_file("./a/init.lua").as_deref(), Some("./a"));
        assert_eq!(module_of_file("./init.luau").as_deref(), Some("."));
        assert_eq!(module_of_file("./a/b.txt"), None);
    }
}
