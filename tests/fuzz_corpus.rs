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
}

#[test]
fn the_source_front_end_corpus_replays_cleanly() {
    assert!(replay("source_front_end", support::source_front_end) > 0);
}
