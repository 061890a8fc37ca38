//! The LuaRocks world as input: `--rockspec` (a builtin build's module map) and
//! `--rocks-tree` (modules installed by Debian's luarocks from `.rock` files made here).

use std::path::Path;
#[cfg(feature = "lua54")]
use std::process::Command;

use crate::support::luabundle;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_rockspec_module_map_is_bundled_and_its_c_modules_left_to_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    write(
        &project.join("app-1.0-1.rockspec"),
        r#"package = "app"
version = "1.0-1"
source = { url = "git+https://example.invalid/app.git", tag = "v" .. version }
build = {
  type = "builtin",
  modules = {
    ["app.main"] = "src/main.lua",
    -- A name that is not the file's path: only the map knows it.
    ["app.util"] = "lib/helpers/strings.lua",
    ["app.native"] = "csrc/native.c",
    ["app.fast"] = { sources = { "csrc/fast.c" } },
  },
  -- The host's platform adds to the map, as LuaRocks merges it.
  platforms = {
    unix = { modules = { ["app.os"] = "src/os_unix.lua" } },
    windows = { modules = { ["app.os"] = "src/os_windows.lua" } },
  },
}
"#,
    );
    write(
        &project.join("src/main.lua"),
        "local util = require('app.util')\nlocal ok = pcall(require, 'app.native')\nprint(util.shout('hi'), ok, (require('app.os')))\n",
    );
    write(&project.join("src/os_unix.lua"), "return 'unix'\n");
    write(&project.join("src/os_windows.lua"), "return 'windows'\n");
    write(&project.join("lib/helpers/strings.lua"), "return { shout = function(s) return s:upper() .. '!' end }\n");
    let bundle = dir.path().join("app.bundle");
    let out = luabundle()
        .args(["build", "--rockspec"])
        .arg(project.join("app-1.0-1.rockspec"))
        .args(["--entry", "app.main", "--no-cache", "-q", "-o"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = luabundle().args(["inspect", "--json"]).arg(&bundle).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let paths: Vec<&str> = json["modules"].as_array().unwrap().iter().map(|m| m["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["src/main.lua", "src/os_unix.lua", "lib/helpers/strings.lua"], "app.main, app.os, app.util");
    // Only the C modules the app requires are recorded.
    assert_eq!(json["externals"], serde_json::json!(["app.native"]));
    let run = luabundle().arg("run").arg(&bundle).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "HI!\tfalse\tunix\n");
}

#[test]
fn rockspecs_luarocks_cannot_build_here_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("make.rockspec", "build = { type = 'make' }", "only builtin builds name their modules"),
        ("none.rockspec", "package = 'x'", "it has no `build` table"),
        ("loop.rockspec", "while true do end", "runs too long"),
        ("broken.rockspec", "build = {", "broken.rockspec"),
    ];
    for (name, text, reason) in cases {
        write(&dir.path().join(name), text);
        let out = luabundle()
            .args(["build", "--no-cache", "-q", "--rockspec"])
            .arg(dir.path().join(name))
            .arg("-o")
            .arg(dir.path().join("never.bundle"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name) && stderr.contains(reason), "{name}: {stderr}");
        assert!(!dir.path().join("never.bundle").exists());
    }
}

/// A pure-Lua rock made and packed here: `NAME-1.0-1.all.rock` in `dir`, built from a
/// rockspec whose `modules` are `modules` (name, file, text).
#[cfg(feature = "lua54")]
fn packed_rock(dir: &Path, name: &str, modules: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let source = dir.join(format!("{name}-src"));
    let map: String = modules.iter().map(|(module, file, _)| format!("[\"{module}\"] = \"{file}\", ")).collect();
    for (_, file, text) in modules {
        write(&source.join(file), text);
    }
    let rockspec = format!("{name}-1.0-1.rockspec");
    write(
        &source.join(&rockspec),
        &format!(
            "package = \"{name}\"\nversion = \"1.0-1\"\nsource = {{ url = \"file:///dev/null\" }}\nbuild = {{ type = \"builtin\", modules = {{ {map} }} }}\n"
        ),
    );
    let scratch = dir.join(format!("{name}-tree"));
    let luarocks = |args: &[&str], at: &Path| {
        let out = Command::new("luarocks")
            .args(["--lua-version", "5.4", "--tree"])
            .arg(&scratch)
            .args(args)
            .current_dir(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "luarocks {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    luarocks(&["make", &rockspec], &source);
    luarocks(&["pack", name], dir);
    dir.join(format!("{name}-1.0-1.all.rock"))
}

#[test]
#[cfg(feature = "lua54")]
fn modules_installed_in_a_rocks_tree_run_from_the_bundle_as_from_the_tree() {
    let runs = |program: &str, flag: &str| Command::new(program).arg(flag).output().is_ok_and(|o| o.status.success());
    let present = runs("luarocks", "--version") && runs("lua5.4", "-v");
    if !crate::support::present_or_skip(present, "luarocks or lua5.4 is missing", "luarocks lua5.4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let greet = packed_rock(
        dir.path(),
        "greet",
        &[("greet", "src/greet.lua", "return { hello = function(n) return 'hello ' .. n end }\n")],
    );
    let shout = packed_rock(
        dir.path(),
        "shout",
        &[
            ("shout", "src/init.lua", "local core = require('shout.core')\nreturn { loud = core.loud }\n"),
            ("shout.core", "src/loud.lua", "return { loud = function(s) return s:upper() end }\n"),
        ],
    );
    // The app's tree, installed from the .rock files alone (no network, no sources).
    let tree = dir.path().join("lua_modules");
    for rock in [&greet, &shout] {
        let out = Command::new("luarocks")
            .args(["--lua-version", "5.4", "--tree"])
            .arg(&tree)
            .arg("install")
            .arg(rock)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    write(
        &dir.path().join("app/main.lua"),
        "local greet, shout = require('greet'), require('shout')\nprint(shout.loud(greet.hello('rocks')))\nprint(package.loaded['shout.core'] ~= nil)\n",
    );
    let bundle = dir.path().join("app.bundle");
    let out = luabundle()
        .arg("build")
        .arg(dir.path().join("app"))
        .arg("--rocks-tree")
        .arg(&tree)
        .args(["--entry", "main", "--no-cache", "-q", "-o"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let from_bundle = luabundle().arg("run").arg(&bundle).arg("--hermetic").output().unwrap();
    let lua_path = format!("{0}/share/lua/5.4/?.lua;{0}/share/lua/5.4/?/init.lua", tree.display());
    let from_tree =
        Command::new("lua5.4").env("LUA_PATH", lua_path).arg(dir.path().join("app/main.lua")).output().unwrap();
    assert!(from_tree.status.success(), "{}", String::from_utf8_lossy(&from_tree.stderr));
    assert_eq!(String::from_utf8_lossy(&from_bundle.stdout), "HELLO ROCKS\ntrue\n");
    assert_eq!(from_bundle.stdout, from_tree.stdout);
    // The modules are named by the manifest and shown under the tree.
    let listing = luabundle().arg("inspect").arg(&bundle).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("lua_modules/share/lua/5.4/shout/core.lua"), "{listing}");
}
