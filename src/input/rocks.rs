//! The LuaRocks world as input: the module map of a rockspec's `build.modules`, and the
//! pure-Lua modules installed in a rocks tree, named by the tree's manifest.
//!
//! Rockspecs and manifests are Lua: each is run as LuaRocks runs it, in an empty environment
//! (here with an instruction limit, so that no file can hang the build), and the tables it
//! assigns are read. Lua modules become [`ModuleFile`]s, which discovery reads like the files
//! under a root; C modules (sources to compile, or installed libraries) are left to the host
//! as externals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlua::{Lua, Table, Value};

use crate::error::Error;

/// A module named explicitly (not by its path under a root): its name, its file, and the
/// path chunk names and diagnostics show for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFile {
    /// The name `require` takes.
    pub name: String,
    /// The file on disk.
    pub path: PathBuf,
    /// The path shown for it, e.g. `src/app/util.lua`.
    pub display_path: String,
}

/// What the LuaRocks inputs of a build provide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RockModules {
    /// Lua modules to bundle.
    pub modules: Vec<ModuleFile>,
    /// C modules, which the host provides.
    pub externals: Vec<String>,
}

/// The platforms of this host, as LuaRocks names them in `build.platforms`, most general
/// first (a later one's entries win).
const PLATFORMS: &[&str] = if cfg!(target_os = "linux") {
    &["unix", "linux"]
} else if cfg!(target_os = "macos") {
    &["unix", "bsd", "macosx"]
} else if cfg!(windows) {
    &["windows", "win32"]
} else {
    &["unix"]
};

/// The most Lua instructions a rockspec or manifest may run.
const INSTRUCTION_LIMIT: u32 = 10_000_000;

/// The Lua version rocks trees are laid out for (`share/lua/5.4`, `rocks-5.4`).
pub fn lua_version() -> Option<&'static str> {
    let version = if cfg!(any(feature = "lua51", feature = "luajit")) {
        "5.1"
    } else if cfg!(feature = "lua52") {
        "5.2"
    } else if cfg!(feature = "lua53") {
        "5.3"
    } else if cfg!(feature = "lua54") {
        "5.4"
    } else if cfg!(feature = "lua55") {
        "5.5"
    } else {
        return None;
    };
    Some(version)
}

/// The modules of the rockspec at `path`: `build.modules` of a builtin build (and
/// `build.install.lua`, and both of the host's `build.platforms`), file paths relative to the
/// rockspec's directory.
///
/// # Errors
/// [`Error::Usage`] for a rockspec that cannot be read or run, or that is not a builtin
/// build with a module map.
pub fn rockspec(path: &Path) -> Result<RockModules, Error> {
    let fail = |why: String| Error::Usage(format!("rockspec {}: {why}", path.display()));
    with_lua_file(path, |env| read_rockspec(path, env)).map_err(fail)
}

/// The modules of a rockspec whose assignments are in `env`.
fn read_rockspec(path: &Path, env: &Table) -> Result<RockModules, String> {
    let build: Table = match env.raw_get::<Value>("build").map_err(|e| e.to_string())? {
        Value::Table(build) => build,
        _ => return Err("it has no `build` table".into()),
    };
    let kind: Option<String> = build.raw_get("type").map_err(|e| e.to_string())?;
    if !matches!(kind.as_deref(), Some("builtin") | Some("module") | None) {
        return Err(format!(
            "its build type is `{}`; only builtin builds name their modules (build.modules)",
            kind.unwrap_or_default()
        ));
    }
    // The module map, with each matching platform's entries over the common ones, as
    // LuaRocks merges `build.platforms.unix` and `build.platforms.linux` into `build`.
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    let mut any = false;
    let platforms: Option<Table> = build.raw_get("platforms").map_err(|e| e.to_string())?;
    let mut sections = vec![build.clone()];
    if let Some(platforms) = &platforms {
        for platform in PLATFORMS {
            sections.extend(platforms.raw_get::<Option<Table>>(*platform).map_err(|e| e.to_string())?);
        }
    }
    for section in &sections {
        let modules: Option<Table> = section.raw_get("modules").map_err(|e| e.to_string())?;
        let install: Option<Table> = section.raw_get("install").map_err(|e| e.to_string())?;
        let install_lua: Option<Table> = match &install {
            Some(install) => install.raw_get("lua").map_err(|e| e.to_string())?,
            None => None,
        };
        for table in modules.into_iter().chain(install_lua) {
            any = true;
            for pair in table.pairs::<String, Value>() {
                let (name, value) = pair.map_err(|e| e.to_string())?;
                map.insert(name, value);
            }
        }
    }
    if !any {
        return Err("its build has no `modules` map to bundle".into());
    }
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut found = RockModules::default();
    for (name, value) in map {
        match &value {
            Value::String(file) => {
                let file = file.to_str().map_err(|e| e.to_string())?.to_string();
                if file.ends_with(".lua") {
                    found.modules.push(ModuleFile {
                        name,
                        path: base.join(&file),
                        display_path: file.trim_start_matches("./").to_string(),
                    });
                } else {
                    // A C source (`src/lfs.c`): compiled by LuaRocks, provided by the host here.
                    found.externals.push(name);
                }
            }
            // `{ sources = {...}, libraries = {...} }`: a C module.
            Value::Table(_) => found.externals.push(name),
            _ => return Err(format!("module `{name}` maps to neither a file nor a C build")),
        }
    }
    found.modules.sort_by(|a, b| a.name.cmp(&b.name));
    found.externals.sort();
    Ok(found)
}

/// The modules installed in the rocks tree at `tree`, as its manifest names them: the Lua
/// modules under `share/lua/VERSION`, and the C modules (under `lib/lua/VERSION`) as
/// externals. Where two rocks provide one module, the one the manifest lists first is the one
/// `require` finds, as in LuaRocks.
///
/// # Errors
/// [`Error::Usage`] if this flavour has no rocks trees (Luau), the manifest is missing or
/// cannot be run, or a module's file is missing.
pub fn rocks_tree(tree: &Path) -> Result<RockModules, Error> {
    let Some(version) = lua_version() else {
        return Err(Error::Usage("--rocks-tree: LuaRocks installs no modules for Luau".into()));
    };
    let manifest = tree.join("lib/luarocks").join(format!("rocks-{version}")).join("manifest");
    let fail = |why: String| Error::Usage(format!("rocks tree {}: {why}", tree.display()));
    if !manifest.is_file() {
        return Err(fail(format!("it has no manifest for Lua {version} ({})", manifest.display())));
    }
    let found = with_lua_file(&manifest, |env| read_manifest(tree, version, env))
        .map_err(|why| fail(format!("{}: {why}", manifest.display())))?;
    for module in &found.modules {
        if !module.path.is_file() {
            return Err(fail(format!("module `{}` is missing: {} is not a file", module.name, module.path.display())));
        }
    }
    Ok(found)
}

/// The modules of a rocks tree whose manifest's assignments are in `env`.
fn read_manifest(tree: &Path, version: &str, env: &Table) -> Result<RockModules, String> {
    let lua_error = |e: mlua::Error| e.to_string();
    let modules: Table = env.raw_get("modules").map_err(lua_error)?;
    let repository: Table = env.raw_get("repository").map_err(lua_error)?;
    let label = tree.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut found = RockModules::default();
    for pair in modules.pairs::<String, Table>() {
        let (name, rocks) = pair.map_err(lua_error)?;
        // "penlight/1.13.1-1": the rock that provides the module as `require` finds it.
        let Some(first): Option<String> = rocks.raw_get(1).map_err(lua_error)? else { continue };
        let Some((rock, rock_version)) = first.split_once('/') else { continue };
        let file = installed_file(&repository, rock, rock_version, &name).map_err(lua_error)?;
        let Some(file) = file else { continue };
        if file.ends_with(".lua") {
            let relative = format!("share/lua/{version}/{file}");
            let path = tree.join(&relative);
            let display_path = if label.is_empty() { relative } else { format!("{label}/{relative}") };
            // `x/init.lua` is `x.init` in the manifest and `x` to `require`, whose search
            // tries `?/init.lua` (unless another module is `x`).
            if let Some(package) = name.strip_suffix(".init").filter(|_| file.ends_with("/init.lua")) {
                if modules.raw_get::<Value>(package).map_err(lua_error)?.is_nil() {
                    found.modules.push(ModuleFile {
                        name: package.to_string(),
                        path: path.clone(),
                        display_path: display_path.clone(),
                    });
                }
            }
            found.modules.push(ModuleFile { name, path, display_path });
        } else {
            found.externals.push(name);
        }
    }
    found.modules.sort_by(|a, b| a.name.cmp(&b.name));
    found.externals.sort();
    Ok(found)
}

/// The file `repository[rock][version]` gives module `name` in its installed entry.
fn installed_file(repository: &Table, rock: &str, version: &str, name: &str) -> mlua::Result<Option<String>> {
    let Some(versions): Option<Table> = repository.raw_get(rock)? else { return Ok(None) };
    let Some(entries): Option<Table> = versions.raw_get(version)? else { return Ok(None) };
    for entry in entries.sequence_values::<Table>() {
        let entry = entry?;
        let arch: Option<String> = entry.raw_get("arch")?;
        if arch.as_deref() != Some("installed") {
            continue;
        }
        let Some(modules): Option<Table> = entry.raw_get("modules")? else { continue };
        return modules.raw_get(name);
    }
    Ok(None)
}

/// Runs the Lua file at `path` in an empty environment and reads that environment with
/// `read`.
fn with_lua_file<R>(path: &Path, read: impl FnOnce(&Table) -> Result<R, String>) -> Result<R, String> {
    let text = crate::util::read_regular(path, crate::util::SMALL_FILE_CAP).map_err(|e| e.to_string())?;
    let lua = Lua::new();
    stop_after_limit(&lua).map_err(|e| e.to_string())?;
    let env = lua.create_table().map_err(|e| e.to_string())?;
    lua.load(&text[..])
        .set_name(format!("@{}", path.display()))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .set_environment(env.clone())
        .exec()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } | mlua::Error::RuntimeError(message) => message,
            other => other.to_string(),
        })?;
    read(&env)
}

/// A rockspec is data: a file that runs forever is stopped, not waited for. (LuaJIT calls
/// hooks from its interpreter only: its compiler is turned off for these files.)
#[cfg(not(feature = "luau"))]
fn stop_after_limit(lua: &Lua) -> mlua::Result<()> {
    lua.load("if jit then jit.off() end").exec()?;
    lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(INSTRUCTION_LIMIT), |_, _| {
        Err(mlua::Error::runtime("it runs too long for a data file"))
    })
}

/// Luau has no count hook: its interrupt (at calls and loop back-edges) counts instead.
#[cfg(feature = "luau")]
fn stop_after_limit(lua: &Lua) -> mlua::Result<()> {
    let count = std::sync::atomic::AtomicU32::new(0);
    lua.set_interrupt(move |_| {
        if count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > INSTRUCTION_LIMIT / 10 {
            return Err(mlua::Error::runtime("it runs too long for a data file"));
        }
        Ok(mlua::VmState::Continue)
    });
    Ok(())
}
