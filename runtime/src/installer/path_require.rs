//! Luau's path requires (`./x`, `../x`, `@alias/x`, `@self/x`) answered from the bundle.
//!
//! A Luau bundle stores every module a second time under its path (`./src/util.luau`, the
//! same bytes) and the configuration files the build found (`./src/.luaurc`), so the
//! bundle's index is the tree Luau's own navigator walks ([`BundleTree`]): a file is a
//! record, a directory is a name prefix (found by binary search), a configuration file is
//! read verified like a module. Modules load lazily and verified, as by dotted name.
//!
//! Cyclic requires follow Luau's RFC: each module gets an export table as its `...`, which a
//! cyclic requirer receives and which refuses access while its module is inside a require;
//! a module that returns its own table instead fills the export table when it finishes (as
//! Luau's own require fills its placeholder), so every requirer holds the same table.

use mlua::{Function, Lua, Table, Value};

use super::live::LiveCell;
use super::loader::{glue, load_module, lua_error, Glue};
use crate::luau_paths::{self, ModuleTree, TreeRequirer};
use crate::names::{edit_distance, is_path_name};
use crate::stats::SharedTracker;

/// Where the state keeps the function that wraps a module chunk into its loader.
const PATH_LOADER_KEY: &str = "luabundle.path_loader";

/// The bundle as a tree of paths.
struct BundleTree {
    live: LiveCell,
    tracker: SharedTracker,
    from_source: bool,
    /// Finds without loading: the loader returns `true` (see [`requirers`]).
    probe: bool,
}

impl BundleTree {
    fn position(&self, path: &str) -> Option<usize> {
        if !is_path_name(path) {
            return None;
        }
        let live = self.live.current();
        live.bundle.position(path).ok().flatten().filter(|&p| live.visibility.allows(p))
    }
}

impl ModuleTree for BundleTree {
    fn is_file(&self, path: &str) -> bool {
        self.position(path).is_some()
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
        is_path_name(&prefix) && self.live.current().bundle.has_name_with_prefix(&prefix).unwrap_or(false)
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let position = self.position(path)?;
        self.live.current().bundle.verified_blob(position).ok().map(|bytes| bytes.to_vec())
    }

    fn load(&self, lua: &Lua, path: &str) -> mlua::Result<Function> {
        if self.probe {
            return lua.create_function(|_, ()| Ok(true));
        }
        let position = self.position(path).ok_or_else(|| mlua::Error::runtime(format!("no module {path}")))?;
        let bundle = &self.live.current().bundle;
        let record = bundle.record(position).map_err(lua_error)?;
        let chunk = load_module(bundle, lua, position, &record, &self.tracker, self.from_source).map_err(lua_error)?;
        let wrap: Function = lua.named_registry_value(PATH_LOADER_KEY)?;
        wrap.call((chunk, path))
    }
}

/// What the Luau `require` glue needs for path requires: the require that loads from the
/// bundle, the one that only finds (its cache keys apart), the maker of the trampolines
/// through which both are called, so that Luau's navigator sees the caller's chunk name, the
/// function that tells that name, and the one that makes a require during a module's load
/// (with that module's export table refusing access; see `glue/luau_path_loader.lua`), and
/// the one that names the closest bundled modules for an error.
pub(crate) fn requirers(
    lua: &Lua,
    live: &LiveCell,
    tracker: &SharedTracker,
    from_source: bool,
    begin: Function,
    end: Function,
) -> mlua::Result<(Function, Function, Function, Function, Function, Function)> {
    let lock = lua.create_function(|_, (table, locked): (Table, Table)| {
        table.set_metatable(Some(locked))?;
        table.set_readonly(true);
        Ok(())
    })?;
    let unlock = lua.create_function(|_, table: Table| {
        table.set_readonly(false);
        table.set_metatable(None)
    })?;
    let (wrap, during): (Function, Function) =
        glue(lua, Glue::LuauPathLoader)?.call((begin, end, lock, unlock, populate(lua)?))?;
    lua.set_named_registry_value(PATH_LOADER_KEY, wrap)?;
    let tree = |probe| BundleTree { live: live.clone(), tracker: tracker.clone(), from_source, probe };
    let loading = lua.create_require_function(TreeRequirer::new(tree(false)))?;
    let probing = lua.create_require_function(TreeRequirer::new(tree(true)).with_key_prefix("probe:"))?;
    let trampoline = lua.create_function(|lua, caller: String| {
        lua.load("local require, path = ... return require(path)").set_name(caller).into_function()
    })?;
    // The chunk name of the Lua function that called `require` (debug.info gives only its
    // short form): the first function below the glue's that is not a C function.
    let caller = lua.create_function(|lua, ()| {
        Ok((2..)
            .map_while(|level| {
                lua.inspect_stack(level, |frame| {
                    let source = frame.source();
                    (source.what != "C").then(|| source.source.map(|s| s.into_owned()))
                })
            })
            .flatten()
            .next()
            .flatten())
    })?;
    let closest = closest_function(lua, live)?;
    Ok((loading, probing, trampoline, caller, during, closest))
}

/// `closest(path)`: the note naming up to three bundled modules whose last path component is
/// within a small edit distance of the path's (`./utl` finds `./src/util.luau`), or `""`.
/// Reads the whole index, so only for an error.
fn closest_function(lua: &Lua, live: &LiveCell) -> mlua::Result<Function> {
    let live = live.clone();
    lua.create_function(move |_, name: String| {
        let last = |path: &str| path.rsplit(['/', '@', '\\']).next().unwrap_or_default().to_lowercase();
        let wanted = last(&name);
        let limit = (wanted.chars().count() / 3).clamp(1, 4);
        let live = live.current();
        let Ok(index) = live.bundle.index() else { return Ok(String::new()) };
        let mut scored: Vec<(usize, &str)> = index
            .modules
            .iter()
            .enumerate()
            .filter(|(i, m)| live.visibility.allows(*i) && is_path_name(&m.name))
            .filter_map(|(_, m)| Some((luau_paths::module_of_file(&m.name)?, m.name.as_str())))
            .map(|(module, name)| (edit_distance(&wanted, &last(&module)), name))
            .filter(|(distance, _)| *distance <= limit)
            .collect();
        scored.sort();
        let close: Vec<&str> = scored.into_iter().take(3).map(|(_, name)| name).collect();
        Ok(match close.is_empty() {
            true => String::new(),
            false => format!("; closest bundled modules: {}", close.join(", ")),
        })
    })
}

/// `populate(placeholder, result)`: the placeholder takes the result's fields and metatable
/// (raw, as Luau's require copies them) and is frozen.
fn populate(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|_, (placeholder, result): (Table, Table)| {
        placeholder.set_readonly(false);
        result.for_each(|key: Value, value: Value| placeholder.raw_set(key, value))?;
        placeholder.set_metatable(result.metatable())?;
        placeholder.set_readonly(true);
        Ok(placeholder)
    })
}

#[cfg(test)]
mod tests {
    use crate::format::{encode, BlobKind, BundleContents, ModuleInput};
    use crate::Bundle;

    /// A bundle of Luau modules stored under their paths, and `.luaurc` files.
    fn bundle(files: &[(&str, &str)]) -> Bundle {
        let mut modules: Vec<ModuleInput> = files
            .iter()
            .map(|(path, text)| {
                let config = path.ends_with(".luaurc") || path.ends_with(".config.luau");
                let bytes = match config {
                    true => text.as_bytes().to_vec(),
                    false => mlua::chunk::Compiler::new().compile(*text).unwrap(),
                };
                let display = path.trim_start_matches("./");
                ModuleInput {
                    name: path.to_string(),
                    chunk_name: format!("@{display}"),
                    path: display.to_string(),
                    kind: if config { BlobKind::Source } else { BlobKind::Bytecode },
                    bytes,
                    encoding: crate::format::Encoding::Plain,
                    source: None,
                    deps: vec![],
                }
            })
            .collect();
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        let contents = BundleContents {
            target: crate::target::linked().clone(),
            modules,
            entry: None,
            externals: vec![],
            profiles: vec![],
            groups: vec![],
        };
        Bundle::from_bytes(encode(&contents).unwrap()).unwrap()
    }

    #[test]
    fn path_requires_find_bundled_modules_by_luau_rules() {
        let bundle = bundle(&[
            ("./src/main.luau", "local util = require('./util')\nlocal pkg = require('./pkg')\nlocal json = require('@lib/json')\nreturn util.name .. ' ' .. pkg.name .. ' ' .. json.name"),
            ("./src/util.luau", "return { name = 'util' }"),
            ("./src/pkg/init.luau", "local child = require('@self/child')\nlocal sibling = require('./util')\nreturn { name = 'pkg(' .. child .. ',' .. sibling.name .. ')' }"),
            ("./src/pkg/child.luau", "return 'child'"),
            ("./src/.luaurc", r#"{ "aliases": { "lib": "./vendor" } }"#),
            ("./src/vendor/json.luau", "return { name = 'json' }"),
        ]);
        let lua = mlua::Lua::new();
        bundle.installer().hermetic(true).install(&lua).unwrap();
        let got: String = lua.load("return require('./src/main')").set_name("@main.rs").eval().unwrap();
        assert_eq!(got, "util pkg(child,util) json");
        // The same module, whichever path reaches it.
        let same: bool = lua
            .load("return require('./src/util') == require('./src/pkg/../util')")
            .set_name("@main.rs")
            .eval()
            .unwrap();
        assert!(same);
        let err = lua.load("return require('./src/nowhere')").set_name("@main.rs").exec().unwrap_err();
        assert!(err.to_string().contains("could not resolve child component \"nowhere\""), "{err}");
        let err = lua.load("return require('./src/utl')").set_name("@main.rs").exec().unwrap_err();
        assert!(err.to_string().contains("closest bundled modules: ./src/util.luau"), "{err}");
        let err = lua.load("return require('src/util')").set_name("@main.rs").exec().unwrap_err();
        assert!(err.to_string().contains("require path must start with a valid prefix: ./, ../, or @"), "{err}");
    }

    #[test]
    fn a_cycle_gets_a_placeholder_that_becomes_the_module() {
        let bundle = bundle(&[
            ("./a.luau", "local b = require('./b')\nlocal M = { name = 'a' }\nfunction M.partner() return b.name end\nreturn M"),
            ("./b.luau", "local a = require('./a')\nlocal ok, err = pcall(function() return a.name end)\nreturn { name = 'b', early = err, later = function() return a.name end }"),
        ]);
        let lua = mlua::Lua::new();
        bundle.installer().hermetic(true).install(&lua).unwrap();
        let (partner, early, later, same): (String, String, String, bool) = lua
            .load("local a = require('./a') local b = require('./b') return a.partner(), b.early, b.later(), a == require('./a')")
            .set_name("@main.rs")
            .eval()
            .unwrap();
        assert_eq!(partner, "b");
        assert_eq!(
            early,
            "Cannot access the exported field 'name' because it has a cyclic dependency on its requiring module"
        );
        assert_eq!(later, "a");
        assert!(same);
    }

    #[test]
    fn each_module_gets_an_export_table_that_a_cycle_shares() {
        let bundle = bundle(&[
            (
                "./a.luau",
                "local M = ...\nlocal b = require('./b')\nM.name = 'a'\nfunction M.f() return b.g() end\nreturn M",
            ),
            (
                "./b.luau",
                "local a = require('./a')\nlocal M = ...\nfunction M.g() return 'g sees ' .. a.name end\nreturn M",
            ),
            ("./plain.luau", "local exports = ...\nexports.value = 42"),
            ("./nothing.luau", "local x = 1"),
        ]);
        let lua = mlua::Lua::new();
        bundle.installer().hermetic(true).install(&lua).unwrap();
        let (f, value, nothing): (String, i64, bool) = lua
            .load("return require('./a').f(), require('./plain').value, require('./nothing')")
            .set_name("@main.rs")
            .eval()
            .unwrap();
        assert_eq!((f.as_str(), value, nothing), ("g sees a", 42, true));
    }
}
