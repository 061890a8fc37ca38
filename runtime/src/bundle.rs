//! `Bundle`: an opened, header-verified bundle, and verified access to its module blobs.
//!
//! Opening checks everything except the blobs: header, trailer, region bounds, root hash,
//! and the decoded index. A blob is read and hashed only when asked for, so opening costs
//! the header and index alone, whatever the bundle's size.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::format::{self, FormatError, Header, Index, ModuleRecord, Span, Target, HEADER_LEN, TRAILER_LEN};
use crate::io::read_exact_at;
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
    index: Index,
    /// Per module, once its bytes have been verified: where the verified bytes are.
    verified: Vec<OnceLock<Verified>>,
    /// Blob bytes read from storage and hashed so far.
    bytes_read: AtomicU64,
}

/// A module whose bytes passed their hash check.
enum Verified {
    /// In memory that never changes (embedded or owned bundles): use them where they are.
    InPlace,
    /// Read from a file by a prefetch and kept.
    Kept(Arc<[u8]>),
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

enum Storage {
    Static(&'static [u8]),
    Owned(Vec<u8>),
    File(File),
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("label", &self.inner.label)
            .field("modules", &self.inner.index.modules.len())
            .finish()
    }
}

impl Storage {
    fn len(&self, label: &str) -> Result<u64> {
        match self {
            Storage::Static(b) => Ok(b.len() as u64),
            Storage::Owned(b) => Ok(b.len() as u64),
            Storage::File(f) => f.metadata().map(|m| m.len()).map_err(|source| io_error(label, source)),
        }
    }

    /// The bytes of `span`, which the caller has bounds-checked against the file length.
    fn read(&self, span: Span, label: &str) -> Result<Cow<'_, [u8]>> {
        let range = span.offset as usize..(span.offset + span.len) as usize;
        match self {
            Storage::Static(b) => Ok(Cow::Borrowed(&b[range])),
            Storage::Owned(b) => Ok(Cow::Borrowed(&b[range])),
            Storage::File(f) => {
                let mut buf = vec![0; span.len as usize];
                read_exact_at(f, &mut buf, span.offset).map_err(|source| io_error(label, source))?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

fn io_error(label: &str, source: std::io::Error) -> Error {
    Error::Io { bundle: label.to_string(), source }
}

impl Bundle {
    /// Opens a bundle embedded in the program, e.g. with `include_bytes!`. Nothing is copied.
    ///
    /// # Errors
    /// [`Error::Format`] if the header, trailer, root hash or index is damaged.
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

    /// Opens a bundle file, reading only its header, trailer, target block and index. The file
    /// stays open; each module's bytes are read when it is first required.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::NotAFile`] for a directory or
    /// device, [`Error::TooLarge`] over [`MAX_BUNDLE_LEN`], [`Error::Format`] if damaged.
    pub fn open(path: impl AsRef<Path>) -> Result<Bundle> {
        Bundle::open_with(path.as_ref(), &Policy::None)
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
        let format_error = |source: FormatError| Error::Format { bundle: label.clone(), source };
        let len = storage.len(&label)?;
        if len > MAX_BUNDLE_LEN {
            return Err(Error::TooLarge { bundle: label, len, max: MAX_BUNDLE_LEN });
        }
        if len < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(format_error(FormatError::TooShort { len }));
        }
        let head = storage.read(Span { offset: 0, len: HEADER_LEN as u64 }, &label)?;
        let header = Header::parse(head.as_ref().try_into().expect("header length"), len).map_err(format_error)?;
        let tail = storage.read(Span { offset: len - TRAILER_LEN as u64, len: TRAILER_LEN as u64 }, &label)?;
        format::check_trailer(tail.as_ref().try_into().expect("trailer length"), &header).map_err(format_error)?;
        let target_bytes = storage.read(header.target, &label)?;
        let index_bytes = storage.read(header.index, &label)?;
        format::check_root_hash(&header, &target_bytes, &index_bytes).map_err(format_error)?;
        #[cfg(feature = "sign")]
        {
            let region = storage.read(header.signature, &label)?;
            crate::signature::check(&label, policy, &header.root_hash, &region)?;
        }
        #[cfg(not(feature = "sign"))]
        let _ = policy;
        let target = format::decode_target(&target_bytes).map_err(format_error)?;
        let index = format::decode_index(&index_bytes, header.blobs.len).map_err(format_error)?;
        // A source bundle runs on any VM because it holds no bytecode: one that claims to
        // while holding some would reach Lua's loader without a target check.
        if target.flavour == target::SOURCE_FLAVOUR {
            if let Some(module) = index.modules.iter().find(|m| m.kind != format::BlobKind::Source) {
                return Err(format_error(FormatError::Invalid {
                    part: "index",
                    reason: format!("the source bundle holds bytecode (module `{}`)", module.name),
                }));
            }
        }
        drop((head, tail, target_bytes, index_bytes));
        let verified = (0..index.modules.len()).map(|_| OnceLock::new()).collect();
        let inner = Inner { label, storage, header, target, index, verified, bytes_read: AtomicU64::new(0) };
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

    /// The decoded, validated index: modules, entry, externals, profiles.
    pub fn index(&self) -> &Index {
        &self.inner.index
    }

    /// The header as read.
    pub fn header(&self) -> &Header {
        &self.inner.header
    }

    /// The entry module's name, if the bundle has one.
    pub fn entry(&self) -> Option<&str> {
        let entry = self.inner.index.entry?;
        Some(&self.inner.index.modules[entry as usize].name)
    }

    /// The record of the module called `name`.
    pub fn module(&self, name: &str) -> Option<&ModuleRecord> {
        self.inner.index.position(name).map(|i| &self.inner.index.modules[i])
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

    /// The bytes of module number `position`, checked against the index's blake3 hash. The
    /// returned buffer is exactly the one that was hashed. Bytes in memory are hashed once per
    /// bundle; bytes in a file are read and hashed on every call, unless a prefetch kept them.
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails, [`Error::BlobHashMismatch`] if the bytes are damaged.
    ///
    /// # Panics
    /// If `position` is not below the module count.
    pub fn verified_blob(&self, position: usize) -> Result<Blob<'_>> {
        let inner = &*self.inner;
        let in_memory = |span: Span| match &inner.storage {
            Storage::Static(b) => Some(&b[span.offset as usize..(span.offset + span.len) as usize]),
            Storage::Owned(b) => Some(&b[span.offset as usize..(span.offset + span.len) as usize]),
            Storage::File(_) => None,
        };
        let span = self.blob_span(position);
        match inner.verified[position].get() {
            Some(Verified::InPlace) => return Ok(Blob::Borrowed(in_memory(span).expect("in-memory bundle"))),
            Some(Verified::Kept(bytes)) => return Ok(Blob::Shared(bytes.clone())),
            None => {}
        }
        let bytes = inner.storage.read(span, &inner.label)?;
        inner.bytes_read.fetch_add(span.len, Ordering::Relaxed);
        self.check_hash(position, &bytes)?;
        Ok(match bytes {
            Cow::Borrowed(bytes) => {
                let _ = inner.verified[position].set(Verified::InPlace);
                Blob::Borrowed(bytes)
            }
            Cow::Owned(bytes) => Blob::Owned(bytes),
        })
    }

    /// Where module `position`'s blob is in the file. The index is validated against the
    /// blob region, which the header check placed inside the file, so this cannot overflow.
    fn blob_span(&self, position: usize) -> Span {
        let record = &self.inner.index.modules[position];
        Span { offset: self.inner.header.blobs.offset + record.blob.offset, len: record.blob.len }
    }

    fn check_hash(&self, position: usize, bytes: &[u8]) -> Result<()> {
        let record = &self.inner.index.modules[position];
        let found = blake3::hash(bytes);
        if found.as_bytes() != &record.hash {
            return Err(Error::BlobHashMismatch {
                bundle: self.inner.label.clone(),
                module: record.name.clone(),
                expected: format::hex(&record.hash),
                found: found.to_hex().to_string(),
            });
        }
        Ok(())
    }

    /// The embedded source of module `position` (see `--embed-source`), checked against its
    /// hash, or `None` if the bundle has none for it.
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails, [`Error::BlobHashMismatch`] if the bytes are damaged.
    pub fn verified_source(&self, position: usize) -> Result<Option<Blob<'_>>> {
        let inner = &*self.inner;
        let record = &inner.index.modules[position];
        let Some(source) = record.source else { return Ok(None) };
        let span = Span { offset: inner.header.blobs.offset + source.blob.offset, len: source.blob.len };
        let bytes = inner.storage.read(span, &inner.label)?;
        inner.bytes_read.fetch_add(span.len, Ordering::Relaxed);
        let found = blake3::hash(&bytes);
        if found.as_bytes() != &source.hash {
            return Err(Error::BlobHashMismatch {
                bundle: inner.label.clone(),
                module: format!("{} (embedded source)", record.name),
                expected: format::hex(&source.hash),
                found: found.to_hex().to_string(),
            });
        }
        Ok(Some(match bytes {
            Cow::Borrowed(bytes) => Blob::Borrowed(bytes),
            Cow::Owned(bytes) => Blob::Owned(bytes),
        }))
    }

    /// Whether every module has its source embedded, so the bundle can run from source on a
    /// VM that cannot run its bytecode.
    pub fn has_all_sources(&self) -> bool {
        self.inner.index.modules.iter().all(|m| m.source.is_some() || m.kind == format::BlobKind::Source)
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
        let index = self.index();
        let mut todo: Vec<usize> = names.iter().filter_map(|n| index.position(n)).collect();
        let mut wanted = BTreeSet::new();
        while let Some(position) = todo.pop() {
            if wanted.insert(position) {
                let eager = index.modules[position].deps.iter().filter(|d| d.kind == format::DepKind::Eager);
                todo.extend(eager.map(|d| d.module as usize));
            }
        }
        let bundle = self.clone();
        let handle = std::thread::spawn(move || {
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
        if self.inner.verified[position].get().is_some() {
            return Ok(());
        }
        match self.verified_blob(position)? {
            Blob::Owned(bytes) => {
                let _ = self.inner.verified[position].set(Verified::Kept(bytes.into()));
            }
            Blob::Borrowed(_) | Blob::Shared(_) => {}
        }
        Ok(())
    }

    /// Verifies the target and every module's hash, for tools; loading needs none of this
    /// up front.
    ///
    /// # Errors
    /// The first failure found.
    pub fn verify_all(&self) -> Result<()> {
        self.check_target()?;
        (0..self.inner.index.modules.len()).try_for_each(|i| self.verified_blob(i).map(drop))
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
