//! `Builder`: the options of a build, checked into a [`Plan`] that the pipeline runs, and the
//! entry points a `build.rs` or the command line calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::analysis::graph;
use crate::cache::Cache;
use crate::cargo::CargoInstructions;
use crate::config::ConfigFile;
use crate::diagnostic::Diagnostics;
use crate::error::Error;
use crate::input::discover::{Root, Template, DEFAULT_TEMPLATES};
use crate::pipeline::{self, Plan};

pub use crate::pipeline::Analysis;

/// The most worker threads a build starts: each holds a Lua state and a 64 MiB stack
/// reservation, and more threads than files or cores only cost memory.
pub const MAX_JOBS: usize = 256;

/// Bundle file name used when only an output directory is known.
pub const DEFAULT_BUNDLE_NAME: &str = "app.bundle";

/// Name of the cache directory under Cargo's target directory (build scripts).
const CARGO_CACHE_DIR: &str = "luabundle-cache";

/// What a build writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
pub enum Stage {
    /// Compiling each file the cache does not have and finding its requires (one pass per
    /// file).
    Compile,
}

/// A callback for [`Progress`]; called from worker threads.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Options of a build. Setters take `&mut self` and chain, for use in `build.rs`:
///
/// ```no_run
/// luabundle::Builder::new().root("lua").entry("app.main").build();
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    roots: Vec<Root>,
    entry: Option<String>,
    externals: Vec<String>,
    includes: Vec<String>,
    excludes: Vec<String>,
    profiles: Vec<(String, Vec<String>)>,
    groups: Vec<(String, Vec<String>)>,
    only_profile: Option<String>,
    format: OutputFormat,
    manifest: Option<PathBuf>,
    locked: bool,
    embed_source: bool,
    #[cfg(feature = "sign")]
    signing_key: Option<ed25519_dalek::SigningKey>,
    strip: bool,
    templates: Option<String>,
    output: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    ignore_out_dir_env: bool,
    cache_dir: Option<PathBuf>,
    no_cache: bool,
    jobs: Option<usize>,
    config_sources: Vec<PathBuf>,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("roots", &self.roots)
            .field("entry", &self.entry)
            .field("externals", &self.externals)
            .field("includes", &self.includes)
            .field("excludes", &self.excludes)
            .field("profiles", &self.profiles)
            .field("strip", &self.strip)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
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
    /// Files parsed in this run (the others came from the cache).
    pub parsed: usize,
    /// Files compiled in this run (the others came from the cache).
    pub compiled: usize,
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

/// Builds `$OUT_DIR/app.bundle` from one root with an entry module, as [`Builder::build`]
/// does: the one-call form for the common `build.rs`.
///
/// ```no_run
/// luabundle::bundle("lua", "app.main");
/// ```
pub fn bundle(root: impl Into<Root>, entry: &str) -> Output {
    Builder::new().root(root).entry(entry).build()
}

impl Builder {
    /// A builder with no roots, the default templates (`?.lua;?/init.lua`), debug info kept,
    /// and the compile cache on.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Adds a source root: `DIR` or `PREFIX=DIR`.
    pub fn root(&mut self, root: impl Into<Root>) -> &mut Builder {
        self.roots.push(root.into());
        self
    }

    /// Sets the entry module, which `luabundle run` runs and which must exist. With an entry,
    /// only the modules it reaches (and the included ones) are bundled.
    pub fn entry(&mut self, module: impl Into<String>) -> &mut Builder {
        self.entry = Some(module.into());
        self
    }

    /// Declares a module the host provides (a C or Rust module); `*` globs allowed.
    pub fn external(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.externals.push(pattern.into());
        self
    }

    /// Bundles the modules whose names match `pattern` (`*` globs, e.g. `plugins.*`) even when
    /// nothing requires them by a constant name, for requires computed at run time. Such
    /// requires whose constant prefix the pattern may match no longer warn.
    pub fn include(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.includes.push(pattern.into());
        self
    }

    /// Leaves out files and directories matching `pattern`, relative to their root: a
    /// pattern without `/` matches a file or directory name at any depth (`*_spec.lua`,
    /// `spec`), one with `/` a path from the root (`test/fixtures/**`).
    pub fn exclude(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.excludes.push(pattern.into());
        self
    }

    /// Defines a profile: a named set of modules, stored in the bundle with everything they
    /// require, so a host can make just that set requirable.
    pub fn profile(
        &mut self,
        name: impl Into<String>,
        modules: impl IntoIterator<Item = impl Into<String>>,
    ) -> &mut Builder {
        let name = name.into();
        let modules: Vec<String> = modules.into_iter().map(Into::into).collect();
        self.profiles.retain(|(existing, _)| *existing != name);
        self.profiles.push((name, modules));
        self
    }

    /// Defines a group: a module `name` whose table loads each member (bundled, native or
    /// external) on first access of the field named after the member's last `.` part.
    pub fn group(
        &mut self,
        name: impl Into<String>,
        members: impl IntoIterator<Item = impl Into<String>>,
    ) -> &mut Builder {
        let name = name.into();
        let members: Vec<String> = members.into_iter().map(Into::into).collect();
        self.groups.retain(|(existing, _)| *existing != name);
        self.groups.push((name, members));
        self
    }

    /// Writes only the modules of profile `name` (with everything they require) into the
    /// bundle.
    pub fn only_profile(&mut self, name: impl Into<String>) -> &mut Builder {
        self.only_profile = Some(name.into());
        self
    }

    /// Sets what the build writes: a bytecode bundle (default), a source bundle, or a plain
    /// Lua script.
    pub fn format(&mut self, format: OutputFormat) -> &mut Builder {
        self.format = format;
        self
    }

    /// Signs the bundle with `key` (Ed25519 over its root hash); hosts check it with
    /// `luabundle_runtime::signature::Verify`.
    #[cfg(feature = "sign")]
    pub fn signing_key(&mut self, key: ed25519_dalek::SigningKey) -> &mut Builder {
        self.signing_key = Some(key);
        self
    }

    /// Writes the manifest (module, file, source hash, dependencies; sorted text) to `path`
    /// with each build.
    pub fn manifest(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.manifest = Some(path.into());
        self
    }

    /// With `true`, a build fails (before writing anything) when the manifest would change.
    pub fn locked(&mut self, locked: bool) -> &mut Builder {
        self.locked = locked;
        self
    }

    /// Stores each module's source beside its bytecode, so a runtime whose Lua VM cannot run
    /// the bytecode loads the (verified) source instead.
    pub fn embed_source(&mut self, embed: bool) -> &mut Builder {
        self.embed_source = embed;
        self
    }

    /// Strips debug info (smaller, but tracebacks lose file and line). Off by default.
    pub fn strip(&mut self, strip: bool) -> &mut Builder {
        self.strip = strip;
        self
    }

    /// Sets the module path templates, `;`-separated like `package.path`.
    pub fn templates(&mut self, templates: impl Into<String>) -> &mut Builder {
        self.templates = Some(templates.into());
        self
    }

    /// Sets the bundle's path. A relative path is taken relative to the output directory
    /// when one is set, else to the working directory.
    pub fn output(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.output = Some(path.into());
        self
    }

    /// Sets the output directory (default: the `OUT_DIR` environment variable, as set by
    /// Cargo for build scripts).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Ignores the `OUT_DIR` environment variable (`true`): relative output paths are then
    /// taken from the working directory and the cache defaults to `.luabundle-cache`, as on
    /// the command line, which may well run under a build script or `cargo test` that sets
    /// `OUT_DIR` for its own use.
    pub fn ignore_out_dir_env(&mut self, ignore: bool) -> &mut Builder {
        self.ignore_out_dir_env = ignore;
        self
    }

    /// Sets the compile cache's directory (default: `luabundle-cache` in Cargo's target
    /// directory for build scripts, `.luabundle-cache` for the command line).
    pub fn cache_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Builder {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Turns the compile cache off (`true`) or on.
    pub fn no_cache(&mut self, off: bool) -> &mut Builder {
        self.no_cache = off;
        self
    }

    /// Sets the number of worker threads (default: one per core), from 1 to [`MAX_JOBS`].
    pub fn jobs(&mut self, jobs: usize) -> &mut Builder {
        self.jobs = Some(jobs.clamp(1, MAX_JOBS));
        self
    }

    /// Calls `report` as files are parsed and compiled, from worker threads.
    pub fn progress(&mut self, report: impl Fn(Progress) + Send + Sync + 'static) -> &mut Builder {
        self.progress = Some(Arc::new(report));
        self
    }

    /// Reads a `luabundle.toml` and applies its values; setters called afterwards override
    /// them. Paths in the file are relative to the file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and line of an unknown key or a wrong type.
    pub fn config_file(&mut self, path: impl AsRef<Path>) -> Result<&mut Builder, Error> {
        ConfigFile::load(path.as_ref())?.apply(self);
        Ok(self)
    }

    /// Forgets every root, external, include and exclude set so far, so that other values can
    /// replace those of a configuration file.
    pub fn clear_lists(&mut self) -> &mut Builder {
        self.roots.clear();
        self.externals.clear();
        self.includes.clear();
        self.excludes.clear();
        self
    }

    /// Records a file the build's options came from, so that build scripts re-run when it
    /// changes.
    pub(crate) fn config_source(&mut self, path: &Path) -> &mut Builder {
        self.config_sources.push(path.to_path_buf());
        self
    }

    /// The directories and files whose changes can change the bundle: the roots and the
    /// configuration files.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let roots = self.roots.iter().map(|r| r.dir.clone());
        roots.chain(self.config_sources.iter().cloned()).collect()
    }

    /// Analyses and compiles everything without writing a bundle.
    ///
    /// # Errors
    /// [`Error::Input`] with every diagnostic if the Lua input has errors; [`Error::Usage`]
    /// for bad options.
    pub fn check(&self) -> Result<Output, Error> {
        pipeline::run(&self.plan()?, None)
    }

    /// Builds and writes the bundle.
    ///
    /// # Errors
    /// As [`Builder::check`], and [`Error::Io`] if the bundle cannot be written (an existing
    /// bundle is then left as it was).
    pub fn try_build(&self) -> Result<Output, Error> {
        let output = self.output_path()?;
        pipeline::run(&self.plan()?, Some(&output))
    }

    /// Discovers, parses and resolves everything without compiling, for tools that show the
    /// require graph.
    ///
    /// # Errors
    /// As [`Builder::check`].
    pub fn analyse(&self) -> Result<Analysis, Error> {
        pipeline::analyse(&self.plan()?)
    }

    /// Builds like [`Builder::try_build`], for build scripts: tells Cargo to re-run the
    /// script when a root or configuration file changes, shows warnings as
    /// `cargo:warning` lines, and on failure prints the diagnostics to stderr and exits with
    /// status 1 (input errors) or 2. Outside a build script (no `OUT_DIR`), warnings go to
    /// stderr and no `cargo:` lines are printed.
    pub fn build(&self) -> Output {
        let in_build_script = self.out_dir_env().is_some();
        let result = self.try_build();
        let mut cargo = self.cargo_instructions();
        match result {
            Ok(output) => {
                if in_build_script {
                    cargo.warnings(&output.warnings).print();
                } else {
                    eprint!("{}", output.warnings.render());
                }
                output
            }
            Err(err) => {
                if in_build_script {
                    cargo.print();
                }
                eprint!("{err}");
                if !matches!(err, Error::Input(_)) {
                    eprintln!();
                }
                std::process::exit(err.exit_code());
            }
        }
    }

    /// The `cargo:` lines a build script prints for this build (before warnings): re-run
    /// when any root directory or configuration file changes, or when `OUT_DIR` does.
    pub fn cargo_instructions(&self) -> CargoInstructions {
        let mut cargo = CargoInstructions::new();
        for root in &self.roots {
            cargo.rerun_if_changed(&root.dir);
        }
        for config in &self.config_sources {
            cargo.rerun_if_changed(config);
        }
        cargo.rerun_if_env_changed("OUT_DIR");
        cargo
    }

    fn resolved_out_dir(&self) -> Option<PathBuf> {
        self.out_dir.clone().or_else(|| self.out_dir_env().map(PathBuf::from))
    }

    /// `OUT_DIR` from the environment, unless told to ignore it.
    fn out_dir_env(&self) -> Option<std::ffi::OsString> {
        if self.ignore_out_dir_env {
            None
        } else {
            std::env::var_os("OUT_DIR")
        }
    }

    fn output_path(&self) -> Result<PathBuf, Error> {
        match (&self.output, self.resolved_out_dir()) {
            (Some(path), Some(dir)) if path.is_relative() => Ok(dir.join(path)),
            (Some(path), _) => Ok(path.clone()),
            (None, Some(dir)) => Ok(dir.join(DEFAULT_BUNDLE_NAME)),
            (None, None) => Err(Error::Usage("no output path: set one with -o/--output (or OUT_DIR)".into())),
        }
    }

    /// The cache: the directory set, else Cargo's target directory in a build script, else
    /// `.luabundle-cache` in the working directory.
    fn cache(&self) -> Option<Cache> {
        if self.no_cache {
            return None;
        }
        let dir = self.cache_dir.clone().unwrap_or_else(|| match self.out_dir_env() {
            Some(out_dir) => cargo_target_dir(Path::new(&out_dir)).join(CARGO_CACHE_DIR),
            None => PathBuf::from(".luabundle-cache"),
        });
        Some(Cache::new(dir))
    }

    /// Checks the options and turns them into a [`Plan`].
    fn plan(&self) -> Result<Plan, Error> {
        if self.roots.is_empty() {
            return Err(Error::Usage("no source roots given".into()));
        }
        for (flag, patterns) in [("--include", &self.includes), ("--external", &self.externals)] {
            for pattern in patterns {
                check_name_pattern(flag, pattern)?;
            }
        }
        // The same rules as the patterns above, checked here so that every flag fails alike.
        crate::input::discover::exclusion_set(&self.excludes)?;
        if self.locked && self.manifest.is_none() {
            return Err(Error::Usage("--locked needs a manifest (--manifest FILE)".into()));
        }
        if self.strip && cfg!(feature = "lua51") {
            return Err(Error::Usage(
                "--strip is not available for Lua 5.1 (its bytecode dump cannot leave out debug info)".into(),
            ));
        }
        if cfg!(feature = "luau") && matches!(self.format, OutputFormat::Lua | OutputFormat::LuaBytecode) {
            return Err(Error::Usage(
                "--format lua writes a script for stock Lua interpreters (Lua 5.1-5.5, LuaJIT), and Luau has no \
                 `package` library or `load` to run it; build a bundle and install it with luabundle-runtime"
                    .into(),
            ));
        }
        Ok(Plan {
            roots: self.roots.clone(),
            templates: Template::parse_list(self.templates.as_deref().unwrap_or(DEFAULT_TEMPLATES))?,
            entry: self.entry.clone(),
            externals: self.externals.clone(),
            includes: self.includes.clone(),
            excludes: self.excludes.clone(),
            profiles: self.profiles.clone(),
            groups: self.groups.clone(),
            only_profile: self.only_profile.clone(),
            format: self.format,
            manifest: self.manifest.clone(),
            config_sources: self.config_sources.clone(),
            locked: self.locked,
            embed_source: self.embed_source,
            #[cfg(feature = "sign")]
            signing_key: self.signing_key.clone(),
            strip: self.strip,
            cache: self.cache(),
            jobs: self.jobs,
            progress: self.progress.clone(),
        })
    }
}

/// A module-name pattern (`--include`, `--external`): a name, with `*` for any run of
/// characters. Other glob syntax would silently match nothing, so it is refused.
fn check_name_pattern(flag: &str, pattern: &str) -> Result<(), Error> {
    let bad = pattern.chars().find(|c| matches!(c, '[' | ']' | '{' | '}' | '?' | '!' | '\\' | '/' | '\0'));
    match (pattern.trim().is_empty(), bad) {
        (true, _) => Err(Error::Usage(format!("invalid {flag} pattern {pattern:?}: it is empty"))),
        (false, Some(c)) => Err(Error::Usage(format!(
            "invalid {flag} pattern {pattern:?}: `{c}` has no meaning in a module name pattern, which is a dotted name with `*` for any run of characters (e.g. 'plugins.*')"
        ))),
        (false, None) => Ok(()),
    }
}

/// Cargo's target directory for a build script's `OUT_DIR`
/// (`<target>/<profile>/build/<package>-<hash>/out`), or `OUT_DIR` itself when it does not
/// have that shape.
fn cargo_target_dir(out_dir: &Path) -> PathBuf {
    let build = out_dir.parent().and_then(Path::parent);
    match build {
        Some(build) if build.file_name().is_some_and(|n| n == "build") => {
            build.parent().and_then(Path::parent).map_or_else(|| out_dir.to_path_buf(), Path::to_path_buf)
        }
        _ => out_dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_scripts_rerun_on_roots_and_config_files_only() {
        let mut builder = Builder::new();
        builder.root("lua").root("vendor=third_party/lua").config_source(Path::new("luabundle.toml"));
        assert_eq!(
            builder.cargo_instructions().lines(),
            [
                "cargo:rerun-if-changed=lua",
                "cargo:rerun-if-changed=third_party/lua",
                "cargo:rerun-if-changed=luabundle.toml",
                "cargo:rerun-if-env-changed=OUT_DIR",
            ]
        );
    }

    #[test]
    fn the_cache_lives_in_cargos_target_directory() {
        let out_dir = Path::new("/p/target/debug/build/app-0123abcd/out");
        assert_eq!(cargo_target_dir(out_dir), Path::new("/p/target"));
        assert_eq!(cargo_target_dir(Path::new("/tmp/out")), Path::new("/tmp/out"));
    }

    #[test]
    fn a_later_profile_with_the_same_name_replaces_the_earlier() {
        let mut builder = Builder::new();
        builder.profile("min", ["a"]).profile("min", ["b", "c"]);
        assert_eq!(builder.profiles, vec![("min".to_string(), vec!["b".to_string(), "c".to_string()])]);
    }
}
