//! `luabundle.toml`: the options of a build, kept beside the sources.
//!
//! ```toml
//! roots = ["src", "vendor=lib"]     # DIR or PREFIX=DIR, relative to this file
//! rockspecs = ["app-1.0-1.rockspec"] # build.modules of builtin rockspecs
//! rocks-trees = ["lua_modules"]     # Lua modules installed by LuaRocks
//! entry = "app.main"
//! externals = ["lfs", "socket.*"]
//! include = ["plugins.*"]
//! exclude = ["spec", "*_spec.lua"]
//! path = "?.lua;?/init.lua"
//! strip = false
//! compress = "zstd"                 # each module compressed, decompressed on first require
//! compress-level = 19
//! luau-dotted-names = true          # Luau: require("a.b") beside require("./b")
//! output = "app.bundle"             # relative to this file
//! cache-dir = ".luabundle-cache"    # relative to this file
//!
//! [profiles]
//! minimal = ["app.core"]
//!
//! [groups]                          # require("ai").llm loads llm on first access
//! ai = ["llm", "tools", "agents"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::input::discover::Root;

/// The file name looked for beside the first root.
pub const CONFIG_FILE_NAME: &str = "luabundle.toml";

/// The contents of a `luabundle.toml`. Every key is optional; unknown keys are errors.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Source roots, `DIR` or `PREFIX=DIR`.
    pub roots: Option<Vec<Root>>,
    /// Rockspecs whose `build.modules` are bundled.
    pub rockspecs: Option<Vec<PathBuf>>,
    /// Rocks trees whose installed Lua modules are bundled.
    pub rocks_trees: Option<Vec<PathBuf>>,
    /// The entry module.
    pub entry: Option<String>,
    /// Host-provided module names or globs.
    pub externals: Option<Vec<String>>,
    /// Module name globs to bundle even without a constant require.
    pub include: Option<Vec<String>>,
    /// File and directory globs to leave out.
    pub exclude: Option<Vec<String>>,
    /// Module path templates.
    pub path: Option<String>,
    /// Strip debug info.
    pub strip: Option<bool>,
    /// How modules are stored: `"none"` or `"zstd"`.
    pub compress: Option<crate::plan::Compression>,
    /// The zstd level.
    pub compress_level: Option<i32>,
    /// Luau: allow dotted-name requires beside path requires.
    pub luau_dotted_names: Option<bool>,
    /// The bundle's path.
    pub output: Option<PathBuf>,
    /// The compile cache's directory.
    pub cache_dir: Option<PathBuf>,
    /// Named module sets; each is stored with everything its modules require.
    pub profiles: Option<BTreeMap<String, Vec<String>>>,
    /// Modules whose tables load their members on first access.
    pub groups: Option<BTreeMap<String, Vec<String>>>,
}

/// A loaded configuration and the file it came from, whose directory its relative paths
/// start from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file.
    pub path: PathBuf,
    /// Its contents.
    pub config: Config,
}

impl ConfigFile {
    /// Reads and parses `path`.
    ///
    /// # Errors
    /// [`Error::Config`] with the file, line and key for unknown keys, wrong types and
    /// syntax errors; [`Error::Io`] if it cannot be read.
    pub fn load(path: &Path) -> Result<ConfigFile, Error> {
        let text = crate::util::read_regular_text(path, crate::util::SMALL_FILE_CAP).map_err(|source| Error::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let config = toml::from_str(&text)
            .map_err(|e: toml::de::Error| Error::Config { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(ConfigFile { path: path.to_path_buf(), config })
    }

    /// The `luabundle.toml` beside `root` (in the directory that holds it), if there is one.
    pub fn beside(root: &Path) -> Option<PathBuf> {
        let root = root.canonicalize().ok()?;
        let candidate = root.parent()?.join(CONFIG_FILE_NAME);
        candidate.is_file().then_some(candidate)
    }

    fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// A root from the file, its directory resolved against the file's directory.
    pub fn resolve_root(&self, root: &Root) -> Root {
        Root { dir: self.base_dir().join(&root.dir), ..root.clone() }
    }

    /// A path from the file, resolved against the file's directory.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        self.base_dir().join(relative)
    }

    /// The file's values with every path (roots, output, cache directory) resolved against
    /// the file's directory, so that they mean the same from any working directory.
    pub fn resolved(&self) -> Config {
        let c = self.config.clone();
        Config {
            roots: c.roots.map(|roots| roots.iter().map(|root| self.resolve_root(root)).collect()),
            rockspecs: c.rockspecs.map(|paths| paths.iter().map(|p| self.resolve(p)).collect()),
            rocks_trees: c.rocks_trees.map(|paths| paths.iter().map(|p| self.resolve(p)).collect()),
            output: c.output.map(|output| self.resolve(&output)),
            cache_dir: c.cache_dir.map(|dir| self.resolve(&dir)),
            ..c
        }
    }
}

impl Config {
    /// This configuration with each value that `over` sets in place of this one's; a list
    /// (`roots`, `externals`, `include`, `exclude`) or table (`profiles`, `groups`) is
    /// replaced as a whole. This is how a command-line flag overrides the file.
    pub fn overridden_by(self, over: Config) -> Config {
        Config {
            roots: over.roots.or(self.roots),
            rockspecs: over.rockspecs.or(self.rockspecs),
            rocks_trees: over.rocks_trees.or(self.rocks_trees),
            entry: over.entry.or(self.entry),
            externals: over.externals.or(self.externals),
            include: over.include.or(self.include),
            exclude: over.exclude.or(self.exclude),
            path: over.path.or(self.path),
            strip: over.strip.or(self.strip),
            compress: over.compress.or(self.compress),
            compress_level: over.compress_level.or(self.compress_level),
            luau_dotted_names: over.luau_dotted_names.or(self.luau_dotted_names),
            output: over.output.or(self.output),
            cache_dir: over.cache_dir.or(self.cache_dir),
            profiles: over.profiles.or(self.profiles),
            groups: over.groups.or(self.groups),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| e.to_string())
    }

    #[test]
    fn every_key_parses() {
        let config = parse(
            r#"
            roots = ["src", "vendor=lib"]
            entry = "app.main"
            externals = ["lfs"]
            include = ["plugins.*"]
            exclude = ["spec"]
            path = "?.lua"
            strip = true
            output = "out/app.bundle"
            cache-dir = ".cache"
            [profiles]
            minimal = ["app.core"]
            [groups]
            ai = ["llm", "app.tools"]
            "#,
        )
        .unwrap();
        assert_eq!(config.entry.as_deref(), Some("app.main"));
        assert_eq!(config.profiles.unwrap()["minimal"], vec!["app.core".to_string()]);
        assert_eq!(config.strip, Some(true));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_line() {
        let unknown = parse("entry = \"a\"\nentyr = \"b\"\n").unwrap_err();
        assert!(unknown.contains("line 2"), "{unknown}");
        assert!(unknown.contains("entyr"), "{unknown}");
        let wrong = parse("roots = [\"src\"]\nstrip = \"yes\"\n").unwrap_err();
        assert!(wrong.contains("line 2"), "{wrong}");
        assert!(wrong.contains("strip") || wrong.contains("bool"), "{wrong}");
    }
}
