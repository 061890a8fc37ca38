//! Integration tests: the real CLI on the fixtures, the runtime on real bundles, and the
//! fixtures run from plain sources and from bundles side by side.

mod accuracy;
mod analysis;
mod cli;
mod config;
mod consumer;
// LuaRocks and Penlight are Lua 5.x programs (`io`, `os`, `package`), which Luau cannot run.
#[cfg(not(feature = "luau"))]
mod corpora;
mod damage;
mod differential;
mod durability;
mod flavours;
mod fuzz_corpus;
mod incremental;
mod inputs;
mod installer;
mod library;
// Compared with Debian's lua5.4, so for the Lua 5.4 flavour.
#[cfg(feature = "lua54")]
mod lua_cli;
mod properties;
mod report;
mod runtime;
mod signatures;
mod support;
mod watch;
