//! Each runnable fixture run twice in the same Lua VM: once from its plain sources through
//! `package.path` (Luau: the same search written in Luau), once from its bundle, stored as
//! compiled and compressed. The printed output must be identical.

use std::path::Path;

use luabundle_runtime::Bundle;

use luabundle::Compression;

use crate::support::{build_bytes_with, captured, capturing_lua, fixture, no_search_paths, require_from_sources};

fn from_sources(root: &Path, entry: &str) -> String {
    let lua = capturing_lua();
    require_from_sources(&lua, root);
    lua.load(format!("arg = {{}} require('{entry}')")).exec().unwrap_or_else(|e| panic!("{entry} from sources: {e}"));
    captured(&lua)
}

fn from_bundle(root: &Path, entry: &str, compression: Compression) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bytes = build_bytes_with(root, Some(entry), &[], dir.path(), compression);
    let lua = capturing_lua();
    no_search_paths(&lua);
    lua.load("arg = {}").exec().unwrap();
    Bundle::from_bytes(bytes).unwrap().install(&lua).unwrap();
    lua.load(format!("require('{entry}')")).exec().unwrap_or_else(|e| panic!("{entry} from bundle: {e}"));
    captured(&lua)
}

fn assert_same_output(fixture_name: &str, entry: &str) {
    let root = fixture(fixture_name).join("src");
    let plain = from_sources(&root, entry);
    assert!(!plain.is_empty(), "{fixture_name} printed nothing");
    assert_eq!(
        plain,
        from_bundle(&root, entry, Compression::None),
        "{fixture_name}: bundle output differs from sources"
    );
    assert_eq!(
        plain,
        from_bundle(&root, entry, Compression::Zstd),
        "{fixture_name}: compressed bundle output differs from sources"
    );
}

#[test]
fn the_app_behaves_the_same_from_sources_and_from_its_bundle() {
    assert_same_output("app", "app.main");
}

#[test]
fn the_deferred_cycle_behaves_the_same() {
    assert_same_output("deferred_cycle", "main");
}

#[test]
fn lua_and_the_bundle_pick_the_same_file_for_a_shadowed_name() {
    assert_same_output("shadowed_init", "main");
}

#[test]
fn every_require_form_behaves_the_same() {
    assert_same_output("require_forms", "main");
}

#[test]
fn every_wrapper_of_require_behaves_the_same() {
    assert_same_output("require_wrappers", "wrappers");
}

#[test]
fn module_relative_requires_behave_the_same() {
    assert_same_output("relative_requires", "main");
}

#[test]
#[cfg(feature = "luau")]
fn a_luau_program_behaves_the_same() {
    assert_same_output("luau_app", "main");
}

#[test]
#[cfg(feature = "lua55")]
fn a_lua55_program_behaves_the_same() {
    assert_same_output("lua55_syntax", "main");
}
