//! Verified pages: a region of the bundle read in [`PAGE_LEN`]-byte pages, each hashed and
//! compared with its recorded hash the first time it is touched, then kept (a file's pages)
//! or marked good (memory that never changes). Opening a bundle therefore costs the same
//! whatever its size, and a lookup reads and hashes only the pages it touches.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::storage::Storage;
use crate::error::{Error, Result};
use crate::format::{self, FormatError, Span, PAGE_LEN};

/// One region read page by page.
pub(super) struct VerifiedPages {
    /// Which region, for messages: `index` or `page-hash`.
    name: &'static str,
    /// Where the region is in the file.
    region: Span,
    /// Per page, once verified: its bytes when they were read from a file, `None` when they
    /// are in memory and were checked in place.
    pages: Vec<OnceLock<Option<Box<[u8]>>>>,
}

impl VerifiedPages {
    pub(super) fn new(name: &'static str, region: Span) -> VerifiedPages {
        let count = region.len.div_ceil(PAGE_LEN as u64) as usize;
        VerifiedPages { name, region, pages: (0..count).map(|_| OnceLock::new()).collect() }
    }

    /// Page `page`, verified against `expected()` on its first touch.
    fn page<'a>(
        &'a self,
        storage: &'a Storage,
        label: &str,
        page: usize,
        expected: impl FnOnce() -> Result<[u8; 32]>,
    ) -> Result<&'a [u8]> {
        let start = page as u64 * PAGE_LEN as u64;
        let span = Span { offset: self.region.offset + start, len: (self.region.len - start).min(PAGE_LEN as u64) };
        let kept = |slot: &'a Option<Box<[u8]>>| match slot {
            Some(bytes) => &bytes[..],
            None => storage.in_memory(span).expect("pages checked in place are in memory"),
        };
        if let Some(slot) = self.pages[page].get() {
            return Ok(kept(slot));
        }
        let bytes = storage.read(span, label)?;
        let expected = expected()?;
        let found = blake3::hash(&bytes);
        if *found.as_bytes() != expected {
            return Err(Error::Format {
                bundle: label.to_string(),
                source: FormatError::PageHashMismatch {
                    region: self.name,
                    page: page as u64,
                    expected: format::hex(&expected),
                    found: found.to_hex().to_string(),
                },
            });
        }
        // Two threads may both verify a page; the first to finish is kept.
        let _ = self.pages[page].set(match bytes {
            Cow::Borrowed(_) => None,
            Cow::Owned(bytes) => Some(bytes.into_boxed_slice()),
        });
        Ok(kept(self.pages[page].get().expect("just set")))
    }

    /// The bytes of `span` (relative to the region), from verified pages: borrowed when one
    /// page holds them, copied when they cross pages. `expected(page)` gives a page's hash.
    pub(super) fn bytes<'a>(
        &'a self,
        storage: &'a Storage,
        label: &str,
        span: Span,
        expected: impl Fn(usize) -> Result<[u8; 32]>,
    ) -> Result<Cow<'a, [u8]>> {
        let outside = || Error::Format {
            bundle: label.to_string(),
            source: FormatError::Invalid {
                part: "index",
                reason: format!("bytes {}+{} lie outside the {} region", span.offset, span.len, self.name),
            },
        };
        let end = span.end().filter(|&end| end <= self.region.len).ok_or_else(outside)?;
        if span.len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let page_len = PAGE_LEN as u64;
        let (first, last) = ((span.offset / page_len) as usize, ((end - 1) / page_len) as usize);
        let within = |page: usize, from: u64, to: u64| {
            (from - page as u64 * page_len) as usize..(to - page as u64 * page_len) as usize
        };
        if first == last {
            let page = self.page(storage, label, first, || expected(first))?;
            return Ok(Cow::Borrowed(&page[within(first, span.offset, end)]));
        }
        let mut joined = Vec::with_capacity(span.len as usize);
        for page in first..=last {
            let bytes = self.page(storage, label, page, || expected(page))?;
            let from = span.offset.max(page as u64 * page_len);
            let to = end.min((page as u64 + 1) * page_len);
            joined.extend_from_slice(&bytes[within(page, from, to)]);
        }
        Ok(Cow::Owned(joined))
    }
}
