//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use mlua::Lua;

/// The fixture folder `name`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// The `luabundle` binary, run in the repository root.
pub fn luabundle() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("luabundle").expect("binary built");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Builds `root` with the library into `dir/app.bundle` and returns the bundle's bytes.
pub fn build_bytes(root: &Path, entry: Option<&str>, dir: &Path) -> Vec<u8> {
    build_bytes_including(root, entry, &[], dir)
}

/// [`build_bytes`] with `--include` patterns.
pub fn build_bytes_including(root: &Path, entry: Option<&str>, includes: &[&str], dir: &Path) -> Vec<u8> {
    let output = dir.join("app.bundle");
    let mut builder = luabundle::Builder::new();
    builder.root(root).output(&output);
    if let Some(entry) = entry {
        builder.entry(entry);
    }
    for include in includes {
        builder.include(*include);
    }
    builder.try_build().unwrap_or_else(|e| panic!("build of {} failed:\n{e}", root.display()));
    std::fs::read(output).expect("bundle written")
}

/// A Lua state whose `print` appends to the global table `OUTPUT` instead of writing.
pub fn capturing_lua() -> Lua {
    let lua = Lua::new();
    capture_print(&lua);
    lua
}

/// Replaces `print` in `lua` so that it appends to the global table `OUTPUT`.
pub fn capture_print(lua: &Lua) {
    lua.load(
        r#"
        OUTPUT = {}
        print = function(...)
          local n, parts = select('#', ...), { ... }
          for i = 1, n do parts[i] = tostring(parts[i]) end
          OUTPUT[#OUTPUT + 1] = table.concat(parts, "\t", 1, n)
        end
        "#,
    )
    .exec()
    .expect("print replaced");
}

/// Everything printed so far in a [`capturing_lua`] state, one line per call.
pub fn captured(lua: &Lua) -> String {
    lua.load("return table.concat(OUTPUT, '\\n')").eval().expect("output collected")
}
