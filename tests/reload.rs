//! `Installed::reload`: a newer bundle swapped into a running state, reloading what changed
//! and what requires it, keeping everything else.

use std::path::Path;
use std::sync::{Arc, Mutex};

use luabundle_runtime::{Bundle, LoadEvent};
use mlua::Lua;

/// Writes `files` under `dir/src` and builds them into `dir/<name>.bundle`.
fn bundle(dir: &Path, name: &str, files: &[(&str, impl AsRef<str>)]) -> Bundle {
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text.as_ref()).unwrap();
    }
    let output = dir.join(format!("{name}.bundle"));
    let mut builder = luabundle::Builder::new();
    builder.root(&src).output(&output).no_cache(true).external("clock");
    builder.try_build().unwrap_or_else(|e| panic!("{e}"));
    Bundle::open(output).unwrap()
}

const COUNTER: &str = "local M = { n = 0 }\nfunction M.bump() M.n = M.n + 1 return M.n end\nreturn M\n";
const MAIN: &str =
    "local util = require('app.util')\nlocal M = {}\nfunction M.hello() return util.greet() end\nreturn M\n";

fn util(version: &str) -> String {
    format!("local M = {{ calls = 0 }}\nfunction M.greet() M.calls = M.calls + 1 return '{version}' end\nreturn M\n")
}

fn version(util_text: &str) -> Vec<(&'static str, String)> {
    vec![
        ("app/counter.lua", COUNTER.to_string()),
        ("app/util.lua", util_text.to_string()),
        ("app/main.lua", MAIN.to_string()),
        ("app/extra.lua", "return { extra = true }\n".to_string()),
    ]
}

#[test]
fn a_reload_keeps_untouched_state_and_updates_the_changed_module_and_its_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = bundle(dir.path(), "v1", &version(&util("v1")));
    let lua = Lua::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let installed = v1
        .installer()
        .native("clock", |lua| Ok(mlua::Value::Table(lua.create_table()?)))
        .on_load(move |event| match event {
            LoadEvent::BeforeUnload { module } => seen.lock().unwrap().push(format!("unload {module}")),
            LoadEvent::Reloaded { module, .. } => seen.lock().unwrap().push(format!("reloaded {module}")),
            _ => {}
        })
        .install(&lua)
        .unwrap();
    lua.load(
        "counter = require('app.counter') counter.bump() counter.bump()
         main = require('app.main') clock = require('clock') extra = require('app.extra')",
    )
    .exec()
    .unwrap();
    assert_eq!(lua.load("return main.hello()").eval::<String>().unwrap(), "v1");

    let v2 = bundle(dir.path(), "v2", &version(&util("v2")));
    let report = installed.reload(&v2).unwrap();
    assert_eq!(report.reloaded, ["app.util", "app.main"], "the changed module, then what requires it");
    assert!(report.failed.is_empty() && report.removed.is_empty(), "{report:?}");
    assert_eq!(report.kept, 2, "app.counter and app.extra");
    assert_eq!(
        *events.lock().unwrap(),
        ["unload app.util", "reloaded app.util", "unload app.main", "reloaded app.main"]
    );
    let state: (i64, bool, bool, bool) = lua
        .load(
            "return require('app.counter').n, require('app.counter') == counter,
                    require('clock') == clock, require('app.extra') == extra",
        )
        .eval()
        .unwrap();
    assert_eq!(state, (2, true, true, true), "untouched modules and natives keep their tables and state");
    // The dependent was loaded again, so its reference to the changed module is the new one.
    assert_eq!(lua.load("return require('app.main').hello()").eval::<String>().unwrap(), "v2");
    assert_eq!(lua.load("return require('app.util').calls").eval::<i64>().unwrap(), 1);
    // A name not loaded before the reload comes from the new bundle.
    assert_eq!(installed.bundle().label(), v2.label());
}

#[test]
fn a_module_carries_its_state_over_through_its_reload_hook() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = bundle(dir.path(), "v1", &version(&util("v1")));
    let lua = Lua::new();
    let installed = v1.installer().install(&lua).unwrap();
    lua.load("local u = require('app.util') u.greet() u.greet() u.greet()").exec().unwrap();
    let with_hook = util("v2").replace("return M\n", "function M.__reload(old) M.calls = old.calls end\nreturn M\n");
    let v2 = bundle(dir.path(), "v2", &version(&with_hook));
    let report = installed.reload(&v2).unwrap();
    assert_eq!(report.reloaded, ["app.util"]);
    let (calls, greeting): (i64, String) =
        lua.load("local u = require('app.util') return u.calls, u.greet()").eval().unwrap();
    assert_eq!((calls, greeting.as_str()), (3, "v2"));
}

#[test]
fn a_module_that_fails_to_load_keeps_its_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = bundle(dir.path(), "v1", &version(&util("v1")));
    let lua = Lua::new();
    let installed = v1.installer().install(&lua).unwrap();
    lua.load("old_util = require('app.util') require('app.main')").exec().unwrap();
    let broken = format!("error('the new util is broken')\n{}", util("v2"));
    let v2 = bundle(dir.path(), "v2", &version(&broken));
    let report = installed.reload(&v2).unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].module, "app.util");
    assert!(report.failed[0].message.contains("src/app/util.lua:1: the new util is broken"), "{report:?}");
    // The dependent was loaded again and found the old util, which still works.
    assert_eq!(report.reloaded, ["app.main"]);
    let (same, greeting): (bool, String) =
        lua.load("return require('app.util') == old_util, require('app.main').hello()").eval().unwrap();
    assert_eq!((same, greeting.as_str()), (true, "v1"));
}

#[test]
fn a_removed_module_is_unloaded_and_an_unchanged_bundle_reloads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = bundle(dir.path(), "v1", &version(&util("v1")));
    let lua = Lua::new();
    let installed = v1.installer().install(&lua).unwrap();
    lua.load("require('app.main') require('app.extra') require('app.counter')").exec().unwrap();
    let same = bundle(dir.path(), "same", &version(&util("v1")));
    let report = installed.reload(&same).unwrap();
    assert!(report.reloaded.is_empty() && report.removed.is_empty() && report.failed.is_empty(), "{report:?}");
    assert_eq!(report.kept, 4);
    let mut without_extra = version(&util("v1"));
    without_extra.retain(|(path, _)| *path != "app/extra.lua");
    let v2 = bundle(dir.path(), "v2", &without_extra);
    let report = installed.reload(&v2).unwrap();
    assert_eq!(report.removed, ["app.extra"]);
    let gone = lua.load("return pcall(require, 'app.extra')").eval::<bool>().unwrap();
    assert!(!gone, "a removed module no longer loads from the bundle");
}

#[test]
fn a_bundle_for_another_target_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = bundle(dir.path(), "v1", &version(&util("v1")));
    let lua = Lua::new();
    let installed = v1.installer().install(&lua).unwrap();
    lua.load("require('app.main')").exec().unwrap();
    let source = dir.path().join("source.bundle");
    let mut builder = luabundle::Builder::new();
    builder.root(dir.path().join("src")).output(&source).no_cache(true).format(luabundle::OutputFormat::Source);
    builder.try_build().unwrap();
    let err = installed.reload(&Bundle::open(&source).unwrap()).unwrap_err().to_string();
    assert!(err.contains("cannot reload") && err.contains("built for source"), "{err}");
    assert_eq!(installed.bundle().label(), v1.label());
    assert_eq!(lua.load("return require('app.main').hello()").eval::<String>().unwrap(), "v1");
}

/// A long-running program that prints the version its util module reports whenever it
/// changes, with a counter kept by another module, and stops at `v2` (or after 30 s).
const LOOP: &str = "local counter = require('app.counter')
local last
local deadline = os.time() + 30
while os.time() < deadline do
  local v = require('app.util').greet()
  if v ~= last then
    print(v, counter.bump())
    last = v
  end
  if v == 'v2' then break end
end
";

/// `luabundle run --watch` of `target` with `app.loop` as the program: the lines it printed
/// and what it said on stderr, after `edit` ran once the watch started.
fn watched_run(dir: &Path, target: &Path, edit: impl FnOnce()) -> (Vec<String>, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_luabundle"))
        .args(["run", "--watch"])
        .arg(target)
        .args(["-m", "app.loop"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut errors = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = errors.next().expect("a first line").unwrap();
    assert!(first.starts_with("luabundle: watching "), "{first}");
    edit();
    let printed: Vec<String> =
        std::io::BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let stderr: Vec<String> = errors.map_while(Result::ok).collect();
    let stderr = stderr.join("\n");
    assert!(status.success(), "{stderr}");
    (printed, stderr)
}

#[test]
fn run_watch_rebuilds_the_sources_and_reloads_them_into_the_running_program() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = version(&util("v1"));
    files.push(("app/loop.lua", LOOP.to_string()));
    let src = dir.path().join("src");
    for (path, text) in &files {
        std::fs::create_dir_all(src.join(path).parent().unwrap()).unwrap();
        std::fs::write(src.join(path), text).unwrap();
    }
    let (printed, stderr) = watched_run(dir.path(), &src, || {
        std::fs::write(src.join("app/util.lua"), util("v2")).unwrap();
    });
    // The counter kept its state: the program went on, only util (and nothing that
    // requires it while loading) was loaded again.
    assert_eq!(printed, ["v1\t1", "v2\t2"], "{stderr}");
    assert!(stderr.contains("luabundle: reloaded app.util; 1 kept"), "{stderr}");
}

#[test]
fn run_watch_reloads_a_bundle_file_that_a_build_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = version(&util("v1"));
    files.push(("app/loop.lua", LOOP.to_string()));
    bundle(dir.path(), "app", &files);
    let mut broken = files.clone();
    broken[1].1 = format!("error('not yet')\n{}", util("v2"));
    let mut fixed = files.clone();
    fixed[1].1 = util("v2");
    let (printed, stderr) = watched_run(dir.path(), &dir.path().join("app.bundle"), || {
        // A version that fails to load first: the program keeps the old util and goes on.
        bundle(dir.path(), "app", &broken);
        std::thread::sleep(std::time::Duration::from_millis(600));
        bundle(dir.path(), "app", &fixed);
    });
    assert_eq!(printed, ["v1\t1", "v2\t2"], "{stderr}");
    assert!(stderr.contains("app.util failed (old version kept): src/app/util.lua:1: not yet"), "{stderr}");
    assert!(stderr.contains("luabundle: reloaded app.util"), "{stderr}");
}
