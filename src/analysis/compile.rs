//! Compilation: Lua source to bytecode of the linked VM, in parallel, one Lua state per
//! worker.
//!
//! Each chunk is compiled under its name `@<display path>`; Lua 5.x bakes that name into the
//! bytecode, so errors and tracebacks at run time name the original file and line.

use std::cell::RefCell;

#[cfg(not(feature = "luau"))]
use mlua::chunk::ChunkMode;
use mlua::Lua;

use rayon::prelude::*;

use luabundle_runtime::format::{Encoding, Span};

use crate::analysis::{Analysis, FileBytecode};
use crate::cache::bundle_record::PreviousBundle;
use crate::diagnostic::{Code, Diagnostic};
use crate::input::source::{self, SourceFile};
use crate::plan::BlobOptions;
use crate::syntax::nesting;

/// The text Lua compiles for `file`; an error when the file, read after discovery, no longer
/// holds the bytes discovery hashed (bytecode of other bytes must not go under its key).
fn source_text(file: &SourceFile) -> Result<std::borrow::Cow<'_, [u8]>, Diagnostic> {
    match Diagnostic::of_read_problem(file) {
        Some(problem) => Err(problem),
        None => Ok(source::prepare_bytes(file.bytes())),
    }
}

/// Compiles `file` with `lua` and dumps its bytecode, without debug info if `strip`.
///
/// # Errors
/// A `compile-error` diagnostic at the line Lua reports (errors full_moon does not catch,
/// such as too many local variables, or a file that is already bytecode).
#[cfg(not(feature = "luau"))]
pub fn compile_file(lua: &Lua, file: &SourceFile, strip: bool) -> Result<Vec<u8>, Diagnostic> {
    let text = source_text(file)?;
    let function = lua
        .load(&text[..])
        .set_name(file.chunk_name())
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|err| compile_error(file, &err))?;
    dump(lua, &function, strip).map_err(|err| compile_error(file, &err))
}

/// The function's bytecode. LuaJIT strips through `string.dump` (its C API has no strip flag).
#[cfg(not(any(feature = "luau", feature = "luajit")))]
fn dump(_lua: &Lua, function: &mlua::Function, strip: bool) -> mlua::Result<Vec<u8>> {
    Ok(function.dump(strip))
}

/// LuaJIT dumps through `string.dump` with mode `d` (and `s` to strip): its C API has no
/// strip flag, and without `d` it writes a table constructor's constant keys in the order of
/// its per-state randomised string hashes, so one source would give other bytes each time.
/// The mode changes nothing in the bytes' format.
#[cfg(feature = "luajit")]
fn dump(lua: &Lua, function: &mlua::Function, strip: bool) -> mlua::Result<Vec<u8>> {
    let mode = if strip { "sd" } else { "d" };
    let dumped: mlua::LuaString = lua.load("local f, mode = ... return string.dump(f, mode)").call((function, mode))?;
    Ok(dumped.as_bytes().to_vec())
}

/// Compiles `file` with Luau's compiler (debug level 1 keeps line numbers, 0 strips them).
/// Luau takes the chunk name when bytecode is loaded, so the runtime supplies it then.
///
/// # Errors
/// A `compile-error` diagnostic at the line Luau reports.
#[cfg(feature = "luau")]
pub fn compile_file(_lua: &Lua, file: &SourceFile, strip: bool) -> Result<Vec<u8>, Diagnostic> {
    let text = source_text(file)?;
    mlua::chunk::Compiler::new()
        .set_debug_level(if strip { 0 } else { 1 })
        .compile(&text[..])
        .map_err(|err| compile_error(file, &err))
}

thread_local! {
    /// This worker thread's Lua state, created on its first file and dropped with the thread.
    static WORKER_LUA: RefCell<Option<Lua>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's compiling Lua state (one per worker thread, created on first
/// use), then collects its garbage so the state stays small between files.
pub fn with_worker_lua<R>(f: impl FnOnce(&Lua) -> R) -> R {
    WORKER_LUA.with(|slot| {
        let mut slot = slot.borrow_mut();
        let lua = slot.get_or_insert_with(Lua::new);
        let result = f(lua);
        let _ = lua.gc_collect();
        result
    })
}

/// `bytecode` of `file` as a compressed bundle stores it: a zstd frame at `level`, or the
/// bytes themselves where the frame would not be smaller.
///
/// # Errors
/// A `compile-error` diagnostic for a module over the format's size limit.
pub(crate) fn compressed(file: &SourceFile, bytecode: Vec<u8>, level: i32) -> Result<Vec<u8>, Diagnostic> {
    match luabundle_runtime::format::compress(bytecode, level) {
        Ok((stored, _)) => Ok(stored),
        Err(err) => Err(Diagnostic::error(
            Code::CompileError,
            format!("{}: cannot be stored compressed: {err}", file.display_path),
        )),
    }
}

fn compile_error(file: &SourceFile, err: &mlua::Error) -> Diagnostic {
    let message = match err {
        mlua::Error::SyntaxError { message, .. } | mlua::Error::RuntimeError(message) => message.clone(),
        other => other.to_string(),
    };
    // Lua formats errors as `<chunk>:<line>: <message>`; Luau as `<line>: <message>`.
    let located = message
        .strip_prefix(&file.display_path)
        .or_else(|| message.strip_prefix("[string \"").and_then(|m| m.split_once("\"]")).map(|(_, rest)| rest))
        .or(Some(message.as_str()))
        .map(|rest| rest.strip_prefix(':').unwrap_or(rest))
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(line, rest)| Some((line.parse::<usize>().ok()?, rest.trim())));
    match located {
        Some((line, text)) => {
            let source_text = file.text();
            let start = source::line_start(source_text, line);
            let end = source_text[start..].find('\n').map_or(source_text.len(), |i| start + i);
            // "malformed number near '1_000'": the token, where the line holds it once.
            let near = text.rsplit_once(" near '").and_then(|(_, token)| token.strip_suffix('\''));
            let range =
                match near.filter(|t| !t.is_empty()).map(|t| (t, source_text[start..end].match_indices(t).count())) {
                    Some((token, 1)) => {
                        let at = start + source_text[start..end].find(token).expect("counted once");
                        at..at + token.len()
                    }
                    _ => start..end,
                };
            Diagnostic::error(Code::CompileError, format!("Lua rejects this file: {text}")).with_primary(
                file.id,
                range,
                text.to_string(),
            )
        }
        // Lua 5.4 reports running out of parser levels with no place: the deepest point is it.
        None => match nesting::deepest(file.text()).filter(|_| message.contains("stack overflow")) {
            Some(range) => Diagnostic::error(Code::CompileError, format!("Lua rejects this file: {message}"))
                .with_primary(file.id, range, "nested this deep here")
                .with_note("Lua refuses code nested this deep; split it into functions or steps"),
            None => Diagnostic::error(
                Code::CompileError,
                format!("{}: Lua rejects this file: {message}", file.display_path),
            ),
        },
    }
}

/// A module's bytes as the bundle stores them, with their blake3 hash and encoding.
#[derive(Clone, Debug)]
pub(crate) struct Blob {
    pub bytes: BlobBytes,
    pub hash: [u8; 32],
    pub encoding: Encoding,
}

/// Where a blob's bytes are.
#[derive(Clone, Debug)]
pub(crate) enum BlobBytes {
    /// In memory: compiled in this run or read from the cache.
    InMemory(Vec<u8>),
    /// In the bundle the build replaces, at this span of it (only bundles get these).
    InPrevious(Span),
}

impl Blob {
    /// Stored bytes in memory, hashed here; a cache entry or a compile keeps only the bytes,
    /// so a compressed one is known by its zstd frame.
    fn in_memory_hashed(bytes: Vec<u8>, hash: Option<[u8; 32]>) -> Blob {
        let hash = hash.unwrap_or_else(|| *blake3::hash(&bytes).as_bytes());
        Blob { encoding: Encoding::of_stored(&bytes), bytes: BlobBytes::InMemory(bytes), hash }
    }

    /// The bytes, when they are in memory.
    pub(crate) fn in_memory(&self) -> Option<&[u8]> {
        match &self.bytes {
            BlobBytes::InMemory(bytes) => Some(bytes),
            BlobBytes::InPrevious(_) => None,
        }
    }
}

/// The bytecode of each bundled file (`None` for the others): compiled in this run, already
/// in the `previous` bundle (left there, to be copied file to file), or read from the cache in
/// parallel; a damaged cache entry is compiled again, and its compile error becomes a
/// diagnostic. Closes the cache session.
pub(crate) fn bundled_bytecode(
    analysis: &mut Analysis,
    blob_options: BlobOptions,
    previous: Option<&PreviousBundle>,
) -> Vec<Option<Blob>> {
    let bundled_files = analysis.bundled_files();
    let files = &analysis.discovered.files;
    let session = analysis.cache.as_ref();
    let keys = &analysis.keys;
    // Per file: its bytecode, a compile error, and whether it was compiled again.
    let results: Vec<(Option<Blob>, Option<Diagnostic>, bool)> = std::mem::take(&mut analysis.bytecode)
        .into_par_iter()
        .zip(bundled_files.par_iter())
        .enumerate()
        .map(|(i, (code, &bundled))| match code {
            _ if !bundled => (None, None, false),
            FileBytecode::Ready(bytes) => (Some(Blob::in_memory_hashed(bytes, None)), None, false),
            // Already reported by the analysis.
            FileBytecode::Refused(_) => (None, None, false),
            FileBytecode::Cached(hash) => match previous.and_then(|p| p.find(&hash)) {
                Some((span, encoding)) => {
                    (Some(Blob { bytes: BlobBytes::InPrevious(span), hash, encoding }), None, false)
                }
                None => match session.and_then(|s| s.load_bytecode(&keys[i])) {
                    Some((bytes, hash)) => (Some(Blob::in_memory_hashed(bytes, Some(hash))), None, false),
                    // A damaged entry: the sites were intact, only the bytecode is made again.
                    None => match with_worker_lua(|lua| compile_file(lua, &files[i], blob_options.strip)).and_then(
                        |bytes| match blob_options.compress {
                            Some(level) => compressed(&files[i], bytes, level),
                            None => Ok(bytes),
                        },
                    ) {
                        Ok(bytes) => (Some(Blob::in_memory_hashed(bytes, None)), None, true),
                        Err(diagnostic) => (None, Some(diagnostic), false),
                    },
                },
            },
        })
        .collect();
    let mut bytecode = Vec::with_capacity(results.len());
    let mut recompiled = Vec::new();
    for (i, (blob, diagnostic, again)) in results.into_iter().enumerate() {
        analysis.diagnostics.extend(diagnostic);
        if again {
            recompiled.push(i);
        }
        bytecode.push(blob);
    }
    let recompiled: Vec<(usize, &[u8])> =
        recompiled.iter().filter_map(|&i| Some((i, bytecode[i].as_ref()?.in_memory()?))).collect();
    analysis.close_cache(&recompiled);
    bytecode
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::chunk::ChunkMode;

    #[test]
    fn a_file_changed_since_discovery_is_not_compiled() {
        // The path a damaged cache entry takes: compiled again long after discovery.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lua");
        std::fs::write(&path, "return 2\n").unwrap();
        let changed = SourceFile::unread(0, path, "src/m.lua".into(), *blake3::hash(b"return 1\n").as_bytes());
        let refused = with_worker_lua(|lua| compile_file(lua, &changed, false)).unwrap_err();
        assert_eq!(refused.code, "file-changed-during-build");
    }

    fn file(text: &str) -> SourceFile {
        SourceFile::new(0, "m.lua".into(), "src/m.lua".into(), text)
    }

    #[test]
    fn bytecode_keeps_the_chunk_name_and_lines() {
        let lua = Lua::new();
        let bytes = compile_file(&lua, &file("\n\nerror('boom')"), false).unwrap();
        let header = &luabundle_runtime::target::linked().bytecode_header;
        assert!(bytes.starts_with(&header[..header.len().min(3)]), "{:?}", &bytes[..8]);
        // Lua 5.x keeps the name given at compile time; Luau takes it here.
        let err = lua.load(&bytes[..]).set_name("@src/m.lua").set_mode(ChunkMode::Binary).exec().unwrap_err();
        assert!(err.to_string().contains("src/m.lua:3: boom"), "{err}");
    }

    #[test]
    fn lua_level_errors_become_diagnostics_at_their_line() {
        let lua = Lua::new();
        let names: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
        let text = format!("local x = 1\nlocal {} = ...\nreturn x\n", names.join(", "));
        let d = compile_file(&lua, &file(&text), false).unwrap_err();
        assert_eq!(d.code, "compile-error");
        let limit = if cfg!(any(feature = "luau", feature = "lua55")) { "registers" } else { "local variables" };
        assert!(d.message.contains(limit), "{}", d.message);
        // Lua 5.5 runs out of registers at the statement after the declaration.
        let line = if cfg!(feature = "lua55") { 3 } else { 2 };
        let line_start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
        assert_eq!(d.labels[0].range.start, line_start);
        let d = compile_file(&lua, &file("\x1bLua\x54\x00"), false).unwrap_err();
        assert_eq!(d.code, "compile-error");
        #[cfg(not(feature = "luau"))]
        assert!(d.message.contains("binary"), "{}", d.message);
    }
}
