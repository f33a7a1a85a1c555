//! A process-wide count of eigendecompositions, in total and by matrix size, so benchmarks can
//! report how many EVDs a step performs and its floor (Σₙ countₙ · t_EVD(n) / threads) instead
//! of estimating them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sizes counted one by one; larger matrices share the last bucket.
const SIZES: usize = 513;

static EVD_COUNT: AtomicU64 = AtomicU64::new(0);
static EVD_BY_SIZE: [AtomicU64; SIZES] = [const { AtomicU64::new(0) }; SIZES];

/// Number of symmetric eigendecompositions performed by this process so far.
pub fn evd_count() -> u64 {
    EVD_COUNT.load(Ordering::Relaxed)
}

/// `(n, count)` for every matrix size `n` decomposed so far, ascending in `n`; sizes above 512
/// are reported together as `n = 512`.
pub fn evd_counts_by_size() -> Vec<(usize, u64)> {
    EVD_BY_SIZE
        .iter()
        .enumerate()
        .map(|(n, c)| (n, c.load(Ordering::Relaxed)))
        .filter(|&(_, c)| c > 0)
        .collect()
}

pub(crate) fn count_evd(n: usize) {
    EVD_COUNT.fetch_add(1, Ordering::Relaxed);
    EVD_BY_SIZE[n.min(SIZES - 1)].fetch_add(1, Ordering::Relaxed);
}
