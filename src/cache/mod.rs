//! The compile cache: what parsing and compiling one source file produced (its require sites
//! and its bytecode), stored under a hash of everything that determines it.
//!
//! The key is blake3 over the source bytes, the Lua flavour and bytecode header of the VM,
//! the strip flag and this tool's version, so an entry can never be stale: a changed input is
//! a different key.
//!
//! Entries are kept in pack files, one written per build that compiled something, so a cold
//! build of ten thousand modules creates one file rather than ten thousand. Entries are
//! appended to the pack as they are compiled (the build does not hold a second copy of its
//! bytecode) and a table of keys ends it; every entry and the table carry a blake3 hash of
//! their bytes, so a damaged entry is never used (its file is recompiled). Packs are written
//! to a temporary name and renamed, so concurrent builds never see half a pack. When there are
//! too many packs, or they exceed the size cap, the entries the latest build used are
//! rewritten into one pack and the rest dropped.

pub mod bundle_record;
pub mod file_table;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::analysis::requires::RequireSite;
use crate::input::source::SourceFile;
use crate::plan::BlobOptions;
use crate::util::read_exact_at;
use file_table::FileTable;
use rayon::prelude::*;

/// Version of what the require analysis records per file and how it compiles it: a change
/// to either makes older entries miss instead of handing them back (4: LuaJIT's
/// deterministic dumps).
const ANALYSIS_VERSION: u8 = 4;

/// Magic bytes that start every entry; the digit is the entry format's version.
const ENTRY_MAGIC: &[u8; 8] = b"LBCACHE2";
/// Size of an entry's head: magic, the two lengths, the two hashes.
const ENTRY_HEAD: usize = 8 + 4 + 4 + 32 + 32;
/// Magic bytes that start every pack.
const PACK_MAGIC: &[u8; 8] = b"LBPACK01";
/// Packs live under this subdirectory, so another layout can live beside it.
const LAYOUT: &str = "v3";
/// Default size cap in bytes.
pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;
/// More packs than this are merged into one at the end of a build.
const MAX_PACKS: usize = 8;
/// Size of one table row: key, offset, length.
const ROW: usize = 32 + 8 + 4;
/// Size of the pack trailer: entry count, table hash, magic.
const PACK_TRAILER: usize = 4 + 32 + 8;

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

/// What a look-up finds for one file without reading its bytecode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The file's require sites.
    pub sites: Vec<RequireSite>,
    /// The hash its bytecode is recorded under (checked only when the bytecode is read).
    pub bytecode_hash: [u8; 32],
}

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

/// Where an entry is: which pack, at what offset, how long.
#[derive(Clone, Copy, Debug)]
struct Location {
    pack: usize,
    offset: u64,
    len: u32,
}

/// The cache as one build uses it: the packs opened at its start, and the entries it adds.
#[derive(Debug)]
pub struct Session {
    cache: Cache,
    packs: Vec<(PathBuf, File, u64)>,
    index: HashMap<Key, Location>,
    /// The pack this build writes, created on the first insert; `Err` once writing failed.
    added: Option<std::io::Result<PackWriter>>,
}

impl Cache {
    /// A cache in `dir` (created on first store), kept under [`DEFAULT_MAX_SIZE`].
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    fn packs_dir(&self) -> PathBuf {
        self.dir.join(LAYOUT)
    }

    /// The directory of this cache layout, where builds keep their records.
    pub fn layout_dir(&self) -> PathBuf {
        self.dir.join(LAYOUT)
    }

    /// Where the fingerprints of the last build's files are kept (see [`crate::cache::file_table`]).
    pub fn file_table_path(&self) -> PathBuf {
        self.dir.join(LAYOUT).join("files.stat")
    }

    /// The key of `text` compiled for the linked VM under `chunk_name` as `blob` says.
    #[cfg(test)]
    pub(crate) fn key(text: &str, chunk_name: &str, blob: BlobOptions) -> Key {
        Cache::key_for_hash(blake3::hash(text.as_bytes()).as_bytes(), chunk_name, blob)
    }

    /// The key of the text whose blake3 is `content_hash`, compiled for the linked VM under
    /// `chunk_name` as `blob` says (stripped, compressed): everything that goes into the
    /// stored bytes, so that a moved file (same text, another chunk name) is compiled again,
    /// not given the old name.
    pub(crate) fn key_for_hash(content_hash: &[u8; 32], chunk_name: &str, blob: BlobOptions) -> Key {
        let target = luabundle_runtime::target::linked();
        let mut hasher = blake3::Hasher::new();
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.update(&[0]);
        hasher.update(&[ANALYSIS_VERSION]);
        hasher.update(target.flavour.as_bytes());
        hasher.update(&[0]);
        hasher.update(&target.bytecode_header);
        hasher.update(&[u8::from(blob.strip)]);
        // Compressed entries hold other bytes than uncompressed ones, under other keys.
        if let Some(level) = blob.compress {
            hasher.update(b"zstd");
            hasher.update(&level.to_le_bytes());
        }
        hasher.update(&(chunk_name.len() as u64).to_le_bytes());
        hasher.update(chunk_name.as_bytes());
        hasher.update(content_hash);
        *hasher.finalize().as_bytes()
    }

    /// Opens every intact pack's table. A pack that cannot be read or whose table is damaged
    /// is left out (and removed).
    pub fn session(&self) -> Session {
        let mut session = Session { cache: self.clone(), packs: Vec::new(), index: HashMap::new(), added: None };
        for path in pack_paths(&self.packs_dir()) {
            match read_table(&path) {
                Some(table) => {
                    let pack = session.packs.len();
                    for (key, offset, entry_len) in table.rows {
                        session.index.insert(key, Location { pack, offset, len: entry_len });
                    }
                    session.packs.push((path, table.file, table.len));
                }
                None => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        session
    }

    /// Removes the oldest packs until the cache holds at most 80% of `max_size` bytes
    /// (nothing when it is already under `max_size`).
    ///
    /// # Errors
    /// If the cache directory cannot be listed.
    pub fn prune(&self, max_size: u64) -> std::io::Result<PruneReport> {
        let mut packs = Vec::new();
        for path in pack_paths(&self.packs_dir()) {
            let meta = fs::metadata(&path)?;
            let entries = read_table(&path).map_or(0, |table| table.rows.len());
            packs.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), entries, path));
        }
        let total: u64 = packs.iter().map(|p| p.1).sum();
        let mut report =
            PruneReport { kept_entries: packs.iter().map(|p| p.2).sum(), kept_bytes: total, ..PruneReport::default() };
        if total <= max_size {
            return Ok(report);
        }
        let goal = max_size / 100 * 80;
        packs.sort();
        for (_, len, entries, path) in packs {
            if report.kept_bytes <= goal {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                report.kept_bytes -= len;
                report.kept_entries -= entries;
                report.removed_entries += entries;
                report.removed_bytes += len;
            }
        }
        Ok(report)
    }
}

/// Per file: its key, and its require sites and bytecode hash when the cache holds them.
/// Looked up in parallel: hashing every file is most of a no-change build.
pub(crate) fn look_up(
    session: Option<&Session>,
    files: &[SourceFile],
    blob: BlobOptions,
) -> (Vec<Key>, Vec<Option<Hit>>) {
    files
        .par_iter()
        .map(|file| {
            let key = Cache::key_for_hash(&file.content_hash, &file.chunk_name(), blob);
            (key, session.and_then(|s| s.load_sites(&key)))
        })
        .unzip()
}

impl Session {
    /// Where the fingerprints of this cache's files are kept.
    pub fn file_table_path(&self) -> PathBuf {
        self.cache.file_table_path()
    }

    /// Ends the session: stores the files compiled again because their entries were damaged
    /// (their require sites are still the intact ones), keeps the entries of `used`
    /// ([`Session::finish`]) and saves `file_table` when it changed.
    pub(crate) fn close(mut self, used: &[Key], recompiled: &[(Key, &[u8])], file_table: Option<&FileTable>) {
        for &(key, bytes) in recompiled {
            let sites = self.load_sites(&key).map(|hit| hit.sites).unwrap_or_default();
            self.insert(key, &sites, bytes);
        }
        let file_table_path = self.file_table_path();
        self.finish(&used.iter().copied().collect());
        if let Some(table) = file_table {
            table.save(&file_table_path);
        }
    }

    /// The entry for `key`, if the cache holds an intact one.
    pub fn load(&self, key: &Key) -> Option<Entry> {
        Some(Entry { sites: self.load_sites(key)?.sites, bytecode: self.load_bytecode(key)?.0 })
    }

    /// The require sites of the entry for `key`, read without its bytecode, if intact, with
    /// the hash its bytecode is recorded under.
    pub fn load_sites(&self, key: &Key) -> Option<Hit> {
        let location = self.index.get(key)?;
        let (_, file, _) = &self.packs[location.pack];
        let mut head = [0u8; ENTRY_HEAD];
        read_exact_at(file, &mut head, location.offset).ok()?;
        let head = Head::parse(&head, location.len)?;
        let mut sites = vec![0; head.sites_len];
        read_exact_at(file, &mut sites, location.offset + ENTRY_HEAD as u64).ok()?;
        if blake3::hash(&sites).as_bytes() != &head.sites_hash {
            return None;
        }
        Some(Hit { sites: serde_json::from_slice(&sites).ok()?, bytecode_hash: head.bytecode_hash })
    }

    /// The bytecode of the entry for `key` and its blake3 hash, if intact.
    pub fn load_bytecode(&self, key: &Key) -> Option<(Vec<u8>, [u8; 32])> {
        let location = self.index.get(key)?;
        let (_, file, _) = &self.packs[location.pack];
        let mut head = [0u8; ENTRY_HEAD];
        read_exact_at(file, &mut head, location.offset).ok()?;
        let head = Head::parse(&head, location.len)?;
        let mut bytecode = vec![0; head.bytecode_len];
        read_exact_at(file, &mut bytecode, location.offset + (ENTRY_HEAD + head.sites_len) as u64).ok()?;
        (blake3::hash(&bytecode).as_bytes() == &head.bytecode_hash).then_some((bytecode, head.bytecode_hash))
    }

    fn read(&self, key: &Key) -> Option<Vec<u8>> {
        let location = self.index.get(key)?;
        let (_, file, _) = &self.packs[location.pack];
        let mut bytes = vec![0; location.len as usize];
        read_exact_at(file, &mut bytes, location.offset).ok()?;
        Some(bytes)
    }

    /// Adds the entry of one file: appended to this build's pack at once, which becomes
    /// visible when the build finishes.
    pub fn insert(&mut self, key: Key, sites: &[RequireSite], bytecode: &[u8]) {
        let dir = self.cache.packs_dir();
        let writer = self.added.get_or_insert_with(|| PackWriter::create(&dir));
        if let Ok(pack) = writer {
            if let Err(err) = pack.add(key, &encode(sites, bytecode)) {
                *writer = Err(err);
            }
        }
    }

    /// Finishes this build's pack; then, when there are too many packs or they are over the
    /// size cap, keeps only the entries with keys in `used` (the ones this build needed) in a
    /// single pack. Failures are ignored: a cache that cannot be written only makes the next
    /// build slower.
    pub fn finish(self, used: &HashSet<Key>) {
        self.finish_under(used, DEFAULT_MAX_SIZE);
    }

    /// [`Session::finish`] with a size cap of `max_size` bytes.
    fn finish_under(mut self, used: &HashSet<Key>, max_size: u64) {
        let dir = self.cache.packs_dir();
        let mut new_bytes = 0;
        if let Some(Ok(pack)) = self.added.take() {
            new_bytes = pack.offset;
            let _ = pack.finish(&dir);
        }
        let total: u64 = self.packs.iter().map(|p| p.2).sum::<u64>() + new_bytes;
        if self.packs.len() < MAX_PACKS && total <= max_size {
            return;
        }
        // Merge, from a fresh look at the directory. Over the size cap, when a quarter or more
        // of the cache is entries this build did not use, what it used goes into one pack and
        // the rest is dropped. Otherwise (a project whose bytecode alone passes the cap is
        // always over it) the largest pack stays as it is and only the others are merged,
        // keeping what this build used of them, so a build that added one entry never
        // rewrites the whole cache.
        let fresh = self.cache.session();
        let used_bytes: u64 = used.iter().filter_map(|key| fresh.index.get(key)).map(|at| u64::from(at.len)).sum();
        let collect_everything = total > max_size && total.saturating_sub(used_bytes) * 4 >= total;
        if !collect_everything && self.packs.len() < MAX_PACKS {
            return;
        }
        let largest = match collect_everything {
            true => None,
            false => (0..fresh.packs.len()).max_by_key(|&i| fresh.packs[i].2),
        };
        let old: Vec<PathBuf> =
            (0..fresh.packs.len()).filter(|&i| Some(i) != largest).map(|i| fresh.packs[i].0.clone()).collect();
        let merged = PackWriter::create(&dir).and_then(|mut pack| {
            for key in used {
                let in_merged_pack = fresh.index.get(key).is_some_and(|at| Some(at.pack) != largest);
                if let Some(bytes) = fresh.read(key).filter(|_| in_merged_pack) {
                    pack.add(*key, &bytes)?;
                }
            }
            pack.finish(&dir)
        });
        drop(fresh);
        if let Ok(merged) = merged {
            // A merged pack named like one it came from (the same table) replaced it.
            for path in old.iter().filter(|path| **path != merged) {
                let _ = fs::remove_file(path);
            }
        }
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

fn pack_paths(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    paths.sort();
    paths
}

/// A pack being written to a temporary file: magic, entries as they come, then the table
/// and the trailer (entry count, table hash, magic) when finished.
#[derive(Debug)]
struct PackWriter {
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    _in_flight: crate::util::InFlight,
    rows: Vec<u8>,
    count: u32,
    offset: u64,
}

impl PackWriter {
    fn create(dir: &Path) -> std::io::Result<PackWriter> {
        fs::create_dir_all(dir)?;
        let (temp, in_flight) = crate::util::InFlight::create(
            || tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir),
            tempfile::NamedTempFile::path,
        )?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, temp);
        out.write_all(PACK_MAGIC)?;
        Ok(PackWriter { out, _in_flight: in_flight, rows: Vec::new(), count: 0, offset: PACK_MAGIC.len() as u64 })
    }

    fn add(&mut self, key: Key, entry: &[u8]) -> std::io::Result<()> {
        self.out.write_all(entry)?;
        self.rows.extend_from_slice(&key);
        self.rows.extend_from_slice(&self.offset.to_le_bytes());
        self.rows.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        self.count += 1;
        self.offset += entry.len() as u64;
        Ok(())
    }

    /// Writes the table and trailer and gives the pack its name (from the table's hash),
    /// which it returns.
    fn finish(mut self, dir: &Path) -> std::io::Result<PathBuf> {
        let table_hash = blake3::hash(&self.rows);
        self.out.write_all(&self.rows)?;
        self.out.write_all(&self.count.to_le_bytes())?;
        self.out.write_all(table_hash.as_bytes())?;
        self.out.write_all(PACK_MAGIC)?;
        let temp = self.out.into_inner().map_err(|e| e.into_error())?;
        let path = dir.join(format!("{}.pack", &table_hash.to_hex()[..32]));
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    }
}

/// An opened pack whose header and table are intact.
struct PackTable {
    file: File,
    /// `(key, offset, length)` of every entry that lies inside the file.
    rows: Vec<(Key, u64, u32)>,
    len: u64,
}

/// Opens a pack and reads its table, if its magic, trailer and table are intact.
fn read_table(path: &Path) -> Option<PackTable> {
    let file = crate::util::open_regular(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut magic = [0u8; 8];
    read_exact_at(&file, &mut magic, 0).ok()?;
    let trailer_at = len.checked_sub(PACK_TRAILER as u64)?;
    let mut trailer = [0u8; PACK_TRAILER];
    read_exact_at(&file, &mut trailer, trailer_at).ok()?;
    if &magic != PACK_MAGIC || &trailer[36..] != PACK_MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(trailer[..4].try_into().ok()?) as u64;
    let table_at = trailer_at.checked_sub(count.checked_mul(ROW as u64)?)?;
    if table_at < PACK_MAGIC.len() as u64 {
        return None;
    }
    let mut table = vec![0u8; (trailer_at - table_at) as usize];
    read_exact_at(&file, &mut table, table_at).ok()?;
    if blake3::hash(&table).as_bytes() != &trailer[4..36] {
        return None;
    }
    let rows = table
        .chunks_exact(ROW)
        .map(|row| {
            let key: Key = row[..32].try_into().expect("32 bytes");
            let offset = u64::from_le_bytes(row[32..40].try_into().expect("8 bytes"));
            let entry_len = u32::from_le_bytes(row[40..44].try_into().expect("4 bytes"));
            (key, offset, entry_len)
        })
        .filter(|&(_, offset, entry_len)| offset.checked_add(u64::from(entry_len)).is_some_and(|end| end <= table_at))
        .collect();
    Some(PackTable { file, rows, len })
}

/// The head of an entry: `magic | sites length u32 | bytecode length u32 | blake3(sites) |
/// blake3(bytecode)`, followed by the sites (JSON) and the bytecode. Each part has its own
/// hash so the sites can be read and checked without the bytecode.
struct Head {
    sites_len: usize,
    bytecode_len: usize,
    sites_hash: [u8; 32],
    bytecode_hash: [u8; 32],
}

impl Head {
    /// The head at the start of `bytes`, if its magic is right and its lengths add up to
    /// `entry_len`.
    fn parse(bytes: &[u8], entry_len: u32) -> Option<Head> {
        let head = bytes.get(..ENTRY_HEAD)?;
        if &head[..8] != ENTRY_MAGIC {
            return None;
        }
        let sites_len = u32::from_le_bytes(head[8..12].try_into().ok()?) as usize;
        let bytecode_len = u32::from_le_bytes(head[12..16].try_into().ok()?) as usize;
        if ENTRY_HEAD + sites_len + bytecode_len != entry_len as usize {
            return None;
        }
        Some(Head {
            sites_len,
            bytecode_len,
            sites_hash: head[16..48].try_into().ok()?,
            bytecode_hash: head[48..80].try_into().ok()?,
        })
    }
}

/// One entry's bytes: head, sites, bytecode.
fn encode(sites: &[RequireSite], bytecode: &[u8]) -> Vec<u8> {
    let sites = serde_json::to_vec(sites).expect("require sites serialise");
    let mut out = Vec::with_capacity(ENTRY_HEAD + sites.len() + bytecode.len());
    out.extend_from_slice(ENTRY_MAGIC);
    out.extend_from_slice(&(sites.len() as u32).to_le_bytes());
    out.extend_from_slice(&(bytecode.len() as u32).to_le_bytes());
    out.extend_from_slice(blake3::hash(&sites).as_bytes());
    out.extend_from_slice(blake3::hash(bytecode).as_bytes());
    out.extend_from_slice(&sites);
    out.extend_from_slice(bytecode);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::requires::{Target, Timing};

    fn entry(n: u8) -> Entry {
        let site = RequireSite {
            target: Target::Name("a.b".into()),
            range: 3..17,
            timing: Timing::Deferred,
            optional: true,
            guard: None,
            luau_path: None,
        };
        Entry { sites: vec![site], bytecode: vec![n; 100] }
    }

    fn store(cache: &Cache, entries: &[(Key, Entry)]) {
        let mut session = cache.session();
        for (key, entry) in entries {
            session.insert(*key, &entry.sites, &entry.bytecode);
        }
        session.finish(&entries.iter().map(|(k, _)| *k).collect());
    }

    #[test]
    fn entries_round_trip_through_one_pack() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let keys: Vec<Key> =
            (0..3).map(|i| Cache::key(&format!("return {i}"), "@m.lua", BlobOptions::default())).collect();
        assert_eq!(cache.session().load(&keys[0]), None);
        store(&cache, &[(keys[0], entry(0)), (keys[1], entry(1))]);
        assert_eq!(pack_paths(&cache.packs_dir()).len(), 1);
        let session = cache.session();
        assert_eq!(session.load(&keys[0]), Some(entry(0)));
        assert_eq!(session.load(&keys[1]), Some(entry(1)));
        assert_eq!(session.load(&keys[2]), None);
    }

    #[test]
    fn keys_change_with_source_and_strip() {
        assert_ne!(
            Cache::key("return 1", "@m.lua", BlobOptions::default()),
            Cache::key("return 2", "@m.lua", BlobOptions::default())
        );
        assert_ne!(
            Cache::key("return 1", "@m.lua", BlobOptions::default()),
            Cache::key("return 1", "@m.lua", BlobOptions { strip: true, compress: None })
        );
        let zstd = |level| BlobOptions { strip: false, compress: Some(level) };
        assert_ne!(Cache::key("return 1", "@m.lua", BlobOptions::default()), Cache::key("return 1", "@m.lua", zstd(3)));
        assert_ne!(Cache::key("return 1", "@m.lua", zstd(3)), Cache::key("return 1", "@m.lua", zstd(19)));
        assert_eq!(
            Cache::key("return 1", "@m.lua", BlobOptions::default()),
            Cache::key("return 1", "@m.lua", BlobOptions::default())
        );
        assert_ne!(
            Cache::key("return 1", "@m.lua", BlobOptions::default()),
            Cache::key("return 1", "@n.lua", BlobOptions::default())
        );
    }

    #[test]
    fn damaged_entries_and_tables_are_never_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let (a, b) =
            (Cache::key("a", "@m.lua", BlobOptions::default()), Cache::key("b", "@m.lua", BlobOptions::default()));
        store(&cache, &[(a, entry(1)), (b, entry(2))]);
        let path = pack_paths(&cache.packs_dir()).remove(0);
        let good = fs::read(&path).unwrap();
        // A flipped byte in the last entry: that entry is refused, the other still served.
        let table_at = good.len() - PACK_TRAILER - 2 * ROW;
        let mut bytes = good.clone();
        bytes[table_at - 1] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let session = cache.session();
        assert_eq!([session.load(&a), session.load(&b)].iter().flatten().count(), 1);
        // A damaged table: the whole pack is dropped.
        let mut bytes = good.clone();
        bytes[table_at + 3] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.session().load(&a), None);
        assert!(!path.exists());
        // A truncated pack: nothing from it is served.
        fs::write(&path, &good[..good.len() / 3]).unwrap();
        let session = cache.session();
        assert_eq!((session.load(&a), session.load(&b)), (None, None));
    }

    #[test]
    fn many_packs_are_merged_keeping_what_the_build_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let keys: Vec<Key> =
            (0..MAX_PACKS + 2).map(|i| Cache::key(&format!("return {i}"), "@m.lua", BlobOptions::default())).collect();
        for (i, key) in keys.iter().enumerate() {
            let mut session = cache.session();
            let entry = entry(i as u8);
            session.insert(*key, &entry.sites, &entry.bytecode);
            // Each build uses its own entry and the first one.
            session.finish(&[*key, keys[0]].into_iter().collect());
        }
        let packs = pack_paths(&cache.packs_dir());
        assert!(packs.len() < MAX_PACKS, "{} packs", packs.len());
        let session = cache.session();
        assert!(session.load(&keys[0]).is_some());
        assert!(session.load(keys.last().unwrap()).is_some());
    }

    #[test]
    fn merging_small_packs_leaves_the_largest_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let big: Vec<Key> =
            (0..50).map(|i| Cache::key(&format!("return {i}"), "@big.lua", BlobOptions::default())).collect();
        store(&cache, &big.iter().map(|k| (*k, Entry { sites: vec![], bytecode: vec![1; 1000] })).collect::<Vec<_>>());
        let big_pack = pack_paths(&cache.packs_dir()).remove(0);
        let written = fs::metadata(&big_pack).unwrap().modified().unwrap();
        // One-file rebuilds: each adds one entry and uses it with every entry of the big pack.
        let small: Vec<Key> =
            (0..MAX_PACKS + 3).map(|i| Cache::key(&format!("return {i}"), "@m.lua", BlobOptions::default())).collect();
        for (i, key) in small.iter().enumerate() {
            let mut session = cache.session();
            let entry = entry(i as u8);
            session.insert(*key, &entry.sites, &entry.bytecode);
            session.finish(&big.iter().chain([key, &small[0]]).copied().collect());
        }
        let packs = pack_paths(&cache.packs_dir());
        assert!(packs.len() < MAX_PACKS, "{} packs", packs.len());
        assert!(packs.contains(&big_pack), "the big pack was rewritten");
        assert_eq!(fs::metadata(&big_pack).unwrap().modified().unwrap(), written);
        let session = cache.session();
        assert!(big.iter().chain([&small[0], small.last().unwrap()]).all(|k| session.load(k).is_some()));
        // Entries no build used since are gone from the merged packs.
        assert!(session.load(&small[1]).is_none());
    }

    #[test]
    fn over_the_cap_only_a_quarter_of_unused_entries_makes_a_full_merge() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let keys: Vec<Key> =
            (0..40).map(|i| Cache::key(&format!("return {i}"), "@m.lua", BlobOptions::default())).collect();
        let entries: Vec<(Key, Entry)> =
            keys.iter().map(|k| (*k, Entry { sites: vec![], bytecode: vec![1; 1000] })).collect();
        store(&cache, &entries);
        let big_pack = pack_paths(&cache.packs_dir()).remove(0);
        let cap = 10_000;
        // A build that uses every entry but one, and adds one: nothing to gain by rewriting.
        let mut session = cache.session();
        let added = Cache::key("return 'new'", "@m.lua", BlobOptions::default());
        session.insert(added, &[], &[2; 1000]);
        session.finish_under(&keys[1..].iter().chain([&added]).copied().collect(), cap);
        let packs = pack_paths(&cache.packs_dir());
        assert_eq!(packs.len(), 2, "{packs:?}");
        assert!(packs.contains(&big_pack));
        // A build that uses half of them: the rest is dropped, in one pack.
        let session = cache.session();
        session.finish_under(&keys[..20].iter().copied().collect(), cap);
        let packs = pack_paths(&cache.packs_dir());
        assert_eq!(packs.len(), 1, "{packs:?}");
        let session = cache.session();
        assert!(keys[..20].iter().all(|k| session.load(k).is_some()));
        assert!(session.load(&keys[30]).is_none() && session.load(&added).is_none());
    }

    #[test]
    fn prune_removes_the_oldest_packs_down_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let keys: Vec<Key> =
            (0..5).map(|i| Cache::key(&format!("return {i}"), "@m.lua", BlobOptions::default())).collect();
        for (i, key) in keys.iter().enumerate() {
            store(&cache, &[(*key, Entry { sites: vec![], bytecode: vec![0; 1000] })]);
            let newest = pack_paths(&cache.packs_dir())
                .into_iter()
                .find(|p| {
                    fs::metadata(p).unwrap().modified().unwrap()
                        > SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000)
                })
                .unwrap();
            let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            File::options().write(true).open(newest).unwrap().set_modified(old).unwrap();
        }
        let report = cache.prune(2_500).unwrap();
        assert_eq!(report.removed_entries, 4, "{report:?}");
        let session = cache.session();
        assert_eq!(session.load(&keys[0]), None);
        assert!(session.load(&keys[4]).is_some());
        assert_eq!(cache.prune(2_500).unwrap().removed_entries, 0);
    }
}
