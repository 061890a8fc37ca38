//! Criterion benchmarks of the runtime:
//! - `install/N`: installing a bundle of N modules into a fresh state (flat in N);
//! - `state_install_require/10000`: a new state, install, and one `require` from a
//!   10,000-module bundle;
//! - `luarocks/bundle` vs `luarocks/sources`: requiring every module of Debian's LuaRocks
//!   from its bundle and from its source files through Lua's own `package.path` searcher
//!   (skipped when `luarocks` is not installed).
//!
//! It also prints the Lua heap after install and after requiring all 10,000 modules.
//!
//! Run with `cargo bench --bench runtime`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use luabundle_runtime::Bundle;
use mlua::Lua;

#[path = "support.rs"]
mod support;

fn bundle_of(root: &Path, configure: impl FnOnce(&mut luabundle::Builder)) -> Bundle {
    let output = root.join("bench.bundle");
    let mut builder = luabundle::Builder::new();
    builder.output(&output).no_cache(true);
    configure(&mut builder);
    builder.try_build().unwrap();
    Bundle::from_bytes(std::fs::read(output).unwrap()).unwrap()
}

fn generated_bundle(count: usize) -> (tempfile::TempDir, Bundle) {
    let dir = tempfile::tempdir().unwrap();
    support::generate_project(dir.path(), count);
    let root = dir.path().to_path_buf();
    let bundle = bundle_of(dir.path(), |b| {
        b.root(root);
    });
    (dir, bundle)
}

fn bench_install(c: &mut Criterion) {
    let mut group = c.benchmark_group("install");
    for count in [10, 1_000, 10_000] {
        let (_dir, bundle) = generated_bundle(count);
        group.bench_with_input(BenchmarkId::from_parameter(count), &bundle, |b, bundle| {
            b.iter_batched(Lua::new, |lua| bundle.install(&lua).map(|_| lua).unwrap(), BatchSize::SmallInput)
        });
    }
    group.finish();
}

fn bench_state_install_require(c: &mut Criterion) {
    let (_dir, bundle) = generated_bundle(10_000);
    report_heap(&bundle);
    c.bench_function("state_install_require/10000", |b| {
        b.iter(|| {
            let lua = Lua::new();
            bundle.install(&lua).unwrap();
            lua.load("return require('gen.m05000').id").eval::<i64>().unwrap()
        })
    });
}

/// Prints the Lua heap after install (nothing loaded) and after requiring every module.
fn report_heap(bundle: &Bundle) {
    let lua = Lua::new();
    let before_install = lua.used_memory();
    let installed = bundle.install(&lua).unwrap();
    let after_install = lua.used_memory();
    let names = installed.modules().to_vec();
    for name in &names {
        lua.load(format!("require('{name}')")).exec().unwrap();
    }
    lua.gc_collect().unwrap();
    let after_all = lua.used_memory();
    eprintln!(
        "Lua heap: {} KiB fresh, {} KiB after install, {} KiB after requiring all {} modules",
        before_install / 1024,
        after_install / 1024,
        after_all / 1024,
        names.len()
    );
}

const LUAROCKS: &str = "/usr/share/lua/5.4";

fn bench_luarocks(c: &mut Criterion) {
    if !Path::new(LUAROCKS).join("luarocks").is_dir() {
        eprintln!("luarocks benchmark skipped: apt-get install luarocks");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle_of(dir.path(), |b| {
        b.root(format!("luarocks={LUAROCKS}/luarocks").as_str());
        for external in ["ltn12", "zlib", "socket*", "ssl*", "lfs", "luarocks.core.hardcoded"] {
            b.external(external);
        }
    });
    let names: Vec<String> = bundle.index().modules.iter().map(|m| m.name.clone()).collect();
    let list = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(",");
    // pcall: a few modules need C libraries or a platform; both sides skip the same ones.
    let require_all =
        format!("local n = 0 for _, m in ipairs({{{list}}}) do if pcall(require, m) then n = n + 1 end end return n");
    let mut group = c.benchmark_group("luarocks");
    group.bench_function("bundle", |b| {
        b.iter(|| {
            let lua = Lua::new();
            lua.load("package.path = ''").exec().unwrap();
            bundle.install(&lua).unwrap();
            lua.load(&require_all).eval::<i64>().unwrap()
        })
    });
    group.bench_function("sources", |b| {
        b.iter(|| {
            let lua = Lua::new();
            lua.load(format!("package.path = '{LUAROCKS}/?.lua;{LUAROCKS}/?/init.lua'")).exec().unwrap();
            lua.load(&require_all).eval::<i64>().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_install, bench_state_install_require, bench_luarocks);
criterion_main!(benches);
