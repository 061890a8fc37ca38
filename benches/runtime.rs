//! Criterion benchmarks of the runtime:
//! - `install/N`: installing a bundle of N modules into a fresh state (flat in N);
//! - `state_install_require/10000`: a new state, install, and one `require` from a
//!   10,000-module bundle;
//! - `open/10000`: `Bundle::open` of a 10,000-module bundle file (header and index only);
//! - `open_install_require/{1,10000,100000}`: open a bundle file, install it into a new
//!   state and require one module, for three bundle sizes (it prints the peak Rust heap of
//!   one such run beside the bundle's size);
//! - `require_all_1000/*`: a new state requiring all 1,000 modules of a generated tree
//!   (5.5 KB each) from the bundle, from the sources through `package.path`, and from loose
//!   bytecode files with debug info;
//! - `luarocks/*` and `penlight/*`: the same for Debian's LuaRocks and Penlight (skipped when
//!   they are not installed).
//!
//! - `compression/<corpus>/*`: opening a bundle file, installing it into a new state and
//!   requiring one module (the largest) or every module, with modules stored as compiled
//!   (`none`) and compressed (`zstd`, the default level), for LuaRocks, Penlight and two
//!   generated trees (1,000 modules of 5.5 KB, 10,000 of 330 bytes). It prints each
//!   bundle's size and build time beside the timings.
//!
//! It also prints the Lua heap after install and after requiring all 10,000 modules.
//!
//! Run with `cargo bench -p luabundle-benches --bench runtime`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use luabundle::Compression;
use luabundle_runtime::Bundle;
use mlua::Lua;

#[path = "support.rs"]
mod support;

/// Counts the bytes the Rust side holds, so that the benchmarks can report what opening a
/// bundle keeps in memory as well as what it costs in time.
struct CountingAllocator;

static HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let held = HELD.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(held, Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HELD.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// Peak bytes held by Rust allocations (not Lua's heap) while `run` runs, above what was
/// held before.
fn peak_rust_heap<T>(run: impl FnOnce() -> T) -> (T, usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let before = HELD.load(Relaxed);
    PEAK.store(before, Relaxed);
    let value = run();
    (value, PEAK.load(Relaxed) - before)
}

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

fn bench_open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    support::generate_project(dir.path(), 10_000);
    let root = dir.path().to_path_buf();
    bundle_of(dir.path(), |b| {
        b.root(root);
    });
    let path = dir.path().join("bench.bundle");
    c.bench_function("open/10000", |b| b.iter(|| Bundle::open(&path).unwrap().module_count()));
}

/// Requiring every module of `names` in a new state: from `bundle`, and through
/// `package.path` from `source_path` and from `bytecode_path` (loose bytecode files).
fn bench_require_all(c: &mut Criterion, group_name: &str, bundle: &Bundle, names: &[String], paths: [&str; 2]) {
    let list = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(",");
    // pcall: a few modules need C libraries or a platform; every side skips the same ones.
    let require_all =
        format!("local n = 0 for _, m in ipairs({{{list}}}) do if pcall(require, m) then n = n + 1 end end return n");
    // Modules the bundle leaves to the host (externals) come from the sources' path; bundled
    // ones from the bundle, whose preload entries are searched first.
    let from_bundle = || {
        let lua = Lua::new();
        lua.load(format!("package.path = '{}'", paths[0])).exec().unwrap();
        bundle.install(&lua).unwrap();
        lua.load(&require_all).eval::<i64>().unwrap()
    };
    let from_path = |path: &str| {
        let lua = Lua::new();
        lua.load(format!("package.path = '{path}'")).exec().unwrap();
        lua.load(&require_all).eval::<i64>().unwrap()
    };
    let loaded = from_bundle();
    assert_eq!(loaded, from_path(paths[0]), "{group_name}: the bundle loads what the sources load");
    assert_eq!(loaded, from_path(paths[1]), "{group_name}: the bytecode files load what the sources load");
    let mut group = c.benchmark_group(group_name);
    group.bench_function("bundle", |b| b.iter(from_bundle));
    group.bench_function("sources", |b| b.iter(|| from_path(paths[0])));
    group.bench_function("loose_bytecode", |b| b.iter(|| from_path(paths[1])));
    group.finish();
}

/// A copy of every `.lua` file under `root` compiled to bytecode (debug info kept) under
/// `into`, at the same relative paths.
fn loose_bytecode(root: &Path, into: &Path) {
    let lua = Lua::new();
    for entry in walkdir::WalkDir::new(root).into_iter().filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "lua") || !path.is_file() {
            continue;
        }
        let text = std::fs::read(path).unwrap();
        let Ok(function) = lua.load(&text[..]).set_name(format!("@{}", path.display())).into_function() else {
            continue;
        };
        let target = into.join(path.strip_prefix(root).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, function.dump(false)).unwrap();
    }
}

fn bench_require_all_generated(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    support::generate_sized_project(&tree, 1_000, 5_500);
    let bundle = bundle_of(dir.path(), |b| {
        b.root(tree.as_path());
    });
    let names: Vec<String> = bundle.index().unwrap().modules.iter().map(|m| m.name.clone()).collect();
    let loose = dir.path().join("loose");
    loose_bytecode(&tree, &loose);
    let sources = format!("{}/?.lua", tree.display());
    let bytecode = format!("{}/?.lua", loose.display());
    bench_require_all(c, "require_all_1000", &bundle, &names, [&sources, &bytecode]);
}

fn bench_debian(c: &mut Criterion) {
    for (name, top, externals) in [("luarocks", "luarocks", LUAROCKS_EXTERNALS), ("penlight", "pl", PENLIGHT_EXTERNALS)]
    {
        if !Path::new(LUAROCKS).join(top).is_dir() {
            eprintln!("{name} benchmark skipped: apt-get install luarocks lua-penlight");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let bundle = bundle_of(dir.path(), |b| {
            b.root(format!("{top}={LUAROCKS}/{top}").as_str());
            for external in externals {
                b.external(*external);
            }
        });
        let names: Vec<String> = bundle.index().unwrap().modules.iter().map(|m| m.name.clone()).collect();
        let loose = dir.path().join("loose");
        loose_bytecode(&Path::new(LUAROCKS).join(top), &loose.join(top));
        let sources = format!("{LUAROCKS}/?.lua;{LUAROCKS}/?/init.lua");
        let bytecode = format!("{}/?.lua;{}/?/init.lua;{LUAROCKS}/?.lua", loose.display(), loose.display());
        bench_require_all(c, name, &bundle, &names, [&sources, &bytecode]);
    }
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

/// Opening a bundle file, installing it into a new state and the first `require` of one
/// module (`gen.m00000`, which requires nothing) for bundles of 1, 10,000 and 100,000
/// modules: the work does not depend on the bundle's size, so neither should the time.
fn bench_open_install_require(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_install_require");
    group.sample_size(20);
    for count in [1usize, 10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        support::generate_project(dir.path(), count);
        let root = dir.path().to_path_buf();
        bundle_of(dir.path(), |b| {
            b.root(root);
        });
        let path = dir.path().join("bench.bundle");
        let (_, peak) = peak_rust_heap(|| {
            let bundle = Bundle::open(&path).unwrap();
            let lua = Lua::new();
            bundle.install(&lua).unwrap();
            lua.load("return require('gen.m00000').id").eval::<i64>().unwrap();
            (bundle, lua)
        });
        let size = std::fs::metadata(&path).unwrap().len();
        let kib = |bytes: usize| bytes as f64 / 1024.0;
        eprintln!(
            "open_install_require/{count}: bundle {:.1} KiB, peak Rust heap {:.1} KiB",
            kib(size as usize),
            kib(peak)
        );
        group.bench_with_input(BenchmarkId::from_parameter(count), &path, |b, path| {
            b.iter(|| {
                let bundle = Bundle::open(path).unwrap();
                let lua = Lua::new();
                bundle.install(&lua).unwrap();
                lua.load("return require('gen.m00000').id").eval::<i64>().unwrap()
            })
        });
    }
    group.finish();
}

/// What each corpus of the compression benchmark is built from: roots and externals, with
/// the generated trees written under `dir`.
fn compression_corpora(dir: &Path) -> Vec<(&'static str, Vec<String>, &'static [&'static str])> {
    let mut corpora = Vec::new();
    if Path::new(LUAROCKS).join("luarocks").is_dir() && Path::new(LUAROCKS).join("pl").is_dir() {
        corpora.push(("luarocks", vec![format!("luarocks={LUAROCKS}/luarocks")], LUAROCKS_EXTERNALS));
        corpora.push(("penlight", vec![format!("pl={LUAROCKS}/pl")], PENLIGHT_EXTERNALS));
    } else {
        eprintln!("compression/luarocks and compression/penlight skipped: apt-get install luarocks lua-penlight");
    }
    let (large, small) = (dir.join("gen1000"), dir.join("gen10000"));
    support::generate_sized_project(&large, 1_000, 5_500);
    support::generate_project(&small, 10_000);
    corpora.push(("gen1000x5.5k", vec![large.display().to_string()], &[]));
    corpora.push(("gen10000x330", vec![small.display().to_string()], &[]));
    corpora
}

/// Size and first-require cost with and without `--compress zstd`, side by side.
fn bench_compression(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for (name, roots, externals) in compression_corpora(dir.path()) {
        let mut paths = Vec::new();
        for (storage, compression) in [("none", Compression::None), ("zstd", Compression::Zstd)] {
            let path = dir.path().join(format!("{name}.{storage}.bundle"));
            let mut builder = luabundle::Builder::new();
            builder.output(&path).no_cache(true).include("*").compress(compression);
            for root in &roots {
                builder.root(root.as_str());
            }
            for external in externals {
                builder.external(*external);
            }
            let started = std::time::Instant::now();
            builder.try_build().unwrap();
            let built = started.elapsed();
            let bundle = Bundle::open(&path).unwrap();
            let blobs = bundle.header().blobs.len;
            eprintln!(
                "compression/{name}/{storage}: bundle {} bytes, modules {} bytes, cold build {:.2} s",
                bundle.header().file_len,
                blobs,
                built.as_secs_f64()
            );
            paths.push((storage, path));
        }
        let bundle = Bundle::open(&paths[0].1).unwrap();
        let index = bundle.index().unwrap();
        let largest = index.modules.iter().max_by_key(|m| m.blob.len).unwrap().name.clone();
        let names: Vec<String> = index.modules.iter().map(|m| format!("{:?}", m.name)).collect();
        // pcall: a few modules need C libraries the corpus leaves to the host.
        let require_all = format!(
            "local n = 0 for _, m in ipairs({{{}}}) do if pcall(require, m) then n = n + 1 end end return n",
            names.join(",")
        );
        let require_one = format!("return select('#', pcall(require, {largest:?}))");
        let mut group = c.benchmark_group(format!("compression/{name}"));
        group.sample_size(if names.len() > 5_000 { 10 } else { 30 });
        for (storage, path) in &paths {
            let first = |code: &str| {
                let bundle = Bundle::open(path).unwrap();
                let lua = Lua::new();
                bundle.install(&lua).unwrap();
                lua.load(code).eval::<i64>().unwrap()
            };
            group.bench_function(format!("require_one/{storage}"), |b| b.iter(|| first(&require_one)));
            group.bench_function(format!("require_all/{storage}"), |b| b.iter(|| first(&require_all)));
        }
        group.finish();
    }
}

/// Prints the Lua heap after install (nothing loaded) and after requiring every module.
fn report_heap(bundle: &Bundle) {
    let lua = Lua::new();
    let before_install = lua.used_memory();
    let installed = bundle.install(&lua).unwrap();
    let after_install = lua.used_memory();
    let names = installed.modules().unwrap().to_vec();
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

/// Debian's Lua 5.4 module directory.
const LUAROCKS: &str = "/usr/share/lua/5.4";

/// What LuaRocks and Penlight leave to the host (C modules, optional libraries).
const LUAROCKS_EXTERNALS: &[&str] =
    &["ltn12", "zlib", "socket*", "ssl*", "lfs", "luarocks.core.hardcoded", "bz2", "md5", "mimetypes", "posix"];
const PENLIGHT_EXTERNALS: &[&str] = &["luabalanced", "sip"];

criterion_group!(
    benches,
    bench_open,
    bench_install,
    bench_state_install_require,
    bench_open_install_require,
    bench_require_all_generated,
    bench_debian,
    bench_compression
);
criterion_main!(benches);
