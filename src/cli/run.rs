//! `luabundle run`: the `lua` command with a bundle installed.
//!
//! `luabundle run BUNDLE [options] [script [args]]` reads `lua`'s own options with `lua`'s
//! meaning and order (`-e`, `-l`, `-i`, `-v`, `-E`, `-W`, `-`, `--`), honours `LUA_INIT`,
//! lays out `arg` as `lua` does, and prints errors as `lua` does; the bundle's own options
//! and `-m MOD` come before the script. With no script, no `-e` and no `-i`, it runs the
//! bundle's entry module (or `-m MOD`), which takes its arguments after `--`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::Args;
use luabundle_runtime::Bundle;
use mlua::{ffi, Function, Lua, MultiValue, StdLib, Value};

/// `luabundle run` arguments: the bundle, then options and the program as for `lua`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// Options, then the script and its arguments, as for `lua` (see below).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    rest: Vec<OsString>,
}

/// The options `luabundle run` reads after the bundle, for `--help`.
pub const HELP: &str = "\
Options after the bundle, as for `lua` (in order; the first non-option is the script):
  -e STAT          run the statement STAT
  -l MOD           require MOD into the global MOD; -l G=MOD into the global G (Lua 5.4)
  -i               enter interactive mode after running the script
  -v               print version information
  -E               ignore the environment variables LUA_INIT, LUA_PATH and LUA_CPATH
  -W               turn warnings on (Lua 5.4)
  -                run standard input as the script, and stop handling options
  --               stop handling options
Bundle options (before the script):
  -m MOD           require MOD instead of the bundle's entry module
  --hermetic       search only the bundle: no Lua or C modules from the file system
  --profile NAME   make only this profile's modules requirable
  --importtime     print a table of module load times on stderr at exit
  --record FILE    write the modules loaded, in load order, to FILE (for prefetching)
  --allow-binary-chunks
                   let the program `load` binary chunks (text only by default)
With no script, -e, -i or -v, the entry module (or -m MOD) runs, with the arguments after
`--` in `arg` (`luabundle run app.bundle -- one two`); a bundle without an entry then reads
a program from standard input, or starts the interactive prompt on a terminal.

Examples:
  luabundle run app.bundle -- --verbose
  luabundle run app.bundle -m app.tool
  luabundle run app.bundle -e \"print(require('app.util').answer)\"
  luabundle run lr.bundle /usr/bin/luarocks --version";

/// The message handler: the error as text, with a traceback, as `lua` prints it (Luau's
/// traceback gets the same `stack traceback:` heading).
const MESSAGE_HANDLER: &str = r#"
local traceback, getmetatable, tostring, type = debug.traceback, getmetatable, tostring, type
local luau = _VERSION:sub(1, 4) == "Luau"
local lua51 = _VERSION == "Lua 5.1"
return function(err)
  local message = err
  if type(err) ~= "string" and type(err) ~= "number" then
    -- lua 5.1 keeps such an error as it is; later ones show its __tostring without a traceback
    if lua51 then return "(error object is not a string)" end
    local meta = getmetatable(err)
    if meta and meta.__tostring then
      local text = tostring(err)
      if type(text) == "string" then return text end
    end
    message = "(error object is a " .. type(err) .. " value)"
  end
  if luau then return message .. "\nstack traceback:\n" .. traceback("", 2):gsub("^\n", "") end
  return traceback(message, 2)
end
"#;

/// The interactive prompt: `lua`'s read-eval-print loop, with the prompts `_PROMPT` and
/// `_PROMPT2`, expressions printed, incomplete statements continued on the next line.
const REPL: &str = r#"
local run, report = ...
local load, loadstring, print, select, type = load, loadstring, print, select, type
local stdin, stdout = io.stdin, io.stdout
local lua51 = _VERSION == "Lua 5.1"
local compile = lua51 and loadstring or load
local line_format = lua51 and "*l" or "l"
local function prompt(first)
  local text = first and (_PROMPT or "> ") or (_PROMPT2 or ">> ")
  stdout:write(tostring(text))
  stdout:flush()
  return stdin:read(line_format)
end
local function incomplete(message)
  return type(message) == "string" and (message:find("<eof>'?$") ~= nil)
end
while true do
  local line = prompt(true)
  if not line then stdout:write("\n") stdout:flush() return end
  -- every lua.c since 5.1 takes a first line "=expr" as "return expr"
  if line:sub(1, 1) == "=" then line = "return " .. line:sub(2) end
  local chunk, err = compile("return " .. line, "=stdin")
  if not chunk then
    local code = line
    while true do
      chunk, err = compile(code, "=stdin")
      if chunk or not incomplete(err) then break end
      local more = prompt(false)
      if not more then break end
      code = code .. "\n" .. more
    end
  end
  if chunk then
    run(chunk)
  else
    report(err)
  end
end
"#;

/// What a command line asks for, in `lua`'s terms.
#[derive(Debug, Default)]
struct Invocation {
    hermetic: bool,
    profile: Option<String>,
    importtime: bool,
    record: Option<PathBuf>,
    allow_binary_chunks: bool,
    module: Option<String>,
    /// `-e`, `-l` and `-W`, in command-line order.
    actions: Vec<Action>,
    interactive: bool,
    version: bool,
    ignore_environment: bool,
    /// The script: a file, or standard input (`-`).
    script: Option<Script>,
    /// Where the script's name is in the arguments after the bundle.
    script_at: Option<usize>,
    /// Arguments of the script, or of the entry module after `--`.
    args: Vec<OsString>,
    /// `--` was given before the program's arguments.
    dashes: bool,
}

#[derive(Debug)]
enum Action {
    Code(OsString),
    Library { global: String, module: String },
    Warnings,
}

#[derive(Debug)]
enum Script {
    File(OsString),
    Stdin,
}

/// A command line `lua` would refuse: the message `lua` prints.
struct Usage(String);

/// Whether this flavour's `lua` has an option (`-E` from 5.2, `-W` from 5.4).
fn has_option(option: &str) -> bool {
    match option {
        "-E" => !cfg!(any(feature = "lua51", feature = "luajit")),
        "-W" => cfg!(any(feature = "lua54", feature = "lua55")),
        _ => true,
    }
}

/// Reads the arguments after the bundle as `lua` reads its own.
fn parse(rest: &[OsString]) -> Result<Invocation, Usage> {
    let mut run = Invocation::default();
    let mut i = 0;
    // An option's value, attached (`-eCODE`) or the next argument.
    let value = |i: &mut usize, option: &str, attached: &[u8]| -> Result<OsString, Usage> {
        if !attached.is_empty() {
            return Ok(OsString::from(String::from_utf8_lossy(attached).into_owned()));
        }
        *i += 1;
        rest.get(*i).cloned().ok_or_else(|| Usage(format!("'{option}' needs argument")))
    };
    while i < rest.len() {
        let text = rest[i].as_bytes();
        let long = |name: &str| text == name.as_bytes();
        let long_value = |name: &str| text.strip_prefix(format!("{name}=").as_bytes()).map(|v| v.to_vec());
        match text {
            _ if long("--hermetic") => run.hermetic = true,
            _ if long("--importtime") => run.importtime = true,
            _ if long("--allow-binary-chunks") => run.allow_binary_chunks = true,
            _ if long("--profile") || long_value("--profile").is_some() => {
                let v = match long_value("--profile") {
                    Some(v) => OsString::from(String::from_utf8_lossy(&v).into_owned()),
                    None => value(&mut i, "--profile", b"")?,
                };
                run.profile = Some(v.to_string_lossy().into_owned());
            }
            _ if long("--record") || long_value("--record").is_some() => {
                let v = match long_value("--record") {
                    Some(v) => OsString::from(String::from_utf8_lossy(&v).into_owned()),
                    None => value(&mut i, "--record", b"")?,
                };
                run.record = Some(PathBuf::from(v));
            }
            b"--" => {
                run.dashes = true;
                i += 1;
                break;
            }
            b"-" => break,
            [b'-', b'e', attached @ ..] => run.actions.push(Action::Code(value(&mut i, "-e", attached)?)),
            [b'-', b'l', attached @ ..] => {
                let spec = value(&mut i, "-l", attached)?.to_string_lossy().into_owned();
                let (global, module) = match spec.split_once('=') {
                    Some((global, module))
                        if !cfg!(any(feature = "lua51", feature = "lua52", feature = "lua53", feature = "luajit")) =>
                    {
                        (global.to_string(), module.to_string())
                    }
                    _ => (spec.clone(), spec),
                };
                run.actions.push(Action::Library { global, module });
            }
            [b'-', b'm', attached @ ..] => {
                run.module = Some(value(&mut i, "-m", attached)?.to_string_lossy().into_owned());
            }
            b"-i" => {
                run.interactive = true;
                run.version = true;
            }
            b"-v" => run.version = true,
            b"-E" if has_option("-E") => run.ignore_environment = true,
            b"-W" if has_option("-W") => run.actions.push(Action::Warnings),
            [b'-', ..] => {
                let shown = String::from_utf8_lossy(text);
                let option = if matches!(text, [b'-', b'-', ..] | [b'-', b'i' | b'v' | b'E' | b'W', _, ..]) {
                    shown.to_string()
                } else {
                    shown.chars().take(2).collect()
                };
                return Err(Usage(format!("unrecognized option '{option}'")));
            }
            _ => break,
        }
        i += 1;
    }
    if i < rest.len() {
        run.script_at = Some(i);
        run.script =
            Some(if rest[i].as_bytes() == b"-" && !run.dashes { Script::Stdin } else { Script::File(rest[i].clone()) });
        run.args = rest[i + 1..].to_vec();
    }
    Ok(run)
}

pub fn run(mut args: RunArgs) -> anyhow::Result<i32> {
    args.rest = raw_rest(&args);
    let mut invocation = match parse(&args.rest) {
        Ok(invocation) => invocation,
        Err(Usage(message)) => {
            eprintln!("luabundle: {message}");
            eprintln!("usage: luabundle run BUNDLE [options] [script [args]]\n{HELP}");
            return Ok(1);
        }
    };
    let bundle = Bundle::open(&args.bundle)?;
    // `-m MOD -- args` and `BUNDLE -- args` (an entry module with arguments): what follows
    // `--` is the module's arguments, not a script.
    let runs_module = invocation.module.is_some()
        || (bundle.entry().is_some()
            && invocation.actions.is_empty()
            && !invocation.interactive
            && !invocation.version);
    if invocation.dashes && runs_module {
        if let Some(at) = invocation.script_at.take() {
            invocation.args = args.rest[at..].to_vec();
            invocation.script = None;
        }
    }
    if invocation.module.is_some() && invocation.script.is_some() {
        eprintln!(
            "luabundle: -m runs a module of the bundle; it takes no script (put the module's arguments after --)"
        );
        return Ok(1);
    }
    let lua = new_state(invocation.ignore_environment).map_err(lua_error)?;
    let mut installer =
        bundle.installer().hermetic(invocation.hermetic).allow_binary_chunks(invocation.allow_binary_chunks);
    if let Some(profile) = &invocation.profile {
        installer = installer.profile(profile);
    }
    let installed = installer.install(&lua)?;
    let status = Session::new(&lua, &bundle, &args, &invocation).and_then(|session| session.run()).map_err(lua_error);
    if invocation.importtime {
        eprint!("{}", importtime_table(&installed.load_log()));
    }
    if let Some(path) = &invocation.record {
        let mut names: Vec<String> = Vec::new();
        for record in installed.load_log().into_iter().filter(|r| r.ok) {
            if !names.contains(&record.module) {
                names.push(record.module);
            }
        }
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(path, text).map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    }
    status
}

/// The arguments after the bundle exactly as given: clap drops the first `--`, which `lua`
/// reads as "stop handling options".
fn raw_rest(args: &RunArgs) -> Vec<OsString> {
    let raw: Vec<OsString> = std::env::args_os().collect();
    let found = raw.iter().skip(1).position(|a| a == "run").map(|p| p + 1);
    match found {
        Some(at) if raw.get(at + 1).is_some_and(|b| *b == *args.bundle.as_os_str()) => raw[at + 2..].to_vec(),
        _ => args.rest.clone(),
    }
}

/// A Lua error as this command's error (mlua's errors are not `Send`).
fn lua_error(err: mlua::Error) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

/// A Lua state with the whole standard library, `debug` included, as the `lua` interpreter
/// has (tracebacks and programs that read `debug.getinfo` need it). With `-E`, the package
/// library ignores `LUA_PATH` and `LUA_CPATH`, as under `lua -E`.
fn new_state(ignore_environment: bool) -> mlua::Result<Lua> {
    // SAFETY: the state may load C modules, as `lua` may. Bundle modules are still loaded
    // only after their checksums are verified.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::NONE, mlua::LuaOptions::default()) };
    if ignore_environment {
        lua.set_named_registry_value("LUA_NOENV", true)?;
    }
    lua.load_std_libs(all_libraries())?;
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    lua_warnings(&lua);
    Ok(lua)
}

/// Lua 5.4's (and 5.5's) warnings as `lua` shows them: off until `-W` or `warn("@on")`, then each message
/// on stderr after `Lua warning: `, pieces joined until the last.
#[cfg(any(feature = "lua54", feature = "lua55"))]
fn lua_warnings(lua: &Lua) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let on = AtomicBool::new(false);
    let continuing = AtomicBool::new(false);
    lua.set_warning_function(move |_, message, incomplete| {
        let was_continuing = continuing.swap(incomplete, Ordering::Relaxed);
        if !was_continuing && message.starts_with('@') {
            match message {
                "@on" => on.store(true, Ordering::Relaxed),
                "@off" => on.store(false, Ordering::Relaxed),
                _ => {}
            }
            return Ok(());
        }
        if on.load(Ordering::Relaxed) {
            let mut stderr = std::io::stderr().lock();
            let head = if was_continuing { "" } else { "Lua warning: " };
            let tail = if incomplete { "" } else { "\n" };
            let _ = write!(stderr, "{head}{message}{tail}");
        }
        Ok(())
    });
}

fn all_libraries() -> StdLib {
    // SAFETY (of the flag): `debug` is what `lua` gives its programs too.
    #[cfg(feature = "luau")]
    return StdLib::ALL_SAFE;
    #[cfg(not(feature = "luau"))]
    StdLib::ALL
}

/// The version line `lua -v` prints.
fn version_line(lua: &Lua) -> String {
    #[cfg(feature = "luajit")]
    {
        let version: Option<String> = lua.load("return jit and jit.version").eval().ok().flatten();
        return format!(
            "{} -- Copyright (C) 2005-2026 Mike Pall. https://luajit.org/",
            version.unwrap_or_else(|| "LuaJIT".to_string())
        );
    }
    #[cfg(not(feature = "luajit"))]
    {
        let _ = lua;
        let release = if cfg!(feature = "lua51") {
            "Lua 5.1.5  Copyright (C) 1994-2012 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua52") {
            "Lua 5.2.4  Copyright (C) 1994-2015 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua53") {
            "Lua 5.3.6  Copyright (C) 1994-2020 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua54") {
            "Lua 5.4.9  Copyright (C) 1994-2026 Lua.org, PUC-Rio"
        } else if cfg!(feature = "lua55") {
            "Lua 5.5.1  Copyright (C) 1994-2026 Lua.org, PUC-Rio"
        } else {
            "Luau"
        };
        release.to_string()
    }
}

/// The environment variables `lua` runs first: this version's, then the plain one.
fn init_variables() -> &'static [&'static str] {
    if cfg!(feature = "lua52") {
        &["LUA_INIT_5_2", "LUA_INIT"]
    } else if cfg!(feature = "lua53") {
        &["LUA_INIT_5_3", "LUA_INIT"]
    } else if cfg!(feature = "lua54") {
        &["LUA_INIT_5_4", "LUA_INIT"]
    } else if cfg!(feature = "lua55") {
        &["LUA_INIT_5_5", "LUA_INIT"]
    } else if cfg!(feature = "luau") {
        &[]
    } else {
        &["LUA_INIT"]
    }
}

/// One run of a program: the state, its message handler and what the command line asks.
struct Session<'a> {
    lua: &'a Lua,
    bundle: &'a Bundle,
    args: &'a RunArgs,
    invocation: &'a Invocation,
    handler: Function,
    /// At the interactive prompt.
    interactive: std::cell::Cell<bool>,
}

impl<'a> Session<'a> {
    fn new(
        lua: &'a Lua,
        bundle: &'a Bundle,
        args: &'a RunArgs,
        invocation: &'a Invocation,
    ) -> mlua::Result<Session<'a>> {
        let handler: Function = lua.load(MESSAGE_HANDLER).set_name("=luabundle run").eval()?;
        Ok(Session { lua, bundle, args, invocation, handler, interactive: Default::default() })
    }

    /// Runs the steps in `lua`'s order and returns the exit status.
    fn run(&self) -> mlua::Result<i32> {
        let invocation = self.invocation;
        if invocation.version {
            println!("{}", version_line(self.lua));
        }
        self.set_arg_table()?;
        if !invocation.ignore_environment && !self.init()? {
            return Ok(1);
        }
        for action in &invocation.actions {
            if !self.action(action)? {
                return Ok(1);
            }
        }
        let script_given = invocation.script.is_some();
        if let Some(script) = &invocation.script {
            let loaded = match script {
                Script::File(path) => self.loadfile(Some(path.as_bytes()))?,
                Script::Stdin => self.loadfile(None)?,
            };
            let Some(main) = loaded else { return Ok(1) };
            let args = self.strings(&invocation.args)?;
            if !self.call(main, args)? {
                return Ok(1);
            }
        }
        if invocation.interactive {
            return self.repl();
        }
        if script_given || !invocation.actions.iter().all(|a| matches!(a, Action::Library { .. })) || invocation.version
        {
            return Ok(0);
        }
        let module = invocation.module.clone().or_else(|| self.bundle.entry().map(str::to_string));
        match module {
            Some(module) => {
                let require: Function = self.lua.globals().get("require")?;
                let main = self
                    .lua
                    .load("local require, name = ... return function() return require(name) end")
                    .set_name("=luabundle run")
                    .call::<Function>((require.clone(), module.clone()))?;
                if self.call(main, MultiValue::new())? {
                    return Ok(0);
                }
                if self.bundle.module(&module).is_none() {
                    let names = self.bundle.index().modules.iter().map(|m| m.name.as_str());
                    if let Some(close) = luabundle::analysis::graph::closest(&module, names) {
                        eprintln!("help: the bundle has no module `{module}`; did you mean `{close}`?");
                    }
                }
                Ok(1)
            }
            None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                println!("{}", version_line(self.lua));
                self.repl()
            }
            None => {
                let Some(main) = self.loadfile(None)? else { return Ok(1) };
                Ok(if self.call(main, MultiValue::new())? { 0 } else { 1 })
            }
        }
    }

    /// `arg` as `lua` lays it out: the script at 0, its arguments after it, and everything
    /// before it (the running executable, `run`, the bundle and the options) below 0. With
    /// the entry module in place of a script, the bundle is at 0 and the arguments follow.
    fn set_arg_table(&self) -> mlua::Result<()> {
        let executable = std::env::current_exe().map(|p| p.into_os_string()).unwrap_or_else(|_| "luabundle".into());
        let mut argv: Vec<OsString> = vec![executable, "run".into(), self.args.bundle.clone().into_os_string()];
        let invocation = self.invocation;
        let (argv, zero) = match invocation.script_at {
            Some(at) => {
                argv.extend(self.args.rest.iter().cloned());
                (argv, 3 + at)
            }
            // `lua -e CODE` has no script: everything is at 0 and above.
            None if !invocation.actions.iter().all(|a| matches!(a, Action::Library { .. }))
                || invocation.interactive =>
            {
                argv.extend(self.args.rest.iter().cloned());
                (argv, 0)
            }
            None => {
                argv.push(self.args.bundle.clone().into_os_string());
                argv.extend(invocation.args.iter().cloned());
                (argv, 3)
            }
        };
        let table = self.lua.create_table()?;
        for (i, value) in argv.iter().enumerate() {
            table.raw_set(i as i64 - zero as i64, self.lua.create_string(value.as_bytes())?)?;
        }
        self.lua.globals().set("arg", table)
    }

    /// `LUA_INIT_5_x` or `LUA_INIT`: code, or `@file` to run. `false` if it failed.
    fn init(&self) -> mlua::Result<bool> {
        for name in init_variables() {
            let Some(value) = std::env::var_os(name) else { continue };
            let bytes = value.as_bytes();
            let main = match bytes.strip_prefix(b"@") {
                Some(file) => self.loadfile(Some(file))?,
                None => self.loadstring(bytes, &format!("={name}"))?,
            };
            return Ok(match main {
                Some(main) => self.call(main, MultiValue::new())?,
                None => false,
            });
        }
        Ok(true)
    }

    fn action(&self, action: &Action) -> mlua::Result<bool> {
        match action {
            Action::Code(code) => match self.loadstring(code.as_bytes(), "=(command line)")? {
                Some(main) => self.call(main, MultiValue::new()),
                None => Ok(false),
            },
            Action::Library { global, module } => {
                let require: Function = self.lua.globals().get("require")?;
                let set = self
                    .lua
                    .load("local require, global, name = ... return function() _G[global] = require(name) end")
                    .set_name("=luabundle run")
                    .call::<Function>((require, global.as_str(), module.as_str()))?;
                self.call(set, MultiValue::new())
            }
            Action::Warnings => {
                self.lua.load("warn('@on')").set_name("=luabundle run").exec()?;
                Ok(true)
            }
        }
    }

    /// Lua's own `loadfile` (standard input for `None`), so that messages, chunk names and the
    /// skipped first line are `lua`'s. `None` after reporting an error.
    fn loadfile(&self, path: Option<&[u8]>) -> mlua::Result<Option<Function>> {
        let Some(loadfile) = self.lua.globals().get::<Option<Function>>("loadfile")? else {
            return self.read_and_load(path);
        };
        let path = path.map(|p| self.lua.create_string(p)).transpose()?;
        let (main, message): (Option<Function>, Value) = loadfile.call(path)?;
        if main.is_none() {
            self.report(&message.to_string()?);
        }
        Ok(main)
    }

    /// `loadfile` for a VM that has none (Luau): the file's text (standard input for `None`),
    /// a first line starting with `#` skipped, compiled under the name `lua` gives it.
    fn read_and_load(&self, path: Option<&[u8]>) -> mlua::Result<Option<Function>> {
        use std::io::Read;
        let (read, name, shown) = match path {
            Some(path) => {
                let shown = String::from_utf8_lossy(path).into_owned();
                (std::fs::read(std::ffi::OsStr::from_bytes(path)), format!("@{shown}"), shown)
            }
            None => {
                let mut text = Vec::new();
                (std::io::stdin().read_to_end(&mut text).map(|_| text), "=stdin".to_string(), "stdin".to_string())
            }
        };
        let mut text = match read {
            Ok(text) => text,
            Err(error) => {
                let verb = if path.is_some() && error.kind() == std::io::ErrorKind::NotFound { "open" } else { "read" };
                // The C library's reason, as Lua prints it, without Rust's "(os error N)".
                let reason = error.to_string();
                let reason = reason.split(" (os error").next().unwrap_or_default();
                self.report(&format!("cannot {verb} {shown}: {reason}"));
                return Ok(None);
            }
        };
        if text.first() == Some(&b'#') {
            text.splice(0..0, *b"--");
        }
        self.loadstring(&text, &name)
    }

    fn loadstring(&self, code: &[u8], name: &str) -> mlua::Result<Option<Function>> {
        match self.lua.load(code).set_name(name).set_mode(mlua::chunk::ChunkMode::Text).into_function() {
            Ok(main) => Ok(Some(main)),
            Err(mlua::Error::SyntaxError { message, .. }) => {
                self.report(&message);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    fn strings(&self, values: &[OsString]) -> mlua::Result<MultiValue> {
        values.iter().map(|v| self.lua.create_string(v.as_bytes()).map(Value::String)).collect()
    }

    /// Calls `main(args)` under the message handler; reports an error and returns `false`.
    fn call(&self, main: Function, args: MultiValue) -> mlua::Result<bool> {
        Ok(self.call_for_results(main, args)?.is_some())
    }

    /// [`Session::call`], returning the results of a call that succeeded.
    fn call_for_results(&self, main: Function, args: MultiValue) -> mlua::Result<Option<MultiValue>> {
        let mut results = protected_call(self.lua, &self.handler, main, args)?;
        match results.pop_front() {
            Some(Value::Boolean(true)) => Ok(Some(results)),
            _ => {
                let message = results.pop_front().map(|v| v.to_string()).transpose()?;
                self.report(&without_runner_frames(&message.unwrap_or_default()));
                Ok(None)
            }
        }
    }

    /// An error on stderr, after the program's name (which `lua` leaves out at its prompt).
    fn report(&self, message: &str) {
        if self.interactive.get() {
            eprintln!("{message}");
        } else {
            eprintln!("luabundle: {message}");
        }
    }

    /// The interactive prompt, until end of input.
    fn repl(&self) -> mlua::Result<i32> {
        if cfg!(feature = "luau") {
            eprintln!("luabundle: the interactive prompt needs Lua's io library, which Luau does not have");
            return Ok(1);
        }
        let session = self;
        self.interactive.set(true);
        self.lua.scope(|scope| {
            let run = scope.create_function(|lua, chunk: Function| {
                if let Some(results) = session.call_for_results(chunk, MultiValue::new())? {
                    if !results.is_empty() {
                        lua.globals().get::<Function>("print")?.call::<()>(results)?;
                    }
                }
                Ok(())
            })?;
            let report = scope.create_function(|_, message: Value| {
                session.report(&message.to_string()?);
                Ok(())
            })?;
            self.lua.load(REPL).set_name("=luabundle run").call::<()>((run, report))
        })?;
        Ok(0)
    }
}

/// Calls `main(args...)` under `handler` with `lua_pcall` from one C function, as `lua` calls
/// a program from its own `pmain`: below the program there is that C frame and nothing else,
/// in every flavour (Lua 5.1's `xpcall` passes no arguments, and a Lua closure in between
/// would show). Programs that walk the stack with `debug.getinfo`, like LuaRocks finding its
/// own path, and tracebacks see what they see under `lua`. The results are the status
/// (`true` when the call succeeded) and the call's results or the handler's message.
fn protected_call(lua: &Lua, handler: &Function, main: Function, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut call = MultiValue::from_vec(vec![Value::Function(handler.clone()), Value::Function(main)]);
    call.extend(args);
    // SAFETY: `exec_raw` runs the closure in a C function whose stack holds exactly the values
    // pushed: the handler at 1, the program at 2, then its arguments. `lua_pcall` replaces the
    // program and its arguments with the results or the message; the status then takes the
    // handler's slot. Every value left on the stack is a result of the C function.
    unsafe {
        lua.exec_raw::<MultiValue>(call, |state| {
            let arguments = ffi::lua_gettop(state) - 2;
            let status = ffi::lua_pcall(state, arguments, ffi::LUA_MULTRET, 1);
            ffi::lua_pushboolean(state, std::ffi::c_int::from(status == 0));
            ffi::lua_replace(state, 1);
        })
    }
}

/// The traceback without the frames of this runner: its wrapper chunks, the bundle loader's
/// frames, and everything below the C frame [`protected_call`] puts under the program (the
/// prompt's own frames). What is left reads as under `lua`.
fn without_runner_frames(traceback: &str) -> String {
    let bottom = if cfg!(any(feature = "lua51", feature = "luajit")) { "\t[C]: ?" } else { "\t[C]: in ?" };
    let all: Vec<&str> = traceback.lines().collect();
    let loader = |line: Option<&&str>| line.is_some_and(|line| line.contains("[luabundle loader]:"));
    let mut lines: Vec<&str> = Vec::with_capacity(all.len());
    for (at, line) in all.iter().enumerate() {
        // The message itself keeps its text, without the runner's place (`require` of `-m`
        // fails in the runner's chunk).
        if at == 0 {
            let message = line.split_once("luabundle run:").and_then(|(_, rest)| rest.split_once(": "));
            lines.push(message.map_or(*line, |(_, text)| text));
            continue;
        }
        // The runtime's loader frames stand between `require` and the module's chunk, and
        // before Lua 5.4 so does the `pcall` it times the load under.
        let timing_pcall = line.starts_with("\t[C]: in function 'pcall'") && loader(all.get(at + 1));
        if !line.contains("luabundle run:") && !loader(Some(line)) && !timing_pcall {
            lines.push(line);
        }
    }
    if lines.iter().any(|line| line.starts_with("stack traceback:")) {
        if let Some(at) = lines.iter().rposition(|line| *line == bottom) {
            lines.truncate(at + 1);
        }
    }
    lines.join("\n")
}

/// Module load times, one line per load in completion order, indented by nesting, in the
/// style of Python's `-X importtime`.
fn importtime_table(log: &[luabundle_runtime::LoadRecord]) -> String {
    let mut out = String::from("import time: self [us] | cumulative | module\n");
    for record in log {
        let failed = if record.ok { "" } else { " (failed)" };
        out.push_str(&format!(
            "import time: {:>9} | {:>10} | {}{}{failed}\n",
            record.self_time.as_micros(),
            record.cumulative.as_micros(),
            "  ".repeat(record.depth),
            record.module
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Invocation {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args).unwrap_or_else(|Usage(message)| panic!("{message}"))
    }

    #[test]
    fn options_are_read_as_lua_reads_them() {
        let run = parsed(&["--hermetic", "-e", "x=1", "-lm", "-i", "script.lua", "-e", "a"]);
        assert!(run.hermetic && run.interactive && run.version);
        assert_eq!(run.actions.len(), 2);
        assert!(matches!(&run.script, Some(Script::File(f)) if f == "script.lua"));
        assert_eq!(run.args, ["-e", "a"]);
        assert_eq!(run.script_at, Some(5));
        let run = parsed(&["--", "-x.lua", "1"]);
        assert!(matches!(&run.script, Some(Script::File(f)) if f == "-x.lua"));
        assert!(matches!(parsed(&["-", "a"]).script, Some(Script::Stdin)));
        assert!(matches!(parse(&["-x".into()]), Err(Usage(m)) if m == "unrecognized option '-x'"));
        assert!(matches!(parse(&["-e".into()]), Err(Usage(m)) if m == "'-e' needs argument"));
        assert!(matches!(parse(&["-iv".into()]), Err(Usage(m)) if m == "unrecognized option '-iv'"));
    }

    #[test]
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    fn a_global_name_can_be_given_to_a_library() {
        let run = parsed(&["-l", "g=pl.utils", "-W"]);
        assert!(matches!(&run.actions[0], Action::Library { global, module } if global == "g" && module == "pl.utils"));
        assert!(matches!(run.actions[1], Action::Warnings));
    }

    #[test]
    #[cfg(not(feature = "luau"))]
    fn the_version_line_names_the_linked_vm() {
        let lua = Lua::new();
        let version: String = lua.globals().get("_VERSION").unwrap();
        let line = version_line(&lua);
        let name = if cfg!(feature = "luajit") { "LuaJIT" } else { version.as_str() };
        assert!(line.starts_with(name), "{line} / {version}");
    }
}
