//! BiMap (Huang & Van Gool 2017), multi-channel: `Y_bo = Σ_i W_oiᵀ X_bi W_oi` with
//! `W ∈ R^{C_out × C_in × n × m}` (each slice on `St(n, m)` when used as a layer).

use faer::Mat;
use faer::reborrow::ReborrowMut;
use spd_linalg::dense::{mm, symmetrize_in_place};

use super::{check_square, par_fill};
use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

struct BiMapBackward;

/// `Y_bo = sym(Σ_i W_oiᵀ X_bi W_oi)`; `x: [B, C_in, n, n]`, `w: [C_out, C_in, n, m]` →
/// `[B, C_out, m, m]`. Every input channel must have its slice (no dead slices, D18 in `docs/fidelity.md`).
pub fn bimap(g: &mut Graph, x: Var, w: Var) -> Result<Var> {
    let (xv, wv) = (g.value(x), g.value(w));
    let n = check_square("bimap", xv)?;
    let [co, ci, wn, m] = wv.shape();
    if ci != xv.channels() || wn != n {
        return Err(shape_err(
            "bimap",
            format!("input {:?} with weight {:?}", xv.shape(), wv.shape()),
        ));
    }
    let b = xv.batch();
    let mut out = Tensor::zeros([b, co, m, m]);
    par_fill(&mut out, |k, mut y| {
        let (bi, o) = (k / co, k % co);
        for i in 0..ci {
            let wo = wv.mat(o * ci + i);
            let xw = mm(xv.mat(bi * ci + i), wo);
            faer::linalg::matmul::matmul(
                y.rb_mut(),
                faer::Accum::Add,
                wo.transpose(),
                xw.as_ref(),
                1.0,
                faer::Par::Seq,
            );
        }
        symmetrize_in_place(y);
    });
    Ok(g.push(out, vec![x, w], Box::new(BiMapBackward)))
}

fn sym(m: faer::MatRef<'_, f64>) -> Mat<f64> {
    spd_linalg::symmetrize(m)
}

impl Backward for BiMapBackward {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (xv, wv) = (ctx.inputs[0], ctx.inputs[1]);
        let [co, ci, n, _m] = wv.shape();
        let b = xv.batch();
        let dx = ctx.needs[0].then(|| {
            let mut dx = Tensor::zeros(xv.shape());
            par_fill(&mut dx, |k, mut out| {
                let (bi, i) = (k / ci, k % ci);
                for o in 0..co {
                    let wo = wv.mat(o * ci + i);
                    let gw = mm(sym(grad.mat(bi * co + o)).as_ref(), wo.transpose());
                    faer::linalg::matmul::matmul(
                        out.rb_mut(),
                        faer::Accum::Add,
                        wo,
                        gw.as_ref(),
                        1.0,
                        faer::Par::Seq,
                    );
                }
            });
            dx
        });
        let dw = ctx.needs[1].then(|| {
            let mut dw = Tensor::zeros(wv.shape());
            par_fill(&mut dw, |k, mut out| {
                let (o, i) = (k / ci, k % ci);
                let wo = wv.mat(o * ci + i);
                // d⟨G, WᵀXW⟩/dW = (X + Xᵀ) W sym(G), summed over the batch in order.
                let mut acc = Mat::<f64>::zeros(n, wo.ncols());
                for s in 0..b {
                    let xs = xv.mat(s * ci + i);
                    let x2 = xs.to_owned() + xs.transpose();
                    let xw = mm(x2.as_ref(), wo);
                    acc += mm(xw.as_ref(), sym(grad.mat(s * co + o)).as_ref());
                }
                out.copy_from(&acc);
            });
            dw
        });
        Ok(vec![dx, dw])
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
        fn bimap_gradients(b in 1usize..4, ci in 1usize..4, co in 1usize..4, n in 1usize..7, m_frac in 0.0f64..1.0, seed in any::<u64>()) {
            let m = 1 + ((n - 1) as f64 * m_frac) as usize;
            let inputs = [InputKind::Spd.sample([b, ci, n, n], seed), InputKind::Stiefel.sample([co, ci, n, m], seed ^ 1)];
            check(&inputs, |g, v| bimap(g, v[0], v[1]), seed)?;
        }
    }

    #[test]
    fn rejects_dead_slices() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::identities(2, 1, 3));
        let w = g.constant(Tensor::zeros([1, 2, 3, 2]));
        assert!(bimap(&mut g, x, w).is_err());
    }
}
