//! Criterion benchmarks of the whole path: building a generated project, installing its
//! bundle into a fresh Lua state (which must not grow with the module count), and the first
//! `require` of one module out of many.
//!
//! Run with `cargo bench --bench pipeline`; `-- build` / `-- install` / `-- require` selects
//! a group.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use luabundle_runtime::Bundle;
use mlua::Lua;

/// Writes a project of `count` modules under `root`: `gen/mNNNNN.lua`, each requiring up to
/// two lower-numbered modules eagerly and one deferred, with some real code in its body.
fn generate_project(root: &Path, count: usize) {
    let dir = root.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        let mut text = String::new();
        for dep in [i / 2, i / 3].into_iter().filter(|&d| d < i) {
            text.push_str(&format!("local d{dep} = require(\"gen.m{dep:05}\")\n"));
        }
        text.push_str(&format!(
            "local M = {{ id = {i} }}\n\
             function M.work(n)\n  local t = {{}}\n  for k = 1, n do t[#t + 1] = k * {i} % 7 end\n  return #t\nend\n\
             function M.later()\n  return require(\"gen.m{:05}\").id\nend\n\
             function M.describe()\n  return string.format(\"module %d of %d\", M.id, {count})\nend\n\
             return M\n",
            (i + 1) % count
        ));
        std::fs::write(dir.join(format!("m{i:05}.lua")), text).unwrap();
    }
}

fn build_bundle(root: &Path, output: &Path) -> Vec<u8> {
    luabundle::Builder::new().root(root).output(output).try_build().unwrap();
    std::fs::read(output).unwrap()
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for count in [100, 1_000] {
        let dir = tempfile::tempdir().unwrap();
        generate_project(dir.path(), count);
        let output = dir.path().join("out.bundle");
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            b.iter(|| {
                let _ = std::fs::remove_file(&output);
                build_bundle(dir.path(), &output)
            })
        });
    }
    group.finish();
}

fn bench_install(c: &mut Criterion) {
    let mut group = c.benchmark_group("install");
    for count in [10, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        generate_project(dir.path(), count);
        let bundle = Bundle::from_bytes(build_bundle(dir.path(), &dir.path().join("out.bundle"))).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(count), &bundle, |b, bundle| {
            b.iter_batched(Lua::new, |lua| bundle.install(&lua).map(|()| lua).unwrap(), BatchSize::SmallInput)
        });
    }
    group.finish();
}

fn bench_first_require(c: &mut Criterion) {
    let mut group = c.benchmark_group("require");
    let count = 10_000;
    let dir = tempfile::tempdir().unwrap();
    generate_project(dir.path(), count);
    let bundle = Bundle::from_bytes(build_bundle(dir.path(), &dir.path().join("out.bundle"))).unwrap();
    group.bench_function("one_of_10000", |b| {
        b.iter_batched(
            || {
                let lua = Lua::new();
                bundle.install(&lua).unwrap();
                lua
            },
            |lua| lua.load("return require('gen.m00001').id").eval::<i64>().map(|_| lua).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_build, bench_install, bench_first_require);
criterion_main!(benches);
