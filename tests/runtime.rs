//! The runtime on real bundles: laziness, require semantics, error locations, and refusal of
//! every kind of damaged or foreign bundle.

use luabundle_runtime::format::{self, BlobKind, BundleContents, FormatError, ModuleInput, Target};
use luabundle_runtime::{Bundle, Error};
use mlua::Lua;

use crate::support::{build_bytes_including, capture_print, captured, fixture};

fn app_bundle() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = build_bytes_including(&fixture("app/src"), Some("app.main"), &["app.tool"], dir.path());
    (dir, bytes)
}

#[test]
fn modules_run_only_on_first_require_and_only_once() -> mlua::Result<()> {
    let (_dir, bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    let before: Option<i64> = lua.globals().get("CONFIG_LOADS")?;
    assert_eq!(before, None, "installing ran a module body");
    let loaded_before: bool = lua.load("return package.loaded['app.config'] ~= nil").eval()?;
    assert!(!loaded_before);
    let same: bool = lua.load("return require('app.config') == require('app.config')").eval()?;
    assert!(same);
    let after: i64 = lua.globals().get("CONFIG_LOADS")?;
    assert_eq!(after, 1, "module body must run exactly once");
    Ok(())
}

#[test]
fn install_materialises_nothing_up_front() -> mlua::Result<()> {
    let (_dir, bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    let lua = Lua::new();
    crate::support::with_package_table(&lua);
    let count = "local n = 0 for _ in next, package.preload do n = n + 1 end return n";
    let before: i64 = lua.load(count).eval()?;
    bundle.install(&lua).unwrap();
    // No preload entry exists as a raw field until a name is looked up.
    let raw_entries: i64 = lua.load(count).eval()?;
    assert_eq!(raw_entries, before);
    let is_loader: bool = lua.load("return type(package.preload['app.util']) == 'function'").eval()?;
    assert!(is_loader);
    let missing: bool = lua.load("return package.preload['app.nope'] == nil and package.preload[42] == nil").eval()?;
    assert!(missing);
    Ok(())
}

#[test]
fn a_module_returning_nothing_yields_true() -> mlua::Result<()> {
    let (_dir, bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    let (value, loaded, ran): (bool, bool, bool) =
        lua.load("local v = require('app.silent') return v, package.loaded['app.silent'], SILENT_RAN").eval()?;
    assert!(value && loaded && ran);
    Ok(())
}

#[test]
fn modules_receive_their_name_and_path() -> mlua::Result<()> {
    let (_dir, bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    // app.tool reads its own chunk name through the debug library, as LuaRocks does.
    // SAFETY: the debug library is only used by the test's own fixture code.
    let lua = unsafe { Lua::unsafe_new() };
    capture_print(&lua);
    bundle.install(&lua).unwrap();
    lua.load("require('app.tool')").exec()?;
    assert_eq!(captured(&lua), "tool module app.tool from src/app/tool.lua\ntool source @src/app/tool.lua");
    Ok(())
}

#[test]
fn runtime_errors_name_the_original_file_and_line() {
    let (_dir, bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    let err = lua.load("require('app.util').fail('boom')").exec().unwrap_err().to_string();
    assert!(err.contains("src/app/util.lua:17: util failure: boom"), "{err}");
}

#[test]
fn open_from_bytes_and_from_static_behave_alike() -> mlua::Result<()> {
    let (dir, bytes) = app_bundle();
    let leaked: &'static [u8] = Box::leak(bytes.clone().into_boxed_slice());
    let bundles = [
        Bundle::open(dir.path().join("app.bundle")).unwrap(),
        Bundle::from_bytes(bytes).unwrap(),
        Bundle::from_static(leaked).unwrap(),
    ];
    for bundle in bundles {
        assert_eq!(bundle.entry().unwrap(), Some("app.main"));
        assert_eq!(bundle.index().unwrap().modules.len(), 9);
        let lua = Lua::new();
        bundle.install(&lua).unwrap();
        let area: f64 = lua.load("return require('app.shapes').square(3):area()").eval()?;
        assert_eq!(area, 9.0);
    }
    Ok(())
}

#[test]
fn one_bundle_serves_many_states_on_many_threads() {
    let (_dir, bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let bundle = bundle.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let lua = Lua::new();
                    bundle.install(&lua).unwrap();
                    let area: f64 =
                        lua.load(format!("return require('app.shapes').square({i}):area()")).eval().unwrap();
                    assert_eq!(area, f64::from(i * i));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

/// Offset of the first byte of module `name`'s blob in the bundle file.
fn blob_offset(bytes: &[u8], name: &str) -> usize {
    let bundle = Bundle::from_bytes(bytes.to_vec()).unwrap();
    let record = bundle.module(name).unwrap().unwrap();
    (bundle.header().blobs.offset + record.blob.offset) as usize
}

#[test]
fn a_damaged_blob_is_refused_on_require_naming_the_module() -> mlua::Result<()> {
    let (_dir, mut bytes) = app_bundle();
    let at = blob_offset(&bytes, "app.report") + 20;
    bytes[at] ^= 0x01;
    let bundle = Bundle::from_bytes(bytes).unwrap();
    let lua = Lua::new();
    bundle.install(&lua).unwrap(); // blobs are not read at install
    let fine: f64 = lua.load("return require('app.util').round(1.26, 1)").eval()?;
    assert_eq!(fine, 1.3);
    let err = lua.load("require('app.report')").exec().unwrap_err().to_string();
    assert!(err.contains("module app.report in bundle <in-memory bundle> is damaged: blake3"), "{err}");
    let direct = bundle.verified_blob(bundle.index().unwrap().position("app.report").unwrap()).unwrap_err();
    assert!(matches!(direct, Error::BlobHashMismatch { ref module, .. } if module == "app.report"));
    Ok(())
}

#[test]
fn wrong_magic_is_refused() {
    let (_dir, mut bytes) = app_bundle();
    bytes[..4].copy_from_slice(b"\x1bLua");
    let err = Bundle::from_bytes(bytes).unwrap_err();
    assert!(matches!(err, Error::Format { source: FormatError::BadMagic { .. }, .. }), "{err}");
    assert!(err.to_string().contains("wrong magic bytes"));
}

#[test]
fn an_unknown_format_version_is_refused() {
    let (_dir, mut bytes) = app_bundle();
    bytes[10..12].copy_from_slice(&3u16.to_le_bytes());
    let err = Bundle::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedFormat { source: FormatError::UnsupportedVersion { major: 3, minor: 0 }, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("has format 3.0, from a newer luabundle"), "{err}");
}

/// A bundle written by a luabundle of format 1 (kept as it was written): refused with the
/// advice to rebuild, not as damaged.
#[test]
fn a_bundle_of_the_previous_format_is_refused_with_advice_to_rebuild() {
    let err = Bundle::open(fixture("foreign_bundles").join("format-1.bundle")).unwrap_err();
    assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err}");
    let message = err.to_string();
    let advice =
        format!("has format 1.0, from an older luabundle: rebuild it with luabundle {}", env!("CARGO_PKG_VERSION"));
    assert!(message.contains(&advice) && !message.contains("damaged"), "{message}");
}

#[test]
fn a_damaged_directory_fails_the_root_hash_at_open() {
    let (_dir, mut bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes.clone()).unwrap();
    let at = bundle.header().directory.offset as usize + 5;
    bytes[at] ^= 0x20;
    let err = Bundle::from_bytes(bytes).unwrap_err();
    assert!(matches!(err, Error::Format { source: FormatError::RootHashMismatch { .. }, .. }), "{err}");
}

/// Index pages are verified when first touched: a damaged one is refused by the lookup that
/// reads it, before anything it says is used.
#[test]
fn a_damaged_index_page_fails_its_hash_on_first_touch() {
    let (_dir, mut bytes) = app_bundle();
    let bundle = Bundle::from_bytes(bytes.clone()).unwrap();
    let at = bundle.header().index.offset as usize + 5;
    bytes[at] ^= 0x20;
    let damaged = Bundle::from_bytes(bytes).unwrap();
    let err = damaged.position("app.main").unwrap_err();
    assert!(
        matches!(err, Error::Format { source: FormatError::PageHashMismatch { region: "index", page: 0, .. }, .. }),
        "{err}"
    );
    let lua = Lua::new();
    damaged.install(&lua).unwrap();
    let err = lua.load("require('app.main')").exec().unwrap_err().to_string();
    assert!(err.contains("damaged index page 0"), "{err}");
    assert!(damaged.verify_all().is_err());
}

fn foreign_bundle(target: Target) -> Vec<u8> {
    let bytecode = crate::support::bytecode_of("return 1");
    format::encode(&BundleContents {
        target,
        modules: vec![ModuleInput {
            name: "m".into(),
            chunk_name: "@m.lua".into(),
            path: "m.lua".into(),
            kind: BlobKind::Bytecode,
            bytes: bytecode,
            encoding: format::Encoding::Plain,
            source: None,
            deps: vec![],
        }],
        entry: None,
        externals: vec![],
        profiles: vec![],
        groups: vec![],
    })
    .unwrap()
}

/// A "source" target runs on every VM because it holds no bytecode; a crafted one with
/// bytecode inside (hashes recomputed) is refused wherever its record is read, before Lua
/// sees a byte.
#[test]
fn a_source_bundle_holding_bytecode_is_refused_before_lua_sees_it() {
    let mut target = luabundle_runtime::target::linked().clone();
    target.flavour = luabundle_runtime::target::SOURCE_FLAVOUR.into();
    let bundle = Bundle::from_bytes(foreign_bundle(target)).unwrap();
    for err in [bundle.record(0).unwrap_err(), bundle.verified_blob(0).unwrap_err(), bundle.verify_all().unwrap_err()] {
        assert!(matches!(err, Error::Format { source: FormatError::Invalid { .. }, .. }), "{err}");
        assert!(err.to_string().contains("the source bundle holds bytecode (module `m`)"), "{err}");
    }
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    let err = lua.load("require('m')").exec().unwrap_err().to_string();
    assert!(err.contains("the source bundle holds bytecode (module `m`)"), "{err}");
}

#[test]
fn a_bundle_for_another_vm_is_refused_at_install_naming_both_targets() {
    let mut target = luabundle_runtime::target::linked().clone();
    let last = target.bytecode_header.len() - 1;
    target.bytecode_header[last] ^= 0x01; // e.g. another number format
    let bundle = Bundle::from_bytes(foreign_bundle(target)).unwrap();
    let err = bundle.install(&Lua::new()).unwrap_err();
    assert!(matches!(err, Error::TargetMismatch { .. }), "{err}");
    let message = err.to_string();
    let flavour = luabundle_runtime::target::FLAVOUR;
    assert!(message.contains(&format!("was built for {flavour}")), "{message}");
    assert!(message.contains(&format!("but this program links {flavour}")), "{message}");

    let other = if luabundle_runtime::target::FLAVOUR == "luajit" { "lua54" } else { "luajit" };
    let mut flavour = luabundle_runtime::target::linked().clone();
    flavour.flavour = other.into();
    let err = Bundle::from_bytes(foreign_bundle(flavour)).unwrap().install(&Lua::new()).unwrap_err();
    assert!(err.to_string().contains(&format!("was built for {other}")), "{err}");
}

#[test]
fn a_matching_hand_made_bundle_loads() -> mlua::Result<()> {
    let bundle = Bundle::from_bytes(foreign_bundle(luabundle_runtime::target::linked().clone())).unwrap();
    let lua = Lua::new();
    bundle.install(&lua).unwrap();
    let value: i64 = lua.load("return require('m')").eval()?;
    assert_eq!(value, 1);
    Ok(())
}

#[test]
fn an_existing_preload_index_still_answers_other_names() -> mlua::Result<()> {
    let (_dir, bytes) = app_bundle();
    let lua = Lua::new();
    crate::support::with_package_table(&lua);
    lua.load("setmetatable(package.preload, { __index = function(_, name) if name == 'host.mod' then return function() return 'host' end end end })").exec()?;
    Bundle::from_bytes(bytes).unwrap().install(&lua).unwrap();
    let (host, bundled): (String, f64) =
        lua.load("return require('host.mod'), require('app.util').round(2.5)").eval()?;
    assert_eq!((host.as_str(), bundled), ("host", 3.0));
    Ok(())
}
