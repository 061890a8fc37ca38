//! `luabundle extract`: each module of a bundle written back as a source file, at the path
//! the bundle records for it, from its embedded source (`--embed-source`) or from a source
//! bundle. A module stored as bytecode only is refused by name; the others are still written.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use clap::Args;
use luabundle_runtime::{BlobKind, Bundle};

/// `luabundle extract` options.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// The directory to write the files under (made if missing); each file goes to its
    /// recorded path, e.g. DIR/src/app/util.lua.
    #[arg(long, short = 'o', value_name = "DIR")]
    output: PathBuf,
    /// Replace files that already exist (by default they are left alone and reported).
    #[arg(long)]
    force: bool,
}

pub fn extract(args: ExtractArgs) -> anyhow::Result<i32> {
    let bundle = Bundle::open(&args.bundle)?;
    let index = bundle.index()?;
    let mut written = 0;
    let mut refused = Vec::new();
    // A file provides several names (`a` and `a.init`; Luau's path records): one file each.
    let mut paths = BTreeSet::new();
    for (position, module) in index.modules.iter().enumerate() {
        if !paths.insert(module.path.clone()) {
            continue;
        }
        let Some(relative) = safe_relative(&module.path) else {
            refused.push(format!("{}: its path {:?} leads outside the output directory", module.name, module.path));
            continue;
        };
        let text = match module.kind {
            BlobKind::Source => Some(bundle.verified_blob(position)?),
            BlobKind::Bytecode => bundle.verified_source(position)?,
        };
        let Some(text) = text else {
            refused.push(format!(
                "{}: the bundle holds its bytecode only (build with --embed-source to keep sources)",
                module.name
            ));
            continue;
        };
        let target = args.output.join(relative);
        if target.exists() && !args.force {
            refused.push(format!("{}: {} exists (--force replaces it)", module.name, target.display()));
            continue;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        write_file(&target, &text)?;
        written += 1;
    }
    for reason in &refused {
        eprintln!("error: not extracted: {reason}");
    }
    eprintln!("extracted {written} of {} files into {}", paths.len(), args.output.display());
    Ok(if refused.is_empty() { 0 } else { 1 })
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so that no
/// half-written source is ever left.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let error = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    std::io::Write::write_all(&mut temp, bytes).map_err(error)?;
    temp.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

/// `path` as a relative path of plain components (no root, no `..`), which a bundle made by
/// someone else could otherwise use to write anywhere.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    (plain && path.components().next().is_some()).then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_written() {
        assert_eq!(safe_relative("src/app/util.lua"), Some(PathBuf::from("src/app/util.lua")));
        assert_eq!(safe_relative("./src/.luaurc"), Some(PathBuf::from("./src/.luaurc")));
        for bad in ["/etc/passwd", "../x.lua", "src/../../x.lua", ""] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }
}
