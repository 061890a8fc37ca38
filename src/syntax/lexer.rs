//! The one byte lexer for Lua text: it splits source bytes into tokens where Lua's own lexer
//! does (names and keywords, numerals, quoted strings with their escapes, long brackets of
//! any level, comments skipped), without building a tree. The nesting guard, the quick
//! require scan and the Lua 5.5 rewrite read their tokens from it; `literal.rs`
//! decodes the string tokens' values.
//!
//! It never fails: on text that is not Lua (an unfinished string or long bracket) it ends
//! the token where Lua would report the error, so every byte is read once and the scan is
//! linear in the text.

use std::ops::Range;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A name or a keyword (bytes from 0x80 up count as letters, as in LuaJIT).
    Word,
    /// A string literal, quoted or in long brackets.
    String {
        /// Whether its value is exactly the bytes between its delimiters: no escape, no line
        /// break (which a long bracket would normalise or drop).
        plain: bool,
    },
    /// A numeral.
    Number,
    /// `..`
    Concat,
    /// `...`
    Dots,
    /// `::`
    Label,
    /// Any other single byte: brackets, operators (Lua's two-byte operators `==`, `<=`, `//`,
    /// `>>` come as two tokens), and bytes that are not Lua at all (a backtick).
    Symbol(u8),
}

/// A token and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Its first byte.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// For strings, the bytes between the delimiters; empty at `start` for other tokens.
    pub value: (usize, usize),
}

impl Token {
    /// The token's bytes in `bytes`.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Whether the token is the word `word` of `bytes`.
    pub fn is_word(&self, bytes: &[u8], word: &[u8]) -> bool {
        self.kind == Kind::Word && &bytes[self.start..self.end] == word
    }
}

/// How an unfinished quoted string ends (on valid Lua both readings agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unfinished {
    /// As Lua reads it: at the first line break that no escape continues.
    AtLineBreak,
    /// As full_moon's lexer reads it (Lua 5.2 and later): after any escape, a line break no
    /// longer ends the string.
    LikeFullMoon,
}

/// The tokens of `bytes`, without whitespace and comments, strings read as Lua reads them.
pub fn tokens(bytes: &[u8]) -> Tokens<'_> {
    Tokens { bytes, at: 0, unfinished: Unfinished::AtLineBreak }
}

/// The tokens of `bytes`, an unfinished string read as `unfinished` says.
pub(crate) fn tokens_reading(bytes: &[u8], unfinished: Unfinished) -> Tokens<'_> {
    Tokens { bytes, at: 0, unfinished }
}

/// The tokens of a source text, skipping whitespace and comments.
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    bytes: &'a [u8],
    at: usize,
    unfinished: Unfinished,
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let bytes = self.bytes;
        loop {
            let start = self.at;
            let &b = bytes.get(start)?;
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                self.at += 1;
                continue;
            }
            if b == b'-' && bytes.get(start + 1) == Some(&b'-') {
                self.at = comment_end(bytes, start + 2);
                continue;
            }
            let token = self.token_at(start, b);
            self.at = token.end;
            return Some(token);
        }
    }
}

impl Tokens<'_> {
    /// The token that starts with byte `b` at `start` (not whitespace, not a comment).
    fn token_at(&self, start: usize, b: u8) -> Token {
        let bytes = self.bytes;
        let simple = |kind: Kind, end: usize| Token { kind, start, end, value: (start, start) };
        match b {
            b'"' | b'\'' => quoted(bytes, start, self.unfinished),
            // Luau's interpolated strings (a backtick is not Lua elsewhere).
            b'`' if cfg!(feature = "luau") => interpolated(bytes, start),
            b'[' => match long_bracket_level(bytes, start) {
                Some(level) => long_string(bytes, start, level),
                None => simple(Kind::Symbol(b), start + 1),
            },
            b'0'..=b'9' => simple(Kind::Number, number_end(bytes, start)),
            b'.' if bytes.get(start + 1).is_some_and(u8::is_ascii_digit) => {
                simple(Kind::Number, number_end(bytes, start))
            }
            b'.' => match bytes[start..].iter().take_while(|&&c| c == b'.').count() {
                1 => simple(Kind::Symbol(b'.'), start + 1),
                2 => simple(Kind::Concat, start + 2),
                _ => simple(Kind::Dots, start + 3),
            },
            b':' if bytes.get(start + 1) == Some(&b':') => simple(Kind::Label, start + 2),
            b if is_word_byte(b) && !b.is_ascii_digit() => {
                let len = bytes[start..].iter().take_while(|&&c| is_word_byte(c)).count();
                simple(Kind::Word, start + len)
            }
            _ => simple(Kind::Symbol(b), start + 1),
        }
    }
}

/// Whether `b` may be part of a name: ASCII letters, digits, `_`, and every byte from 0x80
/// (LuaJIT's names; elsewhere such bytes appear only in strings and comments).
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The level of a long bracket opening at `at` (`[[` is 0, `[==[` is 2), if one does.
pub(crate) fn long_bracket_level(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let level = bytes[at + 1..].iter().take_while(|&&c| c == b'=').count();
    (bytes.get(at + 1 + level) == Some(&b'[')).then_some(level)
}

/// Where the long bracket of `level` that closes at or after `from` starts and ends; the
/// end of the text for an unfinished one.
fn long_bracket_close(bytes: &[u8], from: usize, level: usize) -> (usize, usize) {
    let mut i = from;
    while let Some(offset) = bytes.get(i..).and_then(|rest| rest.iter().position(|&c| c == b']')) {
        i += offset;
        let equals = bytes[i + 1..].iter().take_while(|&&c| c == b'=').count();
        if equals == level && bytes.get(i + 1 + level) == Some(&b']') {
            return (i, i + level + 2);
        }
        i += 1;
    }
    (bytes.len(), bytes.len())
}

/// The long-bracket string opening at `start` with `level`.
fn long_string(bytes: &[u8], start: usize, level: usize) -> Token {
    let open_end = start + level + 2;
    let (close, end) = long_bracket_close(bytes, open_end, level);
    // Lua drops a line break right after the opening bracket and normalises the others.
    let plain = !bytes[open_end..close].iter().any(|&c| c == b'\n' || c == b'\r');
    Token { kind: Kind::String { plain }, start, end, value: (open_end, close) }
}

/// The end of a comment whose `--` ends just before `from`: a long bracket's close, or the
/// line break that ends the line.
fn comment_end(bytes: &[u8], from: usize) -> usize {
    match long_bracket_level(bytes, from) {
        Some(level) => long_bracket_close(bytes, from + level + 2, level).1,
        None => bytes[from..].iter().position(|&c| c == b'\n' || c == b'\r').map_or(bytes.len(), |i| from + i),
    }
}

/// The quoted string opening at `start`.
fn quoted(bytes: &[u8], start: usize, unfinished: Unfinished) -> Token {
    let quote = bytes[start];
    let mut i = start + 1;
    let mut plain = true;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            c if c == quote => {
                let value = (start + 1, i);
                return Token { kind: Kind::String { plain }, start, end: i + 1, value };
            }
            b'\\' => {
                plain = false;
                escaped = true;
                i = escape_end(bytes, i + 1);
            }
            b'\n' | b'\r' if unfinished == Unfinished::AtLineBreak || !escaped => break,
            _ => i += 1,
        }
    }
    // Unfinished: the string ends where Lua reports it.
    Token { kind: Kind::String { plain: false }, start, end: i, value: (start + 1, i) }
}

/// The Luau interpolated string opening at `start` (`` `a {b} c` ``), as one string token
/// that is never plain: its expressions are skipped (brackets counted, strings in them read).
fn interpolated(bytes: &[u8], start: usize) -> Token {
    let mut i = start + 1;
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i = escape_end(bytes, i + 1),
            b'`' if depth == 0 => {
                return Token { kind: Kind::String { plain: false }, start, end: i + 1, value: (start + 1, i) };
            }
            b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            b'"' | b'\'' if depth > 0 => i = quoted(bytes, i, Unfinished::AtLineBreak).end,
            b'`' => i = interpolated(bytes, i).end,
            _ => i += 1,
        }
    }
    Token { kind: Kind::String { plain: false }, start, end: i, value: (start + 1, i) }
}

/// Where the escape whose `\` ends just before `at` ends: a line break pair (`\r\n`) counts
/// as one, and `\z` takes the whitespace after it, line breaks included.
fn escape_end(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at) {
        None => at,
        Some(&c @ (b'\n' | b'\r')) => at + 1 + line_break_pair(bytes, at + 1, c),
        Some(b'z') => at + 1 + bytes[at + 1..].iter().take_while(|c| c.is_ascii_whitespace()).count(),
        Some(_) => at + 1,
    }
}

/// Length (0 or 1) of the second half of a `\r\n` or `\n\r` pair whose first byte `first`
/// ends just before `at`: Lua reads both pairs as one line break.
pub(crate) fn line_break_pair(bytes: &[u8], at: usize, first: u8) -> usize {
    match bytes.get(at) {
        Some(&next) if (next == b'\n' || next == b'\r') && next != first => 1,
        _ => 0,
    }
}

/// The end of the numeral at `start`, as Lua's lexer reads it: digits, letters, `.`, `_`,
/// and a sign right after an exponent mark (`e` in decimals, `p` in hexadecimals).
fn number_end(bytes: &[u8], start: usize) -> usize {
    let hex = bytes.get(start) == Some(&b'0') && matches!(bytes.get(start + 1), Some(b'x' | b'X'));
    let exponent: &[u8] = if hex { b"pP" } else { b"eE" };
    let mut i = start;
    while i < bytes.len() {
        let c = bytes[i];
        if exponent.contains(&c) && matches!(bytes.get(i + 1), Some(b'+' | b'-')) {
            i += 2;
        } else if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        tokens(text.as_bytes()).map(|t| (t.kind, &text[t.range()])).collect()
    }

    #[test]
    fn tokens_split_where_luas_lexer_splits() {
        assert_eq!(
            kinds("local x = a..b ... t.f ::l:: 1e-3 0x1p+4 .5 #t ~= y // 2"),
            [
                (Kind::Word, "local"),
                (Kind::Word, "x"),
                (Kind::Symbol(b'='), "="),
                (Kind::Word, "a"),
                (Kind::Concat, ".."),
                (Kind::Word, "b"),
                (Kind::Dots, "..."),
                (Kind::Word, "t"),
                (Kind::Symbol(b'.'), "."),
                (Kind::Word, "f"),
                (Kind::Label, "::"),
                (Kind::Word, "l"),
                (Kind::Label, "::"),
                (Kind::Number, "1e-3"),
                (Kind::Number, "0x1p+4"),
                (Kind::Number, ".5"),
                (Kind::Symbol(b'#'), "#"),
                (Kind::Word, "t"),
                (Kind::Symbol(b'~'), "~"),
                (Kind::Symbol(b'='), "="),
                (Kind::Word, "y"),
                (Kind::Symbol(b'/'), "/"),
                (Kind::Symbol(b'/'), "/"),
                (Kind::Number, "2"),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_strings_are_one_token() {
        let text = "-- a 'b\n--[==[ ]] still ]==] x = [[y]] .. [=[\nz]=] .. 'q\\'' .. \"a\\z\n   b\"";
        assert_eq!(
            kinds(text),
            [
                (Kind::Word, "x"),
                (Kind::Symbol(b'='), "="),
                (Kind::String { plain: true }, "[[y]]"),
                (Kind::Concat, ".."),
                (Kind::String { plain: false }, "[=[\nz]=]"),
                (Kind::Concat, ".."),
                (Kind::String { plain: false }, "'q\\''"),
                (Kind::Concat, ".."),
                (Kind::String { plain: false }, "\"a\\z\n   b\""),
            ]
        );
        let long = tokens(b"[==[abc]==]").next().unwrap();
        assert_eq!(long.value, (4, 7));
    }

    #[test]
    fn an_unfinished_string_ends_where_lua_reports_it() {
        assert_eq!(
            kinds("x = 'abc\ny"),
            [(Kind::Word, "x"), (Kind::Symbol(b'='), "="), (Kind::String { plain: false }, "'abc"), (Kind::Word, "y")]
        );
        // An escaped line break continues the string, as a `\r\n` pair.
        assert_eq!(kinds("'a\\\r\nb'"), [(Kind::String { plain: false }, "'a\\\r\nb'")]);
        // full_moon's reading: after an escape, a line break no longer ends it.
        let lenient: Vec<_> = tokens_reading(b"'\\n a\n ` '", Unfinished::LikeFullMoon).collect();
        assert_eq!(lenient.len(), 1);
        assert_eq!(kinds("[[never closed"), [(Kind::String { plain: true }, "[[never closed")]);
        assert_eq!(kinds("--[[never closed"), []);
    }

    #[test]
    fn every_byte_is_read_once_whatever_the_input() {
        for text in [&b"\xff\x00[=[\x80"[..], b"'\\", b"\"\\z", b"--[==", b"..", b"0x", b"[=", b"\\"] {
            let mut last = 0;
            for token in tokens(text) {
                assert!(token.start >= last && token.end > token.start && token.end <= text.len(), "{text:?}");
                last = token.end;
            }
        }
    }
}
