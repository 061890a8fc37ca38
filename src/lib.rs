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
//! The stages are separate modules and only [`Builder`] runs them in order:
//! [`discover`] -> [`front_end`] (per file: [`compile`], then [`scan`], or [`parse`] and
//! [`requires`] when the quick scan is not enough) -> [`graph`] -> [`emit`].
#![warn(missing_docs)]

pub mod analysis;
pub mod builder;
pub mod cache;
pub mod cargo;
pub mod config;
pub mod diagnostic;
pub mod error;
pub mod export;
pub mod flavour;
pub mod input;
pub mod output;
mod pipeline;
mod plan;
#[cfg(feature = "sign")]
pub mod sign;
pub mod syntax;
pub mod util;

pub use builder::{
    bundle, Analysis, Builder, Output, OutputFormat, Progress, Stage, Timings, DEFAULT_BUNDLE_NAME, MAX_JOBS,
};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use error::Error;
pub use input::discover::Root;
