//! The index, read in place: fixed-size module records sorted by name, a hash table that
//! finds a record by name, dependency and embedded-source entries, a string pool, and three
//! bincode lists (externals, profiles, groups). Both directions live here: [`encode_index`]
//! lays the sections out and [`IndexView`] reads them through any [`IndexBytes`], so that a
//! reader touches only the pages one lookup needs, whatever the bundle's size.

use std::borrow::Cow;

use super::read::{decode_part, validate_index};
use super::write::encode_part;
use super::*;

/// Size of a module record in bytes.
pub const RECORD_LEN: usize = 96;
/// Size of a dependency entry in bytes.
pub const DEP_LEN: usize = 8;
/// Size of an embedded-source entry in bytes.
pub const SOURCE_LEN: usize = 48;
/// Size of a hash-table bucket in bytes.
pub const BUCKET_LEN: usize = 8;
/// A bucket's position field when the bucket is empty; a record's source field when the
/// module has no embedded source.
const NONE: u32 = u32::MAX;

/// The hash that places a name in the table: 64-bit FNV-1a of its bytes. The low bits pick
/// the first bucket (linear probing from there), the high 32 bits are stored in the bucket
/// so that most probes settle without reading the name.
pub fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Where an index's bytes come from: a slice in memory, or pages read and verified when
/// first touched.
pub trait IndexBytes {
    /// The error a read can fail with.
    type Error;
    /// The bytes of `span`, relative to the start of the index region.
    ///
    /// # Errors
    /// A span outside the region, a failed read, or a page that fails its hash.
    fn index_bytes(&self, span: Span) -> Result<Cow<'_, [u8]>, Self::Error>;
    /// `error` as this source's error type (which may name the bundle).
    fn format_error(&self, error: FormatError) -> Self::Error;
}

impl IndexBytes for [u8] {
    type Error = FormatError;

    fn index_bytes(&self, span: Span) -> Result<Cow<'_, [u8]>, FormatError> {
        let end = span.end().filter(|&end| end <= self.len() as u64);
        let end = end.ok_or_else(|| invalid(format!("bytes {}+{} lie outside the index", span.offset, span.len)))?;
        Ok(Cow::Borrowed(&self[span.offset as usize..end as usize]))
    }

    fn format_error(&self, error: FormatError) -> FormatError {
        error
    }
}

fn invalid(reason: String) -> FormatError {
    FormatError::Invalid { part: "index", reason }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// A string in the pool: offset and length, relative to the pool.
#[derive(Clone, Copy, Debug)]
struct StrRef {
    offset: u32,
    len: u32,
}

impl StrRef {
    fn at(bytes: &[u8], at: usize) -> StrRef {
        StrRef { offset: u32_at(bytes, at), len: u32_at(bytes, at + 4) }
    }
}

/// A record's fixed fields, before its strings and lists are read.
#[derive(Clone, Copy, Debug)]
pub struct RecordFields {
    name: StrRef,
    chunk_name: StrRef,
    path: StrRef,
    /// What the blob holds.
    pub kind: BlobKind,
    /// How the blob's bytes encode what is loaded (a decompressed length within
    /// [`MAX_DECODED_LEN`]).
    pub encoding: Encoding,
    /// Where the blob is, relative to the blob region (checked to lie inside it).
    pub blob: Span,
    /// blake3 of the blob's bytes.
    pub hash: [u8; 32],
    deps: (u32, u32),
    source: u32,
}

/// Reads an index through `bytes`, one record or list at a time, checking what it reads.
#[derive(Debug)]
pub struct IndexView<'a, B: ?Sized> {
    directory: &'a Directory,
    bytes: &'a B,
    blobs_len: u64,
}

impl<'a, B: IndexBytes + ?Sized> IndexView<'a, B> {
    /// A view of the index described by `directory` (checked by [`decode_directory`]), whose
    /// blobs lie in a region of `blobs_len` bytes.
    pub fn new(directory: &'a Directory, bytes: &'a B, blobs_len: u64) -> IndexView<'a, B> {
        IndexView { directory, bytes, blobs_len }
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.directory.module_count as usize
    }

    /// Whether the index has no modules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn error(&self, reason: String) -> B::Error {
        self.bytes.format_error(invalid(reason))
    }

    /// `count` entries of `len` bytes from entry `first` of `section`.
    fn entries(&self, section: Span, first: u64, count: u64, len: usize) -> Result<Cow<'a, [u8]>, B::Error> {
        let len = len as u64;
        // Inside the section, which the directory check placed inside the index: no overflow.
        match first.checked_add(count).and_then(|end| end.checked_mul(len)) {
            Some(end) if end <= section.len => {
                self.bytes.index_bytes(Span { offset: section.offset + first * len, len: count * len })
            }
            _ => Err(self.error(format!("entries {first}+{count} lie outside their section"))),
        }
    }

    /// The bytes of string `s` of module `position`, checked to lie in the pool.
    fn string_bytes(&self, position: usize, what: &str, s: StrRef) -> Result<Cow<'a, [u8]>, B::Error> {
        let pool = self.directory.strings;
        if u64::from(s.offset) + u64::from(s.len) > pool.len {
            return Err(self.error(format!("the {what} of module #{position} lies outside the string pool")));
        }
        self.bytes.index_bytes(Span { offset: pool.offset + u64::from(s.offset), len: u64::from(s.len) })
    }

    fn string(&self, position: usize, what: &str, s: StrRef) -> Result<String, B::Error> {
        let bytes = self.string_bytes(position, what, s)?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Err(self.error(format!("the {what} of module #{position} is not valid UTF-8"))),
        }
    }

    /// The fixed fields of module `position`, checked: kind and flags known, reserved bytes
    /// zero, a decompressed length within its limit, blob inside the blob region.
    ///
    /// # Errors
    /// A position out of range, or a record that breaks a rule.
    pub fn fields(&self, position: usize) -> Result<RecordFields, B::Error> {
        if position >= self.len() {
            return Err(self.error(format!("no module #{position} of {}", self.len())));
        }
        let b = self.entries(self.directory.records, position as u64, 1, RECORD_LEN)?;
        let kind = match b[24] {
            0 => BlobKind::Bytecode,
            1 => BlobKind::Source,
            other => return Err(self.error(format!("module #{position} has blob kind {other}, which is not one"))),
        };
        let flags = u32_at(&b, 28);
        if flags & !RECORD_ZSTD != 0 {
            return Err(self.error(format!("module #{position} has unknown flags {flags:#x}")));
        }
        // The decompressed length of a compressed blob; reserved (zero) otherwise.
        let decoded_len = u32_at(&b, 92);
        let encoding = match flags & RECORD_ZSTD != 0 {
            true if decoded_len > MAX_DECODED_LEN => {
                return Err(self.error(format!(
                    "module #{position} decompresses to {decoded_len} bytes, over the limit of {MAX_DECODED_LEN}"
                )))
            }
            true => Encoding::Zstd { len: decoded_len },
            false => Encoding::Plain,
        };
        if b[25..28].iter().any(|&x| x != 0) || (encoding == Encoding::Plain && decoded_len != 0) {
            return Err(self.error(format!("module #{position} has reserved bytes that are not zero")));
        }
        let blob = Span { offset: u64_at(&b, 32), len: u64_at(&b, 40) };
        if blob.end().is_none_or(|end| end > self.blobs_len) {
            return Err(self.error(format!("blob of module #{position} lies outside the blob region")));
        }
        Ok(RecordFields {
            name: StrRef::at(&b, 0),
            chunk_name: StrRef::at(&b, 8),
            path: StrRef::at(&b, 16),
            kind,
            encoding,
            blob,
            hash: b[48..80].try_into().expect("32 bytes"),
            deps: (u32_at(&b, 80), u32_at(&b, 84)),
            source: u32_at(&b, 88),
        })
    }

    /// The name of module `position`.
    ///
    /// # Errors
    /// As [`IndexView::fields`], or a name outside the pool or not UTF-8.
    pub fn name(&self, position: usize) -> Result<String, B::Error> {
        let fields = self.fields(position)?;
        self.string(position, "name", fields.name)
    }

    /// The whole record of module `position`: strings, embedded source, dependencies.
    ///
    /// # Errors
    /// As [`IndexView::fields`], and any string, source or dependency entry that breaks a
    /// rule.
    pub fn record(&self, position: usize) -> Result<ModuleRecord, B::Error> {
        let f = self.fields(position)?;
        let name = self.string(position, "name", f.name)?;
        if name.is_empty() || name.contains('\0') {
            return Err(self.error(format!("bad module name {name:?}")));
        }
        let source = match f.source {
            NONE => None,
            at => {
                let b = self.entries(self.directory.sources, u64::from(at), 1, SOURCE_LEN)?;
                let blob = Span { offset: u64_at(&b, 0), len: u64_at(&b, 8) };
                if blob.end().is_none_or(|end| end > self.blobs_len) {
                    return Err(self.error(format!("source of module {name:?} lies outside the blob region")));
                }
                Some(SourceBlob { blob, hash: b[16..48].try_into().expect("32 bytes") })
            }
        };
        let (first, count) = f.deps;
        let entries = self.entries(self.directory.deps, u64::from(first), u64::from(count), DEP_LEN)?;
        let mut deps = Vec::with_capacity(count as usize);
        for entry in entries.chunks_exact(DEP_LEN) {
            let module = u32_at(entry, 0);
            let kind = match entry[4] {
                0 => DepKind::Eager,
                1 => DepKind::Deferred,
                other => return Err(self.error(format!("module {name:?} has a dependency of kind {other}"))),
            };
            if entry[5] > 1 || entry[6..8] != [0, 0] || module >= self.directory.module_count {
                return Err(self.error(format!(
                    "module {name:?} depends on module #{module} of {}, or its entry is malformed",
                    self.directory.module_count
                )));
            }
            deps.push(Dependency { module, kind, optional: entry[5] == 1 });
        }
        Ok(ModuleRecord {
            chunk_name: self.string(position, "chunk name", f.chunk_name)?,
            path: self.string(position, "path", f.path)?,
            name,
            kind: f.kind,
            flags: 0,
            encoding: f.encoding,
            blob: f.blob,
            hash: f.hash,
            source,
            deps,
        })
    }

    /// Position of the module called `name`: one hash-table probe sequence, reading one name
    /// per probe whose stored hash bits match.
    ///
    /// # Errors
    /// A bucket or record that breaks a rule, or a failed read.
    pub fn position(&self, name: &str) -> Result<Option<usize>, B::Error> {
        let buckets = u64::from(self.directory.bucket_count);
        if buckets == 0 {
            return Ok(None);
        }
        let hash = name_hash(name.as_bytes());
        let tag = (hash >> 32) as u32;
        let mut slot = hash & (buckets - 1);
        // At most every bucket once: a forged full table cannot make this loop forever.
        for _ in 0..buckets {
            let bucket = self.entries(self.directory.buckets, slot, 1, BUCKET_LEN)?;
            let position = u32_at(&bucket, 0);
            if position == NONE {
                return Ok(None);
            }
            if position >= self.directory.module_count {
                return Err(self.error(format!("bucket {slot} names module #{position}")));
            }
            if u32_at(&bucket, 4) == tag {
                let position = position as usize;
                let fields = self.fields(position)?;
                if *self.string_bytes(position, "name", fields.name)? == *name.as_bytes() {
                    return Ok(Some(position));
                }
            }
            slot = (slot + 1) & (buckets - 1);
        }
        Ok(None)
    }

    /// Whether some module's name starts with `prefix`: a binary search over the records,
    /// which are sorted by name (a few page reads, whatever the bundle's size).
    ///
    /// # Errors
    /// A record or name it reads that breaks a rule.
    pub fn has_name_with_prefix(&self, prefix: &str) -> Result<bool, B::Error> {
        // The first position whose name is not below `prefix`.
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let fields = self.fields(middle)?;
            if *self.string_bytes(middle, "name", fields.name)? < *prefix.as_bytes() {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        if low == self.len() {
            return Ok(false);
        }
        let fields = self.fields(low)?;
        Ok(self.string_bytes(low, "name", fields.name)?.starts_with(prefix.as_bytes()))
    }

    fn list<T: Decode<()>>(&self, section: Span) -> Result<T, B::Error> {
        let bytes = self.bytes.index_bytes(section)?;
        decode_part("index", &bytes).map_err(|e| self.bytes.format_error(e))
    }

    /// The names the bundle expects the host to provide.
    ///
    /// # Errors
    /// A list that does not decode, or a failed read.
    pub fn externals(&self) -> Result<Vec<String>, B::Error> {
        self.list(self.directory.externals)
    }

    /// The profiles, with member positions checked.
    ///
    /// # Errors
    /// As [`IndexView::externals`], or a member out of range.
    pub fn profiles(&self) -> Result<Vec<Profile>, B::Error> {
        let profiles: Vec<Profile> = self.list(self.directory.profiles)?;
        if let Some(p) = profiles.iter().find(|p| p.members.iter().any(|&m| m >= self.directory.module_count)) {
            return Err(self.error(format!("profile {:?} names a module out of range", p.name)));
        }
        Ok(profiles)
    }

    /// The groups.
    ///
    /// # Errors
    /// As [`IndexView::externals`].
    pub fn groups(&self) -> Result<Vec<Group>, B::Error> {
        self.list(self.directory.groups)
    }

    /// The whole index, decoded and checked against every rule of the format, including
    /// that the hash table finds every module where it is.
    ///
    /// # Errors
    /// The first rule broken, or a failed read.
    pub fn decode_all(&self) -> Result<Index, B::Error> {
        let modules = (0..self.len()).map(|i| self.record(i)).collect::<Result<Vec<_>, _>>()?;
        let index = Index {
            modules,
            entry: self.directory.entry,
            externals: self.externals()?,
            profiles: self.profiles()?,
            groups: self.groups()?,
        };
        validate_index(&index, self.blobs_len).map_err(|e| self.bytes.format_error(e))?;
        for (i, module) in index.modules.iter().enumerate() {
            if self.position(&module.name)? != Some(i) {
                return Err(self.error(format!("the name table does not lead to module {:?}", module.name)));
            }
        }
        Ok(index)
    }
}

/// Lays out a validated index: its directory (without the page hashes, which cover the
/// bytes returned) and the bytes of the index region.
pub(super) fn encode_index(index: &Index) -> Result<(Directory, Vec<u8>), FormatError> {
    let count = index.modules.len();
    let too_large = || invalid("the index is over the format's limits".into());
    let mut strings: Vec<u8> = Vec::new();
    let mut add_string = |text: &str| -> Result<StrRef, FormatError> {
        let offset = u32::try_from(strings.len()).map_err(|_| too_large())?;
        strings.extend_from_slice(text.as_bytes());
        Ok(StrRef { offset, len: u32::try_from(text.len()).map_err(|_| too_large())? })
    };
    let mut records = Vec::with_capacity(count * RECORD_LEN);
    let mut deps = Vec::new();
    let mut sources = Vec::new();
    for m in &index.modules {
        let name = add_string(&m.name)?;
        let chunk_name = add_string(&m.chunk_name)?;
        // A chunk name is usually `@` and the path: the path is then stored once.
        let path = match m.chunk_name.strip_prefix('@') {
            Some(rest) if rest == m.path => StrRef { offset: chunk_name.offset + 1, len: chunk_name.len - 1 },
            _ => add_string(&m.path)?,
        };
        let first_dep = u32::try_from(deps.len() / DEP_LEN).map_err(|_| too_large())?;
        for d in &m.deps {
            deps.extend_from_slice(&d.module.to_le_bytes());
            deps.push(match d.kind {
                DepKind::Eager => 0,
                DepKind::Deferred => 1,
            });
            deps.extend_from_slice(&[u8::from(d.optional), 0, 0]);
        }
        let source = match &m.source {
            None => NONE,
            Some(s) => {
                let at = u32::try_from(sources.len() / SOURCE_LEN).map_err(|_| too_large())?;
                sources.extend_from_slice(&s.blob.offset.to_le_bytes());
                sources.extend_from_slice(&s.blob.len.to_le_bytes());
                sources.extend_from_slice(&s.hash);
                at
            }
        };
        let mut r = [0u8; RECORD_LEN];
        for (at, s) in [(0, name), (8, chunk_name), (16, path)] {
            r[at..at + 4].copy_from_slice(&s.offset.to_le_bytes());
            r[at + 4..at + 8].copy_from_slice(&s.len.to_le_bytes());
        }
        r[24] = match m.kind {
            BlobKind::Bytecode => 0,
            BlobKind::Source => 1,
        };
        let (encoding_flag, decoded_len) = match m.encoding {
            Encoding::Plain => (0, 0),
            Encoding::Zstd { len } => (RECORD_ZSTD, len),
        };
        r[28..32].copy_from_slice(&(m.flags | encoding_flag).to_le_bytes());
        r[32..40].copy_from_slice(&m.blob.offset.to_le_bytes());
        r[40..48].copy_from_slice(&m.blob.len.to_le_bytes());
        r[48..80].copy_from_slice(&m.hash);
        r[80..84].copy_from_slice(&first_dep.to_le_bytes());
        r[84..88].copy_from_slice(&u32::try_from(m.deps.len()).map_err(|_| too_large())?.to_le_bytes());
        r[88..92].copy_from_slice(&source.to_le_bytes());
        r[92..96].copy_from_slice(&decoded_len.to_le_bytes());
        records.extend_from_slice(&r);
    }
    let buckets = buckets(index)?;
    let bucket_count = u32::try_from(buckets.len() / BUCKET_LEN).map_err(|_| too_large())?;
    // Sections in the order a lookup reads them: bucket, record, name.
    let mut bytes = Vec::new();
    let mut section = |part: &[u8]| {
        let span = Span { offset: bytes.len() as u64, len: part.len() as u64 };
        bytes.extend_from_slice(part);
        span
    };
    let buckets = section(&buckets);
    let records = section(&records);
    let strings = section(&strings);
    let deps = section(&deps);
    let sources = section(&sources);
    let externals = section(&encode_part("index", &index.externals)?);
    let profiles = section(&encode_part("index", &index.profiles)?);
    let groups = section(&encode_part("index", &index.groups)?);
    let directory = Directory {
        module_count: u32::try_from(count).map_err(|_| too_large())?,
        entry: index.entry,
        bucket_count,
        records,
        buckets,
        strings,
        deps,
        sources,
        externals,
        profiles,
        groups,
        hash_pages: Vec::new(),
    };
    Ok((directory, bytes))
}

/// The hash table: a power of two of buckets, at most three quarters full, each holding a
/// module's position and its name hash's high bits, placed by linear probing in module order.
fn buckets(index: &Index) -> Result<Vec<u8>, FormatError> {
    let count = index.modules.len();
    if count == 0 {
        return Ok(Vec::new());
    }
    let buckets = (count + count / 3 + 1).next_power_of_two();
    let mut table = vec![(NONE, 0u32); buckets];
    for (position, m) in index.modules.iter().enumerate() {
        let hash = name_hash(m.name.as_bytes());
        let mut slot = (hash as usize) & (buckets - 1);
        while table[slot].0 != NONE {
            slot = (slot + 1) & (buckets - 1);
        }
        table[slot] = (u32::try_from(position).map_err(|_| invalid("too many modules".into()))?, (hash >> 32) as u32);
    }
    Ok(table.iter().flat_map(|(position, tag)| [position.to_le_bytes(), tag.to_le_bytes()]).flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index of `count` modules whose names, paths and dependencies vary in length, so
    /// that records, strings and dependency runs cross page boundaries.
    fn index_of(count: usize) -> Index {
        let modules = (0..count)
            .map(|i| {
                let name = format!("pkg{}.{}mod{i:05}", i % 7, "x".repeat(i % 13));
                ModuleRecord {
                    chunk_name: format!("@src/{name}.lua"),
                    path: if i % 5 == 0 { format!("other/{name}.lua") } else { format!("src/{name}.lua") },
                    kind: if i % 3 == 0 { BlobKind::Source } else { BlobKind::Bytecode },
                    flags: 0,
                    encoding: if i % 6 == 1 { Encoding::Zstd { len: i as u32 * 3 } } else { Encoding::Plain },
                    blob: Span { offset: i as u64 * 10, len: 10 },
                    hash: [i as u8; 32],
                    source: (i % 4 == 0).then_some(SourceBlob { blob: Span { offset: 0, len: 10 }, hash: [1; 32] }),
                    deps: (0..i % 4)
                        .map(|d| Dependency {
                            module: ((i + d + 1) % count) as u32,
                            kind: if d % 2 == 0 { DepKind::Eager } else { DepKind::Deferred },
                            optional: d == 2,
                        })
                        .collect(),
                    name,
                }
            })
            .collect::<Vec<_>>();
        let mut modules = modules;
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        // The names were sorted after the dependencies were drawn: positions stay in range.
        Index {
            modules,
            entry: Some((count / 2) as u32),
            externals: vec!["lfs".into()],
            profiles: vec![],
            groups: vec![],
        }
    }

    #[test]
    fn every_module_is_found_and_read_back_across_pages() {
        let index = index_of(3_000);
        validate_index(&index, 30_000).unwrap();
        let (directory, bytes) = encode_index(&index).unwrap();
        assert!(bytes.len() > 40 * PAGE_LEN, "the test spans many pages");
        let view = IndexView::new(&directory, &bytes[..], 30_000);
        for (i, module) in index.modules.iter().enumerate() {
            assert_eq!(view.position(&module.name).unwrap(), Some(i), "{}", module.name);
            assert_eq!(&view.record(i).unwrap(), module);
        }
        for missing in ["", "pkg0", "pkg1.mod00001x", "zzz", "pkg0.mod00000.extra"] {
            assert_eq!(view.position(missing).unwrap(), None, "{missing}");
        }
        assert_eq!(view.decode_all().unwrap(), index);
    }

    #[test]
    fn the_name_table_stays_at_most_three_quarters_full() {
        for count in [1usize, 2, 3, 4, 5, 100, 767, 768, 769, 10_000] {
            let mut index = index_of(count.max(4));
            index.modules.truncate(count);
            index.entry = None;
            for m in &mut index.modules {
                m.deps.clear();
            }
            let (directory, _) = encode_index(&index).unwrap();
            let buckets = directory.bucket_count as usize;
            assert!(buckets.is_power_of_two() && count * 4 <= buckets * 3, "{count} in {buckets}");
        }
    }

    #[test]
    fn a_forged_table_without_empty_buckets_ends_the_search() {
        let index = index_of(3);
        let (directory, mut bytes) = encode_index(&index).unwrap();
        // Every bucket names module 0 under a tag no name has.
        let buckets = directory.buckets;
        for at in (buckets.offset..buckets.offset + buckets.len).step_by(BUCKET_LEN) {
            let at = at as usize;
            bytes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        }
        let view = IndexView::new(&directory, &bytes[..], 30);
        assert_eq!(view.position("anything").unwrap(), None);
        let err = view.decode_all().unwrap_err().to_string();
        assert!(err.contains("does not lead to module"), "{err}");
    }
}
