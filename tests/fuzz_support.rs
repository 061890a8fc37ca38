// The bodies of the fuzz targets, shared with `tests/fuzz_corpus.rs`, which replays the
// corpora under `fuzz/corpus/` as ordinary tests.

/// Opens `data` as a bundle, and as the small valid bundle below with `data` xor-ed over
/// it; every outcome must be a typed error or a bundle whose modules verify or are refused.
#[allow(dead_code)]
pub fn open_bundle(data: &[u8]) {
    check_bundle(data.to_vec());
    let mut mutated = valid_bundle();
    for (i, b) in data.iter().enumerate() {
        let at = i % mutated.len();
        mutated[at] ^= b;
    }
    check_bundle(mutated);
}

fn check_bundle(bytes: Vec<u8>) {
    if let Ok(bundle) = luabundle_runtime::Bundle::from_bytes(bytes) {
        // Every lazy path: lookups, lists, each record and blob, then the whole index.
        for name in ["a", "b", "c", ""] {
            let _ = bundle.position(name);
        }
        let _ = (bundle.entry().map(drop), bundle.externals().map(drop), bundle.profiles().map(drop));
        let _ = bundle.groups().map(drop);
        for i in 0..bundle.module_count().min(1 << 12) {
            let _ = bundle.record(i);
            let _ = bundle.verified_blob(i);
            let _ = bundle.verified_source(i);
        }
        let _ = bundle.verify_all();
    }
}

fn valid_bundle() -> Vec<u8> {
    use luabundle_runtime::format::{self, BlobKind, BundleContents, DepKind, Dependency, ModuleInput};
    let module = |name: &str, bytes: &[u8], deps| ModuleInput {
        name: name.into(),
        chunk_name: format!("@{name}.lua"),
        path: format!("{name}.lua"),
        kind: BlobKind::Source,
        bytes: bytes.to_vec(),
        encoding: format::Encoding::Plain,
        source: Some(bytes.to_vec()),
        deps,
    };
    format::encode(&BundleContents {
        target: luabundle_runtime::target::linked().clone(),
        modules: vec![
            module("a", b"return require('b')", vec![Dependency { module: 1, kind: DepKind::Eager, optional: false }]),
            module("b", b"return 1", vec![]),
        ],
        entry: Some(0),
        externals: vec![],
        profiles: vec![],
        groups: vec![],
    })
    .expect("valid contents")
}

/// Runs the build tool's front end on `data` as the text of one source file; the quick
/// require scan must find what the syntax tree does wherever it answers.
#[allow(dead_code)]
pub fn source_front_end(data: &[u8]) {
    lexer_reads_every_byte_once(data);
    // Any bytes: Lua accepts every byte in strings and comments.
    let file = luabundle::input::source::SourceFile::from_bytes(
        0,
        "fuzz.lua".into(),
        "fuzz.lua".into(),
        luabundle::input::source::normalise_line_break_bytes(data.to_vec()),
    );
    // full_moon recurses deeply: run on a thread with the stack the build tool gives it.
    std::thread::Builder::new()
        .stack_size(luabundle::internals::PARSE_STACK_SIZE)
        .spawn(move || {
            if let Ok(ast) = luabundle::internals::parse(&file) {
                let from_tree = luabundle::analysis::requires::find_requires(&ast, file.bytes());
                // Where the quick scan answers, it must agree with the syntax tree.
                let prepared = luabundle::input::source::prepare_bytes(file.bytes());
                if let Some(quick) = luabundle::internals::quick_requires(&prepared) {
                    assert_eq!(quick, from_tree, "quick scan and syntax tree disagree");
                }
            }
            let _ = luabundle::internals::process(&file, false);
        })
        .expect("thread")
        .join()
        .expect("no panic");
}

/// The lexer's tokens of any bytes are in order, non-empty, apart and inside the text, and the
/// nesting guard's places are tokens.
fn lexer_reads_every_byte_once(data: &[u8]) {
    let tokens: Vec<luabundle::internals::Token> = luabundle::internals::tokens(data).collect();
    let mut last = 0;
    for token in &tokens {
        assert!(token.start >= last && token.start < token.end && token.end <= data.len(), "{token:?} after {last}");
        last = token.end;
    }
    let text = luabundle::input::source::utf8_view(data);
    for place in [luabundle::internals::too_deep(&text), luabundle::internals::deepest(&text)].into_iter().flatten() {
        assert!(luabundle::internals::tokens(text.as_bytes()).any(|t| t.range() == place), "{place:?} is no token");
    }
}

/// Arbitrary bytes as `luabundle.toml`: a clear error or options applied, never a panic.
#[allow(dead_code)]
pub fn config_file(data: &[u8]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("luabundle.toml");
    std::fs::write(&path, data).expect("written");
    if let Ok(config) = luabundle::config::ConfigFile::load(&path) {
        let mut builder = luabundle::Builder::new();
        builder.config(&config.resolved());
        // (No analysis: a fuzzed file may name `/` as a root.)
        let _ = builder.watched_paths();
    }
}

/// Arbitrary bytes as one of the cache's own files (the first byte picks which: the stat
/// table, an output record, or a pack): each is read as damaged or intact, never trusted
/// blindly, never a panic.
#[allow(dead_code)]
pub fn cache_files(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let cache = luabundle::cache::Cache::new(dir.path().join("cache"));
    let layout = cache.layout_dir();
    std::fs::create_dir_all(layout.join("outputs")).expect("cache directories");
    match which % 3 {
        0 => {
            std::fs::write(cache.file_table_path(), bytes).expect("written");
            let table = luabundle::cache::file_table::FileTable::load(&cache.file_table_path());
            let _ = table.same_as(&table);
        }
        1 => {
            let output = dir.path().join("app.bundle");
            std::fs::write(&output, bytes).expect("written");
            let record = luabundle::cache::bundle_record::BundleRecord::path(&layout, &output);
            std::fs::write(&record, bytes).expect("written");
            if let Some(record) = luabundle::cache::bundle_record::BundleRecord::load(&record) {
                let _ = record.matches_file(&output);
            }
        }
        _ => {
            std::fs::write(layout.join("00000000000000000000000000000000.pack"), bytes).expect("written");
            let session = cache.session();
            for seed in 0..4u8 {
                let key = [seed; 32];
                let _ = session.load(&key);
                let _ = session.load_sites(&key);
                let _ = session.load_bytecode(&key);
            }
        }
    }
}
