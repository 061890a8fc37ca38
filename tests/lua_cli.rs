//! `luabundle run BUNDLE ARGS...` against Debian's `lua5.4 ARGS...`: a table of command lines
//! (options, `--`, `-`, `-e` before a script, `-l`, warnings, errors and error objects, a
//! script that re-runs its own interpreter, `LUA_INIT` and `-E`, a stock C module) run by
//! both, with the same standard output, the same standard error (program name aside) and the
//! same exit status. The modules come from the bundle for `luabundle run` and from `LUA_PATH`
//! for `lua5.4`. Skipped without `lua5.4` unless `LUABUNDLE_REQUIRE_CORPORA` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::luabundle;

const LUA: &str = "/usr/bin/lua5.4";

/// Debian's `lua-filesystem` for Lua 5.4, a C module built against the stock interpreter.
const LFS: &str = "/usr/lib/x86_64-linux-gnu/lua/5.4/lfs.so";

const FILES: &[(&str, &str)] = &[
    (
        "lib/greet.lua",
        "local M = {}\nfunction M.hi() return 'hi from ' .. debug.getinfo(1, 'S').source end\nreturn M\n",
    ),
    ("lib/broken.lua", "local x = 1\nerror('broken at load: ' .. x)\n"),
    (
        "show.lua",
        "print('script', arg[0], #arg, select('#', ...), ...)\nfor i = 1, #arg do io.write(arg[i], '|') end\nprint()\n",
    ),
    (
        "fail.lua",
        "local greet = require 'greet'\nlocal function deeper() error('boom: ' .. greet.hi()) end\ndeeper()\n",
    ),
    ("uses_broken.lua", "print('before')\nrequire 'broken'\n"),
    ("shebang.lua", "#!/usr/bin/env lua\nprint('line', debug.getinfo(1, 'l').currentline, ...)\n"),
    ("init.lua", "print('init file ran', ...)\n"),
    (
        // The interpreter is everything before the script in `arg`, as Penlight and LuaRocks
        // find it to run themselves again.
        "rerun.lua",
        r#"local first = 0
while arg[first - 1] do first = first - 1 end
local command = {}
for i = first, -1 do command[#command + 1] = string.format("%q", arg[i]) end
local line = table.concat(command, " ") .. [[ -e "print(1 + 1)" child.lua x 'y z']]
local child = assert(io.popen(line))
io.write(child:read("a"))
print(child:close())
"#,
    ),
    ("child.lua", "print('child', require('greet').hi(), ...)\nos.exit(3)\n"),
];

/// What one run printed and how it ended; the program's name in messages is written `lua`.
#[derive(Debug, PartialEq)]
struct Outcome {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

struct Workspace {
    dir: tempfile::TempDir,
    bundle: PathBuf,
}

fn lua_present() -> bool {
    crate::support::present_or_skip(Path::new(LUA).is_file(), &format!("{LUA} is missing"), "lua5.4")
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in FILES {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let bundle = dir.path().join("t.bundle");
    luabundle().current_dir(dir.path()).args(["build", "lib", "--no-cache", "-q", "-o"]).arg(&bundle).assert().code(0);
    Workspace { dir, bundle }
}

/// Message lines start with the program's name: `lua5.4:` and `luabundle:` both become `lua:`.
fn normalised(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|line| {
            for name in ["/usr/bin/lua5.4:", "luabundle:"] {
                if let Some(rest) = line.strip_prefix(name) {
                    return format!("lua:{rest}\n");
                }
            }
            format!("{line}\n")
        })
        .collect()
}

/// `command` without the Lua variables of the test's own environment, then with `env`.
fn with_env<'c>(command: &'c mut Command, env: &[(&str, &str)]) -> &'c mut Command {
    for var in ["LUA_INIT", "LUA_INIT_5_4", "LUA_PATH", "LUA_PATH_5_4", "LUA_CPATH", "LUA_CPATH_5_4"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied())
}

fn outcome(command: &mut Command, stdin: &str) -> Outcome {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: normalised(&out.stderr),
        status: out.status.code(),
    }
}

impl Workspace {
    /// `lua5.4 ARGS` (modules from `lib/` through `LUA_PATH`) and `luabundle run BUNDLE ARGS`
    /// (modules from the bundle), with the same extra environment and standard input.
    fn both(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> (Outcome, Outcome) {
        let mut lua = Command::new(LUA);
        lua.current_dir(self.dir.path()).args(args);
        let mut run = Command::new(assert_cmd::cargo::cargo_bin("luabundle"));
        run.current_dir(self.dir.path()).arg("run").arg(&self.bundle).args(args);
        let from_lua = outcome(with_env(&mut lua, env).env("LUA_PATH", "lib/?.lua;;"), stdin);
        let from_bundle = outcome(with_env(&mut run, env), stdin);
        (from_lua, from_bundle)
    }

    fn assert_same(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) {
        let (from_lua, from_bundle) = self.both(args, env, stdin);
        assert_eq!(from_bundle, from_lua, "command line {args:?} with {env:?}");
    }
}

#[test]
fn the_command_line_table_matches_lua() {
    if !lua_present() {
        return;
    }
    let ws = workspace();
    let none: &[(&str, &str)] = &[];
    let table: &[(&[&str], &str)] = &[
        (&["show.lua", "a", "b c", ""], ""),
        (&["-e", "print(1)", "show.lua", "x"], ""),
        (&["-e", "x = 1", "-e", "print(x)"], ""),
        (&["-eprint('joined')"], ""),
        (&["-ex"], ""),
        (&["-e", "print(require('greet').hi())"], ""),
        (&["--", "show.lua", "-e", "--"], ""),
        (&["show.lua", "-e", "print(2)"], ""),
        (&["-", "p", "q"], "print('stdin', ..., arg[0], debug.getinfo(1, 'S').source)"),
        (&[], "print('piped', require('greet').hi())"),
        (&["-lgreet", "-e", "print(greet.hi())"], ""),
        (&["-l", "greet", "-e", "print(greet ~= nil)"], ""),
        (&["-l", "g=greet", "-e", "print(g.hi(), greet)"], ""),
        (&["shebang.lua", "s"], ""),
        (&["fail.lua"], ""),
        (&["uses_broken.lua"], ""),
        (&["-e", "error(setmetatable({}, { __tostring = function() return 'custom error' end }))"], ""),
        (&["-e", "error({})"], ""),
        (&["-e", "error()"], ""),
        (&["-e", "error('no position', 0)"], ""),
        (&["-e", "syntax error here"], ""),
        (&["nofile.lua"], ""),
        (&["-e", "os.exit(7)"], ""),
        (&["-e", "os.exit(false)"], ""),
        (&["-e", "os.exit(true)"], ""),
        (&["-e", "io.write('no newline') os.exit(0, true)"], ""),
        (&["-W", "-e", "warn('hello ', 'world')"], ""),
        (&["-e", "warn('@on') warn('a', 'b') warn('@off') warn('c')"], ""),
        (&["-e", "warn('off by default')"], ""),
        (&["rerun.lua"], ""),
    ];
    for (args, stdin) in table {
        ws.assert_same(args, none, stdin);
    }
}

#[test]
fn lua_init_and_minus_e_upper_match_lua() {
    if !lua_present() {
        return;
    }
    let ws = workspace();
    ws.assert_same(&["-e", "print(2)"], &[("LUA_INIT", "print('init code')")], "");
    ws.assert_same(&["-e", "print(2)"], &[("LUA_INIT", "print('plain'"), ("LUA_INIT_5_4", "print('versioned')")], "");
    ws.assert_same(&["show.lua", "z"], &[("LUA_INIT", "@init.lua")], "");
    ws.assert_same(&["-e", "print(2)"], &[("LUA_INIT", "error('bad init')")], "");
    ws.assert_same(&["-e", "print(2)"], &[("LUA_INIT", "@missing-init.lua")], "");
    ws.assert_same(&["-E", "-e", "print(2)"], &[("LUA_INIT", "print('must not run')")], "");
}

#[test]
fn usage_errors_match_lua() {
    if !lua_present() {
        return;
    }
    let ws = workspace();
    for args in [&["-x"][..], &["-e"], &["-l"], &["--x"]] {
        let (from_lua, from_bundle) = ws.both(args, &[], "");
        let first = |o: &Outcome| o.stderr.lines().next().unwrap_or_default().to_string();
        assert_eq!(first(&from_bundle), first(&from_lua), "{args:?}");
        assert_eq!(from_bundle.status, from_lua.status, "{args:?}");
        assert!(from_bundle.stderr.contains("usage:"), "{}", from_bundle.stderr);
    }
    let (from_lua, from_bundle) = ws.both(&["-v"], &[], "");
    assert!(from_lua.stdout.starts_with("Lua 5.4.") && from_bundle.stdout.starts_with("Lua 5.4."), "{from_bundle:?}");
}

#[test]
fn the_interactive_prompt_runs_statements_and_prints_expressions() {
    if !lua_present() {
        return;
    }
    let ws = workspace();
    let input = "x = 6 * 7\nprint(x)\nreturn 1 + 1\nfor i = 1, 2 do\nprint('loop', i)\nend\n= require('greet').hi()\nerror('at the prompt')\nprint('still running')\n";
    let (from_lua, from_bundle) = ws.both(&["-i"], &[], input);
    // Debian's lua5.4 echoes each line through readline; the results are the same.
    let results = |o: &Outcome| -> Vec<String> {
        o.stdout.lines().map(|l| l.trim_start_matches(['>', ' '])).filter(|l| !l.is_empty()).map(String::from).collect()
    };
    let expected = ["42", "2", "loop\t1", "loop\t2", "hi from @lib/greet.lua", "still running"];
    for line in expected {
        assert!(results(&from_bundle).iter().any(|l| l == line), "{line:?} missing from {from_bundle:?}");
        assert!(results(&from_lua).iter().any(|l| l == line), "{line:?} missing from {from_lua:?}");
    }
    assert!(from_bundle.stdout.starts_with("Lua 5.4"), "{from_bundle:?}");
    // At the prompt an error is shown without the program's name, and the prompt goes on.
    assert!(from_bundle.stderr.starts_with("stdin:1: at the prompt\n"), "{}", from_bundle.stderr);
    assert!(from_lua.stderr.starts_with("stdin:1: at the prompt\n"), "{}", from_lua.stderr);
    assert_eq!(from_bundle.status, Some(0));
}

#[test]
fn a_stock_c_module_loads_as_under_lua() {
    if !lua_present() {
        return;
    }
    if !Path::new(LFS).is_file() {
        assert!(
            std::env::var_os("LUABUNDLE_REQUIRE_CORPORA").is_none(),
            "{LFS} is missing: apt-get install lua-filesystem"
        );
        eprintln!("skipped: apt-get install lua-filesystem to load a stock C module");
        return;
    }
    let ws = workspace();
    let cpath = LFS.replace("lfs.so", "?.so");
    let code = "local lfs = require 'lfs' print(lfs._VERSION ~= nil, lfs.attributes('show.lua', 'mode'), lfs.attributes('lib').mode, package.loaded.lfs == lfs)";
    let (from_lua, from_bundle) = ws.both(&["-e", code], &[("LUA_CPATH", &cpath)], "");
    assert_eq!(from_bundle, from_lua);
    assert_eq!(from_bundle.stdout, "true\tfile\tdirectory\ttrue\n");
}

#[test]
fn the_plain_run_command_line_and_the_full_parser_agree() {
    // `luabundle run BUNDLE ...` is read without clap; with an option before `run`, clap
    // reads it. Both must run the same program the same way.
    let ws = workspace();
    for args in [&["-e", "print(require('greet').hi())"][..], &["show.lua", "a", "--", "b"], &["fail.lua"], &["-x"]] {
        let mut plain = Command::new(assert_cmd::cargo::cargo_bin("luabundle"));
        plain.current_dir(ws.dir.path()).arg("run").arg(&ws.bundle).args(args);
        let mut parsed = Command::new(assert_cmd::cargo::cargo_bin("luabundle"));
        parsed.current_dir(ws.dir.path()).args(["--color", "never", "run"]).arg(&ws.bundle).args(args);
        let (plain, parsed) = (outcome(with_env(&mut plain, &[]), ""), outcome(with_env(&mut parsed, &[]), ""));
        assert_eq!(plain, parsed, "{args:?}");
    }
}
