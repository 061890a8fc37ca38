//! `luabundle run`: the `lua` command with a bundle installed.
//!
//! `luabundle run BUNDLE [options] [script [args]]` reads `lua`'s own options with `lua`'s
//! meaning and order (`-e`, `-l`, `-i`, `-v`, `-E`, `-W`, `-`, `--`), honours `LUA_INIT`,
//! lays out `arg` as `lua` does, and prints errors as `lua` does; the bundle's own options
//! and `-m MOD` come before the script. With no script, no `-e` and no `-i`, it runs the
//! bundle's entry module (or `-m MOD`), which takes its arguments after `--`.

mod command_line;
mod live_reload;
mod session;
mod startup;
mod state;

use clap::Args;
use luabundle_runtime::Bundle;
use std::ffi::OsString;
use std::path::PathBuf;

use command_line::{parse, Usage};
use session::Session;
use state::new_state;

/// `luabundle run` arguments: the bundle, then options and the program as for `lua`.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// The bundle file, or a source directory to build into one.
    bundle: PathBuf,
    /// Options, then the script and its arguments, as for `lua` (see below).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    rest: Vec<OsString>,
    /// Reload each newer bundle into the running program (also accepted after the bundle).
    #[arg(long)]
    watch: bool,
    /// Write the run's module loads to FILE as a profile (also accepted after the bundle).
    #[arg(long, value_name = "FILE")]
    profile_out: Option<PathBuf>,
    /// The profile's format: chrome (Perfetto, chrome://tracing), speedscope or collapsed
    /// (flamegraph tools) [default: chrome].
    #[arg(long, value_name = "FORMAT")]
    profile_format: Option<String>,
    /// Run the program N times and take medians (for the profile and the budgets).
    #[arg(long, value_name = "N")]
    repeat: Option<String>,
    /// Fail (exit 1) when loading modules takes longer than this, e.g. 50ms.
    #[arg(long, value_name = "TIME")]
    max_startup: Option<String>,
    /// Fail (exit 1) naming each module whose own load takes longer than this, e.g. 5ms.
    #[arg(long, value_name = "TIME")]
    max_module_time: Option<String>,
    /// Run as a standalone executable (`build --exe`): the entry module is the program, run
    /// as `lua` runs a script, and `bundle` is the name the executable was started by.
    #[arg(skip)]
    exe: bool,
}

impl RunArgs {
    /// The arguments of `luabundle run BUNDLE [ARGS]` when the process was started so, with a
    /// bundle that is not an option: what clap would give, read directly.
    pub fn from_plain_command_line() -> Option<RunArgs> {
        let mut raw = std::env::args_os().skip(1);
        if raw.next()? != "run" {
            return None;
        }
        let bundle = raw.next().filter(|b| !b.as_encoded_bytes().starts_with(b"-"))?;
        Some(RunArgs { bundle: PathBuf::from(bundle), rest: raw.collect(), ..RunArgs::default() })
    }
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
  --profile-out FILE
                   write the run's module loads to FILE: each module's own time split into
                   read+verify, undump and execute, and the Lua memory it allocated
  --profile-format chrome|speedscope|collapsed
                   Perfetto and chrome://tracing, speedscope, or flamegraph tools [chrome]
  --repeat N       run the program N times; the profile and budgets take medians
  --max-startup TIME
                   exit 1 when loading modules takes longer than TIME (e.g. 50ms)
  --max-module-time TIME
                   exit 1 naming each module whose own load takes longer than TIME (5ms)
  --watch          reload each newer bundle into the running program: the bundle file
                   when a build replaces it, or the directory's sources when they change
                   (modules that changed and those that require them load again)
With no script, -e, -i or -v, the entry module (or -m MOD) runs, with the arguments after
`--` in `arg` (`luabundle run app.bundle -- one two`); a bundle without an entry then reads
a program from standard input, or starts the interactive prompt on a terminal.

Examples:
  luabundle run app.bundle -- --verbose
  luabundle run app.bundle -m app.tool
  luabundle run app.bundle -e \"print(require('app.util').answer)\"
  luabundle run lr.bundle /usr/bin/luarocks --version
  luabundle run --watch src -m app.server";

pub fn run(mut args: RunArgs) -> anyhow::Result<i32> {
    args.rest = raw_rest(&args);
    let (origin, bundle) = live_reload::Origin::open(&args.bundle)?;
    run_opened(args, bundle, Some(origin))
}

/// Runs the bundle appended to this executable (`build --exe`): its entry module as the
/// program, as `lua` runs a script: every argument of the command line in `arg` (the name the
/// executable was started by at 0) and as the chunk's `...`.
pub fn run_embedded(embedded: &crate::cli::exe::Embedded) -> anyhow::Result<i32> {
    let bytes = embedded.bytes().map_err(|e| anyhow::anyhow!("cannot read {}: {e}", embedded.path.display()))?;
    let bundle = Bundle::from_bytes_named(bytes, format!("appended to {}", embedded.path.display()))?;
    if bundle.entry()?.is_none() {
        anyhow::bail!("{} holds a bundle without an entry module", embedded.path.display());
    }
    let mut argv = std::env::args_os();
    // `arg[0]` is the name the program was started by, as a script's is in `lua`.
    let name = argv.next().map(PathBuf::from).unwrap_or_else(|| embedded.path.clone());
    let mut rest: Vec<OsString> = vec!["--".into()];
    rest.extend(argv);
    run_opened(RunArgs { bundle: name, rest, exe: true, ..RunArgs::default() }, bundle, None)
}

/// Runs `bundle` as the arguments ask; with `--watch`, reloading each newer bundle `origin`
/// gives.
fn run_opened(args: RunArgs, bundle: Bundle, origin: Option<live_reload::Origin>) -> anyhow::Result<i32> {
    let mut invocation = match parse(&args.rest) {
        Ok(invocation) => invocation,
        Err(Usage(message)) => {
            eprintln!("luabundle: {message}");
            eprintln!("usage: luabundle run BUNDLE [options] [script [args]]\n{HELP}");
            return Ok(1);
        }
    };
    // `-m MOD -- args` and `BUNDLE -- args` (an entry module with arguments): what follows
    // `--` is the module's arguments, not a script.
    let runs_module = invocation.module.is_some()
        || (bundle.entry()?.is_some()
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
    let startup = std::mem::take(&mut invocation.startup).or(args.startup_options()?);
    let watch = invocation.watch || args.watch;
    if watch && startup.runs() > 1 {
        anyhow::bail!("--watch keeps one run going; it cannot be repeated (--repeat)");
    }
    // Each run in a state of its own; the last one's status, statistics and watch stand.
    let mut profiles = Vec::new();
    let mut origin = origin;
    let mut last = None;
    for _ in 0..startup.runs() {
        let lua = new_state(invocation.ignore_environment).map_err(lua_error)?;
        let mut installer =
            bundle.installer().hermetic(invocation.hermetic).allow_binary_chunks(invocation.allow_binary_chunks);
        if let Some(profile) = &invocation.profile {
            installer = installer.profile(profile);
        }
        let installed = installer.install(&lua)?;
        let _watching = match (watch, origin.take()) {
            (true, Some(origin)) => Some(live_reload::start(&lua, installed.clone(), origin)?),
            (true, None) => anyhow::bail!("--watch needs a bundle file or a source directory to watch"),
            (false, _) => None,
        };
        let status =
            Session::new(&lua, &bundle, &args, &invocation).and_then(|session| session.run()).map_err(lua_error);
        if startup.wanted() {
            profiles.push(installed.profile());
        }
        last = Some((status, installed));
    }
    let (status, installed) = last.expect("at least one run");
    let over_budget = startup::finish(&startup, &profiles)?;
    let status = status.map(|code| if code == 0 { over_budget } else { code });
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

impl RunArgs {
    /// The start-up options given before the bundle.
    fn startup_options(&self) -> anyhow::Result<startup::StartupOptions> {
        let mut options = startup::StartupOptions { out: self.profile_out.clone(), ..Default::default() };
        let given = [
            ("--profile-format", &self.profile_format),
            ("--repeat", &self.repeat),
            ("--max-startup", &self.max_startup),
            ("--max-module-time", &self.max_module_time),
        ];
        for (name, value) in given {
            if let Some(value) = value {
                command_line::startup_option(&mut options, name, value).map_err(|e| anyhow::anyhow!(e))?;
            }
        }
        Ok(options)
    }
}

/// The arguments after the bundle exactly as given: clap drops the first `--`, which `lua`
/// reads as "stop handling options".
fn raw_rest(args: &RunArgs) -> Vec<OsString> {
    let raw: Vec<OsString> = std::env::args_os().collect();
    let found = raw.iter().skip(1).position(|a| a == "run").map(|p| p + 1);
    // The bundle, after the options clap reads before it (`--watch`, the start-up options
    // and their values).
    let bundle_at = found.map(|at| {
        let mut i = at + 1;
        while let Some(option) = raw.get(i).and_then(|a| a.to_str()) {
            if option == "--watch" || option.contains('=') && option.starts_with("--") {
                i += 1;
            } else if command_line::STARTUP_OPTIONS.contains(&option) {
                i += 2;
            } else {
                break;
            }
        }
        i
    });
    match bundle_at {
        Some(at) if raw.get(at).is_some_and(|b| *b == *args.bundle.as_os_str()) => raw[at + 1..].to_vec(),
        _ => args.rest.clone(),
    }
}

/// A Lua error as this command's error (mlua's errors are not `Send`).
fn lua_error(err: mlua::Error) -> anyhow::Error {
    anyhow::anyhow!("{err}")
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
