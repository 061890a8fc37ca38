//! Output: the bundle (or plain-Lua script) assembled from the analysis and written
//! atomically, and the manifest beside it.

pub mod bundle_file;
pub mod lua_script;
pub mod manifest;
pub(crate) mod paths;
