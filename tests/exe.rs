//! Standalone executables (`luabundle build --exe`): the executable runs its bundle's entry
//! module as `lua` runs a script, with its arguments; LuaRocks built so prints what it prints
//! from its sources; a damaged executable refuses to run, naming the damage.

use std::path::Path;
use std::process::{Command, Output};

#[cfg(feature = "lua54")]
use crate::support::present_or_skip;
use crate::support::{fixture, luabundle};

fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn an_executable_runs_its_entry_with_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("app");
    luabundle()
        .args(["build", "--entry", "app.main", "-q", "-o"])
        .arg(dir.path().join("app.bundle"))
        .arg("--exe")
        .arg(&exe)
        .arg(fixture("app").join("src"))
        .assert()
        .success();
    let from_exe = run(&exe, &["one", "two"], dir.path());
    assert!(from_exe.status.success(), "{}", String::from_utf8_lossy(&from_exe.stderr));
    let from_run =
        luabundle().arg("run").arg(dir.path().join("app.bundle")).args(["--", "one", "two"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&from_exe.stdout), String::from_utf8_lossy(&from_run.stdout));
    assert!(String::from_utf8_lossy(&from_exe.stdout).contains("args: one,two"));

    // A byte changed in the appended bundle: the executable refuses to run it.
    let mut bytes = std::fs::read(&exe).unwrap();
    let at = bytes.len() - 16 - 60;
    bytes[at] ^= 0x55;
    let damaged = dir.path().join("damaged");
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::set_permissions(&damaged, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(&damaged, &[], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is damaged") && stderr.contains(&format!("appended to {}", damaged.display())),
        "{stderr}"
    );
}

#[test]
fn an_executable_needs_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let out = luabundle()
        .args(["build", "-q", "-o"])
        .arg(dir.path().join("app.bundle"))
        .arg("--exe")
        .arg(dir.path().join("app"))
        .arg(fixture("app").join("src"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--exe needs an entry module"));
    assert!(!dir.path().join("app").exists());
}

#[test]
#[cfg(feature = "lua54")]
fn luarocks_built_as_an_executable_prints_what_it_prints_from_its_sources() {
    let lua_dir = "/usr/share/lua/5.4";
    let present = Path::new("/usr/bin/luarocks").is_file() && Path::new(lua_dir).join("luarocks").is_dir();
    if !present_or_skip(present, "luarocks is missing", "luarocks") {
        return;
    }
    // The command script as the entry, at the path both runs name it by (LuaRocks prints it).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::copy("/usr/bin/luarocks", dir.path().join("bin/luarocks.lua")).unwrap();
    // As compiled, and with every module compressed.
    for (exe_dir, storage) in [("exe", "none"), ("exe-zstd", "zstd")] {
        let exe_dir = dir.path().join(exe_dir);
        luabundle()
            .args(["build", &format!("luarocks={lua_dir}/luarocks"), &format!("pl={lua_dir}/pl"), "bin"])
            .args(["--entry", "luarocks", "--include", "luarocks.*", "-q", "-o", "lr.bundle", "--compress", storage])
            .arg("--exe")
            .arg(exe_dir.join("bin/luarocks.lua"))
            .current_dir(dir.path())
            .assert()
            .success();
        same_as_from_sources(&exe_dir, dir.path());
    }
}

/// `--version` and `help` from the LuaRocks executable in `exe_dir` print what they print
/// from the sources in `sources_dir`.
#[cfg(feature = "lua54")]
fn same_as_from_sources(exe_dir: &Path, sources_dir: &Path) {
    for args in [&["--version"][..], &["help"]] {
        let from_exe = run(Path::new("./bin/luarocks.lua"), args, exe_dir);
        let mut sources = vec!["bin/luarocks.lua"];
        sources.extend_from_slice(args);
        let from_sources = run(Path::new("lua5.4"), &sources, sources_dir);
        assert!(from_exe.status.success(), "{}", String::from_utf8_lossy(&from_exe.stderr));
        assert!(!from_sources.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&from_exe.stdout),
            String::from_utf8_lossy(&from_sources.stdout),
            "{args:?}"
        );
    }
}
