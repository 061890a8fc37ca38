//! The value of Lua string literals: escape sequences and long brackets decoded exactly as
//! Lua 5.4's lexer does, since full_moon hands literals over undecoded. Line breaks are read
//! as [`crate::syntax::lexer`] reads them.

use crate::syntax::lexer::line_break_pair;

/// Decodes the body of a quoted literal (without its quotes). `None` if an escape is invalid.
pub fn decode_escapes(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escape = *bytes.get(i + 1)?;
        i += 2;
        match escape {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' | b'"' | b'\'' => out.push(escape),
            b'\n' | b'\r' => {
                out.push(b'\n');
                i += line_break_pair(bytes, i, escape);
            }
            b'z' => {
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            b'x' => {
                let hex = std::str::from_utf8(bytes.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'u' => i = decode_utf8_escape(bytes, i, &mut out)?,
            b'0'..=b'9' => {
                let digits = bytes[i - 1..].iter().take(3).take_while(|b| b.is_ascii_digit()).count();
                let value: u32 = std::str::from_utf8(&bytes[i - 1..i - 1 + digits]).ok()?.parse().ok()?;
                out.push(u8::try_from(value).ok()?);
                i += digits - 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Decodes `{XXX}` after `\u` at `at`; returns the position after the closing brace.
fn decode_utf8_escape(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let close = at + bytes[at..].iter().position(|&b| b == b'}')?;
    let hex = std::str::from_utf8(&bytes[at + 1..close]).ok()?;
    let value = u32::from_str_radix(hex, 16).ok().filter(|&v| v < 0x8000_0000 && !hex.is_empty())?;
    encode_extended_utf8(value, out);
    Some(close + 1)
}

/// Lua's `luaO_utf8esc`: UTF-8 extended to 31 bits, surrogates allowed.
fn encode_extended_utf8(mut value: u32, out: &mut Vec<u8>) {
    if value < 0x80 {
        out.push(value as u8);
        return;
    }
    let mut tail = Vec::new();
    let mut first_max = 0x3f;
    while value > first_max {
        tail.push(0x80 | (value & 0x3f) as u8);
        value >>= 6;
        first_max >>= 1;
    }
    out.push(((!first_max << 1) | value) as u8);
    out.extend(tail.iter().rev());
}

/// The value of a long-bracket literal's body: a first line break is dropped and every line
/// break sequence reads as `\n`.
pub fn long_bracket_value(bytes: &[u8]) -> Vec<u8> {
    let mut i = match bytes.first() {
        Some(&b) if b == b'\n' || b == b'\r' => 1 + line_break_pair(bytes, 1, b),
        _ => 0,
    };
    let mut out = Vec::with_capacity(bytes.len());
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b == b'\n' || b == b'\r' {
            i += line_break_pair(bytes, i, b);
            out.push(b'\n');
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_escapes() {
        assert_eq!(decode_escapes(r"a\46b".as_bytes()).unwrap(), b"a.b");
        assert_eq!(decode_escapes(r"\x41\u{48}\65".as_bytes()).unwrap(), b"AHA");
        assert_eq!(decode_escapes(r#"tab\tq\"s\'"#.as_bytes()).unwrap(), b"tab\tq\"s'");
        assert_eq!(decode_escapes("a\\z   \n  b".as_bytes()).unwrap(), b"ab");
        assert_eq!(decode_escapes("a\\\r\nb".as_bytes()).unwrap(), b"a\nb");
        assert_eq!(decode_escapes(r"\u{7FF}\u{10FFFF}".as_bytes()).unwrap(), "\u{7ff}\u{10ffff}".as_bytes());
        assert_eq!(decode_escapes(r"\0651".as_bytes()).unwrap(), b"A1");
    }

    #[test]
    fn invalid_escapes_are_refused() {
        assert_eq!(decode_escapes(r"\q".as_bytes()), None);
        assert_eq!(decode_escapes(r"\256".as_bytes()), None);
        assert_eq!(decode_escapes(r"\xZZ".as_bytes()), None);
        assert_eq!(decode_escapes(r"\u{}".as_bytes()), None);
        assert_eq!(decode_escapes("\\".as_bytes()), None);
    }

    #[test]
    fn long_brackets_drop_the_first_newline() {
        assert_eq!(long_bracket_value("\nabc".as_bytes()), b"abc");
        assert_eq!(long_bracket_value("\r\nabc\r\nd".as_bytes()), b"abc\nd");
        assert_eq!(long_bracket_value("abc".as_bytes()), b"abc");
        assert_eq!(long_bracket_value("\n\nx".as_bytes()), b"\nx");
    }
}
