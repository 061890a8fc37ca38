//! Installing a bundle into a Lua state: lazy `package.preload` entries.
//!
//! Install creates a fixed handful of Lua objects whatever the bundle's size: a metatable on
//! `package.preload` whose `__index` looks a name up in the bundle's index and, only then,
//! creates that module's loader. The loader verifies the module's bytes, loads them in binary
//! mode, and calls the chunk with `(name, path)` as Lua's own file loaders do, so `require`
//! keeps its usual semantics (`package.loaded`, `true` for modules returning nothing).

use mlua::{Function, Lua, Table, Value};

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::format::BlobKind;

/// The `__index` metamethod, written in Lua so that module bodies run as plain Lua calls and
/// their errors and tracebacks pass through untouched.
const PRELOAD_INDEX: &str = r#"
local find, materialise, previous = ...
local rawset, error, type = rawset, error, type
local function chain(preload, name)
  if type(previous) == "function" then return previous(preload, name) end
  if type(previous) == "table" then return previous[name] end
  return nil
end
return function(preload, name)
  local position, path = find(name)
  if position == nil then return chain(preload, name) end
  local function loader()
    local chunk, err = materialise(position)
    if chunk == nil then error(err, 0) end
    return chunk(name, path)
  end
  rawset(preload, name, loader)
  return loader
end
"#;

pub(crate) fn install(bundle: &Bundle, lua: &Lua) -> Result<()> {
    bundle.check_target()?;
    let install_error =
        |err: mlua::Error| Error::Install { bundle: bundle.label().to_string(), message: err.to_string() };
    let preload = preload_table(lua).map_err(install_error)?;
    let find = find_function(bundle, lua).map_err(install_error)?;
    let materialise = materialise_function(bundle, lua).map_err(install_error)?;
    let metatable = match preload.metatable() {
        Some(existing) => existing,
        None => lua.create_table().map_err(install_error)?,
    };
    let previous: Value = metatable.raw_get("__index").map_err(install_error)?;
    let index: Function =
        lua.load(PRELOAD_INDEX).set_name("=luabundle").call((find, materialise, previous)).map_err(install_error)?;
    metatable.raw_set("__index", index).map_err(install_error)?;
    preload.set_metatable(Some(metatable)).map_err(install_error)
}

fn preload_table(lua: &Lua) -> mlua::Result<Table> {
    let package: Table = lua.globals().get("package")?;
    package.get("preload")
}

/// `find(name) -> position, path` (zero-based position) or nothing.
fn find_function(bundle: &Bundle, lua: &Lua) -> mlua::Result<Function> {
    let bundle = bundle.clone();
    lua.create_function(move |_, name: Value| {
        let Value::String(name) = name else {
            return Ok((None, None));
        };
        let Ok(name) = name.to_str() else {
            return Ok((None, None));
        };
        let Some(position) = bundle.index().position(&name) else {
            return Ok((None, None));
        };
        Ok((Some(position), Some(bundle.index().modules[position].path.clone())))
    })
}

/// `materialise(position) -> chunk` or `nil, message`.
fn materialise_function(bundle: &Bundle, lua: &Lua) -> mlua::Result<Function> {
    let bundle = bundle.clone();
    lua.create_function(move |lua, position: usize| {
        if position >= bundle.index().modules.len() {
            return Ok((None, Some(format!("no module #{position} in bundle {}", bundle.label()))));
        }
        match load_module(&bundle, lua, position) {
            Ok(chunk) => Ok((Some(chunk), None)),
            Err(err) => Ok((None, Some(err.to_string()))),
        }
    })
}

/// Verifies module `position` and loads it, in the mode its kind demands.
fn load_module(bundle: &Bundle, lua: &Lua, position: usize) -> Result<Function> {
    let record = &bundle.index().modules[position];
    let bytes = bundle.verified_blob(position)?;
    let mode = match record.kind {
        BlobKind::Bytecode => mlua::chunk::ChunkMode::Binary,
        BlobKind::Source => mlua::chunk::ChunkMode::Text,
    };
    lua.load(bytes.as_ref()).set_name(record.chunk_name.as_str()).set_mode(mode).into_function().map_err(|err| {
        Error::Load { bundle: bundle.label().to_string(), module: record.name.clone(), message: err.to_string() }
    })
}
