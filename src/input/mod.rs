//! Input: the roots walked, the files found under them and the module names Lua's
//! `package.path` search gives them. The only stage that reads the source tree.

pub mod discover;
#[cfg(feature = "luau")]
pub mod luau_configs;
pub mod source;
