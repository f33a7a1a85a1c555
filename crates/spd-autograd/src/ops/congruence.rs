//! Congruence `Y = A X Aᵀ` and matrix product `Y = A B`, with `A` broadcast over batch and/or
//! channels (e.g. one batch mean whitening every sample).

use faer::Mat;
use faer::reborrow::ReborrowMut;
use spd_linalg::dense::{mm, mm_into, symmetrize, symmetrize_in_place, symmetrize_into};

use super::{broadcast_index, check_broadcast, par_fill, par_fill_with};
use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

/// Sums `f(k)` over the output matrices `k` that use operand matrix `target` (fixed order).
fn reduce_broadcast(
    out_shape: [usize; 4],
    op_shape: [usize; 4],
    target: usize,
    f: impl Fn(usize) -> Mat<f64>,
) -> Option<Mat<f64>> {
    let [b, c, _, _] = out_shape;
    let mut acc: Option<Mat<f64>> = None;
    for bi in 0..b {
        for ci in 0..c {
            if broadcast_index(bi, ci, op_shape[0], op_shape[1]) == target {
                let t = f(bi * c + ci);
                acc = Some(match acc {
                    Some(a) => a + t,
                    None => t,
                });
            }
        }
    }
    acc
}

fn reduce_into(dst: &mut Tensor, out_shape: [usize; 4], f: impl Fn(usize) -> Mat<f64> + Sync) {
    let op_shape = dst.shape();
    par_fill(dst, |target, mut y| {
        if let Some(m) = reduce_broadcast(out_shape, op_shape, target, &f) {
            y.copy_from(&m);
        }
    });
}

struct CongruenceBackward;

/// `Y_bc = sym(A X_bc Aᵀ)` with `a: [B|1, C|1, m, n]`, `x: [B, C, n, n]` → `[B, C, m, m]`.
pub fn congruence(g: &mut Graph, a: Var, x: Var) -> Result<Var> {
    let (av, xv) = (g.value(a), g.value(x));
    let [b, c, n, n2] = xv.shape();
    if n != n2 || av.cols() != n {
        return Err(shape_err(
            "congruence",
            format!("A {:?}, X {:?}", av.shape(), xv.shape()),
        ));
    }
    check_broadcast("congruence", av.shape(), b, c)?;
    let m = av.rows();
    let mut out = Tensor::zeros([b, c, m, m]);
    let [ab, ac, _, _] = av.shape();
    par_fill_with(
        &mut out,
        || Mat::<f64>::zeros(m, n),
        |ax, k, mut y| {
            let ak = av.mat(broadcast_index(k / c, k % c, ab, ac));
            mm_into(ax.as_mut(), ak, xv.mat(k));
            faer::linalg::matmul::matmul(
                y.rb_mut(),
                faer::Accum::Replace,
                ax.as_ref(),
                ak.transpose(),
                1.0,
                faer::Par::Seq,
            );
            symmetrize_in_place(y);
        },
    );
    Ok(g.push(out, vec![a, x], Box::new(CongruenceBackward)))
}

impl Backward for CongruenceBackward {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (av, xv) = (ctx.inputs[0], ctx.inputs[1]);
        let [_, c, _, _] = xv.shape();
        let [ab, ac, _, _] = av.shape();
        let gs = |k: usize| symmetrize(grad.mat(k));
        let (m, n) = (av.rows(), av.cols());
        let da = ctx.needs[0].then(|| {
            // d⟨G, A X Aᵀ⟩/dA = sym(G) A (X + Xᵀ) = 2 sym(G) A sym(X)
            let mut da = Tensor::zeros(av.shape());
            if [ab, ac] == [xv.batch(), c] {
                // one A per matrix: no reduction, per-thread scratch
                par_fill_with(
                    &mut da,
                    || (Mat::zeros(m, m), Mat::zeros(m, n), Mat::zeros(n, n)),
                    |(sg, ga, sx), k, y| {
                        symmetrize_into(sg.as_mut(), grad.mat(k));
                        mm_into(ga.as_mut(), sg.as_ref(), av.mat(k));
                        symmetrize_into(sx.as_mut(), xv.mat(k));
                        faer::linalg::matmul::matmul(
                            y,
                            faer::Accum::Replace,
                            ga.as_ref(),
                            sx.as_ref(),
                            2.0,
                            faer::Par::Seq,
                        );
                    },
                );
            } else {
                reduce_into(&mut da, grad.shape(), |k| {
                    let ak = av.mat(broadcast_index(k / c, k % c, ab, ac));
                    let x2 = xv.mat(k).to_owned() + xv.mat(k).transpose();
                    mm(mm(gs(k).as_ref(), ak).as_ref(), x2.as_ref())
                });
            }
            da
        });
        let dx = ctx.needs[1].then(|| {
            let mut dx = Tensor::zeros(xv.shape());
            par_fill_with(
                &mut dx,
                || (Mat::<f64>::zeros(m, m), Mat::<f64>::zeros(m, n)),
                |(sg, ga), k, mut y| {
                    let ak = av.mat(broadcast_index(k / c, k % c, ab, ac));
                    symmetrize_into(sg.as_mut(), grad.mat(k));
                    mm_into(ga.as_mut(), sg.as_ref(), ak);
                    faer::linalg::matmul::matmul(
                        y.rb_mut(),
                        faer::Accum::Replace,
                        ak.transpose(),
                        ga.as_ref(),
                        1.0,
                        faer::Par::Seq,
                    );
                },
            );
            dx
        });
        Ok(vec![da, dx])
    }
}

struct MatmulBackward;

/// `Y_bc = A_bc B_bc` with either operand broadcast over batch and/or channels.
pub fn matmul(g: &mut Graph, a: Var, b: Var) -> Result<Var> {
    let (av, bv) = (g.value(a), g.value(b));
    if av.cols() != bv.rows() {
        return Err(shape_err(
            "matmul",
            format!("{:?} × {:?}", av.shape(), bv.shape()),
        ));
    }
    let batch = av.batch().max(bv.batch());
    let chans = av.channels().max(bv.channels());
    check_broadcast("matmul", av.shape(), batch, chans)?;
    check_broadcast("matmul", bv.shape(), batch, chans)?;
    let mut out = Tensor::zeros([batch, chans, av.rows(), bv.cols()]);
    let (sa, sb) = (av.shape(), bv.shape());
    par_fill(&mut out, |k, y| {
        let (bi, ci) = (k / chans, k % chans);
        spd_linalg::dense::mm_into(
            y,
            av.mat(broadcast_index(bi, ci, sa[0], sa[1])),
            bv.mat(broadcast_index(bi, ci, sb[0], sb[1])),
        );
    });
    Ok(g.push(out, vec![a, b], Box::new(MatmulBackward)))
}

impl Backward for MatmulBackward {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (av, bv) = (ctx.inputs[0], ctx.inputs[1]);
        let (sa, sb) = (av.shape(), bv.shape());
        let chans = grad.channels();
        let pick_a = |k: usize| av.mat(broadcast_index(k / chans, k % chans, sa[0], sa[1]));
        let pick_b = |k: usize| bv.mat(broadcast_index(k / chans, k % chans, sb[0], sb[1]));
        let da = ctx.needs[0].then(|| {
            let mut da = Tensor::zeros(sa);
            reduce_into(&mut da, grad.shape(), |k| {
                mm(grad.mat(k), pick_b(k).transpose())
            });
            da
        });
        let db = ctx.needs[1].then(|| {
            let mut db = Tensor::zeros(sb);
            reduce_into(&mut db, grad.shape(), |k| {
                mm(pick_a(k).transpose(), grad.mat(k))
            });
            db
        });
        Ok(vec![da, db])
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
        fn congruence_gradients(b in 1usize..3, c in 1usize..3, n in 1usize..6, m in 1usize..6, bb in any::<bool>(), bc in any::<bool>(), seed in any::<u64>()) {
            let a_shape = [if bb { 1 } else { b }, if bc { 1 } else { c }, m, n];
            let inputs = [InputKind::General.sample(a_shape, seed), InputKind::Spd.sample([b, c, n, n], seed ^ 3)];
            check(&inputs, |g, v| congruence(g, v[0], v[1]), seed)?;
        }

        #[test]
        fn matmul_gradients(b in 1usize..3, c in 1usize..3, r in 1usize..5, k in 1usize..5, s in 1usize..5, ba in any::<bool>(), cb in any::<bool>(), seed in any::<u64>()) {
            let inputs = [
                InputKind::General.sample([if ba { 1 } else { b }, c, r, k], seed),
                InputKind::General.sample([b, if cb { 1 } else { c }, k, s], seed ^ 4),
            ];
            check(&inputs, |g, v| matmul(g, v[0], v[1]), seed)?;
        }
    }
}
