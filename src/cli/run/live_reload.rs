//! `luabundle run --watch`: the running program gets each newer bundle through
//! `Installed::reload`, so that edits take effect without a restart.
//!
//! A watcher thread waits for changes: to the source roots (a run of a directory, which is
//! built into a bundle of its own and rebuilt on each change) or to the bundle file (rebuilt
//! by someone else, `luabundle build --watch` say). It opens the new bundle and leaves it for
//! the Lua thread, which a hook stops every few thousand instructions: there the bundle is
//! reloaded into the running state, between two instructions of the program, and one line
//! says what was reloaded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use luabundle::Builder;
use luabundle_runtime::{Bundle, Installed, ReloadReport};
use mlua::Lua;
use notify::{RecursiveMode, Watcher};

/// Quiet time that ends a burst of changes (an editor saving several files, a build
/// replacing the bundle).
const DEBOUNCE: Duration = Duration::from_millis(150);

/// How often, in Lua instructions, the running program looks for a new bundle.
#[cfg(not(feature = "luau"))]
const CHECK_EVERY: u32 = 10_000;

/// Where a run's bundles come from.
pub(super) enum Origin {
    /// Source roots, built into a bundle in a directory of its own.
    Roots { builder: Box<Builder>, output: PathBuf, _dir: tempfile::TempDir },
    /// A bundle file, replaced by builds.
    File(PathBuf),
}

impl Origin {
    /// The bundle `path` names: a bundle file, or a source root built into one.
    ///
    /// # Errors
    /// A bundle that cannot be opened, or a build that fails (its diagnostics).
    pub(super) fn open(path: &Path) -> anyhow::Result<(Origin, Bundle)> {
        if !path.is_dir() {
            return Ok((Origin::File(path.to_path_buf()), Bundle::open(path)?));
        }
        let root = path.to_string_lossy().into_owned();
        let (mut builder, _) = crate::cli::source_args::builder_for_roots(vec![root])?;
        let dir = tempfile::tempdir()?;
        let output = dir.path().join("run.bundle");
        builder.output(&output);
        builder.try_build()?;
        let bundle = Bundle::open(&output)?;
        Ok((Origin::Roots { builder: Box::new(builder), output, _dir: dir }, bundle))
    }

    /// What to watch, and whether recursively.
    fn watched(&self) -> Vec<(PathBuf, RecursiveMode)> {
        match self {
            Origin::Roots { builder, .. } => {
                builder.watched_paths().into_iter().map(|p| (p, RecursiveMode::Recursive)).collect()
            }
            // A build replaces the file: its directory sees the new one arrive.
            Origin::File(path) => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                vec![(parent.to_path_buf(), RecursiveMode::NonRecursive)]
            }
        }
    }

    /// Whether a change to `path` concerns this run.
    fn concerns(&self, path: &Path) -> bool {
        match self {
            Origin::Roots { output, .. } => path != output,
            Origin::File(bundle) => path.file_name() == bundle.file_name(),
        }
    }

    /// The bundle after a change: rebuilt from the roots, or opened again. `None` (with the
    /// reason printed) when the build failed or the file is not a bundle yet.
    fn fresh(&self) -> Option<Bundle> {
        let opened = match self {
            Origin::Roots { builder, output, .. } => match builder.try_build() {
                Ok(_) => Bundle::open(output),
                Err(luabundle::Error::Input(diagnostics)) => {
                    crate::cli::source_args::show(&diagnostics, false);
                    eprintln!("luabundle: the program keeps running its last good modules");
                    return None;
                }
                Err(err) => {
                    eprintln!("luabundle: rebuild failed: {err}");
                    return None;
                }
            },
            Origin::File(path) => Bundle::open(path),
        };
        opened.map_err(|err| eprintln!("luabundle: {err}; the program keeps running its last good modules")).ok()
    }
}

/// A bundle waiting for the Lua thread.
#[derive(Default)]
struct Pending {
    waiting: AtomicBool,
    bundle: Mutex<Option<Bundle>>,
}

/// A watch running beside the program; it ends with the run.
pub(super) struct Watching {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `origin` and makes `lua` reload each new bundle into `installed`.
///
/// # Errors
/// A path that cannot be watched, or a state that refuses the hook.
pub(super) fn start(lua: &Lua, installed: Installed, origin: Origin) -> anyhow::Result<Watching> {
    let (sender, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    })?;
    let watched = origin.watched();
    for (path, mode) in &watched {
        watcher.watch(path, *mode).map_err(|err| anyhow::anyhow!("cannot watch {}: {err}", path.display()))?;
    }
    let names: Vec<String> = watched.iter().map(|(path, _)| path.display().to_string()).collect();
    eprintln!("luabundle: watching {} for changes", names.join(", "));
    let pending = Arc::new(Pending::default());
    let from_watcher = pending.clone();
    std::thread::spawn(move || watch_loop(&origin, &events, &from_watcher));
    check_for_bundles(lua, installed, pending)?;
    Ok(Watching { _watcher: watcher })
}

/// Waits for bursts of changes and leaves each new bundle for the Lua thread.
fn watch_loop(origin: &Origin, events: &mpsc::Receiver<notify::Result<notify::Event>>, pending: &Pending) {
    let concerns = |event: notify::Result<notify::Event>| {
        event.is_ok_and(|event| event.paths.iter().any(|path| origin.concerns(path)))
    };
    while let Ok(first) = events.recv() {
        if !concerns(first) {
            continue;
        }
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < DEBOUNCE {
            if events.recv_timeout(DEBOUNCE).is_ok() {
                quiet_since = Instant::now();
            }
        }
        if let Some(bundle) = origin.fresh() {
            if let Ok(mut slot) = pending.bundle.lock() {
                *slot = Some(bundle);
                pending.waiting.store(true, Ordering::Release);
            }
        }
    }
}

/// A hook that reloads a waiting bundle between two instructions of the program. LuaJIT
/// calls hooks from its interpreter only, so the compiler is turned off for the run.
#[cfg(not(feature = "luau"))]
fn check_for_bundles(lua: &Lua, installed: Installed, pending: Arc<Pending>) -> anyhow::Result<()> {
    if cfg!(feature = "luajit") {
        lua.load("if jit then jit.off() end").exec().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let triggers = mlua::HookTriggers::new().every_nth_instruction(CHECK_EVERY);
    lua.set_global_hook(triggers, move |_, _| {
        reload_waiting(&installed, &pending);
        Ok(mlua::VmState::Continue)
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Luau's interrupt, which it calls at function calls and loop back-edges.
#[cfg(feature = "luau")]
fn check_for_bundles(lua: &Lua, installed: Installed, pending: Arc<Pending>) -> anyhow::Result<()> {
    lua.set_interrupt(move |_| {
        reload_waiting(&installed, &pending);
        Ok(mlua::VmState::Continue)
    });
    Ok(())
}

fn reload_waiting(installed: &Installed, pending: &Pending) {
    if !pending.waiting.swap(false, Ordering::Acquire) {
        return;
    }
    let Some(bundle) = pending.bundle.lock().ok().and_then(|mut slot| slot.take()) else { return };
    // The same bundle again (an unchanged rebuild) reloads nothing.
    if bundle.header().root_hash == installed.bundle().header().root_hash {
        return;
    }
    let started = Instant::now();
    match installed.reload(&bundle) {
        Ok(report) => eprintln!("luabundle: {}", describe(&report, started.elapsed())),
        Err(err) => eprintln!("luabundle: reload refused: {err}"),
    }
}

/// One line about a reload.
fn describe(report: &ReloadReport, took: Duration) -> String {
    let mut parts = Vec::new();
    if !report.reloaded.is_empty() {
        parts.push(format!("reloaded {}", report.reloaded.join(", ")));
    }
    for failure in &report.failed {
        let message = failure.message.lines().next().unwrap_or_default();
        parts.push(format!("{} failed (old version kept): {message}", failure.module));
    }
    if !report.removed.is_empty() {
        parts.push(format!("unloaded {} (no longer in the bundle)", report.removed.join(", ")));
    }
    if parts.is_empty() {
        parts.push("no loaded module changed".to_string());
    }
    format!("{}; {} kept, in {:.1} ms", parts.join("; "), report.kept, took.as_secs_f64() * 1000.0)
}
