//! Signed bundles: `luabundle keygen`, `build --sign`, `verify --key`, and the runtime's
//! `Verify` policies against unsigned, wrongly signed and tampered bundles.

use luabundle_runtime::format::{self, Header, HEADER_LEN, TRAILER_LEN};
use luabundle_runtime::signature::Verify;
use luabundle_runtime::{Bundle, Error};
use predicates::str::contains;

use crate::support::luabundle;

struct Keys {
    _dir: tempfile::TempDir,
    bundle: Vec<u8>,
    trusted: ed25519_dalek::VerifyingKey,
    other: ed25519_dalek::VerifyingKey,
    unsigned: Vec<u8>,
}

fn signed_bundle() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("release.key");
    let other = dir.path().join("other.key");
    luabundle().arg("keygen").arg(&key).assert().code(0);
    luabundle().arg("keygen").arg(&other).assert().code(0);
    let bundle = dir.path().join("app.bundle");
    luabundle()
        .args(["build", "fixtures/app/src", "--no-cache", "-o"])
        .arg(&bundle)
        .arg("--sign")
        .arg(&key)
        .assert()
        .code(0);
    let unsigned = dir.path().join("unsigned.bundle");
    luabundle().args(["build", "fixtures/app/src", "--no-cache", "-o"]).arg(&unsigned).assert().code(0);
    let read_key = |p: &std::path::Path| luabundle::sign::read_verifying_key(p).unwrap();
    Keys {
        bundle: std::fs::read(&bundle).unwrap(),
        unsigned: std::fs::read(&unsigned).unwrap(),
        trusted: read_key(&dir.path().join("release.key.pub")),
        other: read_key(&dir.path().join("other.key.pub")),
        _dir: dir,
    }
}

#[test]
fn the_cli_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    luabundle().arg("keygen").arg(&key).assert().code(0).stderr(contains("public key"));
    luabundle().arg("keygen").arg(&key).assert().code(2);
    let bundle = dir.path().join("a.bundle");
    luabundle()
        .args(["build", "fixtures/app/src", "--no-cache", "-o"])
        .arg(&bundle)
        .arg("--sign")
        .arg(&key)
        .assert()
        .code(0);
    luabundle()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(dir.path().join("k.pub"))
        .assert()
        .code(0)
        .stdout(contains("signature valid"));
    luabundle().arg("inspect").arg(&bundle).assert().code(0).stdout(contains("signed:    yes"));
}

#[test]
fn policies_accept_good_signatures_and_refuse_the_rest() {
    let keys = signed_bundle();
    let required = Verify::Required(vec![keys.trusted]);
    Bundle::from_bytes_verified(keys.bundle.clone(), &required).unwrap();
    Bundle::from_bytes_verified(keys.bundle.clone(), &Verify::IfPresent(vec![keys.trusted])).unwrap();
    Bundle::from_bytes_verified(keys.unsigned.clone(), &Verify::IfPresent(vec![keys.trusted])).unwrap();
    let err = Bundle::from_bytes_verified(keys.unsigned.clone(), &required).unwrap_err();
    assert!(matches!(err, Error::Unsigned { .. }), "{err}");
    let err = Bundle::from_bytes_verified(keys.bundle.clone(), &Verify::Required(vec![keys.other])).unwrap_err();
    assert!(
        matches!(err, Error::BadSignature { .. }) && err.to_string().contains("not one of the trusted keys"),
        "{err}"
    );
    let err = Bundle::from_bytes_verified(keys.bundle.clone(), &Verify::IfPresent(vec![keys.other])).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    // Without a policy, a signed bundle opens like any other.
    Bundle::from_bytes(keys.bundle).unwrap();
}

#[test]
fn a_tampered_signed_bundle_is_refused_at_open() {
    let keys = signed_bundle();
    let required = Verify::Required(vec![keys.trusted]);
    let header = Header::parse(keys.bundle[..HEADER_LEN].try_into().unwrap(), keys.bundle.len() as u64).unwrap();
    // A flipped bit in the signature.
    let mut flipped = keys.bundle.clone();
    flipped[header.signature.offset as usize + 20] ^= 1;
    let err = Bundle::from_bytes_verified(flipped, &required).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // A changed index with a recomputed root hash: consistent, but not what was signed.
    let good = Bundle::from_bytes(keys.bundle.clone()).unwrap();
    let mut index = good.index().unwrap().clone();
    index.entry = Some(0);
    let blobs = &keys.bundle[header.blobs.offset as usize..(header.blobs.offset + header.blobs.len) as usize];
    let signature =
        &keys.bundle[header.signature.offset as usize..(header.signature.offset + header.signature.len) as usize];
    let unsigned = format::encode_unvalidated(good.target(), &index, blobs).unwrap();
    // Graft the old signature onto the forged bundle.
    let forged_header = Header::parse(unsigned[..HEADER_LEN].try_into().unwrap(), unsigned.len() as u64).unwrap();
    let mut h = forged_header.clone();
    h.signature.len = signature.len() as u64;
    h.file_len += signature.len() as u64;
    h.flags |= format::FLAG_SIGNED;
    let body_end = unsigned.len() - TRAILER_LEN;
    let mut forged = h.to_bytes().to_vec();
    forged.extend_from_slice(&unsigned[HEADER_LEN..body_end]);
    forged.extend_from_slice(signature);
    forged.extend_from_slice(&format::MAGIC);
    let part = |s: format::Span| forged[s.offset as usize..(s.offset + s.len) as usize].to_vec();
    let root = format::root_hash(&h.to_bytes(), &part(h.target), &part(h.directory));
    forged[HEADER_LEN - 32..HEADER_LEN].copy_from_slice(&root);
    forged.extend_from_slice(&root);
    assert!(Bundle::from_bytes(forged.clone()).is_ok(), "the forgery is a consistent bundle");
    let err = Bundle::from_bytes_verified(forged, &required).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}
