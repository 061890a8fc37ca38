//! Signing bundles with Ed25519: key generation, key files, and the signer the format's
//! writer calls with the root hash.
//!
//! Key files are text of two lines: what the key is (`luabundle ed25519 secret key` or
//! `luabundle ed25519 public key`), then its 32 bytes as 64 hexadecimal digits. A file of the
//! other kind is refused, so a public key can never be taken for a secret one. The secret key
//! file is written readable by its owner only.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use luabundle_runtime::format::{hex, signed_message, SIGNATURE_LEN};

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
    let secret = format!("{}\n{}\n", KeyKind::Secret.marker(), hex(key.as_bytes()));
    std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(io(path))?;
    let public_text = format!("{}\n{}\n", KeyKind::Public.marker(), hex(key.verifying_key().as_bytes()));
    std::fs::write(&public, public_text).map_err(io(&public))?;
    Ok(())
}

/// Reads a secret key file.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::Usage`] if it does not hold a key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, Error> {
    Ok(SigningKey::from_bytes(&read_key_bytes(path, KeyKind::Secret)?))
}

/// The two kinds of key file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Secret,
    Public,
}

impl KeyKind {
    /// The first line of a key file of this kind.
    fn marker(self) -> &'static str {
        match self {
            KeyKind::Secret => "luabundle ed25519 secret key",
            KeyKind::Public => "luabundle ed25519 public key",
        }
    }
}

/// Reads a public key file.
///
/// # Errors
/// As [`read_signing_key`], and [`Error::Usage`] for bytes that are not a public key.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_bytes(&read_key_bytes(path, KeyKind::Public)?)
        .map_err(|_| Error::Usage(format!("{} does not hold an Ed25519 public key", path.display())))
}

fn read_key_bytes(path: &Path, kind: KeyKind) -> Result<[u8; 32], Error> {
    let text = crate::util::read_regular_text(path, crate::util::SMALL_FILE_CAP).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let (marker, digits) = text.trim().split_once('\n').unwrap_or(("", text.trim()));
    let (marker, text) = (marker.trim(), digits.trim());
    let other = if kind == KeyKind::Secret { KeyKind::Public } else { KeyKind::Secret };
    if marker == other.marker() {
        return Err(Error::Usage(match kind {
            KeyKind::Secret => format!(
                "{} is a public key; signing needs the secret key (the file keygen wrote without .pub)",
                path.display()
            ),
            KeyKind::Public => {
                format!(
                    "{} is a secret key; checking needs its public half (the .pub file keygen wrote)",
                    path.display()
                )
            }
        }));
    }
    if marker != kind.marker() {
        return Err(Error::Usage(format!(
            "{} is not a luabundle {} key file (its first line must be `{}`; make keys with luabundle keygen)",
            path.display(),
            if kind == KeyKind::Secret { "secret" } else { "public" },
            kind.marker()
        )));
    }
    luabundle_runtime::format::bytes32_from_hex(text)
        .ok_or_else(|| Error::Usage(format!("{} does not hold a key (64 hexadecimal digits)", path.display())))
}

/// The signature region for `root_hash`: the key's id, then the signature.
pub fn sign(key: &SigningKey, root_hash: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
    let mut region = [0u8; SIGNATURE_LEN];
    region[..8].copy_from_slice(&luabundle_runtime::signature::key_id(&key.verifying_key()));
    region[8..].copy_from_slice(&key.sign(&signed_message(root_hash)).to_bytes());
    region
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
        // Each kind is refused where the other is needed, and an unmarked file everywhere.
        let err = read_signing_key(&dir.path().join("release.key.pub")).unwrap_err().to_string();
        assert!(err.contains("is a public key; signing needs the secret key"), "{err}");
        let err = read_verifying_key(&path).unwrap_err().to_string();
        assert!(err.contains("is a secret key"), "{err}");
        std::fs::write(dir.path().join("bare"), format!("{}\n", hex(key.as_bytes()))).unwrap();
        let err = read_signing_key(&dir.path().join("bare")).unwrap_err().to_string();
        assert!(err.contains("first line must be `luabundle ed25519 secret key`"), "{err}");
    }
}
