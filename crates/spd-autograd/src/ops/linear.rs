//! Affine map `y = W x + b` of vectors: `x: [B, 1, 1, D]`, `W: [1, 1, K, D]`, `b: [1, 1, 1, K]`.

use faer::{Accum, Mat, MatRef, Par};

use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

struct LinearBackward;

fn rows(t: &Tensor) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(t.data(), t.batch(), t.cols())
}

fn to_tensor(m: &Mat<f64>, shape: [usize; 4]) -> Tensor {
    let mut data = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            data.push(m[(i, j)]);
        }
    }
    Tensor::from_vec(shape, data).expect("sizes match by construction")
}

/// `Y = X Wᵀ + 1 bᵀ` for a batch of row vectors.
pub fn linear(g: &mut Graph, x: Var, w: Var, b: Var) -> Result<Var> {
    let (xv, wv, bv) = (g.value(x), g.value(w), g.value(b));
    let [bs, c, r, d] = xv.shape();
    let [w1, w2, k, wd] = wv.shape();
    if c != 1 || r != 1 || (w1, w2) != (1, 1) || wd != d || bv.shape() != [1, 1, 1, k] {
        return Err(shape_err(
            "linear",
            format!("x {:?}, W {:?}, b {:?}", xv.shape(), wv.shape(), bv.shape()),
        ));
    }
    let mut y = Mat::<f64>::zeros(bs, k);
    for i in 0..bs {
        for j in 0..k {
            y[(i, j)] = bv.data()[j];
        }
    }
    faer::linalg::matmul::matmul(
        y.as_mut(),
        Accum::Add,
        rows(xv),
        wv.mat(0).transpose(),
        1.0,
        Par::Seq,
    );
    let out = to_tensor(&y, [bs, 1, 1, k]);
    Ok(g.push(out, vec![x, w, b], Box::new(LinearBackward)))
}

impl Backward for LinearBackward {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (xv, wv) = (ctx.inputs[0], ctx.inputs[1]);
        let gm = rows(grad);
        let dx = ctx.needs[0].then(|| {
            let mut m = Mat::<f64>::zeros(xv.batch(), xv.cols());
            faer::linalg::matmul::matmul(m.as_mut(), Accum::Replace, gm, wv.mat(0), 1.0, Par::Seq);
            to_tensor(&m, xv.shape())
        });
        let dw = ctx.needs[1].then(|| {
            let mut m = Mat::<f64>::zeros(wv.rows(), wv.cols());
            faer::linalg::matmul::matmul(
                m.as_mut(),
                Accum::Replace,
                gm.transpose(),
                rows(xv),
                1.0,
                Par::Seq,
            );
            let mut t = Tensor::zeros(wv.shape());
            t.mat_mut(0).copy_from(&m);
            t
        });
        let db = ctx.needs[2].then(|| {
            let k = grad.cols();
            let mut t = Tensor::zeros([1, 1, 1, k]);
            for i in 0..grad.batch() {
                for j in 0..k {
                    t.data_mut()[j] += grad.data()[i * k + j];
                }
            }
            t
        });
        Ok(vec![dx, dw, db])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn linear_gradients(b in 1usize..5, d in 1usize..7, k in 1usize..5, seed in any::<u64>()) {
            let inputs = [
                InputKind::General.sample([b, 1, 1, d], seed),
                InputKind::General.sample([1, 1, k, d], seed ^ 1),
                InputKind::General.sample([1, 1, 1, k], seed ^ 2),
            ];
            check(&inputs, |g, v| linear(g, v[0], v[1], v[2]), seed)?;
        }
    }
}
