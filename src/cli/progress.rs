//! A progress bar for builds that take a while: on a terminal only, and only once a build
//! has run for about a second, so quick builds print nothing but their summary.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use luabundle::{Builder, Progress, Stage};

/// How long a build runs before the bar appears; `LUABUNDLE_PROGRESS_DELAY_MS` overrides it.
const DEFAULT_DELAY: Duration = Duration::from_secs(1);

/// Shows a progress bar on stderr while `builder` parses and compiles, when stderr is a
/// terminal.
pub fn attach(builder: &mut Builder) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let delay = std::env::var("LUABUNDLE_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(DEFAULT_DELAY, Duration::from_millis);
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} files")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let state = Arc::new(Mutex::new((Instant::now(), None::<Stage>)));
    builder.progress(move |progress: Progress| {
        let Ok(mut state) = state.lock() else { return };
        let (started, stage) = &mut *state;
        if *stage != Some(progress.stage) {
            *stage = Some(progress.stage);
            bar.set_prefix(progress.stage.doing());
            bar.set_position(0);
            bar.set_length(progress.total as u64);
        }
        if bar.is_hidden() && started.elapsed() >= delay {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        // Workers report out of order; the bar only moves forward.
        if progress.done as u64 > bar.position() {
            bar.set_position(progress.done as u64);
        }
        if progress.stage == Stage::Compile && progress.done == progress.total {
            bar.finish_and_clear();
        }
    });
}
