//! Installing a bundle into a Lua state: lazy `package.preload` entries.
//!
//! Install creates a fixed handful of Lua objects whatever the bundle's size: a metatable on
//! `package.preload` whose `__index` looks a name up (bundle index, native modules, groups)
//! and only then creates that module's loader. A bundled module's loader verifies the bytes,
//! loads them in the mode their kind names, and calls the chunk with `(name, path)` as Lua's
//! own file loaders do, so `require` keeps its usual semantics (`package.loaded`, `true` for
//! modules returning nothing). Loads are timed through a to-be-closed variable, which sees
//! errors without catching them, so tracebacks still start where the error happened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::live::{Live, LiveCell, Visibility};
use super::{Installed, Installer};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::names::edit_distance;
use crate::stats::{Origin, SharedTracker, Tracker};

/// How a load is timed. Lua 5.4 and later use a to-be-closed variable, which sees errors without
/// catching them, so tracebacks still start where the error happened.
#[cfg(any(feature = "lua54", feature = "lua55"))]
const LOAD_FRAMES: &str = include_str!("glue/load_frames_close.lua");

/// How a load is timed before Lua 5.4: the body runs under `pcall` and an error is raised
/// again after it is recorded (its message keeps the original file and line).
#[cfg(not(any(feature = "lua54", feature = "lua55")))]
const LOAD_FRAMES: &str = include_str!("glue/load_frames_pcall.lua");

/// The start of the `package.preload` metatable chunk: its arguments and locals.
const PRELOAD_HEAD: &str = include_str!("glue/preload_head.lua");

/// The rest of the `package.preload` metatable, written in Lua so that module bodies run as
/// plain Lua calls and their errors pass through.
const PRELOAD_META: &str = include_str!("glue/preload_meta.lua");

/// Replaces `load`, `loadfile` and `dofile` (and LuaJIT's `loadstring`) with versions that
/// accept text chunks only.
#[cfg(not(any(feature = "lua51", feature = "luau")))]
const TEXT_ONLY_LOAD: &str = include_str!("glue/text_only_load.lua");

/// Lua 5.1 has no load mode: binary chunks are refused by their first byte.
#[cfg(feature = "lua51")]
const TEXT_ONLY_LOAD: &str = include_str!("glue/text_only_load_51.lua");

#[cfg(not(feature = "luau"))]
/// Keeps only the preload searcher, then explains what is missing. (`package.loaders` in
/// Lua 5.1 and LuaJIT; before 5.4 a searcher's message carries its own line break.)
const HERMETIC_SEARCHERS: &str = include_str!("glue/hermetic_searchers.lua");

/// Luau has no `package` library: install gives it `package.loaded` and `package.preload`
/// and this `require`: dotted names as Lua 5.x's `require` finds them, paths through Luau's
/// navigator over the bundle (see `path_require`).
#[cfg(feature = "luau")]
const LUAU_REQUIRE: &str = include_str!("glue/luau_require.lua");

/// Luau: wraps a path-required module's chunk into its loader (export table, cycles, timing).
#[cfg(feature = "luau")]
const LUAU_PATH_LOADER: &str = include_str!("glue/luau_path_loader.lua");

/// The Lua chunks install runs.
#[derive(Clone, Copy)]
pub(super) enum Glue {
    PreloadMeta,
    #[cfg(not(feature = "luau"))]
    TextOnlyLoad,
    #[cfg(feature = "luau")]
    LuauRequire,
    #[cfg(feature = "luau")]
    LuauPathLoader,
}

impl Glue {
    const ALL: &[Glue] = &[
        Glue::PreloadMeta,
        #[cfg(not(feature = "luau"))]
        Glue::TextOnlyLoad,
        #[cfg(feature = "luau")]
        Glue::LuauRequire,
        #[cfg(feature = "luau")]
        Glue::LuauPathLoader,
    ];

    fn source(self) -> String {
        match self {
            Glue::PreloadMeta => format!("{PRELOAD_HEAD}{LOAD_FRAMES}{PRELOAD_META}"),
            #[cfg(not(feature = "luau"))]
            Glue::TextOnlyLoad => TEXT_ONLY_LOAD.to_string(),
            #[cfg(feature = "luau")]
            Glue::LuauRequire => LUAU_REQUIRE.to_string(),
            #[cfg(feature = "luau")]
            Glue::LuauPathLoader => LUAU_PATH_LOADER.to_string(),
        }
    }
}

/// Compiles one install chunk to bytecode (Luau names chunks when they are loaded).
#[cfg(feature = "luau")]
fn compile_glue(_compiler: &Lua, source: &str) -> Option<Vec<u8>> {
    let bytecode = mlua::chunk::Compiler::new().compile(source).ok()?;
    // Luau's compiler reports errors as bytecode starting with a zero byte.
    (bytecode.first() != Some(&0)).then_some(bytecode)
}

/// One of the install chunks as a function of `lua`. Install runs for every state, and
/// parsing the source each time would be most of its cost, so the bytecode is kept for the
/// rest of the process; but a process with one state (a short `luabundle run`) only parses
/// it, as dumping and loading it again would cost it more. So the first state compiles the
/// source, the second compiles it and keeps its dump, and later states load that dump. The
/// bytecode never leaves this process, so it needs no verification.
pub(super) fn glue(lua: &Lua, which: Glue) -> mlua::Result<Function> {
    let slot = which as usize;
    if let Some(bytecode) = GLUE_BYTECODE[slot].get() {
        return lua
            .load(bytecode.as_slice())
            .set_name(GLUE_CHUNK_NAME)
            .set_mode(mlua::chunk::ChunkMode::Binary)
            .into_function();
    }
    let keep = GLUE_COMPILED_ONCE[slot].swap(true, Ordering::Relaxed);
    compile_in(lua, which, keep)
}

/// Per install chunk: its bytecode, once a second state compiled it.
static GLUE_BYTECODE: [OnceLock<Vec<u8>>; Glue::ALL.len()] = [const { OnceLock::new() }; Glue::ALL.len()];
/// Per install chunk: whether a state compiled it already.
static GLUE_COMPILED_ONCE: [AtomicBool; Glue::ALL.len()] = [const { AtomicBool::new(false) }; Glue::ALL.len()];

/// Compiles `which` in `lua`, keeping its bytecode for later states when `keep`.
#[cfg(not(feature = "luau"))]
fn compile_in(lua: &Lua, which: Glue, keep: bool) -> mlua::Result<Function> {
    let function = lua.load(which.source()).set_name(GLUE_CHUNK_NAME).into_function()?;
    if keep {
        let _ = GLUE_BYTECODE[which as usize].set(function.dump(false));
    }
    Ok(function)
}

/// Compiles `which` with Luau's compiler (loading source compiles it the same way), keeping
/// the bytecode for later states when `keep`.
#[cfg(feature = "luau")]
fn compile_in(lua: &Lua, which: Glue, keep: bool) -> mlua::Result<Function> {
    let chunk = |bytecode: &[u8]| {
        lua.load(bytecode).set_name(GLUE_CHUNK_NAME).set_mode(mlua::chunk::ChunkMode::Binary).into_function()
    };
    match compile_glue(lua, &which.source()) {
        Some(bytecode) if keep => chunk(GLUE_BYTECODE[which as usize].get_or_init(|| bytecode)),
        Some(bytecode) => chunk(&bytecode),
        None => lua.load(which.source()).set_name(GLUE_CHUNK_NAME).into_function(),
    }
}

/// Chunk name of the install chunks, as tracebacks show it.
const GLUE_CHUNK_NAME: &str = "=[luabundle loader]";

pub(crate) fn install(installer: Installer, lua: &Lua) -> Result<Installed> {
    let bundle = installer.bundle.clone();
    // A VM that cannot run the bytecode may still run the embedded sources.
    let from_source = match bundle.check_target() {
        Ok(()) => false,
        Err(_) if bundle.has_all_sources()? => true,
        Err(err) => return Err(err),
    };
    let install_error =
        |err: mlua::Error| Error::Install { bundle: bundle.label().to_string(), message: err.to_string() };
    let live = LiveCell::new(Live::new(bundle.clone(), Visibility::of(&bundle, installer.profile.as_deref())?));
    let tracker = Tracker::new(installer.hooks.clone());
    let installer = Arc::new(installer);

    if let Some(limit) = installer.memory_limit {
        set_memory_limit(lua, limit);
    }
    let package = package_table(lua).map_err(install_error)?;
    let preload: Table = package.get("preload").map_err(install_error)?;
    let metatable = match preload.metatable() {
        Some(existing) => existing,
        None => lua.create_table().map_err(install_error)?,
    };
    let previous: Value = metatable.raw_get("__index").map_err(install_error)?;
    let functions = (
        resolve_function(lua, &installer, &live).map_err(install_error)?,
        materialise_function(lua, &live, &tracker, from_source).map_err(install_error)?,
        begin_function(lua, &tracker, from_source).map_err(install_error)?,
        end_function(lua, &tracker).map_err(install_error)?,
        native_function(lua, &installer).map_err(install_error)?,
        group_function(lua, &live).map_err(install_error)?,
        names_function(lua, &installer, &live).map_err(install_error)?,
        previous,
    );
    let (meta, forget): (Table, Function) =
        glue(lua, Glue::PreloadMeta).and_then(|meta| meta.call(functions)).map_err(install_error)?;
    for key in ["__index", "__pairs", "__iter"] {
        metatable.raw_set(key, meta.raw_get::<Value>(key).map_err(install_error)?).map_err(install_error)?;
    }
    preload.set_metatable(Some(metatable)).map_err(install_error)?;
    let context = InstallContext { live: &live, tracker: &tracker, from_source };
    finish_install(lua, &installer, &package, &context).map_err(install_error)?;
    let forget = Arc::new(lua.create_registry_value(forget).map_err(install_error)?);
    Ok(Installed { installer, live, tracker, lua: lua.weak(), forget, from_source })
}

/// The state's `package` table. Luau has none: it gets one with `loaded` and `preload`.
#[cfg(not(feature = "luau"))]
fn package_table(lua: &Lua) -> mlua::Result<Table> {
    lua.globals().get("package")
}

/// The state's `package` table. Luau has none: it gets one with `loaded` and `preload`.
#[cfg(feature = "luau")]
fn package_table(lua: &Lua) -> mlua::Result<Table> {
    let globals = lua.globals();
    let package = match globals.raw_get::<Value>("package")? {
        Value::Table(package) => package,
        _ => {
            let package = lua.create_table()?;
            globals.raw_set("package", &package)?;
            package
        }
    };
    for field in ["loaded", "preload"] {
        if !matches!(package.raw_get::<Value>(field)?, Value::Table(_)) {
            package.raw_set(field, lua.create_table()?)?;
        }
    }
    Ok(package)
}

/// What the last step of an installation needs besides the installer (Luau's path requires
/// only, so unread elsewhere).
#[cfg_attr(not(feature = "luau"), allow(dead_code))]
struct InstallContext<'a> {
    live: &'a LiveCell,
    tracker: &'a SharedTracker,
    from_source: bool,
}

/// Text-only `load` and the hermetic searchers.
#[cfg(not(feature = "luau"))]
fn finish_install(
    lua: &Lua,
    installer: &Arc<Installer>,
    _package: &Table,
    context: &InstallContext<'_>,
) -> mlua::Result<()> {
    if !installer.allow_binary_chunks {
        glue(lua, Glue::TextOnlyLoad)?.call::<()>(())?;
    }
    if installer.hermetic {
        let explain = explain_function(lua, installer, context.live, true)?;
        lua.load(HERMETIC_SEARCHERS).set_name(GLUE_CHUNK_NAME).call::<()>(explain)?;
    }
    Ok(())
}

/// Luau's `require`: dotted names over `package.preload`, paths through Luau's navigator
/// over the bundle (see `path_require`). Luau's `loadstring` already refuses bytecode, and
/// it has no `load`, `loadfile` or `dofile`.
#[cfg(feature = "luau")]
fn finish_install(
    lua: &Lua,
    installer: &Arc<Installer>,
    package: &Table,
    context: &InstallContext<'_>,
) -> mlua::Result<()> {
    let previous: Value = lua.globals().raw_get("require")?;
    let explain = explain_function(lua, installer, context.live, installer.hermetic)?;
    let begin = begin_function(lua, context.tracker, context.from_source)?;
    let end = end_function(lua, context.tracker)?;
    let (loading, probing, trampoline, caller, during, closest) =
        super::path_require::requirers(lua, context.live, context.tracker, context.from_source, begin, end)?;
    let paths = (loading, probing, trampoline, caller, during, closest);
    glue(lua, Glue::LuauRequire)?.call((package, previous, installer.hermetic, explain, paths))
}

/// Sets `limit` unless the state already has a lower one; VMs that cannot limit memory are
/// left as they are.
fn set_memory_limit(lua: &Lua, limit: usize) {
    if let Ok(previous) = lua.set_memory_limit(limit) {
        if previous != 0 && previous < limit {
            let _ = lua.set_memory_limit(previous);
        }
    }
}

/// A runtime error as a Lua error, for the functions install gives Lua.
pub(crate) fn lua_error(err: Error) -> mlua::Error {
    mlua::Error::runtime(err.to_string())
}

/// `resolve(name) -> kind, handle, path`: kind `bundle` (handle: position), `native`
/// (handle: name), `group` (handle: position in the groups), `denied` (handle: message), or
/// nothing.
fn resolve_function(lua: &Lua, installer: &Arc<Installer>, live: &LiveCell) -> mlua::Result<Function> {
    let installer = installer.clone();
    let live = live.clone();
    lua.create_function(move |lua, name: mlua::LuaString| {
        let name = name.to_str()?.to_string();
        let live = live.current();
        let (bundle, visibility) = (&live.bundle, &live.visibility);
        let answer = |kind: &str, handle: Value, path: Option<String>| -> mlua::Result<MultiValue> {
            Ok(MultiValue::from_vec(vec![
                Value::String(lua.create_string(kind)?),
                handle,
                path.map_or(Ok(Value::Nil), |p| lua.create_string(p).map(Value::String))?,
            ]))
        };
        if installer.natives.contains_key(&name) {
            return answer("native", Value::String(lua.create_string(&name)?), None);
        }
        if let Some(position) = bundle.position(&name).map_err(lua_error)? {
            if visibility.allows(position) {
                let path = bundle.record(position).map_err(lua_error)?.path;
                return answer("bundle", Value::Integer(position as i64), Some(path));
            }
            let message = format!(
                "module '{name}' is in bundle {} but not in profile '{}'",
                bundle.label(),
                visibility.profile.as_deref().unwrap_or_default()
            );
            return answer("denied", Value::String(lua.create_string(message)?), None);
        }
        if let Some(group) = bundle.groups().map_err(lua_error)?.iter().position(|g| g.name == name) {
            return answer("group", Value::Integer(group as i64), None);
        }
        Ok(MultiValue::new())
    })
}

/// `materialise(position, name) -> chunk` or `nil, message`. A loader made before a reload
/// may name a position of the bundle it was made for: the name decides, and is looked up
/// again in the bundle served now when the position holds another module.
fn materialise_function(
    lua: &Lua,
    live: &LiveCell,
    tracker: &SharedTracker,
    from_source: bool,
) -> mlua::Result<Function> {
    let live = live.clone();
    let tracker = tracker.clone();
    lua.create_function(move |lua, (position, name): (usize, String)| {
        let live = live.current();
        let bundle = &live.bundle;
        let found = |position: usize| bundle.record(position).ok().filter(|r| r.name == name).map(|r| (position, r));
        let again = || bundle.position(&name).ok().flatten().filter(|&p| live.visibility.allows(p)).and_then(found);
        let Some((position, record)) = found(position).or_else(again) else {
            return Ok((None, Some(format!("no module '{name}' in bundle {}", bundle.label()))));
        };
        match load_module(bundle, lua, position, &record, &tracker, from_source) {
            Ok(chunk) => Ok((Some(chunk), None)),
            Err(err) => Ok((None, Some(err.to_string()))),
        }
    })
}

/// Verifies module `position` (whose record is `record`) and loads it, in the mode its kind
/// demands (its embedded source, in text mode, when `from_source`).
pub(crate) fn load_module(
    bundle: &Bundle,
    lua: &Lua,
    position: usize,
    record: &crate::format::ModuleRecord,
    tracker: &SharedTracker,
    from_source: bool,
) -> Result<Function> {
    let reading = std::time::Instant::now();
    let source = if from_source { bundle.verified_source(position)? } else { None };
    let (bytes, kind) = match source {
        Some(text) => (text, BlobKind::Source),
        None => (bundle.verified_blob(position)?, record.kind),
    };
    let read = reading.elapsed();
    // Source is stored as written: a shebang line or byte order mark is made loadable.
    let (mode, chunk) = crate::chunk_text::for_load(kind, &bytes);
    let chunk: &[u8] = &chunk;
    let undumping = std::time::Instant::now();
    let loaded = lua.load(chunk).set_name(record.chunk_name.as_str()).set_mode(mode).into_function();
    if let Ok(mut tracker) = tracker.lock() {
        tracker.record_load(bytes.len() as u64, read, undumping.elapsed());
    }
    loaded.map_err(|err| Error::Load {
        bundle: bundle.label().to_string(),
        module: record.name.clone(),
        message: err.to_string(),
    })
}

fn begin_function(lua: &Lua, tracker: &SharedTracker, from_source: bool) -> mlua::Result<Function> {
    let tracker = tracker.clone();
    lua.create_function(move |lua, (name, origin): (String, String)| {
        let origin = match (origin.as_str(), from_source) {
            ("native", _) => Origin::Native,
            (_, true) => Origin::EmbeddedSource,
            _ => Origin::Bundle,
        };
        if let Ok(mut tracker) = tracker.lock() {
            tracker.begin(&name, origin, lua.used_memory());
        }
        Ok(())
    })
}

fn end_function(lua: &Lua, tracker: &SharedTracker) -> mlua::Result<Function> {
    let tracker = tracker.clone();
    lua.create_function(move |lua, error: Option<String>| {
        if let Ok(mut tracker) = tracker.lock() {
            tracker.end(error, lua.used_memory());
        }
        Ok(())
    })
}

/// `init_native(name) -> true, value` or `false, message`.
fn native_function(lua: &Lua, installer: &Arc<Installer>) -> mlua::Result<Function> {
    let installer = installer.clone();
    lua.create_function(move |lua, name: String| {
        let Some(init) = installer.natives.get(&name) else {
            return Ok((false, Value::String(lua.create_string(format!("no native module '{name}'"))?)));
        };
        match init(lua) {
            Ok(value) => Ok((true, value)),
            Err(err) => {
                let message = format!("native module '{name}' failed to initialise: {err}");
                Ok((false, Value::String(lua.create_string(message)?)))
            }
        }
    })
}

/// `group_members(position) -> { field = module name }`.
fn group_function(lua: &Lua, live: &LiveCell) -> mlua::Result<Function> {
    let live = live.clone();
    lua.create_function(move |lua, position: usize| {
        let table = lua.create_table()?;
        let live = live.current();
        if let Some(group) = live.bundle.groups().map_err(lua_error)?.get(position) {
            for member in &group.members {
                let field = member.rsplit('.').next().unwrap_or(member);
                table.raw_set(field, member.as_str())?;
            }
        }
        Ok(table)
    })
}

/// `list_names() -> { name, ... }` of every requirable name.
fn names_function(lua: &Lua, installer: &Arc<Installer>, live: &LiveCell) -> mlua::Result<Function> {
    let installer = installer.clone();
    let live = live.clone();
    lua.create_function(move |lua, ()| {
        let live = live.current();
        let names = live.names(installer.natives.keys()).map_err(lua_error)?;
        lua.create_sequence_from(names.iter().map(String::as_str))
    })
}

/// `explain(name) -> message` for a module that is not in the bundle.
fn explain_function(lua: &Lua, installer: &Arc<Installer>, live: &LiveCell, hermetic: bool) -> mlua::Result<Function> {
    let installer = installer.clone();
    let live = live.clone();
    let note = if hermetic { " (hermetic: the file system is not searched)" } else { "" };
    lua.create_function(move |_, name: String| {
        let live = live.current();
        let mut message = format!("no module '{name}' in bundle {}{note}", live.bundle.label());
        let close = closest_names(&name, live.names(installer.natives.keys()).map_err(lua_error)?);
        if !close.is_empty() {
            message.push_str(&format!("; closest bundled names: {}", close.join(", ")));
        }
        Ok(message)
    })
}

/// Up to three names within a small edit distance of `name`, closest first.
fn closest_names(name: &str, names: &[String]) -> Vec<String> {
    let limit = (name.chars().count() / 3).clamp(1, 4);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|candidate| (edit_distance(&name.to_lowercase(), &candidate.to_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_are_few_and_ordered() {
        let names: Vec<String> = ["app.util", "app.utils", "app.config", "zzz"].iter().map(|s| s.to_string()).collect();
        assert_eq!(closest_names("app.utl", &names), ["app.util", "app.utils"]);
        assert!(closest_names("nothing.like.it", &names).is_empty());
    }

    #[test]
    fn install_chunks_work_parsed_and_from_their_kept_bytecode() {
        // The first state parses a chunk, the second keeps its dump, the third loads that.
        for _ in 0..3 {
            let lua = Lua::new();
            for &which in Glue::ALL {
                assert!(glue(&lua, which).is_ok());
            }
            #[cfg(not(feature = "luau"))]
            {
                glue(&lua, Glue::TextOnlyLoad).unwrap().call::<()>(()).unwrap();
                let refused: bool = lua.load("return load(string.dump(function() end)) == nil").eval().unwrap();
                assert!(refused);
            }
        }
        assert!(Glue::ALL.iter().all(|&which| GLUE_BYTECODE[which as usize].get().is_some()));
    }

    #[test]
    fn every_glue_chunk_compiles_in_this_flavour() {
        // A chunk that does not compile would fail install in every state.
        let compiler = Lua::new();
        for &glue in Glue::ALL {
            assert!(compile_in(&compiler, glue, false).is_ok(), "{}", glue.source());
        }
        #[cfg(not(feature = "luau"))]
        compiler.load(HERMETIC_SEARCHERS).into_function().expect("hermetic searchers compile");
    }
}
