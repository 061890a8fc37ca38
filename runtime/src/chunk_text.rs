//! Lua source as `load` accepts it. Bundles store source text exactly as it was written
//! (`--embed-source`, source bundles), so that it can be given back byte for byte; this is
//! what makes it loadable when a module is loaded from it.

use std::borrow::Cow;

use crate::format::BlobKind;

/// How Lua loads a blob of `kind`: the chunk mode, and the bytes (bytecode as it is, source
/// made [`loadable`]).
pub fn for_load(kind: BlobKind, bytes: &[u8]) -> (mlua::chunk::ChunkMode, Cow<'_, [u8]>) {
    match kind {
        BlobKind::Bytecode => (mlua::chunk::ChunkMode::Binary, Cow::Borrowed(bytes)),
        BlobKind::Source => (mlua::chunk::ChunkMode::Text, loadable(bytes)),
    }
}

/// The text Lua's `load` accepts for a file, with every byte at the same offset (so line
/// numbers stay right): a UTF-8 byte order mark becomes spaces, and a first line starting
/// with `#` (a shebang, which `lua` skips in files but `load` rejects) becomes a comment of
/// the same length.
pub fn loadable(text: &[u8]) -> Cow<'_, [u8]> {
    let bom = if text.starts_with(b"\xef\xbb\xbf") { 3 } else { 0 };
    if bom == 0 && !text.starts_with(b"#") {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_vec();
    out[..bom].fill(b' ');
    if out[bom..].starts_with(b"#") {
        let line_len = out[bom..].iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(out.len() - bom);
        let line = &mut out[bom..bom + line_len];
        line.fill(b' ');
        let dashes = line_len.min(2);
        line[..dashes].fill(b'-');
        if line_len == 1 {
            line[0] = b' ';
        }
    }
    Cow::Owned(out)
}
