//! Positioned reads: a read at an offset that moves no shared file cursor, so that threads
//! (the runtime's loaders, the build tool's cache readers) read one open file at once.

use std::fs::File;

/// Fills `buf` from `file` at `offset`.
///
/// # Errors
/// The read error, or `UnexpectedEof` if the file ends first.
#[cfg(unix)]
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fills `buf` from `file` at `offset`.
///
/// # Errors
/// The read error, or `UnexpectedEof` if the file ends first.
#[cfg(windows)]
pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Fills `buf` from `file` at `offset`, through a cloned handle (no positioned reads here).
///
/// # Errors
/// The read error, or `UnexpectedEof` if the file ends first.
#[cfg(not(any(unix, windows)))]
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}
