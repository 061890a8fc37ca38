//! Analysis: per file, compiling with Lua and finding the requires (the quick token scan, or
//! the syntax tree); then the require graph over all files.

pub mod compile;
pub mod computed_names;
pub mod graph;
pub mod per_file;
pub mod quick_scan;
pub mod requires;
