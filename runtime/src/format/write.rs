//! Writing bundles: the layout of header, target, directory, page hashes, index, module
//! bytes, signature and trailer, hashed once and copied once to the output.

use std::fs::File;

use bincode::Encode;

use super::index::encode_index;
use super::read::{pages, validate_index};
use super::*;

/// Encodes a complete bundle.
///
/// # Errors
/// [`FormatError::Invalid`] if the contents break the format's rules (unsorted or duplicate
/// names, dependency or entry numbers out of range, a name with a NUL byte).
pub fn encode(contents: &BundleContents) -> Result<Vec<u8>, FormatError> {
    Ok(Layout::new(contents, None::<fn(&[u8; 32]) -> [u8; SIGNATURE_LEN]>)?.to_vec())
}

/// A bundle laid out and ready to write: header, target and index bytes, and the module
/// bytes it refers to (in memory, or in another file such as the bundle it replaces), which
/// are copied once, straight to the output, by [`Layout::write_to`] or [`Layout::write_file`].
/// Building one hashes every module whose hash it is not given, but copies none.
#[derive(Debug)]
pub struct Layout<'a> {
    header: [u8; HEADER_LEN],
    target: Vec<u8>,
    directory: Vec<u8>,
    page_hashes: Vec<u8>,
    index: Vec<u8>,
    blobs: Vec<Piece<'a>>,
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
        Layout::with_known(contents, &[], sign)
    }

    /// Like [`Layout::new`], with what is already known of some modules' bytes: `known[i]`
    /// is for `contents.modules[i]` (see [`KnownBlob`]). A wrong hash, or a span that does not
    /// hold the bytes hashed, makes the runtime refuse that module as damaged.
    ///
    /// # Errors
    /// As [`encode`].
    pub fn with_known(
        contents: &'a BundleContents,
        known: &[Option<KnownBlob<'a>>],
        sign: Option<impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN]>,
    ) -> Result<Layout<'a>, FormatError> {
        let mut blobs: Vec<Piece<'a>> = Vec::new();
        let mut blobs_len = 0u64;
        // Identical blobs (`a` and `a.init` from one file) are stored once.
        let mut stored: std::collections::HashMap<[u8; 32], Span> = std::collections::HashMap::new();
        let mut modules = Vec::with_capacity(contents.modules.len());
        let mut store = |piece: Piece<'a>, hash: [u8; 32]| {
            let blob = *stored.entry(hash).or_insert_with(|| {
                let span = Span { offset: blobs_len, len: piece.len() };
                blobs_len += piece.len();
                blobs.push(piece);
                span
            });
            (blob, hash)
        };
        for (i, m) in contents.modules.iter().enumerate() {
            let (blob, hash) = match known.get(i).copied().flatten() {
                Some(KnownBlob::Hash(hash)) => store(Piece::Memory(&m.bytes), hash),
                Some(KnownBlob::InFile { file, span, hash }) => store(Piece::InFile(file, span), hash),
                None => store(Piece::Memory(&m.bytes), *blake3::hash(&m.bytes).as_bytes()),
            };
            let source = m.source.as_deref().map(|text| {
                let (blob, hash) = store(Piece::Memory(text), *blake3::hash(text).as_bytes());
                SourceBlob { blob, hash }
            });
            modules.push(ModuleRecord {
                name: m.name.clone(),
                chunk_name: m.chunk_name.clone(),
                path: m.path.clone(),
                kind: m.kind,
                flags: 0,
                encoding: m.encoding,
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
        Layout::around(&contents.target, &index, blobs, blobs_len, sign)
    }

    fn around(
        target: &Target,
        index: &Index,
        blobs: Vec<Piece<'a>>,
        blobs_len: u64,
        sign: Option<impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN]>,
    ) -> Result<Layout<'a>, FormatError> {
        let compressed = index.modules.iter().any(|m| m.encoding != Encoding::Plain);
        let target = encode_part("target", target)?;
        let (mut directory, index) = encode_index(index)?;
        if index.len() as u64 > MAX_INDEX_LEN {
            return Err(FormatError::TooLarge { region: "index", len: index.len() as u64, max: MAX_INDEX_LEN });
        }
        // Two levels of hashes: each index page's, and each page of those in the directory,
        // which the root hash covers.
        let page_hashes: Vec<u8> = index.chunks(PAGE_LEN).flat_map(|page| *blake3::hash(page).as_bytes()).collect();
        directory.hash_pages = page_hashes.chunks(PAGE_LEN).map(|page| *blake3::hash(page).as_bytes()).collect();
        debug_assert_eq!(page_hashes.len() as u64, pages(index.len() as u64) * 32);
        let directory = encode_part("directory", &directory)?;
        let signature_len = if sign.is_some() { SIGNATURE_LEN as u64 } else { 0 };
        // Each region right after the one before it.
        let after = |span: Span, len: u64| Span { offset: span.offset + span.len, len };
        let target_span = Span { offset: HEADER_LEN as u64, len: target.len() as u64 };
        let directory_span = after(target_span, directory.len() as u64);
        let page_hashes_span = after(directory_span, page_hashes.len() as u64);
        let index_span = after(page_hashes_span, index.len() as u64);
        let blobs_span = after(index_span, blobs_len);
        let signature_span = after(blobs_span, signature_len);
        let len = signature_span.offset + signature_span.len + TRAILER_LEN as u64;
        let mut header = Header {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            flags: if sign.is_some() { FLAG_SIGNED } else { 0 } | if compressed { FLAG_ZSTD } else { 0 },
            file_len: len,
            target: target_span,
            directory: directory_span,
            page_hashes: page_hashes_span,
            index: index_span,
            blobs: blobs_span,
            signature: signature_span,
            root_hash: [0; 32],
        };
        header.root_hash = root_hash(&header.to_bytes(), &target, &directory);
        let signature = sign.map(|sign| sign(&header.root_hash));
        Ok(Layout {
            header: header.to_bytes(),
            target,
            directory,
            page_hashes,
            index,
            blobs,
            signature,
            root_hash: header.root_hash,
            len,
        })
    }

    /// Length of the bundle file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the bundle is empty (never: a bundle has at least a header and a trailer).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root hash, which covers the header, the target and the directory, through the
    /// directory's page hashes the index, and through the index's hashes every module's bytes.
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

    /// Writes the bundle to `out`, region by region; bytes in another file are read from it
    /// in chunks.
    ///
    /// # Errors
    /// What `out` or a file read from reports.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.write_regions(out, |piece, out| match piece {
            Piece::Memory(bytes) => out.write_all(bytes),
            Piece::InFile(file, span) => copy_through_memory(file, span, out),
        })
    }

    /// Writes the bundle to `out` from its current position, as [`Layout::write_to`] does,
    /// except that bytes in another file go from file to file in the kernel where the system
    /// can (`copy_file_range` on Linux), never through this process's memory.
    ///
    /// # Errors
    /// What writing `out` or reading a file reports.
    pub fn write_file(&self, out: &File) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        // Neighbouring spans of one file (modules kept from the bundle this one replaces) are
        // copied in one call.
        let mut pending: Option<(&File, Span)> = None;
        self.write_regions(&mut out, |piece, out| {
            let joined = match (pending, piece) {
                (Some((from, run)), Piece::InFile(file, span))
                    if std::ptr::eq(from, file) && run.offset + run.len == span.offset =>
                {
                    Some((from, Span { offset: run.offset, len: run.len + span.len }))
                }
                _ => None,
            };
            if joined.is_some() {
                pending = joined;
                return Ok(());
            }
            if let Some((from, run)) = pending.take() {
                copy_in_kernel(from, run, out)?;
            }
            match piece {
                Piece::Memory(bytes) => std::io::Write::write_all(out, bytes),
                Piece::InFile(file, span) => {
                    pending = Some((file, span));
                    Ok(())
                }
            }
        })?;
        // The blobs are followed by at least the trailer, which flushed any pending run.
        debug_assert!(pending.is_none());
        std::io::Write::flush(&mut out)
    }

    /// Every region in order, the blobs through `blob` and the rest written to `out`. The
    /// blobs are followed by the trailer, written after `blob` has seen every piece.
    fn write_regions<W: std::io::Write + ?Sized>(
        &self,
        out: &mut W,
        mut blob: impl FnMut(Piece<'a>, &mut W) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        out.write_all(&self.header)?;
        out.write_all(&self.target)?;
        out.write_all(&self.directory)?;
        out.write_all(&self.page_hashes)?;
        out.write_all(&self.index)?;
        for piece in &self.blobs {
            blob(*piece, out)?;
        }
        // An empty piece ends any run of copies before the regions that follow.
        blob(Piece::Memory(&[]), out)?;
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

/// What the writer of a bundle already knows about one module's bytes (see
/// [`Layout::with_known`]).
#[derive(Clone, Copy, Debug)]
pub enum KnownBlob<'a> {
    /// Their blake3 hash, taken without hashing them again.
    Hash([u8; 32]),
    /// They are `span` of `file` (the bundle being replaced, say), whose bytes hash to `hash`:
    /// they are copied from there when the bundle is written, and the module's own `bytes`
    /// are not used (leave them empty).
    InFile {
        /// The file holding them, read by position when the bundle is written.
        file: &'a File,
        /// Where they are in it.
        span: Span,
        /// Their blake3 hash.
        hash: [u8; 32],
    },
}

/// One blob's bytes as the layout refers to them.
#[derive(Clone, Copy, Debug)]
enum Piece<'a> {
    Memory(&'a [u8]),
    InFile(&'a File, Span),
}

impl Piece<'_> {
    fn len(&self) -> u64 {
        match self {
            Piece::Memory(bytes) => bytes.len() as u64,
            Piece::InFile(_, span) => span.len,
        }
    }
}

/// `span` of `file` written to `out` through a buffer.
fn copy_through_memory(file: &File, span: Span, out: &mut (impl std::io::Write + ?Sized)) -> std::io::Result<()> {
    let mut buffer = vec![0u8; span.len.min(1 << 20) as usize];
    let mut at = span.offset;
    let end = span.offset + span.len;
    while at < end {
        let chunk = &mut buffer[..(end - at).min(1 << 20) as usize];
        crate::io::read_exact_at(file, chunk, at)?;
        out.write_all(chunk)?;
        at += chunk.len() as u64;
    }
    Ok(())
}

/// `span` of `file` appended to `out`: the buffer is flushed, then the kernel copies from
/// file to file (`std::io::copy` specialises to `copy_file_range` between files on Linux).
fn copy_in_kernel(file: &File, span: Span, out: &mut std::io::BufWriter<&File>) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    let mut from = file;
    from.seek(std::io::SeekFrom::Start(span.offset))?;
    let copied = std::io::copy(&mut from.take(span.len), out)?;
    if copied != span.len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the file ended {} bytes into a {}-byte span it should hold", copied, span.len),
        ));
    }
    Ok(())
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
    let no_signature = None::<fn(&[u8; 32]) -> [u8; SIGNATURE_LEN]>;
    Ok(Layout::around(target, index, vec![Piece::Memory(blobs)], blobs.len() as u64, no_signature)?.to_vec())
}

pub(super) fn encode_part<T: Encode>(part: &'static str, value: &T) -> Result<Vec<u8>, FormatError> {
    bincode::encode_to_vec(value, bincode_config()).map_err(|e| FormatError::Invalid { part, reason: e.to_string() })
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
        for (i, (_, span)) in self.regions().iter().enumerate() {
            let at = SPANS_OFFSET + i * 16;
            b[at..at + 8].copy_from_slice(&span.offset.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&span.len.to_le_bytes());
        }
        // The bytes between the spans and the root hash are reserved and zero.
        b[ROOT_HASH_OFFSET..].copy_from_slice(&self.root_hash);
        b
    }
}
