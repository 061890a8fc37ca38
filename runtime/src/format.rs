//! The bundle format, version 1: the only place that knows how a bundle is laid out in bytes.
//!
//! Both directions live here so that the writer and the reader cannot drift apart: the build
//! tool calls [`encode`], the runtime calls [`Header::parse`], [`check_trailer`],
//! [`decode_target`] and [`decode_index`]. bincode is used for the target block and the index
//! and nowhere else in the project. `docs/FORMAT.md` describes the same layout in prose.
//!
//! Nothing decoded here is trusted: every size is bounds-checked with checked arithmetic and
//! capped before anything is allocated, and the index is validated (sorted unique names, blobs
//! inside the blob region and not overlapping, dependency numbers in range) before it is used.

use bincode::{Decode, Encode};

/// First bytes of every bundle. The high byte, CR LF, Ctrl-Z and LF catch 7-bit and text-mode
/// damage the way PNG's signature does.
pub const MAGIC: [u8; 10] = *b"\x89LBNDL\r\n\x1a\n";
/// Major format version written by this crate; a reader rejects any other major.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version written by this crate; newer minors only add optional parts.
pub const FORMAT_MINOR: u16 = 0;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 128;
/// Size of the trailer in bytes: the magic and the root hash again.
pub const TRAILER_LEN: usize = MAGIC.len() + 32;
/// Flag bits a reader must understand (the low 16). None are defined in version 1.0.
pub const REQUIRED_FLAGS: u32 = 0x0000_ffff;
/// Largest index this reader accepts, in bytes.
pub const MAX_INDEX_LEN: u64 = 256 << 20;
/// Largest target block this reader accepts, in bytes.
pub const MAX_TARGET_LEN: u64 = 64 << 10;
/// Largest module count this reader accepts.
pub const MAX_MODULES: usize = 1 << 20;

/// Byte offset of the root hash inside the header; everything before it is hashed.
const ROOT_HASH_OFFSET: usize = HEADER_LEN - 32;

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
    /// Where the index is.
    pub index: Span,
    /// Where the module blobs are.
    pub blobs: Span,
    /// Where the signature is (empty when unsigned).
    pub signature: Span,
    /// blake3 over the header fields before it, the target block and the index.
    pub root_hash: [u8; 32],
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Dependency {
    /// Position of the required module in [`Index::modules`].
    pub module: u32,
    /// Eager or deferred.
    pub kind: DepKind,
    /// Whether the require is protected (`pcall(require, ...)`).
    pub optional: bool,
}

/// One module in the index.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
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
    /// Reserved flag bits; zero in version 1.0.
    pub flags: u32,
    /// Where the blob is, relative to the start of the blob region.
    pub blob: Span,
    /// blake3 of the blob's bytes.
    pub hash: [u8; 32],
    /// The module's source, stored beside its bytecode (`--embed-source`), for VMs that cannot
    /// run the bytecode.
    pub source: Option<SourceBlob>,
    /// Modules this one requires that are in the bundle.
    pub deps: Vec<Dependency>,
}

/// Where a module's embedded source is, and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
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
    /// The blob itself.
    pub bytes: Vec<u8>,
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
    #[error("unsupported bundle format version {major}.{minor} (this runtime reads {FORMAT_MAJOR}.x)")]
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
    /// The root hash does not match the header, target block and index.
    #[error("root hash mismatch: header, target or index damaged (expected {expected}, found {found})")]
    RootHashMismatch {
        /// Hash recorded in the header, hex.
        expected: String,
        /// Hash computed, hex.
        found: String,
    },
    /// The target block or index could not be decoded or is inconsistent.
    #[error("invalid {part}: {reason}")]
    Invalid {
        /// `header`, `target` or `index`.
        part: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_INDEX_LEN as usize }>()
}

/// Lowercase hex of a hash, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes a complete bundle.
///
/// # Errors
/// [`FormatError::Invalid`] if the contents break the format's rules (unsorted or duplicate
/// names, dependency or entry numbers out of range, a name with a NUL byte).
pub fn encode(contents: &BundleContents) -> Result<Vec<u8>, FormatError> {
    Ok(Layout::new(contents, None::<fn(&[u8; 32]) -> [u8; SIGNATURE_LEN]>)?.to_vec())
}

/// A bundle laid out and ready to write: header, target and index bytes, and the module
/// bytes it refers to, which are copied once, straight to the output, by
/// [`Layout::write_to`]. Building one hashes every module but copies none.
#[derive(Debug)]
pub struct Layout<'a> {
    header: [u8; HEADER_LEN],
    target: Vec<u8>,
    index: Vec<u8>,
    blobs: Vec<&'a [u8]>,
    signature: Option<[u8; SIGNATURE_LEN]>,
    root_hash: [u8; 32],
    len: u64,
}

impl<'a> Layout<'a> {
    /// Lays out `contents`; with `sign`, a signature region filled by it (it gets the root
    /// hash and returns [`SIGNATURE_LEN`] bytes: key id, then signature).
    ///
    /// # Errors
    /// As [`encode`].
    pub fn new(
        contents: &'a BundleContents,
        sign: Option<impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN]>,
    ) -> Result<Layout<'a>, FormatError> {
        Layout::with_known_hashes(contents, &[], sign)
    }

    /// Like [`Layout::new`], with the blake3 hashes of some modules' bytes already known:
    /// `known[i]`, when present, is taken as the hash of `contents.modules[i].bytes` without
    /// hashing them again. A wrong hash makes the runtime refuse that module as damaged.
    ///
    /// # Errors
    /// As [`encode`].
    pub fn with_known_hashes(
        contents: &'a BundleContents,
        known: &[Option<[u8; 32]>],
        sign: Option<impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN]>,
    ) -> Result<Layout<'a>, FormatError> {
        let mut blobs: Vec<&'a [u8]> = Vec::new();
        let mut blobs_len = 0u64;
        // Identical blobs (`a` and `a.init` from one file) are stored once.
        let mut stored: std::collections::HashMap<[u8; 32], Span> = std::collections::HashMap::new();
        let mut modules = Vec::with_capacity(contents.modules.len());
        let mut store = |bytes: &'a [u8], known: Option<[u8; 32]>| {
            let hash = known.unwrap_or_else(|| *blake3::hash(bytes).as_bytes());
            let blob = *stored.entry(hash).or_insert_with(|| {
                let span = Span { offset: blobs_len, len: bytes.len() as u64 };
                blobs.push(bytes);
                blobs_len += bytes.len() as u64;
                span
            });
            (blob, hash)
        };
        for (i, m) in contents.modules.iter().enumerate() {
            let (blob, hash) = store(&m.bytes, known.get(i).copied().flatten());
            let source = m.source.as_deref().map(|text| {
                let (blob, hash) = store(text, None);
                SourceBlob { blob, hash }
            });
            modules.push(ModuleRecord {
                name: m.name.clone(),
                chunk_name: m.chunk_name.clone(),
                path: m.path.clone(),
                kind: m.kind,
                flags: 0,
                blob,
                hash,
                source,
                deps: m.deps.clone(),
            });
        }
        let index = Index {
            modules,
            entry: contents.entry,
            externals: contents.externals.clone(),
            profiles: contents.profiles.clone(),
            groups: contents.groups.clone(),
        };
        validate_index(&index, blobs_len)?;
        let target = encode_part("target", &contents.target)?;
        let index = encode_part("index", &index)?;
        Ok(Layout::around(target, index, blobs, blobs_len, sign))
    }

    fn around(
        target: Vec<u8>,
        index: Vec<u8>,
        blobs: Vec<&'a [u8]>,
        blobs_len: u64,
        sign: Option<impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN]>,
    ) -> Layout<'a> {
        let signature_len = if sign.is_some() { SIGNATURE_LEN as u64 } else { 0 };
        let target_span = Span { offset: HEADER_LEN as u64, len: target.len() as u64 };
        let index_span = Span { offset: target_span.offset + target_span.len, len: index.len() as u64 };
        let blobs_span = Span { offset: index_span.offset + index_span.len, len: blobs_len };
        let signature_span = Span { offset: blobs_span.offset + blobs_span.len, len: signature_len };
        let len = signature_span.offset + signature_span.len + TRAILER_LEN as u64;
        let mut header = Header {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            flags: if sign.is_some() { FLAG_SIGNED } else { 0 },
            file_len: len,
            target: target_span,
            index: index_span,
            blobs: blobs_span,
            signature: signature_span,
            root_hash: [0; 32],
        };
        header.root_hash = root_hash(&header.to_bytes(), &target, &index);
        let signature = sign.map(|sign| sign(&header.root_hash));
        Layout { header: header.to_bytes(), target, index, blobs, signature, root_hash: header.root_hash, len }
    }

    /// Length of the bundle file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the bundle is empty (never: a bundle has at least a header and a trailer).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root hash, which covers the header, the target and the index, and through the
    /// index's hashes every module's bytes.
    pub fn root_hash(&self) -> &[u8; 32] {
        &self.root_hash
    }

    /// The first [`HEADER_LEN`] bytes of the file.
    pub fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// The last [`TRAILER_LEN`] bytes of the file.
    pub fn trailer_bytes(&self) -> [u8; TRAILER_LEN] {
        let mut trailer = [0; TRAILER_LEN];
        trailer[..MAGIC.len()].copy_from_slice(&MAGIC);
        trailer[MAGIC.len()..].copy_from_slice(&self.root_hash);
        trailer
    }

    /// Writes the bundle to `out`, region by region.
    ///
    /// # Errors
    /// What `out` reports.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.header)?;
        out.write_all(&self.target)?;
        out.write_all(&self.index)?;
        for blob in &self.blobs {
            out.write_all(blob)?;
        }
        if let Some(signature) = &self.signature {
            out.write_all(signature)?;
        }
        out.write_all(&self.trailer_bytes())
    }

    /// The whole bundle in memory.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        self.write_to(&mut out).expect("writing to memory cannot fail");
        debug_assert_eq!(out.len() as u64, self.len);
        out
    }
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

/// Encodes a bundle as [`encode`] does, with a signature region filled by `sign`, which gets
/// the root hash and returns [`SIGNATURE_LEN`] bytes (key id, then signature).
///
/// # Errors
/// As [`encode`].
pub fn encode_signed(
    contents: &BundleContents,
    sign: impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN],
) -> Result<Vec<u8>, FormatError> {
    Ok(Layout::new(contents, Some(sign))?.to_vec())
}

/// Lays out a bundle around `index` exactly as [`encode`] does, with a valid root hash, but
/// without validating the index: for testing that readers refuse what a forger could write.
///
/// # Errors
/// [`FormatError::Invalid`] only if bincode cannot encode the parts.
pub fn encode_unvalidated(target: &Target, index: &Index, blobs: &[u8]) -> Result<Vec<u8>, FormatError> {
    let target = encode_part("target", target)?;
    let index = encode_part("index", index)?;
    let no_signature = None::<fn(&[u8; 32]) -> [u8; SIGNATURE_LEN]>;
    Ok(Layout::around(target, index, vec![blobs], blobs.len() as u64, no_signature).to_vec())
}

fn encode_part<T: Encode>(part: &'static str, value: &T) -> Result<Vec<u8>, FormatError> {
    bincode::encode_to_vec(value, bincode_config()).map_err(|e| FormatError::Invalid { part, reason: e.to_string() })
}

/// blake3 over the header bytes before the root hash field, the target block and the index.
pub fn root_hash(header: &[u8; HEADER_LEN], target: &[u8], index: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header[..ROOT_HASH_OFFSET]);
    hasher.update(target);
    hasher.update(index);
    *hasher.finalize().as_bytes()
}

impl Header {
    /// The header as it is written, little-endian.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..10].copy_from_slice(&MAGIC);
        b[10..12].copy_from_slice(&self.major.to_le_bytes());
        b[12..14].copy_from_slice(&self.minor.to_le_bytes());
        b[14..18].copy_from_slice(&self.flags.to_le_bytes());
        b[18..26].copy_from_slice(&self.file_len.to_le_bytes());
        let spans = [self.target, self.index, self.blobs, self.signature];
        for (i, span) in spans.iter().enumerate() {
            let at = 26 + i * 16;
            b[at..at + 8].copy_from_slice(&span.offset.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&span.len.to_le_bytes());
        }
        // Bytes 90..96 are reserved and zero.
        b[ROOT_HASH_OFFSET..].copy_from_slice(&self.root_hash);
        b
    }

    /// Parses and checks a header against the actual length of the file it came from.
    ///
    /// # Errors
    /// Wrong magic, unknown major version, unknown required flags, a length that differs
    /// from `actual_len`, or regions outside the file, overlapping or over their caps.
    pub fn parse(b: &[u8; HEADER_LEN], actual_len: u64) -> Result<Header, FormatError> {
        if b[..10] != MAGIC {
            return Err(FormatError::BadMagic { found: b[..10].to_vec() });
        }
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let (major, minor) = (u16_at(10), u16_at(12));
        if major != FORMAT_MAJOR {
            return Err(FormatError::UnsupportedVersion { major, minor });
        }
        let flags = u32_at(14);
        if flags & REQUIRED_FLAGS != 0 {
            return Err(FormatError::UnknownRequiredFlags { flags: flags & REQUIRED_FLAGS });
        }
        if b[90..ROOT_HASH_OFFSET].iter().any(|&x| x != 0) {
            return Err(FormatError::Invalid { part: "header", reason: "reserved bytes are not zero".into() });
        }
        let span_at = |i: usize| Span { offset: u64_at(26 + i * 16), len: u64_at(34 + i * 16) };
        let header = Header {
            major,
            minor,
            flags,
            file_len: u64_at(18),
            target: span_at(0),
            index: span_at(1),
            blobs: span_at(2),
            signature: span_at(3),
            root_hash: b[ROOT_HASH_OFFSET..].try_into().expect("32 bytes"),
        };
        header.check_layout(actual_len)?;
        Ok(header)
    }

    fn check_layout(&self, actual_len: u64) -> Result<(), FormatError> {
        if self.file_len != actual_len {
            return Err(FormatError::LengthMismatch { expected: self.file_len, found: actual_len });
        }
        if self.target.len > MAX_TARGET_LEN {
            return Err(FormatError::TooLarge { region: "target block", len: self.target.len, max: MAX_TARGET_LEN });
        }
        if self.index.len > MAX_INDEX_LEN {
            return Err(FormatError::TooLarge { region: "index", len: self.index.len, max: MAX_INDEX_LEN });
        }
        // The regions must follow each other in order, between the header and the trailer.
        let body_end = actual_len.checked_sub(TRAILER_LEN as u64);
        let regions =
            [("target", self.target), ("index", self.index), ("blob", self.blobs), ("signature", self.signature)];
        let mut at = HEADER_LEN as u64;
        for (region, span) in regions {
            let end = span.end().ok_or(FormatError::BadRegion { region })?;
            if span.offset < at || Some(end) > body_end {
                return Err(FormatError::BadRegion { region });
            }
            at = end;
        }
        Ok(())
    }
}

/// Checks that the trailer repeats the magic and the header's root hash.
///
/// # Errors
/// [`FormatError::BadTrailer`] naming what differs.
pub fn check_trailer(trailer: &[u8; TRAILER_LEN], header: &Header) -> Result<(), FormatError> {
    if trailer[..MAGIC.len()] != MAGIC {
        return Err(FormatError::BadTrailer { reason: "end magic missing (file cut or extended)" });
    }
    if trailer[MAGIC.len()..] != header.root_hash {
        return Err(FormatError::BadTrailer { reason: "root hash differs from the header's" });
    }
    Ok(())
}

/// Checks the root hash over the header, target block and index bytes.
///
/// # Errors
/// [`FormatError::RootHashMismatch`].
pub fn check_root_hash(header: &Header, target: &[u8], index: &[u8]) -> Result<(), FormatError> {
    let found = root_hash(&header.to_bytes(), target, index);
    if found != header.root_hash {
        return Err(FormatError::RootHashMismatch { expected: hex(&header.root_hash), found: hex(&found) });
    }
    Ok(())
}

/// Decodes the target block.
///
/// # Errors
/// [`FormatError::Invalid`] if it does not decode exactly.
pub fn decode_target(bytes: &[u8]) -> Result<Target, FormatError> {
    decode_part("target", bytes)
}

/// Decodes and validates the index against the blob region's length.
///
/// # Errors
/// [`FormatError::Invalid`] naming the first rule the index breaks.
pub fn decode_index(bytes: &[u8], blobs_len: u64) -> Result<Index, FormatError> {
    let index: Index = decode_part("index", bytes)?;
    validate_index(&index, blobs_len)?;
    Ok(index)
}

fn decode_part<T: Decode<()>>(part: &'static str, bytes: &[u8]) -> Result<T, FormatError> {
    let invalid = |reason: String| FormatError::Invalid { part, reason };
    let (value, used) = bincode::decode_from_slice(bytes, bincode_config()).map_err(|e| invalid(decode_reason(&e)))?;
    if used != bytes.len() {
        return Err(invalid(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(value)
}

/// What a decoding error means for a bundle, in words (bincode's own text shows its
/// internal types).
fn decode_reason(error: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match error {
        E::UnexpectedEnd { .. } => "it ends in the middle of a value".into(),
        E::LimitExceeded => format!("it holds a value over the limit of {MAX_INDEX_LEN} bytes"),
        E::UnexpectedVariant { type_name, found, .. } => {
            let kind = type_name.rsplit("::").next().unwrap_or(type_name);
            format!("it holds {found} where a {kind} kind is expected, which is not one")
        }
        E::InvalidBooleanValue(value) => format!("it holds {value} where a yes/no flag (0 or 1) is expected"),
        E::Utf8 { .. } => "a name in it is not valid UTF-8".into(),
        E::InvalidIntegerType { .. } | E::NonZeroTypeIsZero { .. } | E::OutsideUsizeRange(_) => {
            "it holds a number of the wrong size or out of range".into()
        }
        E::ArrayLengthMismatch { required, found } => {
            format!("a list of {found} entries where {required} are expected")
        }
        _ => "it holds bytes that are not a valid value".into(),
    }
}

fn validate_index(index: &Index, blobs_len: u64) -> Result<(), FormatError> {
    let invalid = |reason: String| FormatError::Invalid { part: "index", reason };
    let count = index.modules.len();
    if count > MAX_MODULES {
        return Err(invalid(format!("{count} modules, over the limit of {MAX_MODULES}")));
    }
    let in_range = |i: u32| (i as usize) < count;
    let mut previous: Option<&str> = None;
    // Blobs may be shared by modules (same span), but never partly overlap.
    let mut blob_order: Vec<(u64, u64, &str)> = Vec::with_capacity(count);
    for m in &index.modules {
        if m.name.is_empty() || m.name.contains('\0') {
            return Err(invalid(format!("bad module name {:?}", m.name)));
        }
        if previous.is_some_and(|p| p >= m.name.as_str()) {
            return Err(invalid(format!("module names not sorted and unique at {:?}", m.name)));
        }
        previous = Some(&m.name);
        if m.flags != 0 {
            return Err(invalid(format!("module {:?} has unknown flags {:#x}", m.name, m.flags)));
        }
        for span in std::iter::once(m.blob).chain(m.source.map(|s| s.blob)) {
            match span.end() {
                Some(end) if end <= blobs_len => blob_order.push((span.offset, end, &m.name)),
                _ => return Err(invalid(format!("blob of module {:?} lies outside the blob region", m.name))),
            }
        }
        if let Some(dep) = m.deps.iter().find(|d| !in_range(d.module)) {
            return Err(invalid(format!("module {:?} depends on module #{} of {count}", m.name, dep.module)));
        }
    }
    blob_order.sort_unstable();
    for pair in blob_order.windows(2) {
        let shared = pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1;
        if pair[1].0 < pair[0].1 && !shared {
            return Err(invalid(format!("blobs of modules {:?} and {:?} overlap", pair[0].2, pair[1].2)));
        }
    }
    if let Some(entry) = index.entry.filter(|&e| !in_range(e)) {
        return Err(invalid(format!("entry is module #{entry} of {count}")));
    }
    for profile in &index.profiles {
        if profile.members.iter().any(|&m| !in_range(m)) {
            return Err(invalid(format!("profile {:?} names a module out of range", profile.name)));
        }
    }
    for group in &index.groups {
        if group.name.is_empty() || group.name.contains('\0') || index.position(&group.name).is_some() {
            return Err(invalid(format!("group {:?} is empty-named or shadows a module", group.name)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        check_root_hash(&header, slice(header.target), slice(header.index))?;
        let target = decode_target(slice(header.target))?;
        let index = decode_index(slice(header.index), header.blobs.len)?;
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
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(decode_all(cut), Err(FormatError::LengthMismatch { .. })));
        let mut index = bytes.clone();
        index[HEADER_LEN + 20] ^= 1;
        assert!(matches!(decode_all(&index), Err(FormatError::RootHashMismatch { .. })));
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
