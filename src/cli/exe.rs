//! Standalone executables (`luabundle build --exe FILE`): this program's own executable with
//! a bundle appended and a footer after it (the bundle's length, then a magic), so that the
//! file runs the bundle's entry module with its arguments, as `luabundle run BUNDLE -- ARGS`
//! does. No compiler is needed: the runner is the luabundle executable itself. The bundle is
//! appended unchanged, so its hashes and signature still cover every byte of it; a damaged
//! executable refuses to start with the bundle's error.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Ends a standalone executable, after the bundle's length (little-endian `u64`).
const MAGIC: &[u8; 8] = b"LBEXE\x00\x01\x00";
const FOOTER_LEN: u64 = 16;

/// Where a bundle is appended in an executable.
pub struct Embedded {
    /// The executable.
    pub path: PathBuf,
    /// Offset of the bundle's first byte.
    pub offset: u64,
    /// The bundle's length.
    pub len: u64,
}

/// The bundle appended to the file at `path`, if it ends with a footer.
pub fn embedded_in(path: &Path) -> Option<Embedded> {
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let footer_at = file_len.checked_sub(FOOTER_LEN)?;
    file.seek(SeekFrom::Start(footer_at)).ok()?;
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.read_exact(&mut footer).ok()?;
    if &footer[8..] != MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(footer[..8].try_into().ok()?);
    let offset = footer_at.checked_sub(len)?;
    Some(Embedded { path: path.to_path_buf(), offset, len })
}

/// The bundle appended to the running executable, if any.
pub fn embedded() -> Option<Embedded> {
    embedded_in(&std::env::current_exe().ok()?)
}

impl Embedded {
    /// The bundle's bytes.
    ///
    /// # Errors
    /// When the executable cannot be read.
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = vec![0u8; self.len as usize];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// Writes `exe`: the running executable (without any bundle of its own), the bundle file
/// `bundle`, and the footer; executable, replaced atomically.
///
/// # Errors
/// When a file cannot be read or written; what was at `exe` stays.
pub fn write(bundle: &Path, exe: &Path) -> anyhow::Result<()> {
    let runner_path = std::env::current_exe()?;
    let runner_len = match embedded_in(&runner_path) {
        Some(own) => own.offset,
        None => std::fs::metadata(&runner_path)?.len(),
    };
    let bundle_bytes = std::fs::read(bundle).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", bundle.display()))?;
    let dir = match exe.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut temp = tempfile::Builder::new().prefix(".luabundle-exe-").tempfile_in(dir)?;
    {
        let mut runner = File::open(&runner_path)?.take(runner_len);
        let out = temp.as_file_mut();
        std::io::copy(&mut runner, out)?;
        out.write_all(&bundle_bytes)?;
        out.write_all(&(bundle_bytes.len() as u64).to_le_bytes())?;
        out.write_all(MAGIC)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o755))?;
    }
    temp.as_file().sync_all()?;
    temp.persist(exe).map_err(|e| anyhow::anyhow!("cannot write {}: {}", exe.display(), e.error))?;
    Ok(())
}
