//! What the build tool knows about the Lua flavour it targets: the syntax full_moon parses
//! and the modules the VM itself provides. Exactly one flavour feature is enabled.

use full_moon::LuaVersion;

#[cfg(not(any(
    feature = "lua51",
    feature = "lua52",
    feature = "lua53",
    feature = "lua54",
    feature = "lua55",
    feature = "luajit",
    feature = "luau"
)))]
compile_error!("luabundle needs one Lua flavour feature: lua51, lua52, lua53, lua54, lua55, luajit or luau");

/// Name of the flavour feature this build targets.
pub const NAME: &str = luabundle_runtime::target::FLAVOUR;

/// Modules every state of the flavour has in `package.loaded`, so `require "debug"` needs no
/// file.
#[cfg(feature = "lua51")]
pub const STANDARD_MODULES: &[&str] = &["_G", "coroutine", "debug", "io", "math", "os", "package", "string", "table"];
/// Modules every state of the flavour has in `package.loaded`.
#[cfg(any(feature = "lua52", feature = "lua53"))]
pub const STANDARD_MODULES: &[&str] =
    &["_G", "bit32", "coroutine", "debug", "io", "math", "os", "package", "string", "table", "utf8"];
/// Modules every state of the flavour has in `package.loaded`.
#[cfg(any(feature = "lua54", feature = "lua55"))]
pub const STANDARD_MODULES: &[&str] =
    &["_G", "coroutine", "debug", "io", "math", "os", "package", "string", "table", "utf8"];
/// Modules every state of the flavour has in `package.loaded`.
#[cfg(feature = "luajit")]
pub const STANDARD_MODULES: &[&str] = &[
    "_G",
    "bit",
    "coroutine",
    "debug",
    "ffi",
    "io",
    "jit",
    "jit.opt",
    "jit.util",
    "math",
    "os",
    "package",
    "string",
    "table",
    "table.new",
    "table.clear",
];
/// Modules every state of the flavour has.
#[cfg(feature = "luau")]
pub const STANDARD_MODULES: &[&str] =
    &["_G", "bit32", "buffer", "coroutine", "debug", "math", "os", "string", "table", "utf8", "vector"];

/// The syntax version full_moon parses for this flavour (Lua 5.4's for 5.5, whose own
/// additions are rewritten first, see `lua55_syntax`).
pub fn syntax() -> LuaVersion {
    #[cfg(feature = "lua51")]
    return LuaVersion::lua51();
    #[cfg(feature = "lua52")]
    return LuaVersion::lua52();
    #[cfg(feature = "lua53")]
    return LuaVersion::lua53();
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    return LuaVersion::lua54();
    #[cfg(feature = "luajit")]
    return LuaVersion::luajit();
    #[cfg(feature = "luau")]
    return LuaVersion::luau();
}
