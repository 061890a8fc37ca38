//! Criterion benchmarks of the build: a generated project of 100 and 1,000 modules, built
//! from scratch (no cache). The runtime's benchmarks are in `runtime.rs`.
//!
//! Run with `cargo bench --bench pipeline`.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

#[path = "support.rs"]
mod support;
use support::generate_project;

fn build_bundle(root: &Path, output: &Path) -> Vec<u8> {
    luabundle::Builder::new().root(root).output(output).no_cache(true).try_build().unwrap();
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

criterion_group!(benches, bench_build);
criterion_main!(benches);
