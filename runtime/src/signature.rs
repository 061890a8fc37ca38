//! Bundle signatures: an Ed25519 signature of the root hash, checked when a bundle is opened
//! under a [`Verify`] policy whose keys the host program holds (a key inside the bundle would
//! prove nothing).

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::error::{Error, Result};
use crate::format::{self, SIGNATURE_LEN};

/// What opening a bundle demands of its signature.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Verify {
    /// Signatures are not looked at.
    #[default]
    None,
    /// A signature, if there is one, must be valid and by one of these keys.
    IfPresent(Vec<VerifyingKey>),
    /// There must be a valid signature by one of these keys.
    Required(Vec<VerifyingKey>),
}

impl Verify {
    /// A policy that requires a valid signature by one of `keys`, for hosts that hold keys as
    /// text (the Lua module's `lb.open(path, { keys = { ... } })`): each an Ed25519 public key
    /// as 64 hexadecimal digits, or the whole `.pub` file `luabundle keygen` writes (a marker
    /// line, then those digits).
    ///
    /// # Errors
    /// A message naming the key that is not 32 bytes of hexadecimal or not a valid key.
    pub fn required_hex(keys: &[String]) -> std::result::Result<Verify, String> {
        let parse = |key: &String| {
            let digits = key.trim().lines().last().unwrap_or_default().trim();
            let bytes = format::bytes32_from_hex(digits)
                .ok_or_else(|| format!("public key `{digits}` is not 64 hexadecimal digits"))?;
            VerifyingKey::from_bytes(&bytes)
                .map_err(|e| format!("public key `{digits}` is not a valid Ed25519 key: {e}"))
        };
        Ok(Verify::Required(keys.iter().map(parse).collect::<std::result::Result<_, _>>()?))
    }
}

/// The id a signature names its key by: the key's first 8 bytes.
pub fn key_id(key: &VerifyingKey) -> [u8; 8] {
    key.as_bytes()[..8].try_into().expect("8 bytes")
}

/// Checks `region` (the bundle's signature region, empty if unsigned) against `policy`.
pub(crate) fn check(bundle: &str, policy: &Verify, root_hash: &[u8; 32], region: &[u8]) -> Result<()> {
    let keys = match policy {
        Verify::None => return Ok(()),
        Verify::IfPresent(_) if region.is_empty() => return Ok(()),
        Verify::Required(_) if region.is_empty() => return Err(Error::Unsigned { bundle: bundle.to_string() }),
        Verify::IfPresent(keys) | Verify::Required(keys) => keys,
    };
    let bad = |reason: &str| Error::BadSignature { bundle: bundle.to_string(), reason: reason.to_string() };
    if region.len() != SIGNATURE_LEN {
        return Err(bad("the signature region has the wrong length"));
    }
    let (id, signature) = region.split_at(8);
    let key = keys
        .iter()
        .find(|k| key_id(k) == id)
        .ok_or_else(|| bad(&format!("signed by key {}, which is not one of the trusted keys", format::hex(id))))?;
    let signature = Signature::from_slice(signature).map_err(|_| bad("malformed signature"))?;
    key.verify(&format::signed_message(root_hash), &signature)
        .map_err(|_| bad("the signature does not match the bundle"))
}
