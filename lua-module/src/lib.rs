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
//! ```

use std::sync::Mutex;

use luabundle_runtime::signature::Verify;
use luabundle_runtime::{Bundle, Installed};
use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};

/// An opened bundle, and its installation once `install` ran.
struct OpenBundle {
    bundle: Bundle,
    installed: Mutex<Option<Installed>>,
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
        // b:modules() -> { name, ... } (reads the whole index)
        methods.add_method("modules", |lua, this, ()| match this.bundle.index() {
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
        methods.add_method("verify", |lua, this, ()| match this.bundle.verify_all() {
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
        methods.add_method("label", |_, this, ()| Ok(this.bundle.label().to_string()));
    }
}

/// `lb.open(path [, { keys = { "<hex public key>", ... } }])`: the bundle, or `nil, message`.
fn open(lua: &Lua, (path, options): (String, Option<Table>)) -> mlua::Result<MultiValue> {
    let keys: Vec<String> = match &options {
        Some(options) => options.get::<Option<Vec<String>>>("keys")?.unwrap_or_default(),
        None => Vec::new(),
    };
    let opened = match keys.is_empty() {
        true => Bundle::open(&path),
        false => match Verify::required_hex(&keys) {
            Ok(policy) => Bundle::open_verified(&path, &policy),
            Err(err) => return failure(lua, err),
        },
    };
    match opened {
        Ok(bundle) => Ok(MultiValue::from_vec(vec![Value::UserData(
            lua.create_userdata(OpenBundle { bundle, installed: Mutex::new(None) })?,
        )])),
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
