//! Lua 5.5 syntax as Lua 5.4 syntax, for the analysis only.
//!
//! full_moon parses no Lua 5.5, and 5.5 adds little: `global` declarations (`global x, y`,
//! `global <const> *`, `global x <const> = 1`, `global function f() end`), an attribute in
//! front of a `local` list (`local <const> a, b = 1, 2`), and a name for the vararg
//! parameter (`function f(...args)`). [`as_lua54`] blanks the parts of those that 5.4 lacks
//! and keeps everything else, byte for byte, so every offset and line of the result is the
//! file's own: a declaration with values becomes the assignment it performs, one without
//! values (only names) disappears, and a named vararg becomes `...`. Lua compiles the real
//! text; the analysis needs only the calls and functions, which stay where they are.

use crate::syntax::lexer::{self, Kind, Token};

/// Lua's reserved words: none of them is a name.
const KEYWORDS: &[&[u8]] = &[
    b"and",
    b"break",
    b"do",
    b"else",
    b"elseif",
    b"end",
    b"false",
    b"for",
    b"function",
    b"goto",
    b"if",
    b"in",
    b"local",
    b"nil",
    b"not",
    b"or",
    b"repeat",
    b"return",
    b"then",
    b"true",
    b"until",
    b"while",
];

/// Keywords after which a statement starts (they end a statement or open a block).
const STATEMENT_BEFORE: &[&[u8]] = &[b"do", b"then", b"else", b"repeat", b"end", b"break", b"true", b"false", b"nil"];

/// `text` with its Lua 5.5 declarations rewritten as Lua 5.4, or `None` when it has none.
pub fn as_lua54(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let tokens: Vec<Token> = lexer::tokens(bytes).collect();
    let mut blank: Vec<(usize, usize)> = Vec::new();
    let word = |i: usize| tokens.get(i).filter(|t| t.kind == Kind::Word).map(|t| &bytes[t.start..t.end]);
    let name = |i: usize| word(i).filter(|w| !KEYWORDS.contains(w)).is_some();
    let symbol = |i: usize, c: u8| tokens.get(i).is_some_and(|t| t.kind == Kind::Symbol(c));
    let text_of = |i: usize| tokens.get(i).map(|t| &bytes[t.start..t.end]);
    // `< NAME >`: an attribute, three tokens long.
    let attribute = |i: usize| symbol(i, b'<') && word(i + 1).is_some() && symbol(i + 2, b'>');
    let mut i = 0;
    while i < tokens.len() {
        match word(i) {
            Some(b"global") if statement_starts(&tokens, bytes, i) => {
                if word(i + 1) == Some(b"function") {
                    blank.push((i, i + 1));
                    i += 1;
                    continue;
                }
                let declares = attribute(i + 1) || symbol(i + 1, b'*') || name(i + 1);
                if !declares {
                    i += 1;
                    continue;
                }
                // `global [attrib] *` or `global [attrib] NAME [attrib] {, NAME [attrib]} [= explist]`
                let mut j = i + 1;
                let mut names = Vec::new();
                let mut attributes = vec![(i, i + 1)];
                if attribute(j) {
                    attributes.push((j, j + 3));
                    j += 3;
                }
                if symbol(j, b'*') {
                    blank.extend(attributes);
                    blank.push((j, j + 1));
                    i = j + 1;
                    continue;
                }
                while name(j) {
                    names.push((j, j + 1));
                    j += 1;
                    if attribute(j) {
                        attributes.push((j, j + 3));
                        j += 3;
                    }
                    if symbol(j, b',') && name(j + 1) {
                        names.push((j, j + 1));
                        j += 1;
                    } else {
                        break;
                    }
                }
                blank.extend(attributes);
                if !symbol(j, b'=') {
                    // Only names: nothing runs.
                    blank.extend(names);
                }
                i = j;
            }
            Some(b"local") if attribute(i + 1) => {
                blank.push((i + 1, i + 4));
                i += 4;
            }
            _ if text_of(i) == Some(b"...") && name(i + 1) && symbol(i + 2, b')') => {
                blank.push((i + 1, i + 2));
                i += 2;
            }
            _ => i += 1,
        }
    }
    if blank.is_empty() {
        return None;
    }
    let mut out = bytes.to_vec();
    for (first, last) in blank {
        for token in &tokens[first..last] {
            // Tokens here are ASCII names and symbols: spaces keep the text UTF-8.
            out[token.start..token.end].fill(b' ');
        }
    }
    Some(String::from_utf8(out).expect("only ASCII tokens were blanked"))
}

/// Whether a statement can start at token `i`, judged by the token before it: Lua reads
/// `global` as a declaration only where a statement starts, never inside an expression.
fn statement_starts(tokens: &[Token], bytes: &[u8], i: usize) -> bool {
    let Some(before) = i.checked_sub(1).map(|b| tokens[b]) else {
        return true;
    };
    let text = &bytes[before.start..before.end];
    match before.kind {
        Kind::Word => !KEYWORDS.contains(&text) || STATEMENT_BEFORE.contains(&text),
        Kind::String { .. } => true,
        // A numeral, `...`, or the `::` that closes a label.
        Kind::Number | Kind::Dots | Kind::Label => true,
        Kind::Concat => false,
        Kind::Symbol(c) => matches!(c, b')' | b']' | b'}' | b';'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_become_what_they_do_in_place() {
        for (lua55, lua54) in [
            ("global x", "        "),
            ("global x, y", "           "),
            ("global *", "        "),
            ("global <const> *", "                "),
            ("global x = require 'a'", "       x = require 'a'"),
            ("global x <const>, y = 1, f()", "       x        , y = 1, f()"),
            ("global <const> x, y = g()", "               x, y = g()"),
            ("global function f() return require 'b' end", "       function f() return require 'b' end"),
            ("local <const> a, b = 1, 2", "local         a, b = 1, 2"),
            ("local function f(a, ...rest) return rest end", "local function f(a, ...    ) return rest end"),
            ("do global\nx = 1 end", "do       \nx = 1 end"),
        ] {
            assert_eq!(as_lua54(lua55).as_deref(), Some(lua54), "{lua55}");
        }
    }

    #[test]
    fn global_as_a_name_stays() {
        for text in [
            "global = 1",
            "global.x = 1",
            "global(x)",
            "local global = 1",
            "return global * 2",
            "local t = { global = 1 }",
            "x = a.global",
            "local y = x < global",
            "f(global, x)",
            "::global:: goto global",
            "local function global() end",
            "local s = 'global x' -- global y",
            "local x = ... y = 1",
            "local x <const> = 1",
        ] {
            assert_eq!(as_lua54(text), None, "{text}");
        }
    }

    #[test]
    fn declarations_after_a_statement_on_the_same_line_are_found() {
        assert_eq!(as_lua54("x = f() global y").as_deref(), Some("x = f()         "));
        assert_eq!(as_lua54("x = 'a' global y = 1").as_deref(), Some("x = 'a'        y = 1"));
        assert_eq!(as_lua54("if c then global y end").as_deref(), Some("if c then          end"));
        assert_eq!(as_lua54("x = ... global *").as_deref(), Some("x = ...         "));
    }
}
