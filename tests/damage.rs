//! Damaged and hostile bundles: every truncation and every single-bit flip of a small bundle
//! is refused with a typed error before Lua sees the damaged bytes, and forged headers and
//! indexes (with a correct root hash) are refused by their own checks.

use luabundle::Compression;
use luabundle_runtime::format::{self, FormatError, Header, HEADER_LEN};
use luabundle_runtime::{Bundle, Error};

/// A small bundle: two modules, one requiring the other.
fn small_bundle() -> Vec<u8> {
    small_bundle_stored(Compression::None)
}

/// The small bundle, its modules stored as `compression` says (with zstd, module `a` is
/// long enough to shrink, so it is stored compressed).
fn small_bundle_stored(compression: Compression) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let padding = match compression {
        Compression::None => String::new(),
        _ => "local words = { 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight' }\n".repeat(4),
    };
    let a = format!("{padding}local b = require('b')\nreturn {{ value = b.value + 1 }}");
    std::fs::write(dir.path().join("a.lua"), a).unwrap();
    std::fs::write(dir.path().join("b.lua"), "return { value = 41 }").unwrap();
    let output = dir.path().join("small.bundle");
    let mut builder = luabundle::Builder::new();
    builder.root(dir.path()).output(&output).no_cache(true).strip(false).compress(compression);
    builder.try_build().unwrap();
    std::fs::read(output).unwrap()
}

#[test]
fn every_truncation_is_refused_at_open() {
    let bytes = small_bundle();
    for len in 0..bytes.len() {
        match Bundle::from_bytes(bytes[..len].to_vec()) {
            Err(Error::Format { .. }) => {}
            other => panic!("truncated to {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn every_bit_flip_is_refused_before_lua_sees_the_bytes() {
    every_bit_flip_is_refused(small_bundle());
}

/// A compressed module's bytes are checked before they reach the decompressor, and its
/// record (which gives the decompressed length) is covered like every other.
#[test]
fn every_bit_flip_of_a_compressed_bundle_is_refused_before_decompressing() {
    let bytes = small_bundle_stored(Compression::Zstd);
    let index = Bundle::from_bytes(bytes.clone()).unwrap().index().unwrap().clone();
    assert!(matches!(index.modules[0].encoding, format::Encoding::Zstd { .. }), "{:?}", index.modules[0]);
    every_bit_flip_is_refused(bytes);
}

fn every_bit_flip_is_refused(bytes: Vec<u8>) {
    let good = Bundle::from_bytes(bytes.clone()).unwrap();
    let blobs = good.header().blobs;
    let owner = |offset: usize| {
        let relative = (offset as u64).checked_sub(blobs.offset)?;
        good.index()
            .unwrap()
            .modules
            .iter()
            .find(|m| m.blob.offset <= relative && relative < m.blob.offset + m.blob.len)
            .map(|m| m.name.clone())
    };
    let (mut at_open, mut at_lookup, mut at_require) = (0, 0, 0);
    for offset in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 1 << bit;
            let bundle = match Bundle::from_bytes(damaged) {
                Err(Error::Format { .. } | Error::UnsupportedFormat { .. }) => {
                    at_open += 1;
                    continue;
                }
                Err(other) => panic!("flip at {offset}.{bit}: untyped error {other}"),
                Ok(bundle) => bundle,
            };
            // What open does not read is checked when first touched: index pages by the
            // lookup that reads them, blob bytes on first require, before loading.
            let lua = mlua::Lua::new();
            bundle.install(&lua).unwrap();
            let err = lua.load("require('a')").exec().map_err(|e| e.to_string());
            let err = err.expect_err(&format!("flip at {offset}.{bit} went unnoticed"));
            match owner(offset) {
                Some(module) => {
                    assert!(
                        err.contains(&format!("module {module} in bundle")) && err.contains("is damaged: blake3"),
                        "{err}"
                    );
                    at_require += 1;
                }
                None => {
                    assert!(err.contains("damaged index page") || err.contains("damaged page-hash page"), "{err}");
                    at_lookup += 1;
                }
            }
            assert!(bundle.verify_all().is_err(), "flip at {offset}.{bit}: verify missed it");
        }
    }
    assert!(at_open > 0 && at_lookup > 0 && at_require > 0);
}

/// Rewrites the header and the trailer so the root hash matches the (edited) header, target
/// block and directory: what a forger who knows the format would do.
fn rehash(bytes: &mut [u8]) {
    let header = Header::parse(bytes[..HEADER_LEN].try_into().unwrap(), bytes.len() as u64).unwrap();
    let slice = |s: format::Span| bytes[s.offset as usize..(s.offset + s.len) as usize].to_vec();
    let root =
        format::root_hash(bytes[..HEADER_LEN].try_into().unwrap(), &slice(header.target), &slice(header.directory));
    bytes[HEADER_LEN - 32..HEADER_LEN].copy_from_slice(&root);
    let end = bytes.len();
    bytes[end - 32..].copy_from_slice(&root);
}

/// Header spans, in order: target, directory, page hashes, index, blobs, signature.
fn span_field(bytes: &mut [u8], region: usize, len: bool, value: u64) {
    let at = 26 + region * 16 + if len { 8 } else { 0 };
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn forged_regions_are_refused_by_their_bounds_checks() {
    let bytes = small_bundle();
    // Index length pointing past the end of the file.
    let mut past_end = bytes.clone();
    span_field(&mut past_end, 3, true, u64::MAX - 10);
    let err = Bundle::from_bytes(past_end).unwrap_err();
    assert!(
        matches!(err, Error::Format { source: FormatError::TooLarge { .. } | FormatError::BadRegion { .. }, .. }),
        "{err}"
    );
    // Blob region overlapping the index.
    let mut overlap = bytes.clone();
    let index_offset = u64::from_le_bytes(overlap[74..82].try_into().unwrap());
    span_field(&mut overlap, 4, false, index_offset);
    let err = Bundle::from_bytes(overlap).unwrap_err();
    assert!(matches!(err, Error::Format { source: FormatError::BadRegion { region: "blob" }, .. }), "{err}");
    // Offset + length overflowing.
    let mut overflow = bytes.clone();
    span_field(&mut overflow, 5, false, u64::MAX);
    span_field(&mut overflow, 5, true, 2);
    let err = Bundle::from_bytes(overflow).unwrap_err();
    assert!(matches!(err, Error::Format { source: FormatError::BadRegion { region: "signature" }, .. }), "{err}");
    // Page hashes that do not match the index's page count.
    let mut hashes = bytes.clone();
    span_field(&mut hashes, 2, true, 64);
    let err = Bundle::from_bytes(hashes).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
}

#[test]
fn a_forged_directory_with_a_valid_root_hash_is_still_validated() {
    let bytes = small_bundle();
    let header = Header::parse(bytes[..HEADER_LEN].try_into().unwrap(), bytes.len() as u64).unwrap();
    let directory_at = header.directory.offset as usize;
    // A huge module count: bincode's first byte of the directory is the count's varint.
    let mut huge = bytes.clone();
    huge[directory_at] = 252; // u32 varint marker: the next 4 bytes are the count
    huge[directory_at + 1..directory_at + 5].copy_from_slice(&u32::MAX.to_le_bytes());
    rehash(&mut huge);
    let err = Bundle::from_bytes(huge).unwrap_err();
    assert!(matches!(err, Error::Format { source: FormatError::Invalid { part: "directory", .. }, .. }), "{err}");
}

/// The small bundle with its index edited by `edit` and laid out again with a valid root
/// hash, unvalidated: what a forger who knows the format would write.
fn forged(bytes: &[u8], edit: &dyn Fn(&mut format::Index)) -> Vec<u8> {
    let good = Bundle::from_bytes(bytes.to_vec()).unwrap();
    let blobs = good.header().blobs;
    let mut index = good.index().unwrap().clone();
    edit(&mut index);
    let blobs = &bytes[blobs.offset as usize..(blobs.offset + blobs.len) as usize];
    format::encode_unvalidated(good.target(), &index, blobs).unwrap()
}

#[test]
fn forged_indexes_with_valid_root_hashes_are_refused_by_validation() {
    let bytes = small_bundle();
    let blobs_span = Bundle::from_bytes(bytes.clone()).unwrap().header().blobs;
    // Open checks the directory; the whole index is checked by `index()` (and `verify`).
    let forge = |edit: &dyn Fn(&mut format::Index)| {
        let checked = Bundle::from_bytes(forged(&bytes, edit)).and_then(|bundle| bundle.index().map(drop));
        match checked {
            Err(Error::Format { source: FormatError::Invalid { reason, .. }, .. }) => reason,
            other => panic!("forged index accepted or misreported: {other:?}"),
        }
    };
    assert!(forge(&|i| i.modules[0].blob.len = blobs_span.len + 1).contains("lies outside the blob region"));
    assert!(forge(&|i| i.modules[1].blob = i.modules[0].blob.clone_shifted(1)).contains("overlap"));
    assert!(forge(&|i| i.modules.swap(0, 1)).contains("not sorted"));
    assert!(forge(&|i| i.modules[0].deps[0].module = 9).contains("depends on module #9"));
    assert!(forge(&|i| i.entry = Some(5)).contains("entry is module #5"));
    assert!(forge(&|i| i.modules[1].name = "a".into()).contains("not sorted and unique"));
    assert!(forge(&|i| i.modules[0].name = "a\0b".into()).contains("bad module name"));
    assert!(forge(&|i| i.modules[0].flags = 4).contains("unknown flags"));
    let huge = format::Encoding::Zstd { len: format::MAX_DECODED_LEN + 1 };
    assert!(forge(&|i| i.modules[0].encoding = huge).contains("over the limit"));
}

/// What a lookup reads is checked as it is read: a forged record cannot point a require at
/// bytes outside the blob region or at a module that does not exist.
#[test]
fn forged_records_are_refused_by_the_require_that_reads_them() {
    let bytes = small_bundle();
    let blobs_span = Bundle::from_bytes(bytes.clone()).unwrap().header().blobs;
    let require_a = |edit: &dyn Fn(&mut format::Index)| {
        let bundle = Bundle::from_bytes(forged(&bytes, edit)).unwrap();
        let lua = mlua::Lua::new();
        bundle.install(&lua).unwrap();
        lua.load("return require('a').value").eval::<i64>().map_err(|e| e.to_string())
    };
    assert_eq!(require_a(&|_| {}), Ok(42));
    let outside = require_a(&|i| i.modules[0].blob.len = blobs_span.len + 1).unwrap_err();
    assert!(outside.contains("lies outside the blob region"), "{outside}");
    let dangling = require_a(&|i| i.modules[0].deps[0].module = 9).unwrap_err();
    assert!(dangling.contains("depends on module #9"), "{dangling}");
    // Bytecode claimed to be a zstd frame: refused by the decompressor, never loaded.
    let not_a_frame = require_a(&|i| i.modules[0].encoding = format::Encoding::Zstd { len: 100 }).unwrap_err();
    assert!(not_a_frame.contains("a: its zstd frame does not decompress"), "{not_a_frame}");
}

/// A forged record whose decompressed length differs from its frame's is refused at
/// require: a length too short never grows the buffer, one too long is caught after.
#[test]
fn a_compressed_module_whose_length_is_forged_is_refused() {
    let bytes = small_bundle_stored(Compression::Zstd);
    let format::Encoding::Zstd { len } =
        Bundle::from_bytes(bytes.clone()).unwrap().index().unwrap().modules[0].encoding
    else {
        panic!("module a is stored compressed")
    };
    let require_a = |encoding: format::Encoding| {
        let bundle = Bundle::from_bytes(forged(&bytes, &|i| i.modules[0].encoding = encoding)).unwrap();
        let lua = mlua::Lua::new();
        bundle.install(&lua).unwrap();
        lua.load("return require('a').value").eval::<i64>().map_err(|e| e.to_string())
    };
    assert_eq!(require_a(format::Encoding::Zstd { len }), Ok(42));
    let short = require_a(format::Encoding::Zstd { len: len - 1 }).unwrap_err();
    assert!(short.contains("does not decompress"), "{short}");
    let long = require_a(format::Encoding::Zstd { len: len + 1 }).unwrap_err();
    assert!(long.contains(&format!("decompresses to {len} bytes where its record says {}", len + 1)), "{long}");
    // Compressed bytes claimed to be plain: Lua's loader never sees them as bytecode.
    let plain = require_a(format::Encoding::Plain).unwrap_err();
    assert!(plain.contains("failed to load"), "{plain}");
}

trait Shift {
    fn clone_shifted(&self, by: u64) -> format::Span;
}

impl Shift for format::Span {
    fn clone_shifted(&self, by: u64) -> format::Span {
        format::Span { offset: self.offset + by, len: self.len }
    }
}

#[test]
fn directories_fifos_and_devices_are_not_bundles() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Bundle::open(dir.path()), Err(Error::NotAFile { .. })));
    assert!(matches!(Bundle::open("/dev/null"), Err(Error::NotAFile { .. })));
    let fifo = dir.path().join("pipe.bundle");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if made {
        // Opening a FIFO for reading would block; the check happens on the path first.
        assert!(matches!(Bundle::open(&fifo), Err(Error::NotAFile { .. })));
    }
}
