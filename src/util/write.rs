//! Writing files without losing any: where an output goes (replaced, or streamed to a
//! device or standard output), temporaries that do not outlive their build, the lock that
//! makes builds of one output take turns, and durable renames.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Temporary outputs are named `.luabundle-PID-XXXXXX.tmp`, so that one left by a killed
/// build can be told from one being written.
pub(crate) const TEMP_PREFIX: &str = ".luabundle-";

/// Removes the temporary outputs in `dir` of processes that no longer run (a build killed
/// while writing).
pub(crate) fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else { continue };
        let Some(pid) = rest.split_once('-').and_then(|(pid, _)| pid.parse::<i32>().ok()) else { continue };
        if rest.ends_with(".tmp") && !process_runs(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id runs (or may: one of another user answers `EPERM`).
#[allow(unsafe_code)]
pub(crate) fn process_runs(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Where an output goes.
pub(crate) enum Destination {
    /// A regular file (or nothing yet) at this path, replaced atomically; a symbolic link is
    /// followed, so the link stays and its target gets the new content.
    Replace(PathBuf),
    /// Standard output, a character device (`/dev/null`) or a FIFO with a reader: written to
    /// in place, never replaced.
    Stream(Box<dyn Write>),
}

/// Whether an output at `path` is streamed rather than replaced: standard output (`-`), a
/// descriptor (`/dev/stdout`), a device or a FIFO. Such an output is never "unchanged".
pub fn is_stream(path: &Path) -> bool {
    path == Path::new("-")
        || names_a_descriptor(path)
        || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// `/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`: the caller's open descriptor, whatever
/// it leads to.
pub(crate) fn names_a_descriptor(path: &Path) -> bool {
    ["/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"]
        .iter()
        .any(|alias| path.as_os_str().as_encoded_bytes().starts_with(alias.as_bytes()))
}

/// How `path` is written: `-`, `/dev/stdout` and the like stream to the open descriptor, a
/// device or FIFO is streamed to, a regular file is replaced. A directory, block device or
/// socket is refused before anything is written, and so is a FIFO nobody reads (writing to
/// it would wait for ever).
pub(crate) fn destination(path: &Path) -> std::io::Result<Destination> {
    use std::io::{Error, ErrorKind};
    if path == Path::new("-") {
        return Ok(Destination::Stream(Box::new(std::io::stdout())));
    }
    let refuse = |why: String| Error::new(ErrorKind::InvalidInput, why);
    let metadata = match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Destination::Replace(path.to_path_buf())),
        Err(e) => return Err(e),
        Ok(metadata) => metadata,
    };
    let stream = || std::fs::OpenOptions::new().write(true).open(path);
    if metadata.is_file() {
        if names_a_descriptor(path) {
            return Ok(Destination::Stream(Box::new(stream()?)));
        }
        return Ok(Destination::Replace(std::fs::canonicalize(path)?));
    }
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_char_device() {
        return Ok(Destination::Stream(Box::new(stream()?)));
    }
    if kind.is_fifo() {
        use std::os::unix::fs::OpenOptionsExt;
        // A non-blocking open fails at once when no process reads the FIFO.
        let probe = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path);
        return match probe {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                Err(refuse("it is a FIFO that no process is reading; start the reader first".into()))
            }
            Err(e) => Err(e),
            // A reader is there: the plain open does not wait, and writes block as they should.
            Ok(_probe) => Ok(Destination::Stream(Box::new(stream()?))),
        };
    }
    if kind.is_dir() {
        return Err(refuse("it is a directory; name the file to write inside it (DIR/app.bundle)".into()));
    }
    Err(refuse(format!(
        "it is {}; luabundle writes regular files, character devices (/dev/null) and FIFOs",
        super::file_kind(&kind)
    )))
}

/// Replaces the file at `path` with `bytes` through a temporary file and a rename, creating
/// its directory; for the cache's own files, which need no sync and no lock (a failure only
/// makes the next build slower, so it is ignored).
pub fn replace_cache_file(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::create_dir_all(dir).and_then(|()| {
        let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
        temp.write_all(bytes)?;
        temp.persist(path).map(|_| ()).map_err(|e| e.error)
    });
}

/// An exclusive lock on `.<name>.lock` beside `path`, held until dropped. The lock file is
/// never followed if it is a link, and holds the id of the process that last locked it; a
/// build that has to wait says for whom. A lock dies with its process, so a killed build
/// leaves none behind to wait for (the empty file stays, to be locked again).
pub(crate) fn lock_output(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link, not a lock file; remove it", lock_path.display()),
            ),
            _ => e,
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = std::io::Read::read_to_string(&mut file, &mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() { "another build".to_string() } else { format!("pid {holder}") };
            eprintln!("luabundle: waiting for the lock held by {holder} on {}", lock_path.display());
            file.lock()?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Makes the rename durable: the directory entry reaches the disk too.
#[cfg(unix)]
pub(crate) fn sync_directory(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn sync_directory(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
