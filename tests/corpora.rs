//! Real code bases from Debian's packages, bundled and run side by side with Lua's own
//! interpreter: LuaRocks (`luarocks`) and Penlight (`lua-penlight`).
//!
//! These tests need the flavour's Debian interpreter (`lua5.4`, `luajit`, ...), `luarocks`
//! and `lua-penlight` installed (`.ci/run` installs
//! them and sets `LUABUNDLE_REQUIRE_CORPORA=1`, which turns a missing package into a
//! failure instead of a skip).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::luabundle;

/// Debian's interpreter and module directory for the flavour under test.
const DEBIAN: (&str, &str) = match luabundle_runtime::target::FLAVOUR.as_bytes() {
    b"lua51" => ("lua5.1", "/usr/share/lua/5.1"),
    b"lua52" => ("lua5.2", "/usr/share/lua/5.2"),
    b"lua53" => ("lua5.3", "/usr/share/lua/5.3"),
    b"luajit" => ("luajit", "/usr/share/lua/5.1"),
    _ => ("lua5.4", "/usr/share/lua/5.4"),
};
const INTERPRETER: &str = DEBIAN.0;
const LUA_DIR: &str = DEBIAN.1;

/// Runs a script that clears `package.path` (so nothing can come from disk but what the
/// corpus path names) and then runs the file given as its first argument.
const RUNNER: &str = r#"
package.path = os.getenv("CORPUS_PATH") or ""
local program = table.remove(arg, 1)
local main = assert(loadfile(program))
return main((table.unpack or unpack)(arg))
"#;

fn corpora_present() -> bool {
    let present = ["luarocks", "pl"].iter().all(|d| Path::new(LUA_DIR).join(d).is_dir())
        && Path::new("/usr/bin/luarocks").is_file()
        && Command::new(INTERPRETER).arg("-v").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(),
            "LUABUNDLE_REQUIRE_CORPORA is set but {INTERPRETER}, luarocks or lua-penlight is missing"
        );
        eprintln!("skipped: apt-get install {INTERPRETER} luarocks lua-penlight to run the corpus tests");
    }
    present
}

/// Builds both trees with no flags: every require they make of a module that Debian's
/// packages do not hold (`ltn12`, `zlib`, `socket.http`, `luabalanced`, ...) is optional, behind
/// `pcall`, a guard, or a module loaded only through `pcall`.
fn build_corpus(dir: &Path) -> PathBuf {
    let bundle = dir.join("corpus.bundle");
    let mut cmd = luabundle();
    cmd.args(["build", &format!("luarocks={LUA_DIR}/luarocks"), &format!("pl={LUA_DIR}/pl"), "-o"]).arg(&bundle);
    let out = cmd.assert().code(0).get_output().stderr.clone();
    let stderr = String::from_utf8_lossy(&out);
    assert!(!stderr.contains("error["), "{stderr}");
    bundle
}

#[test]
fn each_tree_builds_with_no_flags_and_says_why_its_missing_modules_are_optional() {
    if !corpora_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let check = |root: &str| {
        let out = luabundle()
            .args(["build", root, "--no-cache", "-v", "-o"])
            .arg(dir.path().join("t.bundle"))
            .assert()
            .code(0)
            .get_output()
            .clone();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let luarocks = check(&format!("luarocks={LUA_DIR}/luarocks"));
    // `ltn12` only inside `if socket_ok then`, `zlib` only in a module loaded through pcall.
    assert!(luarocks.contains("optional: it runs only where `socket.http` can be loaded"), "{luarocks}");
    assert!(luarocks.contains("`luarocks.tools.zip` is loaded only through optional requires"), "{luarocks}");
    let penlight = check(&format!("pl={LUA_DIR}/pl"));
    assert!(
        penlight.contains("guarded require: pl/comprehension.lua:37: `luabalanced` runs only if `pl.luabalanced` (line 35) failed to load (it is bundled: this never runs)"),
        "{penlight}"
    );
}

fn output_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn compare(dir: &Path, bundle: &Path, program: &Path, args: &[&str]) {
    let runner = dir.join("runner.lua");
    std::fs::write(&runner, RUNNER).unwrap();
    let from_sources = output_of(
        Command::new(INTERPRETER)
            .env("CORPUS_PATH", format!("{LUA_DIR}/?.lua;{LUA_DIR}/?/init.lua"))
            .arg(&runner)
            .arg(program)
            .args(args),
    );
    let from_bundle = output_of(
        Command::new(assert_cmd::cargo::cargo_bin("luabundle"))
            .env_remove("CORPUS_PATH")
            .arg("run")
            .arg(bundle)
            .arg(&runner)
            .arg(program)
            .args(args),
    );
    assert!(!from_sources.is_empty());
    assert_eq!(from_bundle, from_sources, "{} {args:?}", program.display());
}

#[test]
fn luarocks_runs_from_its_bundle_as_from_its_sources() {
    if !corpora_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_corpus(dir.path());
    for args in [&["--version"][..], &["help"], &["help", "install"]] {
        compare(dir.path(), &bundle, Path::new("/usr/bin/luarocks"), args);
    }
}

#[test]
fn penlight_runs_from_its_bundle_as_from_its_sources() {
    if !corpora_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_corpus(dir.path());
    let script = dir.path().join("pl_demo.lua");
    std::fs::write(
        &script,
        r#"
        local pretty = require("pl.pretty")
        local List = require("pl.List")
        local stringx = require("pl.stringx")
        local tablex = require("pl.tablex")
        local l = List({ 3, 1, 2 })
        l:sort()
        print(pretty.write({ sorted = l, keys = tablex.keys({ a = 1 }) }, ""))
        print(stringx.split("a,b,c", ",")[2], require("pl.stringx").strip("  x  "))
        print(require("pl.utils").choose(true, "yes", "no"), require("pl.seq").sum({ 1, 2, 3 }))
        "#,
    )
    .unwrap();
    compare(dir.path(), &bundle, &script, &[]);
}
