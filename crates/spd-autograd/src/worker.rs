//! Running tape work on rayon's pool.

/// Runs `f` on a worker thread of rayon's current pool and returns its value. Ops parallelise
/// over the matrices of a tensor with many short parallel loops; started from a worker, each
/// loop splits locally, whereas from any other thread each one is injected into the pool and
/// the caller sleeps until it is done — two context switches per op. Measured on a RADAR
/// first-order search step (2 cores): 270 ms from the main thread, 205 ms on a worker. Nested
/// calls from a worker run `f` in place.
pub fn on_worker<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    out.expect("the scope ran its closure")
}
