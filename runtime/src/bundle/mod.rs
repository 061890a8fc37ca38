//! `Bundle`: an opened, header-verified bundle, and verified access to its index and module
//! blobs.
//!
//! Opening checks the header, trailer, region bounds, root hash and directory: a fixed amount
//! of work whatever the bundle's size. The index is read in place, page by page, each page
//! hashed on its first touch (`pages.rs`); a blob is read and hashed only when asked for.

mod pages;
mod storage;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pages::VerifiedPages;
use storage::{io_error, Storage};

use crate::error::{Error, Result};
use crate::format::{
    self, Directory, FormatError, Group, Header, Index, IndexBytes, IndexView, ModuleRecord, Profile, RecordFields,
    Span, Target, HEADER_LEN, TRAILER_LEN,
};
use crate::target;

/// The signature policy a bundle is opened under.
#[cfg(feature = "sign")]
type Policy = crate::signature::Verify;
/// Without the `sign` feature there is no policy to apply.
#[cfg(not(feature = "sign"))]
#[derive(Debug)]
enum Policy {
    None,
}

/// Largest bundle this runtime opens, in bytes.
pub const MAX_BUNDLE_LEN: u64 = 4 << 30;

/// An opened bundle. Cloning is cheap (a reference count), and a `Bundle` is `Send + Sync`:
/// one bundle serves any number of Lua states on any number of threads.
#[derive(Clone)]
pub struct Bundle {
    inner: Arc<Inner>,
}

struct Inner {
    label: String,
    storage: Storage,
    header: Header,
    target: Target,
    directory: Directory,
    /// The page-hash region, verified against the directory's hashes.
    hash_pages: VerifiedPages,
    /// The index region, verified against the page hashes.
    index_pages: VerifiedPages,
    /// One bit per module: its bytes are in memory and passed their hash check.
    checked_in_place: Vec<AtomicU64>,
    /// Bytes a prefetch read from the file and verified, by module position.
    kept: Mutex<HashMap<usize, Arc<[u8]>>>,
    /// What is decoded on first use and then kept.
    entry: OnceLock<Option<String>>,
    externals: OnceLock<Vec<String>>,
    profiles: OnceLock<Vec<Profile>>,
    groups: OnceLock<Vec<Group>>,
    index: OnceLock<Index>,
    /// Blob bytes read from storage and hashed so far.
    bytes_read: AtomicU64,
}

impl Inner {
    fn format_error(&self, source: FormatError) -> Error {
        Error::Format { bundle: self.label.clone(), source }
    }

    /// The recorded hash of index page `page`, read from the (verified) page-hash region.
    fn page_hash(&self, page: usize) -> Result<[u8; 32]> {
        let span = Span { offset: page as u64 * 32, len: 32 };
        let bytes = self.hash_pages.bytes(&self.storage, &self.label, span, |hash_page| {
            self.directory.hash_pages.get(hash_page).copied().ok_or_else(|| {
                self.format_error(FormatError::Invalid { part: "directory", reason: "a page hash is missing".into() })
            })
        })?;
        Ok(bytes[..].try_into().expect("32 bytes"))
    }

    fn view(&self) -> IndexView<'_, Inner> {
        IndexView::new(&self.directory, self, self.header.blobs.len)
    }
}

impl IndexBytes for Inner {
    type Error = Error;

    fn index_bytes(&self, span: Span) -> Result<Cow<'_, [u8]>> {
        self.index_pages.bytes(&self.storage, &self.label, span, |page| self.page_hash(page))
    }

    fn format_error(&self, error: FormatError) -> Error {
        Inner::format_error(self, error)
    }
}

/// `cell`'s value, computed by `init` the first time (a failure is returned and not kept).
fn cached<T>(cell: &OnceLock<T>, init: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(value) = cell.get() {
        return Ok(value);
    }
    let value = init()?;
    Ok(cell.get_or_init(|| value))
}

/// Where one module's bytes lie in a bundle file, and the hash its record gives them (see
/// [`Bundle::stored_blob`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// The bytes' place, from the start of the file.
    pub span: Span,
    /// Their blake3 hash as the index records it.
    pub hash: [u8; 32],
    /// How they encode what is loaded.
    pub encoding: format::Encoding,
}

/// The verified bytes of one module, exactly the buffer that was hashed.
#[derive(Debug)]
pub enum Blob<'a> {
    /// Borrowed from an in-memory bundle.
    Borrowed(&'a [u8]),
    /// Kept by a prefetch, shared.
    Shared(Arc<[u8]>),
    /// Read from the file for this load.
    Owned(Vec<u8>),
}

impl Deref for Blob<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Blob::Borrowed(bytes) => bytes,
            Blob::Shared(bytes) => bytes,
            Blob::Owned(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle").field("label", &self.inner.label).field("modules", &self.module_count()).finish()
    }
}

impl Bundle {
    /// Opens a bundle embedded in the program, e.g. with `include_bytes!`. Nothing is copied.
    ///
    /// # Errors
    /// [`Error::Format`] if the header, trailer, root hash or directory is damaged,
    /// [`Error::UnsupportedFormat`] for a bundle of another format version.
    pub fn from_static(bytes: &'static [u8]) -> Result<Bundle> {
        Bundle::from_storage("<embedded bundle>".into(), Storage::Static(bytes), &Policy::None)
    }

    /// Opens a bundle held in memory.
    ///
    /// # Errors
    /// As [`Bundle::from_static`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Bundle> {
        Bundle::from_storage("<in-memory bundle>".into(), Storage::Owned(bytes), &Policy::None)
    }

    /// Opens a bundle held in memory that errors call `label` (the file it came from, say).
    ///
    /// # Errors
    /// As [`Bundle::from_static`].
    pub fn from_bytes_named(bytes: Vec<u8>, label: impl Into<String>) -> Result<Bundle> {
        Bundle::from_storage(label.into(), Storage::Owned(bytes), &Policy::None)
    }

    /// Opens a bundle file, reading only its header, trailer, target block and directory:
    /// the same few reads whatever its size. The file stays open; index pages are read when
    /// a lookup first touches them, each module's bytes when it is first required.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::NotAFile`] for a directory or
    /// device, [`Error::TooLarge`] over [`MAX_BUNDLE_LEN`], [`Error::Format`] if damaged,
    /// [`Error::UnsupportedFormat`] for a bundle of another format version.
    pub fn open(path: impl AsRef<Path>) -> Result<Bundle> {
        Bundle::open_with(path.as_ref(), &Policy::None)
    }

    /// Opens a bundle from a file already open for reading, as [`Bundle::open`] does;
    /// `label` names it in errors. For a caller that has checked the file it holds (its
    /// metadata, say) and needs the bundle read from exactly that file, not from whatever a
    /// path names by then.
    ///
    /// # Errors
    /// As [`Bundle::open`].
    pub fn from_file(file: File, label: impl Into<String>) -> Result<Bundle> {
        let label = label.into();
        let kind = file.metadata().map_err(|source| io_error(&label, source))?;
        if !kind.is_file() {
            return Err(Error::NotAFile { bundle: label });
        }
        Bundle::from_storage(label, Storage::File(file), &Policy::None)
    }

    fn open_with(path: &Path, policy: &Policy) -> Result<Bundle> {
        let label = path.display().to_string();
        // Checked before opening: opening a FIFO for reading would block.
        let kind = std::fs::metadata(path).map_err(|source| io_error(&label, source))?;
        if !kind.is_file() {
            return Err(Error::NotAFile { bundle: label });
        }
        let file = File::open(path).map_err(|source| io_error(&label, source))?;
        Bundle::from_storage(label, Storage::File(file), policy)
    }

    fn from_storage(label: String, storage: Storage, policy: &Policy) -> Result<Bundle> {
        let format_error = |source: FormatError| match source {
            FormatError::UnsupportedVersion { .. } => Error::UnsupportedFormat { bundle: label.clone(), source },
            source => Error::Format { bundle: label.clone(), source },
        };
        let len = storage.len(&label)?;
        if len > MAX_BUNDLE_LEN {
            return Err(Error::TooLarge { bundle: label, len, max: MAX_BUNDLE_LEN });
        }
        // The magic and version first: a bundle of another version, whatever its length,
        // gets the version's error.
        let head = storage.read(Span { offset: 0, len: len.min(HEADER_LEN as u64) }, &label)?;
        if head.len() >= 14 {
            format::check_magic_and_version(&head).map_err(format_error)?;
        }
        if len < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(format_error(FormatError::TooShort { len }));
        }
        let header = Header::parse(head.as_ref().try_into().expect("header length"), len).map_err(format_error)?;
        let tail = storage.read(Span { offset: len - TRAILER_LEN as u64, len: TRAILER_LEN as u64 }, &label)?;
        format::check_trailer(tail.as_ref().try_into().expect("trailer length"), &header).map_err(format_error)?;
        let target_bytes = storage.read(header.target, &label)?;
        let directory_bytes = storage.read(header.directory, &label)?;
        format::check_root_hash(&header, &target_bytes, &directory_bytes).map_err(format_error)?;
        #[cfg(feature = "sign")]
        {
            let region = storage.read(header.signature, &label)?;
            crate::signature::check(&label, policy, &header.root_hash, &region)?;
        }
        #[cfg(not(feature = "sign"))]
        let _ = policy;
        let target = format::decode_target(&target_bytes).map_err(format_error)?;
        let directory = format::decode_directory(&directory_bytes, &header).map_err(format_error)?;
        drop((head, tail, target_bytes, directory_bytes));
        let words = (directory.module_count as usize).div_ceil(64);
        let inner = Inner {
            hash_pages: VerifiedPages::new("page-hash", header.page_hashes),
            index_pages: VerifiedPages::new("index", header.index),
            checked_in_place: (0..words).map(|_| AtomicU64::new(0)).collect(),
            kept: Mutex::new(HashMap::new()),
            entry: OnceLock::new(),
            externals: OnceLock::new(),
            profiles: OnceLock::new(),
            groups: OnceLock::new(),
            index: OnceLock::new(),
            bytes_read: AtomicU64::new(0),
            label,
            storage,
            header,
            target,
            directory,
        };
        Ok(Bundle { inner: Arc::new(inner) })
    }

    /// Opens a bundle file as [`Bundle::open`] does, then checks its signature under
    /// `policy` (before anything else is decoded).
    ///
    /// # Errors
    /// As [`Bundle::open`], and [`Error::Unsigned`] or [`Error::BadSignature`].
    #[cfg(feature = "sign")]
    pub fn open_verified(path: impl AsRef<Path>, policy: &crate::signature::Verify) -> Result<Bundle> {
        Bundle::open_with(path.as_ref(), policy)
    }

    /// [`Bundle::from_bytes`] with a signature policy.
    ///
    /// # Errors
    /// As [`Bundle::open_verified`].
    #[cfg(feature = "sign")]
    pub fn from_bytes_verified(bytes: Vec<u8>, policy: &crate::signature::Verify) -> Result<Bundle> {
        Bundle::from_storage("<in-memory bundle>".into(), Storage::Owned(bytes), policy)
    }

    /// [`Bundle::from_static`] with a signature policy.
    ///
    /// # Errors
    /// As [`Bundle::open_verified`].
    #[cfg(feature = "sign")]
    pub fn from_static_verified(bytes: &'static [u8], policy: &crate::signature::Verify) -> Result<Bundle> {
        Bundle::from_storage("<embedded bundle>".into(), Storage::Static(bytes), policy)
    }

    /// The name this bundle goes by in error messages.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The Lua VM the bundle was built for.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// The header as read.
    pub fn header(&self) -> &Header {
        &self.inner.header
    }

    /// The directory: the index's sections and page hashes.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// Number of modules in the bundle.
    pub fn module_count(&self) -> usize {
        self.inner.directory.module_count as usize
    }

    /// The whole index, decoded and checked against every rule of the format (sorted unique
    /// names, disjoint blobs, a name table that finds every module) on first use: its cost
    /// grows with the bundle, so loading never needs it; tools listing everything do.
    ///
    /// # Errors
    /// [`Error::Format`] naming the first rule broken or the damaged page; [`Error::Io`].
    pub fn index(&self) -> Result<&Index> {
        cached(&self.inner.index, || {
            let index = self.inner.view().decode_all()?;
            index.modules.iter().try_for_each(|m| self.refuse_bytecode_in_source_bundle(m.kind, || m.name.clone()))?;
            Ok(index)
        })
    }

    /// The entry module's name, if the bundle has one.
    ///
    /// # Errors
    /// [`Error::Format`] if its record is damaged; [`Error::Io`].
    pub fn entry(&self) -> Result<Option<&str>> {
        let entry = cached(&self.inner.entry, || match self.inner.directory.entry {
            Some(position) => Ok(Some(self.inner.view().name(position as usize)?)),
            None => Ok(None),
        })?;
        Ok(entry.as_deref())
    }

    /// Position of the module called `name`, found through the index's hash table (a few
    /// page reads, whatever the bundle's size).
    ///
    /// # Errors
    /// [`Error::Format`] if a page it reads is damaged; [`Error::Io`].
    pub fn position(&self, name: &str) -> Result<Option<usize>> {
        self.inner.view().position(name)
    }

    /// Whether some module's name starts with `prefix` (a binary search over the sorted
    /// records: a few page reads, whatever the bundle's size).
    ///
    /// # Errors
    /// [`Error::Format`] if a page it reads is damaged; [`Error::Io`].
    pub fn has_name_with_prefix(&self, prefix: &str) -> Result<bool> {
        self.inner.view().has_name_with_prefix(prefix)
    }

    /// The record of module `position`.
    ///
    /// # Errors
    /// [`Error::Format`] for a position out of range or a damaged record; [`Error::Io`].
    pub fn record(&self, position: usize) -> Result<ModuleRecord> {
        let record = self.inner.view().record(position)?;
        self.refuse_bytecode_in_source_bundle(record.kind, || record.name.clone())?;
        Ok(record)
    }

    /// The record of the module called `name`.
    ///
    /// # Errors
    /// As [`Bundle::position`] and [`Bundle::record`].
    pub fn module(&self, name: &str) -> Result<Option<ModuleRecord>> {
        self.position(name)?.map(|position| self.record(position)).transpose()
    }

    /// The names the bundle expects the host to provide (C or Rust modules).
    ///
    /// # Errors
    /// [`Error::Format`] if the list is damaged; [`Error::Io`].
    pub fn externals(&self) -> Result<&[String]> {
        cached(&self.inner.externals, || self.inner.view().externals()).map(Vec::as_slice)
    }

    /// The bundle's profiles (named module subsets).
    ///
    /// # Errors
    /// As [`Bundle::externals`].
    pub fn profiles(&self) -> Result<&[Profile]> {
        cached(&self.inner.profiles, || self.inner.view().profiles()).map(Vec::as_slice)
    }

    /// The bundle's groups (modules that gather others).
    ///
    /// # Errors
    /// As [`Bundle::externals`].
    pub fn groups(&self) -> Result<&[Group]> {
        cached(&self.inner.groups, || self.inner.view().groups()).map(Vec::as_slice)
    }

    /// The fixed fields of module `position`, checked as [`Bundle::record`] checks them.
    fn fields(&self, position: usize) -> Result<RecordFields> {
        let fields = self.inner.view().fields(position)?;
        self.refuse_bytecode_in_source_bundle(fields.kind, || {
            self.inner.view().name(position).unwrap_or_else(|_| format!("#{position}"))
        })?;
        Ok(fields)
    }

    /// A source bundle runs on any VM because it holds no bytecode: a record of one that
    /// claims bytecode would reach Lua's loader without a target check, so every read of a
    /// record (fields, whole record, whole index) refuses it.
    fn refuse_bytecode_in_source_bundle(&self, kind: format::BlobKind, name: impl FnOnce() -> String) -> Result<()> {
        if kind == format::BlobKind::Source || self.inner.target.flavour != target::SOURCE_FLAVOUR {
            return Ok(());
        }
        Err(self.inner.format_error(FormatError::Invalid {
            part: "index",
            reason: format!("the source bundle holds bytecode (module `{}`)", name()),
        }))
    }

    /// Checks that the bundle's target is the linked VM.
    ///
    /// # Errors
    /// [`Error::TargetMismatch`] naming both targets.
    pub fn check_target(&self) -> Result<()> {
        if target::matches_linked(&self.inner.target) {
            return Ok(());
        }
        Err(Error::TargetMismatch {
            bundle: self.inner.label.clone(),
            expected: Box::new(target::linked().clone()),
            found: Box::new(self.inner.target.clone()),
        })
    }

    /// The bytes of module number `position` as Lua loads them: the stored bytes, checked
    /// against the index's blake3 hash, and then decompressed if the module is stored
    /// compressed (never before the check, and only up to the length its record gives).
    /// Uncompressed, the returned buffer is exactly the one that was hashed. Bytes in memory
    /// are hashed once per bundle; bytes in a file are read and hashed on every call, unless
    /// a prefetch kept them.
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails, [`Error::BlobHashMismatch`] if the bytes are damaged,
    /// [`Error::Format`] if the module's record is damaged, its compressed bytes do not
    /// decompress to the recorded length, or `position` is out of range.
    pub fn verified_blob(&self, position: usize) -> Result<Blob<'_>> {
        let inner = &*self.inner;
        let fields = self.fields(position)?;
        // Uncompressed bytes of an in-memory bundle, once checked, are used in place without
        // taking the lock; anything else may have been kept (decompressed) by a prefetch.
        let in_place = inner.checked_in_place[position / 64].load(Ordering::Acquire) & (1 << (position % 64)) != 0;
        if !(in_place && fields.encoding == format::Encoding::Plain) {
            if let Some(kept) = inner.kept.lock().ok().and_then(|kept| kept.get(&position).cloned()) {
                return Ok(Blob::Shared(kept));
            }
        }
        let stored = self.verified_stored(position, &fields)?;
        match fields.encoding.decode(&stored) {
            Ok(Cow::Borrowed(_)) => Ok(stored),
            Ok(Cow::Owned(decoded)) => Ok(Blob::Owned(decoded)),
            Err(FormatError::Invalid { part, reason }) => {
                let name = self.inner.view().name(position).unwrap_or_else(|_| format!("#{position}"));
                Err(inner.format_error(FormatError::Invalid { part, reason: format!("{name}: {reason}") }))
            }
            Err(other) => Err(inner.format_error(other)),
        }
    }

    /// The stored bytes of module `position`, checked against the hash in its `fields`.
    fn verified_stored(&self, position: usize, fields: &RecordFields) -> Result<Blob<'_>> {
        let inner = &*self.inner;
        let span = self.in_file(fields.blob);
        let (word, bit) = (position / 64, 1u64 << (position % 64));
        if inner.checked_in_place[word].load(Ordering::Acquire) & bit != 0 {
            return Ok(Blob::Borrowed(inner.storage.in_memory(span).expect("in-memory bundle")));
        }
        let bytes = inner.storage.read(span, &inner.label)?;
        inner.bytes_read.fetch_add(span.len, Ordering::Relaxed);
        self.check_hash(position, "", &fields.hash, &bytes)?;
        Ok(match bytes {
            Cow::Borrowed(bytes) => {
                inner.checked_in_place[word].fetch_or(bit, Ordering::AcqRel);
                Blob::Borrowed(bytes)
            }
            Cow::Owned(bytes) => Blob::Owned(bytes),
        })
    }

    /// Where the bytes of module `position` lie in the bundle (offset from the file's start)
    /// and the blake3 hash its record gives them, without reading or checking the bytes: for
    /// a tool that copies them into another bundle under that hash.
    ///
    /// # Errors
    /// As [`Bundle::record`].
    pub fn stored_blob(&self, position: usize) -> Result<StoredBlob> {
        let fields = self.fields(position)?;
        Ok(StoredBlob { span: self.in_file(fields.blob), hash: fields.hash, encoding: fields.encoding })
    }

    /// Where a span of the blob region is in the file. Records are checked against the blob
    /// region, which the header check placed inside the file, so this cannot overflow.
    fn in_file(&self, blob: Span) -> Span {
        Span { offset: self.inner.header.blobs.offset + blob.offset, len: blob.len }
    }

    fn check_hash(&self, position: usize, what: &str, expected: &[u8; 32], bytes: &[u8]) -> Result<()> {
        let found = blake3::hash(bytes);
        if found.as_bytes() != expected {
            let name = self.inner.view().name(position).unwrap_or_else(|_| format!("#{position}"));
            return Err(Error::BlobHashMismatch {
                bundle: self.inner.label.clone(),
                module: format!("{name}{what}"),
                expected: format::hex(expected),
                found: found.to_hex().to_string(),
            });
        }
        Ok(())
    }

    /// The embedded source of module `position` (see `--embed-source`), checked against its
    /// hash, or `None` if the bundle has none for it.
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails, [`Error::BlobHashMismatch`] if the bytes are damaged,
    /// [`Error::Format`] if the record is damaged.
    pub fn verified_source(&self, position: usize) -> Result<Option<Blob<'_>>> {
        let inner = &*self.inner;
        let Some(source) = self.record(position)?.source else { return Ok(None) };
        let span = self.in_file(source.blob);
        let bytes = inner.storage.read(span, &inner.label)?;
        inner.bytes_read.fetch_add(span.len, Ordering::Relaxed);
        self.check_hash(position, " (embedded source)", &source.hash, &bytes)?;
        Ok(Some(match bytes {
            Cow::Borrowed(bytes) => Blob::Borrowed(bytes),
            Cow::Owned(bytes) => Blob::Owned(bytes),
        }))
    }

    /// Whether every module has its source embedded, so the bundle can run from source on a
    /// VM that cannot run its bytecode. Reads every record.
    ///
    /// # Errors
    /// As [`Bundle::index`].
    pub fn has_all_sources(&self) -> Result<bool> {
        let index = self.index()?;
        Ok(index.modules.iter().all(|m| m.source.is_some() || m.kind == format::BlobKind::Source))
    }

    /// Blob bytes read and hashed so far, over all states: modules never required are never
    /// read.
    pub fn bytes_read(&self) -> u64 {
        self.inner.bytes_read.load(Ordering::Relaxed)
    }

    /// Reads and verifies `names` and every module they require eagerly, on a background
    /// thread, so that their first `require` only has to hand verified bytes to Lua.
    /// Unknown names are skipped. Wait for it with [`Prefetch::wait`], or let it run.
    pub fn prefetch(&self, names: &[&str]) -> Prefetch {
        let bundle = self.clone();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let handle = std::thread::spawn(move || {
            let mut todo = Vec::new();
            for name in &names {
                todo.extend(bundle.position(name)?);
            }
            let mut wanted = BTreeSet::new();
            while let Some(position) = todo.pop() {
                if wanted.insert(position) {
                    let deps = bundle.record(position)?.deps;
                    let eager = deps.iter().filter(|d| d.kind == format::DepKind::Eager);
                    todo.extend(eager.map(|d| d.module as usize));
                }
            }
            let mut done = 0;
            for position in wanted {
                bundle.keep_verified(position)?;
                done += 1;
            }
            Ok(done)
        });
        Prefetch { handle }
    }

    fn keep_verified(&self, position: usize) -> Result<()> {
        if let Blob::Owned(bytes) = self.verified_blob(position)? {
            if let Ok(mut kept) = self.inner.kept.lock() {
                kept.insert(position, bytes.into());
            }
        }
        Ok(())
    }

    /// Verifies the target, the whole index (every rule, every page) and every module's
    /// bytes and embedded source, for tools; loading needs none of this up front.
    ///
    /// # Errors
    /// The first failure found.
    pub fn verify_all(&self) -> Result<()> {
        self.check_target()?;
        self.index()?;
        (0..self.module_count()).try_for_each(|i| {
            self.verified_blob(i)?;
            self.verified_source(i).map(drop)
        })
    }

    /// Makes every module of the bundle requirable in `lua` through `package.preload`, with
    /// the default options (see [`Bundle::installer`] for the others).
    ///
    /// Nothing is read, verified or run here, and the cost does not depend on the number of
    /// modules: a module materialises on its first lookup. On first `require` its blob is
    /// hashed, loaded in binary mode, and called with `(name, path)` like Lua's own loaders.
    ///
    /// # Errors
    /// [`Error::TargetMismatch`] if the bundle was built for another VM, [`Error::Install`]
    /// if the state has no `package` library.
    pub fn install(&self, lua: &mlua::Lua) -> Result<crate::Installed> {
        self.installer().install(lua)
    }

    /// Options for installing this bundle: profile, native modules, hooks, hermetic mode.
    pub fn installer(&self) -> crate::Installer {
        crate::Installer::new(self)
    }
}

/// A prefetch running in the background; see [`Bundle::prefetch`].
#[derive(Debug)]
pub struct Prefetch {
    handle: std::thread::JoinHandle<Result<usize>>,
}

impl Prefetch {
    /// Waits for the prefetch and returns how many modules it verified.
    ///
    /// # Errors
    /// The first module that could not be read or failed its hash check (a later `require`
    /// of it fails the same way).
    pub fn wait(self) -> Result<usize> {
        self.handle.join().unwrap_or(Ok(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn bundle_is_shareable_across_threads() {
        assert_send_sync::<Bundle>();
    }

    #[test]
    fn garbage_is_refused_with_a_format_error() {
        let err = Bundle::from_bytes(vec![0; 500]).unwrap_err();
        assert!(matches!(err, Error::Format { source: FormatError::BadMagic { .. }, .. }), "{err}");
        let err = Bundle::from_bytes(b"hello".to_vec()).unwrap_err();
        assert!(matches!(err, Error::Format { source: FormatError::TooShort { len: 5 }, .. }), "{err}");
    }

    #[test]
    fn a_directory_is_not_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Bundle::open(dir.path()), Err(Error::NotAFile { .. }) | Err(Error::Io { .. })));
    }
}
