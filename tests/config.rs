//! `luabundle.toml` and the flags that override it.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{fixture, luabundle};

/// A project with the app fixture under `src/` and `config` beside it.
fn project(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new(fixture("app/src")) {
        let entry = entry.unwrap();
        let target = dir.path().join("src").join(entry.path().strip_prefix(fixture("app/src")).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(target).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
    std::fs::write(dir.path().join("luabundle.toml"), config).unwrap();
    dir
}

#[test]
fn the_file_beside_the_roots_supplies_every_option() {
    let dir = project(
        "roots = [\"src\"]\nentry = \"app.main\"\ninclude = [\"app.tool\"]\noutput = \"out/app.bundle\"\n[profiles]\ntools = [\"app.tool\"]\n",
    );
    luabundle().current_dir(dir.path()).arg("build").assert().code(0).stderr(contains("bundled 9 modules"));
    luabundle()
        .current_dir(dir.path())
        .args(["inspect", "out/app.bundle"])
        .assert()
        .code(0)
        .stdout(contains("entry:     app.main"))
        .stdout(contains("profile:   tools (app.tool, app.util)"));
    // Given a root, the file beside it is read too.
    luabundle().current_dir(dir.path().join("src")).args(["check", "."]).assert().code(0);
}

#[test]
fn flags_override_the_file() {
    let dir = project("roots = [\"src\"]\nentry = \"app.main\"\noutput = \"out/app.bundle\"\n");
    luabundle()
        .current_dir(dir.path())
        .args(["build", "--entry", "app.tool", "-o", "other.bundle"])
        .assert()
        .code(0)
        .stderr(contains("bundled 2 modules").and(contains("other.bundle")));
    assert!(!dir.path().join("out/app.bundle").exists());
}

#[test]
fn unknown_keys_and_wrong_types_are_errors_naming_key_and_line() {
    let dir = project("roots = [\"src\"]\nentyr = \"app.main\"\n");
    luabundle()
        .current_dir(dir.path())
        .args(["check"])
        .assert()
        .code(2)
        .stderr(contains("luabundle.toml").and(contains("line 2")).and(contains("entyr")));
    let dir = project("roots = [\"src\"]\nstrip = \"yes\"\n");
    luabundle()
        .current_dir(dir.path())
        .args(["check"])
        .assert()
        .code(2)
        .stderr(contains("line 2").and(contains("strip")));
}

#[test]
fn without_roots_or_a_file_the_user_is_told_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    luabundle().current_dir(dir.path()).arg("check").assert().code(2).stderr(contains("no source roots"));
}
