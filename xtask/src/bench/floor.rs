//! The EVD floor of a step: `Σₙ countₙ · t_EVD(n) / threads`, where `countₙ` is the number of
//! `n × n` eigendecompositions the step performs (read from spd-linalg's instrumented counter)
//! and `t_EVD(n)` the median time of one sequential EVD of that size measured in the same run,
//! through the solver batches use (batched Jacobi for small `n`, one matrix at a time above).

use std::collections::BTreeMap;

use spd_linalg::random::{random_spd, seeded_rng};
use spd_linalg::{eigh_batch_seq, evd_counts_by_size};

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
    /// Median seconds of one sequential `n × n` EVD with eigenvectors: a batch of distinct
    /// random SPD matrices decomposed on the calling thread, divided by the batch.
    pub fn seconds(&mut self, n: usize) -> f64 {
        *self.seconds.entry(n).or_insert_with(|| {
            let batch = (20_000 / (n * n).max(1)).clamp(8, 2000);
            let mut rng = seeded_rng(7 + n as u64);
            let mut data = Vec::with_capacity(batch * n * n);
            for _ in 0..batch {
                let m = random_spd(n, &mut rng);
                data.extend((0..n * n).map(|k| m[(k % n, k / n)]));
            }
            median_seconds(|| {
                eigh_batch_seq(&data, n).expect("EVD of a random SPD matrix");
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
