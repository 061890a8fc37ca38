//! Command-line interface: argument parsing and dispatch. Each command has its own module;
//! errors become exit codes here (0 success, 1 errors in the input, 2 usage or I/O errors).

mod build;
mod cache;
mod check;
mod exe;
mod extract;
mod graph;
mod init;
mod inspect;
mod keygen;
mod progress;
mod report;
mod run;
mod source_args;
mod verify;
mod watch;
mod why;

use clap::{Parser, Subcommand};

/// Ahead-of-time Lua bundler: compile a tree of Lua modules into one verified bundle.
#[derive(Parser, Debug)]
#[command(name = "luabundle", version, about, propagate_version = true)]
struct Cli {
    /// Colour diagnostics: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

/// When diagnostics are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether diagnostics on stderr are coloured in this run.
fn color() -> bool {
    COLOR.load(std::sync::atomic::Ordering::Relaxed)
}

fn decide_color(choice: ColorChoice) {
    use std::io::IsTerminal;
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    COLOR.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse, check and compile every module under the roots into one bundle file.
    #[command(
        after_help = "Examples:\n  luabundle build src/ -o app.bundle --entry app.main\n  luabundle build            # roots, entry and output from luabundle.toml\n  luabundle build src/ -o app.bundle --watch"
    )]
    Build(build::BuildArgs),
    /// Report diagnostics for the roots without writing anything.
    #[command(after_help = "Example:\n  luabundle check src/")]
    Check(check::CheckArgs),
    /// Print the require graph as Graphviz dot, JSON or Mermaid.
    #[command(
        after_help = "Examples:\n  luabundle graph src/ --entry app.main | dot -Tsvg -o graph.svg\n  luabundle graph src/ --format json"
    )]
    Graph(graph::GraphArgs),
    /// List a bundle's target, entry and modules with sizes and dependencies.
    #[command(
        after_help = "Examples:\n  luabundle inspect app.bundle\n  luabundle inspect app.bundle --format html -o report.html\n  luabundle inspect app.bundle --json | jq '.modules[].name'"
    )]
    Inspect(inspect::InspectArgs),
    /// Write each module of a bundle back as a source file (embedded sources, or a source
    /// bundle's).
    #[command(
        after_help = "Example:\n  luabundle build src -o app.bundle --embed-source\n  luabundle extract app.bundle -o restored"
    )]
    Extract(extract::ExtractArgs),
    /// Check every checksum of a bundle and that its target is this program's Lua.
    #[command(after_help = "Example:\n  luabundle verify app.bundle")]
    Verify(verify::VerifyArgs),
    /// Make an Ed25519 key pair for signing bundles: FILE (secret) and FILE.pub.
    #[command(
        after_help = "Example:\n  luabundle keygen release.key\n  luabundle build src/ -o app.bundle --sign release.key\n  luabundle verify app.bundle --key release.key.pub"
    )]
    Keygen(keygen::KeygenArgs),
    /// Write a luabundle.toml for a directory (roots, entry, externals) and print the code to
    /// embed the bundle.
    #[command(after_help = "Example:\n  luabundle init && luabundle build")]
    Init(init::InitArgs),
    /// Show the require chains that pull a module into the bundle from the entry.
    #[command(after_help = "Example:\n  luabundle why app.util src/ --entry app.main")]
    Why(why::WhyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  luabundle completions bash > /etc/bash_completion.d/luabundle")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    #[command(after_help = "Example:\n  luabundle man > luabundle.1 && man ./luabundle.1")]
    Man,
    /// Manage the compile cache.
    #[command(subcommand, after_help = "Example:\n  luabundle cache prune --max-size 64M")]
    Cache(cache::CacheCommand),
    /// Run a bundle like the `lua` command: its entry module, or a script, code or a module.
    #[command(after_help = run::HELP)]
    Run(run::RunArgs),
}

/// Parses the arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    restore_broken_pipe_default();
    // An executable made by `build --exe` runs its bundle's entry with all its arguments.
    if let Some(embedded) = exe::embedded() {
        decide_color(ColorChoice::Auto);
        return run::run_embedded(&embedded).unwrap_or_else(|err| report(&err));
    }
    // `luabundle run BUNDLE ...` is read without building the whole command-line definition,
    // which would cost a short program a good part of its start-up; `run --help` and
    // options before the bundle go through clap.
    if let Some(args) = run::RunArgs::from_plain_command_line() {
        decide_color(ColorChoice::Auto);
        return run::run(args).unwrap_or_else(|err| report(&err));
    }
    let cli = Cli::parse();
    decide_color(cli.color);
    // `run` leaves signals to the program it runs, as `lua` does.
    if !matches!(cli.command, Command::Run(_)) {
        remove_temporaries_on_signals();
    }
    let result = match cli.command {
        Command::Build(args) => build::build(args),
        Command::Check(args) => check::check(args),
        Command::Graph(args) => graph::graph(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Verify(args) => verify::verify(args),
        Command::Extract(args) => extract::extract(args),
        Command::Run(args) => run::run(args),
        Command::Cache(command) => cache::cache(command),
        Command::Keygen(args) => keygen::keygen(args),
        Command::Why(args) => why::why(args),
        Command::Init(args) => init::init(args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "luabundle",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Man => man(),
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Prints the manual page.
fn man() -> anyhow::Result<i32> {
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout())?;
    Ok(0)
}

/// The exit code `err` calls for, without printing it.
fn report_quietly(err: &anyhow::Error) -> i32 {
    if let Some(err) = err.downcast_ref::<luabundle::Error>() {
        return err.exit_code();
    }
    match err.downcast_ref::<luabundle_runtime::Error>() {
        Some(luabundle_runtime::Error::Io { .. } | luabundle_runtime::Error::NotAFile { .. }) | None => 2,
        Some(_) => 1,
    }
}

/// Prints an error and returns its exit code.
fn report(err: &anyhow::Error) -> i32 {
    match (err.downcast_ref::<luabundle::Error>(), err.downcast_ref::<luabundle_runtime::Error>()) {
        // Diagnostics are already rendered with their own summary line.
        (Some(luabundle::Error::Input(diagnostics)), _) => eprint!("{}", diagnostics.render_styled(color())),
        (Some(other), _) => eprintln!("error: {other}"),
        // The runtime's messages already name the bundle and the cause.
        (None, Some(runtime)) => eprintln!("error: {runtime}"),
        (None, None) => eprintln!("error: {err:#}"),
    }
    report_quietly(err)
}

/// `1.2 KiB`-style sizes.
fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// The process's peak resident memory in bytes, where the system reports it.
#[cfg(unix)]
fn peak_memory() -> Option<u64> {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    // Linux reports kilobytes (macOS bytes).
    let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
    u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * scale)
}

/// The process's peak resident memory: not known here.
#[cfg(not(unix))]
fn peak_memory() -> Option<u64> {
    None
}

/// `12 ms` or `1.23 s`.
fn human_duration(elapsed: std::time::Duration) -> String {
    if elapsed.as_secs_f64() < 1.0 {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.2} s", elapsed.as_secs_f64())
    }
}

/// `1 module`, `2 modules`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A closed pipe (`luabundle inspect app.bundle | head`) ends the program quietly, as it does
/// other command-line tools, instead of a "failed printing to stdout" panic.
fn restore_broken_pipe_default() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// An interrupted command (Ctrl-C, `kill`, a closed terminal) removes the temporary files it
/// was writing, then dies of the signal as it would have. The signals are blocked in every
/// thread and taken by one thread of their own, where removing files is safe (a signal
/// handler could not take the registry's lock).
fn remove_temporaries_on_signals() {
    const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    // SAFETY: plain sigset operations on a local set, before any other thread starts, so
    // every thread created later inherits the mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let spawned = std::thread::Builder::new().name("luabundle-signals".into()).spawn(move || {
        let mut signal = 0;
        // SAFETY: waits on the signals blocked above.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        // Kept locked until the process ends: no temporary file is created after this.
        let _registry = luabundle::internals::remove_temporaries_in_flight();
        // SAFETY: back to the default action, unblocked, and raised again: the process ends
        // as the signal ends it (status 128 + signal to a shell).
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
    });
    if spawned.is_err() {
        // Without the thread, the signals keep their usual effect.
        // SAFETY: unblocks what was blocked above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
