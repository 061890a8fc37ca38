//! A quick require scan over tokens, for files that Lua has already compiled.
//!
//! Building a full syntax tree is most of the cost of a cold build, yet most files use
//! `require` only in its plain forms: `require "name"`, `require 'name'`, `require [[name]]`
//! and `require("name")`. For such a file this scan finds the same sites as
//! [`crate::analysis::requires::find_requires`] on the tree: the same names, byte ranges and timing (a
//! require inside a function body is deferred). Any other use of the word `require` (an
//! alias, a shadowing local or parameter, `pcall(require, ...)`, `_G.require`, a computed
//! or escaped name) makes it give up with `None`, and the caller parses the file.
//!
//! The scan relies on the file being valid Lua (it runs after the file compiled): it tracks
//! block nesting by keywords only, and skips comments, strings and numbers.

use crate::analysis::requires::{RequireSite, Target, Timing};

/// One token of interest: a word (name or keyword), a string, or another symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A name or a keyword.
    Word,
    /// A string literal; `plain` when its value is the text between its delimiters.
    String {
        /// Whether the value is the text between the delimiters.
        plain: bool,
    },
    /// Any other token, by its first byte; `0` for numerals, `~` for `..`, `...` and `::`.
    Symbol(u8),
}

/// A token and where it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    /// What it is.
    pub(crate) kind: Kind,
    /// Its first byte.
    pub(crate) start: usize,
    /// One past its last byte.
    pub(crate) end: usize,
    /// The value's range for strings (between the delimiters).
    pub(crate) value: (usize, usize),
}

/// The tokens of `bytes`, without whitespace and comments.
pub(crate) fn tokens(bytes: &[u8]) -> impl Iterator<Item = Token> + '_ {
    Tokens { bytes, at: 0 }
}

/// The require sites of `text` (a prepared source file that compiles), or `None` when a use
/// of `require` needs the syntax tree.
pub fn quick_requires(bytes: &[u8]) -> Option<Vec<RequireSite>> {
    let mut tokens = Tokens { bytes, at: 0 };
    let mut sites = Vec::new();
    // Open blocks: whether each is a function body, and whether the syntax tree must decide
    // when its requires run (a local function, whose calls may run it at load time or only
    // under `pcall`, or a function passed as an argument, perhaps to `pcall` in place).
    let mut blocks: Vec<(bool, bool)> = Vec::new();
    // The last tokens, most recent first: enough to see `local NAME <const> = function`.
    let mut previous: [Option<Token>; 6] = [None; 6];
    let word =
        |t: Option<Token>, text: &[u8]| t.is_some_and(|t| t.kind == Kind::Word && &bytes[t.start..t.end] == text);
    let symbol = |t: Option<Token>, c: u8| t.is_some_and(|t| t.kind == Kind::Symbol(c));
    let mut pending: Option<Token> = None;
    while let Some(token) = pending.take().or_else(|| tokens.next()) {
        if token.kind == Kind::Word {
            match &bytes[token.start..token.end] {
                b"function" => {
                    let name = |t: Option<Token>| t.is_some_and(|t| t.kind == Kind::Word);
                    let attribute = |at: usize| {
                        symbol(previous[at], b'>') && name(previous[at + 1]) && symbol(previous[at + 2], b'<')
                    };
                    // `local function f`, `local f = function`, `local f <const> = function`
                    // and Lua 5.5's `local <const> f = function`.
                    let local = word(previous[0], b"local")
                        || (symbol(previous[0], b'=')
                            && ((name(previous[1]) && word(previous[2], b"local"))
                                || (attribute(1) && name(previous[4]) && word(previous[5], b"local"))
                                || (name(previous[1]) && attribute(2) && word(previous[5], b"local"))));
                    let argument = symbol(previous[0], b'(') || symbol(previous[0], b',');
                    blocks.push((true, local || argument));
                }
                b"do" | b"if" | b"repeat" => blocks.push((false, false)),
                b"end" | b"until" => {
                    blocks.pop();
                }
                b"require" => {
                    let after_dot = previous[0].is_some_and(|t| matches!(t.kind, Kind::Symbol(b'.' | b':')));
                    if after_dot {
                        // `x.require` is a field, unless x is the environment.
                        let environment = previous[1]
                            .is_some_and(|t| t.kind == Kind::Word && matches!(&bytes[t.start..t.end], b"_G" | b"_ENV"));
                        if environment {
                            return None;
                        }
                    } else if previous[0].is_some_and(|t| t.kind == Kind::Word && &bytes[t.start..t.end] == b"goto") {
                        return None;
                    } else {
                        if blocks.iter().any(|&(_, needs_tree)| needs_tree) {
                            return None;
                        }
                        let (site, next) = plain_call(bytes, token, &mut tokens)?;
                        let timing =
                            if blocks.iter().any(|&(function, _)| function) { Timing::Deferred } else { Timing::Eager };
                        sites.push(RequireSite { target: site.0, range: site.1, timing, optional: false, guard: None });
                        previous = [None; 6];
                        pending = next;
                        continue;
                    }
                }
                _ => {}
            }
        }
        previous.rotate_right(1);
        previous[0] = Some(token);
    }
    Some(sites)
}

/// A site's target and range.
type Site = (Target, std::ops::Range<usize>);

/// The plain call that starts at the `require` word: its target and range, and the token
/// after it (already read). `None` for anything else.
fn plain_call(bytes: &[u8], word: Token, tokens: &mut Tokens<'_>) -> Option<(Site, Option<Token>)> {
    let first = tokens.next()?;
    let (literal, end) = match first.kind {
        Kind::String { plain: true } => (first, first.end),
        Kind::Symbol(b'(') => {
            let literal = tokens.next().filter(|t| t.kind == Kind::String { plain: true })?;
            let close = tokens.next().filter(|t| t.kind == Kind::Symbol(b')'))?;
            (literal, close.end)
        }
        _ => return None,
    };
    let name = std::str::from_utf8(&bytes[literal.value.0..literal.value.1]).ok()?;
    Some(((Target::Name(name.to_string()), word.start..end), tokens.next()))
}

/// The tokens of a source text, skipping whitespace and comments.
struct Tokens<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let bytes = self.bytes;
        loop {
            let start = self.at;
            let &b = bytes.get(start)?;
            let symbol = |at: &mut usize, len: usize| {
                *at = start + len;
                Some(Token { kind: Kind::Symbol(b), start, end: start + len, value: (start, start) })
            };
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.at += 1,
                b'-' if bytes.get(start + 1) == Some(&b'-') => {
                    self.at = match long_bracket_level(bytes, start + 2) {
                        Some(level) => long_end(bytes, start + 2 + level + 2, level).map_or(bytes.len(), |(_, e)| e),
                        None => bytes[start..]
                            .iter()
                            .position(|&c| c == b'\n' || c == b'\r')
                            .map_or(bytes.len(), |i| start + i),
                    };
                }
                b'"' | b'\'' => {
                    let mut i = start + 1;
                    let mut plain = true;
                    while i < bytes.len() && bytes[i] != b {
                        if bytes[i] == b'\\' {
                            plain = false;
                            i += 1;
                        } else if bytes[i] == b'\n' || bytes[i] == b'\r' {
                            plain = false;
                        }
                        i += 1;
                    }
                    let end = (i + 1).min(bytes.len());
                    self.at = end;
                    let value = (start + 1, i.min(bytes.len()));
                    return Some(Token { kind: Kind::String { plain }, start, end, value });
                }
                b'[' => match long_bracket_level(bytes, start) {
                    Some(level) => {
                        let open_end = start + level + 2;
                        let (close, end) = long_end(bytes, open_end, level).unwrap_or((bytes.len(), bytes.len()));
                        self.at = end;
                        // Lua drops a line break right after the opening bracket: such
                        // values are left to the parser.
                        let value = &bytes[open_end..close];
                        let plain = !value.iter().any(|&c| c == b'\n' || c == b'\r');
                        return Some(Token { kind: Kind::String { plain }, start, end, value: (open_end, close) });
                    }
                    None => return symbol(&mut self.at, 1),
                },
                b'0'..=b'9' => {
                    self.at = number_end(bytes, start);
                    return Some(Token { kind: Kind::Symbol(b'0'), start, end: self.at, value: (start, start) });
                }
                b'.' if bytes.get(start + 1).is_some_and(u8::is_ascii_digit) => {
                    self.at = number_end(bytes, start);
                    return Some(Token { kind: Kind::Symbol(b'0'), start, end: self.at, value: (start, start) });
                }
                b'.' => {
                    // `.`, `..` and `...` are different tokens; only a lone `.` selects a field.
                    let len = bytes[start..].iter().take_while(|&&c| c == b'.').count().min(3);
                    let kind = if len == 1 { Kind::Symbol(b'.') } else { Kind::Symbol(b'~') };
                    self.at = start + len;
                    return Some(Token { kind, start, end: self.at, value: (start, start) });
                }
                b':' if bytes.get(start + 1) == Some(&b':') => {
                    self.at = start + 2;
                    return Some(Token { kind: Kind::Symbol(b'~'), start, end: self.at, value: (start, start) });
                }
                b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                    let len = bytes[start..]
                        .iter()
                        .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
                        .count();
                    self.at = start + len;
                    return Some(Token { kind: Kind::Word, start, end: self.at, value: (start, start) });
                }
                _ => return symbol(&mut self.at, 1),
            }
        }
    }
}

/// The level of a long bracket opening at `at` (`[[` is 0, `[==[` is 2), if one does.
fn long_bracket_level(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let level = bytes[at + 1..].iter().take_while(|&&c| c == b'=').count();
    (bytes.get(at + 1 + level) == Some(&b'[')).then_some(level)
}

/// Where the long bracket of `level` that closes after `from` starts and ends.
fn long_end(bytes: &[u8], from: usize, level: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] == b']' {
            let equals = bytes[i + 1..].iter().take_while(|&&c| c == b'=').count();
            if equals == level && bytes.get(i + 1 + level) == Some(&b']') {
                return Some((i, i + level + 2));
            }
        }
        i += 1;
    }
    None
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

    fn names(text: &str) -> Option<Vec<(String, Timing, String)>> {
        quick_requires(text.as_bytes()).map(|sites| {
            sites
                .into_iter()
                .map(|s| match s.target {
                    Target::Name(n) => (n, s.timing, text[s.range].to_string()),
                    other => panic!("{other:?}"),
                })
                .collect()
        })
    }

    #[test]
    fn plain_forms_are_found_with_their_timing_and_range() {
        let text = "local a = require 'a'\nlocal b = require(\"b\").f\nfunction M.later()\n  return require [[c]]\nend\nif x then require ( 'd' ) end\n";
        assert_eq!(
            names(text).unwrap(),
            [
                ("a".into(), Timing::Eager, "require 'a'".into()),
                ("b".into(), Timing::Eager, "require(\"b\")".into()),
                ("c".into(), Timing::Deferred, "require [[c]]".into()),
                ("d".into(), Timing::Eager, "require ( 'd' )".into()),
            ]
        );
    }

    #[test]
    fn words_in_strings_comments_and_fields_are_not_requires() {
        let text = "-- require 'x'\n--[==[ require('y') ]==]\nlocal s = \"require 'z'\" .. [[require 'w']]\nlocal t = obj.require\nobj:require('v')\n";
        assert_eq!(names(text).unwrap(), []);
    }

    #[test]
    fn other_uses_of_require_need_the_parser() {
        for text in [
            "local require = require",
            "local ok = pcall(require, 'x')",
            "return _G.require('x')",
            "return require('a' .. 'b')",
            "return require('\\97')",
            "return require(name)",
            "return require { 'x' }",
            "local function f(require) return require('x') end",
            "return require [[\nx]]",
            // When these run depends on how the function is called.
            "local function f() return require 'x' end",
            "local f = function() return require 'x' end",
            "local f <const> = function() return require 'x' end",
            "local <const> f = function() return require 'x' end",
            "pcall(function() return require 'x' end)",
            "run(1, function() return require 'x' end)",
        ] {
            assert!(quick_requires(text.as_bytes()).is_none(), "{text}");
        }
        // A name that is not UTF-8 gets the parser's diagnostic.
        assert!(quick_requires(b"return require '\xe9'").is_none());
    }

    #[test]
    fn blocks_and_numbers_keep_their_nesting() {
        let text = "for i = 1, 0x1p+4 do end\nwhile false do end\nrepeat until true\nlocal n = 1e-3 + .5\nlocal f = function() end\nreturn require 'after'\n";
        assert_eq!(names(text).unwrap(), [("after".into(), Timing::Eager, "require 'after'".into())]);
    }
}
