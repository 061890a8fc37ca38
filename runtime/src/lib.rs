//! Loads luabundle bundles into [mlua] states, lazily and verified.
//!
//! A bundle holds precompiled Lua modules. [`Bundle::install`] makes each of them requirable
//! through `package.preload` without decoding, verifying or running any of them: a module's
//! bytes are checked against their blake3 hash and loaded only on its first `require`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use luabundle_runtime::Bundle;
//!
//! let bundle = Bundle::open("app.bundle")?;
//! let lua = mlua::Lua::new();
//! bundle.install(&lua)?; // cost does not grow with the number of modules
//! lua.load("require('app.main')").exec()?;
//! # Ok(())
//! # }
//! ```
//!
//! The bundle format lives in [`format`], the only module that knows its bytes.
#![warn(missing_docs)]

mod bundle;
mod error;
pub mod format;
mod installer;
mod loader;
mod stats;
pub mod target;

pub use bundle::{Blob, Bundle, Prefetch, MAX_BUNDLE_LEN};
pub use error::{Error, Result};
pub use format::{BlobKind, DepKind, Target};
pub use installer::{Installed, Installer, NativeInit};
pub use stats::{LoadEvent, LoadRecord, ModuleStats, Origin};
