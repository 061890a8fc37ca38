//! Where a bundle's bytes are: memory that never changes (embedded or owned), or an open
//! file read by position.

use std::borrow::Cow;
use std::fs::File;

use crate::error::{Error, Result};
use crate::format::Span;
use crate::io::read_exact_at;

/// A bundle's bytes.
pub(super) enum Storage {
    /// Embedded in the program.
    Static(&'static [u8]),
    /// Owned in memory.
    Owned(Vec<u8>),
    /// An open file; nothing of it is kept but what verification keeps.
    File(File),
}

impl Storage {
    pub(super) fn len(&self, label: &str) -> Result<u64> {
        match self {
            Storage::Static(b) => Ok(b.len() as u64),
            Storage::Owned(b) => Ok(b.len() as u64),
            Storage::File(f) => f.metadata().map(|m| m.len()).map_err(|source| io_error(label, source)),
        }
    }

    /// The bytes of `span` if they are in memory. The caller has bounds-checked `span`
    /// against the length.
    pub(super) fn in_memory(&self, span: Span) -> Option<&[u8]> {
        let range = span.offset as usize..(span.offset + span.len) as usize;
        match self {
            Storage::Static(b) => Some(&b[range]),
            Storage::Owned(b) => Some(&b[range]),
            Storage::File(_) => None,
        }
    }

    /// The bytes of `span`, which the caller has bounds-checked against the length: borrowed
    /// from memory, or read from the file into a buffer of their own.
    pub(super) fn read(&self, span: Span, label: &str) -> Result<Cow<'_, [u8]>> {
        match (self.in_memory(span), self) {
            (Some(bytes), _) => Ok(Cow::Borrowed(bytes)),
            (None, Storage::File(f)) => {
                let mut buf = vec![0; span.len as usize];
                read_exact_at(f, &mut buf, span.offset).map_err(|source| io_error(label, source))?;
                Ok(Cow::Owned(buf))
            }
            (None, _) => unreachable!("memory storage is always in memory"),
        }
    }
}

pub(super) fn io_error(label: &str, source: std::io::Error) -> Error {
    Error::Io { bundle: label.to_string(), source }
}
