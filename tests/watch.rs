//! `luabundle build --watch` and the progress bar, as a person at a terminal sees them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use luabundle_runtime::Bundle;

const WAIT: Duration = Duration::from_secs(30);

/// Kills the watcher even when an assertion fails.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a stderr line containing `needle`, returning it.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no line containing {needle:?} within {WAIT:?}");
}

fn greeting(bundle: &Path) -> String {
    let lua = mlua::Lua::new();
    Bundle::open(bundle).unwrap().install(&lua).unwrap();
    lua.load("return require('greet')").eval().unwrap()
}

#[test]
fn watch_rebuilds_on_change_and_keeps_the_last_good_bundle_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("greet.lua"), "return 'first'").unwrap();
    let bundle = dir.path().join("app.bundle");
    let (_watcher, lines) = start_watching(dir.path(), &["-o", "app.bundle", "src"]);
    wait_for(&lines, "watching");
    assert_eq!(greeting(&bundle), "first");

    std::fs::write(src.join("greet.lua"), "return 'second'").unwrap();
    let line = wait_for(&lines, "after changes to");
    assert!(line.starts_with("bundled 1 module from 1 file into") && line.contains("greet.lua"), "{line}");
    assert_eq!(greeting(&bundle), "second");

    std::fs::write(src.join("greet.lua"), "return = 'broken'").unwrap();
    wait_for(&lines, "error[parse-error]");
    let failed = wait_for(&lines, "build failed after changes to");
    assert!(failed.contains("kept the last good bundle"), "{failed}");
    assert_eq!(greeting(&bundle), "second");
}

/// A project big enough for the bar to have something to count.
fn project(dir: &Path) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("m{i}.lua")), format!("return {i}")).unwrap();
    }
}

#[test]
fn a_progress_bar_appears_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let bin = assert_cmd::cargo::cargo_bin("luabundle");
    let command = format!("{} build src -o app.bundle --no-cache", bin.display());
    // `script` gives the command a terminal.
    let terminal = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env("LUABUNDLE_PROGRESS_DELAY_MS", "0")
        .output()
        .expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&terminal.stdout);
    assert!(shown.contains("/200 files") && shown.contains("compiling"), "no progress bar on a terminal: {shown}");
    assert!(shown.contains("bundled 200 modules"), "{shown}");

    let piped = Command::new(&bin)
        .args(["build", "src", "-o", "app2.bundle", "--no-cache"])
        .current_dir(dir.path())
        .env("LUABUNDLE_PROGRESS_DELAY_MS", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&piped.stderr);
    assert!(!text.contains("/200 files") && !text.contains("parsing"), "{text}");
    assert!(text.starts_with("bundled 200 modules"), "{text}");

    let quiet = Command::new("script")
        .args(["-qec", &format!("{command} --quiet"), "/dev/null"])
        .current_dir(dir.path())
        .env("LUABUNDLE_PROGRESS_DELAY_MS", "0")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&quiet.stdout).trim(), "", "--quiet prints nothing on success");
}

/// Starts `luabundle build --watch ARGS` in `dir`, with its stderr lines on a channel.
fn start_watching(dir: &Path, args: &[&str]) -> (Watcher, mpsc::Receiver<String>) {
    let child = Command::new(assert_cmd::cargo::cargo_bin("luabundle"))
        .args(["build", "--watch", "--no-cache"])
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut watcher = Watcher(child);
    let stderr = watcher.0.stderr.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    (watcher, lines)
}

#[test]
fn watch_reads_the_configuration_again_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("greet.lua"), "return 'hi'").unwrap();
    std::fs::write(src.join("other.lua"), "return 'other'").unwrap();
    let config = dir.path().join("luabundle.toml");
    std::fs::write(&config, "roots = [\"src\"]\noutput = \"app.bundle\"\n").unwrap();
    let (_watcher, lines) = start_watching(dir.path(), &[]);
    wait_for(&lines, "bundled 2 modules");
    wait_for(&lines, "watching");
    // A new option in the file takes effect.
    std::fs::write(&config, "roots = [\"src\"]\noutput = \"app.bundle\"\nexclude = [\"other.lua\"]\n").unwrap();
    let line = wait_for(&lines, "after changes to");
    assert!(line.starts_with("bundled 1 module from 1 file") && line.contains("luabundle.toml"), "{line}");
    // An invalid file is reported, and the last good options stay.
    std::fs::write(&config, "roots = [\"src\"\n").unwrap();
    wait_for(&lines, "invalid configuration");
    wait_for(&lines, "kept the last good options");
    std::fs::write(src.join("greet.lua"), "return 'hello'").unwrap();
    let line = wait_for(&lines, "after changes to");
    assert!(line.starts_with("bundled 1 module from 1 file"), "{line}");
    assert_eq!(greeting(&dir.path().join("app.bundle")), "hello");
}

#[test]
fn watch_recovers_when_a_root_is_deleted_and_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("greet.lua"), "return 'first'").unwrap();
    let (_watcher, lines) = start_watching(dir.path(), &["src", "-o", "app.bundle"]);
    wait_for(&lines, "watching");
    std::fs::remove_dir_all(&src).unwrap();
    wait_for(&lines, "is not a directory");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("greet.lua"), "return 'again'").unwrap();
    wait_for(&lines, "bundled 1 module");
    assert_eq!(greeting(&dir.path().join("app.bundle")), "again");
    // The new directory is watched: later edits still rebuild.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(src.join("greet.lua"), "return 'later'").unwrap();
    wait_for(&lines, "bundled 1 module");
    let deadline = std::time::Instant::now() + WAIT;
    while greeting(&dir.path().join("app.bundle")) != "later" && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(greeting(&dir.path().join("app.bundle")), "later");
}
