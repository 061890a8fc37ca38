//! Emission: turns compiled modules and their graph into bundle bytes (through the runtime
//! crate's format writer) and writes them so that no reader ever sees a partial file.

use std::io::Write;
use std::path::{Path, PathBuf};

use luabundle_runtime::format::{
    BlobKind, BundleContents, DepKind, Dependency, Group, Layout, ModuleInput, Profile, Target, HEADER_LEN, TRAILER_LEN,
};

use crate::error::Error;
use crate::graph;
use crate::requires::Timing;

/// One module ready for the bundle.
#[derive(Clone, Debug)]
pub struct EmitModule {
    /// Module name.
    pub name: String,
    /// Chunk name baked into the bytecode.
    pub chunk_name: String,
    /// Display path of its file.
    pub path: String,
    /// Its bytecode or source.
    pub bytes: Vec<u8>,
    /// Which of the two `bytes` holds.
    pub kind: BlobKind,
    /// The source, stored beside bytecode for VMs that cannot run it (`--embed-source`).
    pub source: Option<Vec<u8>>,
    /// Its dependencies, as positions in the module list.
    pub deps: Vec<graph::Dependency>,
}

/// The contents of a bundle, for the runtime's format writer. `modules` must be sorted by
/// name; `entry` and the members of `profiles` are positions in it; `groups` name their
/// members.
pub fn contents(
    target: &Target,
    modules: Vec<EmitModule>,
    entry: Option<usize>,
    externals: Vec<String>,
    profiles: Vec<(String, Vec<usize>)>,
    groups: Vec<Group>,
) -> BundleContents {
    let modules = modules
        .into_iter()
        .map(|m| ModuleInput {
            name: m.name,
            chunk_name: m.chunk_name,
            path: m.path,
            kind: m.kind,
            bytes: m.bytes,
            source: m.source,
            deps: m.deps.iter().map(dependency).collect(),
        })
        .collect();
    BundleContents {
        target: target.clone(),
        modules,
        entry: entry.map(|e| e as u32),
        externals,
        profiles: profiles
            .into_iter()
            .map(|(name, members)| Profile { name, members: members.into_iter().map(|m| m as u32).collect() })
            .collect(),
        groups,
    }
}

fn dependency(dep: &graph::Dependency) -> Dependency {
    let kind = match dep.timing {
        Timing::Eager => DepKind::Eager,
        Timing::Deferred => DepKind::Deferred,
    };
    Dependency { module: dep.module as u32, kind, optional: dep.optional }
}

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
                        let mut compare = Comparison { existing: std::io::BufReader::with_capacity(1 << 20, file) };
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
}

impl<R: std::io::Read> Write for Comparison<R> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut theirs = vec![0u8; bytes.len()];
        self.existing.read_exact(&mut theirs)?;
        if theirs != bytes {
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
    let target = match destination(path).map_err(|e| io("write", e))? {
        Destination::Stream(mut out) => {
            payload.write_to(&mut out).and_then(|()| out.flush()).map_err(|e| io("write", e))?;
            return Ok(true);
        }
        Destination::Replace(target) => target,
    };
    let path = target.as_path();
    let io = |action, source| Error::Io { action, path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    // Builds writing the same output take turns.
    let _lock = lock_output(path).map_err(|e| io("lock", e))?;
    if payload.already_in(path) {
        return Ok(false);
    }
    remove_stale_temporaries(dir);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io("create a temporary file beside", e))?;
    let _in_flight = crate::util::InFlight::register(temp.path());
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, temp.as_file_mut());
        payload.write_to(&mut out).and_then(|()| out.flush()).map_err(|e| io("write", e))?;
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
    sync_directory(dir).map_err(|e| io("sync the directory of", e))?;
    Ok(true)
}

/// Temporary outputs are named `.luabundle-PID-XXXXXX.tmp`, so that one left by a killed
/// build can be told from one being written.
const TEMP_PREFIX: &str = ".luabundle-";

/// Removes the temporary outputs in `dir` of processes that no longer run (a build killed
/// while writing).
fn remove_stale_temporaries(dir: &Path) {
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
fn process_runs(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Where an output goes.
enum Destination {
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
fn names_a_descriptor(path: &Path) -> bool {
    ["/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"]
        .iter()
        .any(|alias| path.as_os_str().as_encoded_bytes().starts_with(alias.as_bytes()))
}

/// How `path` is written: `-`, `/dev/stdout` and the like stream to the open descriptor, a
/// device or FIFO is streamed to, a regular file is replaced. A directory, block device or
/// socket is refused before anything is written, and so is a FIFO nobody reads (writing to
/// it would wait for ever).
fn destination(path: &Path) -> std::io::Result<Destination> {
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
        crate::util::file_kind(&kind)
    )))
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
fn lock_output(path: &Path) -> std::io::Result<std::fs::File> {
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
fn sync_directory(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
