//! One pass per source file, on the worker thread that holds it: compile it with Lua, then
//! find its requires, with the quick token scan when the file uses `require` only in plain
//! forms, and with the full syntax tree otherwise (or when Lua rejected the file, to report
//! its syntax errors precisely). A Luau file that Luau compiles but the parser cannot read
//! (syntax newer than full_moon) is never refused: its requires come from the tokens.

use crate::analysis::compile;
use crate::analysis::quick_scan;
use crate::analysis::requires::{self, RequireSite};
use crate::diagnostic::Diagnostic;
use crate::input::source::{self, SourceFile};
use crate::syntax::parse;

/// What the front end found out about one file.
#[derive(Debug)]
pub struct FileResult {
    /// Its require sites, or its syntax errors.
    pub sites: Result<Vec<RequireSite>, Vec<Diagnostic>>,
    /// Its bytecode, or why Lua refused it (reported only if the file is bundled).
    pub bytecode: Result<Vec<u8>, Diagnostic>,
}

/// Compiles `file` (without debug info if `strip`) on this thread's Lua state and finds its
/// requires.
pub fn process(file: &SourceFile, strip: bool) -> FileResult {
    if let Some(problem) = Diagnostic::of_read_problem(file) {
        return FileResult { sites: Err(vec![problem.clone()]), bytecode: Err(problem) };
    }
    let bytecode = compile::with_worker_lua(|lua| compile::compile_file(lua, file, strip));
    // Luau's syntax (interpolated strings, types) is left to the parser.
    let quick = match &bytecode {
        Ok(_) if !cfg!(feature = "luau") => quick_scan::quick_requires(&source::prepare_bytes(file.bytes())),
        _ => None,
    };
    let sites = match quick {
        Some(sites) => Ok(sites),
        None => match (parse::parse(file), &bytecode) {
            (Ok(ast), _) => Ok(requires::find_requires(&ast, file.bytes())),
            // Lua decides what is wrong: when the parser first complains after the line Lua
            // names (`1_000`, which the parser reads as two tokens), Lua's error is shown.
            (Err(errors), Err(refusal)) if parser_is_late(file, &errors, refusal) => Err(vec![refusal.clone()]),
            // Luau accepted what the parser does not know yet (new syntax): the requires come
            // from the tokens, the plain forms exactly and the rest passed over.
            (Err(_), Ok(_)) if cfg!(feature = "luau") => {
                let text = source::prepare_bytes(file.bytes());
                Ok(quick_scan::quick_requires(&text).unwrap_or_else(|| quick_scan::lenient_requires(&text)))
            }
            (Err(errors), _) => Err(errors),
        },
    };
    FileResult { sites, bytecode }
}

/// Whether the first of `errors` comes after the place Lua's `refusal` names: on a later
/// line, or on the same line after the token Lua names (Lua's place covers a whole line when
/// it names no single token, and then the parser's column is the better one).
fn parser_is_late(file: &SourceFile, errors: &[Diagnostic], refusal: &Diagnostic) -> bool {
    let (Some(parser), Some(lua)) = (errors.first().and_then(|d| d.labels.first()), refusal.labels.first()) else {
        return false;
    };
    let (parser_line, _) = file.line_col(parser.range.start);
    let (lua_line, _) = file.line_col(lua.range.start);
    let text = file.text();
    let line_start = source::line_start(text, lua_line);
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let whole_line = lua.range == (line_start..line_end);
    parser_line > lua_line || (parser_line == lua_line && !whole_line && lua.range.start < parser.range.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_since_discovery_is_an_error_not_compiled_under_its_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lua");
        std::fs::write(&path, "return 2\n").unwrap();
        let file = SourceFile::unread(0, path, "src/m.lua".into(), *blake3::hash(b"return 1\n").as_bytes());
        let result = process(&file, false);
        let code = |d: &Diagnostic| d.code;
        assert_eq!(result.bytecode.as_ref().map_err(code), Err("file-changed-during-build"));
        assert_eq!(
            result.sites.as_ref().map_err(|e| e.iter().map(code).collect::<Vec<_>>()),
            Err(vec!["file-changed-during-build"])
        );
    }
    use crate::analysis::requires::Target;

    fn file(text: &str) -> SourceFile {
        SourceFile::new(0, "m.lua".into(), "src/m.lua".into(), text)
    }

    #[test]
    fn a_file_is_compiled_and_scanned_in_one_pass() {
        let result = process(&file("local a = require('a')\nreturn function() return require 'b' end\n"), false);
        assert!(result.bytecode.is_ok());
        let names: Vec<Target> = result.sites.unwrap().into_iter().map(|s| s.target).collect();
        assert_eq!(names, [Target::Name("a".into()), Target::Name("b".into())]);
    }

    #[test]
    fn syntax_errors_come_from_the_parser_with_their_place() {
        let result = process(&file("local x = = 1\n"), false);
        let errors = result.sites.unwrap_err();
        assert_eq!(errors[0].code, "parse-error");
        assert!(result.bytecode.is_err());
    }

    #[test]
    #[cfg(feature = "luau")]
    fn luau_syntax_the_parser_lags_behind_is_read_from_the_tokens() {
        // Bracketed attributes (`@[native]`) and an interpolated string holding a quote: Luau
        // compiles them, full_moon 3 does not parse the first.
        let text = "local util = require('./util')\n@[native] local function id(x) return x end\nlocal s = `it's {id(1)}`\nreturn function() return require('./later') end\n";
        let source = file(text);
        assert!(parse::parse(&source).is_err(), "the parser reads this now: pick newer syntax for the test");
        let result = process(&source, false);
        assert!(result.bytecode.is_ok());
        let sites = result.sites.expect("never refused");
        let names: Vec<(Target, requires::Timing)> = sites.into_iter().map(|s| (s.target, s.timing)).collect();
        assert_eq!(
            names,
            [
                (Target::Name("./util".into()), requires::Timing::Eager),
                (Target::Name("./later".into()), requires::Timing::Deferred)
            ]
        );
    }
}
