//! The rockspec at the repository's root: `luarocks make` builds the module with cargo and
//! installs it into a tree, where the interpreter finds it with `require "luabundle"`.
//!
//! Needs `luarocks` and `lua5.4` (`.ci/run` installs them; `LUABUNDLE_REQUIRE_CORPORA=1` turns
//! a missing one into a failure). The cargo build it runs goes to `target/rockspec` here, apart
//! from the test's own build.

use std::path::Path;
use std::process::Command;

#[test]
#[cfg(not(any(feature = "lua51", feature = "lua52", feature = "lua53", feature = "luajit")))]
fn luarocks_make_builds_and_installs_the_module() {
    let present = |program: &str| Command::new(program).arg("--version").output().is_ok();
    if !present("luarocks") || !present("lua5.4") {
        assert!(std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(), "luarocks or lua5.4 is missing");
        eprintln!("skipped: apt-get install luarocks lua5.4");
        return;
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().expect("the repository");
    let tree = tempfile::tempdir().unwrap();
    let out = Command::new("luarocks")
        .args(["--lua-version", "5.4", "--tree"])
        .arg(tree.path())
        .args(["make", "luabundle-scm-1.rockspec"])
        .env("CARGO_TARGET_DIR", here.join("target/rockspec"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "luarocks make: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = tree.path().join("lib/lua/5.4/luabundle.so");
    assert!(installed.is_file(), "{} is not installed", installed.display());
    let out = Command::new("lua5.4")
        .arg("-e")
        .arg(format!(
            "package.cpath = '{}/lib/lua/5.4/?.so;' .. package.cpath\nlocal lb = require 'luabundle'\nio.write(lb.target, ' ', lb.version)",
            tree.path().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("lua54 {}", env!("CARGO_PKG_VERSION")));
}
