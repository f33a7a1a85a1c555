//! Progress bars (indicatif): an [`Observer`] of the runner drawing one bar per epoch on
//! stderr, for the CLI (when stdout is a terminal and `--quiet` is not given) and the Python
//! estimators (`verbose=True` on a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spd_nas::runner::Observer;

/// Bars on stderr, one per epoch of each stage.
pub struct Bars {
    visible: bool,
    bar: Option<ProgressBar>,
}

impl Bars {
    /// Bars that are drawn when `visible`, else kept hidden.
    pub fn new(visible: bool) -> Self {
        Self { visible, bar: None }
    }
}

impl Observer for Bars {
    fn epoch_started(&mut self, stage: &str, epoch: usize, epochs: usize, batches: usize) {
        let bar = if self.visible {
            ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:<28} [{bar:32}] {pos}/{len} {elapsed_precise} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(format!("{stage} epoch {}/{epochs}", epoch + 1));
        self.bar = Some(bar);
    }

    fn batch_done(&mut self, _: &str, _: usize, _: usize) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn epoch_done(&mut self, _: &str, _: &serde_json::Value) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
