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
//! The scan relies on the file being valid Lua (it runs after the file compiled): it reads
//! the tokens of [`crate::syntax::lexer`] and tracks block nesting by keywords only.

use crate::analysis::requires::{RequireSite, Target, Timing};
use crate::syntax::lexer::{self, Kind, Token, Tokens};

/// The require sites of `text` (a prepared source file that compiles), or `None` when a use
/// of `require` needs the syntax tree.
pub fn quick_requires(bytes: &[u8]) -> Option<Vec<RequireSite>> {
    scan(bytes, false)
}

/// For a file that compiles but has no syntax tree (Luau syntax newer than the parser): the
/// plain calls among its requires, every one optional (so a missing module is a warning),
/// and the other uses of `require` passed over.
pub fn lenient_requires(bytes: &[u8]) -> Vec<RequireSite> {
    scan(bytes, true).unwrap_or_default()
}

fn scan(bytes: &[u8], lenient: bool) -> Option<Vec<RequireSite>> {
    let mut tokens = lexer::tokens(bytes);
    let mut sites = Vec::new();
    // Open blocks: whether each is a function body, and whether the syntax tree must decide
    // when its requires run (a local function, whose calls may run it at load time or only
    // under `pcall`, or a function passed as an argument, perhaps to `pcall` in place).
    let mut blocks: Vec<(bool, bool)> = Vec::new();
    // The last tokens, most recent first: enough to see `local NAME <const> = function`.
    let mut previous: [Option<Token>; 6] = [None; 6];
    let word = |t: Option<Token>, text: &[u8]| t.is_some_and(|t| t.is_word(bytes, text));
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
                        if environment && !lenient {
                            return None;
                        }
                    } else if word(previous[0], b"goto") {
                        if !lenient {
                            return None;
                        }
                    } else {
                        if blocks.iter().any(|&(_, needs_tree)| needs_tree) && !lenient {
                            return None;
                        }
                        let Some((site, next)) = plain_call(bytes, token, &mut tokens) else {
                            if lenient {
                                previous = [None; 6];
                                continue;
                            }
                            return None;
                        };
                        let timing =
                            if blocks.iter().any(|&(function, _)| function) { Timing::Deferred } else { Timing::Eager };
                        sites.push(RequireSite {
                            target: site.0,
                            range: site.1,
                            timing,
                            optional: lenient,
                            guard: None,
                            luau_path: None,
                        });
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
