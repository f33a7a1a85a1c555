//! Euclidean batch normalisation of images (PyTorch's `BatchNorm2d`): per channel, over the
//! batch and all pixels. Training mode normalises by the batch statistics and returns them (the
//! layer, [`crate::euclid::BatchNorm2d`], turns them into running-statistics updates); eval mode
//! normalises by given running statistics. The optional affine map `γ x̂ + β` takes
//! `γ, β: [1, C, 1, 1]`.
//!
//! Per-channel sums run in parallel over channels, each summed sequentially in (sample, pixel)
//! order, so results are bit-identical for any number of threads.

use rayon::prelude::*;

use crate::error::{AutogradError, Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

/// Per-channel statistics of a training-mode batch norm.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    /// Mean of every channel over `B·H·W` values.
    pub mean: Vec<f64>,
    /// Biased variance (divided by `B·H·W`) of every channel, the one the batch is normalised
    /// by.
    pub var: Vec<f64>,
    /// Values per channel, `B·H·W`.
    pub count: usize,
}

impl BatchStats {
    /// Unbiased variance `var · N/(N−1)` (what PyTorch's running variance tracks); `None`
    /// from a single value per channel, which says nothing of the variance.
    pub fn unbiased_var(&self) -> Option<Vec<f64>> {
        let n = self.count as f64;
        (self.count > 1).then(|| self.var.iter().map(|v| v * n / (n - 1.0)).collect())
    }
}

/// Plane `(sample, channel)` of `t`.
fn plane(t: &Tensor, sample: usize, channel: usize) -> &[f64] {
    let len = t.matrix_len();
    let start = (sample * t.channels() + channel) * len;
    &t.data()[start..start + len]
}

/// The affine parameters' values, checked to be `[1, C, 1, 1]`.
fn affine_values(
    g: &Graph,
    affine: Option<(Var, Var)>,
    c: usize,
) -> Result<Option<(&[f64], &[f64])>> {
    let Some((gamma, beta)) = affine else {
        return Ok(None);
    };
    let (gv, bv) = (g.value(gamma), g.value(beta));
    for t in [gv, bv] {
        if t.shape() != [1, c, 1, 1] {
            return Err(shape_err(
                "batch norm 2d",
                format!("affine parameter {:?}, expected [1, {c}, 1, 1]", t.shape()),
            ));
        }
    }
    Ok(Some((gv.data(), bv.data())))
}

struct BatchNorm2d {
    /// Mean the input was centred by (batch or running).
    mean: Vec<f64>,
    /// `1/√(var + ε)` it was scaled by.
    inv_std: Vec<f64>,
    /// Training mode: the statistics depend on the input.
    training: bool,
    affine: bool,
}

/// Writes `y = (x − μ_c) s_c γ_c + β_c` (`γ = 1, β = 0` without affine) for every plane.
fn normalise(
    x: &Tensor,
    mean: &[f64],
    inv_std: &[f64],
    affine: Option<(&[f64], &[f64])>,
) -> Tensor {
    let c = x.channels();
    let len = x.matrix_len();
    let mut out = Tensor::zeros(x.shape());
    if len == 0 {
        return out;
    }
    out.data_mut()
        .par_chunks_mut(len)
        .zip(x.data().par_chunks(len))
        .enumerate()
        .for_each(|(k, (y, xs))| {
            let ch = k % c;
            let (gamma, beta) = affine.map_or((1.0, 0.0), |(g, b)| (g[ch], b[ch]));
            let (m, s) = (mean[ch], inv_std[ch]);
            for (y, x) in y.iter_mut().zip(xs) {
                *y = (x - m) * s * gamma + beta;
            }
        });
    out
}

fn check_eps(eps: f64) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(AutogradError::Invalid(format!(
            "batch norm 2d: eps must be finite and ≥ 0, got {eps}"
        )))
    }
}

/// Training-mode batch norm: `x̂ = (x − μ_c)/√(σ²_c + ε)` with the mean and biased variance of
/// channel `c` over the batch and all pixels, then `γ_c x̂ + β_c` if `affine = Some((γ, β))`.
/// Returns the output and the batch statistics. A single value per channel (one sample of a
/// 1×1 map: the last batch of an epoch on small inputs) normalises to `x̂ = 0` (output `β`,
/// no gradient to `x`) where PyTorch refuses; it needs `ε > 0`.
pub fn batch_norm2d_train(
    g: &mut Graph,
    x: Var,
    affine: Option<(Var, Var)>,
    eps: f64,
) -> Result<(Var, BatchStats)> {
    check_eps(eps)?;
    let xv = g.value(x);
    let [b, c, h, w] = xv.shape();
    let count = b * h * w;
    if count == 0 || (count == 1 && eps == 0.0) {
        return Err(AutogradError::Invalid(format!(
            "batch norm 2d: training needs two values per channel, or one with eps > 0; got \
             input {:?} and eps {eps}",
            xv.shape()
        )));
    }
    let aff = affine_values(g, affine, c)?;
    let n = count as f64;
    let stats: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let total: f64 = (0..b).map(|s| plane(xv, s, ch).iter().sum::<f64>()).sum();
            let mean = total / n;
            let sq: f64 = (0..b)
                .map(|s| {
                    plane(xv, s, ch)
                        .iter()
                        .map(|v| (v - mean) * (v - mean))
                        .sum::<f64>()
                })
                .sum();
            (mean, sq / n)
        })
        .collect();
    let mean: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let var: Vec<f64> = stats.iter().map(|s| s.1).collect();
    #[cfg(test)]
    variance_log::record(&var);
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let out = normalise(xv, &mean, &inv_std, aff);
    let rule = BatchNorm2d {
        mean: mean.clone(),
        inv_std,
        training: true,
        affine: affine.is_some(),
    };
    let mut parents = vec![x];
    parents.extend(affine.into_iter().flat_map(|(g, b)| [g, b]));
    let y = g.push(out, parents, Box::new(rule));
    Ok((y, BatchStats { mean, var, count }))
}

/// Eval-mode batch norm: `x̂ = (x − m_c)/√(v_c + ε)` with given running mean `m` and variance
/// `v` (`[1, C, 1, 1]` each), then the affine map if any.
pub fn batch_norm2d_eval(
    g: &mut Graph,
    x: Var,
    running_mean: &Tensor,
    running_var: &Tensor,
    affine: Option<(Var, Var)>,
    eps: f64,
) -> Result<Var> {
    check_eps(eps)?;
    let xv = g.value(x);
    let c = xv.channels();
    for t in [running_mean, running_var] {
        if t.shape() != [1, c, 1, 1] {
            return Err(shape_err(
                "batch norm 2d",
                format!(
                    "running statistics {:?}, expected [1, {c}, 1, 1]",
                    t.shape()
                ),
            ));
        }
    }
    if running_var
        .data()
        .iter()
        .any(|v| v + eps <= 0.0 || v.is_nan())
    {
        return Err(AutogradError::Invalid(
            "batch norm 2d: running variance + eps must be positive".into(),
        ));
    }
    let aff = affine_values(g, affine, c)?;
    let mean = running_mean.data().to_vec();
    let inv_std: Vec<f64> = running_var
        .data()
        .iter()
        .map(|v| 1.0 / (v + eps).sqrt())
        .collect();
    let out = normalise(xv, &mean, &inv_std, aff);
    let rule = BatchNorm2d {
        mean,
        inv_std,
        training: false,
        affine: affine.is_some(),
    };
    let mut parents = vec![x];
    parents.extend(affine.into_iter().flat_map(|(g, b)| [g, b]));
    Ok(g.push(out, parents, Box::new(rule)))
}

impl Backward for BatchNorm2d {
    /// With `x̂ = (x − μ) s` and `dx̂ = γ dy`: `dβ_c = Σ dy`, `dγ_c = Σ dy x̂`; in eval mode
    /// `dx = s dx̂`, in training mode (μ and s depend on x)
    /// `dx = s (dx̂ − mean(dx̂) − x̂ mean(dx̂ x̂))`.
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let xv = ctx.inputs[0];
        let [_, c, _, _] = xv.shape();
        let len = xv.matrix_len();
        let gamma = self.affine.then(|| ctx.inputs[1].data());
        // Σ dy and Σ dy x̂ per channel, in (sample, pixel) order.
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (m, s) = (self.mean[ch], self.inv_std[ch]);
                let (mut sum_dy, mut sum_dy_xhat) = (0.0, 0.0);
                for sample in 0..xv.batch() {
                    for (x, dy) in plane(xv, sample, ch).iter().zip(plane(grad, sample, ch)) {
                        sum_dy += dy;
                        sum_dy_xhat += dy * (x - m) * s;
                    }
                }
                (sum_dy, sum_dy_xhat)
            })
            .collect();
        let dx = ctx.needs[0].then(|| {
            let n = (xv.batch() * len) as f64;
            let mut d = Tensor::zeros(xv.shape());
            if len > 0 {
                d.data_mut()
                    .par_chunks_mut(len)
                    .zip(xv.data().par_chunks(len))
                    .zip(grad.data().par_chunks(len))
                    .enumerate()
                    .for_each(|(k, ((d, xs), gs))| {
                        let ch = k % c;
                        let (m, s) = (self.mean[ch], self.inv_std[ch]);
                        let gm = gamma.map_or(1.0, |g| g[ch]);
                        if self.training {
                            let (mean_dy, mean_dy_xhat) = (sums[ch].0 / n, sums[ch].1 / n);
                            for ((d, x), dy) in d.iter_mut().zip(xs).zip(gs) {
                                let xhat = (x - m) * s;
                                *d = gm * s * (dy - mean_dy - xhat * mean_dy_xhat);
                            }
                        } else {
                            for (d, dy) in d.iter_mut().zip(gs) {
                                *d = gm * s * dy;
                            }
                        }
                    });
            }
            d
        });
        let mut out = vec![dx];
        if self.affine {
            let channel_tensor = |f: fn(&(f64, f64)) -> f64| {
                Tensor::from_vec([1, c, 1, 1], sums.iter().map(f).collect())
                    .expect("one value per channel")
            };
            out.push(ctx.needs[1].then(|| channel_tensor(|s| s.1)));
            out.push(ctx.needs[2].then(|| channel_tensor(|s| s.0)));
        }
        Ok(out)
    }
}

/// Test support: the smallest channel variance a training-mode batch norm saw on this thread,
/// so that a finite-difference check of a composite can tell whether it ran where the
/// normalisation bends on the scale of `√ε`.
#[cfg(test)]
pub(crate) mod variance_log {
    use std::cell::Cell;

    thread_local! {
        static MIN: Cell<Option<f64>> = const { Cell::new(None) };
    }

    /// Starts (or restarts) logging on this thread.
    pub(crate) fn start() {
        MIN.with(|m| m.set(Some(f64::INFINITY)));
    }

    /// Stops logging and returns the smallest variance since [`start`] (∞ if none).
    pub(crate) fn take() -> f64 {
        MIN.with(|m| m.take().unwrap_or(f64::INFINITY))
    }

    pub(super) fn record(var: &[f64]) {
        MIN.with(|m| {
            if let Some(min) = m.get() {
                m.set(Some(var.iter().fold(min, |a, &v| a.min(v))));
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

        /// Training-mode backward against finite differences, in the input and (when affine)
        /// in γ and β, with at least 4 values per channel. The loss is smooth (ε = 1e-5 keeps
        /// it so even for tiny variances; Gaussian inputs have variance ~1), so the check's
        /// default 1e-6 relative tolerance applies.
        #[test]
        fn batch_norm_train_gradients_in_input_gamma_beta(b in 1usize..4, c in 1usize..4, h in 1usize..5, w in 1usize..5, affine in any::<bool>(), seed in any::<u64>()) {
            prop_assume!(b * h * w >= 4);
            let mut inputs = vec![InputKind::General.sample([b, c, h, w], seed)];
            if affine {
                inputs.push(InputKind::General.sample([1, c, 1, 1], seed ^ 1));
                inputs.push(InputKind::General.sample([1, c, 1, 1], seed ^ 2));
            }
            check(&inputs, |g, v| {
                let aff = (v.len() == 3).then(|| (v[1], v[2]));
                Ok(batch_norm2d_train(g, v[0], aff, 1e-5)?.0)
            }, seed)?;
        }

        /// Eval-mode backward (an affine map per channel) against finite differences.
        #[test]
        fn batch_norm_eval_gradients_in_input_gamma_beta(b in 1usize..3, c in 1usize..4, h in 1usize..5, w in 1usize..5, seed in any::<u64>()) {
            let inputs = [
                InputKind::General.sample([b, c, h, w], seed),
                InputKind::General.sample([1, c, 1, 1], seed ^ 1),
                InputKind::General.sample([1, c, 1, 1], seed ^ 2),
            ];
            let mean = InputKind::General.sample([1, c, 1, 1], seed ^ 3).value;
            let var = InputKind::Positive.sample([1, c, 1, 1], seed ^ 4).value;
            check(&inputs, |g, v| batch_norm2d_eval(g, v[0], &mean, &var, Some((v[1], v[2])), 1e-5), seed)?;
        }

        /// Training mode: every output channel has mean 0 and (biased) variance
        /// `σ²/(σ² + ε)` over batch and pixels, to rounding (1e-12: sums of ≤ 75 values of
        /// size ~1); the returned statistics are the input's.
        #[test]
        fn batch_norm_train_output_is_standardised(b in 1usize..4, c in 1usize..4, h in 1usize..6, w in 1usize..6, seed in any::<u64>()) {
            prop_assume!(b * h * w >= 2);
            let x = InputKind::General.sample([b, c, h, w], seed).value;
            let mut g = Graph::new();
            let xv = g.constant(x.clone());
            let (y, stats) = batch_norm2d_train(&mut g, xv, None, 1e-5).unwrap();
            let y = g.value(y);
            let n = (b * h * w) as f64;
            for ch in 0..c {
                let vals = |t: &Tensor| -> Vec<f64> {
                    (0..b).flat_map(|s| plane(t, s, ch).to_vec()).collect()
                };
                let (xs, ys) = (vals(&x), vals(y));
                let xm = xs.iter().sum::<f64>() / n;
                let xvar = xs.iter().map(|v| (v - xm).powi(2)).sum::<f64>() / n;
                prop_assert!((stats.mean[ch] - xm).abs() <= 1e-12);
                prop_assert!((stats.var[ch] - xvar).abs() <= 1e-12 * (1.0 + xvar));
                let ym = ys.iter().sum::<f64>() / n;
                let yvar = ys.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / n;
                prop_assert!(ym.abs() <= 1e-12, "mean {ym:e}");
                prop_assert!((yvar - xvar / (xvar + 1e-5)).abs() <= 1e-12, "variance {yvar}");
            }
        }
    }

    /// One value per channel normalises to `β` with a zero input gradient and no unbiased
    /// variance (ε > 0); with ε = 0, or no value at all, it is refused; so are affine
    /// parameters and running statistics of the wrong channel count.
    #[test]
    fn a_single_value_per_channel_gives_beta_and_bad_shapes_are_refused() {
        let mut g = Graph::new();
        let x = g.leaf(Tensor::from_vec([1, 2, 1, 1], vec![3.0, -7.0]).unwrap());
        let gamma = g.leaf(Tensor::from_vec([1, 2, 1, 1], vec![2.0, 0.5]).unwrap());
        let beta = g.leaf(Tensor::from_vec([1, 2, 1, 1], vec![0.25, -1.0]).unwrap());
        let (y, stats) = batch_norm2d_train(&mut g, x, Some((gamma, beta)), 1e-5).unwrap();
        assert_eq!(g.value(y).data(), &[0.25, -1.0]);
        assert_eq!(stats.unbiased_var(), None);
        let loss = crate::ops::arith::dot_const(
            &mut g,
            y,
            &Tensor::from_vec([1, 2, 1, 1], vec![1.5, -2.0]).unwrap(),
        )
        .unwrap();
        let grads = g.backward(loss).unwrap();
        assert_eq!(grads.wrt(x).unwrap().data(), &[0.0, 0.0]);
        assert_eq!(grads.wrt(beta).unwrap().data(), &[1.5, -2.0]);

        let one = g.constant(Tensor::zeros([1, 2, 1, 1]));
        assert!(batch_norm2d_train(&mut g, one, None, 0.0).is_err());
        let none = g.constant(Tensor::zeros([0, 2, 1, 1]));
        assert!(batch_norm2d_train(&mut g, none, None, 1e-5).is_err());
        let x = g.constant(Tensor::zeros([2, 2, 1, 1]));
        let gamma = g.constant(Tensor::zeros([1, 3, 1, 1]));
        assert!(batch_norm2d_train(&mut g, x, Some((gamma, gamma)), 1e-5).is_err());
        let stats = Tensor::zeros([1, 3, 1, 1]);
        assert!(batch_norm2d_eval(&mut g, x, &stats, &stats, None, 1e-5).is_err());
    }
}
