//! Reading bundles: the header parsed and checked against the file, the trailer and root
//! hash checked, the target and directory decoded and checked before anything uses them,
//! and the rules a whole index must follow (for [`IndexView::decode_all`]).

use bincode::Decode;

use super::*;

impl Header {
    /// Parses and checks a header against the actual length of the file it came from.
    ///
    /// # Errors
    /// Wrong magic, unknown major version, unknown required flags, a length that differs
    /// from `actual_len`, or regions outside the file, overlapping or over their caps.
    pub fn parse(b: &[u8; HEADER_LEN], actual_len: u64) -> Result<Header, FormatError> {
        check_magic_and_version(b)?;
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let flags = u32_at(14);
        if flags & REQUIRED_FLAGS & !KNOWN_REQUIRED_FLAGS != 0 {
            return Err(FormatError::UnknownRequiredFlags { flags: flags & REQUIRED_FLAGS & !KNOWN_REQUIRED_FLAGS });
        }
        if b[SPANS_OFFSET + SPAN_COUNT * 16..ROOT_HASH_OFFSET].iter().any(|&x| x != 0) {
            return Err(FormatError::Invalid { part: "header", reason: "reserved bytes are not zero".into() });
        }
        let span_at = |i: usize| Span { offset: u64_at(SPANS_OFFSET + i * 16), len: u64_at(SPANS_OFFSET + 8 + i * 16) };
        let header = Header {
            major: u16_at(10),
            minor: u16_at(12),
            flags,
            file_len: u64_at(18),
            target: span_at(0),
            directory: span_at(1),
            page_hashes: span_at(2),
            index: span_at(3),
            blobs: span_at(4),
            signature: span_at(5),
            root_hash: b[ROOT_HASH_OFFSET..].try_into().expect("32 bytes"),
        };
        header.check_layout(actual_len)?;
        Ok(header)
    }

    fn check_layout(&self, actual_len: u64) -> Result<(), FormatError> {
        if self.file_len != actual_len {
            return Err(FormatError::LengthMismatch { expected: self.file_len, found: actual_len });
        }
        let caps = [
            ("target block", self.target.len, MAX_TARGET_LEN),
            ("directory", self.directory.len, MAX_DIRECTORY_LEN),
            ("index", self.index.len, MAX_INDEX_LEN),
        ];
        for (region, len, max) in caps {
            if len > max {
                return Err(FormatError::TooLarge { region, len, max });
            }
        }
        // The regions must follow each other in order, between the header and the trailer.
        let body_end = actual_len.checked_sub(TRAILER_LEN as u64);
        let mut at = HEADER_LEN as u64;
        for (region, span) in self.regions() {
            let end = span.end().ok_or(FormatError::BadRegion { region })?;
            if span.offset < at || Some(end) > body_end {
                return Err(FormatError::BadRegion { region });
            }
            at = end;
        }
        // One hash per index page.
        if self.page_hashes.len != pages(self.index.len) * 32 {
            return Err(FormatError::Invalid {
                part: "header",
                reason: format!("{} bytes of page hashes for {} bytes of index", self.page_hashes.len, self.index.len),
            });
        }
        Ok(())
    }
}

/// Number of [`PAGE_LEN`]-byte pages of a region of `len` bytes (the last may be short).
pub(super) fn pages(len: u64) -> u64 {
    len.div_ceil(PAGE_LEN as u64)
}

/// Checks the magic and the format version, which are where every version puts them: a
/// bundle of another version gets the version error, whatever its length.
///
/// # Errors
/// [`FormatError::BadMagic`] or [`FormatError::UnsupportedVersion`].
pub fn check_magic_and_version(b: &[u8]) -> Result<(), FormatError> {
    if b.len() < MAGIC.len() || b[..MAGIC.len()] != MAGIC {
        return Err(FormatError::BadMagic { found: b[..b.len().min(MAGIC.len())].to_vec() });
    }
    if b.len() >= 14 {
        let (major, minor) = (u16::from_le_bytes([b[10], b[11]]), u16::from_le_bytes([b[12], b[13]]));
        if major != FORMAT_MAJOR {
            return Err(FormatError::UnsupportedVersion { major, minor });
        }
    }
    Ok(())
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

/// Checks the root hash over the header, target block and directory bytes.
///
/// # Errors
/// [`FormatError::RootHashMismatch`].
pub fn check_root_hash(header: &Header, target: &[u8], directory: &[u8]) -> Result<(), FormatError> {
    let found = root_hash(&header.to_bytes(), target, directory);
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

/// Decodes the directory and checks it against the header: one hash per page of page
/// hashes, sections inside the index region, entry sizes, the module and bucket counts, the
/// entry's position.
///
/// # Errors
/// [`FormatError::Invalid`] naming the first rule the directory breaks.
pub fn decode_directory(bytes: &[u8], header: &Header) -> Result<Directory, FormatError> {
    let directory: Directory = decode_part("directory", bytes)?;
    let invalid = |reason: String| FormatError::Invalid { part: "directory", reason };
    if directory.hash_pages.len() as u64 != pages(header.page_hashes.len) {
        return Err(invalid(format!(
            "{} hashes for {} pages of page hashes",
            directory.hash_pages.len(),
            pages(header.page_hashes.len)
        )));
    }
    let count = directory.module_count as usize;
    if count > MAX_MODULES {
        return Err(invalid(format!("{count} modules, over the limit of {MAX_MODULES}")));
    }
    let buckets = directory.bucket_count as usize;
    if (count == 0) != (buckets == 0) || (buckets != 0 && (!buckets.is_power_of_two() || buckets < count)) {
        return Err(invalid(format!("{buckets} buckets for {count} modules")));
    }
    let sized = [
        ("records", directory.records, Some(count as u64 * RECORD_LEN as u64), RECORD_LEN),
        ("buckets", directory.buckets, Some(buckets as u64 * BUCKET_LEN as u64), BUCKET_LEN),
        ("strings", directory.strings, None, 1),
        ("dependencies", directory.deps, None, DEP_LEN),
        ("sources", directory.sources, None, SOURCE_LEN),
        ("externals", directory.externals, None, 1),
        ("profiles", directory.profiles, None, 1),
        ("groups", directory.groups, None, 1),
    ];
    for (section, span, exact, entry_len) in sized {
        if span.end().is_none_or(|end| end > header.index.len) {
            return Err(invalid(format!("the {section} section lies outside the index")));
        }
        if exact.is_some_and(|len| len != span.len) || span.len % entry_len as u64 != 0 {
            return Err(invalid(format!(
                "the {section} section is {} bytes, which does not fit its entries",
                span.len
            )));
        }
    }
    if let Some(entry) = directory.entry.filter(|&e| e as usize >= count) {
        return Err(invalid(format!("entry is module #{entry} of {count}")));
    }
    Ok(directory)
}

pub(super) fn decode_part<T: Decode<()>>(part: &'static str, bytes: &[u8]) -> Result<T, FormatError> {
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

/// Checks a whole index against the format's rules: at most [`MAX_MODULES`] modules, names
/// non-empty without NUL, sorted and unique, known flags, blobs inside the blob region and
/// either shared or disjoint, dependencies, entry and profile members in range, no group
/// named like a module.
///
/// # Errors
/// [`FormatError::Invalid`] naming the first rule broken.
pub fn validate_index(index: &Index, blobs_len: u64) -> Result<(), FormatError> {
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
        if let Encoding::Zstd { len } = m.encoding {
            if len > MAX_DECODED_LEN {
                return Err(invalid(format!("module {:?} decompresses to {len} bytes, over the limit", m.name)));
            }
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
