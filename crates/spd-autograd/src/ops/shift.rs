//! Spatial shift of images with zero fill (FactorizedReduce's `x[:, :, 1:, 1:]`, padded back to
//! the input size so that odd sizes work).

use crate::Result;
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

struct Shift2d {
    dy: usize,
    dx: usize,
}

/// Copies `src` (an `h × w` column-major plane) shifted by `(dy, dx)` into `dst`:
/// `dst[r, c] = src[r + dy, c + dx]` where in range (`forward`), or the adjoint
/// `dst[r + dy, c + dx] = src[r, c]` (`!forward`); other entries of `dst` are left alone.
fn shift_plane(
    src: &[f64],
    dst: &mut [f64],
    (h, w): (usize, usize),
    (dy, dx): (usize, usize),
    forward: bool,
) {
    if dy >= h || dx >= w {
        return;
    }
    for c in 0..w - dx {
        for r in 0..h - dy {
            let (near, far) = (c * h + r, (c + dx) * h + r + dy);
            if forward {
                dst[near] = src[far];
            } else {
                dst[far] = src[near];
            }
        }
    }
}

/// `y[b, c, r, s] = x[b, c, r + dy, s + dx]`, zero where `r + dy ≥ H` or `s + dx ≥ W`; same
/// shape as `x`.
pub fn shift2d(g: &mut Graph, x: Var, dy: usize, dx: usize) -> Var {
    let xv = g.value(x);
    let [_, _, h, w] = xv.shape();
    let mut out = Tensor::zeros(xv.shape());
    let len = h * w;
    if len > 0 {
        for (src, dst) in xv.data().chunks(len).zip(out.data_mut().chunks_mut(len)) {
            shift_plane(src, dst, (h, w), (dy, dx), true);
        }
    }
    g.push(out, vec![x], Box::new(Shift2d { dy, dx }))
}

impl Backward for Shift2d {
    fn backward(&self, _ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let [_, _, h, w] = grad.shape();
        let mut d = Tensor::zeros(grad.shape());
        let len = h * w;
        if len > 0 {
            for (src, dst) in grad.data().chunks(len).zip(d.data_mut().chunks_mut(len)) {
                shift_plane(src, dst, (h, w), (self.dy, self.dx), false);
            }
        }
        Ok(vec![Some(d)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        /// The backward (the adjoint shift) against finite differences; the op is linear, so
        /// the check's default 1e-6 relative tolerance has ample margin.
        #[test]
        fn shift_gradients(b in 1usize..3, c in 1usize..3, h in 1usize..6, w in 1usize..6, dy in 0usize..3, dx in 0usize..3, seed in any::<u64>()) {
            let x = [InputKind::General.sample([b, c, h, w], seed)];
            check(&x, |g, v| Ok(shift2d(g, v[0], dy, dx)), seed)?;
        }
    }

    /// `x[1:, 1:]` zero-padded back to 3 × 3, entry by entry.
    #[test]
    fn shift_by_one_pixel_crops_the_first_row_and_column_and_pads_zeros() {
        // Column-major 3 × 3: x[r, c] = 10 r + c.
        let data: Vec<f64> = (0..9).map(|k| (10 * (k % 3) + k / 3) as f64).collect();
        let mut g = Graph::new();
        let x = g.constant(Tensor::from_vec([1, 1, 3, 3], data).unwrap());
        let y = shift2d(&mut g, x, 1, 1);
        let m = g.value(y).mat(0);
        for r in 0..3 {
            for c in 0..3 {
                let expected = if r < 2 && c < 2 {
                    (10 * (r + 1) + c + 1) as f64
                } else {
                    0.0
                };
                assert_eq!(m[(r, c)], expected, "({r}, {c})");
            }
        }
    }
}
