//! One run of a program in a state with the bundle installed: `arg`, `LUA_INIT`, the
//! actions, the script or entry module, the prompt, and errors printed as `lua` prints them.

use luabundle_runtime::Bundle;
use mlua::{ffi, Function, Lua, MultiValue, Value};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use super::command_line::{Action, Invocation, Script};
use super::state::{init_variables, version_line};
use super::RunArgs;

/// The message handler: the error as text, with a traceback, as `lua` prints it (Luau's
/// traceback gets the same `stack traceback:` heading).
const MESSAGE_HANDLER: &str = include_str!("message_handler.lua");

/// The interactive prompt: `lua`'s read-eval-print loop, with the prompts `_PROMPT` and
/// `_PROMPT2`, expressions printed, incomplete statements continued on the next line.
const REPL: &str = include_str!("repl.lua");

/// One run of a program: the state, its message handler and what the command line asks.
pub(super) struct Session<'a> {
    lua: &'a Lua,
    bundle: &'a Bundle,
    args: &'a RunArgs,
    invocation: &'a Invocation,
    handler: Function,
    /// At the interactive prompt.
    interactive: std::cell::Cell<bool>,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        lua: &'a Lua,
        bundle: &'a Bundle,
        args: &'a RunArgs,
        invocation: &'a Invocation,
    ) -> mlua::Result<Session<'a>> {
        let handler: Function = lua.load(MESSAGE_HANDLER).set_name("=luabundle run").eval()?;
        Ok(Session { lua, bundle, args, invocation, handler, interactive: Default::default() })
    }

    /// Runs the steps in `lua`'s order and returns the exit status.
    pub(super) fn run(&self) -> mlua::Result<i32> {
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
        let entry = self.bundle.entry().map_err(mlua::Error::external)?;
        if let (true, Some(entry)) = (self.args.exe, entry) {
            return self.run_entry_as_script(entry);
        }
        let module = invocation.module.clone().or_else(|| entry.map(str::to_string));
        match module {
            Some(module) => self.run_module(&module),
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

    /// A standalone executable's program: the entry module's chunk (verified) called with the
    /// command line's arguments from a C frame, as `lua` calls a script, so that programs that
    /// read `...` or walk the stack to find themselves (LuaRocks) see what they see there.
    fn run_entry_as_script(&self, entry: &str) -> mlua::Result<i32> {
        let bundle = self.bundle;
        let position = bundle
            .position(entry)
            .map_err(mlua::Error::external)?
            .ok_or_else(|| mlua::Error::runtime(format!("the entry module {entry} is not in the bundle")))?;
        let record = bundle.record(position).map_err(mlua::Error::external)?;
        let bytes = bundle.verified_blob(position).map_err(mlua::Error::external)?;
        let (mode, chunk) = luabundle_runtime::chunk_text::for_load(record.kind, &bytes);
        let chunk: &[u8] = &chunk;
        let main = self.lua.load(chunk).set_name(record.chunk_name.as_str()).set_mode(mode).into_function()?;
        let args = self.strings(&self.invocation.args)?;
        Ok(if self.call(main, args)? { 0 } else { 1 })
    }

    /// Runs `module` (the entry, or `-m MOD`) as the program; a name the bundle lacks gets
    /// a suggestion.
    fn run_module(&self, module: &str) -> mlua::Result<i32> {
        let require: Function = self.lua.globals().get("require")?;
        let main = self
            .lua
            .load("local require, name = ... return function() return require(name) end")
            .set_name("=luabundle run")
            .call::<Function>((require, module))?;
        if self.call(main, MultiValue::new())? {
            return Ok(0);
        }
        // Only a name the bundle lacks is worth the whole index, for a suggestion.
        if let Ok(None) = self.bundle.position(module) {
            if let Ok(index) = self.bundle.index() {
                let names = index.modules.iter().map(|m| m.name.as_str());
                if let Some(close) = luabundle::analysis::graph::closest(module, names) {
                    eprintln!("help: the bundle has no module `{module}`; did you mean `{close}`?");
                }
            }
        }
        Ok(1)
    }

    /// `arg` as `lua` lays it out: the script at 0, its arguments after it, and everything
    /// before it (the running executable, `run`, the bundle and the options) below 0. With
    /// the entry module in place of a script, the bundle is at 0 and the arguments follow.
    fn set_arg_table(&self) -> mlua::Result<()> {
        let invocation = self.invocation;
        // A standalone executable is the program itself: its name at 0, nothing below.
        if self.args.exe {
            let table = self.lua.create_table()?;
            table.raw_set(0, self.lua.create_string(self.args.bundle.as_os_str().as_bytes())?)?;
            for (i, value) in invocation.args.iter().enumerate() {
                table.raw_set(i as i64 + 1, self.lua.create_string(value.as_bytes())?)?;
            }
            return self.lua.globals().set("arg", table);
        }
        let executable = std::env::current_exe().map(|p| p.into_os_string()).unwrap_or_else(|_| "luabundle".into());
        let mut argv: Vec<OsString> = vec![executable, "run".into(), self.args.bundle.clone().into_os_string()];
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
pub(super) fn protected_call(
    lua: &Lua,
    handler: &Function,
    main: Function,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
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
pub(super) fn without_runner_frames(traceback: &str) -> String {
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
