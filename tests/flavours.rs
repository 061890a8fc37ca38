//! Flavours: bundles of one Lua VM refused by another with an error naming both, and the
//! plain-Lua output run by Debian's stock interpreters side by side with the sources.

use std::path::Path;
use std::process::Command;

use luabundle_runtime::{Bundle, Error};

use crate::support::{fixture, luabundle};

#[test]
fn a_bundle_for_another_flavour_is_refused_naming_both() {
    let ours = luabundle_runtime::target::FLAVOUR;
    let mut checked = 0;
    for other in ["lua51", "lua54", "luajit"] {
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
    assert!(opened.index().modules.iter().all(|m| m.kind == luabundle_runtime::BlobKind::Source));
    let out = luabundle().arg("run").arg(&bundle).args(["--", "s"]).assert().code(0).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("shapes-demo 1.0\n") && text.ends_with("args: s\n"), "{text}");
}

/// Debian's interpreters that the plain-Lua output must run on.
const INTERPRETERS: &[&str] = &["lua5.1", "lua5.4", "luajit"];

fn available(interpreter: &str) -> bool {
    let found = Command::new(interpreter).arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(),
            "LUABUNDLE_REQUIRE_CORPORA is set but {interpreter} is missing"
        );
        eprintln!("skipped {interpreter}: apt-get install {interpreter}");
    }
    found
}

fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Builds `fixture/src` as one Lua file and runs it and the sources with `interpreter`.
fn compare(interpreter: &str, fixture_name: &str, entry: &str, includes: &[&str], bytecode: bool) {
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
    let from_sources = stdout_of(
        Command::new(interpreter)
            .current_dir(&src)
            .env("LUA_PATH", "./?.lua;./?/init.lua")
            .arg(&entry_file)
            .args(["x", "y"]),
    );
    let from_script =
        stdout_of(Command::new(interpreter).current_dir(dir.path()).env("LUA_PATH", "").arg(&script).args(["x", "y"]));
    assert!(!from_sources.is_empty());
    assert_eq!(from_script, from_sources, "{interpreter} on {fixture_name}");
}

#[test]
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

#[test]
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
    for other in ["lua51", "lua54", "luajit"] {
        let bundle = Bundle::open(fixture("foreign_bundles").join(format!("{other}-with-source.bundle"))).unwrap();
        assert!(bundle.has_all_sources());
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
