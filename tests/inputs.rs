//! Awkward and hostile source input: every case gives a clean result or a clear diagnostic
//! (snapshotted), never a panic, a crash or a silent change of meaning.

use luabundle::{Builder, Error};

use crate::support::fixture;

/// `check` on one root, rendered: diagnostics or "ok".
fn report(root: &std::path::Path) -> String {
    match Builder::new().root(root).no_cache(true).check() {
        Ok(report) => format!("{}ok: {} modules\n", report.warnings.render(), report.modules),
        Err(Error::Input(diagnostics)) => diagnostics.render(),
        Err(other) => format!("error: {other}\n"),
    }
}

fn case(name: &str) -> String {
    report(&fixture("inputs").join(name).join("src"))
}

#[test]
fn input_cases_give_their_exact_result() {
    for name in [
        "empty",
        "comment_only",
        "bom",
        "bom_shebang",
        "shebang_line2",
        "crlf",
        "lone_cr",
        "latin1",
        "nul",
        "nul_outside_string",
        "bytecode",
    ] {
        // Luau's lexer refuses a raw NUL byte inside a string literal.
        // Luau reads NUL bytes where Lua 5.x refuses them: what Luau compiles is accepted.
        let suffix =
            if cfg!(feature = "luau") && (name == "nul" || name == "nul_outside_string") { "_luau" } else { "" };
        insta::assert_snapshot!(format!("input_{name}{suffix}"), case(name));
    }
}

#[test]
fn accepted_inputs_run_as_lua_runs_them() -> mlua::Result<()> {
    let mut cases = vec![("bom", "true"), ("bom_shebang", "and shebang"), ("empty", "true")];
    if !cfg!(feature = "luau") {
        cases.push(("nul", "a\0b"));
    }
    for (name, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("b.bundle");
        Builder::new()
            .root(fixture("inputs").join(name).join("src"))
            .output(&output)
            .no_cache(true)
            .try_build()
            .unwrap();
        let lua = mlua::Lua::new();
        luabundle_runtime::Bundle::open(&output).unwrap().install(&lua).unwrap();
        let value: mlua::Value = lua
            .load("local m = require('m') if type(m) == 'table' then local _, v = next(m) return v end return m")
            .eval()?;
        assert_eq!(value.to_string()?, expected, "{name}");
    }
    Ok(())
}

#[test]
fn errors_after_line_breaks_of_every_kind_have_lua_line_numbers() {
    // Line 3 in both: CRLF pairs and lone CRs each end one line, as in Lua.
    assert!(case("crlf").contains("src/m.lua:3:7"), "{}", case("crlf"));
    assert!(case("lone_cr").contains("src/m.lua:2:7"), "{}", case("lone_cr"));
}

#[test]
fn file_system_oddities_are_skipped_with_a_warning_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/ok.lua"), "return 1").unwrap();
    // A link back to an ancestor (a loop if followed), and a link to a file outside the root.
    std::os::unix::fs::symlink(&src, src.join("sub/loop")).unwrap();
    std::fs::write(dir.path().join("outside.lua"), "return 'outside'").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.lua"), src.join("linked.lua")).unwrap();
    // A directory named like a module file, a FIFO, a file over the size limit (sparse).
    std::fs::create_dir_all(src.join("dir.lua")).unwrap();
    let fifo = src.join("pipe.lua");
    let fifo_made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    std::fs::File::create(src.join("huge.lua")).unwrap().set_len(100 << 20).unwrap();
    let text = report(&src);
    assert!(text.contains("warning[link-not-followed]") && text.contains("sub/loop"), "{text}");
    assert!(text.contains("error[file-too-large]: src/huge.lua is 104857600 bytes"), "{text}");
    if fifo_made {
        assert!(text.contains("warning[not-a-file]") && text.contains("pipe.lua"), "{text}");
    }
    // Without the oversized file, the rest builds: the outside link is a module, the
    // directory named dir.lua is just a directory.
    std::fs::remove_file(src.join("huge.lua")).unwrap();
    let report = Builder::new().root(&src).no_cache(true).check().unwrap();
    assert_eq!(report.modules, 2, "{}", report.warnings.render());
}

#[test]
fn a_non_utf8_file_name_is_skipped_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.lua");
    std::fs::write(dir.path().join(name), "return 1").unwrap();
    std::fs::write(dir.path().join("fine.lua"), "return 2").unwrap();
    let report = Builder::new().root(dir.path()).no_cache(true).check().unwrap();
    assert_eq!(report.modules, 1);
    let text = report.warnings.render();
    assert!(text.contains("warning[unrequirable-file]") && text.contains("not valid UTF-8"), "{text}");
}

#[test]
fn too_many_upvalues_or_locals_are_compile_errors_with_a_line() {
    let names = |from: usize, to: usize| (from..to).map(|i| format!("v{i}")).collect::<Vec<_>>();
    let dir = tempfile::tempdir().unwrap();
    // 300 locals in one function (Lua allows 200, 5.5 and Luau 255 registers; Luau folds locals
    // that are never assigned, hence the `...`).
    let locals =
        format!("local {} = ...\nlocal {} = ...\nreturn 1\n", names(0, 150).join(", "), names(150, 300).join(", "));
    std::fs::write(dir.path().join("locals.lua"), locals).unwrap();
    // An inner function using 300 locals of two enclosing functions (Lua allows 255
    // upvalues; 5.1 and LuaJIT fewer).
    let upvalues = format!(
        "local function outer()\n  local {}\n  local function middle()\n    local {}\n    return function() return {} end\n  end\n  return middle\nend\nreturn outer\n",
        names(0, 150).join(", "),
        names(150, 300).join(", "),
        names(0, 300).join(" + ")
    );
    std::fs::write(dir.path().join("upvalues.lua"), upvalues).unwrap();
    let text = report(dir.path());
    // Lua 5.5 runs out of registers at the token after the declaration.
    let locals_at = if cfg!(feature = "lua55") { "locals.lua:3:1" } else { "locals.lua:2:1" };
    assert!(text.contains(locals_at) && text.contains("upvalues.lua:"), "{text}");
    assert_eq!(text.matches("error[compile-error]").count(), 2, "{text}");
}

/// A module with every non-ASCII byte raw in a comment, a long comment, a short string and a
/// long string (and a valid UTF-8 sequence beside them), returning the two strings.
#[cfg(not(feature = "luau"))]
fn every_high_byte_module() -> (Vec<u8>, Vec<u8>) {
    let high: Vec<u8> = (0x80..=0xffu8).collect();
    let mut text = b"-- ".to_vec();
    text.extend(&high);
    text.extend(b"\n--[==[ ");
    text.extend(&high);
    text.extend(b" ]==]\nlocal short = \"");
    text.extend(&high);
    text.extend(b"\"\nlocal long = [[");
    text.extend(&high);
    text.extend("]]\nlocal utf8 = 'é'\nreturn short .. '|' .. long .. '|' .. utf8\n".as_bytes());
    let mut expected = high.clone();
    expected.push(b'|');
    expected.extend(&high);
    expected.extend("|é".as_bytes());
    (text, expected)
}

#[test]
#[cfg(not(feature = "luau"))]
fn every_byte_lua_accepts_reaches_the_program_unchanged() {
    use luabundle::OutputFormat;

    let (text, expected) = every_high_byte_module();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("bytes.lua"), &text).unwrap();
    // From the source, as Lua itself reads it.
    let lua = mlua::Lua::new();
    let from_source: mlua::LuaString = lua.load(&text[..]).eval().unwrap();
    assert_eq!(from_source.as_bytes().to_vec(), expected);

    let build = |name: &str, format: OutputFormat, embed: bool| {
        let output = dir.path().join(name);
        Builder::new()
            .root(&src)
            .entry("bytes")
            .output(&output)
            .format(format)
            .embed_source(embed)
            .no_cache(true)
            .try_build()
            .unwrap();
        output
    };
    for (name, format, embed) in [("b.bundle", OutputFormat::Bundle, true), ("s.bundle", OutputFormat::Source, false)] {
        let output = build(name, format, embed);
        let bundle = luabundle_runtime::Bundle::open(&output).unwrap();
        let lua = mlua::Lua::new();
        bundle.install(&lua).unwrap();
        let value: mlua::LuaString = lua.load("return require 'bytes'").eval().unwrap();
        assert_eq!(value.as_bytes().to_vec(), expected, "{name}");
        // The embedded source, or the source blob, is the file byte for byte.
        let position = bundle.index().unwrap().modules.iter().position(|m| m.name == "bytes").unwrap();
        let source = match format {
            OutputFormat::Source => bundle.verified_blob(position).unwrap().to_vec(),
            _ => bundle.verified_source(position).unwrap().expect("embedded").to_vec(),
        };
        assert_eq!(source, text, "{name}");
    }
    // The plain-Lua script holds the module as it is.
    let script = std::fs::read(build("app.lua", OutputFormat::Lua, false)).unwrap();
    let lua = mlua::Lua::new();
    let value: mlua::LuaString = lua.load(&script[..]).eval().unwrap();
    assert_eq!(value.as_bytes().to_vec(), expected);
}

#[test]
fn diagnostics_in_a_file_with_odd_bytes_keep_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Latin-1 bytes before the require on the same line count one column each.
    std::fs::write(
        src.join("m.lua"),
        b"local s = '\xe9\xe8' local x = require 'missing'\nlocal n = require 'caf\xe9'\n",
    )
    .unwrap();
    let report = report(&src);
    assert!(report.contains("src/m.lua:1:26"), "{report}");
    assert!(report.contains("local s = '__' local x = require 'missing'"), "{report}");
    assert!(report.contains("module `caf\\233` not found"), "{report}");
    assert!(report.contains("src/m.lua:2:11"), "{report}");
    assert!(report.contains("bytes that are not UTF-8"), "{report}");
}
