//! The values a build shares between the [`Builder`](crate::Builder) facade and the stages:
//! the options as set, the checked plan the pipeline runs, progress reports, stage timings
//! and the result of a build.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use globset::GlobSet;

use crate::analysis::graph;
use crate::analysis::name_patterns::NamePatterns;
use crate::cache::Cache;
use crate::diagnostic::Diagnostics;
use crate::input::discover::{Root, Template};
use crate::input::rocks::RockModules;

/// What a build writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputFormat {
    /// A bundle of bytecode for the linked Lua VM (the default).
    #[default]
    Bundle,
    /// A bundle of verified source text, which any flavour whose syntax accepts it loads.
    Source,
    /// One plain `.lua` file that stock interpreters run, modules as source.
    Lua,
    /// One plain `.lua` file with modules as bytecode, for the one interpreter it was built for.
    LuaBytecode,
}

/// Progress of a long build, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The stage running.
    pub stage: Stage,
    /// Files done in this stage.
    pub done: usize,
    /// Files this stage works on.
    pub total: usize,
}

/// The stages that report [`Progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Compiling each file the cache does not have and finding its requires (one pass per
    /// file).
    Compile,
}

impl Stage {
    /// What the stage is doing, for a progress bar: `compiling`.
    pub fn doing(self) -> &'static str {
        match self {
            Stage::Compile => "compiling",
        }
    }
}

/// A callback for [`Progress`]; called from worker threads.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// The options of a build as the [`Builder`](crate::Builder) collects them: what to read,
/// what to bundle and how to write it. Where the output and the cache go is the builder's
/// business (it knows `OUT_DIR`); everything else is here.
#[derive(Clone, Default)]
pub(crate) struct Options {
    pub roots: Vec<Root>,
    /// Rockspecs whose `build.modules` are bundled.
    pub rockspecs: Vec<PathBuf>,
    /// Rocks trees whose installed Lua modules are bundled.
    pub rocks_trees: Vec<PathBuf>,
    /// Module path templates, `;`-separated; `None` for the flavour's default.
    pub templates: Option<String>,
    pub entry: Option<String>,
    pub externals: Vec<String>,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub profiles: Vec<(String, Vec<String>)>,
    pub groups: Vec<(String, Vec<String>)>,
    pub only_profile: Option<String>,
    pub format: OutputFormat,
    pub manifest: Option<PathBuf>,
    /// Where to write the Makefile-syntax list of the build's inputs.
    pub depfile: Option<PathBuf>,
    /// The configuration files the options came from (never to be written over).
    pub config_sources: Vec<PathBuf>,
    pub locked: bool,
    pub embed_source: bool,
    #[cfg(feature = "sign")]
    pub signing_key: Option<ed25519_dalek::SigningKey>,
    pub strip: bool,
    pub compression: Compression,
    /// The zstd level; `None` for [`DEFAULT_ZSTD_LEVEL`].
    pub compress_level: Option<i32>,
    /// Luau: whether `require("a.b")` may name a bundled module (`None`: only in a project
    /// that uses no path requires and has no Luau configuration file).
    pub luau_dotted_names: Option<bool>,
    pub jobs: Option<usize>,
    pub progress: Option<ProgressFn>,
}

impl Options {
    /// The files the LuaRocks inputs are read from: rockspecs and rocks tree manifests.
    pub fn rock_files(&self) -> Vec<PathBuf> {
        let manifests = self.rocks_trees.iter().filter_map(|tree| {
            let version = crate::input::rocks::lua_version()?;
            Some(tree.join("lib/luarocks").join(format!("rocks-{version}")).join("manifest"))
        });
        self.rockspecs.iter().cloned().chain(manifests).collect()
    }

    /// The zstd level each module is compressed at, `None` when modules are stored as
    /// compiled.
    pub fn zstd_level(&self) -> Option<i32> {
        match self.compression {
            Compression::None => None,
            Compression::Zstd => Some(self.compress_level.unwrap_or(DEFAULT_ZSTD_LEVEL)),
        }
    }

    /// How the bytes of each module are made.
    pub fn blob_options(&self) -> BlobOptions {
        BlobOptions { strip: self.strip, compress: self.zstd_level() }
    }
}

/// The zstd level of `--compress zstd` without `--compress-level`.
pub const DEFAULT_ZSTD_LEVEL: i32 = 19;

/// How a bundle stores each module's bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// As compiled (the default).
    #[default]
    None,
    /// Each module compressed on its own with zstd, and decompressed on its first `require`
    /// only; a module that compression would not shrink is stored as compiled.
    Zstd,
}

/// How the stored bytes of a module are made from its file: compiled with or without debug
/// info, then compressed or not. Everything here goes into the compile cache's keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlobOptions {
    /// Compile without debug info.
    pub strip: bool,
    /// Compress with zstd at this level (kept uncompressed where that is not smaller).
    pub compress: Option<i32>,
}

/// Checked options of one run: the options, with their templates and patterns compiled
/// once, and the cache.
pub(crate) struct Plan<'a> {
    pub options: &'a Options,
    pub templates: Vec<Template>,
    /// `--external` patterns.
    pub externals: NamePatterns,
    /// `--include` patterns.
    pub includes: NamePatterns,
    /// `--exclude` patterns.
    pub excludes: GlobSet,
    /// The modules the rockspecs and rocks trees name.
    pub rocks: RockModules,
    pub cache: Option<Cache>,
}

/// What a successful build or check produced.
#[derive(Debug)]
pub struct Output {
    /// The bundle written (`None` for a check).
    pub output: Option<PathBuf>,
    /// Whether the file was (re)written; `false` when it already held the same bytes.
    pub written: bool,
    /// Number of modules in the bundle.
    pub modules: usize,
    /// Number of source files read.
    pub files: usize,
    /// Files whose requires were found in this run (the others came from the cache).
    pub parsed: usize,
    /// Files compiled in this run: the files parsed, and those whose cached bytecode was
    /// damaged (compiled again, their intact require sites reused).
    pub compiled: usize,
    /// Modules whose bytes were copied from the bundle this build replaced (file to file,
    /// not read again) rather than from the cache.
    pub copied: usize,
    /// Size of the bundle in bytes (0 for a check).
    pub bytes: u64,
    /// Warnings, to show the user.
    pub warnings: Diagnostics,
    /// Require cycles that pass because one of their requires is deferred.
    pub legal_cycles: Vec<String>,
    /// Requires that run only after a protected require succeeded or failed, one line each.
    pub guarded: Vec<String>,
    /// How the require sites of the bundled files resolved.
    pub site_counts: graph::SiteCounts,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Wall time of each stage.
    pub timings: Timings,
}

/// Wall time of each stage of a build (`luabundle build --timings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Walking the roots and reading the source files.
    pub discover: Duration,
    /// Hashing the sources and looking them up in the compile cache.
    pub cache_lookup: Duration,
    /// Compiling the files the cache did not have and finding their requires.
    pub compile: Duration,
    /// Resolving requires into the graph: externals, cycles, reachability, profiles.
    pub graph: Duration,
    /// Storing what was compiled in the cache.
    pub store: Duration,
    /// Laying out the bundle (or script): the index, blob hashes, the root hash.
    pub encode: Duration,
    /// Writing the output (skipped when it already holds the same bundle).
    pub write: Duration,
}

impl Timings {
    /// The stages with their names, in the order they run.
    pub fn stages(&self) -> [(&'static str, Duration); 7] {
        [
            ("discover", self.discover),
            ("cache lookup", self.cache_lookup),
            ("compile", self.compile),
            ("graph", self.graph),
            ("store", self.store),
            ("encode", self.encode),
            ("write", self.write),
        ]
    }
}
