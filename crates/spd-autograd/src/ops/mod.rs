//! Differentiable ops. Each file holds one family: its forward (a function that records a node
//! on the [`Graph`](crate::Graph)), its backward rule, and its finite-difference tests.

pub mod activation;
pub mod arith;
pub mod batchnorm2d;
pub mod bimap;
pub mod concat;
pub mod congruence;
pub mod conv;
pub mod eig;
pub mod flatten;
pub mod frechet;
pub mod image_pool;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod shift;
pub mod simplex;

use faer::MatMut;
use rayon::prelude::*;

use crate::error::{Result, shape_err};
use crate::tensor::Tensor;

/// Fills every matrix `k` of `out` with `f(k, out_k)`, in parallel over matrices. (Written out
/// rather than as [`par_fill_with`] with empty scratch: that was 3–5 % slower per search step.)
pub(crate) fn par_fill(out: &mut Tensor, f: impl Fn(usize, MatMut<'_, f64>) + Sync) {
    let (r, c) = (out.rows(), out.cols());
    let len = r * c;
    if len == 0 {
        return;
    }
    out.data_mut()
        .par_chunks_mut(len)
        .enumerate()
        .for_each(|(k, chunk)| f(k, MatMut::from_column_major_slice_mut(chunk, r, c)));
}

/// [`par_fill`] with per-thread scratch `init()` reused across the matrices a thread fills.
pub(crate) fn par_fill_with<S>(
    out: &mut Tensor,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, MatMut<'_, f64>) + Sync + Send,
) {
    let (r, c) = (out.rows(), out.cols());
    let len = r * c;
    if len == 0 {
        return;
    }
    out.data_mut()
        .par_chunks_mut(len)
        .enumerate()
        .for_each_init(init, |s, (k, chunk)| {
            f(s, k, MatMut::from_column_major_slice_mut(chunk, r, c))
        });
}

/// Index of the operand matrix paired with output matrix `(b, c)` when the operand has batch
/// and channel sizes `(ob, oc)`, each either 1 (broadcast) or the output's.
pub(crate) fn broadcast_index(b: usize, c: usize, ob: usize, oc: usize) -> usize {
    let bi = if ob == 1 { 0 } else { b };
    let ci = if oc == 1 { 0 } else { c };
    bi * oc + ci
}

/// Checks that an operand of shape `s` broadcasts over `(batch, channels)`.
pub(crate) fn check_broadcast(
    op: &'static str,
    s: [usize; 4],
    batch: usize,
    channels: usize,
) -> Result<()> {
    if (s[0] == 1 || s[0] == batch) && (s[1] == 1 || s[1] == channels) {
        Ok(())
    } else {
        Err(shape_err(
            op,
            format!("{s:?} does not broadcast over batch {batch}, channels {channels}"),
        ))
    }
}

/// Checks that every matrix of `x` is square.
pub(crate) fn check_square(op: &'static str, x: &Tensor) -> Result<usize> {
    if x.rows() != x.cols() {
        return Err(shape_err(
            op,
            format!("matrices must be square, got {:?}", x.shape()),
        ));
    }
    Ok(x.rows())
}
