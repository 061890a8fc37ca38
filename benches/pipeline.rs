//! Criterion benchmarks of the build, on a generated project of 1,000 modules of about
//! 5.5 KB each (the shape of `benches/compare.sh`'s trees):
//! - `stage/*`: each stage on its own, single-threaded where the stage is per file:
//!   `discover` (walk and read), `parse` (full_moon syntax trees), `require_scan` (the quick
//!   token scan), `requires_from_tree` (require sites from the syntax trees), `compile` (Lua
//!   bytecode), `graph` (resolution, cycles, reachability), `encode` (layout and hashes) and
//!   `write` (the bundle file, atomically);
//! - `build/*`: whole builds through `luabundle::Builder`: cold (no cache), and with the
//!   cache when nothing changed and when one file changed.
//!
//! The runtime's benchmarks are in `runtime.rs`. Run with `cargo bench -p luabundle-benches --bench pipeline`.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use luabundle::analysis::graph;
use luabundle::input::discover::{self, Template, DEFAULT_TEMPLATES};
use luabundle::input::source::SourceFile;

#[path = "support.rs"]
mod support;

const MODULES: usize = 1_000;
const MODULE_BYTES: usize = 5_500;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::generate_sized_project(dir.path(), MODULES, MODULE_BYTES);
    dir
}

fn discovered(root: &Path) -> discover::Discovered {
    let templates = Template::parse_list(DEFAULT_TEMPLATES).unwrap();
    discover::discover(
        &[discover::Root::parse(&root.display().to_string())],
        &[],
        &templates,
        &discover::exclusion_set(&[]).unwrap(),
        None,
        &[],
    )
    .unwrap()
}

fn bench_stages(c: &mut Criterion) {
    let dir = project();
    let root = dir.path().to_path_buf();
    let found = discovered(&root);
    let files: &[SourceFile] = &found.files;
    let mut group = c.benchmark_group("stage");
    group.sample_size(10).measurement_time(Duration::from_secs(10));

    group.bench_function("discover", |b| b.iter(|| discovered(&root).files.len()));
    // full_moon recurses deeply: trees are built on a thread with the build's stack size.
    let on_parse_stack = |work: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .stack_size(luabundle::internals::PARSE_STACK_SIZE)
            .spawn(work)
            .unwrap()
            .join()
            .unwrap()
    };
    group.bench_function("parse", |b| {
        b.iter_custom(|iterations| {
            let files = files.to_vec();
            let (tx, rx) = std::sync::mpsc::channel();
            on_parse_stack(Box::new(move || {
                let started = std::time::Instant::now();
                for _ in 0..iterations {
                    for file in &files {
                        drop(luabundle::internals::parse(file).unwrap());
                    }
                }
                tx.send(started.elapsed()).unwrap();
            }));
            rx.recv().unwrap()
        })
    });
    group.bench_function("requires_from_tree", |b| {
        b.iter_custom(|iterations| {
            let files = files.to_vec();
            let (tx, rx) = std::sync::mpsc::channel();
            on_parse_stack(Box::new(move || {
                let trees: Vec<_> = files.iter().map(|f| luabundle::internals::parse(f).unwrap()).collect();
                let started = std::time::Instant::now();
                for _ in 0..iterations {
                    for (tree, file) in trees.iter().zip(&files) {
                        std::hint::black_box(luabundle::analysis::requires::find_requires(tree, file.bytes()));
                    }
                }
                tx.send(started.elapsed()).unwrap();
                drop(trees);
            }));
            rx.recv().unwrap()
        })
    });
    let prepared: Vec<Vec<u8>> =
        files.iter().map(|f| luabundle::input::source::prepare_bytes(f.bytes()).into_owned()).collect();
    group.bench_function("require_scan", |b| {
        b.iter(|| prepared.iter().map(|t| luabundle::internals::quick_requires(t).unwrap().len()).sum::<usize>())
    });
    group.bench_function("compile", |b| {
        let lua = mlua::Lua::new();
        b.iter(|| {
            files.iter().map(|f| luabundle::internals::compile_file(&lua, f, false).unwrap().len()).sum::<usize>()
        })
    });
    let sites: Vec<_> = prepared.iter().map(|t| luabundle::internals::quick_requires(t).unwrap()).collect();
    group.bench_function("graph", |b| {
        b.iter(|| {
            let (graph, _) =
                graph::build_graph(&found.modules, &sites, files, graph::GraphOptions::default(), &mut |_, _, _| {
                    Err(String::new())
                });
            graph.bundled.len()
        })
    });
    let lua = mlua::Lua::new();
    let bytecode: Vec<Vec<u8>> =
        files.iter().map(|f| luabundle::internals::compile_file(&lua, f, false).unwrap()).collect();
    let contents = luabundle_runtime::format::BundleContents {
        target: luabundle_runtime::target::linked().clone(),
        modules: found
            .modules
            .iter()
            .map(|m| luabundle_runtime::format::ModuleInput {
                name: m.name.clone(),
                chunk_name: files[m.file].chunk_name(),
                path: files[m.file].display_path.clone(),
                kind: luabundle_runtime::format::BlobKind::Bytecode,
                bytes: bytecode[m.file].clone(),
                encoding: luabundle_runtime::format::Encoding::Plain,
                source: None,
                deps: vec![],
            })
            .collect(),
        entry: None,
        externals: vec![],
        profiles: vec![],
        groups: vec![],
    };
    let no_signature = None::<fn(&[u8; 32]) -> [u8; luabundle_runtime::format::SIGNATURE_LEN]>;
    group.bench_function("encode", |b| {
        b.iter(|| luabundle_runtime::format::Layout::new(&contents, no_signature).unwrap().len())
    });
    let layout = luabundle_runtime::format::Layout::new(&contents, no_signature).unwrap();
    let output = dir.path().join("out.bundle");
    group.bench_function("write", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&output);
            },
            |()| luabundle::internals::write_bundle_atomically(&output, &layout, true).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_builds(c: &mut Criterion) {
    let dir = project();
    let output = dir.path().join("out.bundle");
    let cache = dir.path().join("cache");
    let builder = |no_cache: bool| {
        let mut builder = luabundle::Builder::new();
        builder.root(dir.path()).output(&output).cache_dir(&cache).no_cache(no_cache);
        builder
    };
    let mut group = c.benchmark_group("build");
    group.sample_size(10).measurement_time(Duration::from_secs(15));
    group.bench_function("cold_1000", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&output);
            builder(true).try_build().unwrap().bytes
        })
    });
    // Let the files' modification times settle so that unchanged files are not read again.
    builder(false).try_build().unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    builder(false).try_build().unwrap();
    group.bench_function("no_change_1000", |b| b.iter(|| builder(false).try_build().unwrap().written));
    let edited = dir.path().join("gen/m00500.lua");
    let original = std::fs::read_to_string(&edited).unwrap();
    let mut edits = 0u64;
    group.bench_function("one_file_changed_1000", |b| {
        b.iter(|| {
            // A new text each time, so the file is compiled, not found in the cache.
            edits += 1;
            std::fs::write(&edited, original.replace("id = 500", &format!("id = 500, edit = {edits}"))).unwrap();
            builder(false).try_build().unwrap().compiled
        })
    });
    group.finish();
}

criterion_group!(benches, bench_stages, bench_builds);
criterion_main!(benches);
