//! Nothing is lost: a bundle on disk is always the old one byte for byte or a complete new
//! one, whether the build is killed at any moment, the disk is full, or builds race.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use luabundle_runtime::Bundle;

/// A project of `count` modules whose bodies depend on `variant`.
fn project(dir: &Path, count: usize, variant: &str) -> PathBuf {
    let src = dir.join(format!("src-{variant}"));
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..count {
        let body = format!("local t = {{}}\nfor i = 1, {i} do t[i] = '{variant}' .. i end\nreturn t\n");
        std::fs::write(src.join(format!("m{i}.lua")), body).unwrap();
    }
    src
}

fn build(src: &Path, output: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("luabundle"));
    cmd.arg("build").arg(src).arg("-o").arg(output).args(["--no-cache", "-q"]);
    cmd
}

/// Whether `bytes` is a complete bundle whose every checksum holds.
fn complete(bytes: Vec<u8>) -> bool {
    Bundle::from_bytes(bytes).is_ok_and(|b| b.verify_all().is_ok())
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_old_bundle_or_a_complete_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [project(dir.path(), 400, "a"), project(dir.path(), 400, "b")];
    let output = dir.path().join("app.bundle");
    assert!(build(&sources[0], &output).status().unwrap().success());
    let mut previous = std::fs::read(&output).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut replaced = 0;
    for round in 0..24 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis((seed >> 33) % 60);
        let mut child = build(&sources[round % 2], &output).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = std::fs::read(&output).unwrap();
        if now != previous {
            assert!(
                complete(now.clone()),
                "round {round}: killed after {delay:?}, the output is neither old nor complete"
            );
            replaced += 1;
        }
        previous = now;
    }
    eprintln!("{replaced} of 24 killed builds had replaced the bundle");
}

/// A 64 KiB tmpfs, unmounted on drop.
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount(at: PathBuf) -> Option<TinyDisk> {
        std::fs::create_dir_all(&at).unwrap();
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&at).status();
        mounted.is_ok_and(|s| s.success()).then_some(TinyDisk(at))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_the_old_bundle_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = TinyDisk::mount(dir.path().join("disk")) else {
        assert!(std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(), "cannot mount a tmpfs to fill");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let output = disk.0.join("app.bundle");
    let small = project(dir.path(), 5, "small");
    assert!(build(&small, &output).status().unwrap().success());
    let good = std::fs::read(&output).unwrap();
    let large = project(dir.path(), 600, "large");
    let failed = build(&large, &output).output().unwrap();
    assert_eq!(failed.status.code(), Some(2), "{}", String::from_utf8_lossy(&failed.stderr));
    let message = String::from_utf8_lossy(&failed.stderr);
    assert!(message.contains("No space left on device") || message.contains("cannot write"), "{message}");
    assert_eq!(std::fs::read(&output).unwrap(), good, "the old bundle is intact");
    let stray: Vec<_> = std::fs::read_dir(&disk.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

#[test]
fn concurrent_builds_of_one_output_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("app.bundle");
    let sources: Vec<PathBuf> = (0..4).map(|i| project(dir.path(), 100, &format!("v{i}"))).collect();
    let children: Vec<_> = sources.iter().map(|src| build(src, &output).spawn().unwrap()).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert!(complete(std::fs::read(&output).unwrap()));
}
