//! The compile cache: what parsing and compiling one source file produced (its require sites
//! and its bytecode), stored under a hash of everything that determines it.
//!
//! The key is blake3 over the source bytes, the Lua flavour and bytecode header of the VM,
//! the strip flag and this tool's version, so an entry can never be stale: a changed input is
//! a different key. Entries carry a hash of their own contents and are written through a
//! temporary file and a rename, so a damaged or half-written entry is never used (it is
//! recompiled and replaced). A size cap keeps the directory from growing without bound.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::requires::RequireSite;

/// Magic bytes that start every entry; the digit is the entry format's version.
const ENTRY_MAGIC: &[u8; 8] = b"LBCACHE1";
/// Entries live under this subdirectory, so another entry format can live beside it.
const LAYOUT: &str = "v1";
/// Default size cap in bytes.
pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;
/// After pruning, the cache holds at most this share of the cap.
const PRUNE_TO_PERCENT: u64 = 80;

/// A cache key: blake3 of a source file and everything else that determines its output.
pub type Key = [u8; 32];

/// What the cache keeps for one source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The file's require sites.
    pub sites: Vec<RequireSite>,
    /// Its bytecode.
    pub bytecode: Vec<u8>,
}

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    max_size: u64,
}

impl Cache {
    /// A cache in `dir` (created on first store) with the default size cap.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into(), max_size: DEFAULT_MAX_SIZE }
    }

    /// Sets the size cap in bytes.
    pub fn with_max_size(mut self, max_size: u64) -> Cache {
        self.max_size = max_size;
        self
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `text` compiled for the linked VM with `strip`.
    pub fn key(text: &str, strip: bool) -> Key {
        let target = luabundle_runtime::target::linked();
        let mut hasher = blake3::Hasher::new();
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.update(&[0]);
        hasher.update(target.flavour.as_bytes());
        hasher.update(&[0]);
        hasher.update(&target.bytecode_header);
        hasher.update(&[u8::from(strip)]);
        hasher.update(text.as_bytes());
        *hasher.finalize().as_bytes()
    }

    fn path_of(&self, key: &Key) -> PathBuf {
        let hex = blake3::Hash::from_bytes(*key).to_hex();
        self.dir.join(LAYOUT).join(&hex[..2]).join(&hex[2..])
    }

    /// The entry for `key`, if one is stored and intact. A damaged entry is removed.
    pub fn load(&self, key: &Key) -> Option<Entry> {
        let path = self.path_of(key);
        let bytes = fs::read(&path).ok()?;
        let entry = decode(&bytes);
        if entry.is_none() {
            let _ = fs::remove_file(&path);
        }
        entry
    }

    /// Stores `entry` under `key`, atomically. Returns the bytes written; failures are
    /// ignored (a cache that cannot be written only makes the next build slower).
    pub fn store(&self, key: &Key, entry: &Entry) -> u64 {
        let path = self.path_of(key);
        let bytes = encode(entry);
        let written = (|| -> std::io::Result<()> {
            let dir = path.parent().expect("entry paths have a parent");
            fs::create_dir_all(dir)?;
            let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
            temp.write_all(&bytes)?;
            temp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if written.is_ok() {
            bytes.len() as u64
        } else {
            0
        }
    }

    /// Notes that `added` bytes were stored and prunes when the cache may be over its cap.
    /// The running total is kept in a small file, so most builds do not walk the cache.
    pub fn account(&self, added: u64) {
        if added == 0 {
            return;
        }
        let ledger = self.dir.join(LAYOUT).join("size");
        let total = fs::read_to_string(&ledger).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0) + added;
        let total =
            if total > self.max_size { self.prune(self.max_size).map_or(total, |r| r.kept_bytes) } else { total };
        let _ = fs::write(&ledger, total.to_string());
    }

    /// Removes the oldest entries until the cache holds at most [`PRUNE_TO_PERCENT`] of
    /// `max_size` bytes (nothing when it is already under `max_size`).
    ///
    /// # Errors
    /// If the cache directory cannot be listed.
    pub fn prune(&self, max_size: u64) -> std::io::Result<PruneReport> {
        let mut entries = Vec::new();
        let root = self.dir.join(LAYOUT);
        if !root.is_dir() {
            return Ok(PruneReport::default());
        }
        for shard in fs::read_dir(&root)? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for file in fs::read_dir(&shard)? {
                let file = file?;
                let meta = file.metadata()?;
                entries.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), file.path()));
            }
        }
        let total: u64 = entries.iter().map(|e| e.1).sum();
        let mut report = PruneReport { kept_entries: entries.len(), kept_bytes: total, ..PruneReport::default() };
        if total <= max_size {
            return Ok(report);
        }
        let goal = max_size / 100 * PRUNE_TO_PERCENT;
        entries.sort();
        for (_, len, path) in entries {
            if report.kept_bytes <= goal {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                report.kept_bytes -= len;
                report.kept_entries -= 1;
                report.removed_entries += 1;
                report.removed_bytes += len;
            }
        }
        let _ = fs::write(root.join("size"), report.kept_bytes.to_string());
        Ok(report)
    }
}

/// What [`Cache::prune`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Entries removed.
    pub removed_entries: usize,
    /// Bytes removed.
    pub removed_bytes: u64,
    /// Entries left.
    pub kept_entries: usize,
    /// Bytes left.
    pub kept_bytes: u64,
}

/// `magic | blake3(body) | body`, where body is `u32 LE length | sites JSON | bytecode`.
fn encode(entry: &Entry) -> Vec<u8> {
    let sites = serde_json::to_vec(&entry.sites).expect("require sites serialise");
    let mut body = Vec::with_capacity(4 + sites.len() + entry.bytecode.len());
    body.extend_from_slice(&(sites.len() as u32).to_le_bytes());
    body.extend_from_slice(&sites);
    body.extend_from_slice(&entry.bytecode);
    let mut out = Vec::with_capacity(40 + body.len());
    out.extend_from_slice(ENTRY_MAGIC);
    out.extend_from_slice(blake3::hash(&body).as_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode(bytes: &[u8]) -> Option<Entry> {
    let rest = bytes.strip_prefix(ENTRY_MAGIC)?;
    let (hash, body) = rest.split_at_checked(32)?;
    if blake3::hash(body).as_bytes() != hash {
        return None;
    }
    let (len, body) = body.split_at_checked(4)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let (sites, bytecode) = body.split_at_checked(len)?;
    Some(Entry { sites: serde_json::from_slice(sites).ok()?, bytecode: bytecode.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requires::{Target, Timing};

    fn entry() -> Entry {
        let site =
            RequireSite { target: Target::Name("a.b".into()), range: 3..17, timing: Timing::Deferred, optional: true };
        Entry { sites: vec![site], bytecode: b"\x1bLua\x54 bytecode".to_vec() }
    }

    #[test]
    fn entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = Cache::key("return 1", false);
        assert_eq!(cache.load(&key), None);
        assert!(cache.store(&key, &entry()) > 0);
        assert_eq!(cache.load(&key), Some(entry()));
    }

    #[test]
    fn keys_change_with_source_and_strip() {
        assert_ne!(Cache::key("return 1", false), Cache::key("return 2", false));
        assert_ne!(Cache::key("return 1", false), Cache::key("return 1", true));
        assert_eq!(Cache::key("return 1", false), Cache::key("return 1", false));
    }

    #[test]
    fn damaged_or_truncated_entries_are_never_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = Cache::key("x = 1", false);
        cache.store(&key, &entry());
        let path = cache.path_of(&key);
        let good = fs::read(&path).unwrap();
        for damage in [good.len() - 1, 45, 8, 0] {
            let mut bytes = good.clone();
            if damage == 0 {
                bytes.truncate(20);
            } else {
                bytes[damage] ^= 0x01;
            }
            fs::write(&path, &bytes).unwrap();
            assert_eq!(cache.load(&key), None, "damage at {damage} went unnoticed");
            assert!(!path.exists(), "a damaged entry is removed");
        }
    }

    #[test]
    fn prune_removes_the_oldest_entries_down_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let mut keys = Vec::new();
        for i in 0..10 {
            let key = Cache::key(&format!("return {i}"), false);
            cache.store(&key, &Entry { sites: vec![], bytecode: vec![0; 1000] });
            let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i);
            fs::File::options().write(true).open(cache.path_of(&key)).unwrap().set_modified(old).unwrap();
            keys.push(key);
        }
        let report = cache.prune(5_000).unwrap();
        assert_eq!(report.removed_entries, 7);
        assert!(report.kept_bytes <= 4_000);
        assert_eq!(cache.load(&keys[0]), None);
        assert!(cache.load(&keys[9]).is_some());
        assert_eq!(cache.prune(5_000).unwrap().removed_entries, 0);
    }
}
