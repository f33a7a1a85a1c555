//! Element-wise activations of the Euclidean baselines.

use rayon::prelude::*;

use crate::Result;
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

/// Values per parallel task of element-wise loops.
const CHUNK: usize = 1 << 14;

struct Relu;

/// `max(x, 0)` element-wise (NaN stays NaN). The gradient is taken as 0 at `x = 0`, as in
/// PyTorch.
pub fn relu(g: &mut Graph, x: Var) -> Var {
    let mut out = g.value(x).clone();
    out.data_mut().par_chunks_mut(CHUNK).for_each(|chunk| {
        for v in chunk {
            if *v < 0.0 {
                *v = 0.0;
            }
        }
    });
    #[cfg(test)]
    kinks::record(g.value(x));
    g.push(out, vec![x], Box::new(Relu))
}

impl Backward for Relu {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut d = grad.clone();
        d.data_mut()
            .par_chunks_mut(CHUNK)
            .zip(ctx.inputs[0].data().par_chunks(CHUNK))
            .for_each(|(dc, xc)| {
                for (d, x) in dc.iter_mut().zip(xc) {
                    if *x <= 0.0 || x.is_nan() {
                        *d = 0.0;
                    }
                }
            });
        Ok(vec![Some(d)])
    }
}

/// Test support: a log, per thread, of the sign pattern of every ReLU input, so that a
/// finite-difference check of a composite can tell whether its stencil crossed a kink.
#[cfg(test)]
pub(crate) mod kinks {
    use std::cell::RefCell;

    use crate::tensor::Tensor;

    thread_local! {
        static LOG: RefCell<Option<Vec<u64>>> = const { RefCell::new(None) };
    }

    /// Starts (or restarts) logging on this thread.
    pub(crate) fn start() {
        LOG.with(|l| *l.borrow_mut() = Some(Vec::new()));
    }

    /// Stops logging and returns one hash per ReLU call since [`start`].
    pub(crate) fn take() -> Vec<u64> {
        LOG.with(|l| l.borrow_mut().take().unwrap_or_default())
    }

    pub(super) fn record(x: &Tensor) {
        LOG.with(|l| {
            if let Some(log) = l.borrow_mut().as_mut() {
                // FNV-1a over the pattern of positive entries.
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for v in x.data() {
                    h ^= u64::from(*v > 0.0);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
                log.push(h);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        /// ReLU's backward against finite differences, on inputs pushed at least
        /// `0.05 max(1, max|x|)` away from the kink at 0: the check's stencil moves no entry by
        /// more than `2h = 2e-4 max(1, max|x|)` (unit directions), so it never crosses the kink
        /// and the check's default tolerance (1e-6 relative) applies.
        #[test]
        fn relu_gradients_away_from_the_kink(b in 1usize..3, c in 1usize..4, h in 1usize..6, w in 1usize..6, seed in any::<u64>()) {
            let mut x = InputKind::General.sample([b, c, h, w], seed);
            let top = x.value.data().iter().fold(1.0f64, |a, v| a.max(v.abs()));
            for v in x.value.data_mut() {
                *v += 0.05 * top * v.signum();
            }
            check(&[x], |g, v| Ok(relu(g, v[0])), seed)?;
        }
    }

    /// Values and the gradient mask, including the conventions at 0 and NaN.
    #[test]
    fn relu_clamps_negatives_and_masks_the_gradient_at_zero() {
        let x = Tensor::from_vec([1, 1, 2, 2], vec![-1.5, 0.0, 2.0, f64::NAN]).unwrap();
        let mut g = Graph::new();
        let xv = g.leaf(x);
        let y = relu(&mut g, xv);
        let out = g.value(y).data().to_vec();
        assert_eq!(&out[..3], &[0.0, 0.0, 2.0]);
        assert!(out[3].is_nan());
        let loss = crate::ops::arith::sum(&mut g, y).unwrap();
        let grads = g.backward(loss).unwrap();
        assert_eq!(grads.wrt(xv).unwrap().data(), &[0.0, 0.0, 1.0, 0.0]);
    }
}
