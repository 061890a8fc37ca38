//! Signing bundles with Ed25519: key generation, key files, and the signer the format's
//! writer calls with the root hash.
//!
//! Key files are text: 64 hexadecimal digits and a line break. The secret key file is
//! written readable by its owner only.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use luabundle_runtime::format::{signed_message, SIGNATURE_LEN};

use crate::error::Error;

/// A new secret key from the operating system's random source.
///
/// # Errors
/// [`Error::Usage`] if no randomness is available.
pub fn generate() -> Result<SigningKey, Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| Error::Usage(format!("no random source for a key: {e}")))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Writes `key` to `path` (owner-only) and its public half to `path.pub`.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_key_files(key: &SigningKey, path: &Path) -> Result<(), Error> {
    fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
        move |source| Error::Io { action: "write", path: path.to_path_buf(), source }
    }
    let public = path.with_extension(match path.extension() {
        Some(ext) => format!("{}.pub", ext.to_string_lossy()),
        None => "pub".to_string(),
    });
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    std::io::Write::write_all(&mut file, format!("{}\n", hex(key.as_bytes())).as_bytes()).map_err(io(path))?;
    std::fs::write(&public, format!("{}\n", hex(key.verifying_key().as_bytes()))).map_err(io(&public))?;
    Ok(())
}

/// Reads a secret key file.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::Usage`] if it does not hold a key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, Error> {
    Ok(SigningKey::from_bytes(&read_key_bytes(path)?))
}

/// Reads a public key file.
///
/// # Errors
/// As [`read_signing_key`], and [`Error::Usage`] for bytes that are not a public key.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_bytes(&read_key_bytes(path)?)
        .map_err(|_| Error::Usage(format!("{} does not hold an Ed25519 public key", path.display())))
}

fn read_key_bytes(path: &Path) -> Result<[u8; 32], Error> {
    let text = crate::util::read_regular_text(path, crate::util::SMALL_FILE_CAP).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    let bad = || Error::Usage(format!("{} does not hold a key (64 hexadecimal digits)", path.display()));
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(bytes)
}

/// The signature region for `root_hash`: the key's id, then the signature.
pub fn sign(key: &SigningKey, root_hash: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
    let mut region = [0u8; SIGNATURE_LEN];
    region[..8].copy_from_slice(&luabundle_runtime::signature::key_id(&key.verifying_key()));
    region[8..].copy_from_slice(&key.sign(&signed_message(root_hash)).to_bytes());
    region
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_the_secret_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.key");
        let key = generate().unwrap();
        write_key_files(&key, &path).unwrap();
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(read_verifying_key(&dir.path().join("release.key.pub")).unwrap(), key.verifying_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(write_key_files(&key, &path).is_err(), "an existing key is never overwritten");
        std::fs::write(dir.path().join("bad"), "xyz").unwrap();
        assert!(read_signing_key(&dir.path().join("bad")).is_err());
    }
}
