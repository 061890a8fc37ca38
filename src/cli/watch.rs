//! `luabundle build --watch`: rebuild whenever a file under the roots or a configuration
//! file changes, with the options read again after a configuration change.
//!
//! Changes are collected until the file system has been quiet for a moment, so saving many
//! files at once gives one rebuild. A build that fails prints its diagnostics and leaves the
//! last good bundle in place (bundles are only ever replaced whole).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use luabundle::Builder;
use notify::{RecursiveMode, Watcher};

use super::build::summary;
use super::source_args::show;

/// Quiet time that ends a burst of changes.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Builds, then rebuilds on every burst of changes. `configure` reads the options again
/// (after a configuration file changed); if they no longer make sense, the error is shown
/// and the last good options stay.
pub fn watch(
    mut builder: Builder,
    output: PathBuf,
    quiet: bool,
    configure: impl Fn() -> anyhow::Result<(Builder, PathBuf)>,
) -> anyhow::Result<i32> {
    let (sender, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    })?;
    let mut watched = Watched::default();
    watched.update(&mut watcher, builder.watched_paths())?;
    let mut output = std::path::absolute(&output).unwrap_or(output);
    rebuild(&builder, &output, quiet, &[]);
    eprintln!("watching {} for changes (Ctrl-C to stop)", describe(&watched.paths));
    loop {
        let Ok(first) = events.recv() else { return Ok(0) };
        let mut changed = BTreeSet::new();
        collect(first, &output, &watched, &mut changed);
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < DEBOUNCE {
            if let Ok(event) = events.recv_timeout(DEBOUNCE) {
                collect(event, &output, &watched, &mut changed);
                quiet_since = Instant::now();
            }
        }
        let changed: Vec<PathBuf> = changed.into_iter().collect();
        let cause = format!(" after changes to {}", describe(&changed));
        // A root deleted and made again has lost its watch: it is watched afresh.
        watched.renew(&mut watcher, &changed);
        if changed.iter().any(|path| watched.configs.contains(path)) {
            match configure() {
                Ok((fresh, fresh_output)) => {
                    builder = fresh;
                    output = std::path::absolute(&fresh_output).unwrap_or(fresh_output);
                    if let Err(err) = watched.update(&mut watcher, builder.watched_paths()) {
                        eprintln!("error: {err}");
                    }
                }
                Err(err) => {
                    eprintln!("error: {err:#}");
                    eprintln!("not rebuilt{cause}: kept the last good options and bundle {}", output.display());
                    continue;
                }
            }
        }
        if !changed.is_empty() {
            rebuild(&builder, &output, quiet, &changed);
        }
    }
}

/// What is being watched: the roots (recursively, and their parents, so that a root made
/// again is seen) and the configuration files.
#[derive(Default)]
struct Watched {
    paths: Vec<PathBuf>,
    roots: Vec<PathBuf>,
    configs: Vec<PathBuf>,
}

impl Watched {
    /// Watches `paths` (what the builder names), unwatching what it no longer names.
    fn update(&mut self, watcher: &mut impl Watcher, paths: Vec<PathBuf>) -> notify::Result<()> {
        let mut paths: Vec<PathBuf> = paths.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect();
        paths.sort();
        paths.dedup();
        for old in &self.paths {
            let _ = watcher.unwatch(old);
            if let Some(parent) = old.parent() {
                let _ = watcher.unwatch(parent);
            }
        }
        self.roots = paths.iter().filter(|p| p.is_dir()).cloned().collect();
        self.configs = paths.iter().filter(|p| !p.is_dir()).cloned().collect();
        for path in &paths {
            let mode = if path.is_dir() { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
            watcher.watch(path, mode)?;
            // The parent sees the path deleted and made again (editors save configuration
            // files that way, and a root can be replaced whole).
            if let Some(parent) = path.parent().filter(|p| p.is_dir()) {
                let _ = watcher.watch(parent, RecursiveMode::NonRecursive);
            }
        }
        self.paths = paths;
        Ok(())
    }

    /// Watches again each root or configuration file among `changed` that exists: one that
    /// was deleted lost its watch.
    fn renew(&mut self, watcher: &mut impl Watcher, changed: &[PathBuf]) {
        for path in self.paths.iter().filter(|p| changed.contains(p) && p.exists()) {
            let _ = watcher.unwatch(path);
            let mode = if path.is_dir() { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
            let _ = watcher.watch(path, mode);
        }
    }
}

/// Keeps the paths of `event` that can change the bundle: Lua files, options files and
/// directories (a deleted one no longer says it was one: any path without an extension).
fn collect(event: notify::Result<notify::Event>, output: &Path, watched: &Watched, changed: &mut BTreeSet<PathBuf>) {
    let Ok(event) = event else { return };
    if event.kind.is_access() {
        return;
    }
    for path in event.paths {
        // The parents are watched for the roots and files themselves only.
        let inside = watched.paths.contains(&path) || watched.roots.iter().any(|root| path.starts_with(root));
        let relevant = inside
            && (path.extension().is_some_and(|e| e == "lua" || e == "luau" || e == "toml")
                || path.is_dir()
                || path.extension().is_none());
        let ours = path == output || path.components().any(|c| c.as_os_str() == ".luabundle-cache");
        if relevant && !ours {
            changed.insert(path);
        }
    }
}

fn rebuild(builder: &Builder, output: &Path, quiet: bool, changed: &[PathBuf]) {
    let cause = if changed.is_empty() { String::new() } else { format!(" after changes to {}", describe(changed)) };
    match builder.try_build() {
        Ok(result) => {
            show(&result.warnings, false);
            if !quiet || !changed.is_empty() {
                eprintln!("{}{cause}", summary(&result, output));
            }
        }
        Err(luabundle::Error::Input(diagnostics)) => {
            show(&diagnostics, false);
            eprintln!("build failed{cause}; kept the last good bundle {}", output.display());
        }
        Err(other) => eprintln!("error: {other}{cause}"),
    }
}

/// `a.lua`, `a.lua and b.lua`, or `a.lua and 3 more`.
fn describe(paths: &[PathBuf]) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let show = |p: &PathBuf| p.strip_prefix(&cwd).unwrap_or(p).display().to_string();
    match paths {
        [] => "nothing".into(),
        [one] => show(one),
        [one, two] => format!("{} and {}", show(one), show(two)),
        [one, rest @ ..] => format!("{} and {} more", show(one), rest.len()),
    }
}
