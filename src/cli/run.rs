//! `luabundle run`: a fresh Lua state with the bundle installed, running the entry module, a
//! script, a string of code or a named module, with `arg` set up as `lua` does.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use luabundle_runtime::Bundle;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Value};

/// `luabundle run` options.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("what").multiple(false))]
pub struct RunArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// A Lua script to run instead of the entry module.
    #[arg(group = "what")]
    script: Option<PathBuf>,
    /// Lua code to run instead of the entry module.
    #[arg(short = 'e', value_name = "CODE", group = "what")]
    code: Option<String>,
    /// A module to require instead of the entry module.
    #[arg(short = 'm', value_name = "MOD", group = "what")]
    module: Option<String>,
    /// Search only the bundle: no Lua or C modules from the file system.
    #[arg(long)]
    hermetic: bool,
    /// Make only this profile's modules requirable.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Print a table of module load times on stderr at exit, nested by who required whom.
    #[arg(long)]
    importtime: bool,
    /// Write the modules loaded, in load order, to FILE (one per line), for prefetching.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Let the program `load` binary chunks (bytecode); text only by default.
    #[arg(long)]
    allow_binary_chunks: bool,
    /// Arguments for the Lua program, in `arg` (and `...` for a script).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// The message handler: the error as text, with a traceback, as `lua` prints it (Luau's
/// traceback gets the same `stack traceback:` heading).
const MESSAGE_HANDLER: &str = r#"
local traceback, getmetatable, tostring, type = debug.traceback, getmetatable, tostring, type
local luau = _VERSION:sub(1, 4) == "Luau"
return function(err)
  local message = err
  if type(err) ~= "string" then
    local meta = getmetatable(err)
    message = (meta and meta.__tostring) and tostring(err) or ("(error object is a " .. type(err) .. " value)")
  end
  if luau then return message .. "\nstack traceback:\n" .. traceback("", 2):gsub("^\n", "") end
  return traceback(message, 2)
end
"#;

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let bundle = Bundle::open(&args.bundle)?;
    // SAFETY: the state gets the full standard library, `debug` included, as the `lua`
    // interpreter does (tracebacks and programs that read `debug.getinfo` need it). Bundle
    // modules are still loaded only after their checksums are verified.
    let lua = unsafe { Lua::unsafe_new() };
    let mut installer = bundle.installer().hermetic(args.hermetic).allow_binary_chunks(args.allow_binary_chunks);
    if let Some(profile) = &args.profile {
        installer = installer.profile(profile);
    }
    let installed = installer.install(&lua)?;
    let script = match &args.script {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?),
        None => None,
    };
    let outcome = execute(&lua, &bundle, &args, script).map_err(|err| anyhow::anyhow!("{err}"));
    if args.importtime {
        eprint!("{}", importtime_table(&installed.load_log()));
    }
    if let Some(path) = &args.record {
        let mut names: Vec<String> = Vec::new();
        for record in installed.load_log().into_iter().filter(|r| r.ok) {
            if !names.contains(&record.module) {
                names.push(record.module);
            }
        }
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let outcome = outcome?;
    match outcome {
        Outcome::Done => Ok(0),
        Outcome::Failed(message) => {
            eprintln!("luabundle: {}", without_runner_frames(&message));
            Ok(1)
        }
        Outcome::NoEntry => {
            eprintln!(
                "error: bundle {} has no entry module; pass a script, -e CODE or -m MOD, or build with --entry",
                args.bundle.display()
            );
            Ok(2)
        }
    }
}

enum Outcome {
    Done,
    Failed(String),
    NoEntry,
}

fn execute(lua: &Lua, bundle: &Bundle, args: &RunArgs, script: Option<Vec<u8>>) -> mlua::Result<Outcome> {
    let script_name = args.script.as_ref().unwrap_or(&args.bundle).display().to_string();
    set_arg_table(lua, &script_name, &args.args)?;
    let program = match program(lua, bundle, args, script) {
        Ok(Some(program)) => program,
        Ok(None) => return Ok(Outcome::NoEntry),
        // A script or -e code that does not compile is an error in the input.
        Err(mlua::Error::SyntaxError { message, .. }) => return Ok(Outcome::Failed(message)),
        Err(other) => return Err(other),
    };
    let handler: Function = lua.load(MESSAGE_HANDLER).set_name("=luabundle run").eval()?;
    // `xpcall` is called straight from Rust, so below the program there is one C frame and
    // nothing else, as under `lua` (programs that walk the stack with debug.getinfo, like
    // LuaRocks finding its own path, see the same thing).
    // Lua 5.1's xpcall passes no arguments on; there, pcall runs the program (and the error
    // is shown without a traceback).
    let (protect, mut call) = if cfg!(feature = "lua51") {
        (lua.globals().get::<Function>("pcall")?, MultiValue::from_vec(vec![Value::Function(program)]))
    } else {
        let call = MultiValue::from_vec(vec![Value::Function(program), Value::Function(handler)]);
        (lua.globals().get::<Function>("xpcall")?, call)
    };
    for value in &args.args {
        call.push_back(Value::String(lua.create_string(value)?));
    }
    let mut results = protect.call::<MultiValue>(call)?;
    match results.pop_front() {
        Some(Value::Boolean(true)) => Ok(Outcome::Done),
        _ => {
            let message = results.pop_front().map(|v| v.to_string()).transpose()?;
            Ok(Outcome::Failed(message.unwrap_or_default()))
        }
    }
}

/// The function to run, or `None` when nothing was asked and the bundle has no entry.
fn program(lua: &Lua, bundle: &Bundle, args: &RunArgs, script: Option<Vec<u8>>) -> mlua::Result<Option<Function>> {
    if let (Some(path), Some(text)) = (&args.script, script) {
        // Like `lua`, skip a byte order mark and a first line starting with `#`.
        let text = luabundle::source::prepare_bytes(&text).into_owned();
        let chunk = lua.load(text).set_name(format!("@{}", path.display())).set_mode(ChunkMode::Text);
        return chunk.into_function().map(Some);
    }
    if let Some(code) = &args.code {
        return lua.load(code.as_str()).set_name("=(command line)").set_mode(ChunkMode::Text).into_function().map(Some);
    }
    let module = match (&args.module, bundle.entry()) {
        (Some(module), _) => module.clone(),
        (None, Some(entry)) => entry.to_string(),
        (None, None) => return Ok(None),
    };
    let require: Function = lua.globals().get("require")?;
    lua.load("local require, name = ... return function() return require(name) end")
        .set_name("=luabundle run")
        .call((require, module))
        .map(Some)
}

/// `arg[0]` is the script (or the bundle), `arg[1..]` the arguments, `arg[-1]` the program.
fn set_arg_table(lua: &Lua, script_name: &str, args: &[String]) -> mlua::Result<()> {
    let table = lua.create_table()?;
    table.raw_set(-1, "luabundle")?;
    table.raw_set(0, script_name)?;
    for (i, value) in args.iter().enumerate() {
        table.raw_set(i + 1, value.as_str())?;
    }
    lua.globals().set("arg", Value::Table(table))
}

/// The traceback without the frames of this runner's own wrapper chunks.
fn without_runner_frames(traceback: &str) -> String {
    traceback
        .lines()
        .filter(|line| !line.contains("luabundle run:") && !line.contains("in function 'xpcall'"))
        .collect::<Vec<_>>()
        .join("\n")
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
