//! Real code bases from Debian's packages, bundled and run side by side with Lua's own
//! interpreter: LuaRocks (`luarocks`), Penlight (`lua-penlight`), luacheck (`lua-check`) and
//! LDoc (`lua-ldoc`).
//!
//! These tests need the flavour's Debian interpreter (`lua5.4`, `luajit`, ...), `luarocks`
//! and `lua-penlight` installed (`.ci/run` installs
//! them and sets `LUABUNDLE_REQUIRE_CORPORA=1`, which turns a missing package into a
//! failure instead of a skip).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{luabundle, present_or_skip};

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
    present_or_skip(
        present,
        &format!("{INTERPRETER}, luarocks or lua-penlight is missing"),
        &format!("{INTERPRETER} luarocks lua-penlight"),
    )
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

/// Debian's Lua C modules (`lfs.so`) for the flavour's interpreter; `luabundle run` loads the
/// same files through the Lua C API it exports.
const C_MODULES: &str = match luabundle_runtime::target::FLAVOUR.as_bytes() {
    b"lua51" | b"luajit" => "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so",
    b"lua52" => "/usr/lib/x86_64-linux-gnu/lua/5.2/?.so",
    b"lua53" => "/usr/lib/x86_64-linux-gnu/lua/5.3/?.so",
    _ => "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so",
};

/// Whether `paths` exist; a missing one is a skip, or a failure under
/// `LUABUNDLE_REQUIRE_CORPORA`.
fn programs_present(package: &str, paths: &[&str]) -> bool {
    let present = paths.iter().all(|p| Path::new(p).exists()) && Command::new(INTERPRETER).arg("-v").output().is_ok();
    present_or_skip(
        present,
        &format!("{package} or {INTERPRETER} is missing"),
        &format!("{INTERPRETER} {package} lua-filesystem"),
    )
}

/// What one run printed and how it ended.
#[derive(Debug, PartialEq)]
struct Run {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

/// Runs `program ARGS` in `work` (emptied first but for `keep`) from its sources, with
/// `source_path` as `package.path`, and from `bundle`, with nothing on `package.path`; both
/// load C modules from Debian's directory. `scrub` removes what differs run to run (dates).
/// Returns both runs and the files each left in `work`.
fn both_runs(
    work: &Path,
    bundle: &Path,
    program: &str,
    args: &[&str],
    source_path: &str,
    stdin: &str,
    scrub: &dyn Fn(&str) -> String,
) -> [(Run, Vec<(String, String)>); 2] {
    let runner = work.parent().unwrap().join("runner.lua");
    std::fs::write(&runner, RUNNER).unwrap();
    let mut from_sources = Command::new(INTERPRETER);
    from_sources.env("CORPUS_PATH", source_path).arg(&runner);
    let mut from_bundle = Command::new(assert_cmd::cargo::cargo_bin("luabundle"));
    from_bundle.env_remove("CORPUS_PATH").arg("run").arg(bundle).arg(&runner);
    [from_sources, from_bundle].map(|mut command| {
        let _ = std::fs::remove_dir_all(work.join("out"));
        let mut child = command
            .current_dir(work)
            .env("LUA_CPATH", C_MODULES)
            .env_remove("LUA_INIT")
            .env_remove("LUA_PATH")
            .arg(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let run = Run {
            stdout: scrub(&String::from_utf8_lossy(&out.stdout)),
            stderr: scrub(&String::from_utf8_lossy(&out.stderr)),
            status: out.status.code(),
        };
        let mut files: Vec<(String, String)> = walkdir::WalkDir::new(work.join("out"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let name = e.path().strip_prefix(work).unwrap().display().to_string();
                (name, scrub(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap())))
            })
            .collect();
        files.sort();
        (run, files)
    })
}

/// luacheck (`lua-check`), a linter: its stages are loaded by names computed at run time
/// (`require("luacheck.stages." .. name)`), so the build bundles them with `--include`; it
/// walks directories and reads `lfs` (a C module the host provides: `--external lfs`).
#[test]
fn luacheck_runs_from_its_bundle_as_from_its_sources() {
    const TREE: &str = "/usr/share/lua/5.1";
    if !programs_present(
        "lua-check",
        &["/usr/bin/luacheck", "/usr/share/lua/5.1/luacheck", &C_MODULES.replace('?', "lfs")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("luacheck.bundle");
    let out = luabundle()
        .args(["build", TREE, "--entry", "luacheck.main", "--include", "luacheck.*", "--external", "lfs"])
        .args(["--external", "socket.core", "--no-cache", "-o"])
        .arg(&bundle)
        .assert()
        .code(0)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8_lossy(&out);
    // The documentation stubs of ldoc in the same tree are not Lua, and nothing requires them.
    assert!(!stderr.contains("error["), "{stderr}");
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("tree/sub")).unwrap();
    let sample = "local x = 1\nlocal function f(a, b) return a end\nglobal_thing = 3\nprint(undefined_var)\nreturn f\n";
    std::fs::write(work.join("sample.lua"), sample).unwrap();
    std::fs::write(work.join("tree/sample.lua"), sample).unwrap();
    std::fs::write(work.join("tree/sub/b.lua"), "local t = {}\nt.x = 1 t.x = 2\nreturn t\n").unwrap();
    std::fs::write(work.join("tree/bad.lua"), "local = 1\n").unwrap();
    let source_path = format!("{TREE}/?.lua;{TREE}/?/init.lua");
    for args in [
        &["--version"][..],
        &["--no-color", "sample.lua"],
        &["--no-color", "tree"],
        &["--no-color", "--codes", "--ranges", "tree"],
        &["--formatter", "TAP", "sample.lua"],
        &["--formatter", "JUnit", "tree"],
        &["--no-color", "--std", "max", "--globals", "global_thing", "--", "sample.lua"],
        &["--no-color", "-"],
        &["nonexistent.lua"],
        &["--bogus-option"],
    ] {
        // `--version` names the interpreter's own release (LuaJIT's differs from Debian's).
        let scrub = |text: &str| -> String {
            text.lines()
                .map(|l| if l.starts_with("Lua: ") { "Lua: (release)" } else { l })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let [from_sources, from_bundle] =
            both_runs(&work, &bundle, "/usr/bin/luacheck", args, &source_path, sample, &scrub);
        assert!(!from_sources.0.stdout.is_empty() || !from_sources.0.stderr.is_empty(), "{args:?}");
        assert_eq!(from_bundle, from_sources, "luacheck {args:?}");
    }
}

/// LDoc (`lua-ldoc`), a documentation generator on Penlight: writes an HTML or Markdown
/// tree, loads its templates and `ldoc.builtin.*` modules, and uses `lfs`.
#[test]
fn ldoc_runs_from_its_bundle_as_from_its_sources() {
    if !programs_present("lua-ldoc", &["/usr/bin/ldoc", &format!("{LUA_DIR}/ldoc"), &format!("{LUA_DIR}/pl")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ldoc.bundle");
    let mut build = luabundle();
    build.args(["build", &format!("ldoc={LUA_DIR}/ldoc"), &format!("pl={LUA_DIR}/pl"), "--external", "lfs"]);
    // Documentation stubs of the standard library that LDoc reads as text: not Lua.
    for stub in ["debug", "global", "lpeg", "string", "table", "utf8"] {
        build.args(["--exclude", &format!("builtin/{stub}.lua")]);
    }
    let out = build.args(["--no-cache", "-o"]).arg(&bundle).assert().code(0).get_output().stderr.clone();
    let stderr = String::from_utf8_lossy(&out);
    assert!(!stderr.contains("error["), "{stderr}");
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(
        work.join("src/shapes.lua"),
        "--- Shapes and their areas.\n-- @module shapes\nlocal M = {}\n\n--- The area of a rectangle.\n\
         -- @tparam number w width\n-- @tparam number h height\n-- @treturn number the area\n\
         function M.area(w, h) return w * h end\n\n--- Known shapes.\n-- @table kinds\n\
         M.kinds = { square = 4, triangle = 3 }\n\nreturn M\n",
    )
    .unwrap();
    let source_path = format!("{LUA_DIR}/?.lua;{LUA_DIR}/?/init.lua");
    // Each page ends with the time it was written.
    let scrub = |text: &str| -> String {
        text.lines()
            .map(|line| if line.contains("Last updated") { "Last updated (scrubbed)" } else { line })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for args in [
        &["--help"][..],
        &["-d", "out", "src"],
        &["-d", "out", "-f", "markdown", "-p", "Shapes", "-t", "Reference", "src"],
        &["--dump", "src/shapes.lua"],
        &["-d", "out", "missing"],
        &["--bogus-option"],
    ] {
        let [from_sources, from_bundle] = both_runs(&work, &bundle, "/usr/bin/ldoc", args, &source_path, "", &scrub);
        assert_eq!(from_bundle, from_sources, "ldoc {args:?}");
    }
    let [(_, files), _] = both_runs(&work, &bundle, "/usr/bin/ldoc", &["-d", "out", "src"], &source_path, "", &scrub);
    assert!(files.iter().any(|(name, text)| name == "out/index.html" && text.contains("The area of a rectangle")));
}
