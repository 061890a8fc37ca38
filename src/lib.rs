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
//! The whole path, from sources to a lazily loaded module:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("lua/app"))?;
//! std::fs::write(dir.path().join("lua/app/main.lua"), "return { answer = require('app.util').double(21) }")?;
//! std::fs::write(dir.path().join("lua/app/util.lua"), "return { double = function(x) return 2 * x end }")?;
//! let output = dir.path().join("app.bundle");
//! let built =
//!     luabundle::Builder::new().root(dir.path().join("lua")).entry("app.main").output(&output).no_cache(true).try_build()?;
//! assert_eq!(built.modules, 2);
//!
//! let bundle = luabundle_runtime::Bundle::open(&output)?;
//! let lua = mlua::Lua::new();
//! bundle.install(&lua)?; // nothing is loaded yet
//! let answer: i64 = lua.load("return require('app.main').answer").eval()?;
//! assert_eq!(answer, 42);
//! # Ok(())
//! # }
//! ```
//!
//! [`Builder`] is the facade; the stages run in order: [`input`] (discover the files and name
//! the modules) -> [`analysis`] (per file: compile with Lua, then find the requires with the
//! quick token scan or the syntax tree; then the require graph) -> the bytecode of the
//! bundled files (from the [`cache`] or compiled again) -> the output (bundle or plain-Lua
//! script, written atomically). [`export`] renders the graph; [`config`] reads
//! `luabundle.toml`.
#![warn(missing_docs)]
// One use, checking whether a lock holder still runs (`util::write::process_runs`), is allowed
// where it is.
#![deny(unsafe_code)]

pub mod analysis;
mod builder;
pub mod cache;
pub mod cargo;
pub mod config;
pub mod diagnostic;
pub mod error;
pub mod export;
pub mod flavour;
pub mod input;
mod output;
mod pipeline;
mod plan;
#[cfg(feature = "sign")]
pub mod sign;
mod syntax;
mod util;

pub use analysis::graph::SiteCounts;
pub use builder::{bundle, Builder, DEFAULT_BUNDLE_NAME, MAX_JOBS};
pub use cargo::CargoInstructions;
pub use config::{Config, ConfigFile};
pub use diagnostic::{Code, Diagnostic, Diagnostics, Severity};
pub use error::Error;
pub use input::discover::Root;
pub use plan::{Compression, Output, OutputFormat, Progress, ProgressFn, Stage, Timings, DEFAULT_ZSTD_LEVEL};

pub use analysis::Analysis;

/// The stages' own entry points, for this package's command line, fuzz targets, tests and
/// benchmarks. Not part of the public API: anything here may change in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::analysis::compile::compile_file;
    pub use crate::analysis::per_file::process;
    pub use crate::analysis::quick_scan::quick_requires;
    pub use crate::output::bundle_file::{write_atomically, write_bundle_atomically};
    pub use crate::syntax::lexer::{tokens, Kind, Token};
    pub use crate::syntax::nesting::{deepest, too_deep};
    pub use crate::syntax::parse::{parse, PARSE_STACK_SIZE};
    pub use crate::util::remove_temporaries_in_flight;
}
