//! `luabundle::Builder` used as a library, as a build script does.

use luabundle::{Builder, Error};

use crate::support::fixture;

#[test]
fn try_build_returns_every_diagnostic_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        Builder::new().root(fixture("syntax_error/src")).output(dir.path().join("x.bundle")).try_build().unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let Error::Input(diagnostics) = err else { panic!("expected input errors") };
    let codes: Vec<&str> = diagnostics.items().iter().map(|d| d.code).collect();
    assert_eq!(codes, vec!["parse-error", "parse-error", "parse-error"]);
    assert_eq!(diagnostics.counts(), (3, 0));
    assert!(!dir.path().join("x.bundle").exists());
}

#[test]
fn check_writes_nothing_and_reports_warnings() {
    let report = Builder::new().root(fixture("shadowed_init/src")).check().unwrap();
    assert_eq!(report.output, None);
    assert_eq!(report.modules, 3); // `a` (a.lua), `a.init` and `main`
    let warnings: Vec<&str> = report.warnings.items().iter().map(|d| d.code).collect();
    assert_eq!(warnings, vec!["shadowed-module"]);
}

#[test]
fn the_output_goes_to_out_dir_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let report = Builder::new().root(fixture("app/src")).entry("app.main").out_dir(dir.path()).try_build().unwrap();
    assert_eq!(report.output.as_deref(), Some(dir.path().join("app.bundle").as_path()));
    assert!(report.written);
    assert_eq!(report.bytes, std::fs::metadata(dir.path().join("app.bundle")).unwrap().len());
    let again = Builder::new().root(fixture("app/src")).entry("app.main").out_dir(dir.path()).try_build().unwrap();
    assert!(!again.written, "identical bytes must not be rewritten");
}

#[test]
fn prefixed_roots_prefix_module_names() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("p.bundle");
    let mut builder = Builder::new();
    builder.root(format!("vendor={}", fixture("deferred_cycle/src").display()).as_str()).output(&output);
    // The fixture's own requires use unprefixed names, so they do not resolve here.
    let Err(Error::Input(diagnostics)) = builder.try_build() else { panic!("expected unresolved requires") };
    assert!(diagnostics.items().iter().all(|d| d.code == "unresolved-require"));
    builder.external("a").external("b");
    builder.try_build().unwrap();
    let bundle = luabundle_runtime::Bundle::open(&output).unwrap();
    let names: Vec<&str> = bundle.index().unwrap().modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["vendor.a", "vendor.b", "vendor.main"]);
    assert_eq!(bundle.index().unwrap().externals, vec!["a".to_string(), "b".to_string()]);
}

#[test]
fn missing_roots_and_outputs_are_usage_errors() {
    let err = Builder::new().output("x.bundle").try_build().unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    let err = Builder::new().root(fixture("app/src")).templates("no-placeholder").check().unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn a_prefixed_root_mounts_its_init_lua_as_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lib/sub")).unwrap();
    std::fs::write(dir.path().join("lib/init.lua"), "return { sub = require('pl.sub') }").unwrap();
    std::fs::write(dir.path().join("lib/sub/init.lua"), "return 'sub'").unwrap();
    let output = dir.path().join("p.bundle");
    Builder::new()
        .root(format!("pl={}", dir.path().join("lib").display()).as_str())
        .output(&output)
        .try_build()
        .unwrap();
    let bundle = luabundle_runtime::Bundle::open(&output).unwrap();
    let names: Vec<&str> = bundle.index().unwrap().modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["pl", "pl.init", "pl.sub", "pl.sub.init"]);
}

#[test]
fn a_profile_build_ignores_problems_outside_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("core.lua"), "return 1").unwrap();
    std::fs::write(dir.path().join("extra.lua"), "return require('missing.module')").unwrap();
    let output = dir.path().join("core.bundle");
    let mut builder = Builder::new();
    builder.root(dir.path()).profile("core", ["core"]).output(&output).no_cache(true);
    assert!(matches!(builder.try_build(), Err(Error::Input(_))), "the whole tree has an unresolved require");
    let report = builder.only_profile("core").try_build().unwrap();
    assert_eq!(report.modules, 1);
    let codes: Vec<&str> = report.warnings.items().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["unreachable-file"]);
}
