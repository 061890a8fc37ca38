//! `build --compress zstd`: each module stored compressed on its own and decompressed on its
//! first `require` only, through the CLI, the library and the cache.

use std::path::Path;

use luabundle::{Builder, Compression};
use luabundle_runtime::format::{Encoding, FLAG_ZSTD};
use luabundle_runtime::Bundle;

use crate::support::luabundle;

/// A project of `count` modules `gen.mN`, each requiring the previous one, with bodies long
/// enough to shrink when compressed.
fn project(dir: &Path, count: usize) {
    let src = dir.join("src/gen");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..count {
        let prev = if i == 0 { "{ n = 0 }".to_string() } else { format!("require('gen.m{}')", i - 1) };
        let fields: String = (0..12).map(|f| format!("  field_{f} = 'value number {f} of module {i}',\n")).collect();
        let body = format!("local prev = {prev}\nreturn {{\n{fields}  n = prev.n + 1,\n}}\n");
        std::fs::write(src.join(format!("m{i}.lua")), body).unwrap();
    }
}

fn builder(dir: &Path, compression: Compression) -> Builder {
    let mut builder = Builder::new();
    builder.root(dir.join("src")).output(dir.join("out.bundle")).cache_dir(dir.join("cache")).compress(compression);
    builder
}

#[test]
fn a_compressed_bundle_is_smaller_and_loads_the_same_modules() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 20);
    let mut plain = builder(dir.path(), Compression::None);
    plain.output(dir.path().join("plain.bundle")).include("gen.*");
    plain.try_build().unwrap();
    let mut zstd = builder(dir.path(), Compression::Zstd);
    zstd.include("gen.*");
    zstd.try_build().unwrap();
    let plain = Bundle::open(dir.path().join("plain.bundle")).unwrap();
    let zstd = Bundle::open(dir.path().join("out.bundle")).unwrap();
    assert_eq!(plain.header().flags & FLAG_ZSTD, 0);
    assert_eq!(zstd.header().flags & FLAG_ZSTD, FLAG_ZSTD);
    assert!(zstd.header().blobs.len * 10 < plain.header().blobs.len * 6, "compressed modules take under 60%");
    for i in 0..plain.module_count() {
        let record = zstd.record(i).unwrap();
        assert!(matches!(record.encoding, Encoding::Zstd { .. }), "{} stored compressed", record.name);
        // The bytes Lua loads are the very bytes of the uncompressed bundle.
        assert_eq!(&*zstd.verified_blob(i).unwrap(), &*plain.verified_blob(i).unwrap(), "{}", record.name);
    }
    zstd.verify_all().unwrap();
}

#[test]
fn only_the_required_modules_are_read_and_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 30);
    let mut zstd = builder(dir.path(), Compression::Zstd);
    zstd.include("gen.*");
    zstd.try_build().unwrap();
    let bundle = Bundle::open(dir.path().join("out.bundle")).unwrap();
    let lua = mlua::Lua::new();
    let installed = bundle.install(&lua).unwrap();
    assert_eq!(bundle.bytes_read(), 0, "nothing is read at install");
    let n: i64 = lua.load("return require('gen.m2').n").eval().unwrap();
    assert_eq!(n, 3);
    // m2 requires m1, which requires m0: three modules, each read as stored (compressed).
    let stored: u64 =
        ["gen.m0", "gen.m1", "gen.m2"].iter().map(|name| bundle.module(name).unwrap().unwrap().blob.len).sum();
    assert_eq!(bundle.bytes_read(), stored);
    assert_eq!(installed.stats().len(), 3);
}

#[test]
fn a_rebuild_copies_the_unchanged_compressed_modules_and_matches_a_clean_build() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 25);
    let build = |compression| {
        let mut b = builder(dir.path(), compression);
        b.include("gen.*");
        b.try_build().unwrap()
    };
    let cold = build(Compression::Zstd);
    assert_eq!(cold.compiled, 25);
    std::fs::write(dir.path().join("src/gen/m7.lua"), "local prev = require('gen.m6')\nreturn { n = prev.n + 100 }")
        .unwrap();
    let one = build(Compression::Zstd);
    assert_eq!((one.compiled, one.copied), (1, 24));
    let rebuilt = std::fs::read(dir.path().join("out.bundle")).unwrap();
    let mut clean = builder(dir.path(), Compression::Zstd);
    clean.include("gen.*").no_cache(true).output(dir.path().join("clean.bundle"));
    clean.try_build().unwrap();
    assert_eq!(std::fs::read(dir.path().join("clean.bundle")).unwrap(), rebuilt);
    // Turning compression off makes every module again (other cache entries), stored plain.
    let off = build(Compression::None);
    assert_eq!((off.compiled, off.copied), (25, 0));
    let bundle = Bundle::open(dir.path().join("out.bundle")).unwrap();
    assert_eq!(bundle.header().flags & FLAG_ZSTD, 0);
    assert!(bundle.index().unwrap().modules.iter().all(|m| m.encoding == Encoding::Plain));
}

#[test]
fn a_compressed_source_bundle_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 5);
    let mut source = builder(dir.path(), Compression::Zstd);
    source.format(luabundle::OutputFormat::Source).include("gen.*").no_cache(true);
    source.try_build().unwrap();
    let bundle = Bundle::open(dir.path().join("out.bundle")).unwrap();
    assert!(bundle.index().unwrap().modules.iter().all(|m| matches!(m.encoding, Encoding::Zstd { .. })));
    let lua = mlua::Lua::new();
    bundle.install(&lua).unwrap();
    assert_eq!(lua.load("return require('gen.m4').n").eval::<i64>().unwrap(), 5);
}

#[test]
fn the_command_line_compresses_and_inspect_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 6);
    let out = dir.path().join("z.bundle");
    luabundle()
        .args(["build", "--include", "gen.*", "--no-cache", "-q", "--compress", "zstd", "--compress-level", "3", "-o"])
        .arg(&out)
        .arg(dir.path().join("src"))
        .assert()
        .success();
    let listing = luabundle().arg("inspect").arg(&out).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("zstd:      6 of 6 modules"), "{listing}");
    let json = luabundle().args(["inspect", "--json"]).arg(&out).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let module = &json["modules"][0];
    assert_eq!(module["compression"], "zstd");
    assert!(module["loaded_bytes"].as_u64().unwrap() > module["bytes"].as_u64().unwrap(), "{module}");
    luabundle().arg("verify").arg(&out).assert().success();
    let run = luabundle().arg("run").arg(&out).args(["-e", "print(require('gen.m5').field_3)"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "value number 3 of module 5\n");
}

#[test]
fn luabundle_toml_asks_for_compression_and_the_command_line_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 3);
    std::fs::write(
        dir.path().join("luabundle.toml"),
        "roots = [\"src\"]\ninclude = [\"gen.*\"]\noutput = \"app.bundle\"\ncompress = \"zstd\"\ncompress-level = 5\n",
    )
    .unwrap();
    let compressed = |dir: &Path| {
        let bundle = Bundle::open(dir.join("app.bundle")).unwrap();
        bundle.header().flags & FLAG_ZSTD != 0
    };
    luabundle().args(["build", "-q"]).current_dir(dir.path()).assert().success();
    assert!(compressed(dir.path()));
    luabundle().args(["build", "-q", "--compress", "none"]).current_dir(dir.path()).assert().success();
    assert!(!compressed(dir.path()));
}

#[test]
fn compression_options_that_cannot_apply_are_usage_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 2);
    let out = dir.path().join("never.bundle");
    let cases: [(&[&str], &str); 4] = [
        (&["--compress-level", "3"], "--compress-level 3 needs --compress zstd"),
        (&["--compress", "zstd", "--compress-level", "99"], "--compress-level 99 is not a zstd level"),
        (&["--compress", "zstd", "--format", "lua"], "--format lua does not write"),
        (&["--compress", "gzip"], "invalid value 'gzip'"),
    ];
    for (args, message) in cases {
        let run = luabundle()
            .args(["build", "--no-cache", "-q", "--include", "gen.*"])
            .args(args)
            .arg("-o")
            .arg(&out)
            .arg(dir.path().join("src"))
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} wrote the bundle");
    }
}
