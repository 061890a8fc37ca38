//! Integration tests: the real CLI on the fixtures, the runtime on real bundles, and the
//! fixtures run from plain sources and from bundles side by side.

mod accuracy;
mod analysis;
mod build_systems;
mod cli;
mod compression;
mod config;
mod consumer;
// LuaRocks and Penlight are Lua 5.x programs (`io`, `os`, `package`), which Luau cannot run;
// Lua 5.5 refuses some of their files (see `lua55`) and Debian has no `lua5.5` to compare with.
#[cfg(not(any(feature = "luau", feature = "lua55")))]
mod corpora;
mod damage;
mod differential;
mod durability;
mod exe;
mod flavours;
mod fuzz_corpus;
mod incremental;
mod inputs;
mod installer;
mod layout;
mod library;
#[cfg(feature = "luau")]
mod luau_paths;
// Compared with Debian's lua5.4, so for the Lua 5.4 flavour.
#[cfg(feature = "lua55")]
mod lua55;
#[cfg(feature = "lua54")]
mod lua_cli;
mod properties;
mod reload;
mod report;
mod rocks;
mod runtime;
mod signatures;
mod startup_profile;
mod support;
mod trust;
mod watch;
