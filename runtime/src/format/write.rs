//! Writing bundles: the layout of header, target, directory, page hashes, index, module
//! bytes, signature and trailer, hashed once and copied once to the output.

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
/// bytes it refers to, which are copied once, straight to the output, by
/// [`Layout::write_to`]. Building one hashes every module but copies none.
#[derive(Debug)]
pub struct Layout<'a> {
    header: [u8; HEADER_LEN],
    target: Vec<u8>,
    directory: Vec<u8>,
    page_hashes: Vec<u8>,
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
        Layout::around(&contents.target, &index, blobs, blobs_len, sign)
    }

    fn around(
        target: &Target,
        index: &Index,
        blobs: Vec<&'a [u8]>,
        blobs_len: u64,
        sign: Option<impl FnOnce(&[u8; 32]) -> [u8; SIGNATURE_LEN]>,
    ) -> Result<Layout<'a>, FormatError> {
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
            flags: if sign.is_some() { FLAG_SIGNED } else { 0 },
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

    /// Writes the bundle to `out`, region by region.
    ///
    /// # Errors
    /// What `out` reports.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.header)?;
        out.write_all(&self.target)?;
        out.write_all(&self.directory)?;
        out.write_all(&self.page_hashes)?;
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
    Ok(Layout::around(target, index, vec![blobs], blobs.len() as u64, no_signature)?.to_vec())
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
