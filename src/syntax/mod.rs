//! Reading Lua text: the byte lexer, the nesting guard that keeps the parser's stack safe,
//! string literal decoding, the Lua 5.5 rewrite to 5.4 syntax and the full_moon syntax tree.

pub(crate) mod lexer;
pub(crate) mod literal;
// Compiled and tested in every flavour; only the Lua 5.5 flavour parses through it.
#[cfg_attr(not(feature = "lua55"), allow(dead_code))]
pub(crate) mod lua55;
pub mod nesting;
pub mod parse;
