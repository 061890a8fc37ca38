//! The one place that runs the stages in order: the outputs checked against the inputs ->
//! analysis (discover, cache look-up, per-file compile and scan, graph) -> freshness of the
//! bundle already at the output -> bytecode of the bundled files (cache, or compile again) ->
//! manifest check -> output. Each stage lives in its own module; only this one knows the
//! order.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::analysis::{self, compile, Analysis};
use crate::cache::bundle_record::Freshness;
use crate::error::Error;
use crate::output::{self, manifest, paths};
use crate::plan::{Output, Plan};

/// Worker threads with stacks deep enough for full_moon.
fn pool(plan: &Plan) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(plan.options.jobs.unwrap_or(0))
        .stack_size(crate::syntax::parse::PARSE_STACK_SIZE)
        .thread_name(|i| format!("luabundle-{i}"))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start worker threads: {e}")))
}

/// Discovery through the graph, without compiling.
pub(crate) fn analyse(plan: &Plan) -> Result<Analysis, Error> {
    let options = plan.options;
    let outputs = paths::check(&[("--manifest", options.manifest.as_deref())], &options.config_sources)?;
    pool(plan)?.install(|| analysis::analyse(plan, &outputs))
}

/// The whole build; writes the bundle to `output` when given.
pub(crate) fn run(plan: &Plan, output: Option<&Path>) -> Result<Output, Error> {
    let started = Instant::now();
    let options = plan.options;
    let named =
        [("-o", output), ("--manifest", options.manifest.as_deref()), ("--depfile", options.depfile.as_deref())];
    let outputs = paths::check(&named, &options.config_sources)?;
    pool(plan)?.install(|| {
        let mut analysis = analysis::analyse(plan, &outputs)?;
        let store_started = Instant::now();
        let fresh = output.and_then(|output| Freshness::check(plan, &analysis, output));
        let bytecode = match fresh.as_ref().and_then(|f| f.up_to_date) {
            Some(_) => {
                analysis.close_cache(&[]);
                Vec::new()
            }
            None => compile::bundled_bytecode(
                &mut analysis,
                options.blob_options(),
                fresh.as_ref().and_then(|f| f.previous.as_ref()),
            ),
        };
        analysis.timings.store = store_started.elapsed();
        analysis.fail_on_errors()?;
        let manifest = options.manifest.as_deref().map(|path| (path, manifest::render(&analysis)));
        if let (Some((path, text)), true) = (&manifest, options.locked) {
            manifest::check_unchanged(path, text)?;
        }
        let mut result = summary(&analysis, output);
        if let Some(output) = output {
            output::write(plan, &analysis, bytecode, fresh.as_ref(), output, &mut result)?;
            if let Some((path, text)) = &manifest {
                let manifest_started = Instant::now();
                output::bundle_file::write_atomically(path, text.as_bytes())?;
                result.timings.write += manifest_started.elapsed();
            }
            if let Some(path) = &options.depfile {
                let inputs = output::depfile::inputs(options, &analysis);
                output::bundle_file::write_atomically(path, output::depfile::render(output, &inputs).as_bytes())?;
            }
        }
        result.elapsed = started.elapsed();
        Ok(result)
    })
}

/// The result of a build as the analysis leaves it, before anything is written.
fn summary(analysis: &Analysis, output: Option<&Path>) -> Output {
    Output {
        output: output.map(Path::to_path_buf),
        written: false,
        modules: analysis.bundled_count(),
        files: analysis.discovered.files.len(),
        parsed: analysis.parsed,
        compiled: analysis.compiled,
        copied: 0,
        bytes: 0,
        warnings: analysis.warnings(),
        legal_cycles: analysis.graph.legal_cycles.clone(),
        guarded: analysis.graph.guarded.clone(),
        site_counts: analysis.graph.site_counts,
        elapsed: Duration::ZERO,
        timings: analysis.timings,
    }
}
