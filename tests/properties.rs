//! Properties over generated inputs: the format round-trips whatever it is given, builds are
//! byte-identical whatever the thread count or root order.

use std::collections::BTreeSet;

use luabundle_runtime::format::{self, BlobKind, BundleContents, DepKind, Dependency, ModuleInput};
use luabundle_runtime::Bundle;
use proptest::prelude::*;

/// Bundle contents, and per module the bytes it loads (some modules are stored compressed).
fn contents() -> impl Strategy<Value = (BundleContents, Vec<Vec<u8>>)> {
    let names = proptest::collection::btree_set("[a-z]{1,6}(\\.[a-z]{1,4}){0,2}", 1..12);
    names
        .prop_flat_map(|names: BTreeSet<String>| {
            let count = names.len();
            let modules = proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..200),
                    // Repeated, so that compression has something to find; some compressed.
                    (1..20usize, any::<bool>()),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
                    proptest::collection::vec((0..count, any::<bool>(), any::<bool>()), 0..4),
                ),
                count,
            );
            (Just(names), modules, proptest::option::of(0..count))
        })
        .prop_map(|(names, modules, entry)| {
            let loaded: Vec<Vec<u8>> = modules.iter().map(|(bytes, (times, _), _, _)| bytes.repeat(*times)).collect();
            let contents = BundleContents {
                target: luabundle_runtime::target::linked().clone(),
                modules: names
                    .into_iter()
                    .zip(modules)
                    .map(|(name, (bytes, (times, compress), source, deps))| {
                        let loaded = bytes.repeat(times);
                        let (bytes, encoding) = match compress {
                            true => format::compress(loaded, 3).unwrap(),
                            false => (loaded, format::Encoding::Plain),
                        };
                        ModuleInput {
                            chunk_name: format!("@{name}.lua"),
                            path: format!("{name}.lua"),
                            name,
                            kind: BlobKind::Bytecode,
                            bytes,
                            encoding,
                            source,
                            deps: deps
                                .into_iter()
                                .map(|(module, eager, optional)| Dependency {
                                    module: module as u32,
                                    kind: if eager { DepKind::Eager } else { DepKind::Deferred },
                                    optional,
                                })
                                .collect(),
                        }
                    })
                    .collect(),
                entry: entry.map(|e| e as u32),
                externals: vec![],
                profiles: vec![],
                groups: vec![],
            };
            (contents, loaded)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_format_round_trips((contents, loaded) in contents()) {
        let bytes = format::encode(&contents).unwrap();
        prop_assert_eq!(&format::encode(&contents).unwrap(), &bytes, "encoding is deterministic");
        let bundle = Bundle::from_bytes(bytes).unwrap();
        prop_assert_eq!(bundle.index().unwrap().entry, contents.entry);
        for (i, module) in contents.modules.iter().enumerate() {
            let record = &bundle.index().unwrap().modules[i];
            prop_assert_eq!(&record.name, &module.name);
            prop_assert_eq!(&record.deps, &module.deps);
            prop_assert_eq!(record.encoding, module.encoding);
            prop_assert_eq!(&*bundle.verified_blob(i).unwrap(), loaded[i].as_slice());
            let source = bundle.verified_source(i).unwrap().map(|s| s.to_vec());
            prop_assert_eq!(source, module.source.clone());
        }
    }

    #[test]
    fn any_single_byte_change_is_caught((contents, _) in contents(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = format::encode(&contents).unwrap();
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        if let Ok(bundle) = Bundle::from_bytes(bytes) {
            prop_assert!(bundle.verify_all().is_err() || (0..bundle.index().unwrap().modules.len()).any(|i| bundle.verified_source(i).is_err()));
        }
    }
}

/// A project of Lua modules `package.mN` whose bodies come from `seed`.
fn project(dir: &std::path::Path, package: &str, seed: u64, count: usize) {
    let mut state = seed;
    for i in 0..count {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let dep = if i > 0 {
            format!("local d = require('{package}.m{}')\n", (state >> 40) as usize % i)
        } else {
            String::new()
        };
        std::fs::write(dir.join(format!("m{i}.lua")), format!("{dep}return {{ n = {} }}\n", state >> 50)).unwrap();
    }
}

fn build(roots: &[&std::path::Path], jobs: usize, output: &std::path::Path) -> Vec<u8> {
    let mut builder = luabundle::Builder::new();
    for root in roots {
        builder.root(*root);
    }
    builder.jobs(jobs).no_cache(true).output(output).try_build().unwrap();
    std::fs::read(output).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn builds_do_not_depend_on_threads_or_root_order(seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        std::fs::create_dir_all(one.join("a")).unwrap();
        std::fs::create_dir_all(two.join("b")).unwrap();
        project(&one.join("a"), "a", seed, 30);
        project(&two.join("b"), "b", seed ^ 0xffff, 30);
        // Module names differ by directory (`a.m0`, `b.m0`), so the roots do not collide.
        let roots_ab = [one.as_path(), two.as_path()];
        let roots_ba = [two.as_path(), one.as_path()];
        let single = build(&roots_ab, 1, &dir.path().join("1.bundle"));
        let parallel = build(&roots_ab, 2, &dir.path().join("2.bundle"));
        let swapped = build(&roots_ba, 2, &dir.path().join("3.bundle"));
        prop_assert_eq!(&single, &parallel);
        prop_assert_eq!(&single, &swapped);
    }
}

/// [`build`] with the compile cache in `cache`.
fn cached_build(root: &std::path::Path, cache: &std::path::Path, output: &std::path::Path) -> Vec<u8> {
    let mut builder = luabundle::Builder::new();
    builder.root(root).cache_dir(cache).output(output).try_build().unwrap();
    std::fs::read(output).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Whatever the cache holds from earlier builds, a cached build is byte for byte the
    /// `--no-cache` build: moving the root, or a module from `m.lua` to `m/init.lua`, changes
    /// the chunk names compiled into the bytecode, and the cache must not hand back the old.
    #[test]
    fn cached_builds_equal_fresh_ones_across_moves(seed in any::<u64>(), moved in proptest::collection::vec(any::<bool>(), 12)) {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let first = dir.path().join("first");
        std::fs::create_dir_all(first.join("a")).unwrap();
        project(&first.join("a"), "a", seed, 12);
        let before = cached_build(&first, &cache, &dir.path().join("before.bundle"));
        prop_assert_eq!(&before, &build(&[first.as_path()], 2, &dir.path().join("before-fresh.bundle")));
        // The root moves, and some modules become directories with an init.lua.
        let second = dir.path().join("second");
        std::fs::rename(&first, &second).unwrap();
        for (i, _) in moved.iter().enumerate().filter(|(_, m)| **m) {
            let module_dir = second.join("a").join(format!("m{i}"));
            std::fs::create_dir_all(&module_dir).unwrap();
            std::fs::rename(second.join("a").join(format!("m{i}.lua")), module_dir.join("init.lua")).unwrap();
        }
        let after = cached_build(&second, &cache, &dir.path().join("after.bundle"));
        let fresh = build(&[second.as_path()], 2, &dir.path().join("after-fresh.bundle"));
        prop_assert_eq!(&after, &fresh);
        prop_assert_ne!(&after, &before);
    }
}
