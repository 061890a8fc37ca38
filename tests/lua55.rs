//! Lua 5.5 on real code: LuaRocks, Penlight and luacheck were written for Lua 5.1–5.4, and
//! Lua 5.5 refuses some of their files (5.5 makes loop variables read-only). luabundle must
//! refuse exactly those files, at the line Lua names, with Lua's message, and accept every
//! other one. There is no Debian `lua5.5`, so Lua 5.5's own `loadfile` (the VM this flavour
//! links) is the reference.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{luabundle, present_or_skip};

/// The trees compared, as `PREFIX=DIR` roots.
const TREES: &[(&str, &str)] = &[
    ("luarocks", "/usr/share/lua/5.1/luarocks"),
    ("pl", "/usr/share/lua/5.1/pl"),
    ("luacheck", "/usr/share/lua/5.1/luacheck"),
];

/// `file:line: message` for each file of the trees that Lua 5.5's `loadfile` refuses, the
/// file named from its root's prefix (`pl/app.lua`).
fn refused_by_lua() -> (BTreeSet<String>, usize) {
    let lua = mlua::Lua::new();
    let loadfile: mlua::Function = lua.globals().get("loadfile").unwrap();
    let mut refused = BTreeSet::new();
    let mut files = 0;
    for (prefix, dir) in TREES {
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name().into_iter().filter_map(Result::ok) {
            let path = entry.path();
            if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "lua") {
                continue;
            }
            files += 1;
            let (chunk, message): (Option<mlua::Function>, Option<String>) =
                loadfile.call(path.to_str().unwrap()).unwrap();
            if chunk.is_none() {
                // `DIR/x.lua:12: message` as `prefix/x.lua:12: message`.
                let message = message.unwrap();
                let relative = message.strip_prefix(dir).expect("the message names the file");
                refused.insert(format!("{prefix}{relative}"));
            }
        }
    }
    (refused, files)
}

/// `file:line: message` for each compile error of `luabundle check` on the trees.
fn refused_by_luabundle() -> BTreeSet<String> {
    let mut check = luabundle();
    check.args(["check", "--no-cache", "--color", "never"]);
    for (prefix, dir) in TREES {
        check.arg(format!("{prefix}={dir}"));
    }
    let output = check.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut refused = BTreeSet::new();
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        let Some(message) = line.strip_prefix("error[compile-error]: Lua rejects this file: ") else { continue };
        let place = lines.next().and_then(|l| l.trim_start().strip_prefix("┌─ ")).expect("a place follows");
        // `pl/app.lua:197:1`: the file and line, as Lua names them.
        let (file_line, _column) = place.rsplit_once(':').unwrap();
        refused.insert(format!("{file_line}: {message}"));
    }
    refused
}

#[test]
fn luabundle_refuses_exactly_the_files_lua55_refuses_at_their_line() {
    let present = TREES.iter().all(|(_, dir)| Path::new(dir).is_dir());
    if !present_or_skip(present, "luarocks, lua-penlight or lua-check is missing", "luarocks lua-penlight lua-check") {
        return;
    }
    let (by_lua, files) = refused_by_lua();
    assert!(files > 100, "only {files} files");
    // The trees do assign to loop variables, so this compares refusals, not two empty sets.
    assert!(by_lua.len() >= 5, "{by_lua:?}");
    assert_eq!(refused_by_luabundle(), by_lua);
}
