//! Source text as Lua sees it: a file's name, its text, and positions inside it.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

/// Index of a file in the build's list of source files.
pub type FileId = usize;

/// One `.lua` file found under a root.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Position in the build's file list.
    pub id: FileId,
    /// The file as found on disk.
    pub disk_path: PathBuf,
    /// Path relative to its root's parent, with `/` separators, e.g. `src/app/util.lua`.
    /// Used for chunk names and in diagnostics, so bundles hold no absolute paths.
    pub display_path: String,
    /// The file's text, as read.
    pub text: Arc<str>,
}

impl SourceFile {
    /// One-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
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
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Byte offset of the start of one-based `line` in `text` (its end if `line` is past it).
pub fn line_start(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n')
        .nth(line - 2)
        .map_or(text.len(), |(i, _)| i + 1)
}

/// The text Lua's `load` accepts for a file, with every byte at the same offset: a UTF-8 byte
/// order mark becomes spaces, and a first line starting with `#` (a shebang, which `lua`
/// skips in files but `load` rejects) becomes a comment of the same length.
pub fn prepare(text: &str) -> Cow<'_, str> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = &text[bom..];
    if bom == 0 && !rest.starts_with('#') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&" ".repeat(bom));
    if rest.starts_with('#') {
        let line_len = rest.find(['\n', '\r']).unwrap_or(rest.len());
        out.push_str(if line_len >= 2 { "--" } else { " " });
        out.push_str(&" ".repeat(line_len.saturating_sub(2)));
        out.push_str(&rest[line_len..]);
    } else {
        out.push_str(rest);
    }
    debug_assert_eq!(out.len(), text.len());
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "a\nbé c\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        assert_eq!(line_col(text, 6), (2, 4));
        assert_eq!(line_start(text, 2), 2);
        assert_eq!(line_start(text, 9), text.len());
    }
}
