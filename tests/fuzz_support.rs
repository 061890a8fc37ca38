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
        for i in 0..bundle.index().modules.len() {
            let _ = bundle.verified_blob(i);
            let _ = bundle.verified_source(i);
        }
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
    // Any bytes: Lua accepts every byte in strings and comments.
    let file = luabundle::source::SourceFile::from_bytes(
        0,
        "fuzz.lua".into(),
        "fuzz.lua".into(),
        luabundle::source::normalise_line_break_bytes(data.to_vec()),
    );
    // full_moon recurses deeply: run on a thread with the stack the build tool gives it.
    std::thread::Builder::new()
        .stack_size(luabundle::parse::PARSE_STACK_SIZE)
        .spawn(move || {
            if let Ok(ast) = luabundle::parse::parse(&file) {
                let from_tree = luabundle::requires::find_requires(&ast, file.bytes());
                // Where the quick scan answers, it must agree with the syntax tree.
                let prepared = luabundle::source::prepare_bytes(file.bytes());
                if let Some(quick) = luabundle::scan::quick_requires(&prepared) {
                    assert_eq!(quick, from_tree, "quick scan and syntax tree disagree");
                }
            }
            let _ = luabundle::front_end::process(&file, false);
        })
        .expect("thread")
        .join()
        .expect("no panic");
}
