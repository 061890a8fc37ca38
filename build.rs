//! Build script: lets C modules loaded by `luabundle run` find the Lua C API.
//!
//! Stock C modules (Debian's `lfs.so`, LuaRocks builds) are not linked against a Lua library:
//! they expect the program that loads them to provide `lua_*`, `luaL_*` and `luaopen_*`. The
//! Lua VM is linked statically into the `luabundle` binary, so its C API is exported from the
//! binary's dynamic symbol table (only those names, to keep start-up relocations few), which
//! also keeps the linker from dropping API functions the binary itself never calls.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let luau = std::env::var_os("CARGO_FEATURE_LUAU").is_some();
    let cli = std::env::var_os("CARGO_FEATURE_CLI").is_some();
    // Luau has no C module loader; other systems get the default linking.
    if luau || !cli || !matches!(os.as_str(), "linux" | "freebsd" | "netbsd" | "openbsd" | "dragonfly") {
        return;
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let list = out.join("lua-c-api.list");
    std::fs::write(&list, "{\n  lua_*;\n  luaL_*;\n  luaopen_*;\n  luaJIT_*;\n};\n").expect("OUT_DIR is writable");
    println!("cargo:rustc-link-arg-bins=-Wl,--dynamic-list={}", list.display());
}
