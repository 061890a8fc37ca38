//! Whether the bundle at an output path was built from exactly the inputs of this build, so
//! that a build with nothing changed reads no bytecode and writes nothing.
//!
//! After writing a bundle, the build records in the cache directory a inputs_hash of all its
//! inputs (options, module names, files, content keys, resolved dependencies) together with
//! the bundle's header and trailer and the metadata of the file written (size, times, inode).
//! A later build with the same inputs_hash whose output file still has that metadata (so no
//! byte of it was written since) and that header and trailer (and so the same root hash,
//! which covers every module's hash) is up to date. Any other bundle at the output is
//! compared byte for byte with the one built before it is kept.
//!
//! When the inputs changed but the bundle at the output is still the file the record
//! describes, that bundle is the previous one (`PreviousBundle`): a module whose bytecode
//! hash it already holds is copied from it into the new bundle file to file, without being
//! read or hashed again. Its bytes are trusted as the no-change check trusts the whole file:
//! this tool wrote and hashed them, and the file has not been written since; the runtime
//! still checks every module's hash when it loads it.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use luabundle_runtime::format::{Encoding, Span, HEADER_LEN, TRAILER_LEN};
use luabundle_runtime::Bundle;

use crate::analysis::Analysis;
use crate::cache::file_table::Fingerprint;
use crate::plan::{OutputFormat, Plan};
use luabundle_runtime::format::Layout;

/// Magic bytes that start a record.
const MAGIC: &[u8; 8] = b"LBFRESH2";
const RECORD_LEN: usize = MAGIC.len() + 32 + HEADER_LEN + TRAILER_LEN + Fingerprint::LEN;

/// What a build recorded about the bundle it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleRecord {
    /// blake3 of the build's inputs.
    pub inputs_hash: [u8; 32],
    /// The bundle's first bytes.
    pub header: [u8; HEADER_LEN],
    /// The bundle's last bytes.
    pub trailer: [u8; TRAILER_LEN],
    /// The metadata of the bundle file as written.
    pub file: Fingerprint,
}

impl BundleRecord {
    /// Where the record for `output` is kept under the cache's layout directory `dir`.
    pub fn path(dir: &Path, output: &Path) -> PathBuf {
        let absolute = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
        let name = blake3::hash(absolute.as_os_str().as_encoded_bytes()).to_hex();
        dir.join("outputs").join(format!("{}.rec", &name[..32]))
    }

    /// The record at `path`, if there is an intact one.
    pub fn load(path: &Path) -> Option<BundleRecord> {
        let bytes = crate::util::read_regular(path, RECORD_LEN as u64).ok()?;
        if bytes.len() != RECORD_LEN || !bytes.starts_with(MAGIC) {
            return None;
        }
        let rest = &bytes[MAGIC.len()..];
        Some(BundleRecord {
            inputs_hash: rest[..32].try_into().ok()?,
            header: rest[32..32 + HEADER_LEN].try_into().ok()?,
            trailer: rest[32 + HEADER_LEN..32 + HEADER_LEN + TRAILER_LEN].try_into().ok()?,
            file: Fingerprint::read(&rest[32 + HEADER_LEN + TRAILER_LEN..])?,
        })
    }

    /// Writes the record to `path` atomically; failures are ignored (the next build then
    /// rebuilds the bundle).
    pub fn save(&self, path: &Path) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&self.inputs_hash);
        bytes.extend_from_slice(&self.header);
        bytes.extend_from_slice(&self.trailer);
        self.file.write(&mut bytes);
        crate::util::write::replace_cache_file(path, &bytes);
    }

    /// The length of the bundle at `output` if it is still the file this record describes:
    /// untouched since (the same metadata) and with this header and trailer.
    pub fn matches_file(&self, output: &Path) -> Option<u64> {
        let untouched = Fingerprint::of_path(output) == Some(self.file);
        let ends = crate::output::bundle_file::bundle_file_ends(output).filter(|_| untouched)?;
        (ends.header == self.header && ends.trailer == self.trailer).then_some(ends.len)
    }
}

/// The build's inputs against the record of the bundle at the output path.
pub(crate) struct Freshness {
    record_path: PathBuf,
    inputs_hash: [u8; 32],
    /// The bundle's length when it was built from exactly these inputs.
    pub up_to_date: Option<u64>,
    /// The bundle at the output, when it was built from other inputs but is untouched since.
    pub previous: Option<PreviousBundle>,
}

/// The bundle a build replaces, open, with where each of its module blobs lies by hash.
pub(crate) struct PreviousBundle {
    /// The file, opened before its metadata was checked against the record.
    pub file: File,
    blobs: HashMap<[u8; 32], (Span, Encoding)>,
}

impl PreviousBundle {
    /// The previous bundle at `output`, if the file open there is the one `record` describes
    /// and its index reads back intact.
    fn open(record: &BundleRecord, output: &Path) -> Option<PreviousBundle> {
        // The file in hand is checked, not the path: a file put there later is never read.
        let file = crate::util::open_regular(output).ok()?;
        if Fingerprint::of(&file.metadata().ok()?) != Some(record.file) {
            return None;
        }
        let bundle = Bundle::from_file(file.try_clone().ok()?, output.display().to_string()).ok()?;
        if bundle.header().to_bytes() != record.header {
            return None;
        }
        let blobs = (0..bundle.module_count())
            .map(|position| bundle.stored_blob(position).map(|blob| (blob.hash, (blob.span, blob.encoding))))
            .collect::<Result<_, _>>()
            .ok()?;
        Some(PreviousBundle { file, blobs })
    }

    /// Where the previous bundle holds bytes with this blake3 hash, and their encoding.
    pub fn find(&self, hash: &[u8; 32]) -> Option<(Span, Encoding)> {
        self.blobs.get(hash).copied()
    }
}

impl Freshness {
    /// `None` without a cache (nowhere to keep records) or for plain-Lua output.
    pub(crate) fn check(plan: &Plan, analysis: &Analysis, output: &Path) -> Option<Freshness> {
        let cache = plan.cache.as_ref()?;
        let options = plan.options;
        if !matches!(options.format, OutputFormat::Bundle | OutputFormat::Source)
            || crate::util::write::is_stream(output)
        {
            return None;
        }
        let record_path = BundleRecord::path(&cache.layout_dir(), output);
        let inputs_hash = inputs_hash(plan, analysis);
        let record = BundleRecord::load(&record_path);
        let up_to_date = record
            .as_ref()
            .filter(|record| record.inputs_hash == inputs_hash)
            .and_then(|record| record.matches_file(output));
        // Only a bundle is copied from (a source bundle's blobs are read from its files), and
        // only where a file can be replaced while it is open.
        let previous = match (up_to_date, &record) {
            (None, Some(record)) if cfg!(unix) && options.format == OutputFormat::Bundle => {
                PreviousBundle::open(record, output)
            }
            _ => None,
        };
        Some(Freshness { record_path, inputs_hash, up_to_date, previous })
    }

    /// Records the bundle just written to `output`.
    pub(crate) fn record(&self, layout: &Layout<'_>, output: &Path) {
        let Some(file) = Fingerprint::of_path(output) else { return };
        let record = BundleRecord {
            inputs_hash: self.inputs_hash,
            header: *layout.header_bytes(),
            trailer: layout.trailer_bytes(),
            file,
        };
        record.save(&self.record_path);
    }
}

/// blake3 of everything that decides the bundle's bytes: this tool and its VM, the output
/// options, and every bundled module's name, file, content key and resolved dependencies.
fn inputs_hash(plan: &Plan, analysis: &Analysis) -> [u8; 32] {
    let options = plan.options;
    let mut hasher = blake3::Hasher::new();
    let mut text = |s: &str| {
        hasher.update(&(s.len() as u64).to_le_bytes());
        hasher.update(s.as_bytes());
    };
    text(env!("CARGO_PKG_VERSION"));
    text(&format!("{:?}", luabundle_runtime::target::linked()));
    text(&format!(
        "{:?} strip={} embed={} compress={:?}",
        options.format,
        options.strip,
        options.embed_source,
        options.zstd_level()
    ));
    #[cfg(feature = "sign")]
    text(&format!("{:?}", options.signing_key.as_ref().map(|k| k.verifying_key().to_bytes())));
    let modules = &analysis.discovered.modules;
    text(&format!("entry={:?}", analysis.entry.map(|e| &modules[e].name)));
    text(&format!("externals={:?}", analysis.graph.externals_used));
    for (name, members) in &analysis.profiles {
        text(&format!("profile {name} {:?}", members.iter().map(|&m| &modules[m].name).collect::<Vec<_>>()));
    }
    text(&format!("groups={:?}", options.groups));
    // Luau's configuration files are bundled, and decide where path requires lead.
    #[cfg(feature = "luau")]
    for config in &analysis.discovered.luau_configs {
        text(&config.tree_path);
        text(&blake3::hash(&config.bytes).to_hex());
    }
    text(&format!("luau-paths={}", analysis.luau_paths));
    for (i, m) in modules.iter().enumerate().filter(|(i, _)| analysis.graph.bundled[*i]) {
        let file = &analysis.discovered.files[m.file];
        text(&m.name);
        text(&file.display_path);
        text(&blake3::Hash::from_bytes(analysis.keys[m.file]).to_hex());
        text(&format!("{:?}", analysis.graph.dependencies(i)));
    }
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_matches_only_its_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("app.bundle");
        let mut bundle = vec![7u8; HEADER_LEN];
        bundle.extend_from_slice(b"middle");
        bundle.extend_from_slice(&[9u8; TRAILER_LEN]);
        std::fs::write(&output, &bundle).unwrap();
        let file = Fingerprint::of(&std::fs::metadata(&output).unwrap()).unwrap();
        let record = BundleRecord { inputs_hash: [1; 32], header: [7; HEADER_LEN], trailer: [9; TRAILER_LEN], file };
        let path = BundleRecord::path(&dir.path().join("cache"), &output);
        record.save(&path);
        assert_eq!(BundleRecord::load(&path), Some(record.clone()));
        assert_eq!(record.matches_file(&output), Some(bundle.len() as u64));
        // A byte changed in the middle keeps the ends, not the metadata.
        bundle[HEADER_LEN + 1] = b'M';
        std::fs::write(&output, &bundle).unwrap();
        assert_eq!(record.matches_file(&output), None);
        let file = Fingerprint::of(&std::fs::metadata(&output).unwrap()).unwrap();
        let record = BundleRecord { file, ..record };
        assert!(record.matches_file(&output).is_some());
        bundle[0] = 8;
        std::fs::write(&output, &bundle).unwrap();
        let file = Fingerprint::of(&std::fs::metadata(&output).unwrap()).unwrap();
        assert_eq!(BundleRecord { file, ..record }.matches_file(&output), None);
    }
}
