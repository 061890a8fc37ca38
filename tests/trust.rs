//! Trust under attack and accident: inputs that used to crash or hang the tool, outputs that
//! could destroy files, and security promises, each class checked through the real CLI.

use std::path::Path;

use crate::support::luabundle;

/// Whether the linked Lua VM compiles `text` (the reference for what must build).
fn lua_compiles(text: &str) -> bool {
    #[cfg(not(feature = "luau"))]
    return mlua::Lua::new().load(text).into_function().is_ok();
    #[cfg(feature = "luau")]
    return mlua::chunk::Compiler::new().compile(text).is_ok();
}

/// Long unary and right-associative chains (what the parser recurses on), and long
/// left-associative ones (which it does not): `build`, `check` and `graph` finish with Lua's
/// verdict, a refusal naming the file, line and column, never a crash.
#[test]
fn expression_chains_get_lua_s_verdict_and_never_crash_the_tool() {
    let chains = [
        ("minus", format!("return {}1\n", "- ".repeat(30_000))),
        ("not", format!("return {}true\n", "not ".repeat(40_000))),
        ("length", format!("return {}'x'\n", "#".repeat(30_000))),
        ("bnot", format!("return {}1\n", "~".repeat(30_000))),
        ("concat", format!("return {}\n", vec!["'a'"; 70_000].join(" .. "))),
        ("power", format!("return {}\n", vec!["2"; 80_000].join("^"))),
        ("just_too_deep", format!("local x = 1\nreturn {}1\n", "- ".repeat(198))),
        ("sum", format!("local ok = pcall(require, 'x')\nreturn {}\n", vec!["1"; 100_000].join(" + "))),
        ("conjunction", format!("local ok = pcall(require, 'x')\nreturn {}\n", vec!["1"; 100_000].join(" and "))),
        ("calls", format!("local ok = pcall(require, 'x')\nreturn f{}\n", "(1)".repeat(50_000))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut refused = 0;
    for (name, text) in &chains {
        let root = dir.path().join(name);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("m.lua"), text).unwrap();
        let accepted = lua_compiles(text);
        for command in ["build", "check", "graph"] {
            let mut cmd = luabundle();
            cmd.arg(command).arg(&root).arg("--no-cache");
            if command == "build" {
                cmd.arg("-o").arg(dir.path().join(format!("{name}.bundle")));
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            if accepted {
                assert_eq!(code, Some(0), "{command} {name}: {stderr}");
            } else {
                assert_eq!(code, Some(1), "{command} {name}: {stderr}");
                let place = format!("{name}/m.lua:{}:", if name == &"just_too_deep" { 2 } else { 1 });
                assert!(stderr.contains(&place), "{command} {name}: {stderr}");
            }
        }
        refused += usize::from(!accepted);
    }
    // The unary and right-associative chains are beyond every VM's limit.
    assert!(refused >= 6, "{refused}");
}

/// Every `.lua` file under `dir`, recursively.
fn lua_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok) {
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "lua") {
            found.push(entry.into_path());
        }
    }
}

/// The nesting guard counts an upper bound of Lua's levels: it must never refuse a file the
/// VM compiles. Checked on every Lua file of Debian's packages and of the fixtures.
#[test]
fn the_nesting_guard_refuses_no_file_lua_compiles() {
    let mut files = Vec::new();
    lua_files(&crate::support::fixture(""), &mut files);
    lua_files(Path::new("/usr/share/lua"), &mut files);
    let mut compiled = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let text = luabundle::source::prepare(&text);
        if lua_compiles(&text) {
            compiled += 1;
            assert_eq!(luabundle::nesting::too_deep(&text), None, "{}", path.display());
        }
    }
    assert!(compiled >= 40, "{compiled}");
}
