//! A pre-parse guard against nesting deeper than Lua accepts.
//!
//! full_moon recurses once per nested block, function or bracket and overflows even a large
//! thread stack after a few thousand levels, which aborts the process. Lua itself refuses
//! more than [`MAX_NESTING`] levels, so a file nested deeper can never compile: this scan,
//! which keeps no stack of its own, rejects it before the parser sees it.

use std::ops::Range;

use crate::syntax::lexer::{self, Kind, Token, Unfinished};

/// Lua 5.4's `LUAI_MAXCCALLS`: every nesting level costs at least one of these while Lua
/// parses, so deeper files are rejected by Lua anyway.
pub const MAX_NESTING: usize = 200;

/// The levels of the expression being read at one bracket or block level, as Lua's parser
/// nests them: each unary operator holds one until its operand is read, and each `..` or `^`
/// (right associative) holds one until an operator of lower precedence or the end of the
/// expression. Left-associative operators add nothing, however long the chain.
#[derive(Clone, Copy, Default)]
struct Chain {
    unary: usize,
    concat: usize,
    power: usize,
}

impl Chain {
    fn levels(self) -> usize {
        self.unary + self.concat + self.power
    }
}

/// The byte range of the first token that opens a level beyond `MAX_NESTING` (200), if any.
///
/// Levels are brackets (`(`, `{`, `[`), blocks (`function`, `if`, `do`, `repeat`, closed by
/// `end` or `until`), and what expressions nest: runs of unary operators (`- - x`,
/// `not not x`) and chains of the right-associative `..` and `^`. Lua refuses each of these
/// beyond its limit ("C stack overflow", "too many syntax levels"), and the parser would
/// recurse once per level. The expression count is an upper bound of Lua's; strings and
/// comments are skipped.
pub fn too_deep(text: &str) -> Option<Range<usize>> {
    levels(text, MAX_NESTING).err()
}

/// The byte range of the first token at the deepest level of `text` (as [`too_deep`] counts
/// levels), for errors such as Lua 5.4's "C stack overflow", which name no place.
pub fn deepest(text: &str) -> Option<Range<usize>> {
    levels(text, usize::MAX).ok().flatten()
}

/// Walks `text` counting levels: the first token beyond `limit` as an error, or else the
/// first token at the deepest level reached (`None` in a text without tokens).
fn levels(text: &str, limit: usize) -> Result<Option<Range<usize>>, Range<usize>> {
    let mut deepest: Option<(usize, Range<usize>)> = None;
    let bytes = text.as_bytes();
    let mut state = Levels::default();
    for token in lexer::tokens(bytes) {
        let opens_or_deepens = state.read(bytes, &token);
        let depth = state.depth();
        if opens_or_deepens && depth > limit {
            return Err(token.range());
        }
        if deepest.as_ref().is_none_or(|(most, _)| depth > *most) {
            deepest = Some((depth, token.range()));
        }
    }
    Ok(deepest.map(|(_, range)| range))
}

/// The levels open at one point of the text.
#[derive(Default)]
struct Levels {
    /// The chains of the enclosing levels, and the sum of their levels.
    outer: Vec<Chain>,
    outer_levels: usize,
    /// The chain of the expression being read at the innermost level.
    chain: Chain,
    /// Whether the last token ends an operand, so that `-` and `~` are binary.
    after_operand: bool,
}

impl Levels {
    /// The depth: open brackets and blocks, and the chains of every level.
    fn depth(&self) -> usize {
        self.outer.len() + self.outer_levels + self.chain.levels()
    }

    /// Reads one token; returns whether it opened a level or deepened the expression.
    fn read(&mut self, bytes: &[u8], token: &Token) -> bool {
        // What the token does: open a level, close one, or change the expression's chain.
        let mut opens = false;
        let mut deeper = false;
        let mut operand = false;
        match token.kind {
            Kind::String { .. } | Kind::Number | Kind::Dots => operand = true,
            Kind::Word => (opens, deeper, operand) = self.word(&bytes[token.start..token.end]),
            Kind::Symbol(b'(' | b'{' | b'[') => opens = true,
            Kind::Symbol(b')' | b'}' | b']') => {
                self.chain = self.close();
                operand = true;
            }
            Kind::Concat => {
                self.chain = Chain { unary: 0, concat: self.chain.concat + 1, power: 0 };
                deeper = true;
            }
            // A field's `.` leaves the expression as it is.
            Kind::Symbol(b'.') => {}
            Kind::Symbol(b'-' | b'~' | b'#') if !self.after_operand => {
                self.chain.unary += 1;
                deeper = true;
            }
            Kind::Symbol(b'^') => {
                self.chain.power += 1;
                deeper = true;
            }
            Kind::Symbol(b'+' | b'-' | b'*' | b'/' | b'%') => {
                self.chain.unary = 0;
                self.chain.power = 0;
            }
            // Comparisons, bitwise operators, `=`, `,`, `;`, `:`, `::`: nothing of the
            // expression before them stays nested.
            Kind::Symbol(_) | Kind::Label => self.chain = Chain::default(),
        }
        self.after_operand = operand;
        if opens {
            self.outer_levels += self.chain.levels();
            self.outer.push(self.chain);
            self.chain = Chain::default();
        }
        opens || deeper
    }

    /// What a name or keyword does: whether it opens a level, deepens the expression, and
    /// ends an operand.
    fn word(&mut self, word: &[u8]) -> (bool, bool, bool) {
        match word {
            // Statements: the expression before them is over.
            b"if" | b"do" | b"repeat" => {
                self.chain = Chain::default();
                (true, false, false)
            }
            b"function" => {
                // After an operand, `function` starts a statement, not an operand.
                if self.after_operand {
                    self.chain = Chain::default();
                }
                (true, false, false)
            }
            // `function() end` can be an operand.
            b"end" => {
                self.chain = self.close();
                (false, false, true)
            }
            b"until" => {
                self.chain = self.close();
                (false, false, false)
            }
            b"not" => {
                self.chain.unary += 1;
                (false, true, false)
            }
            b"and" | b"or" | b"local" | b"return" | b"then" | b"else" | b"elseif" | b"while" | b"for" | b"in"
            | b"goto" | b"break" => {
                self.chain = Chain::default();
                (false, false, false)
            }
            // Names, `true`, `false`, `nil`.
            _ => (false, false, true),
        }
    }

    /// Leaves a bracket or block: the enclosing level's chain, which goes on after it.
    fn close(&mut self) -> Chain {
        let chain = self.outer.pop().unwrap_or_default();
        self.outer_levels -= chain.levels();
        chain
    }
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
    [Unfinished::AtLineBreak, Unfinished::LikeFullMoon]
        .into_iter()
        .filter_map(|reading| stray_backtick_reading(bytes, reading))
        .min()
}

/// [`stray_backtick`] with one reading of unfinished strings.
fn stray_backtick_reading(bytes: &[u8], unfinished: Unfinished) -> Option<usize> {
    lexer::tokens_reading(bytes, unfinished).find(|t| t.kind == Kind::Symbol(b'`')).map(|t| t.start)
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
    fn unary_runs_and_right_associative_chains_are_levels() {
        for (operator, operand) in [("- ", "1"), ("not ", "x"), ("#", "t"), ("~", "1")] {
            let deep = format!("return {}{operand}", operator.repeat(30_000));
            let at = too_deep(&deep).unwrap_or_else(|| panic!("{operator}"));
            assert_eq!(at.start, "return ".len() + 200 * operator.len(), "{operator}");
            assert_eq!(too_deep(&format!("return {}{operand}", operator.repeat(150))), None, "{operator}");
        }
        for operator in ["..", "^"] {
            let deep = format!("return {}", vec!["x"; 70_000].join(operator));
            assert!(too_deep(&deep).is_some(), "{operator}");
            let shallow = format!("return {}", vec!["x"; 150].join(operator));
            assert_eq!(too_deep(&shallow), None, "{operator}");
        }
    }

    #[test]
    fn left_associative_chains_and_separate_expressions_do_not_add_up() {
        for operator in [" + ", " - ", " * ", " and ", " or ", " == ", " < ", " // "] {
            let long = format!("return {}", vec!["x"; 100_000].join(operator));
            assert_eq!(too_deep(&long), None, "{operator}");
        }
        // Each statement, argument or field starts a fresh expression.
        let statements = "s = s .. a .. b\n".repeat(1000);
        assert_eq!(too_deep(&statements), None);
        let fields = format!("return {{ {} }}", vec!["a .. b .. c"; 1000].join(", "));
        assert_eq!(too_deep(&fields), None);
        let mixed = format!("return {}", vec!["a .. b"; 1000].join(" == "));
        assert_eq!(too_deep(&mixed), None);
        let subtraction = format!("return {}", vec!["- x"; 1000].join(" - "));
        assert_eq!(too_deep(&subtraction), None);
        let calls = "f(- - - x) ".repeat(1000);
        assert_eq!(too_deep(&calls), None);
        // Blocks nested after expressions carry nothing of them.
        let blocks = "s = a .. b if c then ".repeat(150) + &"end ".repeat(150);
        assert_eq!(too_deep(&blocks), None);
    }

    #[test]
    fn the_deepest_place_is_the_first_token_at_the_most_levels() {
        let text = "local a = - 1\nreturn f(- - - x, (- - y))\n";
        assert_eq!(&text[deepest(text).unwrap()], "-");
        assert_eq!(deepest(text).unwrap().start, text.find("- - - x").unwrap() + 4);
        assert_eq!(deepest("   "), None);
    }

    #[test]
    // In Luau a backtick opens an interpolated string, and the parser knows it.
    #[cfg(not(feature = "luau"))]
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
