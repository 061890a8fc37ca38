//! `Installer`: how a bundle is installed into a Lua state (profile, native modules, hooks,
//! hermetic mode, binary chunks), and `Installed`, the handle that reads statistics,
//! unloads modules and reloads a newer bundle afterwards.

mod live;
mod loader;
#[cfg(feature = "luau")]
mod path_require;
mod reload;

pub use reload::{ReloadFailure, ReloadReport};

use std::collections::BTreeMap;
use std::sync::Arc;

use mlua::{Lua, Table, Value};

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::stats::{Hook, LoadEvent, LoadRecord, ModuleStats, SharedTracker};

/// Initialises a native module on its first `require`.
pub type NativeInit = Arc<dyn Fn(&Lua) -> mlua::Result<Value> + Send + Sync>;

/// Options for installing a bundle; from [`Bundle::installer`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let bundle = luabundle_runtime::Bundle::open("app.bundle")?;
/// let lua = mlua::Lua::new();
/// let installed = bundle
///     .installer()
///     .profile("minimal")
///     .native("clock", |lua| Ok(mlua::Value::Table(lua.create_table()?)))
///     .on_load(|event| eprintln!("{event:?}"))
///     .hermetic(true)
///     .install(&lua)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Installer {
    pub(crate) bundle: Bundle,
    pub(crate) profile: Option<String>,
    pub(crate) natives: BTreeMap<String, NativeInit>,
    pub(crate) hooks: Vec<Hook>,
    pub(crate) hermetic: bool,
    pub(crate) allow_binary_chunks: bool,
    pub(crate) memory_limit: Option<usize>,
}

/// The Lua memory limit [`Installer`] sets by default: a hostile or damaged size turns into a
/// Lua "not enough memory" error instead of exhausting the process.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

impl std::fmt::Debug for Installer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installer")
            .field("bundle", &self.bundle)
            .field("profile", &self.profile)
            .field("natives", &self.natives.keys().collect::<Vec<_>>())
            .field("hooks", &self.hooks.len())
            .field("hermetic", &self.hermetic)
            .field("allow_binary_chunks", &self.allow_binary_chunks)
            .field("memory_limit", &self.memory_limit)
            .finish()
    }
}

impl Installer {
    pub(crate) fn new(bundle: &Bundle) -> Installer {
        Installer {
            bundle: bundle.clone(),
            profile: None,
            natives: BTreeMap::new(),
            hooks: Vec::new(),
            hermetic: false,
            allow_binary_chunks: false,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
        }
    }

    /// Makes only the modules of profile `name` requirable (the profile's modules and
    /// everything they require, as the build computed). Requiring another bundled module
    /// fails with an error naming the profile.
    pub fn profile(mut self, name: impl Into<String>) -> Installer {
        self.profile = Some(name.into());
        self
    }

    /// Registers a module implemented in Rust, initialised by `init` on its first `require`
    /// (not before). An error from `init` becomes a Lua error naming the module, and a later
    /// `require` calls `init` again. `init` may require bundled modules, and bundled modules
    /// may require it.
    pub fn native(
        mut self,
        name: impl Into<String>,
        init: impl Fn(&Lua) -> mlua::Result<Value> + Send + Sync + 'static,
    ) -> Installer {
        self.natives.insert(name.into(), Arc::new(init));
        self
    }

    /// Calls `hook` with every load event of the state: before a module loads, after (with
    /// duration and bytes), and on errors.
    pub fn on_load(mut self, hook: impl Fn(&LoadEvent) + Send + Sync + 'static) -> Installer {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// With `true`, `require` searches only the bundle (and native modules, and
    /// `package.preload` entries set by the host): the file system searchers are removed,
    /// and a missing module's error lists the closest bundled names.
    pub fn hermetic(mut self, hermetic: bool) -> Installer {
        self.hermetic = hermetic;
        self
    }

    /// With `true`, code running in the state may `load` binary chunks (precompiled
    /// bytecode). Off by default: Lua does not verify bytecode, so `load`, `loadfile` and
    /// `dofile` accept text only. Bundled modules are unaffected (they are verified).
    pub fn allow_binary_chunks(mut self, allow: bool) -> Installer {
        self.allow_binary_chunks = allow;
        self
    }

    /// Sets the Lua state's memory limit in bytes (default [`DEFAULT_MEMORY_LIMIT`]; a lower
    /// limit the state already has is kept), or with `None` leaves the state's limit alone.
    /// Where the VM cannot limit memory (LuaJIT's own allocator), nothing is set.
    pub fn memory_limit(mut self, limit: Option<usize>) -> Installer {
        self.memory_limit = limit;
        self
    }

    /// Installs the bundle into `lua`.
    ///
    /// # Errors
    /// [`Error::TargetMismatch`] if the bundle was built for another VM, [`Error::Install`]
    /// for an unknown profile or a state without the `package` library.
    pub fn install(self, lua: &Lua) -> Result<Installed> {
        loader::install(self, lua)
    }
}

/// A bundle installed in a Lua state: its statistics, unloading, and reloading a newer
/// bundle ([`Installed::reload`]).
#[derive(Clone)]
pub struct Installed {
    pub(crate) installer: Arc<Installer>,
    /// The bundle served now, which a reload replaces.
    pub(crate) live: live::LiveCell,
    pub(crate) tracker: SharedTracker,
    pub(crate) lua: mlua::WeakLua,
    /// The function (in the state's registry) that takes back the loaders this installation
    /// left in `package.preload`.
    pub(crate) forget: Arc<mlua::RegistryKey>,
    /// Whether modules load from their embedded sources (the VM cannot run the bytecode).
    pub(crate) from_source: bool,
}

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installed").field("bundle", &self.live.current().bundle).finish_non_exhaustive()
    }
}

impl Installed {
    /// Statistics of every module loaded so far in this state, sorted by name.
    pub fn stats(&self) -> Vec<ModuleStats> {
        self.tracker.lock().map(|t| t.stats()).unwrap_or_default()
    }

    /// Every load so far in completion order, with nesting depth and times.
    pub fn load_log(&self) -> Vec<LoadRecord> {
        self.tracker.lock().map(|t| t.log()).unwrap_or_default()
    }

    /// The loads so far as a start-up profile: each module's own time split into reading
    /// (with verifying and decompressing), Lua's load and running its body, and the Lua
    /// memory it allocated; written as a Chrome trace, a speedscope file or collapsed stacks.
    pub fn profile(&self) -> crate::StartupProfile {
        crate::StartupProfile { name: self.live.current().bundle.label().to_string(), loads: self.load_log() }
    }

    /// The names `require` finds through this installation (bundled modules in the profile,
    /// groups, native modules), sorted. The first call after install or a reload reads the
    /// whole index.
    ///
    /// # Errors
    /// As [`Bundle::index`].
    pub fn modules(&self) -> Result<Vec<String>> {
        Ok(self.live.current().names(self.installer.natives.keys())?.to_vec())
    }

    /// The bundle served now (the last one reloaded, or the one installed).
    pub fn bundle(&self) -> Bundle {
        self.live.current().bundle.clone()
    }

    /// Clears `package.loaded[name]`, so the next `require(name)` loads the module again.
    /// Returns whether it was loaded.
    ///
    /// # Errors
    /// [`Error::Install`] if the state is gone or has no `package.loaded`.
    pub fn unload(&self, name: &str) -> Result<bool> {
        let lua_error = |err: mlua::Error| self.error(err.to_string());
        let lua = self.lua.try_upgrade().ok_or_else(|| lua_error(mlua::Error::runtime("the Lua state is closed")))?;
        let loaded: Table = lua.globals().get::<Table>("package").and_then(|p| p.get("loaded")).map_err(lua_error)?;
        let was: Value = loaded.raw_get(name).map_err(lua_error)?;
        loaded.raw_set(name, Value::Nil).map_err(lua_error)?;
        Ok(!was.is_nil())
    }

    /// An installation error about the bundle served now.
    pub(crate) fn error(&self, message: String) -> Error {
        Error::Install { bundle: self.live.current().bundle.label().to_string(), message }
    }
}
