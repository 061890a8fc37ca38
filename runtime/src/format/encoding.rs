//! How a module's stored bytes are encoded: as they are, or as one zstd frame that the
//! reader decompresses on the module's first load.
//!
//! The record's blake3 hash covers the stored bytes, so a reader checks a frame before
//! handing it to the decompressor; the record also gives the decompressed length, which the
//! reader checks against [`MAX_DECODED_LEN`] before it allocates anything and requires the
//! frame to fill exactly.

use std::borrow::Cow;
use std::cell::RefCell;

use super::FormatError;

/// Largest length a stored module may decompress to (the length is checked before any
/// memory is allocated for it).
pub const MAX_DECODED_LEN: u32 = 256 << 20;

/// The first four bytes of every zstd frame (`0xFD2FB528`, little-endian). No Lua, LuaJIT or
/// Luau bytecode dump starts with them (Lua's and LuaJIT's start with ESC, Luau's with a small
/// version number), nor does UTF-8 text.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a module's stored bytes encode the bytes that are loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// The stored bytes are loaded as they are.
    #[default]
    Plain,
    /// The stored bytes are one zstd frame that decompresses to exactly `len` bytes.
    Zstd {
        /// Length of the decompressed bytes, at most [`MAX_DECODED_LEN`].
        len: u32,
    },
}

impl Encoding {
    /// How `stored` is encoded, for a writer that kept only the bytes (a cache, say): a zstd
    /// frame that records its decompressed length is [`Encoding::Zstd`], anything else is
    /// [`Encoding::Plain`]. A bundle's reader never guesses: its records say.
    pub fn of_stored(stored: &[u8]) -> Encoding {
        if !stored.starts_with(&ZSTD_MAGIC) {
            return Encoding::Plain;
        }
        match zstd::zstd_safe::get_frame_content_size(stored) {
            Ok(Some(len)) if len <= u64::from(MAX_DECODED_LEN) => Encoding::Zstd { len: len as u32 },
            _ => Encoding::Plain,
        }
    }

    /// The bytes `stored` encodes, which the caller has checked against their hash.
    ///
    /// # Errors
    /// [`FormatError::Invalid`] if the length is over [`MAX_DECODED_LEN`], or the frame does
    /// not decompress to exactly that many bytes.
    pub fn decode<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, FormatError> {
        let len = match *self {
            Encoding::Plain => return Ok(Cow::Borrowed(stored)),
            Encoding::Zstd { len } => len,
        };
        let invalid = |reason: String| FormatError::Invalid { part: "module", reason };
        if len > MAX_DECODED_LEN {
            return Err(invalid(format!("it decompresses to {len} bytes, over the limit of {MAX_DECODED_LEN}")));
        }
        // The output buffer is exactly the recorded length: a frame that holds more fails
        // instead of growing it.
        let mut out = Vec::with_capacity(len as usize);
        let written = DECOMPRESSOR.with(|slot| {
            let mut slot = slot.borrow_mut();
            let context = match &mut *slot {
                Some(context) => context,
                None => slot.insert(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?),
            };
            context.decompress_to_buffer(stored, &mut out).map_err(|e| e.to_string())
        });
        match written {
            Ok(written) if written == len as usize => Ok(Cow::Owned(out)),
            Ok(written) => Err(invalid(format!("it decompresses to {written} bytes where its record says {len}"))),
            Err(reason) => Err(invalid(format!("its zstd frame does not decompress: {reason}"))),
        }
    }
}

thread_local! {
    /// This thread's zstd decompression context, made on its first compressed module.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// This thread's zstd compression context and its level.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// The zstd compression levels [`compress`] takes.
pub fn compression_levels() -> std::ops::RangeInclusive<i32> {
    zstd::compression_level_range()
}

/// `bytes` as a bundle stores them with zstd at `level`: one frame recording the
/// decompressed length, or `bytes` themselves, not copied (and [`Encoding::Plain`]), when the
/// frame would not be smaller.
///
/// # Errors
/// [`FormatError::Invalid`] if zstd refuses the level or the input (over
/// [`MAX_DECODED_LEN`]).
pub fn compress(bytes: Vec<u8>, level: i32) -> Result<(Vec<u8>, Encoding), FormatError> {
    let invalid = |reason: String| FormatError::Invalid { part: "module", reason };
    let len = u32::try_from(bytes.len()).ok().filter(|&len| len <= MAX_DECODED_LEN);
    let len = len.ok_or_else(|| invalid(format!("{} bytes are over the limit of {MAX_DECODED_LEN}", bytes.len())))?;
    let frame = COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|(at, _)| *at != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).map_err(|e| e.to_string())?));
        }
        let (_, context) = slot.as_mut().expect("set above");
        context.compress(&bytes).map_err(|e| e.to_string())
    });
    let frame = frame.map_err(|reason| invalid(format!("zstd level {level}: {reason}")))?;
    Ok(match frame.len() < bytes.len() {
        true => (frame, Encoding::Zstd { len }),
        false => (bytes, Encoding::Plain),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_bytes_decode_to_the_original() {
        let text = "local x = require('a.b')\n".repeat(200);
        let (stored, encoding) = compress(text.as_bytes().to_vec(), 3).unwrap();
        assert_eq!(encoding, Encoding::Zstd { len: text.len() as u32 });
        assert!(stored.len() < text.len() / 10, "{} of {}", stored.len(), text.len());
        assert_eq!(Encoding::of_stored(&stored), encoding);
        assert_eq!(&*encoding.decode(&stored).unwrap(), text.as_bytes());
    }

    #[test]
    fn bytes_that_do_not_shrink_are_stored_plain() {
        let (stored, encoding) = compress(b"\x1bLua".to_vec(), 19).unwrap();
        assert_eq!((stored.as_slice(), encoding), (&b"\x1bLua"[..], Encoding::Plain));
        assert_eq!(Encoding::of_stored(b"\x1bLua\x54\x00"), Encoding::Plain);
        assert!(compress(b"x".to_vec(), 1000).is_err() || compress(b"x".to_vec(), 1000).unwrap().1 == Encoding::Plain);
    }

    #[test]
    fn a_frame_that_disagrees_with_its_length_is_refused_without_growing() {
        let text = vec![b'a'; 100_000];
        let (stored, _) = compress(text.clone(), 3).unwrap();
        // A record claiming fewer bytes than the frame holds: refused, never a larger buffer.
        let err = Encoding::Zstd { len: 10 }.decode(&stored).unwrap_err().to_string();
        assert!(err.contains("does not decompress"), "{err}");
        let err = Encoding::Zstd { len: 100_001 }.decode(&stored).unwrap_err().to_string();
        assert!(err.contains("decompresses to 100000 bytes where its record says 100001"), "{err}");
        let err = Encoding::Zstd { len: MAX_DECODED_LEN + 1 }.decode(&stored).unwrap_err().to_string();
        assert!(err.contains("over the limit"), "{err}");
        let err = Encoding::Zstd { len: 5 }.decode(b"\x28\xb5\x2f\xfdgarbage").unwrap_err().to_string();
        assert!(err.contains("does not decompress"), "{err}");
    }
}
