//! The Lua state a run gets: `lua`'s libraries, warnings, version line and `LUA_INIT`.

use mlua::{Lua, StdLib};

/// A Lua state with the whole standard library, `debug` included, as the `lua` interpreter
/// has (tracebacks and programs that read `debug.getinfo` need it). With `-E`, the package
/// library ignores `LUA_PATH` and `LUA_CPATH`, as under `lua -E`.
pub(super) fn new_state(ignore_environment: bool) -> mlua::Result<Lua> {
    // SAFETY: the state may load C modules, as `lua` may. Bundle modules are still loaded
    // only after their checksums are verified.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::NONE, mlua::LuaOptions::default()) };
    if ignore_environment {
        lua.set_named_registry_value("LUA_NOENV", true)?;
    }
    lua.load_std_libs(all_libraries())?;
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    lua_warnings(&lua);
    Ok(lua)
}

/// Lua 5.4's (and 5.5's) warnings as `lua` shows them: off until `-W` or `warn("@on")`, then each message
/// on stderr after `Lua warning: `, pieces joined until the last.
#[cfg(any(feature = "lua54", feature = "lua55"))]
pub(super) fn lua_warnings(lua: &Lua) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let on = AtomicBool::new(false);
    let continuing = AtomicBool::new(false);
    lua.set_warning_function(move |_, message, incomplete| {
        let was_continuing = continuing.swap(incomplete, Ordering::Relaxed);
        if !was_continuing && message.starts_with('@') {
            match message {
                "@on" => on.store(true, Ordering::Relaxed),
                "@off" => on.store(false, Ordering::Relaxed),
                _ => {}
            }
            return Ok(());
        }
        if on.load(Ordering::Relaxed) {
            let mut stderr = std::io::stderr().lock();
            let head = if was_continuing { "" } else { "Lua warning: " };
            let tail = if incomplete { "" } else { "\n" };
            let _ = write!(stderr, "{head}{message}{tail}");
        }
        Ok(())
    });
}

pub(super) fn all_libraries() -> StdLib {
    // SAFETY (of the flag): `debug` is what `lua` gives its programs too.
    #[cfg(feature = "luau")]
    return StdLib::ALL_SAFE;
    #[cfg(not(feature = "luau"))]
    StdLib::ALL
}

/// The version line `lua -v` prints.
pub(super) fn version_line(lua: &Lua) -> String {
    #[cfg(feature = "luajit")]
    {
        let version: Option<String> = lua.load("return jit and jit.version").eval().ok().flatten();
        return format!(
            "{} -- Copyright (C) 2005-2026 Mike Pall. https://luajit.org/",
            version.unwrap_or_else(|| "LuaJIT".to_string())
        );
    }
    #[cfg(not(feature = "luajit"))]
    {
        let _ = lua;
        let release = if cfg!(feature = "lua51") {
            "Lua 5.1.5  Copyright (C) 1994-2012 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua52") {
            "Lua 5.2.4  Copyright (C) 1994-2015 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua53") {
            "Lua 5.3.6  Copyright (C) 1994-2020 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua54") {
            "Lua 5.4.9  Copyright (C) 1994-2026 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua55") {
            "Lua 5.5.1  Copyright (C) 1994-2026 Lua.org, PUC-Rio"
        } else {
            "Luau"
        };
        release.to_string()
    }
}

/// The environment variables `lua` runs first: this version's, then the plain one.
pub(super) fn init_variables() -> &'static [&'static str] {
    if cfg!(feature = "lua52") {
        &["LUA_INIT_5_2", "LUA_INIT"]
    } else if cfg!(feature = "lua53") {
        &["LUA_INIT_5_3", "LUA_INIT"]
    } else if cfg!(feature = "lua54") {
        &["LUA_INIT_5_4", "LUA_INIT"]
    } else if cfg!(feature = "lua55") {
        &["LUA_INIT_5_5", "LUA_INIT"]
    } else if cfg!(feature = "luau") {
        &[]
    } else {
        &["LUA_INIT"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "luau"))]
    fn the_version_line_names_the_linked_vm() {
        let lua = Lua::new();
        let version: String = lua.globals().get("_VERSION").unwrap();
        let line = version_line(&lua);
        let name = if cfg!(feature = "luajit") { "LuaJIT" } else { version.as_str() };
        assert!(line.starts_with(name), "{line} / {version}");
    }
}
