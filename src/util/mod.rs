//! File-system helpers every stage shares: reads that cannot hang or exhaust memory on a
//! special file, the permissions new files get, the registry of temporaries being written,
//! and (in [`write`]) how outputs and the cache's own files are written.

pub mod write;

use std::io::{self, Read};
use std::path::Path;

/// Largest configuration or key file read.
pub const SMALL_FILE_CAP: u64 = 1 << 20;
/// Largest cache, record or manifest file read.
pub const DATA_FILE_CAP: u64 = 1 << 30;

/// Reads the regular file at `path` (following links), refusing a FIFO, device or socket
/// before reading a byte of it, and a file longer than `cap`.
///
/// The file is opened without blocking, so a FIFO with no writer cannot stall the open, and
/// checked on the open handle, so a file swapped for a link to `/dev/urandom` between a check
/// and the read is refused too.
///
/// # Errors
/// The open or read error, or `InvalidInput` naming what the file is or how long.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let metadata = file.metadata()?;
    if metadata.len() > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {} bytes, over the limit of {cap} bytes for this file", metadata.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow after the check: the cap holds for what is read, too.
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it grew over the limit of {cap} bytes")));
    }
    Ok(bytes)
}

/// Opens the regular file at `path` for reading (following links), refusing a FIFO, device,
/// socket or directory without blocking on it.
///
/// # Errors
/// The open error, or `InvalidInput` naming what the file is.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let file = open_without_blocking(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", file_kind(&metadata.file_type())),
        ));
    }
    Ok(file)
}

/// Positioned reads, shared with the runtime, which reads bundles the same way.
pub use luabundle_runtime::io::read_exact_at;

/// [`read_regular`] for text.
///
/// # Errors
/// As [`read_regular`], and `InvalidData` for text that is not UTF-8.
pub fn read_regular_text(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

#[cfg(unix)]
fn open_without_blocking(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK only matters for the open of a FIFO; reads of a regular file ignore it.
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Temporary files being written now, so that a command interrupted by a signal can remove
/// them before it dies (see [`remove_temporaries_in_flight`]).
static IN_FLIGHT: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

fn in_flight() -> std::sync::MutexGuard<'static, Vec<std::path::PathBuf>> {
    IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A temporary file registered as being written, for as long as this value lives.
#[derive(Debug)]
pub struct InFlight(std::path::PathBuf);

impl InFlight {
    /// Creates a temporary file with `create` and registers it (`path` names it) until the
    /// returned guard is dropped, after the file is renamed into place or removed. The file
    /// is created with the registry locked, and the signal cleanup holds the same lock until
    /// the process ends: an interrupted command leaves either no file or a registered one,
    /// which the cleanup removes.
    ///
    /// # Errors
    /// What `create` returns.
    pub fn create<T>(create: impl FnOnce() -> io::Result<T>, path: impl Fn(&T) -> &Path) -> io::Result<(T, InFlight)> {
        let mut paths = in_flight();
        let made = create()?;
        let path = path(&made).to_path_buf();
        paths.push(path.clone());
        Ok((made, InFlight(path)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut paths = in_flight();
        if let Some(at) = paths.iter().position(|p| *p == self.0) {
            paths.swap_remove(at);
        }
    }
}

/// Removes every temporary file being written, and returns the registry still locked: a
/// process about to end on a signal keeps it, so no new temporary file is made before it
/// ends.
pub fn remove_temporaries_in_flight() -> std::sync::MutexGuard<'static, Vec<std::path::PathBuf>> {
    let paths = in_flight();
    for path in paths.iter() {
        let _ = std::fs::remove_file(path);
    }
    paths
}

/// What a file that is not a regular file is, in words.
pub fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// The permissions a new file gets here: read and write for all, less the process umask, as
/// `open(2)` gives them (a temporary file starts private, so they are set explicitly).
#[cfg(unix)]
pub fn new_file_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o666 & !umask())
}

/// The permissions a new file gets here.
#[cfg(not(unix))]
pub fn new_file_permissions() -> std::fs::Permissions {
    let mut permissions = std::fs::metadata(".").map(|m| m.permissions()).expect("current directory");
    permissions.set_readonly(false);
    permissions
}

/// The process umask, read from `/proc/self/status` (reading it with `umask(2)` means setting
/// it, which races with other threads creating files); `022` where that is not available.
#[cfg(unix)]
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_oversized_files_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "12345").unwrap();
        assert_eq!(read_regular(&small, 5).unwrap(), b"12345");
        let err = read_regular(&small, 4).unwrap_err();
        assert!(err.to_string().contains("over the limit of 4 bytes"), "{err}");
        let err = read_regular(Path::new("/dev/zero"), SMALL_FILE_CAP).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let err = read_regular(dir.path(), SMALL_FILE_CAP).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    #[cfg(unix)]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = read_regular(&fifo, SMALL_FILE_CAP).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }
}
