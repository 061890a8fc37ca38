//! What every command that reads sources shares: the roots and resolution flags over
//! `luabundle.toml`, and how diagnostics are shown.

use std::path::PathBuf;

use clap::Args;
use luabundle::config::{Config, ConfigFile, CONFIG_FILE_NAME};
use luabundle::Diagnostics;

/// Options shared by `build`, `check` and `graph`: what to read and how to resolve it.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// Source roots: DIR or PREFIX=DIR (module names under it start with PREFIX.). Default:
    /// the `roots` of luabundle.toml.
    #[arg(value_name = "ROOT")]
    roots: Vec<String>,
    /// Bundle the Lua modules of this rockspec's build.modules (a builtin build); its C
    /// modules are left to the host as externals. Repeatable.
    #[arg(long, value_name = "FILE")]
    rockspec: Vec<PathBuf>,
    /// Bundle the Lua modules installed in this rocks tree (e.g. lua_modules), named by its
    /// manifest; its C modules are left to the host. Repeatable.
    #[arg(long, value_name = "DIR")]
    rocks_tree: Vec<PathBuf>,
    /// Options file (default: luabundle.toml beside the first root, or in the current
    /// directory when no root is given). Flags override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The entry module (e.g. app.main): only what it requires is bundled, and `run` starts it.
    #[arg(long, value_name = "MOD")]
    entry: Option<String>,
    /// A module the host program provides (C or Rust); `*` globs allowed. Repeatable.
    #[arg(long, value_name = "NAME")]
    external: Vec<String>,
    /// Bundle modules matching this name glob (e.g. 'plugins.*') even if no constant require
    /// names them; covers matching run-time requires. Repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Leave out files or directories: a name at any depth ('*_spec.lua', 'spec') or a path
    /// from the root ('test/fixtures/**'). Repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Module path templates, `;`-separated, tried in order like package.path
    /// [default: ?.lua;?/init.lua].
    #[arg(long, value_name = "TEMPLATES")]
    path: Option<String>,
    /// Luau: allow `require("a.b")` by dotted name beside path requires (`true`), or refuse it
    /// as Luau does (`false`) [default: allowed only in a project without path requires or
    /// Luau configuration files].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    luau_dotted_names: Option<bool>,
    /// Directory of the compile cache [default: .luabundle-cache].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Parse and compile every file, without reading or writing the cache.
    #[arg(long)]
    no_cache: bool,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

/// The options file: `--config`, else luabundle.toml beside the first root, else in the
/// current directory when no root is given.
fn config_file(source: &SourceArgs) -> anyhow::Result<Option<ConfigFile>> {
    let path = match (&source.config, source.roots.first()) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(root)) => ConfigFile::beside(&luabundle::Root::parse(root).dir),
        (None, None) => Some(PathBuf::from(CONFIG_FILE_NAME)).filter(|p| p.is_file()),
    };
    Ok(path.map(|p| ConfigFile::load(&p)).transpose()?)
}

/// The flags of `source` as configuration values, so that each flag given replaces the
/// file's value (a list as a whole) through [`Config::overridden_by`].
fn flag_values(source: &SourceArgs) -> Config {
    let list = |values: &Vec<String>| (!values.is_empty()).then(|| values.clone());
    Config {
        roots: (!source.roots.is_empty()).then(|| source.roots.iter().map(|r| luabundle::Root::parse(r)).collect()),
        rockspecs: (!source.rockspec.is_empty()).then(|| source.rockspec.clone()),
        rocks_trees: (!source.rocks_tree.is_empty()).then(|| source.rocks_tree.clone()),
        entry: source.entry.clone(),
        externals: list(&source.external),
        include: list(&source.include),
        exclude: list(&source.exclude),
        path: source.path.clone(),
        cache_dir: source.cache_dir.clone(),
        luau_dotted_names: source.luau_dotted_names,
        ..Config::default()
    }
}

/// The builder for these flags (and the command's own, `more`) over the options file, and
/// the values it was given.
pub(super) fn builder(source: &SourceArgs, more: Config) -> anyhow::Result<(luabundle::Builder, Config)> {
    let file = config_file(source)?;
    let flags = more.overridden_by(flag_values(source));
    let config = match &file {
        Some(file) => file.resolved().overridden_by(flags),
        None => flags,
    };
    let some = |list: &Option<Vec<PathBuf>>| list.as_ref().is_some_and(|l| !l.is_empty());
    if config.roots.as_ref().is_none_or(Vec::is_empty) && !some(&config.rockspecs) && !some(&config.rocks_trees) {
        anyhow::bail!(
            "no source roots: pass ROOT... (or --rockspec, --rocks-tree) or set `roots` in {CONFIG_FILE_NAME}"
        );
    }
    let mut builder = luabundle::Builder::new();
    builder.ignore_out_dir_env(true).config(&config).no_cache(source.no_cache);
    if let Some(file) = &file {
        builder.config_source(&file.path);
    }
    if let Some(jobs) = source.jobs {
        if jobs > luabundle::MAX_JOBS {
            eprintln!(
                "warning: -j {jobs} is more than the {} worker threads a build starts; using {}",
                luabundle::MAX_JOBS,
                luabundle::MAX_JOBS
            );
        }
        builder.jobs(jobs);
    }
    Ok((builder, config))
}

/// The builder for `roots` with no other flag, over the options file beside the first.
pub(super) fn builder_for_roots(roots: Vec<String>) -> anyhow::Result<(luabundle::Builder, Config)> {
    let source = SourceArgs {
        roots,
        rockspec: Vec::new(),
        rocks_tree: Vec::new(),
        config: None,
        entry: None,
        external: Vec::new(),
        include: Vec::new(),
        exclude: Vec::new(),
        path: None,
        luau_dotted_names: None,
        cache_dir: None,
        no_cache: false,
        jobs: None,
    };
    builder(&source, Config::default())
}

/// Prints diagnostics: rendered on stderr, or as JSON lines on stdout.
pub fn show(diagnostics: &Diagnostics, json: bool) {
    if json {
        print!("{}", diagnostics.to_json_lines());
    } else {
        eprint!("{}", diagnostics.render_styled(super::color()));
    }
}

/// Runs `step`; input errors are shown (as JSON if asked) and give exit code 1.
pub(super) fn with_diagnostics<T>(
    json: bool,
    step: impl FnOnce() -> Result<T, luabundle::Error>,
) -> anyhow::Result<Result<T, i32>> {
    match step() {
        Ok(value) => Ok(Ok(value)),
        Err(luabundle::Error::Input(diagnostics)) => {
            show(&diagnostics, json);
            Ok(Err(1))
        }
        Err(other) => Err(other.into()),
    }
}
