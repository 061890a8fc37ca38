//! Parsing: full_moon syntax trees for the chosen Lua flavour, with every syntax error of a
//! file as a diagnostic.
//!
//! full_moon recurses once per nesting level, so callers parse on threads with large stacks
//! (see [`PARSE_STACK_SIZE`]).

use crate::diagnostic::{Code, Diagnostic};
use crate::flavour;
use crate::input::source::{self, SourceFile};
use crate::syntax::nesting;
use full_moon::ast::Ast;

/// Stack size for threads that parse, visit and drop syntax trees.
pub const PARSE_STACK_SIZE: usize = 64 << 20;

/// Parses `file` (after [`source::prepare`], so shebang lines and byte order marks behave as
/// in `lua`). Returns the tree, or every syntax error found.
///
/// # Errors
/// One `parse-error` diagnostic per syntax error full_moon reports.
pub fn parse(file: &SourceFile) -> Result<Ast, Vec<Diagnostic>> {
    let text = source::prepare(file.text());
    #[cfg(feature = "lua55")]
    let text = match crate::syntax::lua55::as_lua54(&text) {
        Some(rewritten) => std::borrow::Cow::Owned(rewritten),
        None => text,
    };
    if let Some(range) = nesting::too_deep(&text) {
        return Err(vec![Diagnostic::error(
            Code::NestingTooDeep,
            format!("nesting deeper than Lua allows ({} levels)", nesting::MAX_NESTING),
        )
        .with_primary(file.id, range, "this level is one too many")
        .with_note(
            "Lua refuses to compile code nested this deep; split it into functions or tables built step by step",
        )]);
    }
    if let Some(at) = nesting::stray_backtick(&text).filter(|_| !cfg!(feature = "luau")) {
        return Err(vec![Diagnostic::error(Code::ParseError, "syntax error: unexpected character `").with_primary(
            file.id,
            at..at + 1,
            "Lua has no backtick",
        )]);
    }
    // Last line of defence: a parser panic becomes a diagnostic, not a crashed build.
    let parsed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| full_moon::parse_fallible(&text, flavour::syntax())));
    let Ok(result) = parsed else {
        return Err(vec![Diagnostic::error(
            Code::ParseError,
            format!("{}: the parser failed on this file", file.display_path),
        )]);
    };
    if result.errors().is_empty() {
        return Ok(result.into_ast());
    }
    Err(result
        .errors()
        .iter()
        .map(|error| {
            let (start, end) = error.range();
            let start = start.bytes().min(file.text().len());
            let end = end.bytes().clamp(start, file.text().len());
            let message = readable(&error.error_message());
            Diagnostic::error(Code::ParseError, format!("syntax error: {message}")).with_primary(
                file.id,
                start..end,
                message,
            )
        })
        .collect())
}

/// full_moon's message without its own `(line:col to line:col)` suffix (the diagnostic
/// shows the place), and with control characters escaped so they cannot garble a terminal.
fn readable(message: &str) -> String {
    let trimmed = match message.rfind(" (") {
        Some(at) if message.ends_with(')') && message[at..].contains(" to ") => &message[..at],
        _ => message,
    };
    trimmed.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new(0, "t.lua".into(), "src/t.lua".into(), text)
    }

    #[test]
    fn messages_lose_their_range_and_control_characters() {
        assert_eq!(readable("unexpected character \0 (1:10 to 1:11)"), "unexpected character \\u{0}");
        assert_eq!(readable("expected `end`"), "expected `end`");
    }

    #[test]
    fn shebang_lines_parse() {
        assert!(parse(&file("#!/usr/bin/lua\nreturn 1")).is_ok());
    }

    #[test]
    #[cfg(feature = "lua54")]
    fn lua54_syntax_parses() {
        assert!(parse(&file("local x <const> = 1 // 2\nreturn x")).is_ok());
    }

    #[test]
    #[cfg(any(feature = "lua51", feature = "luajit"))]
    fn lua54_only_syntax_is_a_parse_error() {
        assert!(parse(&file("local x <const> = 1\nreturn x")).is_err());
        assert!(parse(&file("return 7 // 2")).is_err());
    }

    #[test]
    fn syntax_errors_point_at_their_position() {
        let errors = parse(&file("local x = 1\nlocal = 2\n")).unwrap_err();
        assert!(!errors.is_empty());
        let label = &errors[0].labels[0];
        assert_eq!(source::line_col("local x = 1\nlocal = 2\n", label.range.start).0, 2);
        assert_eq!(errors[0].code, "parse-error");
    }
}
