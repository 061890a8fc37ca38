//! `luabundle run --profile-out FILE`, `--repeat N` and the start-up budgets
//! (`--max-startup`, `--max-module-time`): the loads of a run written as a profile people can
//! open, and a run that fails when loading takes longer than a CI job allows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use luabundle_runtime::StartupProfile;

/// The formats `--profile-format` takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum ProfileFormat {
    /// Chrome's Trace Event format (Perfetto, chrome://tracing).
    #[default]
    Chrome,
    /// speedscope's file format.
    Speedscope,
    /// Collapsed stacks (flamegraph.pl, inferno).
    Collapsed,
}

impl ProfileFormat {
    pub(super) fn parse(text: &str) -> Result<ProfileFormat, String> {
        match text {
            "chrome" => Ok(ProfileFormat::Chrome),
            "speedscope" => Ok(ProfileFormat::Speedscope),
            "collapsed" => Ok(ProfileFormat::Collapsed),
            other => Err(format!("--profile-format takes chrome, speedscope or collapsed, not '{other}'")),
        }
    }
}

/// What a run records about its start-up, and the limits it must keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct StartupOptions {
    pub(super) out: Option<PathBuf>,
    pub(super) format: Option<ProfileFormat>,
    /// Runs of the program (medians are taken over them); 0 when not given.
    pub(super) repeat: usize,
    pub(super) max_startup: Option<Duration>,
    pub(super) max_module_time: Option<Duration>,
}

impl StartupOptions {
    /// Whether the runs' loads are needed afterwards.
    pub(super) fn wanted(&self) -> bool {
        self.out.is_some() || self.max_startup.is_some() || self.max_module_time.is_some()
    }

    /// How many times the program runs.
    pub(super) fn runs(&self) -> usize {
        self.repeat.max(1)
    }

    /// Takes the values of `other` this one lacks (options given before the bundle).
    pub(super) fn or(self, other: StartupOptions) -> StartupOptions {
        StartupOptions {
            out: self.out.or(other.out),
            format: self.format.or(other.format),
            repeat: if self.repeat == 0 { other.repeat } else { self.repeat },
            max_startup: self.max_startup.or(other.max_startup),
            max_module_time: self.max_module_time.or(other.max_module_time),
        }
    }
}

/// A duration as the budgets take it: a number and `us` (or `µs`), `ms` or `s`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: write it as 250us, 5ms or 1.5s");
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

/// Writes the profile and checks the budgets over the runs' profiles. Returns the exit
/// status the budgets call for: 1 when one is exceeded (the offenders are printed).
///
/// # Errors
/// The profile file cannot be written.
pub(super) fn finish(options: &StartupOptions, runs: &[StartupProfile]) -> anyhow::Result<i32> {
    let Some(median_run) = median_run(runs) else { return Ok(0) };
    if let Some(path) = &options.out {
        let text = match options.format.unwrap_or_default() {
            ProfileFormat::Chrome => median_run.chrome_trace(),
            ProfileFormat::Speedscope => median_run.speedscope(),
            ProfileFormat::Collapsed => median_run.collapsed(),
        };
        luabundle::internals::write_atomically(path, text.as_bytes())?;
        eprintln!(
            "luabundle: wrote {} ({} loads, {} of start-up{})",
            path.display(),
            median_run.loads.len(),
            millis(median_run.total()),
            if runs.len() > 1 { format!(", the median of {} runs", runs.len()) } else { String::new() }
        );
    }
    let mut over = Vec::new();
    let total = median(runs.iter().map(StartupProfile::total).collect());
    if let Some(limit) = options.max_startup.filter(|&limit| total > limit) {
        over.push(format!("start-up took {} (over --max-startup {})", millis(total), millis(limit)));
    }
    if let Some(limit) = options.max_module_time {
        for (module, took) in module_medians(runs) {
            if took > limit {
                over.push(format!(
                    "{module} took {} of its own (over --max-module-time {})",
                    millis(took),
                    millis(limit)
                ));
            }
        }
    }
    for line in &over {
        eprintln!("luabundle: budget exceeded: {line}");
    }
    Ok(if over.is_empty() { 0 } else { 1 })
}

/// The run whose start-up took the median time.
fn median_run(runs: &[StartupProfile]) -> Option<&StartupProfile> {
    let mut sorted: Vec<&StartupProfile> = runs.iter().collect();
    sorted.sort_by_key(|run| run.total());
    sorted.get(sorted.len() / 2).copied()
}

/// Per module, the median over the runs of its own time (loads of one run added up).
fn module_medians(runs: &[StartupProfile]) -> BTreeMap<String, Duration> {
    let mut times: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for run in runs {
        let mut this_run: BTreeMap<&str, Duration> = BTreeMap::new();
        for load in &run.loads {
            *this_run.entry(load.module.as_str()).or_default() += load.self_time;
        }
        for (module, took) in this_run {
            times.entry(module.to_string()).or_default().push(took);
        }
    }
    times.into_iter().map(|(module, took)| (module, median(took))).collect()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn millis(took: Duration) -> String {
    match took.as_secs_f64() * 1e3 {
        ms if ms < 1.0 => format!("{:.0} µs", ms * 1e3),
        ms => format!("{ms:.2} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["50", "ms", "5 ms", "-1ms", "1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
