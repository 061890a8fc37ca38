//! The Lua VM this crate is linked with, described the way bundles record their target.
//!
//! A bundle's bytecode runs only on a VM whose bytecode header is byte-for-byte the one the
//! bundle was built for: Lua does not verify bytecode, so a mismatch must be refused before
//! anything is loaded.

use std::sync::OnceLock;

use crate::format::Target;

#[cfg(not(feature = "lua54"))]
compile_error!("luabundle-runtime needs a Lua flavour feature: enable `lua54`");

/// The flavour feature this crate was built with.
pub const FLAVOUR: &str = "lua54";

/// Length of the bytecode header of the flavour: signature, version, format, `LUAC_DATA`, the
/// sizes of `Instruction`, `lua_Integer` and `lua_Number`, and the two check values that reveal
/// endianness and float format.
const BYTECODE_HEADER_LEN: usize = 4 + 1 + 1 + 6 + 3 + 8 + 8;

/// The target of the linked VM, computed once per process.
///
/// # Panics
/// Never in practice: it only fails if Lua cannot allocate a state for an empty chunk.
pub fn linked() -> &'static Target {
    static LINKED: OnceLock<Target> = OnceLock::new();
    LINKED.get_or_init(|| describe().expect("a fresh Lua state compiles an empty chunk"))
}

fn describe() -> mlua::Result<Target> {
    let lua = mlua::Lua::new();
    let release: String = lua.globals().get("_VERSION")?;
    let dump = lua.load("").set_name("=empty").into_function()?.dump(true);
    let len = BYTECODE_HEADER_LEN.min(dump.len());
    Ok(Target { flavour: FLAVOUR.to_string(), release, bytecode_header: dump[..len].to_vec() })
}

/// Whether bytecode built for `target` can run on the linked VM.
pub fn matches_linked(target: &Target) -> bool {
    let linked = linked();
    target.flavour == linked.flavour && target.bytecode_header == linked.bytecode_header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_target_is_lua54_bytecode() {
        let target = linked();
        assert_eq!(target.flavour, "lua54");
        assert_eq!(target.release, "Lua 5.4");
        assert_eq!(&target.bytecode_header[..5], b"\x1bLua\x54");
        assert_eq!(target.bytecode_header.len(), BYTECODE_HEADER_LEN);
        assert!(matches_linked(target));
    }
}
