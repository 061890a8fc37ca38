//! `luabundle verify`: every check a loader makes, on every module, and the signature.

use std::path::PathBuf;

use clap::Args;
use luabundle_runtime::Bundle;

/// `luabundle verify` options.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// Require a valid signature by this public key (from `luabundle keygen`). Repeatable:
    /// any one of the keys will do.
    #[arg(long, value_name = "PUBKEY")]
    key: Vec<PathBuf>,
    /// Print the result as JSON: `{"ok": true, "modules": N, "target": "...", "signed": ...}`.
    #[arg(long)]
    json: bool,
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<i32> {
    if !args.json {
        return verify_checked(&args);
    }
    // With --json, a failure is a JSON answer too, with the exit code it calls for.
    match verify_checked(&args) {
        Ok(code) => Ok(code),
        Err(err) => {
            let code = super::report_quietly(&err);
            let json = serde_json::json!({
                "ok": false,
                "bundle": args.bundle.display().to_string(),
                "error": err.to_string(),
            });
            println!("{json}");
            Ok(code)
        }
    }
}

fn verify_checked(args: &VerifyArgs) -> anyhow::Result<i32> {
    let policy = if args.key.is_empty() {
        luabundle_runtime::signature::Verify::None
    } else {
        let keys = args.key.iter().map(|k| luabundle::sign::read_verifying_key(k)).collect::<Result<Vec<_>, _>>()?;
        luabundle_runtime::signature::Verify::Required(keys)
    };
    let bundle = Bundle::open_verified(&args.bundle, &policy)?;
    bundle.verify_all()?;
    if args.json {
        let json = serde_json::json!({
            "ok": true,
            "bundle": args.bundle.display().to_string(),
            "modules": bundle.module_count(),
            "target": bundle.target().flavour,
            "signature_checked": !args.key.is_empty(),
        });
        println!("{json}");
        return Ok(0);
    }
    let signed = if args.key.is_empty() { "" } else { ", signature valid" };
    println!(
        "{}: ok ({} modules, target {}{signed})",
        args.bundle.display(),
        bundle.module_count(),
        bundle.target().flavour
    );
    Ok(0)
}
