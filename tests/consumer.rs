//! A real application crate (`examples/embedded_app/`, the embedding example) built with Cargo: its build script runs
//! `luabundle::Builder`, its binary embeds the bundle with `include_bytes!` and runs it.
//! Editing a Lua file and building again must show the change; building again without
//! changes must not re-run the build script.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the consumer crate into `dir`, pointing its path dependencies at this workspace.
fn copy_consumer(dir: &Path) -> PathBuf {
    let source = workspace().join("examples/embedded_app");
    let crate_dir = dir.join("consumer");
    for entry in walkdir::WalkDir::new(&source) {
        let entry = entry.unwrap();
        let target = crate_dir.join(entry.path().strip_prefix(&source).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    let root = workspace().display().to_string();
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
        .unwrap()
        .replace("path = \"../../runtime\"", &format!("path = {:?}", format!("{root}/runtime")))
        .replace("path = \"../..\"", &format!("path = {root:?}"));
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    // Start from this workspace's resolved versions.
    std::fs::copy(workspace().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    crate_dir
}

fn cargo(crate_dir: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(crate_dir)
        // A target directory of its own, kept between runs so later runs are quick.
        .env("CARGO_TARGET_DIR", workspace().join("target/consumer"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn run(crate_dir: &Path) -> String {
    String::from_utf8(cargo(crate_dir, &["run", "--quiet"]).stdout).unwrap()
}

#[test]
fn a_build_script_bundles_lua_and_the_binary_runs_it_and_sees_edits() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = copy_consumer(dir.path());
    assert_eq!(run(&crate_dir), "hello from the bundle\n");

    // Nothing changed: the build script does not run again.
    let fresh = cargo(&crate_dir, &["build", "-v"]);
    let log = String::from_utf8_lossy(&fresh.stderr);
    assert!(log.contains("Fresh embedded-app"), "{log}");

    let greeting = crate_dir.join("lua/app/greeting.lua");
    let edited = std::fs::read_to_string(&greeting).unwrap().replace("hello from the bundle", "edited and rebuilt");
    std::fs::write(&greeting, edited).unwrap();
    assert_eq!(run(&crate_dir), "edited and rebuilt\n");

    // The script told Cargo exactly what to watch.
    let outputs: Vec<PathBuf> = walkdir::WalkDir::new(workspace().join("target/consumer/debug/build"))
        .max_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "output" && e.path().to_string_lossy().contains("embedded-app-"))
        .map(|e| e.into_path())
        .collect();
    let newest = outputs.iter().max_by_key(|p| p.metadata().unwrap().modified().unwrap()).expect("build script output");
    let lines = std::fs::read_to_string(newest).unwrap();
    assert_eq!(lines, "cargo:rerun-if-changed=lua\ncargo:rerun-if-env-changed=OUT_DIR\n");
}
