//! What build systems and packagers rely on: `--depfile` (read by a real ninja), `extract`
//! giving the sources back, and bundles that do not depend on where the sources are.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{fixture, luabundle, present_or_skip};

/// A copy of `from` under `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().map(Result::unwrap) {
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `root`, relative to it, sorted.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(root).unwrap().to_path_buf())
        .collect();
    files.sort();
    files
}

#[test]
fn the_depfile_names_the_bundle_and_every_file_read() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("app"), dir.path());
    std::fs::write(dir.path().join("luabundle.toml"), "roots = [\"src\"]\nentry = \"app.main\"\n").unwrap();
    luabundle()
        .args(["build", "-q", "--no-cache", "-o", "app.bundle", "--depfile", "app.d"])
        .current_dir(dir.path())
        .assert()
        .success();
    let depfile = std::fs::read_to_string(dir.path().join("app.d")).unwrap();
    let (rule, phony) = depfile.split_once("\n\n").expect("the rule, then one empty rule per input");
    let mut lines = rule.lines();
    assert_eq!(lines.next(), Some("app.bundle: \\"));
    let inputs: Vec<&str> = lines.map(|l| l.trim().trim_end_matches(" \\")).collect();
    // Every source file under the root (bundled or not) and the options file.
    let mut expected: Vec<String> =
        files_under(&dir.path().join("src")).iter().map(|f| format!("src/{}", f.display())).collect();
    expected.push("luabundle.toml".into());
    let mut found: Vec<String> = inputs
        .iter()
        .map(|i| Path::new(i).strip_prefix(dir.path()).unwrap_or(Path::new(i)).display().to_string())
        .collect();
    expected.sort();
    found.sort();
    assert_eq!(found, expected);
    assert_eq!(phony.lines().filter(|l| l.ends_with(':')).count(), inputs.len(), "{depfile}");
}

#[test]
fn ninja_rebuilds_the_bundle_exactly_when_an_input_changes() {
    let present = Command::new("ninja").arg("--version").output().is_ok_and(|o| o.status.success());
    if !present_or_skip(present, "ninja is missing", "ninja-build") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("app"), dir.path());
    let ninja_file = format!(
        "rule bundle\n  command = {} build src --entry app.main -q --no-cache -o $out --depfile $out.d\n  \
         depfile = $out.d\n  deps = gcc\nbuild app.bundle: bundle\n",
        env!("CARGO_BIN_EXE_luabundle")
    );
    std::fs::write(dir.path().join("build.ninja"), ninja_file).unwrap();
    let ninja = || {
        let out = Command::new("ninja").current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ninja().contains("[1/1]"), "the first run builds");
    let second = ninja();
    assert!(second.contains("no work to do"), "nothing changed: {second}");
    // A module's source changes after the build.
    let util = dir.path().join("src/app/util.lua");
    let text = std::fs::read_to_string(&util).unwrap();
    std::fs::write(&util, format!("{text}\n-- edited\n")).unwrap();
    assert!(ninja().contains("[1/1]"), "an edited module rebuilds the bundle");
    let after = ninja();
    assert!(after.contains("no work to do"), "{after}");
    // A file removed from the roots is no error (each input has an empty rule of its own).
    std::fs::remove_file(dir.path().join("src/app/tool.lua")).unwrap();
    assert!(ninja().contains("[1/1]"), "a removed module rebuilds the bundle");
}

#[test]
fn extract_gives_back_the_sources_that_rebuild_the_same_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("app").join("src");
    let bundle = dir.path().join("app.bundle");
    let build = |root: &Path, output: &Path| {
        luabundle()
            .args(["build", "--entry", "app.main", "--include", "app.*", "--embed-source", "-q", "--no-cache", "-o"])
            .arg(output)
            .arg(root)
            .assert()
            .success();
    };
    build(&src, &bundle);
    let restored = dir.path().join("restored");
    let out = luabundle().arg("extract").arg(&bundle).arg("-o").arg(&restored).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("extracted"), "{}", String::from_utf8_lossy(&out.stderr));
    let originals = files_under(&src);
    let extracted = files_under(&restored.join("src"));
    assert!(!extracted.is_empty() && extracted.iter().all(|f| originals.contains(f)), "{extracted:?}");
    for file in &extracted {
        assert_eq!(std::fs::read(restored.join("src").join(file)).unwrap(), std::fs::read(src.join(file)).unwrap());
    }
    let again = dir.path().join("again.bundle");
    build(&restored.join("src"), &again);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&bundle).unwrap(), "the round trip is exact");
    // Existing files are left alone unless --force.
    let out = luabundle().arg("extract").arg(&bundle).arg("-o").arg(&restored).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists (--force replaces it)"));
    luabundle().arg("extract").arg(&bundle).arg("-o").arg(&restored).arg("--force").assert().success();
}

#[test]
fn extract_refuses_each_module_stored_as_bytecode_only() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = crate::support::demo_app_bundle(dir.path());
    let out = luabundle().arg("extract").arg(&bundle).arg("-o").arg(dir.path().join("out")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not extracted: app.main: the bundle holds its bytecode only"), "{stderr}");
    assert!(stderr.contains("extracted 0 of"), "{stderr}");
}

#[test]
fn the_same_sources_in_other_folders_give_the_same_bundle_bytes() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (a, b) = (one.path().join("src"), two.path().join("deeper/still/src"));
    copy_tree(&fixture("app").join("src"), &a);
    copy_tree(&fixture("app").join("src"), &b);
    for extra in [&[][..], &["--compress", "zstd"], &["--embed-source"], &["--format", "source"]] {
        let build = |root: &Path, cache: &Path| {
            let output = root.parent().unwrap().join("app.bundle");
            luabundle()
                .args(["build", "--entry", "app.main", "-q", "--cache-dir"])
                .arg(cache)
                .args(extra)
                .arg("-o")
                .arg(&output)
                .arg(root)
                .assert()
                .success();
            std::fs::read(output).unwrap()
        };
        let first = build(&a, &one.path().join("cache"));
        let second = build(&b, &two.path().join("cache"));
        assert_eq!(first, second, "{extra:?}: the bundle depends on where the sources are");
        // Nothing of the folder the sources were in.
        let folder = one.path().to_string_lossy().into_owned();
        assert!(!first.windows(folder.len()).any(|w| w == folder.as_bytes()), "{extra:?}");
    }
}

#[test]
fn source_is_stored_as_written_and_a_shebang_line_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("app").join("src");
    let tool = std::fs::read(src.join("app/tool.lua")).unwrap();
    assert!(tool.starts_with(b"#!"), "app.tool starts with a shebang line");
    let bundle = dir.path().join("s.bundle");
    luabundle()
        .args(["build", "--format", "source", "--include", "app.*", "-q", "--no-cache", "-o"])
        .arg(&bundle)
        .arg(&src)
        .assert()
        .success();
    let opened = luabundle_runtime::Bundle::open(&bundle).unwrap();
    let position = opened.position("app.tool").unwrap().unwrap();
    assert_eq!(&*opened.verified_blob(position).unwrap(), tool.as_slice());
    let run = luabundle().arg("run").arg(&bundle).args(["-m", "app.tool"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("tool module app.tool"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
}
