//! The Lua VM this crate is linked with, described the way bundles record their target.
//!
//! A bundle's bytecode runs only on a VM whose bytecode header is byte-for-byte the one the
//! bundle was built for: Lua does not verify bytecode, so a mismatch must be refused before
//! anything is loaded.

use std::sync::OnceLock;

use crate::format::Target;

#[cfg(not(any(
    feature = "lua51",
    feature = "lua52",
    feature = "lua53",
    feature = "lua54",
    feature = "lua55",
    feature = "luajit",
    feature = "luau"
)))]
compile_error!("luabundle-runtime needs one Lua flavour feature: lua51, lua52, lua53, lua54, lua55, luajit or luau");

#[cfg(any(
    all(
        feature = "lua51",
        any(
            feature = "lua52",
            feature = "lua53",
            feature = "lua54",
            feature = "lua55",
            feature = "luajit",
            feature = "luau"
        )
    ),
    all(
        feature = "lua52",
        any(feature = "lua53", feature = "lua54", feature = "lua55", feature = "luajit", feature = "luau")
    ),
    all(feature = "lua53", any(feature = "lua54", feature = "lua55", feature = "luajit", feature = "luau")),
    all(feature = "lua54", any(feature = "lua55", feature = "luajit", feature = "luau")),
    all(feature = "lua55", any(feature = "luajit", feature = "luau")),
    all(feature = "luajit", feature = "luau"),
))]
compile_error!("luabundle-runtime takes exactly one Lua flavour feature; disable the default `lua54` to pick another");

/// The flavour feature this crate was built with.
#[cfg(feature = "lua51")]
pub const FLAVOUR: &str = "lua51";
/// The flavour feature this crate was built with.
#[cfg(feature = "lua52")]
pub const FLAVOUR: &str = "lua52";
/// The flavour feature this crate was built with.
#[cfg(feature = "lua53")]
pub const FLAVOUR: &str = "lua53";
/// The flavour feature this crate was built with.
#[cfg(feature = "lua54")]
pub const FLAVOUR: &str = "lua54";
/// The flavour feature this crate was built with.
#[cfg(feature = "lua55")]
pub const FLAVOUR: &str = "lua55";
/// The flavour feature this crate was built with.
#[cfg(feature = "luajit")]
pub const FLAVOUR: &str = "luajit";
/// The flavour feature this crate was built with.
#[cfg(feature = "luau")]
pub const FLAVOUR: &str = "luau";

/// The flavour tag of bundles that hold only source text, which any flavour whose syntax
/// accepts it can load.
pub const SOURCE_FLAVOUR: &str = "source";

/// The target of the linked VM, computed once per process.
///
/// # Panics
/// Never in practice: it only fails if Lua cannot allocate a state for an empty chunk.
pub fn linked() -> &'static Target {
    static LINKED: OnceLock<Target> = OnceLock::new();
    LINKED.get_or_init(|| describe().expect("a fresh Lua state compiles an empty chunk"))
}

fn describe() -> mlua::Result<Target> {
    // A bare state: the base library's `_VERSION` and a dump are all it needs, and a state
    // with the whole standard library would cost every `luabundle run` a good part of its
    // start-up.
    let lua = mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default())?;
    let release: String = lua.globals().get("_VERSION")?;
    Ok(Target { flavour: FLAVOUR.to_string(), release, bytecode_header: bytecode_header(&lua)? })
}

/// The part of the VM's dump of an empty function that decides whether it can read a dump.
#[cfg(any(feature = "lua51", feature = "lua52", feature = "lua53", feature = "lua54", feature = "lua55"))]
fn bytecode_header(lua: &mlua::Lua) -> mlua::Result<Vec<u8>> {
    // 5.1: signature, version, format, endianness, sizes of int, size_t, Instruction and
    // lua_Number, integral flag. 5.2 adds LUAC_TAIL; 5.3 and 5.4 add LUAC_DATA, the sizes,
    // and the check values that reveal endianness and float format; 5.5 also records the
    // sizes of int and lua_Integer with a check value each.
    let len = if cfg!(feature = "lua51") {
        12
    } else if cfg!(feature = "lua52") {
        18
    } else if cfg!(feature = "lua53") {
        4 + 1 + 1 + 6 + 5 + 8 + 8
    } else if cfg!(feature = "lua55") {
        4 + 1 + 1 + 6 + (1 + 4) + (1 + 4) + (1 + 8) + (1 + 8)
    } else {
        4 + 1 + 1 + 6 + 3 + 8 + 8
    };
    let dump = lua.load("").set_name("=empty").into_function()?.dump(true);
    Ok(dump[..len.min(dump.len())].to_vec())
}

/// LuaJIT: signature, version and the flags that change the format (big-endian, GC64);
/// the strip and FFI flags vary per chunk and are left out.
#[cfg(feature = "luajit")]
fn bytecode_header(lua: &mlua::Lua) -> mlua::Result<Vec<u8>> {
    const PER_CHUNK_FLAGS: u8 = 0x02 | 0x04;
    let dump = lua.load("").set_name("=empty").into_function()?.dump(true);
    let mut header = dump[..5.min(dump.len())].to_vec();
    if let Some(flags) = header.get_mut(4) {
        *flags &= !PER_CHUNK_FLAGS;
    }
    Ok(header)
}

/// Luau: the bytecode version byte the compiler writes (the VM reads a range of them; the
/// bundle asks for the exact one).
#[cfg(feature = "luau")]
fn bytecode_header(_lua: &mlua::Lua) -> mlua::Result<Vec<u8>> {
    let bytecode = mlua::chunk::Compiler::new().compile("return")?;
    Ok(bytecode[..1.min(bytecode.len())].to_vec())
}

/// Whether bytecode built for `target` can run on the linked VM. Source-only bundles run on
/// any flavour.
pub fn matches_linked(target: &Target) -> bool {
    let linked = linked();
    target.flavour == SOURCE_FLAVOUR
        || (target.flavour == linked.flavour && target.bytecode_header == linked.bytecode_header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_target_describes_this_flavour() {
        let target = linked();
        assert_eq!(target.flavour, FLAVOUR);
        assert!(!target.bytecode_header.is_empty());
        assert!(matches_linked(target));
        #[cfg(feature = "lua54")]
        {
            assert_eq!(target.release, "Lua 5.4");
            assert_eq!(&target.bytecode_header[..5], b"\x1bLua\x54");
            assert_eq!(target.bytecode_header.len(), 31);
        }
        #[cfg(feature = "lua55")]
        {
            assert_eq!(target.release, "Lua 5.5");
            assert_eq!(&target.bytecode_header[..5], b"\x1bLua\x55");
            assert_eq!(target.bytecode_header.len(), 40);
        }
        #[cfg(feature = "luajit")]
        assert_eq!(&target.bytecode_header[..3], b"\x1bLJ");
    }

    #[test]
    fn another_flavour_or_header_does_not_match() {
        let mut other = linked().clone();
        other.flavour = "lua0".into();
        assert!(!matches_linked(&other));
        let mut header = linked().clone();
        header.bytecode_header.push(0);
        assert!(!matches_linked(&header));
        let mut source = linked().clone();
        source.flavour = SOURCE_FLAVOUR.into();
        assert!(matches_linked(&source));
    }
}
