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
    // The unchanged modules went from the old bundle to the new one without being read.
    assert_eq!(one.copied, 39);

    // The cached build is the same bundle a build without cache makes.
    let cached_bytes = std::fs::read(dir.path().join("out.bundle")).unwrap();
    let mut fresh = builder(dir.path());
    fresh.no_cache(true).output(dir.path().join("fresh.bundle"));
    let uncached = fresh.try_build().unwrap();
    assert_eq!(uncached.parsed, 40);
    assert_eq!(std::fs::read(dir.path().join("fresh.bundle")).unwrap(), cached_bytes);
}

/// The bundle a build without cache makes of the same tree.
fn uncached_bundle(dir: &Path) -> Vec<u8> {
    let mut fresh = builder(dir);
    fresh.no_cache(true).output(dir.join("fresh.bundle"));
    fresh.try_build().unwrap();
    std::fs::read(dir.join("fresh.bundle")).unwrap()
}

#[test]
fn modules_are_copied_from_the_previous_bundle_only_while_it_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 30);
    let output = dir.path().join("out.bundle");
    builder(dir.path()).try_build().unwrap();
    let edit = |i: usize, n: usize| {
        let prev = format!("local prev = require('gen.m{}')\nreturn {{ n = prev.n + {n} }}", i - 1);
        std::fs::write(dir.path().join(format!("src/gen/m{i}.lua")), prev).unwrap();
    };
    edit(7, 100);
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!((rebuilt.compiled, rebuilt.copied), (1, 29));
    assert_eq!(std::fs::read(&output).unwrap(), uncached_bundle(dir.path()));
    let lua = mlua::Lua::new();
    let bundle = luabundle_runtime::Bundle::open(&output).unwrap();
    bundle.verify_all().unwrap();
    bundle.install(&lua).unwrap();
    assert_eq!(lua.load("return require('gen.m29').n").eval::<i64>().unwrap(), 128);

    // A byte changed in a module of the bundle: its metadata no longer matches the record,
    // so nothing is copied from it and the damage does not reach the new bundle.
    let mut damaged = std::fs::read(&output).unwrap();
    let at = damaged.len() - 200;
    damaged[at] ^= 0xff;
    std::fs::write(&output, &damaged).unwrap();
    edit(8, 1000);
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!((rebuilt.compiled, rebuilt.copied), (1, 0));
    assert_eq!(std::fs::read(&output).unwrap(), uncached_bundle(dir.path()));
    luabundle_runtime::Bundle::open(&output).unwrap().verify_all().unwrap();

    // Another bundle put at the output is not the one recorded either.
    builder(dir.path()).output(dir.path().join("other.bundle")).try_build().unwrap();
    std::fs::rename(dir.path().join("other.bundle"), &output).unwrap();
    edit(9, 5);
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!((rebuilt.compiled, rebuilt.copied), (1, 0));
    assert_eq!(std::fs::read(&output).unwrap(), uncached_bundle(dir.path()));

    // From then on, copying resumes.
    edit(10, 6);
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!((rebuilt.compiled, rebuilt.copied), (1, 29));
    assert_eq!(std::fs::read(&output).unwrap(), uncached_bundle(dir.path()));
}

/// Sets the modification time of every file under `dir` to an hour ago.
fn age_files(dir: &Path) {
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()) {
        std::fs::File::options().write(true).open(entry.path()).unwrap().set_modified(hour_ago).unwrap();
    }
}

#[test]
fn unchanged_files_are_not_read_again_and_any_edit_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 20);
    age_files(&dir.path().join("src"));
    builder(dir.path()).try_build().unwrap();
    // The second build trusts the recorded metadata: no source file is read.
    let analysis = builder(dir.path()).analyse().unwrap();
    assert!(analysis.discovered.files.iter().all(|f| !f.is_read()), "unchanged files were read");
    let unchanged = builder(dir.path()).try_build().unwrap();
    assert_eq!((unchanged.compiled, unchanged.written), (0, false));

    // An edit of the same length, even one that keeps the old modification time, changes the
    // change time: the file is read and compiled again.
    let edited = dir.path().join("src/gen/m3.lua");
    let text = std::fs::read_to_string(&edited).unwrap().replace("+ 1", "+ 7");
    std::fs::write(&edited, &text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&edited)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!((rebuilt.compiled, rebuilt.written), (1, true));
    let lua = mlua::Lua::new();
    luabundle_runtime::Bundle::open(dir.path().join("out.bundle")).unwrap().install(&lua).unwrap();
    assert_eq!(lua.load("return require('gen.m19').n").eval::<i64>().unwrap(), 25);

    // A warning still shows the source line of a file the build did not read.
    std::fs::write(
        dir.path().join("src/gen/m19.lua"),
        "local prev = require('gen.m18')\nlocal ok = pcall(require, 'nowhere')\nreturn { n = prev.n + 1 }",
    )
    .unwrap();
    age_files(&dir.path().join("src"));
    builder(dir.path()).try_build().unwrap();
    let analysis = builder(dir.path()).analyse().unwrap();
    let m19 = analysis.discovered.files.iter().find(|f| f.display_path.ends_with("m19.lua")).unwrap();
    assert!(!m19.is_read(), "vouched for by the recorded metadata");
    let warnings = analysis.warnings().render();
    assert!(warnings.contains("local ok = pcall(require, 'nowhere')"), "{warnings}");
}

fn packs(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir.join("cache"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn damaged_cache_entries_are_recompiled_not_used() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 5);
    builder(dir.path()).try_build().unwrap();
    let good = std::fs::read(dir.path().join("out.bundle")).unwrap();
    let written = packs(dir.path());
    assert_eq!(written.len(), 1, "one build writes one pack");

    // A flipped byte in the last entry (just before the table of 44-byte rows and the
    // 44-byte trailer): that file alone is compiled again.
    let mut bytes = std::fs::read(&written[0]).unwrap();
    let last = bytes.len() - 44 - 5 * 44 - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&written[0], bytes).unwrap();
    // The bundle is up to date: no bytecode is read, nothing is compiled or written.
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!((rebuilt.compiled, rebuilt.written), (0, false));
    // Without the bundle, the bytecode is needed: the damaged entry alone is compiled again.
    std::fs::remove_file(dir.path().join("out.bundle")).unwrap();
    let rebuilt = builder(dir.path()).try_build().unwrap();
    // Its require sites were intact: it is compiled, not parsed again.
    assert_eq!((rebuilt.parsed, rebuilt.compiled), (0, 1));
    assert_eq!(std::fs::read(dir.path().join("out.bundle")).unwrap(), good);

    // Every pack cut inside its header: everything is compiled again, the bundle the same.
    for pack in packs(dir.path()) {
        let bytes = std::fs::read(&pack).unwrap();
        std::fs::write(&pack, &bytes[..30]).unwrap();
    }
    let rebuilt = builder(dir.path()).try_build().unwrap();
    assert_eq!(rebuilt.compiled, 5);
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
    let left: u64 = packs(dir.path()).iter().map(|p| p.metadata().unwrap().len()).sum();
    assert!(left <= 2048, "{left} bytes left");
    // Pruned entries are rebuilt on demand.
    let again = builder(dir.path()).try_build().unwrap();
    assert!(again.compiled > 0 && !again.written);
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn concurrent_builds_can_share_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 30);
    let outputs: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let dir = dir.path();
                scope.spawn(move || {
                    let output = dir.join(format!("out{i}.bundle"));
                    let mut b = builder(dir);
                    b.output(&output).jobs(1);
                    b.try_build().unwrap();
                    std::fs::read(output).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    // Whatever the packs hold now is intact and complete.
    let again = builder(dir.path()).try_build().unwrap();
    assert_eq!(again.compiled, 0);
}
