//! File fingerprints from the previous build: for each source file, its metadata (size,
//! modification and change times, inode) and the blake3 of its content. A file whose metadata
//! is unchanged is not read again; its cached require sites and bytecode are used directly.
//!
//! Like Git's index, a fingerprint is only recorded for a file whose modification time is
//! safely older than the build that records it, so an edit in the same instant as a build
//! (which could leave the metadata unchanged) is never missed. The table lives in the cache
//! directory, is replaced atomically, and ends with a blake3 of its bytes: a damaged table is
//! ignored (every file is read).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Magic bytes that start the table.
const MAGIC: &[u8; 8] = b"LBSTAT01";

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    inode: u64,
    device: u64,
}

impl Fingerprint {
    /// The fingerprint of a file's metadata, where the platform reports enough of it.
    #[cfg(unix)]
    pub fn of(metadata: &std::fs::Metadata) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        Some(Fingerprint {
            len: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
            device: metadata.dev(),
        })
    }

    /// The fingerprint of the file at `path` now (following links), if it can be read.
    pub fn of_path(path: &Path) -> Option<Fingerprint> {
        std::fs::metadata(path).ok().and_then(|metadata| Fingerprint::of(&metadata))
    }

    /// The fingerprint of a file's metadata, where the platform reports enough of it.
    #[cfg(not(unix))]
    pub fn of(_metadata: &std::fs::Metadata) -> Option<Fingerprint> {
        None
    }

    /// Whether the file was last modified at least a second before `now`, so a later edit
    /// is sure to change its modification time.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else { return false };
        let settled_before = since_epoch.saturating_sub(Duration::from_secs(1));
        let modified = Duration::new(self.modified.0.max(0) as u64, self.modified.1.clamp(0, 999_999_999) as u32);
        self.modified.0 >= 0 && modified < settled_before
    }

    /// Appends the fingerprint's [`Fingerprint::LEN`] bytes to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_le_bytes());
        for (seconds, nanos) in [self.modified, self.changed] {
            out.extend_from_slice(&seconds.to_le_bytes());
            out.extend_from_slice(&nanos.to_le_bytes());
        }
        out.extend_from_slice(&self.inode.to_le_bytes());
        out.extend_from_slice(&self.device.to_le_bytes());
    }

    /// Length of a fingerprint as [`Fingerprint::write`] writes it.
    pub(crate) const LEN: usize = 8 * 7;

    /// A fingerprint as [`Fingerprint::write`] wrote it.
    pub(crate) fn read(bytes: &[u8]) -> Option<Fingerprint> {
        let word = |i: usize| bytes.get(i * 8..i * 8 + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        Some(Fingerprint {
            len: word(0)?,
            modified: (word(1)? as i64, word(2)? as i64),
            changed: (word(3)? as i64, word(4)? as i64),
            inode: word(5)?,
            device: word(6)?,
        })
    }
}

/// Files of the previous build: path → fingerprint and content hash.
#[derive(Debug, Default)]
pub struct FileTable {
    /// Keyed by the path's bytes (hashing a `Path` walks its components, which is slow).
    rows: HashMap<Box<[u8]>, (Fingerprint, [u8; 32])>,
}

impl FileTable {
    /// The table stored at `path`; empty if there is none or it is damaged.
    pub fn load(path: &Path) -> FileTable {
        crate::util::read_regular(path, crate::util::DATA_FILE_CAP)
            .ok()
            .and_then(|bytes| FileTable::decode(&bytes))
            .unwrap_or_default()
    }

    /// The content hash recorded for `path`, if its metadata still has `fingerprint`.
    pub fn content_hash(&self, path: &Path, fingerprint: &Fingerprint) -> Option<[u8; 32]> {
        self.rows
            .get(path.as_os_str().as_encoded_bytes())
            .filter(|(known, _)| known == fingerprint)
            .map(|(_, hash)| *hash)
    }

    /// Whether the table holds exactly these files with these fingerprints.
    pub fn same_as(&self, other: &FileTable) -> bool {
        self.rows == other.rows
    }

    /// Records a file, unless it was modified too recently to be trusted (see the module
    /// documentation).
    pub fn record(&mut self, path: &Path, fingerprint: Fingerprint, content_hash: [u8; 32], now: SystemTime) {
        if fingerprint.settled(now) {
            self.rows.insert(path.as_os_str().as_encoded_bytes().into(), (fingerprint, content_hash));
        }
    }

    /// Writes the table to `path` atomically. Failures are ignored: without the table the
    /// next build reads every file.
    pub fn save(&self, path: &Path) {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        let mut rows: Vec<_> = self.rows.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (name, (fingerprint, hash)) in rows {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name);
            fingerprint.write(&mut out);
            out.extend_from_slice(hash);
        }
        let check = *blake3::hash(&out).as_bytes();
        out.extend_from_slice(&check);
        crate::util::write::replace_cache_file(path, &out);
    }

    fn decode(bytes: &[u8]) -> Option<FileTable> {
        let (body, check) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if blake3::hash(body).as_bytes() != check {
            return None;
        }
        let rest = body.strip_prefix(MAGIC)?;
        let (count, mut rest) = rest.split_at_checked(8)?;
        let count = u64::from_le_bytes(count.try_into().ok()?);
        let mut rows = HashMap::new();
        for _ in 0..count {
            let (len, after) = rest.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (name, after) = after.split_at_checked(len)?;
            let (fingerprint, after) = after.split_at_checked(Fingerprint::LEN)?;
            let (hash, after) = after.split_at_checked(32)?;
            rows.insert(name.into(), (Fingerprint::read(fingerprint)?, hash.try_into().ok()?));
            rest = after;
        }
        Some(FileTable { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_table_loads_and_vouches_only_for_unchanged_settled_files() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.lua");
        let fresh = dir.path().join("fresh.lua");
        std::fs::write(&old, "return 1").unwrap();
        std::fs::write(&fresh, "return 2").unwrap();
        let fingerprint = |p: &Path| Fingerprint::of(&std::fs::metadata(p).unwrap()).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        let mut table = FileTable::default();
        table.record(&old, fingerprint(&old), [1; 32], later);
        table.record(&fresh, fingerprint(&fresh), [2; 32], SystemTime::now());
        let path = dir.path().join("cache/files.stat");
        table.save(&path);
        let loaded = FileTable::load(&path);
        assert!(loaded.same_as(&table));
        assert_eq!(loaded.content_hash(&old, &fingerprint(&old)), Some([1; 32]));
        assert_eq!(loaded.content_hash(&fresh, &fingerprint(&fresh)), None, "just modified: not trusted");
        std::fs::write(&old, "return 10").unwrap();
        assert_eq!(loaded.content_hash(&old, &fingerprint(&old)), None, "changed size and time");
        // A damaged table is ignored.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(FileTable::load(&path).rows.is_empty());
    }
}
