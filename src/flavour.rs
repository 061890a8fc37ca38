//! What the build tool knows about the Lua flavour it targets: the syntax full_moon parses
//! and the modules the VM itself provides.

use full_moon::LuaVersion;

/// Name of the flavour feature this build targets.
pub const NAME: &str = "lua54";

/// Modules every Lua 5.4 state has in `package.loaded`, so `require "debug"` needs no file.
pub const STANDARD_MODULES: &[&str] =
    &["_G", "coroutine", "debug", "io", "math", "os", "package", "string", "table", "utf8"];

/// The syntax version full_moon parses for this flavour.
pub fn syntax() -> LuaVersion {
    LuaVersion::lua54()
}
