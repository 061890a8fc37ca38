//! The bundle format, version 2: the only place that knows how a bundle is laid out in bytes.
//!
//! Both directions live here, side by side, so that the writer and the reader cannot drift
//! apart: `write.rs` lays bundles out (the build tool calls [`encode`] and [`Layout`]),
//! `read.rs` checks the parts a reader decodes at open ([`Header::parse`], [`check_trailer`],
//! [`check_root_hash`], [`decode_target`], [`decode_directory`]), and `index.rs` holds the
//! index, which is read in place: fixed-size records sorted by name, a hash table of names and
//! a string pool, in pages that are each verified when first touched ([`IndexView`]). bincode
//! is used for the target block, the directory and the index's lists, and nowhere else in the
//! project. `docs/FORMAT.md` describes the same layout in prose.
//!
//! Nothing decoded here is trusted: every size is bounds-checked with checked arithmetic and
//! capped before anything is allocated; a record is checked when it is read (its strings,
//! blob and dependencies in bounds), and [`IndexView::decode_all`] checks the whole index
//! (sorted unique names, blobs not overlapping, every name found by the hash table).

mod encoding;
mod index;
mod read;
mod write;

use bincode::{Decode, Encode};

pub use encoding::{compress, compression_levels, Encoding, MAX_DECODED_LEN};
pub use index::{name_hash, IndexBytes, IndexView, RecordFields, BUCKET_LEN, DEP_LEN, RECORD_LEN, SOURCE_LEN};
pub use read::{
    check_magic_and_version, check_root_hash, check_trailer, decode_directory, decode_target, validate_index,
};
pub use write::{encode, encode_signed, encode_unvalidated, KnownBlob, Layout};

/// First bytes of every bundle. The high byte, CR LF, Ctrl-Z and LF catch 7-bit and text-mode
/// damage the way PNG's signature does.
pub const MAGIC: [u8; 10] = *b"\x89LBNDL\r\n\x1a\n";
/// Major format version written by this crate; a reader rejects any other major.
pub const FORMAT_MAJOR: u16 = 2;
/// Minor format version written by this crate; newer minors only add optional parts.
pub const FORMAT_MINOR: u16 = 0;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 192;
/// Size of the trailer in bytes: the magic and the root hash again.
pub const TRAILER_LEN: usize = MAGIC.len() + 32;
/// Flag bits a reader must understand (the low 16): a reader refuses a bundle with one set
/// that it does not know.
pub const REQUIRED_FLAGS: u32 = 0x0000_ffff;
/// Required flag bit: some module's bytes are stored compressed with zstd (see
/// [`Encoding`]). Readers from before compression refuse such a bundle at open.
pub const FLAG_ZSTD: u32 = 1 << 0;
/// The required flag bits this reader understands.
pub const KNOWN_REQUIRED_FLAGS: u32 = FLAG_ZSTD;
/// Record flag bit: the module's blob is a zstd frame, its decompressed length in the record.
pub(crate) const RECORD_ZSTD: u32 = 1 << 0;
/// Largest index this reader accepts, in bytes.
pub const MAX_INDEX_LEN: u64 = 256 << 20;
/// Largest target block this reader accepts, in bytes.
pub const MAX_TARGET_LEN: u64 = 64 << 10;
/// Largest directory this reader accepts, in bytes (the page hashes of the largest index
/// take 16 KiB).
pub const MAX_DIRECTORY_LEN: u64 = 64 << 10;
/// Largest module count this reader accepts.
pub const MAX_MODULES: usize = 1 << 20;
/// Size of an index page, and of a page of page hashes: the unit a reader reads and verifies.
pub const PAGE_LEN: usize = 4096;

/// Byte offset of the root hash inside the header; everything before it is hashed.
const ROOT_HASH_OFFSET: usize = HEADER_LEN - 32;
/// Where the spans start in the header, and how many there are.
const SPANS_OFFSET: usize = 26;
const SPAN_COUNT: usize = 6;

/// A region of the file, or of the blob region for module blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Span {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Span {
    /// One past the last byte, or `None` if that overflows.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.len)
    }
}

/// The fixed-size header at the start of every bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// Flag bits (see [`REQUIRED_FLAGS`]).
    pub flags: u32,
    /// Total length of the file, header and trailer included.
    pub file_len: u64,
    /// Where the target block is.
    pub target: Span,
    /// Where the directory is: the index's sections and the hashes of its hash pages.
    pub directory: Span,
    /// Where the page hashes are: one blake3 hash per index page.
    pub page_hashes: Span,
    /// Where the index pages are.
    pub index: Span,
    /// Where the module blobs are.
    pub blobs: Span,
    /// Where the signature is (empty when unsigned).
    pub signature: Span,
    /// blake3 over the header fields before it, the target block and the directory.
    pub root_hash: [u8; 32],
}

impl Header {
    /// The regions in file order, with the names errors give them: the order they are
    /// written in, laid out in the header, and required to follow each other.
    pub fn regions(&self) -> [(&'static str, Span); SPAN_COUNT] {
        [
            ("target", self.target),
            ("directory", self.directory),
            ("page-hash", self.page_hashes),
            ("index", self.index),
            ("blob", self.blobs),
            ("signature", self.signature),
        ]
    }
}

/// The index's table of sections, decoded and checked at open. Section spans are relative to
/// the start of the index region; `hash_pages` holds the blake3 hash of each page of the
/// page-hash region, so that everything in the index is covered by the root hash through at
/// most two page reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Directory {
    /// Number of modules (records).
    pub module_count: u32,
    /// Position of the entry module, if the bundle has one.
    pub entry: Option<u32>,
    /// Number of hash-table buckets: a power of two at least the module count, or zero for
    /// a bundle without modules.
    pub bucket_count: u32,
    /// The module records, [`RECORD_LEN`] bytes each, sorted by name.
    pub records: Span,
    /// The hash table of names, [`BUCKET_LEN`] bytes per bucket.
    pub buckets: Span,
    /// The string pool: names, chunk names and paths, UTF-8.
    pub strings: Span,
    /// Dependency entries, [`DEP_LEN`] bytes each; a record names a run of them.
    pub deps: Span,
    /// Embedded-source entries, [`SOURCE_LEN`] bytes each.
    pub sources: Span,
    /// bincode of the external names (`Vec<String>`).
    pub externals: Span,
    /// bincode of the profiles (`Vec<Profile>`).
    pub profiles: Span,
    /// bincode of the groups (`Vec<Group>`).
    pub groups: Span,
    /// blake3 of each [`PAGE_LEN`]-byte page of the page-hash region (the last may be short).
    pub hash_pages: Vec<[u8; 32]>,
}

/// The Lua VM a bundle's bytecode was compiled for.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Target {
    /// The flavour feature name, e.g. `lua54`.
    pub flavour: String,
    /// The VM's release string, e.g. `Lua 5.4`.
    pub release: String,
    /// The header of the VM's own dump of an empty function: version, format, type sizes,
    /// endianness. Two VMs with equal headers read each other's bytecode.
    pub bytecode_header: Vec<u8>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, bytecode header {})", self.flavour, self.release, hex(&self.bytecode_header))
    }
}

/// What a module's blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum BlobKind {
    /// Bytecode of the bundle's target VM, loaded in binary mode.
    Bytecode,
    /// Lua source text, loaded in text mode.
    Source,
}

/// When a dependency's `require` runs relative to the requiring module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum DepKind {
    /// At the top level of the module body: runs while the module loads.
    Eager,
    /// Inside a function body: runs later, if at all.
    Deferred,
}

impl DepKind {
    /// The kind's one spelling in every listing, report and JSON document: `eager` or
    /// `deferred`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DepKind::Eager => "eager",
            DepKind::Deferred => "deferred",
        }
    }
}

/// One edge of the require graph, stored with the requiring module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// Position of the required module in [`Index::modules`].
    pub module: u32,
    /// Eager or deferred.
    pub kind: DepKind,
    /// Whether the require is protected (`pcall(require, ...)`).
    pub optional: bool,
}

/// One module in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleRecord {
    /// The name `require` takes, e.g. `app.util`.
    pub name: String,
    /// The chunk name baked into the bytecode, e.g. `@src/app/util.lua`.
    pub chunk_name: String,
    /// The source path relative to its root's parent, passed to the module as its second
    /// argument, e.g. `src/app/util.lua`.
    pub path: String,
    /// What the blob holds.
    pub kind: BlobKind,
    /// Reserved flag bits beyond the encoding; zero in version 2.0.
    pub flags: u32,
    /// How the blob's bytes encode what is loaded.
    pub encoding: Encoding,
    /// Where the blob is, relative to the start of the blob region.
    pub blob: Span,
    /// blake3 of the blob's bytes as stored.
    pub hash: [u8; 32],
    /// The module's source, stored beside its bytecode (`--embed-source`), for VMs that cannot
    /// run the bytecode.
    pub source: Option<SourceBlob>,
    /// Modules this one requires that are in the bundle.
    pub deps: Vec<Dependency>,
}

/// Where a module's embedded source is, and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceBlob {
    /// Where the source is, relative to the start of the blob region.
    pub blob: Span,
    /// blake3 of the source's bytes.
    pub hash: [u8; 32],
}

/// A named subset of modules.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Positions in [`Index::modules`], sorted.
    pub members: Vec<u32>,
}

/// A module that gathers others: `require(name)` returns a table whose fields load the
/// members on first access.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Group {
    /// The group's module name.
    pub name: String,
    /// Member module names (bundled, native or external); the field for each is the last
    /// `.`-separated part of its name.
    pub members: Vec<String>,
}

/// The bundle's table of contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// Every module, sorted by name, names unique.
    pub modules: Vec<ModuleRecord>,
    /// Position of the entry module, if the bundle has one.
    pub entry: Option<u32>,
    /// Names the bundle expects the host to provide (C or Rust modules).
    pub externals: Vec<String>,
    /// Named module subsets.
    pub profiles: Vec<Profile>,
    /// Modules that gather others.
    pub groups: Vec<Group>,
}

impl Index {
    /// Position of the module called `name`, by binary search over the sorted names.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.modules.binary_search_by(|m| m.name.as_str().cmp(name)).ok()
    }
}

/// A module handed to [`encode`]: its record fields and its blob.
#[derive(Clone, Debug)]
pub struct ModuleInput {
    /// See [`ModuleRecord::name`].
    pub name: String,
    /// See [`ModuleRecord::chunk_name`].
    pub chunk_name: String,
    /// See [`ModuleRecord::path`].
    pub path: String,
    /// See [`ModuleRecord::kind`].
    pub kind: BlobKind,
    /// The blob itself, as stored.
    pub bytes: Vec<u8>,
    /// How `bytes` encode what is loaded (see [`compress`]).
    pub encoding: Encoding,
    /// The source, to store beside bytecode (see [`ModuleRecord::source`]).
    pub source: Option<Vec<u8>>,
    /// See [`ModuleRecord::deps`].
    pub deps: Vec<Dependency>,
}

/// Everything that goes into a bundle.
#[derive(Clone, Debug)]
pub struct BundleContents {
    /// The VM the blobs were made for.
    pub target: Target,
    /// The modules, sorted by name with unique names.
    pub modules: Vec<ModuleInput>,
    /// Position of the entry module.
    pub entry: Option<u32>,
    /// Host-provided module names.
    pub externals: Vec<String>,
    /// Named module subsets.
    pub profiles: Vec<Profile>,
    /// Modules that gather others.
    pub groups: Vec<Group>,
}

/// What is wrong with a bundle's bytes. Each variant is one way a bundle can be damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file is shorter than a header and a trailer.
    #[error("too short to be a bundle: {len} bytes")]
    TooShort {
        /// The length found.
        len: u64,
    },
    /// The first bytes are not the bundle magic.
    #[error("not a luabundle bundle: wrong magic bytes (found {found:02x?})")]
    BadMagic {
        /// The bytes found where the magic belongs.
        found: Vec<u8>,
    },
    /// The format major version is not one this reader knows.
    #[error("it has format {major}.{minor}, {}", version_advice(*major))]
    UnsupportedVersion {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
    },
    /// Required flag bits this reader does not know are set.
    #[error("bundle needs features this runtime lacks (required flag bits {flags:#010x})")]
    UnknownRequiredFlags {
        /// The unknown required bits.
        flags: u32,
    },
    /// The length recorded in the header differs from the actual length.
    #[error("length mismatch: header says {expected} bytes, found {found} (truncated or extended)")]
    LengthMismatch {
        /// Length recorded in the header.
        expected: u64,
        /// Actual length.
        found: u64,
    },
    /// The trailer is missing or does not repeat the header's root hash.
    #[error("damaged trailer: {reason}")]
    BadTrailer {
        /// What did not match.
        reason: &'static str,
    },
    /// A region named in the header lies outside the file or overlaps another.
    #[error("{region} region out of bounds or overlapping")]
    BadRegion {
        /// Which region.
        region: &'static str,
    },
    /// A region is larger than this reader accepts.
    #[error("{region} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Which region.
        region: &'static str,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A page of the index, or of its page hashes, does not hash to the value that covers it.
    #[error("damaged {region} page {page}: blake3 {found} differs from the recorded {expected}")]
    PageHashMismatch {
        /// `index` or `page-hash`.
        region: &'static str,
        /// The page's number in its region.
        page: u64,
        /// Hash recorded, hex.
        expected: String,
        /// Hash of the bytes read, hex.
        found: String,
    },
    /// The root hash does not match the header, target block and directory.
    #[error("root hash mismatch: header, target or directory damaged (expected {expected}, found {found})")]
    RootHashMismatch {
        /// Hash recorded in the header, hex.
        expected: String,
        /// Hash computed, hex.
        found: String,
    },
    /// The target block or index could not be decoded or is inconsistent.
    #[error("invalid {part}: {reason}")]
    Invalid {
        /// `header`, `target`, `directory` or `index`.
        part: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_INDEX_LEN as usize }>()
}

/// What to do about a bundle of format `major`, for the version error.
fn version_advice(major: u16) -> String {
    if major < FORMAT_MAJOR {
        format!(
            "from an older luabundle: rebuild it with luabundle {} (this runtime reads format {FORMAT_MAJOR})",
            env!("CARGO_PKG_VERSION")
        )
    } else {
        format!("from a newer luabundle: this runtime reads format {FORMAT_MAJOR}")
    }
}

/// Lowercase hex of a hash, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32 bytes that `digits` (exactly 64 hexadecimal digits, either case) spell: a key as
/// [`hex`] writes it. `None` for anything else.
pub fn bytes32_from_hex(digits: &str) -> Option<[u8; 32]> {
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

/// Length of a signature region: the signing key's id (its first 8 bytes) and an Ed25519
/// signature of [`signed_message`].
pub const SIGNATURE_LEN: usize = 8 + 64;

/// Optional flag bit: the bundle carries a signature.
pub const FLAG_SIGNED: u32 = 1 << 16;

/// What a bundle's signature signs: a domain prefix and the root hash.
pub fn signed_message(root_hash: &[u8; 32]) -> Vec<u8> {
    let mut message = b"luabundle signature v1\0".to_vec();
    message.extend_from_slice(root_hash);
    message
}

/// blake3 over the header bytes before the root hash field, the target block and the
/// directory (which holds the hashes that cover the rest of the index).
pub fn root_hash(header: &[u8; HEADER_LEN], target: &[u8], directory: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header[..ROOT_HASH_OFFSET]);
    hasher.update(target);
    hasher.update(directory);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use read::decode_part;

    #[test]
    fn decoding_errors_are_told_in_words() {
        let reason = |result: Result<BlobKind, FormatError>| match result {
            Err(FormatError::Invalid { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        let variant = reason(decode_part::<BlobKind>("index", &[7]));
        assert!(variant.contains("holds 7 where a BlobKind kind is expected"), "{variant}");
        let flag = match decode_part::<bool>("index", &[7]) {
            Err(FormatError::Invalid { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(flag.contains("yes/no flag"), "{flag}");
        assert!(reason(decode_part::<BlobKind>("index", &[])).contains("ends in the middle"));
        for text in [variant, flag] {
            assert!(!text.contains('{') && !text.contains("Variant") && !text.contains("Boolean"), "{text}");
        }
    }

    fn sample() -> BundleContents {
        let module = |name: &str, bytes: &[u8], deps| ModuleInput {
            name: name.into(),
            chunk_name: format!("@src/{name}.lua"),
            path: format!("src/{name}.lua"),
            kind: BlobKind::Bytecode,
            bytes: bytes.to_vec(),
            encoding: Encoding::Plain,
            source: None,
            deps,
        };
        BundleContents {
            target: Target {
                flavour: "lua54".into(),
                release: "Lua 5.4".into(),
                bytecode_header: b"\x1bLua\x54".to_vec(),
            },
            modules: vec![
                module("a", b"AAAA", vec![Dependency { module: 1, kind: DepKind::Eager, optional: false }]),
                module("b", b"BB", vec![]),
            ],
            entry: Some(0),
            externals: vec!["lfs".into()],
            profiles: vec![Profile { name: "min".into(), members: vec![1] }],
            groups: vec![Group { name: "all".into(), members: vec!["a".into(), "b".into()] }],
        }
    }

    fn decode_all(bytes: &[u8]) -> Result<(Header, Target, Index), FormatError> {
        let header = Header::parse(bytes[..HEADER_LEN].try_into().unwrap(), bytes.len() as u64)?;
        check_trailer(bytes[bytes.len() - TRAILER_LEN..].try_into().unwrap(), &header)?;
        let slice = |s: Span| &bytes[s.offset as usize..s.end().unwrap() as usize];
        check_root_hash(&header, slice(header.target), slice(header.directory))?;
        let target = decode_target(slice(header.target))?;
        let directory = decode_directory(slice(header.directory), &header)?;
        let hashes = slice(header.page_hashes);
        for (i, page) in hashes.chunks(PAGE_LEN).enumerate() {
            if *blake3::hash(page).as_bytes() != directory.hash_pages[i] {
                return Err(FormatError::PageHashMismatch {
                    region: "page-hash",
                    page: i as u64,
                    expected: String::new(),
                    found: String::new(),
                });
            }
        }
        for (i, page) in slice(header.index).chunks(PAGE_LEN).enumerate() {
            if blake3::hash(page).as_bytes()[..] != hashes[i * 32..i * 32 + 32] {
                return Err(FormatError::PageHashMismatch {
                    region: "index",
                    page: i as u64,
                    expected: String::new(),
                    found: String::new(),
                });
            }
        }
        let index = IndexView::new(&directory, slice(header.index), header.blobs.len).decode_all()?;
        Ok((header, target, index))
    }

    #[test]
    fn round_trip_keeps_everything() {
        let contents = sample();
        let bytes = encode(&contents).unwrap();
        let (header, target, index) = decode_all(&bytes).unwrap();
        assert_eq!(target, contents.target);
        assert_eq!(index.entry, Some(0));
        assert_eq!(index.externals, vec!["lfs".to_string()]);
        assert_eq!(index.position("b"), Some(1));
        assert_eq!(index.position("c"), None);
        assert_eq!(index.profiles, contents.profiles);
        assert_eq!(index.groups, contents.groups);
        assert_eq!(index.modules[0].deps, contents.modules[0].deps);
        let b = &index.modules[1];
        let start = (header.blobs.offset + b.blob.offset) as usize;
        assert_eq!(&bytes[start..start + 2], b"BB");
        assert_eq!(b.hash, *blake3::hash(b"BB").as_bytes());
    }

    /// The exact bytes of the sample bundle. A change here is a change of the format: bump
    /// the version and update docs/FORMAT.md, then regenerate with
    /// `LUABUNDLE_BLESS=1 cargo test -p luabundle-runtime golden`.
    #[test]
    fn golden_bytes_do_not_change() {
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/sample.bundle.hex");
        let hex_lines: Vec<String> = encode(&sample()).unwrap().chunks(32).map(hex).collect();
        let actual = hex_lines.join("\n") + "\n";
        if std::env::var_os("LUABUNDLE_BLESS").is_some() {
            std::fs::write(golden, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(golden).expect("golden file");
        assert_eq!(actual, expected, "the bundle format changed");
    }

    #[test]
    fn bytes_left_in_another_file_are_copied_exactly() {
        use std::io::{Seek, Write};
        let original = encode(&sample()).unwrap();
        let mut old = tempfile::tempfile().unwrap();
        old.write_all(&original).unwrap();
        let bundle = crate::Bundle::from_file(old.try_clone().unwrap(), "old").unwrap();
        let stored: Vec<crate::StoredBlob> = (0..2).map(|i| bundle.stored_blob(i).unwrap()).collect();
        assert_eq!(stored[1].hash, *blake3::hash(b"BB").as_bytes());
        // The modules' own bytes are left empty: only the old file holds them.
        let mut contents = sample();
        contents.modules.iter_mut().for_each(|m| m.bytes.clear());
        let known: Vec<Option<KnownBlob<'_>>> =
            stored.iter().map(|s| Some(KnownBlob::InFile { file: &old, span: s.span, hash: s.hash })).collect();
        let layout = Layout::with_known(&contents, &known, None::<fn(&[u8; 32]) -> [u8; SIGNATURE_LEN]>).unwrap();
        assert_eq!(layout.to_vec(), original);
        let mut new = tempfile::tempfile().unwrap();
        layout.write_file(&new).unwrap();
        new.rewind().unwrap();
        let mut written = Vec::new();
        std::io::Read::read_to_end(&mut new, &mut written).unwrap();
        assert_eq!(written, original);
        // A span the file no longer holds is an error, never a short bundle.
        old.set_len(stored[0].span.offset + 1).unwrap();
        let err = layout.write_file(&tempfile::tempfile().unwrap()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        assert!(layout.write_to(&mut Vec::new()).is_err());
    }

    #[test]
    fn keys_read_back_from_their_hex_and_nothing_else_does() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(bytes32_from_hex(&hex(&key)), Some(key));
        assert_eq!(bytes32_from_hex(&hex(&key).to_uppercase()), Some(key));
        // A sign, a short or long string, or a byte that is not a digit.
        assert_eq!(bytes32_from_hex(&format!("+f{}", &hex(&key)[2..])), None);
        assert_eq!(bytes32_from_hex(&hex(&key)[1..]), None);
        assert_eq!(bytes32_from_hex(&format!("{}0", hex(&key))), None);
        assert_eq!(bytes32_from_hex(&format!("g{}", &hex(&key)[1..])), None);
    }

    #[test]
    fn encoding_is_deterministic() {
        assert_eq!(encode(&sample()).unwrap(), encode(&sample()).unwrap());
    }

    #[test]
    fn every_damaged_header_byte_is_caught() {
        let bytes = encode(&sample()).unwrap();
        for at in 0..HEADER_LEN {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(decode_all(&damaged).is_err(), "flipping header byte {at} went unnoticed");
        }
    }

    #[test]
    fn each_damage_class_has_its_own_error() {
        let bytes = encode(&sample()).unwrap();
        let mut magic = bytes.clone();
        magic[1] = b'X';
        assert!(matches!(decode_all(&magic), Err(FormatError::BadMagic { .. })));
        let mut version = bytes.clone();
        version[10] = 9;
        assert!(matches!(decode_all(&version), Err(FormatError::UnsupportedVersion { major: 9, .. })));
        let newer = decode_all(&version).unwrap_err().to_string();
        assert!(newer.contains("from a newer luabundle"), "{newer}");
        version[10] = 1;
        let older = decode_all(&version).unwrap_err().to_string();
        assert!(older.contains("format 1.0, from an older luabundle: rebuild it with luabundle"), "{older}");
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(decode_all(cut), Err(FormatError::LengthMismatch { .. })));
        let header = Header::parse(bytes[..HEADER_LEN].try_into().unwrap(), bytes.len() as u64).unwrap();
        let mut directory = bytes.clone();
        directory[header.directory.offset as usize + 1] ^= 1;
        assert!(matches!(decode_all(&directory), Err(FormatError::RootHashMismatch { .. })));
        let mut hashes = bytes.clone();
        hashes[header.page_hashes.offset as usize] ^= 1;
        assert!(matches!(decode_all(&hashes), Err(FormatError::PageHashMismatch { region: "page-hash", .. })));
        let mut index = bytes.clone();
        index[header.index.offset as usize + 3] ^= 1;
        assert!(matches!(decode_all(&index), Err(FormatError::PageHashMismatch { region: "index", page: 0, .. })));
        let mut trailer = bytes.clone();
        let last = trailer.len() - 1;
        trailer[last] ^= 1;
        assert!(matches!(decode_all(&trailer), Err(FormatError::BadTrailer { .. })));
    }

    #[test]
    fn unsorted_or_dangling_indexes_are_refused() {
        let mut unsorted = sample();
        unsorted.modules.swap(0, 1);
        assert!(matches!(encode(&unsorted), Err(FormatError::Invalid { .. })));
        let mut dangling = sample();
        dangling.modules[0].deps[0].module = 7;
        assert!(matches!(encode(&dangling), Err(FormatError::Invalid { .. })));
    }
}
