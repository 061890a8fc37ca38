-- The luabundle Lua module (lua-module/), built with cargo for the Lua that LuaRocks targets:
--   luarocks make luabundle-scm-1.rockspec                   (LuaRocks' default Lua)
--   luarocks --lua-version 5.4 make luabundle-scm-1.rockspec
-- Needs a Rust toolchain (cargo). LuaJIT is recognised by its interpreter.
rockspec_format = "3.0"
package = "luabundle"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "Lazy, verified loading of luabundle bundles in any Lua host",
  detailed = [[
    require "luabundle" opens a bundle built by the luabundle command and installs it into
    package.preload: each module is verified against its hash and loaded on its first
    require, in the lua and luajit interpreters, OpenResty and Neovim.
  ]],
  license = "MIT OR Apache-2.0",
}
dependencies = { "lua >= 5.1, < 5.5" }
build = {
  type = "command",
  -- The cargo feature of the target Lua: lua51 ... lua54, or luajit for a LuaJIT interpreter.
  build_command = [[
    feature=lua`"$(LUA)" -e "io.write((_VERSION:gsub('Lua ', ''):gsub('[.]', '')))"`
    if "$(LUA)" -e "os.exit(jit and 0 or 1)" 2>/dev/null; then feature=luajit; fi
    cargo build --release --locked --manifest-path lua-module/Cargo.toml --no-default-features --features "$feature" &&
    mkdir -p lua-module/target/luarocks &&
    cp "${CARGO_TARGET_DIR:-lua-module/target}/release/libluabundle.so" lua-module/target/luarocks/luabundle.so
  ]],
  install = { lib = { luabundle = "lua-module/target/luarocks/luabundle.so" } },
}
