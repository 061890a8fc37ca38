//! Loads luabundle bundles into [mlua] states, lazily and verified.
//!
//! A bundle holds precompiled Lua modules. [`Bundle::install`] makes each of them requirable
//! through `package.preload` without decoding, verifying or running any of them: a module's
//! bytes are checked against their blake3 hash and loaded only on its first `require`.
//! [`Bundle::installer`] adds profiles, native (Rust) modules, load hooks, statistics and a
//! hermetic mode.
//!
//! Bundles are made by the `luabundle` build tool, usually from a `build.rs`, and embedded
//! with [`include_bundle!`]. This example makes one by hand with the [`format`](mod@format) writer so it
//! runs on its own:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use luabundle_runtime::{format, Bundle, LoadEvent};
//!
//! // A bundle with one module, `greet`, compiled for the linked Lua.
//! let compiler = mlua::Lua::new();
//! let source = "local clock = require('clock') return { hello = function(n) return 'hello ' .. n .. ' at ' .. clock end }";
//! # #[cfg(not(feature = "luau"))]
//! let bytecode = compiler.load(source).set_name("@greet.lua").into_function()?.dump(false);
//! # #[cfg(feature = "luau")]
//! # let bytecode = mlua::chunk::Compiler::new().compile(source)?;
//! let greet = format::ModuleInput {
//!     name: "greet".into(),
//!     chunk_name: "@greet.lua".into(),
//!     path: "greet.lua".into(),
//!     kind: format::BlobKind::Bytecode,
//!     bytes: bytecode,
//!     encoding: format::Encoding::Plain,
//!     source: None,
//!     deps: vec![],
//! };
//! let bytes = format::encode(&format::BundleContents {
//!     target: luabundle_runtime::target::linked().clone(),
//!     modules: vec![greet],
//!     entry: Some(0),
//!     externals: vec!["clock".into()],
//!     profiles: vec![],
//!     groups: vec![],
//! })?;
//!
//! // The host: one bundle, a native module, a hook.
//! let bundle = Bundle::from_bytes(bytes)?;
//! let lua = mlua::Lua::new();
//! let installed = bundle
//!     .installer()
//!     .native("clock", |_| Ok(mlua::Value::Integer(12)))
//!     .on_load(|event| if let LoadEvent::After { module, .. } = event { println!("loaded {module}") })
//!     .install(&lua)?;
//! let greeting: String = lua.load("return require('greet').hello('world')").eval()?;
//! assert_eq!(greeting, "hello world at 12");
//! assert_eq!(installed.stats().len(), 2); // greet and clock
//! # Ok(())
//! # }
//! ```
//!
//! The bundle format lives in [`format`](mod@format), the only module that knows its bytes.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod bundle;
pub mod chunk_text;
mod error;
pub mod format;
mod installer;
pub mod io;
#[cfg(feature = "luau")]
pub mod luau_paths;
pub mod names;
mod profile;
#[cfg(feature = "sign")]
pub mod signature;
mod stats;
pub mod target;

pub use bundle::{Blob, Bundle, Prefetch, StoredBlob, MAX_BUNDLE_LEN};
pub use error::{Error, Result};
pub use format::{BlobKind, DepKind, Target};
pub use installer::{Installed, Installer, NativeInit, ReloadFailure, ReloadReport, DEFAULT_MEMORY_LIMIT};
pub use profile::StartupProfile;
pub use stats::{LoadEvent, LoadRecord, ModuleStats, Origin};

/// Opens a bundle that a build script wrote to `$OUT_DIR`, embedded in the program:
/// `include_bundle!("app.bundle")` is
/// `Bundle::from_static(include_bytes!(concat!(env!("OUT_DIR"), "/app.bundle")))`.
///
/// ```text
/// let bundle = luabundle_runtime::include_bundle!("app.bundle")?;
/// ```
///
/// (`examples/embedded_app/` in the luabundle repository uses it in a real build.)
#[macro_export]
macro_rules! include_bundle {
    ($name:literal) => {
        $crate::Bundle::from_static(include_bytes!(concat!(env!("OUT_DIR"), "/", $name)))
    };
}
