//! The compile cache: rebuilds parse and compile only what changed, and a damaged cache is
//! never trusted.

use std::path::Path;

use luabundle::Builder;

use crate::support::luabundle;

/// A project of `count` modules, each requiring the previous one.
fn project(dir: &Path, count: usize) {
    let src = dir.join("src/gen");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..count {
        let body = if i == 0 {
            "return { n = 0 }".to_string()
        } else {
            format!("local prev = require('gen.m{}')\nreturn {{ n = prev.n + 1 }}", i - 1)
        };
        std::fs::write(src.join(format!("m{i}.lua")), body).unwrap();
    }
}

fn builder(dir: &Path) -> Builder {
    let mut builder = Builder::new();
    builder.root(dir.join("src")).output(dir.join("out.bundle")).cache_dir(dir.join("cache"));
    builder
}

#[test]
fn a_rebuild_parses_and_compiles_only_the_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 40);
    let cold = builder(dir.path()).try_build().unwrap();
    assert_eq!((cold.parsed, cold.compiled, cold.written), (40, 40, true));

    let unchanged = builder(dir.path()).try_build().unwrap();
    assert_eq!((unchanged.parsed, unchanged.compiled, unchanged.written), (0, 0, false));

    std::fs::write(dir.path().join("src/gen/m7.lua"), "local prev = require('gen.m6')\nreturn { n = prev.n + 100 }")
        .unwrap();
    let one = builder(dir.path()).try_build().unwrap();
    assert_eq!((one.parsed, one.compiled, one.written), (1, 1, true));

    // The cached build is the same bundle a build without cache makes.
    let cached_bytes = std::fs::read(dir.path().join("out.bundle")).unwrap();
    let mut fresh = builder(dir.path());
    fresh.no_cache(true).output(dir.path().join("fresh.bundle"));
    let uncached = fresh.try_build().unwrap();
    assert_eq!(uncached.parsed, 40);
    assert_eq!(std::fs::read(dir.path().join("fresh.bundle")).unwrap(), cached_bytes);
}

#[test]
fn damaged_cache_entries_are_recompiled_not_used() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 5);
    builder(dir.path()).try_build().unwrap();
    let good = std::fs::read(dir.path().join("out.bundle")).unwrap();
    let entries: Vec<_> = walkdir::WalkDir::new(dir.path().join("cache"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() != "size")
        .collect();
    assert_eq!(entries.len(), 5);
    // Flip a byte of one entry's bytecode and cut another short.
    let mut flipped = std::fs::read(entries[0].path()).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    std::fs::write(entries[0].path(), flipped).unwrap();
    let cut = std::fs::read(entries[1].path()).unwrap();
    std::fs::write(entries[1].path(), &cut[..cut.len() / 2]).unwrap();

    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!(rebuilt.compiled, 2);
    assert!(!rebuilt.written, "the rebuilt bundle is byte-identical");
    assert_eq!(std::fs::read(dir.path().join("out.bundle")).unwrap(), good);
}

#[test]
fn cache_prune_keeps_the_cache_under_a_size() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 30);
    builder(dir.path()).try_build().unwrap();
    luabundle()
        .args(["cache", "prune", "--max-size", "2K", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .assert()
        .code(0)
        .stderr(predicates::str::contains("entries (").and(predicates::str::contains("left in")));
    let left: u64 = walkdir::WalkDir::new(dir.path().join("cache"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() != "size")
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(left <= 2048, "{left} bytes left");
    // Pruned entries are rebuilt on demand.
    let again = builder(dir.path()).try_build().unwrap();
    assert!(again.compiled > 0 && !again.written);
}

use predicates::prelude::PredicateBooleanExt;
