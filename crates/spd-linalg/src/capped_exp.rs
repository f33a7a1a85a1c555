//! The matrix exponential with a spectrum-relative floor, for symmetric matrices whose
//! exponential would be too ill-conditioned to stay numerically positive definite:
//!
//! `E(S) = U diag(exp(max(μ_i, μ_max − τ))) Uᵀ`,  so `κ(E(S)) ≤ e^τ`.
//!
//! `exp S` is SPD for every symmetric `S`, but `U e^Λ Uᵀ` in floating point carries an absolute
//! error of about `ε e^{μ_max}`: once the spread `μ_max − μ_min` of `S` exceeds `ln(1/ε) ≈ 36`
//! the smallest eigenvalues of the result are rounding noise and may be negative, and already
//! from `ln(1/√ε) ≈ 18` on, whitening the result by a matrix of similar condition (what a
//! Riemannian batch norm or a Karcher step does next) has a relative error `ε κ²` above one.
//! The floor `μ_max − τ` with `τ = ½ ln(1/ε)` ([`LOG_CONDITION_CAP`]) is the smallest change
//! that keeps every later congruence meaningful; it moves only eigenvalues that are below
//! `√ε · λ_max` of the output, and none at all when the spread is below `τ`.
//!
//! Backward: with the floor `t = μ_max − τ` held fixed this is the spectral function
//! `exp(max(x, t))` (Daleckii–Krein, [`mod@crate::spectral`]); the floor moves with `μ_max`, whose
//! gradient is `u_max u_maxᵀ`, which adds `e^t · Σ_{μ_i ≤ t} (Uᵀ sym(G) U)_ii · u_max u_maxᵀ`.

use faer::reborrow::ReborrowMut;
use faer::{MatMut, MatRef};

use crate::batch::{EighBatch, SpectralBackward, backward_batch, forward_batch};
use crate::error::Result;
use crate::spectral::{Exp, SpectralFn, SpectralWorkspace};

/// `τ = ½ ln(1/ε) = 26 ln 2`: outputs have condition number at most `2²⁶ ≈ 6.7e7`.
pub const LOG_CONDITION_CAP: f64 = 26.0 * std::f64::consts::LN_2;

/// The exponential with the spectrum-relative floor `μ_max − log_condition`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CappedExp {
    /// `τ`: the largest log-condition number of an output.
    pub log_condition: f64,
}

impl Default for CappedExp {
    fn default() -> Self {
        Self {
            log_condition: LOG_CONDITION_CAP,
        }
    }
}

/// `exp(max(x, floor))` for a fixed floor.
#[derive(Debug, Clone, Copy)]
struct FlooredExp(f64);

impl SpectralFn for FlooredExp {
    fn name(&self) -> &'static str {
        "capped exp"
    }
    fn value(&self, x: f64) -> f64 {
        x.max(self.0).exp()
    }
    fn derivative(&self, x: f64) -> f64 {
        if x > self.0 { x.exp() } else { 0.0 }
    }
    fn divided_difference(&self, a: f64, b: f64, fa: f64, fb: f64) -> f64 {
        match (a > self.0, b > self.0) {
            (true, true) => Exp.divided_difference(a, b, fa, fb),
            (false, false) => 0.0,
            _ => (fa - fb) / (a - b),
        }
    }
}

impl CappedExp {
    /// The floor `μ_max − τ` for ascending eigenvalues `values`.
    pub fn floor(&self, values: &[f64]) -> f64 {
        values
            .last()
            .map_or(f64::NEG_INFINITY, |&top| top - self.log_condition)
    }

    /// Decomposes `x` into `values`/`vectors` and writes `E(x)` to `out`.
    pub fn forward_into(
        &self,
        ws: &mut SpectralWorkspace,
        x: MatRef<'_, f64>,
        values: &mut [f64],
        mut vectors: MatMut<'_, f64>,
        out: MatMut<'_, f64>,
    ) -> Result<()> {
        ws.eigh.decompose_into(x, values, Some(vectors.rb_mut()))?;
        ws.apply_into(
            &FlooredExp(self.floor(values)),
            values,
            vectors.as_ref(),
            out,
        );
        Ok(())
    }

    /// `out ← ∂L/∂S` from the saved decomposition and the upstream gradient `grad`.
    pub fn backward_into(
        &self,
        ws: &mut SpectralWorkspace,
        values: &[f64],
        vectors: MatRef<'_, f64>,
        grad: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) {
        ws.backward_into(
            &FlooredExp(self.floor(values)),
            values,
            vectors,
            grad,
            out.rb_mut(),
        );
        self.add_floor_term(values, vectors, grad, out);
    }

    /// The Loewner matrix of `E` at `values`, with `fvals` as scratch (`n` values).
    pub(crate) fn loewner_into(&self, values: &[f64], fvals: &mut [f64], k: MatMut<'_, f64>) {
        let f = FlooredExp(self.floor(values));
        f.values_into(values, fvals);
        crate::spectral::loewner_into(&f, values, fvals, k);
    }

    /// Adds to `out` the part of `∂L/∂S` that flows through the floor `μ_max − τ` into the
    /// floored eigenvalues: `e^{floor} (Σ_{λ_i ≤ floor} u_iᵀ sym(G) u_i) u_n u_nᵀ`.
    pub(crate) fn add_floor_term(
        &self,
        values: &[f64],
        vectors: MatRef<'_, f64>,
        grad: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) {
        let floor = self.floor(values);
        let n = values.len();
        let floored_diagonal: f64 = (0..n)
            .filter(|&i| values[i] <= floor)
            .map(|i| {
                let u = vectors.col(i);
                let mut s = 0.0;
                for q in 0..n {
                    for p in 0..n {
                        s += u[p] * 0.5 * (grad[(p, q)] + grad[(q, p)]) * u[q];
                    }
                }
                s
            })
            .sum();
        if floored_diagonal != 0.0 {
            let c = floor.exp() * floored_diagonal;
            let top = vectors.col(n - 1);
            for q in 0..n {
                for p in 0..n {
                    out[(p, q)] += c * top[p] * top[q];
                }
            }
        }
    }
}

/// `E(S_k)` of every matrix of a batch, in parallel; returns the outputs and the
/// decompositions for [`capped_exp_backward_batch`].
pub fn capped_exp_batch(cap: &CappedExp, data: &[f64], n: usize) -> Result<(Vec<f64>, EighBatch)> {
    forward_batch(
        data,
        n,
        Some(&|values: &[f64], fvals: &mut [f64]| {
            FlooredExp(cap.floor(values)).values_into(values, fvals);
            Ok(())
        }),
    )
}

/// Backward of [`capped_exp_batch`].
pub fn capped_exp_backward_batch(
    cap: &CappedExp,
    eig: &EighBatch,
    grad: &[f64],
) -> Result<Vec<f64>> {
    backward_batch(
        eig,
        grad,
        SpectralBackward {
            loewner: &|values, fvals, k| cap.loewner_into(values, fvals, k),
            correction: Some(&|values, u, g, dx| cap.add_floor_term(values, u, g, dx)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::{distance_frobenius, inner};
    use crate::random::{random_symmetric, seeded_rng, spd_with_spectrum};
    use crate::spectral::expm;
    use crate::test_support::{all_finite, config};
    use faer::Mat;
    use proptest::prelude::*;

    /// A symmetric matrix with spectrum `μ` (ascending) and random eigenvectors.
    fn with_log_spectrum(mu: &[f64], seed: u64) -> Mat<f64> {
        spd_with_spectrum(mu, &mut seeded_rng(seed))
    }

    fn capped(s: &Mat<f64>) -> Mat<f64> {
        let n = s.nrows();
        let data: Vec<f64> = (0..n * n).map(|k| s[(k % n, k / n)]).collect();
        let (out, _) = capped_exp_batch(&CappedExp::default(), &data, n).unwrap();
        Mat::from_fn(n, n, |i, j| out[i + j * n])
    }

    /// Log-spectra: `k` eigenvalues spread over `[0, spread]`, the top one separated.
    fn log_spectrum(n: usize, spread: f64, seed: u64) -> Vec<f64> {
        let mut rng = seeded_rng(seed);
        let mut mu: Vec<f64> = (0..n)
            .map(|_| rand::Rng::random::<f64>(&mut rng) * 0.8 * spread)
            .collect();
        mu.sort_by(f64::total_cmp);
        if let Some(last) = mu.last_mut() {
            *last = spread;
        }
        mu
    }

    proptest! {
        #![proptest_config(config())]

        /// Below the cap the result is `exp S` to rounding.
        #[test]
        fn equals_exp_when_the_spread_is_below_the_cap(n in 1usize..=30, spread in 0.0f64..17.0, seed in any::<u64>()) {
            let s = with_log_spectrum(&log_spectrum(n, spread, seed), seed);
            let e = expm(s.as_ref()).unwrap();
            prop_assert!(distance_frobenius(capped(&s).as_ref(), e.as_ref()) <= 1e-12 * e.norm_l2());
        }

        /// Whatever the spread, the output is finite, positive definite (Cholesky succeeds) and
        /// its computed condition number stays within rounding of `e^τ`.
        #[test]
        fn output_is_spd_with_bounded_condition(n in 1usize..=60, spread in 0.0f64..150.0, seed in any::<u64>()) {
            let s = with_log_spectrum(&log_spectrum(n, spread, seed), seed);
            let y = capped(&s);
            prop_assert!(all_finite(&y));
            crate::validate::check_spd(y.as_ref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let v = crate::eigvalsh(y.as_ref()).unwrap();
            prop_assert!(v[n - 1] / v[0] <= 1.01 * LOG_CONDITION_CAP.exp(), "κ {} {v:?}", v[n - 1] / v[0]);
        }

        /// The gradient against central differences, with the floor active (spread above τ) and
        /// inactive, on a random direction. Eigenvalues are kept at least 0.05 from the floor so
        /// the step (1e-5) does not cross it.
        #[test]
        fn gradient_matches_finite_differences(n in 2usize..=12, spread in 2.0f64..40.0, seed in any::<u64>()) {
            let mu = log_spectrum(n, spread, seed);
            let floor = spread - LOG_CONDITION_CAP;
            prop_assume!(mu.iter().all(|m| (m - floor).abs() > 0.05) && mu[n - 1] - mu[n.saturating_sub(2)] > 0.05);
            let s = with_log_spectrum(&mu, seed);
            let mut rng = seeded_rng(seed ^ 0xa5a5);
            let c = random_symmetric(n, &mut rng);
            let dir = random_symmetric(n, &mut rng);
            let cap = CappedExp::default();
            let l = |t: f64| inner(c.as_ref(), capped(&(&s + faer::Scale(t) * &dir)).as_ref());
            let h = 1e-5;
            let fd = (-l(2.0 * h) + 8.0 * l(h) - 8.0 * l(-h) + l(-2.0 * h)) / (12.0 * h);
            let mut ws = SpectralWorkspace::new(n);
            let mut values = vec![0.0; n];
            let mut u = Mat::zeros(n, n);
            let mut y = Mat::zeros(n, n);
            cap.forward_into(&mut ws, s.as_ref(), &mut values, u.as_mut(), y.as_mut()).unwrap();
            let mut grad = Mat::zeros(n, n);
            cap.backward_into(&mut ws, &values, u.as_ref(), c.as_ref(), grad.as_mut());
            let an = inner(grad.as_ref(), dir.as_ref());
            let scale = grad.norm_l2() * dir.norm_l2();
            prop_assert!((fd - an).abs() <= 1e-6 * scale.max(1e-300), "fd {fd} analytic {an} scale {scale}");
        }
    }
}
