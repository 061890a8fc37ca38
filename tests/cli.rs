//! The `luabundle` binary on the fixtures: outputs, diagnostics and exit codes.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::luabundle;

const APP_OUTPUT: &str = "shapes-demo 1.0
config loads: 1
silent module value: true (true)
report loaded before use: false
1. circle     3.14
2. square     4.00
3. circle     0.79
   sum        7.93
report loaded after use: true
total area: 7.93
same config table: true
config loads after second require: 1
";

fn build_app(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("app.bundle");
    luabundle()
        .args(["build", "fixtures/app/src", "--entry", "app.main", "--include", "app.tool", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stderr(contains("bundled 9 modules from 9 files"))
        .stderr(contains("unreachable-file").not());
    out
}

#[test]
fn build_then_run_the_demo_app() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["--", "one", "two"])
        .assert()
        .code(0)
        .stdout(format!("{APP_OUTPUT}args: one,two\n"));
}

#[test]
fn run_a_module_a_script_or_code_instead_of_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["-m", "app.tool"])
        .assert()
        .code(0)
        .stdout("tool module app.tool from src/app/tool.lua\ntool source @src/app/tool.lua\n");
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["-e", "print(require('app.util').round(2.345, 1))"])
        .assert()
        .code(0)
        .stdout("2.3\n");
    let script = dir.path().join("script.lua");
    std::fs::write(&script, "local a, b = ...\nprint(a, b, arg[0] ~= nil, require('app.config').name)").unwrap();
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["-e", "X = 1"])
        .arg(&script)
        .args(["p", "q"])
        .assert()
        .code(0)
        .stdout("p\tq\ttrue\tshapes-demo\n");
}

#[test]
#[cfg(not(feature = "lua51"))]
fn a_lua_error_prints_a_traceback_with_original_files_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["-m", "app.tool", "--", "fail"])
        .assert()
        .code(1)
        .stderr(contains("src/app/util.lua:17: util failure: asked to fail"))
        .stderr(contains("stack traceback:"));
    // Lua 5.4 times loads without catching errors, so the traceback starts at the error.
    #[cfg(feature = "lua54")]
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["-m", "app.tool", "--", "fail"])
        .assert()
        .stderr(contains("src/app/tool.lua:9: in "));
}

#[test]
fn inspect_lists_target_entry_and_modules() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    let output = luabundle().arg("inspect").arg(&bundle).assert().code(0).get_output().stdout.clone();
    let listing = String::from_utf8(output).unwrap();
    let target = luabundle_runtime::target::linked();
    assert!(listing.contains(&format!("target:    {target}\n")), "{listing}");
    assert!(listing.contains("entry:     app.main"), "{listing}");
    assert!(listing.contains("modules:   9"), "{listing}");
    // Only names something requires are bundled: `app.shapes`, not `app.shapes.init`.
    assert!(!listing.contains("app.shapes.init"), "{listing}");
    let main_line = listing.lines().find(|l| l.trim_start().starts_with("app.main ")).expect("app.main listed");
    assert!(main_line.contains("src/app/main.lua"), "{main_line}");
    assert!(main_line.contains("app.report (deferred)"), "{main_line}");
    assert!(main_line.contains("app.shapes, app.silent, app.util"), "{main_line}");
    let init_line = listing.lines().find(|l| l.trim_start().starts_with("app.shapes ")).unwrap();
    assert!(init_line.contains("src/app/shapes/init.lua"), "{init_line}");
}

#[test]
fn verify_checks_every_module() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    luabundle()
        .arg("verify")
        .arg(&bundle)
        .assert()
        .code(0)
        .stdout(contains(format!("ok (9 modules, target {})", luabundle_runtime::target::FLAVOUR)));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() - 100; // inside the last blob
    bytes[at] ^= 0xff;
    std::fs::write(&bundle, bytes).unwrap();
    luabundle().arg("verify").arg(&bundle).assert().code(1).stderr(contains("is damaged: blake3"));
}

#[test]
fn two_builds_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let first = std::fs::read(build_app(dir.path())).unwrap();
    let other = tempfile::tempdir().unwrap();
    let second = std::fs::read(build_app(other.path())).unwrap();
    assert_eq!(first, second);
}

#[test]
fn an_unchanged_bundle_is_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    let before = std::fs::metadata(&bundle).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    luabundle()
        .args(["build", "fixtures/app/src", "--entry", "app.main", "--include", "app.tool", "-o"])
        .arg(&bundle)
        .assert()
        .success()
        .stderr(contains("(unchanged)"));
    assert_eq!(std::fs::metadata(&bundle).unwrap().modified().unwrap(), before);
}

#[test]
fn syntax_errors_of_every_file_are_reported_with_positions() {
    luabundle()
        .args(["build", "fixtures/syntax_error/src", "-o", "/nonexistent/never.bundle"])
        .assert()
        .code(1)
        .stderr(contains("error[parse-error]"))
        .stderr(contains("src/broken.lua:3:5"))
        .stderr(contains("b = = 2,"))
        .stderr(contains("src/unclosed.lua:5:1"))
        .stderr(contains("expected `end`"));
}

#[test]
fn a_failed_build_leaves_the_existing_bundle_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    let good = std::fs::read(&bundle).unwrap();
    luabundle().args(["build", "fixtures/syntax_error/src", "-o"]).arg(&bundle).assert().code(1);
    assert_eq!(std::fs::read(&bundle).unwrap(), good);
    let mut leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    leftovers.sort();
    assert_eq!(leftovers, [".app.bundle.lock", "app.bundle"]);
}

#[test]
fn an_unresolved_require_names_file_line_and_column() {
    luabundle()
        .args(["check", "fixtures/unresolved_require/src"])
        .assert()
        .code(1)
        .stderr(contains("error[unresolved-require]: module `app.mising` not found"))
        .stderr(contains("src/main.lua:3:17"))
        .stderr(contains("1 error, 0 warnings"));
}

#[test]
fn a_declared_external_resolves_a_require() {
    luabundle()
        .args(["check", "fixtures/unresolved_require/src", "--external", "app.*"])
        .assert()
        .code(0)
        .stderr(contains("checked 3 modules from 3 files: no errors"));
}

#[test]
fn an_eager_cycle_prints_the_whole_chain() {
    luabundle()
        .args(["check", "fixtures/eager_cycle/src"])
        .assert()
        .code(1)
        .stderr(contains("error[require-cycle]: require cycle: `a` > `b` > `c` > `a`"))
        .stderr(contains("src/a.lua:1: `a` requires `b`"))
        .stderr(contains("src/b.lua:2: `b` requires `c`"))
        .stderr(contains("src/c.lua:4: `c` requires `a`"));
}

#[test]
fn the_same_module_from_two_roots_is_an_error_naming_both_files() {
    luabundle()
        .args(["check", "fixtures/duplicate_module/one", "fixtures/duplicate_module/two"])
        .assert()
        .code(1)
        .stderr(contains("error[duplicate-module]: module `util` is defined in two roots"))
        .stderr(contains("one/util.lua"))
        .stderr(contains("two/util.lua"));
}

#[test]
fn a_cycle_through_a_deferred_require_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("d.bundle");
    luabundle().args(["build", "fixtures/deferred_cycle/src", "--entry", "main", "-o"]).arg(&bundle).assert().code(0);
    luabundle().arg("run").arg(&bundle).assert().code(0).stdout("hello from a, b says b\nb's partner is a\n");
}

#[test]
fn a_lua_file_beside_init_lua_wins_and_both_stay_requirable() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("s.bundle");
    luabundle()
        .args(["build", "fixtures/shadowed_init/src", "--entry", "main", "-o"])
        .arg(&bundle)
        .assert()
        .code(0)
        .stderr(contains("warning[shadowed-module]: `require \"a\"` loads src/a.lua, which shadows src/a/init.lua"));
    luabundle().arg("run").arg(&bundle).assert().code(0).stdout("a -> a.lua\na.init -> a/init.lua\n");
}

#[test]
#[cfg(not(any(feature = "lua51", feature = "lua52")))]
fn strip_removes_line_information() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("stripped.bundle");
    luabundle().args(["build", "fixtures/app/src", "--strip", "-o"]).arg(&bundle).assert().code(0);
    luabundle()
        .arg("run")
        .arg(&bundle)
        .args(["-m", "app.tool", "--", "fail"])
        .assert()
        .code(1)
        .stderr(contains("util failure: asked to fail"))
        .stderr(contains("util.lua:17").not());
}

#[test]
fn usage_and_io_errors_exit_2() {
    luabundle().args(["build", "fixtures/app/src"]).assert().code(2);
    luabundle()
        .args(["build", "fixtures/does-not-exist", "-o", "x.bundle"])
        .assert()
        .code(2)
        .stderr(contains("is not a directory"));
    luabundle().args(["inspect", "fixtures/no-such.bundle"]).assert().code(2).stderr(contains("cannot read bundle"));
    luabundle().args(["frobnicate"]).assert().code(2);
}

#[test]
fn an_unknown_entry_is_an_input_error() {
    luabundle()
        .args(["check", "fixtures/app/src", "--entry", "app.nope"])
        .assert()
        .code(1)
        .stderr(contains("error[unknown-entry]: entry module `app.nope` is not in any root"));
}

#[test]
fn a_bundle_without_entry_runs_its_standard_input_as_lua_does() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("noentry.bundle");
    luabundle().args(["build", "fixtures/app/src", "-o"]).arg(&bundle).assert().code(0);
    luabundle()
        .arg("run")
        .arg(&bundle)
        .write_stdin("print(require('app.config').name)\nerror('stopped here')\n")
        .assert()
        .code(1)
        .stdout("shapes-demo\n")
        .stderr(contains("stdin:2: stopped here"));
}

#[test]
fn a_damaged_bundle_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes[0] = b'X';
    std::fs::write(&bundle, &bytes).unwrap();
    for command in ["inspect", "verify", "run"] {
        luabundle().arg(command).arg(&bundle).assert().code(1).stderr(contains("wrong magic bytes"));
    }
}

#[test]
fn nesting_deeper_than_lua_allows_is_a_clean_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let depth = 100_000;
    let text = format!("local x = 1\nreturn {}1{}\n", "(".repeat(depth), ")".repeat(depth));
    std::fs::write(dir.path().join("deep.lua"), text).unwrap();
    std::fs::write(dir.path().join("blocks.lua"), "do ".repeat(depth) + &"end ".repeat(depth)).unwrap();
    luabundle()
        .arg("check")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("error[nesting-too-deep]"))
        .stderr(contains("deep.lua:2:208"))
        .stderr(contains("blocks.lua:1:601"))
        .stderr(contains("2 errors, 0 warnings"));
}

#[test]
fn lua_level_compile_errors_are_reported_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    std::fs::write(dir.path().join("locals.lua"), format!("-- many locals\nlocal {} = ...\n", names.join(", ")))
        .unwrap();
    let limit = if cfg!(any(feature = "luau", feature = "lua55")) { "registers" } else { "local variables" };
    luabundle()
        .arg("check")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("error[compile-error]: Lua rejects this file:").and(contains(limit)))
        // Lua 5.5 runs out of registers at the token after the declaration.
        .stderr(contains(if cfg!(feature = "lua55") { "locals.lua:3:1" } else { "locals.lua:2:1" }));
}

#[test]
fn why_explains_the_chain_that_bundles_a_module() {
    luabundle()
        .args(["why", "app.shapes.circle", "fixtures/app/src", "--entry", "app.main", "--no-cache"])
        .assert()
        .code(0)
        .stdout(contains("`app.main` requires `app.shapes` (eager, src/app/main.lua:5)"))
        .stdout(contains("`app.shapes` requires `app.shapes.circle` (eager, src/app/shapes/init.lua:2)"));
    luabundle()
        .args(["why", "app.tool", "fixtures/app/src", "--entry", "app.main", "--no-cache"])
        .assert()
        .code(0)
        .stdout(contains("is not reached from `app.main`"));
    luabundle().args(["why", "app.nope", "fixtures/app/src", "--entry", "app.main"]).assert().code(1);
}

#[test]
fn completions_and_the_manual_come_from_the_command_definition() {
    luabundle().args(["completions", "bash"]).assert().code(0).stdout(contains("_luabundle()"));
    luabundle().args(["completions", "zsh"]).assert().code(0).stdout(contains("#compdef luabundle"));
    luabundle().arg("man").assert().code(0).stdout(contains(".TH luabundle"));
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2000 {
        std::fs::write(dir.path().join(format!("module_with_a_long_name_{i}.lua")), "return 1").unwrap();
    }
    let bundle = dir.path().join("big.bundle");
    luabundle().arg("build").arg(dir.path()).args(["--no-cache", "-q", "-o"]).arg(&bundle).assert().code(0);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("luabundle"))
        .arg("inspect")
        .arg(&bundle)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once, like `| head -0`
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn inspect_json_describes_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    let out = luabundle().arg("inspect").arg(&bundle).arg("--json").assert().code(0).get_output().stdout.clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["entry"], "app.main");
    assert_eq!(doc["target"]["flavour"], luabundle_runtime::target::FLAVOUR);
    assert_eq!(doc["signed"], false);
    let main = doc["modules"].as_array().unwrap().iter().find(|m| m["name"] == "app.main").unwrap();
    assert_eq!(main["path"], "src/app/main.lua");
    assert!(main["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["module"] == "app.report" && d["kind"] == "deferred"));
}

#[test]
fn graph_svg_is_drawn_by_graphviz_or_explains_what_is_missing() {
    luabundle()
        .args(["graph", "fixtures/app/src", "--format", "svg"])
        .env("PATH", "/nonexistent")
        .assert()
        .code(2)
        .stderr(contains("needs Graphviz's `dot`"));
    let dot = std::process::Command::new("dot").arg("-V").output().is_ok();
    if crate::support::present_or_skip(dot, "Graphviz's dot is missing", "graphviz") {
        luabundle().args(["graph", "fixtures/app/src", "--format", "svg"]).assert().code(0).stdout(contains("<svg"));
    }
}

#[test]
fn init_writes_a_working_configuration_and_prints_the_embedding_code() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(src.join("app/main.lua"), "local lfs = require('lfs')\nreturn require('app.util')").unwrap();
    std::fs::write(src.join("app/util.lua"), "return 1").unwrap();
    luabundle()
        .current_dir(dir.path())
        .arg("init")
        .assert()
        .code(0)
        .stdout(contains("luabundle::Builder::new().root(\"src\").entry(\"app.main\").build();"));
    let config = std::fs::read_to_string(dir.path().join("luabundle.toml")).unwrap();
    assert!(
        config.contains("roots = [\"src\"]")
            && config.contains("entry = \"app.main\"")
            && config.contains("externals = [\"lfs\"]"),
        "{config}"
    );
    luabundle().current_dir(dir.path()).args(["build", "-q"]).assert().code(0);
    assert!(dir.path().join("app.bundle").is_file());
    luabundle().current_dir(dir.path()).arg("init").assert().code(2).stderr(contains("--force"));
}

#[cfg(feature = "luau")]
#[test]
fn init_finds_a_root_of_luau_files() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(lib.join("app")).unwrap();
    std::fs::write(lib.join("app/main.luau"), "local util = require('app.util')\nreturn util").unwrap();
    std::fs::write(lib.join("app/util.luau"), "return 1").unwrap();
    luabundle().current_dir(dir.path()).arg("init").assert().code(0);
    let config = std::fs::read_to_string(dir.path().join("luabundle.toml")).unwrap();
    assert!(config.contains("roots = [\"lib\"]") && config.contains("entry = \"app.main\""), "{config}");
    luabundle().current_dir(dir.path()).args(["build", "-q"]).assert().code(0);
}

#[test]
fn a_locked_build_fails_with_a_diff_when_the_manifest_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("main.lua"), "return require('util')").unwrap();
    std::fs::write(src.join("util.lua"), "return 1").unwrap();
    let (bundle, lock) = (dir.path().join("app.bundle"), dir.path().join("luabundle.lock"));
    let build = |locked: bool| {
        let mut cmd = luabundle();
        cmd.arg("build").arg(&src).args(["--no-cache", "-q", "-o"]).arg(&bundle).arg("--manifest").arg(&lock);
        if locked {
            cmd.arg("--locked");
        }
        cmd.assert()
    };
    build(false).code(0);
    let manifest = std::fs::read_to_string(&lock).unwrap();
    let lines: Vec<&str> = manifest.lines().collect();
    assert!(lines[1].starts_with("main src/main.lua ") && lines[1].ends_with(" [util]"), "{manifest}");
    assert!(lines[2].starts_with("util src/util.lua "), "{manifest}");
    build(true).code(0);
    std::fs::write(src.join("extra.lua"), "return 2").unwrap();
    let before = std::fs::read(&bundle).unwrap();
    build(true).code(1).stderr(contains("luabundle.lock would change")).stderr(contains("+extra src/extra.lua"));
    assert_eq!(std::fs::read(&bundle).unwrap(), before, "a locked failure writes nothing");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), manifest);
}

#[test]
fn check_unused_lists_the_files_the_entry_never_reaches() {
    luabundle()
        .args(["check", "fixtures/excluded_specs/src", "--entry", "main", "--unused"])
        .assert()
        .code(0)
        .stdout("src/lib/util_spec.lua\nsrc/spec/main_spec.lua\n");
    luabundle()
        .args(["check", "fixtures/app/src", "--unused"])
        .assert()
        .code(0)
        .stdout("")
        .stderr(contains("every file is bundled"));
}

#[test]
fn color_is_chosen_by_flag_terminal_and_no_color() {
    let colored = luabundle()
        .args(["check", "fixtures/unresolved_require/src", "--color", "always"])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&colored).contains("\u{1b}["), "always colours");
    // Piped (not a terminal): auto means no colour; never means none.
    for args in [&["--color", "auto"][..], &["--color", "never"]] {
        let plain = luabundle()
            .args(["check", "fixtures/unresolved_require/src"])
            .args(args)
            .assert()
            .code(1)
            .get_output()
            .stderr
            .clone();
        assert!(!String::from_utf8_lossy(&plain).contains('\u{1b}'), "{args:?}");
    }
}

#[test]
fn verify_json_reports_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_app(dir.path());
    let out = luabundle().arg("verify").arg(&bundle).arg("--json").assert().code(0).get_output().stdout.clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((doc["ok"].as_bool(), doc["modules"].as_u64()), (Some(true), Some(9)));
}

#[test]
fn build_verbose_and_timings_explain_the_build() {
    let dir = tempfile::tempdir().unwrap();
    luabundle()
        .args(["build", "fixtures/deferred_cycle/src", "--entry", "main", "--no-cache", "-v", "--timings", "-o"])
        .arg(dir.path().join("b.bundle"))
        .assert()
        .code(0)
        .stderr(contains("cycle through a deferred require (allowed)"))
        .stderr(contains("require sites:"))
        .stderr(contains("\ncompile ").and(contains("\ngraph ")).and(contains("\nwrite ")))
        .stderr(contains("peak memory"));
    luabundle().args(["build", "fixtures/app/src", "-q", "-v", "-o", "x.bundle"]).assert().code(2);
}

#[test]
fn every_command_shows_examples_in_its_help() {
    let commands: &[&[&str]] = &[
        &["build"],
        &["check"],
        &["graph"],
        &["inspect"],
        &["verify"],
        &["keygen"],
        &["init"],
        &["why"],
        &["completions"],
        &["man"],
        &["cache"],
        &["cache", "prune"],
        &["run"],
    ];
    for command in commands {
        luabundle()
            .args(*command)
            .arg("--help")
            .assert()
            .code(0)
            .stdout(contains("Example").and(contains("luabundle ")));
    }
}
