//! Reading bundles: the header parsed and checked against the file, the trailer and root
//! hash checked, the target and index decoded and validated before anything uses them.

use bincode::Decode;

use super::*;

impl Header {
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

pub(super) fn validate_index(index: &Index, blobs_len: u64) -> Result<(), FormatError> {
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
