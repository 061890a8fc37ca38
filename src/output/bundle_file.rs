//! Output files written so that no reader ever sees a partial file, and the ends of a
//! bundle file read back to tell whether it is the one just built.

use std::io::Write;
use std::path::Path;

use luabundle_runtime::format::{Layout, HEADER_LEN, TRAILER_LEN};

use crate::error::Error;
use crate::util::write;

/// What [`write_atomically`] and [`write_bundle_atomically`] write.
enum Payload<'a> {
    Bytes(&'a [u8]),
    /// A bundle; with `keep_identical`, an identical file already there is kept.
    Bundle(&'a Layout<'a>, bool),
}

impl Payload<'_> {
    /// Whether the file at `path` already holds exactly this, byte for byte: equal ends are
    /// not enough, as a damaged module or signature sits between them.
    fn already_in(&self, path: &Path) -> bool {
        match self {
            Payload::Bytes(bytes) => {
                std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64)
                    && crate::util::read_regular(path, bytes.len() as u64).is_ok_and(|existing| existing == *bytes)
            }
            Payload::Bundle(_, false) => false,
            Payload::Bundle(layout, true) => {
                let same_ends = bundle_file_ends(path).is_some_and(|ends| {
                    ends.len == layout.len()
                        && &ends.header == layout.header_bytes()
                        && ends.trailer == layout.trailer_bytes()
                });
                same_ends
                    && crate::util::open_regular(path).is_ok_and(|file| {
                        let existing = std::io::BufReader::with_capacity(1 << 20, file);
                        let mut compare = Comparison { existing, theirs: Vec::new() };
                        let mut chunk = [0u8; 1];
                        layout.write_to(&mut compare).is_ok()
                            && std::io::Read::read(&mut compare.existing, &mut chunk).is_ok_and(|n| n == 0)
                    })
            }
        }
    }

    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Payload::Bytes(bytes) => out.write_all(bytes),
            Payload::Bundle(layout, _) => layout.write_to(out),
        }
    }
}

/// A writer that compares what it is given with a file's bytes, failing at the first
/// difference (so the comparison stops there).
struct Comparison<R> {
    existing: R,
    /// The file's bytes for the write at hand (kept, to allocate once per size).
    theirs: Vec<u8>,
}

impl<R: std::io::Read> Write for Comparison<R> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.theirs.resize(bytes.len(), 0);
        self.existing.read_exact(&mut self.theirs)?;
        if self.theirs != bytes {
            return Err(std::io::Error::other("the file differs"));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, `sync_all`, a
/// rename and a sync of the directory, so the path holds either its old content or the
/// complete new one, even across a crash. Concurrent writers of one path take turns through
/// a lock file (`.<name>.lock` beside it). Returns `false` without touching the file when it
/// already holds exactly `bytes`.
///
/// # Errors
/// [`Error::Io`] naming the path; the temporary file is removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    write_payload(path, &Payload::Bytes(bytes))
}

/// Writes a laid-out bundle as [`write_atomically`] writes bytes, copying each module's
/// bytes straight to the file (the bundle is never assembled in memory). With
/// `keep_identical`, returns `false` without touching the file when it already holds this
/// bundle byte for byte.
///
/// # Errors
/// As [`write_atomically`].
pub fn write_bundle_atomically(path: &Path, layout: &Layout<'_>, keep_identical: bool) -> Result<bool, Error> {
    write_payload(path, &Payload::Bundle(layout, keep_identical))
}

fn write_payload(path: &Path, payload: &Payload<'_>) -> Result<bool, Error> {
    let io = |action, source| Error::Io { action, path: path.to_path_buf(), source };
    let target = match write::destination(path).map_err(|e| io("write", e))? {
        write::Destination::Stream(mut out) => {
            payload.write_to(&mut out).and_then(|()| out.flush()).map_err(|e| io("write", e))?;
            return Ok(true);
        }
        write::Destination::Replace(target) => target,
    };
    let path = target.as_path();
    let io = |action, source| Error::Io { action, path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    // Builds writing the same output take turns.
    let _lock = write::lock_output(path).map_err(|e| io("lock", e))?;
    if payload.already_in(path) {
        return Ok(false);
    }
    write::remove_stale_temporaries(dir);
    let prefix = format!("{}{}-", write::TEMP_PREFIX, std::process::id());
    let (mut temp, _in_flight) = crate::util::InFlight::create(
        || tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir),
        tempfile::NamedTempFile::path,
    )
    .map_err(|e| io("create a temporary file beside", e))?;
    match payload {
        // Module bytes kept from the bundle being replaced go file to file.
        Payload::Bundle(layout, _) => layout.write_file(temp.as_file()).map_err(|e| io("write", e))?,
        Payload::Bytes(_) => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, temp.as_file_mut());
            payload.write_to(&mut out).and_then(|()| out.flush()).map_err(|e| io("write", e))?;
        }
    }
    // A temporary file is private to its owner; the output gets the permissions of the file
    // it replaces, or those a new file gets under the umask.
    let permissions = match std::fs::metadata(path) {
        Ok(existing) => existing.permissions(),
        Err(_) => crate::util::new_file_permissions(),
    };
    temp.as_file().set_permissions(permissions).map_err(|e| io("write", e))?;
    temp.as_file().sync_all().map_err(|e| io("write", e))?;
    temp.persist(path).map_err(|e| io("replace", e.error))?;
    write::sync_directory(dir).map_err(|e| io("sync the directory of", e))?;
    Ok(true)
}

/// The first and last bytes of the bundle file at `path`, and its length.
pub struct BundleEnds {
    /// Length of the file.
    pub len: u64,
    /// Its first [`HEADER_LEN`] bytes.
    pub header: [u8; HEADER_LEN],
    /// Its last [`TRAILER_LEN`] bytes.
    pub trailer: [u8; TRAILER_LEN],
}

/// The ends of the regular file at `path`, if it is long enough to have them. Equal ends
/// mean an equal root hash, which covers the index and through its hashes every module.
pub fn bundle_file_ends(path: &Path) -> Option<BundleEnds> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = crate::util::open_regular(path).ok()?;
    let len = file.metadata().ok().filter(|m| m.is_file())?.len();
    let mut header = [0u8; HEADER_LEN];
    let mut trailer = [0u8; TRAILER_LEN];
    file.read_exact(&mut header).ok()?;
    file.seek(SeekFrom::Start(len.checked_sub(TRAILER_LEN as u64)?)).ok()?;
    file.read_exact(&mut trailer).ok()?;
    Some(BundleEnds { len, header, trailer })
}
