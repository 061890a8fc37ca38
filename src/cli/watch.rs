//! `luabundle build --watch`: rebuild whenever a file under the roots changes.
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

use super::build::{show, summary};

/// Quiet time that ends a burst of changes.
const DEBOUNCE: Duration = Duration::from_millis(150);

pub fn watch(builder: &Builder, output: &Path, quiet: bool) -> anyhow::Result<i32> {
    let (sender, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    })?;
    let mut watched = builder.watched_paths();
    watched.sort();
    watched.dedup();
    for path in &watched {
        let mode = if path.is_dir() { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
        watcher.watch(path, mode)?;
    }
    rebuild(builder, output, quiet, &[]);
    eprintln!("watching {} for changes (Ctrl-C to stop)", describe(&watched));
    let output = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
    loop {
        let Ok(first) = events.recv() else { return Ok(0) };
        let mut changed = BTreeSet::new();
        collect(first, &output, &mut changed);
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < DEBOUNCE {
            if let Ok(event) = events.recv_timeout(DEBOUNCE) {
                collect(event, &output, &mut changed);
                quiet_since = Instant::now();
            }
        }
        if !changed.is_empty() {
            let changed: Vec<PathBuf> = changed.into_iter().collect();
            rebuild(builder, &output, quiet, &changed);
        }
    }
}

/// Keeps the paths of `event` that can change the bundle: Lua files and options files.
fn collect(event: notify::Result<notify::Event>, output: &Path, changed: &mut BTreeSet<PathBuf>) {
    let Ok(event) = event else { return };
    if event.kind.is_access() {
        return;
    }
    for path in event.paths {
        let relevant = path.extension().is_some_and(|e| e == "lua" || e == "toml") || path.is_dir();
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
