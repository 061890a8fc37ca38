//! Reloading: a newer bundle of the same target swapped into a running state, driven by the
//! require graph.
//!
//! Only modules that are loaded (and not still loading) take part. A loaded module whose bytes changed (its hash, its
//! chunk name or its kind differ), and every loaded module that requires one of those while
//! it loads (transitively, by the eager edges of either bundle), is taken out of
//! `package.loaded` and required again, dependencies first, so that a dependent's reference
//! to the changed module (`local util = require "app.util"` at its top level) is the new one.
//! Every other loaded module keeps its table and its state; native modules are never touched.
//!
//! A module's new table may carry state over: if it has a function `__reload`, it is called
//! with the old table as `new.__reload(old)` right after the new version loads. A module whose
//! new version fails to load (or whose `__reload` fails) keeps its old table in
//! `package.loaded`, and the failure is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use mlua::{Function, Table, Value};

use super::live::{Live, Visibility};
use super::Installed;
use crate::bundle::Bundle;
use crate::error::Result;
use crate::format::{DepKind, ModuleRecord};
use crate::stats::LoadEvent;

/// What [`Installed::reload`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Modules loaded again from the new bundle, in the order they were loaded (each after
    /// the modules it requires).
    pub reloaded: Vec<String>,
    /// Modules whose new version failed: their old version stays loaded.
    pub failed: Vec<ReloadFailure>,
    /// Loaded modules the new bundle no longer has (or its profile no longer allows): taken
    /// out of `package.loaded`.
    pub removed: Vec<String>,
    /// Loaded modules left as they were (their state kept).
    pub kept: usize,
}

/// A module whose new version did not load during a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadFailure {
    /// The module.
    pub module: String,
    /// The error, as text.
    pub message: String,
}

/// A loaded module as the two bundles hold it.
struct Loaded {
    old: ModuleRecord,
    /// Its record in the new bundle, if that has it (and the profile allows it).
    new: Option<ModuleRecord>,
}

impl Loaded {
    fn changed(&self) -> bool {
        self.new.as_ref().is_none_or(|new| {
            new.hash != self.old.hash || new.chunk_name != self.old.chunk_name || new.kind != self.old.kind
        })
    }
}

impl Installed {
    /// Swaps in `new`, a newer bundle of the same target, and loads again the loaded modules
    /// whose bytes changed and those that require them while they load (see the module
    /// documentation for what is kept and what restarts). Names are looked up in `new` from
    /// now on. Hooks see [`LoadEvent::BeforeUnload`] and [`LoadEvent::Reloaded`] for each
    /// module loaded again, besides the usual load events.
    ///
    /// # Errors
    /// [`Error::Install`](crate::Error::Install) if `new` is for another target (or, when this installation loads
    /// embedded sources, lacks some), the state is gone, or its `package` table is missing;
    /// [`Error::UnknownProfile`](crate::Error::UnknownProfile) if `new` lacks the installed profile; a damaged record of
    /// either bundle. Nothing is changed then. A module that fails to load is not an error:
    /// it is in [`ReloadReport::failed`].
    pub fn reload(&self, new: &Bundle) -> Result<ReloadReport> {
        let lua_error = |err: mlua::Error| self.error(err.to_string());
        let lua = self.lua.try_upgrade().ok_or_else(|| self.error("the Lua state is closed".into()))?;
        let old_live = self.live.current();
        let old = &old_live.bundle;
        if new.target() != old.target() {
            return Err(self.error(format!(
                "cannot reload {}: it is built for {}, and the installed bundle for {}",
                new.label(),
                new.target(),
                old.target()
            )));
        }
        if self.from_source && !new.has_all_sources()? {
            return Err(self.error(format!("cannot reload {}: modules load from embedded sources here", new.label())));
        }
        let visibility = Visibility::of(new, self.installer.profile.as_deref())?;
        let package: Table = lua.globals().get("package").map_err(lua_error)?;
        let loaded_table: Table = package.get("loaded").map_err(lua_error)?;
        let preload: Table = package.get("preload").map_err(lua_error)?;
        let require: Function = lua.globals().get("require").map_err(lua_error)?;

        let loaded = self.loaded_modules(&loaded_table, &old_live, new, &visibility)?;
        let order = reload_order(&loaded, old, new)?;
        self.live.replace(Live::new(new.clone(), visibility));
        let forget: Function = lua.registry_value(&self.forget).map_err(lua_error)?;
        forget.call::<()>(&preload).map_err(lua_error)?;

        let mut report = ReloadReport { kept: loaded.len() - order.len(), ..ReloadReport::default() };
        for name in order {
            self.fire(&LoadEvent::BeforeUnload { module: name.clone() });
            let previous: Value = loaded_table.raw_get(name.as_str()).map_err(lua_error)?;
            loaded_table.raw_set(name.as_str(), Value::Nil).map_err(lua_error)?;
            if loaded[&name].new.is_none() {
                report.removed.push(name);
                continue;
            }
            let started = Instant::now();
            match require.call::<Value>(name.as_str()).and_then(|value| carry_over(&value, &previous)) {
                Ok(()) => {
                    self.fire(&LoadEvent::Reloaded { module: name.clone(), duration: started.elapsed() });
                    report.reloaded.push(name);
                }
                Err(err) => {
                    loaded_table.raw_set(name.as_str(), previous).map_err(lua_error)?;
                    report.failed.push(ReloadFailure { module: name, message: error_text(&err) });
                }
            }
        }
        Ok(report)
    }

    /// The modules of the bundle served now that are loaded in the state, by name, with their
    /// records in both bundles.
    fn loaded_modules(
        &self,
        loaded: &Table,
        live: &Live,
        new: &Bundle,
        visibility: &Visibility,
    ) -> Result<BTreeMap<String, Loaded>> {
        let mut modules = BTreeMap::new();
        // A module still loading (the program's main module, say, which Lua 5.1 marks as
        // loaded while it runs) is not loaded again under its own feet.
        let loading = self.tracker.lock().map(|t| t.loading()).unwrap_or_default();
        for pair in loaded.pairs::<Value, Value>() {
            let Ok((Value::String(name), _)) = pair else { continue };
            let Ok(name) = name.to_str().map(|n| n.to_string()) else { continue };
            if self.installer.natives.contains_key(&name) || loading.contains(&name) {
                continue;
            }
            let Some(position) = live.bundle.position(&name)?.filter(|&p| live.visibility.allows(p)) else { continue };
            let old = live.bundle.record(position)?;
            let new = match new.position(&name)?.filter(|&p| visibility.allows(p)) {
                Some(position) => Some(new.record(position)?),
                None => None,
            };
            modules.insert(name, Loaded { old, new });
        }
        Ok(modules)
    }

    fn fire(&self, event: &LoadEvent) {
        if let Ok(tracker) = self.tracker.lock() {
            tracker.fire(event);
        }
    }
}

/// A Lua error as Lua prints it (mlua prefixes its own words to runtime errors).
fn error_text(err: &mlua::Error) -> String {
    match err {
        mlua::Error::RuntimeError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// `new.__reload(old)` when the new version is a table with such a function.
fn carry_over(new: &Value, old: &Value) -> mlua::Result<()> {
    let Value::Table(table) = new else { return Ok(()) };
    match table.get::<Value>("__reload")? {
        Value::Function(hook) => hook.call::<()>(old),
        _ => Ok(()),
    }
}

/// The loaded modules to load again, each after the loaded modules it requires eagerly: the
/// changed ones and, transitively, the loaded modules that require one of them while they
/// load (by the edges of either bundle, so that an edge the new version dropped still counts).
fn reload_order(loaded: &BTreeMap<String, Loaded>, old: &Bundle, new: &Bundle) -> Result<Vec<String>> {
    // Per loaded module, the loaded modules it requires eagerly.
    let mut requires: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (name, module) in loaded {
        let mut names = eager_names(old, &module.old)?;
        if let Some(record) = &module.new {
            names.extend(eager_names(new, record)?);
        }
        names.retain(|n| loaded.contains_key(n) && n != name);
        requires.insert(name, names);
    }
    let mut affected: BTreeSet<&str> = loaded.iter().filter(|(_, m)| m.changed()).map(|(n, _)| n.as_str()).collect();
    loop {
        let more: Vec<&str> = requires
            .iter()
            .filter(|(name, deps)| !affected.contains(*name) && deps.iter().any(|d| affected.contains(d.as_str())))
            .map(|(name, _)| *name)
            .collect();
        if more.is_empty() {
            break;
        }
        affected.extend(more);
    }
    // Dependencies first: a depth-first walk, each module after what it requires. Eager
    // requires have no cycles (the build refuses them), but a forged bundle may: the walk
    // marks a module before its dependencies, so it ends all the same.
    let mut order = Vec::with_capacity(affected.len());
    let mut seen = BTreeSet::new();
    fn visit<'a>(
        name: &'a str,
        requires: &'a HashMap<&str, BTreeSet<String>>,
        affected: &BTreeSet<&str>,
        seen: &mut BTreeSet<&'a str>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(name) {
            return;
        }
        for dep in requires.get(name).into_iter().flatten() {
            if affected.contains(dep.as_str()) {
                visit(dep, requires, affected, seen, order);
            }
        }
        order.push(name.to_string());
    }
    for name in &affected {
        visit(name, &requires, &affected, &mut seen, &mut order);
    }
    Ok(order)
}

/// The names `record` of `bundle` requires eagerly.
fn eager_names(bundle: &Bundle, record: &ModuleRecord) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for dep in record.deps.iter().filter(|d| d.kind == DepKind::Eager) {
        names.insert(bundle.record(dep.module as usize)?.name);
    }
    Ok(names)
}
