//! Source text as Lua sees it: a file's name, its text, and positions inside it.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Index of a file in the build's list of source files.
pub type FileId = usize;

/// One source file found under a root.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Position in the build's file list.
    pub id: FileId,
    /// The file as found on disk.
    pub disk_path: PathBuf,
    /// Path relative to its root's parent, with `/` separators, e.g. `src/app/util.lua`.
    /// Used for chunk names and in diagnostics, so bundles hold no absolute paths.
    pub display_path: String,
    /// blake3 of the text.
    pub content_hash: [u8; 32],
    /// The text (lone carriage returns normalised): read at discovery, or on first use for a
    /// file whose content a previous build recorded and whose metadata has not changed.
    text: Arc<OnceLock<Text>>,
}

/// The largest source file read (32 MiB): a module this large is generated data.
pub const MAX_FILE_SIZE: u64 = 32 << 20;

/// Why the text of a file could not be had when it was read after discovery (a file whose
/// metadata a previous build vouched for, or whose text was released).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadProblem {
    /// The file cannot be read any more; the I/O error.
    Unreadable(String),
    /// Its bytes are no longer the ones discovery hashed: it changed during the build.
    Changed,
}

/// A file's bytes, and the UTF-8 view of them that analysis and diagnostics read.
#[derive(Debug)]
struct Text {
    /// The bytes with every byte that is not part of valid UTF-8 replaced by
    /// [`PLACEHOLDER`]: the same length, so every offset in it is an offset in the file.
    view: Arc<str>,
    /// The file's own bytes, kept only when they differ from `view`.
    original: Option<Arc<[u8]>>,
    /// Why the text is empty, when it could not be read back.
    problem: Option<ReadProblem>,
}

impl Text {
    fn from_str(text: Arc<str>) -> Text {
        Text { view: text, original: None, problem: None }
    }

    fn failed(problem: ReadProblem) -> Text {
        Text { view: "".into(), original: None, problem: Some(problem) }
    }

    fn from_bytes(bytes: Vec<u8>) -> Text {
        match String::from_utf8(bytes) {
            Ok(text) => Text { view: text.into(), original: None, problem: None },
            Err(err) => {
                let bytes = err.into_bytes();
                Text { view: utf8_view(&bytes).into(), original: Some(bytes.into()), problem: None }
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        self.original.as_deref().unwrap_or(self.view.as_bytes())
    }
}

/// What stands for a byte that is not valid UTF-8 in a file's analysis view. Lua allows such
/// bytes only in strings and comments (and, in LuaJIT, in names), where an underscore lexes
/// the same way.
pub const PLACEHOLDER: u8 = b'_';

/// `bytes` as UTF-8 of the same length: every byte outside a valid UTF-8 sequence becomes
/// [`PLACEHOLDER`].
pub fn utf8_view(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n(PLACEHOLDER as char, chunk.invalid().len()));
    }
    out
}

impl SourceFile {
    /// A file whose text has been read.
    pub fn new(id: FileId, disk_path: PathBuf, display_path: String, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let content_hash = *blake3::hash(text.as_bytes()).as_bytes();
        SourceFile { id, disk_path, display_path, content_hash, text: Arc::new(OnceLock::from(Text::from_str(text))) }
    }

    /// A file whose bytes have been read, whatever they are (Lua accepts any byte in strings
    /// and comments).
    pub fn from_bytes(id: FileId, disk_path: PathBuf, display_path: String, bytes: Vec<u8>) -> SourceFile {
        let content_hash = *blake3::hash(&bytes).as_bytes();
        SourceFile::with_hash(id, disk_path, display_path, bytes, content_hash)
    }

    /// A file whose bytes have been read and hashed (`content_hash` is blake3 of `bytes`).
    pub fn with_hash(
        id: FileId,
        disk_path: PathBuf,
        display_path: String,
        bytes: Vec<u8>,
        content_hash: [u8; 32],
    ) -> SourceFile {
        let text = Arc::new(OnceLock::from(Text::from_bytes(bytes)));
        SourceFile { id, disk_path, display_path, content_hash, text }
    }

    /// A file known by its content hash, read only if its text is needed.
    pub fn unread(id: FileId, disk_path: PathBuf, display_path: String, content_hash: [u8; 32]) -> SourceFile {
        SourceFile { id, disk_path, display_path, content_hash, text: Arc::new(OnceLock::new()) }
    }

    fn loaded(&self) -> &Text {
        // The bytes read now must be the ones discovery hashed: the cache keys and the bundle
        // are the content of that moment.
        self.text.get_or_init(|| match crate::util::read_regular(&self.disk_path, MAX_FILE_SIZE) {
            Ok(bytes) => {
                let bytes = normalise_line_break_bytes(bytes);
                match blake3::hash(&bytes).as_bytes() == &self.content_hash {
                    true => Text::from_bytes(bytes),
                    false => Text::failed(ReadProblem::Changed),
                }
            }
            Err(err) => Text::failed(ReadProblem::Unreadable(err.to_string())),
        })
    }

    /// Why the text could not be had, if it could not: the file became unreadable or changed
    /// since discovery hashed it. Its text then reads as empty.
    pub fn read_problem(&self) -> Option<&ReadProblem> {
        self.loaded().problem.as_ref()
    }

    /// The text as analysis and diagnostics read it, read now if it was not yet (empty when
    /// it cannot be had: see [`SourceFile::read_problem`]). It has the length of the file's
    /// bytes, with each byte that is not valid UTF-8 shown as [`PLACEHOLDER`];
    /// [`SourceFile::bytes`] has the bytes Lua compiles.
    pub fn text(&self) -> &str {
        &self.loaded().view
    }

    /// The file's bytes, exactly as Lua compiles them (lone carriage returns normalised).
    pub fn bytes(&self) -> &[u8] {
        self.loaded().bytes()
    }

    /// Whether the file holds bytes that are not valid UTF-8 (its text differs from its bytes).
    pub fn has_odd_bytes(&self) -> bool {
        self.loaded().original.is_some()
    }

    /// The text as a shared string.
    pub fn shared_text(&self) -> Arc<str> {
        self.loaded().view.clone()
    }

    /// Frees the text if no other copy of this file holds it; [`SourceFile::text`] reads it
    /// again if it is needed later.
    pub fn release_text(&mut self) {
        if let Some(text) = Arc::get_mut(&mut self.text) {
            text.take();
        }
    }

    /// Whether the text has been read.
    pub fn is_read(&self) -> bool {
        self.text.get().is_some()
    }

    /// One-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.text(), offset)
    }

    /// The chunk name Lua reports in errors and `debug.getinfo`: `@` and the display path.
    pub fn chunk_name(&self) -> String {
        format!("@{}", self.display_path)
    }
}

/// One-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// Byte offset of the start of one-based `line` in `text` (its end if `line` is past it).
pub fn line_start(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n').nth(line - 2).map_or(text.len(), |(i, _)| i + 1)
}

/// Lua ends a line at `\n`, `\r`, `\r\n` or `\n\r`. Lone carriage returns become line
/// feeds (byte for byte, so offsets do not move) so that every position this tool reports
/// counts lines as Lua does; the pairs are left as they are.
pub fn normalise_line_breaks(text: String) -> String {
    String::from_utf8(normalise_line_break_bytes(text.into_bytes())).expect("ASCII replaced by ASCII")
}

/// [`normalise_line_breaks`] for bytes that may not be UTF-8.
pub fn normalise_line_break_bytes(mut bytes: Vec<u8>) -> Vec<u8> {
    let lone: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n') && (i == 0 || bytes[i - 1] != b'\n'))
        .collect();
    for i in lone {
        bytes[i] = b'\n';
    }
    bytes
}

/// The text Lua's `load` accepts for a file, with every byte at the same offset: a UTF-8 byte
/// order mark becomes spaces, and a first line starting with `#` (a shebang, which `lua`
/// skips in files but `load` rejects) becomes a comment of the same length.
pub fn prepare(text: &str) -> Cow<'_, str> {
    match prepare_bytes(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        // Only ASCII bytes and whole UTF-8 sequences were replaced by ASCII.
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8(bytes).expect("still UTF-8")),
    }
}

/// [`prepare`] for text that may not be UTF-8, such as a script given to `luabundle run`
/// (the runtime prepares a bundle's stored source text the same way when it loads it).
pub fn prepare_bytes(text: &[u8]) -> Cow<'_, [u8]> {
    luabundle_runtime::chunk_text::loadable(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file discovery hashed but did not read, as a previous build's file table vouched for.
    fn vouched(dir: &std::path::Path, recorded: &[u8], now: &[u8]) -> SourceFile {
        let path = dir.join("m.lua");
        std::fs::write(&path, now).unwrap();
        SourceFile::unread(0, path, "src/m.lua".into(), *blake3::hash(recorded).as_bytes())
    }

    #[test]
    fn a_file_read_after_discovery_must_hold_the_bytes_discovery_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let same = vouched(dir.path(), b"return 1\n", b"return 1\n");
        assert_eq!(same.read_problem(), None);
        assert_eq!(same.text(), "return 1\n");
        let edited = vouched(dir.path(), b"return 1\n", b"return 2\n");
        assert_eq!(edited.read_problem(), Some(&ReadProblem::Changed));
        assert_eq!(edited.text(), "", "the new content must not pass for the old");
    }

    #[test]
    fn a_file_that_became_unreadable_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let gone = SourceFile::unread(0, dir.path().join("gone.lua"), "src/gone.lua".into(), [0; 32]);
        assert!(matches!(gone.read_problem(), Some(ReadProblem::Unreadable(_))), "{:?}", gone.read_problem());
    }

    #[test]
    fn shebang_becomes_a_comment_of_the_same_length() {
        let text = "#!/usr/bin/env lua\nprint(1)\n";
        let prepared = prepare(text);
        assert_eq!(prepared, "--                \nprint(1)\n");
        assert_eq!(prepare("#\nx()"), " \nx()");
    }

    #[test]
    fn bom_is_blanked_and_a_following_shebang_too() {
        let text = "\u{feff}#!lua\nreturn 1";
        assert_eq!(prepare(text), "   --   \nreturn 1");
        assert!(matches!(prepare("return 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn lone_carriage_returns_end_lines_as_in_lua() {
        assert_eq!(normalise_line_breaks("a\rb\r\nc\n\rd".to_string()), "a\nb\r\nc\n\rd");
        assert_eq!(line_col(&normalise_line_breaks("a\rb\rc".to_string()), 4), (3, 1));
    }

    #[test]
    fn odd_bytes_keep_their_offsets_in_the_view() {
        let bytes = b"local s = '\xe9t\xe9' -- \xff\xfe\nreturn '\xc3\xa9'".to_vec();
        let view = utf8_view(&bytes);
        assert_eq!(view.len(), bytes.len());
        assert_eq!(view, "local s = '_t_' -- __\nreturn '\u{e9}'");
        let file = SourceFile::from_bytes(0, "m.lua".into(), "src/m.lua".into(), bytes.clone());
        assert_eq!(file.bytes(), &bytes[..]);
        assert_eq!(file.text(), view);
        assert!(file.has_odd_bytes());
        assert_eq!(file.content_hash, *blake3::hash(&bytes).as_bytes());
        assert_eq!(file.line_col(bytes.len() - 1), (2, 10));
        let plain = SourceFile::from_bytes(0, "m.lua".into(), "src/m.lua".into(), b"return 1".to_vec());
        assert!(!plain.has_odd_bytes());
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "a\nbé c\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        assert_eq!(line_col(text, 6), (2, 4));
        assert_eq!(line_start(text, 2), 2);
        assert_eq!(line_start(text, 9), text.len());
    }
}
