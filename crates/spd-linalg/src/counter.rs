//! A process-wide count of eigendecompositions, so benchmarks can report how many EVDs a step
//! performs (its floor) instead of estimating it.

use std::sync::atomic::{AtomicU64, Ordering};

static EVD_COUNT: AtomicU64 = AtomicU64::new(0);

/// Number of symmetric eigendecompositions performed by this process so far.
pub fn evd_count() -> u64 {
    EVD_COUNT.load(Ordering::Relaxed)
}

pub(crate) fn count_evd() {
    EVD_COUNT.fetch_add(1, Ordering::Relaxed);
}
