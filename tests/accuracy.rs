//! The static require graph against the truth: each fixture runs under the runtime with
//! `require` traced, and every require the program performs through a constant or computed
//! name must be an edge of the graph, at the same file and line, and every edge of the graph
//! must be performed (each driver exercises all of its fixture's code paths).

use std::collections::BTreeSet;

use luabundle::{export, Builder};
use luabundle_runtime::Bundle;
use mlua::Lua;

use crate::support::{capture_print, fixture, no_search_paths};

/// `file:line -> module`.
type Edge = String;

/// Replaces `require` with a wrapper that records the calling file and line.
///
/// Each record also says how the require ran (in `TRACE_KIND`): `eager` when the module that
/// made it was still loading (the first main chunk up the stack is not the driver's),
/// `deferred` otherwise, and `optional` when a `pcall` or `xpcall` sits between the call and
/// that main chunk.
#[cfg(not(feature = "luau"))]
const TRACER: &str = r#"
local real_require, getinfo, real_pcall, real_xpcall = require, debug.getinfo, pcall, xpcall
TRACE, TRACE_KIND = {}, {}
-- Whether this call of `require` was a tail call (`return require(...)`): then the caller's
-- frame is gone. Lua 5.2+ says so directly; 5.1 and LuaJIT show a "tail" frame instead.
local function tail_called()
  local ok, info = real_pcall(getinfo, 2, "t")
  if ok then return info.istailcall end
  local caller = getinfo(3, "S")
  return caller ~= nil and caller.what == "tail"
end
local function kind(level)
  local optional = false
  while true do
    local info = getinfo(level, "Sf")
    if not info then return "deferred" end
    if info.func == real_pcall or info.func == real_xpcall then optional = true end
    if info.what == "main" then
      local timing = info.source == "=driver" and "deferred" or "eager"
      return optional and (timing .. " optional") or timing
    end
    level = level + 1
  end
end
function require(name)
  if tail_called() then
    TRACE[#TRACE + 1] = "tail call -> " .. tostring(name)
    TRACE_KIND[#TRACE] = kind(3)
    return real_require(name)
  end
  local level, info = 2, getinfo(2, "Sl")
  while info and info.what == "C" do   -- pcall(require, ...) and xpcall
    level = level + 1
    info = getinfo(level, "Sl")
  end
  TRACE[#TRACE + 1] = info.source:gsub("^@", "") .. ":" .. info.currentline .. " -> " .. tostring(name)
  TRACE_KIND[#TRACE] = kind(3)
  return real_require(name)
end
"#;

/// Replaces `require` with a wrapper that records the calling file and line. Luau keeps the
/// frames of tail calls, so every caller is known.
#[cfg(feature = "luau")]
const TRACER: &str = r#"
local real_require, info = require, debug.info
TRACE = {}
function require(name)
  local level = 2
  local source, line = info(level, "sl")
  while source == "[C]" do   -- pcall(require, ...) and xpcall
    level = level + 1
    source, line = info(level, "sl")
  end
  TRACE[#TRACE + 1] = source:gsub("^@", "") .. ":" .. line .. " -> " .. name
  return real_require(name)
end
"#;

/// The graph's edges, the requires performed with a known caller, and the modules required
/// through tail calls (whose caller Lua no longer knows).
/// With `kinds`, every edge also says how it ran (` [eager optional]`), on the graph's side
/// from its timing and optional flag, on the traced side as the tracer saw it (Luau's
/// tracer cannot tell, so there edges are compared without it).
fn traced(
    fixture_name: &str,
    entry: &str,
    includes: &[&str],
    driver: &str,
    kinds: bool,
) -> (BTreeSet<Edge>, BTreeSet<Edge>, BTreeSet<String>) {
    let kinds = kinds && !cfg!(feature = "luau");
    let root = fixture(fixture_name).join("src");
    let mut builder = Builder::new();
    builder.root(&root).entry(entry);
    for include in includes {
        builder.include(*include);
    }
    let dir = tempfile::tempdir().unwrap();
    builder.output(dir.path().join("a.bundle"));
    builder.try_build().unwrap();
    let document = export::document(&builder.analyse().unwrap());
    let bundled: BTreeSet<&str> = document.modules.iter().filter(|m| m.bundled).map(|m| m.name.as_str()).collect();
    let dynamic_sites: BTreeSet<String> = document.dynamic.iter().map(|d| format!("{}:{}", d.file, d.line)).collect();
    let static_edges: BTreeSet<Edge> = document
        .edges
        .iter()
        .filter(|e| bundled.contains(e.from.as_str()))
        .map(|e| {
            // The tracer sees protection; a guarded require is optional by its guard instead.
            let kind = match (kinds, e.optional && e.guard.is_none()) {
                (false, _) => String::new(),
                (true, false) => format!(" [{}]", e.kind),
                (true, true) => format!(" [{} optional]", e.kind),
            };
            format!("{}:{} -> {}{kind}", e.file, e.line, e.to)
        })
        .collect();

    // SAFETY: the debug library is used by the tracer only.
    let lua = unsafe { Lua::unsafe_new() };
    capture_print(&lua);
    no_search_paths(&lua);
    Bundle::open(dir.path().join("a.bundle")).unwrap().install(&lua).unwrap();
    lua.load(TRACER).exec().unwrap();
    lua.load(driver).set_name("=driver").exec().unwrap_or_else(|e| panic!("{fixture_name}: {e}"));
    let trace: Vec<String> =
        lua.globals().get::<mlua::Table>("TRACE").unwrap().sequence_values().map(Result::unwrap).collect();
    let trace_kinds: Vec<String> = match kinds {
        true => lua.globals().get::<mlua::Table>("TRACE_KIND").unwrap().sequence_values().map(Result::unwrap).collect(),
        false => Vec::new(),
    };
    let mut performed = BTreeSet::new();
    let mut tail_called = BTreeSet::new();
    for (i, edge) in trace.into_iter().enumerate() {
        let kind = trace_kinds.get(i).map(|k| format!(" [{k}]")).unwrap_or_default();
        let (site, name) = edge.split_once(" -> ").unwrap();
        if !bundled.contains(name)
            || dynamic_sites.contains(site)
            || site.starts_with("=driver")
            || site.starts_with("driver:")
        {
            continue;
        }
        if site == "tail call" {
            tail_called.insert(format!("{name}{kind}"));
        } else {
            performed.insert(format!("{edge}{kind}"));
        }
    }
    (static_edges, performed, tail_called)
}

fn assert_graph_is_exact(fixture_name: &str, entry: &str, includes: &[&str], driver: &str) {
    assert_traced_graph(fixture_name, entry, includes, driver, false, &[]);
}

/// [`assert_graph_is_exact`], comparing how each require ran too if `kinds`; the graph's
/// edges to the modules `not_run` are left out (requires this VM does not perform).
fn assert_traced_graph(
    fixture_name: &str,
    entry: &str,
    includes: &[&str],
    driver: &str,
    kinds: bool,
    not_run: &[&str],
) {
    let (mut static_edges, performed, tail_called) = traced(fixture_name, entry, includes, driver, kinds);
    static_edges.retain(|edge| !not_run.iter().any(|name| edge.contains(&format!(" -> {name}"))));
    let missed: Vec<_> = performed.difference(&static_edges).collect();
    assert!(missed.is_empty(), "{fixture_name}: requires the graph missed: {missed:?}");
    let phantom: Vec<_> = static_edges
        .difference(&performed)
        .filter(|edge| !tail_called.iter().any(|name| edge.ends_with(&format!(" -> {name}"))))
        .collect();
    assert!(phantom.is_empty(), "{fixture_name}: graph edges never performed: {phantom:?}");
    assert!(!performed.is_empty());
}

#[test]
fn the_app_graph_is_exact() {
    assert_graph_is_exact("app", "app.main", &["app.tool"], "require('app.main') require('app.tool')");
}

#[test]
fn every_require_form_is_in_the_graph() {
    assert_graph_is_exact("require_forms", "main", &[], "require('main').later()");
}

#[test]
fn every_wrapper_of_require_is_in_the_graph_with_its_timing() {
    // Lua 5.1's xpcall passes no arguments to the function, so there `xpcall(require, h,
    // "w.d")` loads nothing (the graph keeps the edge, optional, which costs one module).
    let driver = "if not _ENV then _ENV = _G end\nlocal later = require('wrappers').later\nprint(later())";
    let not_run: &[&str] = if cfg!(feature = "lua51") { &["w.d"] } else { &[] };
    assert_traced_graph("require_wrappers", "wrappers", &[], driver, true, not_run);
    let document = export::document(
        &Builder::new().root(fixture("require_wrappers").join("src")).entry("wrappers").analyse().unwrap(),
    );
    let dynamic: Vec<_> = document.dynamic.iter().map(|d| (d.file.as_str(), d.line, d.expression.as_str())).collect();
    assert_eq!(dynamic, [("src/wrappers.lua", 52, "name")]);
}

#[test]
#[cfg(feature = "lua55")]
fn requires_among_lua55_declarations_are_in_the_graph_with_their_timing() {
    let driver = "print(require('main').later())";
    assert_traced_graph("lua55_syntax", "main", &[], driver, true, &[]);
}

#[test]
fn computed_module_relative_requires_are_in_the_graph() {
    assert_graph_is_exact("relative_requires", "main", &["pkg.init"], "require('main')");
}

#[test]
fn cycles_through_deferred_requires_are_in_the_graph() {
    assert_graph_is_exact("deferred_cycle", "main", &[], "require('main')");
}

#[test]
fn included_plugins_edges_are_in_the_graph() {
    assert_graph_is_exact("dynamic_plugins", "main", &["plugins.*"], "require('main')");
}

/// Every `.lua` file under `dir`, recursively.
fn lua_files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !entry.file_type().is_ok_and(|t| t.is_symlink()) {
            lua_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "lua" || e == "luau") {
            found.push(path);
        }
    }
}

#[test]
fn the_quick_require_scan_agrees_with_the_syntax_tree() {
    let mut files = Vec::new();
    lua_files(&fixture(""), &mut files);
    for debian in ["/usr/share/lua/5.1", "/usr/share/lua/5.4"] {
        lua_files(std::path::Path::new(debian), &mut files);
    }
    let (mut quick, mut compared) = (0, 0);
    for path in &files {
        let Ok(bytes) = std::fs::read(path) else { continue };
        let file = luabundle::input::source::SourceFile::from_bytes(
            0,
            path.clone(),
            path.display().to_string(),
            luabundle::input::source::normalise_line_break_bytes(bytes),
        );
        let Ok(ast) = luabundle::internals::parse(&file) else { continue };
        compared += 1;
        let prepared = luabundle::input::source::prepare_bytes(file.bytes());
        if let Some(sites) = luabundle::internals::quick_requires(&prepared) {
            quick += 1;
            assert_eq!(sites, luabundle::analysis::requires::find_requires(&ast, file.bytes()), "{}", path.display());
        }
    }
    // Most real files use only the plain forms.
    assert!(compared >= 50 && quick * 2 >= compared, "{quick} of {compared} files scanned quickly");
}
