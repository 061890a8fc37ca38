//! Flavours: bundles of one Lua VM refused by another with an error naming both, and the
//! plain-Lua output run by Debian's stock interpreters side by side with the sources.

use std::path::Path;
#[cfg(not(feature = "luau"))]
use std::process::Command;

use luabundle_runtime::{Bundle, Error};

use crate::support::{fixture, luabundle};

#[test]
fn a_bundle_for_another_flavour_is_refused_naming_both() {
    let ours = luabundle_runtime::target::FLAVOUR;
    let mut checked = 0;
    for other in ["lua51", "lua54", "lua55", "luajit", "luau"] {
        let bundle = Bundle::open(fixture("foreign_bundles").join(format!("{other}.bundle"))).unwrap();
        assert_eq!(bundle.target().flavour, other);
        let lua = mlua::Lua::new();
        if other == ours {
            bundle.install(&lua).unwrap();
            assert_eq!(lua.load("return require('answer').answer").eval::<i64>().unwrap(), 42);
            continue;
        }
        let err = bundle.install(&lua).unwrap_err();
        assert!(matches!(err, Error::TargetMismatch { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!("was built for {other} (")), "{message}");
        assert!(message.contains(&format!("but this program links {ours} (")), "{message}");
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn a_source_bundle_loads_and_runs_like_the_bytecode_one() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("source.bundle");
    luabundle()
        .args(["build", "fixtures/app/src", "--entry", "app.main", "--format", "source", "--no-cache", "-o"])
        .arg(&bundle)
        .assert()
        .code(0);
    let opened = Bundle::open(&bundle).unwrap();
    assert_eq!(opened.target().flavour, "source");
    assert!(opened.index().unwrap().modules.iter().all(|m| m.kind == luabundle_runtime::BlobKind::Source));
    let out = luabundle().arg("run").arg(&bundle).args(["--", "s"]).assert().code(0).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("shapes-demo 1.0\n") && text.ends_with("args: s\n"), "{text}");
}

#[cfg(not(feature = "luau"))] // the plain-Lua output is for stock interpreters
/// Debian's interpreters that the plain-Lua output must run on.
const INTERPRETERS: &[&str] = &["lua5.1", "lua5.4", "luajit"];

#[cfg(not(feature = "luau"))] // the plain-Lua output is for stock interpreters
fn available(interpreter: &str) -> bool {
    let found = Command::new(interpreter).arg("-v").output().is_ok();
    crate::support::present_or_skip(found, &format!("{interpreter} is missing"), interpreter)
}

#[cfg(not(feature = "luau"))] // the plain-Lua output is for stock interpreters
fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(not(feature = "luau"))] // the plain-Lua output is for stock interpreters
/// Builds `fixture/src` as one Lua file and runs it and the sources with `interpreter`.
fn compare(interpreter: &str, fixture_name: &str, entry: &str, includes: &[&str], bytecode: bool) {
    compare_with(&mut || Command::new(interpreter), interpreter, fixture_name, entry, includes, bytecode);
}

#[cfg(not(feature = "luau"))] // the plain-Lua output is for stock interpreters
/// [`compare`] with the interpreter command that `lua` makes.
fn compare_with(
    lua: &mut dyn FnMut() -> Command,
    interpreter: &str,
    fixture_name: &str,
    entry: &str,
    includes: &[&str],
    bytecode: bool,
) {
    let src = fixture(fixture_name).join("src");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("app.lua");
    let mut build = luabundle();
    build.arg("build").arg(&src).args(["--entry", entry, "--format", "lua", "--no-cache", "-o"]).arg(&script);
    for include in includes {
        build.args(["--include", include]);
    }
    if bytecode {
        build.arg("--bytecode");
    }
    build.assert().code(0);
    let entry_file = Path::new(&entry.replace('.', "/")).with_extension("lua");
    let from_sources =
        stdout_of(lua().current_dir(&src).env("LUA_PATH", "./?.lua;./?/init.lua").arg(&entry_file).args(["x", "y"]));
    let from_script = stdout_of(lua().current_dir(dir.path()).env("LUA_PATH", "").arg(&script).args(["x", "y"]));
    assert!(!from_sources.is_empty());
    assert_eq!(from_script, from_sources, "{interpreter} on {fixture_name}");
}

#[test]
#[cfg(not(feature = "luau"))]
fn the_plain_lua_output_runs_on_every_stock_interpreter() {
    for interpreter in INTERPRETERS.iter().filter(|i| available(i)) {
        compare(interpreter, "app", "app.main", &[], false);
        compare(interpreter, "deferred_cycle", "main", &[], false);
        compare(interpreter, "shadowed_init", "main", &[], false);
        compare(interpreter, "require_forms", "main", &[], false);
        compare(interpreter, "relative_requires", "main", &["pkg.init"], false);
        compare(interpreter, "dynamic_plugins", "main", &["plugins.*"], false);
    }
}

#[test]
#[cfg(feature = "lua54")]
fn the_bytecode_script_runs_on_the_matching_interpreter() {
    if available("lua5.4") {
        compare("lua5.4", "app", "app.main", &[], true);
    }
}

/// Debian has no `lua5.5`: a Lua 5.5 build's `luabundle run` is the Lua 5.5 interpreter
/// (with a source bundle of one unrelated module installed).
#[test]
#[cfg(feature = "lua55")]
fn the_plain_lua_output_runs_on_lua55() {
    let binary = assert_cmd::cargo::cargo_bin("luabundle");
    let bundle = fixture("foreign_bundles").join("source.bundle");
    let mut lua = || {
        let mut command = Command::new(&binary);
        command.arg("run").arg(&bundle).arg("--allow-binary-chunks");
        command
    };
    for bytecode in [false, true] {
        compare_with(&mut lua, "Lua 5.5", "app", "app.main", &[], bytecode);
        compare_with(&mut lua, "Lua 5.5", "require_forms", "main", &[], bytecode);
        compare_with(&mut lua, "Lua 5.5", "lua55_syntax", "main", &[], bytecode);
    }
}

#[test]
#[cfg(feature = "luau")]
fn a_luau_build_refuses_the_plain_lua_output() {
    luabundle()
        .args(["build", "fixtures/app/src", "--format", "lua", "-o", "never.lua"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("Luau has no `package` library"));
    assert!(!Path::new("never.lua").exists());
}

#[test]
#[cfg(not(feature = "luau"))]
fn errors_in_the_plain_lua_output_name_the_original_file_and_line() {
    if !available("lua5.4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("app.lua");
    luabundle()
        .args(["build", "fixtures/app/src", "--entry", "app.tool", "--format", "lua", "--no-cache", "-o"])
        .arg(&script)
        .assert()
        .code(0);
    let out = Command::new("lua5.4").arg(&script).arg("fail").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("src/app/util.lua:17: util failure: asked to fail"), "{stderr}");
}

#[test]
fn embedded_sources_run_where_the_bytecode_cannot() {
    let ours = luabundle_runtime::target::FLAVOUR;
    for other in ["lua51", "lua54", "lua55", "luajit", "luau"] {
        let bundle = Bundle::open(fixture("foreign_bundles").join(format!("{other}-with-source.bundle"))).unwrap();
        assert!(bundle.has_all_sources().unwrap());
        let lua = mlua::Lua::new();
        let installed = bundle.install(&lua).unwrap();
        assert_eq!(lua.load("return require('answer').answer").eval::<i64>().unwrap(), 42);
        let expected =
            if other == ours { luabundle_runtime::Origin::Bundle } else { luabundle_runtime::Origin::EmbeddedSource };
        assert_eq!(installed.stats()[0].origin, expected, "bundle for {other}");
    }
}

#[test]
fn a_source_bundle_built_by_any_flavour_loads_on_this_one() {
    let bundle = Bundle::open(fixture("foreign_bundles").join("source.bundle")).unwrap();
    let lua = mlua::Lua::new();
    bundle.install(&lua).unwrap();
    assert_eq!(lua.load("return require('answer').answer").eval::<i64>().unwrap(), 42);
}

/// A bundle of the Luau fixture, installed into a fresh state.
#[cfg(feature = "luau")]
fn luau_app() -> (mlua::Lua, luabundle_runtime::Installed) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = crate::support::build_bytes_including(&fixture("luau_app").join("src"), Some("main"), &[], dir.path());
    let bundle = Bundle::from_bytes(bytes).unwrap();
    assert_eq!(bundle.target().flavour, "luau");
    let lua = crate::support::capturing_lua();
    let installed = bundle.install(&lua).unwrap();
    (lua, installed)
}

#[test]
#[cfg(feature = "luau")]
fn luau_modules_load_lazily_from_bytecode_and_keep_their_file_names() {
    let (lua, installed) = luau_app();
    assert!(lua.load("return package.loaded['util'] == nil").eval::<bool>().unwrap(), "nothing runs at install");
    assert_eq!(lua.load("return require('main')").eval::<f64>().unwrap().round(), 16.0);
    let loaded: Vec<String> = installed.stats().iter().map(|s| s.module.clone()).collect();
    assert_eq!(loaded, ["main", "report", "shapes", "shapes.circle", "util"]);
    assert!(installed.stats().iter().all(|s| s.origin == luabundle_runtime::Origin::Bundle));
    // Luau takes chunk names when bytecode is loaded: errors still name the file and line.
    let err = lua.load("require('report').fail()").exec().unwrap_err().to_string();
    assert!(err.contains("src/util.luau:9: util failure: from report"), "{err}");
    assert!(err.contains("src/report.luau:14"), "{err}");
    assert!(lua.load("return require('util') == package.loaded['util']").eval::<bool>().unwrap());
}

#[test]
#[cfg(feature = "luau")]
fn luau_require_keeps_lua_semantics_and_passes_paths_to_luau() {
    let (lua, _installed) = luau_app();
    lua.register_module("@host/clock", 12).unwrap();
    assert_eq!(lua.load("return require('@host/clock')").eval::<i64>().unwrap(), 12);
    let err = lua.load("require('utill')").exec().unwrap_err().to_string();
    assert!(err.contains("module 'utill' not found") && err.contains("no field package.preload['utill']"), "{err}");
    assert!(err.contains("closest bundled names: util"), "{err}");
    let err = lua.load("require(42)").exec().unwrap_err().to_string();
    assert!(err.contains("bad argument #1 to 'require' (string expected, got number)"), "{err}");
    // A module returning nothing is recorded as `true`, like Lua's require does.
    lua.load("package.preload['empty'] = function() end").exec().unwrap();
    assert!(lua.load("return require('empty') == true and package.loaded['empty'] == true").eval::<bool>().unwrap());

    // Hermetic: the host's registered modules still answer, the file system does not.
    let dir = tempfile::tempdir().unwrap();
    let bytes = crate::support::build_bytes_including(&fixture("luau_app").join("src"), Some("main"), &[], dir.path());
    let sealed = mlua::Lua::new();
    sealed.register_module("@host/clock", 12).unwrap();
    Bundle::from_bytes(bytes).unwrap().installer().hermetic(true).install(&sealed).unwrap();
    assert_eq!(sealed.load("return require('@host/clock')").eval::<i64>().unwrap(), 12);
    let err = sealed.load("require('./src/main')").set_name("@host.luau").exec().unwrap_err().to_string();
    assert!(err.contains("hermetic: the file system is not searched"), "{err}");
}
