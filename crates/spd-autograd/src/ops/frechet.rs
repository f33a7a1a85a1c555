//! Fréchet means on the tape: the weighted Fréchet mean (wFM) of SPDNetNAS's mixed
//! edges and the batch barycentre of Riemannian batch norm, both as `k` Karcher steps from the
//! arithmetic mean:
//!
//! `M₀ = Σ_k w_k X_k`, then `k` times: `T = Σ_k w_k log(M^{-1/2} X_k M^{-1/2})`,
//! `M ← M^{1/2} exp(T) M^{1/2}`.
//!
//! They are composed of taped primitives, so they are differentiable in the matrices and in
//! the weights; `steps = 1` is the paper's setting (D20).

use crate::error::{Result, shape_err};
use crate::graph::{Graph, Var};
use spd_linalg::spectral::{InvSqrt, Log, Sqrt};

use crate::ops::arith::{mean_all, scale, weighted_sum};
use crate::ops::congruence::congruence;
use crate::ops::eig::{eig_fn_keep, eig_fn_reuse, exp_eig, log_eig, sqrt_and_inv_sqrt};

/// One Karcher step from `m` towards the weighted mean of `xs` (weights `w` of
/// [`weighted_sum`]'s shape). For an operand known to be the identity,
/// `log(M^{-1/2} I M^{-1/2}) = −log M` comes from the decomposition of `M` already made for
/// `M^{±1/2}`, saving one EVD per matrix.
fn karcher_step(g: &mut Graph, m: Var, xs: &[Var], w: Var, identity: &[bool]) -> Result<Var> {
    let (s, d) = eig_fn_keep(g, m, Sqrt)?;
    let is = eig_fn_reuse(g, &d, InvSqrt)?;
    let mut logs = Vec::with_capacity(xs.len());
    let mut neg_log_m = None;
    for (x, &id) in xs.iter().zip(identity) {
        if id {
            let l = match neg_log_m {
                Some(l) => l,
                None => {
                    let log_m = eig_fn_reuse(g, &d, Log)?;
                    *neg_log_m.insert(scale(g, log_m, -1.0))
                }
            };
            logs.push(l);
        } else {
            let c = congruence(g, is, *x)?;
            logs.push(log_eig(g, c)?);
        }
    }
    let t = weighted_sum(g, &logs, w)?;
    let e = exp_eig(g, t)?;
    congruence(g, s, e)
}

/// Weighted Fréchet mean, per sample and channel, of tensors `xs` (one shape `[B, C, n, n]`)
/// with weights `w: [1, 1|C, 1, K]` on the simplex, by `steps` Karcher steps.
pub fn weighted_frechet_mean(g: &mut Graph, xs: &[Var], w: Var, steps: usize) -> Result<Var> {
    weighted_frechet_mean_flagged(g, xs, w, steps, &vec![false; xs.len()])
}

/// [`weighted_frechet_mean`] where `identity[k]` says operand `k` is the identity matrix (the
/// `none` candidate of a mixed edge), which spares its logarithm's EVD.
pub fn weighted_frechet_mean_flagged(
    g: &mut Graph,
    xs: &[Var],
    w: Var,
    steps: usize,
    identity: &[bool],
) -> Result<Var> {
    if identity.len() != xs.len() {
        return Err(shape_err("Fréchet mean", "one identity flag per operand"));
    }
    let mut m = weighted_sum(g, xs, w)?;
    for _ in 0..steps {
        m = karcher_step(g, m, xs, w, identity)?;
    }
    Ok(m)
}

/// Unweighted Fréchet mean of tensors of one shape (a node merging its incoming edges).
pub fn frechet_mean(g: &mut Graph, xs: &[Var], steps: usize) -> Result<Var> {
    if xs.is_empty() {
        return Err(shape_err("Fréchet mean", "no operands"));
    }
    let k = xs.len();
    let w = g.constant(crate::Tensor::from_vec(
        [1, 1, 1, k],
        vec![1.0 / k as f64; k],
    )?);
    weighted_frechet_mean(g, xs, w, steps)
}

/// Barycentre of all `B·C` matrices of `x` (one mean for the whole batch, as Brooks et al.'s
/// batch norm), `[1, 1, n, n]`, by `steps` Karcher steps from the arithmetic mean.
pub fn batch_barycenter(g: &mut Graph, x: Var, steps: usize) -> Result<Var> {
    let mut m = mean_all(g, x)?;
    for _ in 0..steps {
        let (s, is) = sqrt_and_inv_sqrt(g, m)?;
        let c = congruence(g, is, x)?;
        let l = log_eig(g, c)?;
        let t = mean_all(g, l)?;
        let e = exp_eig(g, t)?;
        m = congruence(g, s, e)?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;
    use spd_linalg::{KarcherOptions, karcher_mean};

    proptest! {
        #![proptest_config(config())]

        /// Gradients in every matrix and in the weights, for 1 and 2 Karcher steps.
        #[test]
        fn wfm_gradients(b in 1usize..3, c in 1usize..3, n in 1usize..6, k in 1usize..4, steps in 1usize..3, seed in any::<u64>()) {
            let mut inputs: Vec<_> = (0..k).map(|i| InputKind::Spd.sample([b, c, n, n], seed + i as u64)).collect();
            let mut w = InputKind::Positive.sample([1, 1, 1, k], seed ^ 7);
            let total: f64 = w.value.data().iter().sum();
            w.value = w.value.scaled(1.0 / total);
            inputs.push(w);
            check(&inputs, |g, v| weighted_frechet_mean(g, &v[..k], v[k], steps), seed)?;
        }

        /// With identity operands flagged, the value equals the unflagged computation and the
        /// gradients (through `−log M`) pass the finite-difference check.
        #[test]
        fn flagged_identity_operands(b in 1usize..3, n in 1usize..5, seed in any::<u64>()) {
            let x = InputKind::Spd.sample([b, 1, n, n], seed);
            let mut w = InputKind::Positive.sample([1, 1, 1, 3], seed ^ 1);
            let total: f64 = w.value.data().iter().sum();
            w.value = w.value.scaled(1.0 / total);
            let id = Tensor::identities(b, 1, n);
            let build = |g: &mut Graph, v: &[Var], flag: bool| {
                let i = g.constant(id.clone());
                weighted_frechet_mean_flagged(g, &[v[0], i, v[0]], v[1], 1, &[false, flag, false])
            };
            let mut g = Graph::new();
            let (xv, wv) = (g.constant(x.value.clone()), g.constant(w.value.clone()));
            let a = build(&mut g, &[xv, wv], true)?;
            let b2 = build(&mut g, &[xv, wv], false)?;
            let diff = g.value(a).data().iter().zip(g.value(b2).data()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            prop_assert!(diff <= 1e-10 * g.value(b2).norm_sq().sqrt().max(1.0), "{diff}");
            check(&[x, w], |g, v| build(g, v, true), seed)?;
        }

        #[test]
        fn barycenter_gradients(b in 1usize..4, c in 1usize..3, n in 1usize..6, seed in any::<u64>()) {
            let x = [InputKind::Spd.sample([b, c, n, n], seed)];
            check(&x, |g, v| batch_barycenter(g, v[0], 1), seed)?;
        }
    }

    /// Many Karcher steps on the tape converge to spd-linalg's Karcher mean.
    #[test]
    fn iterated_wfm_matches_the_karcher_mean() {
        let mats: Vec<Tensor> = (0..3)
            .map(|i| InputKind::Spd.sample([1, 1, 4, 4], 40 + i).value)
            .collect();
        let w = [0.2, 0.5, 0.3];
        let mut g = Graph::new();
        let vars: Vec<Var> = mats.iter().map(|m| g.constant(m.clone())).collect();
        let wv = g.constant(Tensor::from_vec([1, 1, 1, 3], w.to_vec()).unwrap());
        let m = weighted_frechet_mean(&mut g, &vars, wv, 30).unwrap();
        let views: Vec<_> = mats.iter().map(|t| t.mat(0)).collect();
        let reference = karcher_mean(&views, Some(&w), KarcherOptions::default()).unwrap();
        let diff = (g.value(m).mat(0).to_owned() - &reference.mean).norm_l2();
        assert!(diff < 1e-9 * reference.mean.norm_l2(), "{diff}");
    }
}
