//! The EVD floor of a step: `Σₙ countₙ · t_EVD(n) / threads`, where `countₙ` is the number of
//! `n × n` eigendecompositions the step performs (read from spd-linalg's instrumented counter)
//! and `t_EVD(n)` the median time of one sequential EVD of that size measured in the same run.

use std::collections::BTreeMap;

use spd_linalg::random::{random_spd, seeded_rng};
use spd_linalg::{EighWorkspace, evd_counts_by_size};

use super::median_seconds;

/// Counts of eigendecompositions by matrix size.
#[derive(Debug, Clone, Default)]
pub struct EvdCounts(pub BTreeMap<usize, u64>);

impl EvdCounts {
    /// The EVDs `f` performs.
    pub fn of<T>(f: impl FnOnce() -> T) -> (T, EvdCounts) {
        let before: BTreeMap<usize, u64> = evd_counts_by_size().into_iter().collect();
        let out = f();
        let counts = evd_counts_by_size()
            .into_iter()
            .map(|(n, c)| (n, c - before.get(&n).copied().unwrap_or(0)))
            .filter(|&(_, c)| c > 0)
            .collect();
        (out, EvdCounts(counts))
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Single-EVD times by size, measured once per size.
#[derive(Default)]
pub struct EvdTimer {
    seconds: BTreeMap<usize, f64>,
}

impl EvdTimer {
    /// Median seconds of one sequential `n × n` EVD with eigenvectors (a batch of distinct
    /// random SPD matrices through one reused workspace, divided by the batch).
    pub fn seconds(&mut self, n: usize) -> f64 {
        *self.seconds.entry(n).or_insert_with(|| {
            let batch = (20_000 / (n * n).max(1)).clamp(8, 2000);
            let mut rng = seeded_rng(7 + n as u64);
            let mats: Vec<_> = (0..batch).map(|_| random_spd(n, &mut rng)).collect();
            let mut ws = EighWorkspace::new(n);
            let mut values = vec![0.0; n];
            let mut vectors = faer::Mat::<f64>::zeros(n, n);
            median_seconds(|| {
                for m in &mats {
                    ws.decompose_into(m.as_ref(), &mut values, Some(vectors.as_mut()))
                        .expect("EVD of a random SPD matrix");
                }
            }) / batch as f64
        })
    }

    /// Every size timed so far with its single-EVD time in microseconds.
    pub fn micros(&self) -> BTreeMap<usize, f64> {
        self.seconds.iter().map(|(&n, &s)| (n, s * 1e6)).collect()
    }

    /// The floor of a step with `counts` EVDs on `threads` threads, in milliseconds.
    pub fn floor_ms(&mut self, counts: &EvdCounts, threads: usize) -> f64 {
        let total: f64 = counts
            .0
            .iter()
            .map(|(&n, &c)| c as f64 * self.seconds(n))
            .sum();
        total * 1e3 / threads.max(1) as f64
    }
}

/// `one sequential EVD: n = 10: 3.5 µs, …` for the sizes timed by `timer`.
pub fn evd_times_line(timer: &EvdTimer) -> String {
    let parts: Vec<String> = timer
        .micros()
        .iter()
        .map(|(n, us)| format!("n = {n}: {us:.1} µs"))
        .collect();
    format!(
        "One sequential EVD, measured in this run: {}.",
        parts.join(", ")
    )
}
