//! What happens while modules load: lifecycle events for hooks, per-module statistics, and a
//! log of loads in completion order with their nesting (for `--importtime`-style reports).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a loaded module came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Bytecode or source from the bundle.
    Bundle,
    /// Source embedded beside bytecode this VM cannot run (`--embed-source`).
    EmbeddedSource,
    /// A Rust module registered with [`crate::Installer::native`].
    Native,
}

/// One lifecycle event, passed to hooks registered with [`crate::Installer::on_load`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadEvent {
    /// A module is about to load (its bytes are not read yet).
    Before {
        /// The module.
        module: String,
    },
    /// A module loaded.
    After {
        /// The module.
        module: String,
        /// Time from `Before` to now, nested loads included.
        duration: Duration,
        /// Bytes of bytecode (or source) handed to Lua; 0 for native modules.
        bytes: u64,
    },
    /// A module failed to load (damaged bytes, an error in its body, a failing native init).
    Error {
        /// The module.
        module: String,
        /// The error, as text.
        message: String,
    },
    /// A reload is about to take a loaded module out of `package.loaded` and load it again
    /// from the new bundle (see [`crate::Installed::reload`]).
    BeforeUnload {
        /// The module.
        module: String,
    },
    /// A reload loaded a module again from the new bundle, and its `__reload` hook (if any)
    /// returned.
    Reloaded {
        /// The module.
        module: String,
        /// Time of the new load and the hook.
        duration: Duration,
    },
}

/// Statistics of one module in one Lua state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleStats {
    /// The module.
    pub module: String,
    /// Where it came from.
    pub origin: Origin,
    /// Successful loads (more than one after [`crate::Installed::unload`]).
    pub loads: u32,
    /// Failed loads.
    pub failures: u32,
    /// Total time of its loads, nested loads included.
    pub load_time: Duration,
    /// Total time of its loads, nested loads excluded.
    pub self_time: Duration,
    /// Size of its bytecode (or source) in the bundle.
    pub bytes: u64,
}

/// One completed load, in completion order: a module's nested loads come before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRecord {
    /// The module.
    pub module: String,
    /// Where it came from.
    pub origin: Origin,
    /// How many loads were in progress when it started (0 for a top-level require).
    pub depth: usize,
    /// When it started, from the installation of the bundle.
    pub start: Duration,
    /// Time spent in this module alone: [`LoadRecord::read`], [`LoadRecord::undump`] and
    /// [`LoadRecord::execute`].
    pub self_time: Duration,
    /// Time including the modules it loaded.
    pub cumulative: Duration,
    /// Reading its bytes, checking their hash and decompressing them.
    pub read: Duration,
    /// Lua's load of the bytes: undumping bytecode, or parsing source.
    pub undump: Duration,
    /// Growth of the Lua heap while it loaded, nested loads excluded, in bytes (negative when
    /// a collection freed more than it allocated).
    pub memory: i64,
    /// Whether it loaded without error.
    pub ok: bool,
}

impl LoadRecord {
    /// Running its body, nested loads excluded: its self time less reading and undumping.
    pub fn execute(&self) -> Duration {
        self.self_time.saturating_sub(self.read + self.undump)
    }
}

/// A hook: called with every [`LoadEvent`].
pub type Hook = Arc<dyn Fn(&LoadEvent) + Send + Sync>;

struct Frame {
    module: String,
    origin: Origin,
    started: Instant,
    children: Duration,
    bytes: u64,
    read: Duration,
    undump: Duration,
    memory_at_start: usize,
    child_memory: i64,
}

/// The load tracker one installed state shares between its loaders and its `Installed`.
pub(crate) struct Tracker {
    /// When the bundle was installed: load start times are taken from here.
    installed: Instant,
    stack: Vec<Frame>,
    stats: BTreeMap<String, ModuleStats>,
    log: Vec<LoadRecord>,
    hooks: Vec<Hook>,
}

/// A tracker shared by the loader closures and the `Installed` handle.
pub(crate) type SharedTracker = Arc<Mutex<Tracker>>;

impl Tracker {
    pub(crate) fn new(hooks: Vec<Hook>) -> SharedTracker {
        Arc::new(Mutex::new(Tracker {
            installed: Instant::now(),
            stack: Vec::new(),
            stats: BTreeMap::new(),
            log: Vec::new(),
            hooks,
        }))
    }

    /// A load starts, with the Lua heap at `memory` bytes.
    pub(crate) fn begin(&mut self, module: &str, origin: Origin, memory: usize) {
        self.fire(&LoadEvent::Before { module: module.to_string() });
        self.stack.push(Frame {
            module: module.to_string(),
            origin,
            started: Instant::now(),
            children: Duration::ZERO,
            bytes: 0,
            read: Duration::ZERO,
            undump: Duration::ZERO,
            memory_at_start: memory,
            child_memory: 0,
        });
    }

    /// The module being loaded hands `bytes` to Lua, after `read` reading and verifying them
    /// and `undump` in Lua's load.
    pub(crate) fn record_load(&mut self, bytes: u64, read: Duration, undump: Duration) {
        if let Some(frame) = self.stack.last_mut() {
            frame.bytes = bytes;
            frame.read = read;
            frame.undump = undump;
        }
    }

    /// The innermost load ends, with `error` if it failed, and the Lua heap at `memory`.
    pub(crate) fn end(&mut self, error: Option<String>, memory: usize) {
        let Some(frame) = self.stack.pop() else { return };
        let cumulative = frame.started.elapsed();
        let self_time = cumulative.saturating_sub(frame.children);
        let grown = memory as i64 - frame.memory_at_start as i64;
        if let Some(parent) = self.stack.last_mut() {
            parent.children += cumulative;
            parent.child_memory += grown;
        }
        let stats = self.stats.entry(frame.module.clone()).or_insert_with(|| ModuleStats {
            module: frame.module.clone(),
            origin: frame.origin,
            loads: 0,
            failures: 0,
            load_time: Duration::ZERO,
            self_time: Duration::ZERO,
            bytes: 0,
        });
        let ok = error.is_none();
        if ok {
            stats.loads += 1;
            stats.load_time += cumulative;
            stats.self_time += self_time;
            stats.bytes = frame.bytes;
        } else {
            stats.failures += 1;
        }
        self.log.push(LoadRecord {
            module: frame.module.clone(),
            origin: frame.origin,
            depth: self.stack.len(),
            start: frame.started.saturating_duration_since(self.installed),
            self_time,
            cumulative,
            read: frame.read,
            undump: frame.undump,
            memory: grown - frame.child_memory,
            ok,
        });
        let event = match error {
            None => LoadEvent::After { module: frame.module, duration: cumulative, bytes: frame.bytes },
            Some(message) => LoadEvent::Error { module: frame.module, message },
        };
        self.fire(&event);
    }

    /// Passes `event` to the hooks.
    pub(crate) fn fire(&self, event: &LoadEvent) {
        for hook in &self.hooks {
            hook(event);
        }
    }

    /// The modules whose loads are in progress, outermost first.
    pub(crate) fn loading(&self) -> Vec<String> {
        self.stack.iter().map(|frame| frame.module.clone()).collect()
    }

    pub(crate) fn stats(&self) -> Vec<ModuleStats> {
        self.stats.values().cloned().collect()
    }

    pub(crate) fn log(&self) -> Vec<LoadRecord> {
        self.log.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_loads_split_self_and_cumulative_time() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let tracker = Tracker::new(vec![Arc::new(move |e: &LoadEvent| seen.lock().unwrap().push(e.clone()))]);
        let mut t = tracker.lock().unwrap();
        t.begin("outer", Origin::Bundle, 1000);
        t.record_load(100, Duration::from_micros(10), Duration::from_micros(20));
        t.begin("inner", Origin::Native, 1500);
        std::thread::sleep(Duration::from_millis(5));
        t.end(None, 1700);
        t.end(Some("boom".into()), 1900);
        let log = t.log();
        assert_eq!(
            log.iter().map(|r| (r.module.as_str(), r.depth, r.ok)).collect::<Vec<_>>(),
            [("inner", 1, true), ("outer", 0, false)]
        );
        assert!(log[1].cumulative >= log[0].cumulative);
        assert!(log[1].self_time <= log[1].cumulative - log[0].cumulative + Duration::from_millis(1));
        // Memory without the nested load's: 900 in all, 200 of them the inner module's.
        assert_eq!((log[0].memory, log[1].memory), (200, 700));
        assert_eq!((log[1].read, log[1].undump), (Duration::from_micros(10), Duration::from_micros(20)));
        assert_eq!(log[1].execute(), log[1].self_time.saturating_sub(Duration::from_micros(30)));
        assert!(log[0].start >= log[1].start);
        let stats = t.stats();
        assert_eq!((stats[0].module.as_str(), stats[0].loads, stats[0].failures), ("inner", 1, 0));
        assert_eq!((stats[1].module.as_str(), stats[1].loads, stats[1].failures), ("outer", 0, 1));
        let kinds: Vec<&str> = events
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                LoadEvent::Before { .. } => "before",
                LoadEvent::After { .. } => "after",
                LoadEvent::Error { .. } => "error",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["before", "before", "after", "error"]);
    }
}
