//! Input: the roots walked, the files found under them and the module names Lua's
//! `package.path` search gives them, and the modules LuaRocks names (rockspecs, rocks trees).
//! The only stage that reads the source tree.

pub mod discover;
#[cfg(feature = "luau")]
pub mod luau_configs;
pub mod rocks;
pub mod source;
