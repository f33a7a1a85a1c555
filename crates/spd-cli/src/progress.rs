//! Progress bars (indicatif) for the app's [`Progress`] trait, drawn only when stdout is a
//! terminal and `--quiet` is not given.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spdnas::app::Progress;

/// Bars on stderr, one per stage.
pub struct Bars {
    visible: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Visible unless `quiet` or stdout is not a terminal.
    pub fn new(quiet: bool) -> Self {
        Self {
            visible: !quiet && std::io::stdout().is_terminal(),
            bar: Mutex::new(None),
        }
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        let bar = if self.visible {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
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
        bar.set_message(label.to_string());
        *self.bar.lock().expect("not poisoned") = Some(bar);
    }

    fn tick(&self, _status: &str) {
        if let Some(b) = self.bar.lock().expect("not poisoned").as_ref() {
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
}
