//! luabundle: an ahead-of-time Lua bundler and bytecode compiler.
//!
//! It finds every module under a set of source roots, checks the `require` graph (missing
//! modules, require cycles that cannot work), compiles every module to bytecode in parallel,
//! and writes one verified bundle that the `luabundle-runtime` crate loads lazily.
//!
//! In a `build.rs`:
//!
//! ```no_run
//! // Writes $OUT_DIR/app.bundle; prints diagnostics and exits 1 on errors.
//! luabundle::Builder::new().root("lua").entry("app.main").build();
//! ```
//!
//! The stages are separate modules and only [`Builder`] runs them in order:
//! [`discover`] -> [`parse`] -> [`requires`] -> [`graph`] -> [`compile`] -> [`emit`].
#![warn(missing_docs)]

pub mod builder;
pub mod cache;
pub mod cargo;
pub mod compile;
pub mod config;
pub mod diagnostic;
pub mod discover;
pub mod emit;
pub mod error;
pub mod export;
pub mod flavour;
pub mod freshness;
pub mod front_end;
pub mod graph;
pub mod lua_output;
mod lua_string;
pub mod manifest;
pub mod nesting;
pub mod parse;
mod pipeline;
pub mod relative;
pub mod requires;
pub mod scan;
#[cfg(feature = "sign")]
pub mod sign;
pub mod source;
pub mod stat_table;

pub use builder::{bundle, Analysis, Builder, Output, OutputFormat, Progress, Stage, Timings};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use discover::Root;
pub use error::Error;
