//! Benchmarks: release build, fixed seeds, warm-up, median of repeated runs.

pub mod autograd;
pub mod floor;
pub mod linalg;
pub mod search;
pub mod train;

use std::time::Instant;

/// Repetitions whose median is reported.
pub const REPETITIONS: usize = 7;

/// Runs `f` once to warm up, then `REPETITIONS` times; returns the median in seconds.
pub fn median_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..REPETITIONS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Every benchmark that exists so far.
pub fn run_all() -> Result<(), String> {
    linalg::run()?;
    autograd::run()?;
    search::run()?;
    train::run()
}
