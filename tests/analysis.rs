//! Require analysis on the fixtures: every diagnostic snapshotted as users see it, and the
//! behaviour of includes, excludes, entries and computed names.

use luabundle::{Builder, Error};

use crate::support::{build_bytes_including, captured, capturing_lua, fixture, luabundle};

/// What `luabundle check` shows for a fixture: the rendered diagnostics, or the errors.
fn check_report(configure: impl FnOnce(&mut Builder)) -> String {
    let mut builder = Builder::new();
    configure(&mut builder);
    match builder.check() {
        Ok(report) => {
            let mut text = report.warnings.render();
            for cycle in &report.legal_cycles {
                text.push_str(&format!("allowed cycle: {cycle}\n"));
            }
            text.push_str(&format!("ok: {} modules\n", report.modules));
            text
        }
        Err(Error::Input(diagnostics)) => diagnostics.render(),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn root(name: &str) -> std::path::PathBuf {
    fixture(name).join("src")
}

#[test]
fn snapshot_syntax_errors() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("syntax_error"));
    }));
}

#[test]
fn snapshot_unresolved_require_with_suggestion() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("unresolved_require"));
    }));
}

#[test]
fn snapshot_every_eager_cycle_sorted() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("eager_cycle"));
    }));
}

#[test]
fn snapshot_duplicate_module() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(fixture("duplicate_module/one")).root(fixture("duplicate_module/two"));
    }));
}

#[test]
fn snapshot_shadowed_init() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("shadowed_init"));
    }));
}

#[test]
fn snapshot_dynamic_require_without_include() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("dynamic_plugins")).entry("main");
    }));
}

#[test]
fn snapshot_case_conflict() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("case_conflict"));
    }));
}

#[test]
fn snapshot_require_forms() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("require_forms")).entry("main");
    }));
}

#[test]
fn snapshot_deferred_cycle_is_allowed_and_listed() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("deferred_cycle"));
    }));
}

#[test]
fn snapshot_specs_fail_until_excluded() {
    insta::assert_snapshot!(check_report(|b| {
        b.root(root("excluded_specs"));
    }));
    let clean = check_report(|b| {
        b.root(root("excluded_specs")).exclude("spec").exclude("*_spec.lua");
    });
    assert_eq!(clean, "ok: 2 modules\n");
}

#[test]
fn snapshot_json_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let out = luabundle()
        .args(["check", "fixtures/unresolved_require/src", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    drop(dir);
    let text = String::from_utf8(out).unwrap();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("each line is one JSON object");
        assert!(value["code"].is_string() && value["severity"].is_string());
    }
    insta::assert_snapshot!(text);
}

#[test]
fn an_include_bundles_dynamically_required_plugins_and_silences_the_warning() {
    let report = Builder::new().root(root("dynamic_plugins")).entry("main").include("plugins.*").check().unwrap();
    assert!(report.warnings.items().is_empty(), "{}", report.warnings.render());
    assert_eq!(report.modules, 4);
    let dir = tempfile::tempdir().unwrap();
    let bytes = build_bytes_including(&root("dynamic_plugins"), Some("main"), &["plugins.*"], dir.path());
    let lua = capturing_lua();
    luabundle_runtime::Bundle::from_bytes(bytes).unwrap().install(&lua).unwrap();
    lua.load("package.path = '' require('main')").exec().unwrap();
    assert_eq!(captured(&lua), "hello from alpha, hello from beta");
}

#[test]
fn an_entry_bundles_only_what_it_reaches() {
    let with_entry = Builder::new().root(root("excluded_specs")).entry("main").check().unwrap();
    assert_eq!(with_entry.modules, 2);
    let codes: Vec<&str> = with_entry.warnings.items().iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["unreachable-file"]);
    // Without an entry every module is bundled, so the specs' missing modules are errors.
    let Err(Error::Input(all)) = Builder::new().root(root("excluded_specs")).check() else { panic!("expected errors") };
    assert_eq!(all.counts(), (2, 0));
}

#[test]
fn module_relative_requires_resolve_through_the_module_name() {
    let report = Builder::new().root(root("relative_requires")).entry("main").check().unwrap();
    assert!(report.warnings.items().is_empty(), "{}", report.warnings.render());
    assert_eq!(report.site_counts.computed, 2);
    let dir = tempfile::tempdir().unwrap();
    let bytes = build_bytes_including(&root("relative_requires"), Some("main"), &["pkg.init"], dir.path());
    let lua = capturing_lua();
    luabundle_runtime::Bundle::from_bytes(bytes).unwrap().install(&lua).unwrap();
    lua.load("package.path = '' require('main')").exec().unwrap();
    assert_eq!(captured(&lua), "pkg uses helper and sibling\ntrue");
}

#[test]
fn graph_json_follows_the_documented_schema() {
    let out = luabundle()
        .args(["graph", "fixtures/deferred_cycle/src", "--entry", "main", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["entry"], "main");
    let modules: Vec<&str> = doc["modules"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(modules, vec!["a", "b", "main"]);
    let edges: Vec<String> = doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} -> {} {} {}:{}:{}", e["from"], e["to"], e["kind"], e["file"], e["line"], e["column"]))
        .collect();
    assert_eq!(
        edges,
        vec![
            r#""a" -> "b" "eager" "src/a.lua":2:11"#,
            r#""b" -> "a" "deferred" "src/b.lua":3:31"#,
            r#""main" -> "a" "eager" "src/main.lua":1:11"#,
        ]
    );
}

#[test]
fn graph_dot_and_mermaid_draw_each_kind_of_edge_differently() {
    let run = |format: &str| {
        let out = luabundle()
            .args(["graph", "fixtures/require_forms/src", "--entry", "main", "--format", format])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let dot = run("dot");
    assert!(dot.starts_with("digraph requires {"));
    assert!(dot.contains(r#""main" -> "forms.a" [style=solid"#), "{dot}");
    assert!(dot.contains(r#""main" -> "forms.m" [style=dashed"#), "{dot}");
    assert!(dot.contains(r#""main" -> "forms.k" [style=dotted"#), "{dot}");
    assert!(dot.contains(r#""main" [label="main\nsrc/main.lua", style=bold]"#), "{dot}");
    let mermaid = run("mermaid");
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(mermaid.contains(" -.-> "), "{mermaid}");
    assert!(mermaid.contains(" -->|optional| "), "{mermaid}");
}

#[test]
fn check_verbose_lists_allowed_cycles_and_site_counts() {
    luabundle()
        .args(["check", "fixtures/deferred_cycle/src", "-v"])
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "cycle through a deferred require (allowed): `a` > `b` (eager, src/a.lua:2) > `a` (deferred, src/b.lua:3)",
        ))
        .stderr(predicates::str::contains("require sites: 3 (3 resolve to bundled modules"));
}

#[test]
fn guards_make_requires_optional_but_a_plain_typo_stays_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("main.lua"),
        "local ok = pcall(require, 'socket')\nif ok then require 'ltn12' end\nlocal have, lb = pcall(require, 'helper')\nif not have then lb = require 'old_helper' end\nrequire 'helpr'\n",
    )
    .unwrap();
    std::fs::write(src.join("helper.lua"), "return {}\n").unwrap();
    let out = luabundle().args(["check"]).arg(&src).arg("--no-cache").assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[unresolved-require]: module `helpr` not found"), "{stderr}");
    assert!(stderr.contains("did you mean `helper`?"), "{stderr}");
    assert!(stderr.contains("warning[unresolved-require]: module `ltn12` not found"), "{stderr}");
    assert!(stderr.contains("runs only if this require of `socket` succeeded"), "{stderr}");
    assert!(stderr.contains("warning[unresolved-require]: module `old_helper` not found"), "{stderr}");
    assert!(stderr.contains("a fallback that never runs while `helper` is bundled"), "{stderr}");
    assert!(stderr.contains("error: 1 error"), "{stderr}");
    // Without the module it falls back to, the fallback is an ordinary require.
    std::fs::remove_file(src.join("helper.lua")).unwrap();
    let out = luabundle().args(["check"]).arg(&src).arg("--no-cache").assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[unresolved-require]: module `old_helper` not found"), "{stderr}");
}

#[test]
fn files_the_bundle_leaves_out_may_hold_anything_and_include_only_modules_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("plugins")).unwrap();
    std::fs::create_dir_all(src.join("stubs")).unwrap();
    std::fs::write(src.join("main.lua"), "local function plugin(name) return require('plugins.' .. name) end\nreturn plugin(os.getenv('PLUGIN') or 'fast')\n").unwrap();
    std::fs::write(src.join("plugins/fast.lua"), "return 'fast'\n").unwrap();
    // Loaded only when `bit` exists, by a name computed at run time.
    std::fs::write(src.join("plugins/bits.lua"), "return require 'lanes'\n").unwrap();
    // Not Lua for this VM (as 5.3's `&` is not Lua 5.1): only a run-time require loads it.
    std::fs::write(src.join("plugins/newer.lua"), "local x = 1 $ 2\nreturn x\n").unwrap();
    // Documentation stubs, not Lua: nothing requires them.
    std::fs::write(
        src.join("stubs/string.lua"),
        "function string.pack (fmt, v1, v2, ...) end\nfunction f(a, function) end\nx = = 1\n",
    )
    .unwrap();
    let out = luabundle()
        .args(["check"])
        .arg(&src)
        .args(["--entry", "main", "--include", "plugins.*", "--no-cache"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning[parse-error]"), "{stderr}");
    assert!(stderr.contains("it is left out of the bundle, and Lua never loads it"), "{stderr}");
    assert!(stderr.contains("more error"), "one warning per file: {stderr}");
    assert!(stderr.contains("warning[unresolved-require]: module `lanes` not found"), "{stderr}");
    assert!(
        stderr
            .contains("`plugins.newer` loads only through optional or run-time requires: it is left out of the bundle"),
        "{stderr}"
    );
    assert!(stderr.contains("`plugins.bits` is bundled by --include and loaded only by run-time requires"), "{stderr}");
    // Bundled, the same file is an error: the bundle would hold what Lua cannot compile.
    luabundle()
        .args(["check"])
        .arg(&src)
        .args(["--no-cache"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("error[parse-error]"));
}
