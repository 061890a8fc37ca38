//! `Builder`: the options of a build, checked into a [`Plan`] that the pipeline runs, and the
//! entry points a `build.rs` or the command line calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::analysis::name_patterns::NamePatterns;
use crate::cache::Cache;
use crate::cargo::CargoInstructions;
use crate::config::{Config, ConfigFile};
use crate::error::Error;
use crate::input::discover::{Root, Template, DEFAULT_TEMPLATES};
use crate::input::rocks::{self, RockModules};
use crate::pipeline;
use crate::plan::{Compression, Options, Plan};

use crate::analysis::Analysis;
use crate::plan::{Output, OutputFormat, Progress};

/// The most worker threads a build starts: each holds a Lua state and a 64 MiB stack
/// reservation, and more threads than files or cores only cost memory.
pub const MAX_JOBS: usize = 256;

/// Bundle file name used when only an output directory is known.
pub const DEFAULT_BUNDLE_NAME: &str = "app.bundle";

/// Name of the cache directory under Cargo's target directory (build scripts).
const CARGO_CACHE_DIR: &str = "luabundle-cache";

/// Options of a build. Setters take `&mut self` and chain, for use in `build.rs`:
///
/// ```no_run
/// luabundle::Builder::new().root("lua").entry("app.main").build();
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    options: Options,
    output: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    ignore_out_dir_env: bool,
    cache_dir: Option<PathBuf>,
    no_cache: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("roots", &self.options.roots)
            .field("entry", &self.options.entry)
            .field("externals", &self.options.externals)
            .field("includes", &self.options.includes)
            .field("excludes", &self.options.excludes)
            .field("profiles", &self.options.profiles)
            .field("strip", &self.options.strip)
            .field("compression", &self.options.compression)
            .field("output", &self.output)
            .finish_non_exhaustive()
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
        self.options.roots.push(root.into());
        self
    }

    /// Sets the entry module, which `luabundle run` runs and which must exist. With an entry,
    /// only the modules it reaches (and the included ones) are bundled.
    pub fn entry(&mut self, module: impl Into<String>) -> &mut Builder {
        self.options.entry = Some(module.into());
        self
    }

    /// Declares a module the host provides (a C or Rust module); `*` globs allowed.
    pub fn external(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.options.externals.push(pattern.into());
        self
    }

    /// Bundles the modules whose names match `pattern` (`*` globs, e.g. `plugins.*`) even when
    /// nothing requires them by a constant name, for requires computed at run time. Such
    /// requires whose constant prefix the pattern may match no longer warn.
    pub fn include(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.options.includes.push(pattern.into());
        self
    }

    /// Leaves out files and directories matching `pattern`, relative to their root: a
    /// pattern without `/` matches a file or directory name at any depth (`*_spec.lua`,
    /// `spec`), one with `/` a path from the root (`test/fixtures/**`).
    pub fn exclude(&mut self, pattern: impl Into<String>) -> &mut Builder {
        self.options.excludes.push(pattern.into());
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
        self.options.profiles.retain(|(existing, _)| *existing != name);
        self.options.profiles.push((name, modules));
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
        self.options.groups.retain(|(existing, _)| *existing != name);
        self.options.groups.push((name, members));
        self
    }

    /// Writes only the modules of profile `name` (with everything they require) into the
    /// bundle.
    pub fn only_profile(&mut self, name: impl Into<String>) -> &mut Builder {
        self.options.only_profile = Some(name.into());
        self
    }

    /// Sets what the build writes: a bytecode bundle (default), a source bundle, or a plain
    /// Lua script.
    pub fn format(&mut self, format: OutputFormat) -> &mut Builder {
        self.options.format = format;
        self
    }

    /// Signs the bundle with `key` (Ed25519 over its root hash); hosts check it with
    /// `luabundle_runtime::signature::Verify`.
    #[cfg(feature = "sign")]
    pub fn signing_key(&mut self, key: ed25519_dalek::SigningKey) -> &mut Builder {
        self.options.signing_key = Some(key);
        self
    }

    /// Writes the manifest (module, file, source hash, dependencies; sorted text) to `path`
    /// with each build.
    pub fn manifest(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.options.manifest = Some(path.into());
        self
    }

    /// Bundles the Lua modules of a rockspec's `build.modules` (a builtin build: `["app.util"]
    /// = "src/app/util.lua"`, paths relative to the rockspec), its C modules left to the host
    /// as externals. Repeatable.
    pub fn rockspec(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.options.rockspecs.push(path.into());
        self
    }

    /// Bundles the pure-Lua modules installed in a rocks tree (`lua_modules`, or `luarocks
    /// --tree DIR`), named by the tree's manifest; its C modules are left to the host as
    /// externals. Repeatable.
    pub fn rocks_tree(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.options.rocks_trees.push(path.into());
        self
    }

    /// Writes `path` with each build: the bundle and every file the build read (sources,
    /// Luau configuration, options and key files) in Makefile syntax, as `gcc -MD` does, for
    /// make, ninja, Bazel or Buck2 to track.
    pub fn depfile(&mut self, path: impl Into<PathBuf>) -> &mut Builder {
        self.options.depfile = Some(path.into());
        self
    }

    /// With `true`, a build fails (before writing anything) when the manifest would change.
    pub fn locked(&mut self, locked: bool) -> &mut Builder {
        self.options.locked = locked;
        self
    }

    /// Stores each module's source beside its bytecode, so a runtime whose Lua VM cannot run
    /// the bytecode loads the (verified) source instead.
    pub fn embed_source(&mut self, embed: bool) -> &mut Builder {
        self.options.embed_source = embed;
        self
    }

    /// How the bundle stores each module: as compiled (the default) or compressed with zstd,
    /// each module on its own and decompressed on its first `require` only.
    pub fn compress(&mut self, compression: Compression) -> &mut Builder {
        self.options.compression = compression;
        self
    }

    /// The zstd level of [`Compression::Zstd`] (1 to 22; default [`DEFAULT_ZSTD_LEVEL`](crate::DEFAULT_ZSTD_LEVEL)),
    /// unused without compression. Higher levels take longer to build and make smaller
    /// bundles; loading costs the same.
    pub fn compress_level(&mut self, level: i32) -> &mut Builder {
        self.options.compress_level = Some(level);
        self
    }

    /// Strips debug info (smaller, but tracebacks lose file and line). Off by default.
    pub fn strip(&mut self, strip: bool) -> &mut Builder {
        self.options.strip = strip;
        self
    }

    /// Luau: lets `require("a.b")` name a bundled module by its dotted name beside Luau's
    /// path requires, or (`false`) refuses it as Luau does. Unset, dotted names are allowed
    /// only in a project that uses no path require and has no `.luaurc` or `.config.luau`.
    pub fn luau_dotted_names(&mut self, allowed: bool) -> &mut Builder {
        self.options.luau_dotted_names = Some(allowed);
        self
    }

    /// Sets the module path templates, `;`-separated like `package.path`.
    pub fn templates(&mut self, templates: impl Into<String>) -> &mut Builder {
        self.options.templates = Some(templates.into());
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
        self.options.jobs = Some(jobs.clamp(1, MAX_JOBS));
        self
    }

    /// Calls `report` as files are parsed and compiled, from worker threads.
    pub fn progress(&mut self, report: impl Fn(Progress) + Send + Sync + 'static) -> &mut Builder {
        self.options.progress = Some(Arc::new(report));
        self
    }

    /// Reads a `luabundle.toml` and applies its values; setters called afterwards override
    /// its single values and add to its lists. Paths in the file are relative to the file.
    /// To replace the file's lists, merge first: `builder.config_file_with(path, overrides)`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and line of an unknown key or a wrong type.
    pub fn config_file(&mut self, path: impl AsRef<Path>) -> Result<&mut Builder, Error> {
        self.config_file_with(path, Config::default())
    }

    /// Reads a `luabundle.toml` and applies it with `overrides` merged over it
    /// ([`Config::overridden_by`]: each value `overrides` sets replaces the file's, a list as a
    /// whole). Paths in the file are relative to the file, those in `overrides` as given.
    ///
    /// # Errors
    /// As [`Builder::config_file`].
    pub fn config_file_with(&mut self, path: impl AsRef<Path>, overrides: Config) -> Result<&mut Builder, Error> {
        let file = ConfigFile::load(path.as_ref())?;
        self.config_source(&file.path);
        Ok(self.config(&file.resolved().overridden_by(overrides)))
    }

    /// Applies every value `config` sets (paths as they are written in it).
    pub fn config(&mut self, config: &Config) -> &mut Builder {
        let c = config;
        for root in c.roots.iter().flatten() {
            self.root(root.clone());
        }
        for rockspec in c.rockspecs.iter().flatten() {
            self.rockspec(rockspec);
        }
        for tree in c.rocks_trees.iter().flatten() {
            self.rocks_tree(tree);
        }
        if let Some(entry) = &c.entry {
            self.entry(entry);
        }
        for external in c.externals.iter().flatten() {
            self.external(external);
        }
        for include in c.include.iter().flatten() {
            self.include(include);
        }
        for exclude in c.exclude.iter().flatten() {
            self.exclude(exclude);
        }
        if let Some(path) = &c.path {
            self.templates(path);
        }
        if let Some(strip) = c.strip {
            self.strip(strip);
        }
        if let Some(compression) = c.compress {
            self.compress(compression);
        }
        if let Some(level) = c.compress_level {
            self.compress_level(level);
        }
        if let Some(allowed) = c.luau_dotted_names {
            self.luau_dotted_names(allowed);
        }
        if let Some(output) = &c.output {
            self.output(output);
        }
        if let Some(dir) = &c.cache_dir {
            self.cache_dir(dir);
        }
        for (name, modules) in c.profiles.iter().flatten() {
            self.profile(name, modules.iter().cloned());
        }
        for (name, members) in c.groups.iter().flatten() {
            self.group(name, members.iter().cloned());
        }
        self
    }

    /// Records a file the build's options came from: build scripts re-run when it changes,
    /// and no output is ever written over it.
    pub fn config_source(&mut self, path: &Path) -> &mut Builder {
        self.options.config_sources.push(path.to_path_buf());
        self
    }

    /// The directories and files whose changes can change the bundle: the roots and the
    /// configuration files.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let roots = self.options.roots.iter().map(|r| r.dir.clone());
        let rocks = self.options.rockspecs.iter().chain(&self.options.rocks_trees).cloned();
        roots.chain(rocks).chain(self.options.config_sources.iter().cloned()).collect()
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
        for root in &self.options.roots {
            cargo.rerun_if_changed(&root.dir);
        }
        for config in &self.options.config_sources {
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
    fn plan(&self) -> Result<Plan<'_>, Error> {
        let options = &self.options;
        if options.roots.is_empty() && options.rockspecs.is_empty() && options.rocks_trees.is_empty() {
            return Err(Error::Usage("no source roots given".into()));
        }
        let mut rocks = RockModules::default();
        for found in options
            .rockspecs
            .iter()
            .map(|r| rocks::rockspec(r))
            .chain(options.rocks_trees.iter().map(|t| rocks::rocks_tree(t)))
        {
            let found = found?;
            rocks.modules.extend(found.modules);
            rocks.externals.extend(found.externals);
        }
        // Every pattern is checked (and compiled) before anything runs, so every flag fails alike.
        let includes = NamePatterns::new("--include", &self.options.includes)?;
        // The C modules of rocks are the host's to provide.
        let all_externals: Vec<String> = options.externals.iter().chain(&rocks.externals).cloned().collect();
        let externals = NamePatterns::new("--external", &all_externals)?;
        let excludes = crate::input::discover::exclusion_set(&self.options.excludes)?;
        if self.options.locked && self.options.manifest.is_none() {
            return Err(Error::Usage("--locked needs a manifest (--manifest FILE)".into()));
        }
        if self.options.strip && cfg!(feature = "lua51") {
            return Err(Error::Usage(
                "--strip is not available for Lua 5.1 (its bytecode dump cannot leave out debug info)".into(),
            ));
        }
        self.check_compression()?;
        if cfg!(feature = "luau") && matches!(self.options.format, OutputFormat::Lua | OutputFormat::LuaBytecode) {
            return Err(Error::Usage(
                "--format lua writes a script for stock Lua interpreters (Lua 5.1-5.5, LuaJIT), and Luau has no \
                 `package` library or `load` to run it; build a bundle and install it with luabundle-runtime"
                    .into(),
            ));
        }
        let templates = Template::parse_list(self.options.templates.as_deref().unwrap_or(DEFAULT_TEMPLATES))?;
        Ok(Plan { options: &self.options, templates, externals, includes, excludes, rocks, cache: self.cache() })
    }
}

impl Builder {
    /// Compression is for bundles, at a level zstd has.
    fn check_compression(&self) -> Result<(), Error> {
        let options = &self.options;
        if options.compression == Compression::None {
            return Ok(());
        }
        if matches!(options.format, OutputFormat::Lua | OutputFormat::LuaBytecode) {
            return Err(Error::Usage(
                "--compress stores modules compressed in a bundle, which --format lua does not write: \
                 stock interpreters load the script as it is"
                    .into(),
            ));
        }
        let levels = luabundle_runtime::format::compression_levels();
        match options.compress_level {
            Some(level) if !levels.contains(&level) => Err(Error::Usage(format!(
                "--compress-level {level} is not a zstd level: use {} to {}",
                levels.start(),
                levels.end()
            ))),
            _ => Ok(()),
        }
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
        assert_eq!(builder.options.profiles, vec![("min".to_string(), vec!["b".to_string(), "c".to_string()])]);
    }
}
