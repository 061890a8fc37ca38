//! Output: the bundle (or plain-Lua script) assembled from the analysis and written
//! atomically, and the manifest beside it.

mod assemble;
pub mod bundle_file;
pub(crate) mod depfile;
pub mod lua_script;
#[cfg(feature = "luau")]
mod luau_records;
pub mod manifest;
pub(crate) mod paths;

use std::path::Path;
use std::time::Instant;

use luabundle_runtime::format::KnownBlob;

use crate::analysis::compile::Blob;
use crate::analysis::Analysis;
use crate::cache::bundle_record::Freshness;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::plan::{Output, OutputFormat, Plan};

/// Writes the output of a build to `output` (and the manifest, when given as its path and
/// text), filling in the size, whether it was written, and the encode and write timings.
/// An up-to-date bundle (`fresh`) is left as it is.
///
/// # Errors
/// [`Error::Io`] naming the file that cannot be written; what was at the path stays.
pub(crate) fn write(
    plan: &Plan,
    analysis: &Analysis,
    bytecode: Vec<Option<Blob>>,
    fresh: Option<&Freshness>,
    output: &Path,
    result: &mut Output,
) -> Result<(), Error> {
    let options = plan.options;
    if options.embed_source || options.format != OutputFormat::Bundle {
        sources_still_readable(analysis)?;
    }
    let encode_started = Instant::now();
    match options.format {
        OutputFormat::Bundle | OutputFormat::Source => {
            if let Some(len) = fresh.and_then(|f| f.up_to_date) {
                result.bytes = len;
                return Ok(());
            }
            let previous = fresh.and_then(|f| f.previous.as_ref()).map(|p| &p.file);
            let (contents, known) = assemble::bundle_contents(options, analysis, bytecode, previous);
            result.copied = known.iter().filter(|k| matches!(k, Some(KnownBlob::InFile { .. }))).count();
            let layout = assemble::bundle_layout(options, &contents, &known)?;
            result.timings.encode = encode_started.elapsed();
            result.bytes = layout.len();
            let write_started = Instant::now();
            // Without a cache, the bundle is always written anew.
            let keep_identical = plan.cache.is_some();
            result.written = bundle_file::write_bundle_atomically(output, &layout, keep_identical)?;
            if let Some(fresh) = fresh {
                fresh.record(&layout, output);
            }
            result.timings.write = write_started.elapsed();
        }
        OutputFormat::Lua | OutputFormat::LuaBytecode => {
            let bytes = assemble::lua_script(options, analysis, bytecode).into_bytes();
            result.timings.encode = encode_started.elapsed();
            result.bytes = bytes.len() as u64;
            let write_started = Instant::now();
            result.written = bundle_file::write_atomically(output, &bytes)?;
            result.timings.write = write_started.elapsed();
        }
    }
    Ok(())
}

/// Fails when the text of a bundled file, which the output holds, can no longer be had as
/// discovery hashed it.
fn sources_still_readable(analysis: &Analysis) -> Result<(), Error> {
    let bundled = analysis.bundled_files();
    let files = &analysis.discovered.files;
    let problems: Vec<Diagnostic> =
        files.iter().filter(|f| bundled[f.id]).filter_map(Diagnostic::of_read_problem).collect();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Error::Input(Box::new(Diagnostics::new(problems, files)))),
    }
}
