//! `luabundle keygen`: an Ed25519 key pair for signing bundles.

use std::path::PathBuf;

use clap::Args;

/// `luabundle keygen` options.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key; the public key goes to FILE.pub. Never overwritten.
    #[arg(value_name = "FILE")]
    path: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<i32> {
    let key = luabundle::sign::generate()?;
    luabundle::sign::write_key_files(&key, &args.path)?;
    eprintln!("wrote secret key {} and public key {}.pub", args.path.display(), args.path.display());
    Ok(0)
}
