//! Weighted means of SPD matrices: the affine-invariant Karcher (Fréchet) mean and the
//! log-Euclidean mean.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use crate::airm::SpdPoint;
use crate::error::{LinalgError, Result};
use crate::spectral::{Exp, Log, spectral};

/// Stopping rule of [`karcher_mean`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KarcherOptions {
    /// Iteration cap.
    pub max_iterations: usize,
    /// Stop when the Riemannian gradient norm `‖Σ w_k log(M^{-1/2} X_k M^{-1/2})‖_F` is below.
    /// Rounding puts a floor of roughly `n ε κ` under it (κ the condition number of the data).
    pub tolerance: f64,
    /// Step size `s` of `M ← Exp_M(s · T)`.
    pub step: f64,
}

impl Default for KarcherOptions {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            tolerance: 1e-10,
            step: 1.0,
        }
    }
}

/// Result of [`karcher_mean`].
#[derive(Debug, Clone)]
pub struct KarcherMean {
    /// The mean `M`.
    pub mean: Mat<f64>,
    /// Iterations performed.
    pub iterations: usize,
    /// Riemannian gradient norm at `M` (in the whitened tangent space).
    pub gradient_norm: f64,
    /// Whether `gradient_norm ≤ tolerance` was reached within the cap.
    pub converged: bool,
}

/// Validates weights (finite, `≥ 0`, positive sum) and normalises them to sum 1; `None` gives
/// uniform weights.
pub fn normalized_weights(count: usize, weights: Option<&[f64]>) -> Result<Vec<f64>> {
    if count == 0 {
        return Err(LinalgError::InvalidWeights {
            reason: "a mean of zero matrices",
        });
    }
    let Some(w) = weights else {
        return Ok(vec![1.0 / count as f64; count]);
    };
    if w.len() != count {
        return Err(LinalgError::DimensionMismatch {
            context: "mean weights",
            expected: count,
            found: w.len(),
        });
    }
    if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(LinalgError::InvalidWeights {
            reason: "weights must be finite and non-negative",
        });
    }
    let total: f64 = w.iter().sum();
    if total <= 0.0 {
        return Err(LinalgError::InvalidWeights {
            reason: "weights sum to zero",
        });
    }
    Ok(w.iter().map(|v| v / total).collect())
}

fn check_square_family(mats: &[MatRef<'_, f64>]) -> Result<usize> {
    let n = mats.first().map_or(0, |m| m.nrows());
    for m in mats {
        for found in [m.nrows(), m.ncols()] {
            if found != n {
                return Err(LinalgError::DimensionMismatch {
                    context: "mean operands",
                    expected: n,
                    found,
                });
            }
        }
    }
    Ok(n)
}

/// Weighted arithmetic mean `Σ w_k X_k` (weights already normalised).
pub fn arithmetic_mean(mats: &[MatRef<'_, f64>], weights: &[f64]) -> Mat<f64> {
    let n = mats.first().map_or(0, |m| m.nrows());
    let mut out = Mat::zeros(n, n);
    for (m, &w) in mats.iter().zip(weights) {
        out += faer::Scale(w) * m;
    }
    out
}

/// Matrices whose log maps [`whitened_tangent_mean`] holds at once.
const TANGENT_CHUNK: usize = 256;

/// `T = Σ w_k log(M^{-1/2} X_k M^{-1/2})`: the Riemannian gradient direction at `M`, whitened.
/// The log maps of a chunk are computed in parallel and summed in index order, so `T` (and the
/// reported error, the lowest index's) does not depend on the thread count.
fn whitened_tangent_mean(
    point: &SpdPoint,
    mats: &[MatRef<'_, f64>],
    w: &[f64],
) -> Result<Mat<f64>> {
    let n = point.eig.dim();
    let mut t = Mat::<f64>::zeros(n, n);
    for (xs, ws) in mats.chunks(TANGENT_CHUNK).zip(w.chunks(TANGENT_CHUNK)) {
        let logs: Vec<_> = xs
            .par_iter()
            .zip(ws)
            .map(|(x, &wk)| {
                (wk != 0.0)
                    .then(|| spectral(&Log, point.whiten(*x).as_ref()).map(|(l, _)| l))
                    .transpose()
            })
            .collect();
        for (l, &wk) in logs.into_iter().zip(ws) {
            if let Some(l) = l? {
                t += faer::Scale(wk) * &l;
            }
        }
    }
    Ok(t)
}

/// Weighted Karcher mean `argmin_M Σ w_k δ²(X_k, M)` by the Karcher flow started at the
/// weighted arithmetic mean: `T = Σ w_k log(M^{-1/2} X_k M^{-1/2})`,
/// `M ← M^{1/2} exp(s T) M^{1/2}`, until `‖T‖_F ≤ tolerance` or the iteration cap. The fixed
/// step `s = 1` can oscillate on widely spread data, so a step that does not reduce `‖T‖` is
/// halved and retried (and the next step grows back towards `options.step`); when no step down
/// to `1e-8 · options.step` reduces it, rounding has reached its floor and the flow stops.
pub fn karcher_mean(
    mats: &[MatRef<'_, f64>],
    weights: Option<&[f64]>,
    options: KarcherOptions,
) -> Result<KarcherMean> {
    check_square_family(mats)?;
    let w = normalized_weights(mats.len(), weights)?;
    let mut mean = arithmetic_mean(mats, &w);
    let mut point = SpdPoint::new(mean.as_ref())?;
    let mut t = whitened_tangent_mean(&point, mats, &w)?;
    let mut gradient_norm = t.norm_l2();
    let mut step = options.step;
    let mut iterations = 0;
    'flow: while gradient_norm > options.tolerance && iterations < options.max_iterations {
        iterations += 1;
        loop {
            let (e, _) = spectral(&Exp, (faer::Scale(step) * &t).as_ref())?;
            let candidate = point.colour(e.as_ref());
            let candidate_point = SpdPoint::new(candidate.as_ref())?;
            let candidate_t = whitened_tangent_mean(&candidate_point, mats, &w)?;
            let candidate_norm = candidate_t.norm_l2();
            if candidate_norm < gradient_norm {
                mean = candidate;
                point = candidate_point;
                t = candidate_t;
                gradient_norm = candidate_norm;
                step = (2.0 * step).min(options.step);
                break;
            }
            step *= 0.5;
            if step < 1e-8 * options.step {
                break 'flow;
            }
        }
    }
    Ok(KarcherMean {
        mean,
        iterations,
        gradient_norm,
        converged: gradient_norm <= options.tolerance,
    })
}

/// Weighted log-Euclidean mean `exp(Σ w_k log X_k)`.
pub fn log_euclidean_mean(mats: &[MatRef<'_, f64>], weights: Option<&[f64]>) -> Result<Mat<f64>> {
    let n = check_square_family(mats)?;
    let w = normalized_weights(mats.len(), weights)?;
    let mut acc = Mat::<f64>::zeros(n, n);
    for (x, &wk) in mats.iter().zip(&w) {
        let (l, _) = spectral(&Log, *x)?;
        acc += faer::Scale(wk) * &l;
    }
    Ok(spectral(&Exp, acc.as_ref())?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airm::geodesic;
    use crate::dense::{congruence, distance_frobenius, sandwich_diag};
    use crate::random::{SpectrumKind, adversarial_spectrum, random_orthogonal, seeded_rng};
    use crate::test_support::{Case, config, gradient_case};
    use proptest::prelude::*;

    fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
        distance_frobenius(a.as_ref(), b.as_ref()) / b.norm_l2()
    }

    fn kind_but_ill() -> impl Strategy<Value = SpectrumKind> {
        prop::sample::select(
            SpectrumKind::ALL
                .into_iter()
                .filter(|k| *k != SpectrumKind::IllConditioned)
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #![proptest_config(config())]

        /// Matrices sharing eigenvectors commute, and then the Karcher mean is
        /// `Q exp(Σ w_k log Λ_k) Qᵀ`, which is also the log-Euclidean mean.
        #[test]
        fn karcher_mean_of_commuting_matrices(n in 1usize..=40, k in 1usize..=6, kind in kind_but_ill(), seed in any::<u64>()) {
            let mut rng = seeded_rng(seed);
            let q = random_orthogonal(n, &mut rng);
            let spectra: Vec<Vec<f64>> = (0..k).map(|_| adversarial_spectrum(n, kind, &mut rng)).collect();
            let weights: Vec<f64> = (0..k).map(|i| 0.1 + ((seed >> i) & 7) as f64).collect();
            let total: f64 = weights.iter().sum();
            let mats: Vec<Mat<f64>> = spectra.iter().map(|s| sandwich_diag(q.as_ref(), s)).collect();
            let views: Vec<_> = mats.iter().map(|m| m.as_ref()).collect();
            let expected_spectrum: Vec<f64> = (0..n)
                .map(|i| spectra.iter().zip(&weights).map(|(s, w)| w / total * s[i].ln()).sum::<f64>().exp())
                .collect();
            let expected = sandwich_diag(q.as_ref(), &expected_spectrum);
            let kappa = spectra.iter().map(|s| s[n - 1] / s[0]).fold(1.0, f64::max);
            // The gradient can be evaluated to about n ε κ; ask for that, not less.
            let tolerance = 1e-14 * (n as f64) * kappa;
            let m = karcher_mean(&views, Some(&weights), KarcherOptions { tolerance, ..Default::default() }).unwrap();
            prop_assert!(m.converged, "gradient norm {} after {}", m.gradient_norm, m.iterations);
            prop_assert!(rel(&m.mean, &expected) <= 1e-12 * (n as f64) * kappa, "{}", rel(&m.mean, &expected));
            let le = log_euclidean_mean(&views, Some(&weights)).unwrap();
            prop_assert!(rel(&le, &expected) <= 1e-12 * (n as f64) * kappa);
        }

        /// With two matrices and weights `(1 − t, t)` the Karcher mean is the geodesic point
        /// `A #_t B`; the mean is congruence-equivariant: `mean(G X_k Gᵀ) = G mean(X_k) Gᵀ`.
        #[test]
        fn karcher_mean_is_geodesic_and_equivariant(c in gradient_case(20), t in 0.0f64..1.0) {
            let d = Case::new(c.x.nrows(), c.kind, c.seed.wrapping_add(1));
            let views = [c.x.as_ref(), d.x.as_ref()];
            // The gradient is evaluated to about n ε κ(X) κ(Y); ask for that, not less.
            let bound = 1e-12 * (c.x.nrows() as f64) * c.condition() * d.condition();
            let options = KarcherOptions { tolerance: 1e-2 * bound, ..Default::default() };
            let m = karcher_mean(&views, Some(&[1.0 - t, t]), options).unwrap();
            prop_assert!(m.converged, "{} after {}", m.gradient_norm, m.iterations);
            let g = geodesic(c.x.as_ref(), d.x.as_ref(), t).unwrap();
            prop_assert!(rel(&m.mean, &g) <= bound, "{} > {bound}", rel(&m.mean, &g));
            let q = random_orthogonal(c.x.nrows(), &mut seeded_rng(c.seed));
            let moved = [congruence(q.as_ref(), c.x.as_ref()), congruence(q.as_ref(), d.x.as_ref())];
            let mv: Vec<_> = moved.iter().map(|m| m.as_ref()).collect();
            let mm = karcher_mean(&mv, Some(&[1.0 - t, t]), options).unwrap();
            prop_assert!(rel(&mm.mean, &congruence(q.as_ref(), m.mean.as_ref())) <= bound);
        }
    }

    #[test]
    fn iteration_cap_reports_unconverged_gradient() {
        let a = Case::new(5, SpectrumKind::WellSeparated, 1);
        let b = Case::new(5, SpectrumKind::WellSeparated, 2);
        let c = Case::new(5, SpectrumKind::WellSeparated, 3);
        let views = [a.x.as_ref(), b.x.as_ref(), c.x.as_ref()];
        let one = karcher_mean(
            &views,
            None,
            KarcherOptions {
                max_iterations: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(one.iterations, 1);
        assert!(!one.converged && one.gradient_norm > 1e-10);
        let full = karcher_mean(&views, None, KarcherOptions::default()).unwrap();
        assert!(
            full.converged && full.iterations > 1 && full.gradient_norm < one.gradient_norm,
            "{} {} {}",
            full.converged,
            full.iterations,
            full.gradient_norm
        );
    }

    #[test]
    fn rejects_bad_weights() {
        let x = Mat::<f64>::identity(2, 2);
        let v = [x.as_ref(), x.as_ref()];
        for w in [[-1.0, 2.0], [0.0, 0.0], [f64::NAN, 1.0]] {
            assert!(matches!(
                karcher_mean(&v, Some(&w), KarcherOptions::default()),
                Err(LinalgError::InvalidWeights { .. })
            ));
        }
        assert!(matches!(
            karcher_mean(&v, Some(&[1.0]), KarcherOptions::default()),
            Err(LinalgError::DimensionMismatch { .. })
        ));
        assert!(karcher_mean(&[], None, KarcherOptions::default()).is_err());
    }
}
