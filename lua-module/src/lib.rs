//! luabundle as a loadable Lua module (`require "luabundle"`), for hosts that bring their own
//! Lua: the `lua` and `luajit` interpreters, OpenResty, Neovim. It links no Lua (mlua's
//! module mode) and reuses the runtime crate, so a bundle opened here is read and verified
//! exactly as in a Rust host: nothing decoded before the first require, every module's hash
//! checked before Lua sees its bytes, a bundle for another VM refused with both targets named.
//!
//! ```lua
//! local lb = require "luabundle"
//! local b = assert(lb.open("app.bundle"))       -- header and directory only
//! b:install{ hermetic = false, profile = nil }   -- lazy package.preload entries
//! require "app.main"
//! local report = assert(b:reload())             -- after a rebuild: what changed, again
//! ```

use std::sync::Mutex;

use luabundle_runtime::signature::Verify;
use luabundle_runtime::{Bundle, Installed};
use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};

/// An opened bundle, and its installation once `install` ran.
struct OpenBundle {
    bundle: Bundle,
    installed: Mutex<Option<Installed>>,
    /// Where it was opened from, and under which signature policy: a reload opens the
    /// newer bundle the same way.
    path: String,
    policy: Option<Verify>,
}

impl OpenBundle {
    /// The bundle served now: the last one reloaded, or the one opened.
    fn current(&self) -> Bundle {
        match self.installed.lock().ok().and_then(|i| i.as_ref().map(Installed::bundle)) {
            Some(bundle) => bundle,
            None => self.bundle.clone(),
        }
    }
}

/// A reload report as a Lua table: `reloaded`, `removed` (names), `failed` (`{ module,
/// message }` rows) and `kept` (a count).
fn report_table(lua: &Lua, report: &luabundle_runtime::ReloadReport) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("reloaded", lua.create_sequence_from(report.reloaded.iter().map(String::as_str))?)?;
    table.set("removed", lua.create_sequence_from(report.removed.iter().map(String::as_str))?)?;
    let failed = lua.create_table()?;
    for failure in &report.failed {
        let row = lua.create_table()?;
        row.set("module", failure.module.as_str())?;
        row.set("message", failure.message.as_str())?;
        failed.push(row)?;
    }
    table.set("failed", failed)?;
    table.set("kept", report.kept)?;
    Ok(table)
}

/// `nil, message`: how the module reports errors, as Lua's own `io.open` does.
fn failure(lua: &Lua, message: impl std::fmt::Display) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::Nil, Value::String(lua.create_string(message.to_string())?)]))
}

impl UserData for OpenBundle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // b:install{ hermetic = bool, profile = name, memory_limit = bytes }
        methods.add_method("install", |lua, this, options: Option<Table>| {
            let mut installer = this.bundle.installer();
            if let Some(options) = &options {
                if let Some(hermetic) = options.get::<Option<bool>>("hermetic")? {
                    installer = installer.hermetic(hermetic);
                }
                if let Some(profile) = options.get::<Option<String>>("profile")? {
                    installer = installer.profile(profile);
                }
            }
            match installer.install(lua) {
                Ok(installed) => {
                    *this.installed.lock().map_err(|_| mlua::Error::runtime("poisoned"))? = Some(installed);
                    Ok(MultiValue::from_vec(vec![Value::Boolean(true)]))
                }
                Err(err) => failure(lua, err),
            }
        });
        // b:reload([path]) -> report, or nil, message: the newer bundle at `path` (default:
        // where this one was opened), opened under the same signature policy, swapped in;
        // the loaded modules that changed, and those that require them, load again.
        methods.add_method("reload", |lua, this, path: Option<String>| {
            let path = path.unwrap_or_else(|| this.path.clone());
            let opened = match &this.policy {
                Some(policy) => Bundle::open_verified(&path, policy),
                None => Bundle::open(&path),
            };
            let newer = match opened {
                Ok(newer) => newer,
                Err(err) => return failure(lua, err),
            };
            let installed = this.installed.lock().map_err(|_| mlua::Error::runtime("poisoned"))?.clone();
            let Some(installed) = installed else {
                return failure(lua, "the bundle is not installed: b:install() first");
            };
            match installed.reload(&newer) {
                Ok(report) => Ok(MultiValue::from_vec(vec![Value::Table(report_table(lua, &report)?)])),
                Err(err) => failure(lua, err),
            }
        });
        // b:modules() -> { name, ... } (reads the whole index)
        methods.add_method("modules", |lua, this, ()| match this.current().index() {
            Ok(index) => {
                let names = index
                    .modules
                    .iter()
                    .map(|m| m.name.as_str())
                    .filter(|n| !luabundle_runtime::names::is_path_name(n));
                Ok(MultiValue::from_vec(vec![Value::Table(lua.create_sequence_from(names)?)]))
            }
            Err(err) => failure(lua, err),
        });
        // b:verify() -> true, or nil, message (every module's bytes checked)
        methods.add_method("verify", |lua, this, ()| match this.current().verify_all() {
            Ok(()) => Ok(MultiValue::from_vec(vec![Value::Boolean(true)])),
            Err(err) => failure(lua, err),
        });
        // b:stats() -> { { module, origin, bytes, load_seconds }, ... } once installed
        methods.add_method("stats", |lua, this, ()| {
            let installed = this.installed.lock().map_err(|_| mlua::Error::runtime("poisoned"))?;
            let rows = lua.create_table()?;
            for stat in installed.as_ref().map(Installed::stats).unwrap_or_default() {
                let row = lua.create_table()?;
                row.set("module", stat.module.as_str())?;
                row.set("origin", format!("{:?}", stat.origin).to_lowercase())?;
                row.set("bytes", stat.bytes)?;
                row.set("load_seconds", stat.load_time.as_secs_f64())?;
                rows.push(row)?;
            }
            Ok(rows)
        });
        methods.add_method("label", |_, this, ()| Ok(this.current().label().to_string()));
    }
}

/// `lb.open(path [, { keys = { "<hex public key>", ... } }])`: the bundle, or `nil, message`.
fn open(lua: &Lua, (path, options): (String, Option<Table>)) -> mlua::Result<MultiValue> {
    let keys: Vec<String> = match &options {
        Some(options) => options.get::<Option<Vec<String>>>("keys")?.unwrap_or_default(),
        None => Vec::new(),
    };
    let policy = match keys.is_empty() {
        true => None,
        false => match Verify::required_hex(&keys) {
            Ok(policy) => Some(policy),
            Err(err) => return failure(lua, err),
        },
    };
    let opened = match &policy {
        Some(policy) => Bundle::open_verified(&path, policy),
        None => Bundle::open(&path),
    };
    match opened {
        Ok(bundle) => Ok(MultiValue::from_vec(vec![Value::UserData(lua.create_userdata(OpenBundle {
            bundle,
            installed: Mutex::new(None),
            path,
            policy,
        })?)])),
        Err(err) => failure(lua, err),
    }
}

/// The module's table: `open`, `version`, and the VM it reads bytecode for (`target`).
#[mlua::lua_module]
fn luabundle(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set("open", lua.create_function(open)?)?;
    module.set("version", env!("CARGO_PKG_VERSION"))?;
    module.set("target", luabundle_runtime::target::linked().flavour.as_str())?;
    Ok(module)
}
