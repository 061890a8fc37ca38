//! A pre-parse guard against nesting deeper than Lua accepts.
//!
//! full_moon recurses once per nested block, function or bracket and overflows even a large
//! thread stack after a few thousand levels, which aborts the process. Lua itself refuses
//! more than [`MAX_NESTING`] levels, so a file nested deeper can never compile: this scan,
//! which keeps no stack of its own, rejects it before the parser sees it.

use std::ops::Range;

/// Lua 5.4's `LUAI_MAXCCALLS`: every nesting level costs at least one of these while Lua
/// parses, so deeper files are rejected by Lua anyway.
pub const MAX_NESTING: usize = 200;

/// The byte range of the first token that opens a level beyond [`MAX_NESTING`], if any.
///
/// Levels are brackets (`(`, `{`, `[`) and blocks (`function`, `if`, `do`, `repeat`, closed by
/// `end` or `until`). Strings and comments are skipped.
pub fn too_deep(text: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let opens = match b {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = skip_comment(bytes, i + 2);
                continue;
            }
            b'"' | b'\'' => {
                i = skip_quoted(bytes, i + 1, b);
                continue;
            }
            b'[' => match long_bracket_level(bytes, i) {
                Some(level) => {
                    i = skip_long(bytes, i + level + 2, level);
                    continue;
                }
                None => true,
            },
            b'(' | b'{' => true,
            b')' | b'}' | b']' => {
                depth = depth.saturating_sub(1);
                false
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = i + bytes[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                let word = &bytes[i..end];
                i = end;
                match word {
                    b"function" | b"if" | b"do" | b"repeat" => {
                        depth += 1;
                        if depth > MAX_NESTING {
                            return Some(start..end);
                        }
                    }
                    b"end" | b"until" => depth = depth.saturating_sub(1),
                    _ => {}
                }
                continue;
            }
            b if b.is_ascii_digit() => {
                i += bytes[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'.').count();
                continue;
            }
            _ => false,
        };
        i += 1;
        if opens {
            depth += 1;
            if depth > MAX_NESTING {
                return Some(start..i);
            }
        }
    }
    None
}

/// Offset of the first backtick outside strings and comments. Lua never accepts one there,
/// and full_moon's lexer panics on it (it is a string quote only in CfxLua).
///
/// In a file with an unterminated string, where such a string ends is a matter of
/// interpretation: Lua ends it at the line break, full_moon's lexer (for Lua 5.2 and later)
/// reads on past a line break once the string had any escape. Both readings are tried, so
/// that no backtick full_moon would see goes unnoticed; on valid Lua they agree.
pub fn stray_backtick(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    [false, true].into_iter().filter_map(|lenient| stray_backtick_reading(bytes, lenient)).min()
}

/// [`stray_backtick`] with one reading of unterminated strings.
fn stray_backtick_reading(bytes: &[u8], lenient: bool) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_comment(bytes, i + 2),
            b'"' | b'\'' if lenient => i = skip_quoted_leniently(bytes, i + 1, bytes[i]),
            b'"' | b'\'' => i = skip_quoted(bytes, i + 1, bytes[i]),
            b'[' => match long_bracket_level(bytes, i) {
                Some(level) => i = skip_long(bytes, i + level + 2, level),
                None => i += 1,
            },
            b'`' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `[==[` at `at`: its level (number of `=`), or `None` for a plain `[`.
fn long_bracket_level(bytes: &[u8], at: usize) -> Option<usize> {
    let level = bytes[at + 1..].iter().take_while(|&&c| c == b'=').count();
    (bytes.get(at + 1 + level) == Some(&b'[')).then_some(level)
}

/// Skips a long string body that closes with `]` + `level` × `=` + `]`.
fn skip_long(bytes: &[u8], mut i: usize, level: usize) -> usize {
    while i < bytes.len() {
        if bytes[i] == b']' {
            let equals = bytes[i + 1..].iter().take_while(|&&c| c == b'=').count();
            if equals == level && bytes.get(i + 1 + equals) == Some(&b']') {
                return i + equals + 2;
            }
        }
        i += 1;
    }
    bytes.len()
}

/// Skips a comment whose `--` ends just before `i`.
fn skip_comment(bytes: &[u8], i: usize) -> usize {
    if bytes.get(i) == Some(&b'[') {
        if let Some(level) = long_bracket_level(bytes, i) {
            return skip_long(bytes, i + level + 2, level);
        }
    }
    i + bytes[i..].iter().take_while(|&&c| c != b'\n').count()
}

/// Skips a quoted string whose opening quote is just before `i`.
/// Skips a quoted string as full_moon's lexer does: after any escape, a line break no longer
/// ends it.
fn skip_quoted_leniently(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'\n' | b'\r' if !escaped => return i,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_code_passes() {
        let code = "local function f(t) if t[1] then return {t} end repeat x() until y end\n\
                    for i = 1, 3 do while z do end end";
        assert_eq!(too_deep(code), None);
    }

    #[test]
    fn deep_brackets_and_blocks_are_caught_at_the_first_level_too_many() {
        let parens = format!("return {}1{}", "(".repeat(300), ")".repeat(300));
        assert_eq!(too_deep(&parens), Some(207..208));
        let blocks = "if x then ".repeat(250) + &"end ".repeat(250);
        let at = too_deep(&blocks).unwrap();
        assert_eq!(&blocks[at.clone()], "if");
        assert_eq!(at.start, 200 * "if x then ".len());
    }

    #[test]
    fn sequences_at_the_limit_and_siblings_pass() {
        let at_limit = format!("return {}{}", "{".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert_eq!(too_deep(&at_limit), None);
        let siblings = "do end ".repeat(10_000);
        assert_eq!(too_deep(&siblings), None);
    }

    #[test]
    fn backticks_count_only_outside_strings_and_comments() {
        assert_eq!(stray_backtick("return { enco`e = 1 }"), Some(13));
        assert_eq!(stray_backtick("local s = '`' -- `\nlocal t = [[`]]"), None);
        // An unterminated string with an escape: full_moon reads on past the line break,
        // so the backtick that Lua would see inside the next string is outside one for it.
        let text = "s = \"\\\" x\nf(\"`\")\n";
        assert_eq!(stray_backtick(text), text.find('`'));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let noise = "(".repeat(500);
        let code = format!("local a = '{noise}' local b = \"{noise}\\\"\" local c = [==[{noise}]==]\n--[[{noise}]]\n-- {noise}\nreturn a");
        assert_eq!(too_deep(&code), None);
    }
}
