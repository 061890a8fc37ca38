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

/// Whether what a test needs from the system is `present`: when it is not, the test is
/// skipped with a note of what to `apt-get install`, or fails if `LUABUNDLE_REQUIRE_CORPORA`
/// is set (as `.ci/run` sets it), so that CI never passes by skipping.
pub fn present_or_skip(present: bool, missing: &str, install: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(),
            "LUABUNDLE_REQUIRE_CORPORA is set but {missing}"
        );
        eprintln!("skipped: {missing}; apt-get install {install}");
    }
    present
}

/// The demo app (fixtures/app) built by the command into `dir/app.bundle` with its entry.
pub fn demo_app_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("app.bundle");
    luabundle()
        .args(["build", "--entry", "app.main", "-q", "--no-cache", "-o"])
        .arg(&bundle)
        .arg(fixture("app").join("src"))
        .assert()
        .success();
    bundle
}

/// Builds `root` with the library into `dir/app.bundle`, with `--include` patterns, and
/// returns the bundle's bytes.
pub fn build_bytes_including(root: &Path, entry: Option<&str>, includes: &[&str], dir: &Path) -> Vec<u8> {
    build_bytes_with(root, entry, includes, dir, luabundle::Compression::None)
}

/// [`build_bytes_including`], with modules stored as `compression` says.
pub fn build_bytes_with(
    root: &Path,
    entry: Option<&str>,
    includes: &[&str],
    dir: &Path,
    compression: luabundle::Compression,
) -> Vec<u8> {
    let output = dir.join("app.bundle");
    let mut builder = luabundle::Builder::new();
    builder.root(root).output(&output).compress(compression);
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

/// Bytecode of `source` for the linked VM.
pub fn bytecode_of(source: &str) -> Vec<u8> {
    #[cfg(not(feature = "luau"))]
    return Lua::new().load(source).into_function().expect("source compiles").dump(false);
    #[cfg(feature = "luau")]
    return mlua::chunk::Compiler::new().compile(source).expect("source compiles");
}

/// Makes `require` in `lua` find modules in the plain source files under `root`, as a stock
/// interpreter does through `package.path = ROOT/?.lua;ROOT/?/init.lua`.
#[cfg(not(feature = "luau"))]
pub fn require_from_sources(lua: &Lua, root: &Path) {
    let root = root.display();
    lua.load(format!("package.path = '{root}/?.lua;{root}/?/init.lua' package.cpath = ''"))
        .exec()
        .expect("package.path set");
}

/// Makes `require` in `lua` find modules in the plain source files under `root`. Luau has
/// no `package` library, so this is Lua 5.4's `require` with the file searcher of
/// `package.path = ROOT/?.luau;ROOT/?.lua;ROOT/?/init.luau;ROOT/?/init.lua`, written in Luau.
#[cfg(feature = "luau")]
pub fn require_from_sources(lua: &Lua, root: &Path) {
    const SOURCE_REQUIRE: &str = r##"
local root, read = ...
package = package or { loaded = {}, preload = {} }
local loaded = package.loaded
function require(name)
  local value = loaded[name]
  if value then return value end
  local base = (name:gsub("%.", "/"))
  for _, template in { "/?.luau", "/?.lua", "/?/init.luau", "/?/init.lua" } do
    local path = root .. (template:gsub("%?", base))
    local text = read(path)
    if text then
      if text:sub(1, 1) == "#" then text = "--" .. text end
      local chunk = assert(loadstring(text, "@" .. path))
      local result = chunk(name, path)
      if result ~= nil then loaded[name] = result elseif loaded[name] == nil then loaded[name] = true end
      return loaded[name], path
    end
  end
  error("module '" .. name .. "' not found", 2)
end
"##;
    let read = lua
        .create_function(|lua, path: String| match std::fs::read(path) {
            Ok(bytes) => lua.create_string(bytes).map(mlua::Value::String),
            Err(_) => Ok(mlua::Value::Nil),
        })
        .expect("reader created");
    lua.load(SOURCE_REQUIRE).call::<()>((root.display().to_string(), read)).expect("source require installed");
}

/// Clears the file-system search paths of a stock Lua state (Luau has none).
pub fn no_search_paths(lua: &Lua) {
    lua.load("if package then package.path = '' package.cpath = '' end").exec().expect("paths cleared");
}

/// Gives a Luau state the `package` table stock Lua has (install keeps an existing one).
pub fn with_package_table(lua: &Lua) {
    lua.load("package = package or { loaded = {}, preload = {} }").exec().expect("package table");
}
