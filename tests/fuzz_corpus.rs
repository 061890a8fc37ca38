//! The fuzz corpora (`fuzz/corpus/<target>/`), replayed as ordinary tests on stable Rust.

#[path = "fuzz_support.rs"]
mod support;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        run(&data);
        count += 1;
    }
    count
}

#[test]
fn the_open_bundle_corpus_replays_cleanly() {
    assert!(replay("open_bundle", support::open_bundle) > 0);
    // The committed bundles of other flavours also seed the fuzzer.
    let bundles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/foreign_bundles");
    for entry in std::fs::read_dir(bundles).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "bundle") {
            support::open_bundle(&std::fs::read(path).unwrap());
        }
    }
}

#[test]
fn the_source_front_end_corpus_replays_cleanly() {
    assert!(replay("source_front_end", support::source_front_end) > 0);
}

#[test]
fn the_config_file_corpus_replays_cleanly() {
    assert!(replay("config_file", support::config_file) > 0);
}

#[test]
fn the_cache_files_corpus_replays_cleanly() {
    assert!(replay("cache_files", support::cache_files) > 0);
}

/// Every fixture's Lua file, which also seeds the fuzzer (`cargo fuzz run source_front_end
/// corpus/source_front_end ../fixtures`).
#[test]
fn every_fixture_passes_the_source_front_end() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let files: Vec<_> = walkdir::WalkDir::new(fixtures)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "lua"))
        .collect();
    for file in &files {
        support::source_front_end(&std::fs::read(file.path()).unwrap());
    }
    assert!(files.len() > 40);
}
