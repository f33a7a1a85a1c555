//! Covariance front ends: multichannel series → SPD matrix (sample covariance, Ledoit–Wolf and
//! OAS shrinkage, optional trace normalisation) and complex 1-D signal → windows → Hermitian
//! covariance → its real part.

use faer::Mat;
use serde::{Deserialize, Serialize};

/// Covariance estimator for a `p × T` series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Estimator {
    /// Unbiased sample covariance `(1/(T−1)) Σ_t (x_t − x̄)(x_t − x̄)ᵀ`.
    Sample,
    /// Ledoit & Wolf (2004): `(1−s) S + s μ I` with `S` the biased covariance, `μ = tr S / p`
    /// and the shrinkage `s = min(β, δ)/δ`, `δ = ‖S − μI‖²/p`, `β = Σ_t ‖x_t x_tᵀ − S‖² / (p T²)`.
    #[default]
    LedoitWolf,
    /// Oracle approximating shrinkage (Chen et al. 2010): `s = min(1, (α + μ²)/((T+1)(α − μ²/p)))`
    /// with `α = ‖S‖²/p²`.
    Oas,
}

/// Front-end settings for series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CovarianceOptions {
    /// The estimator.
    pub estimator: Estimator,
    /// Divide each matrix by its trace.
    pub trace_normalize: bool,
}

impl Default for CovarianceOptions {
    fn default() -> Self {
        Self {
            estimator: Estimator::LedoitWolf,
            trace_normalize: false,
        }
    }
}

/// Centred copy of the channels (`p × T`, row `c` = channel `c`).
fn centred(series: &[Vec<f64>]) -> Vec<Vec<f64>> {
    series
        .iter()
        .map(|ch| {
            let mean = ch.iter().sum::<f64>() / ch.len().max(1) as f64;
            ch.iter().map(|v| v - mean).collect()
        })
        .collect()
}

/// `(1/div) X_c X_cᵀ` of centred channels.
fn scatter(xc: &[Vec<f64>], div: f64) -> Mat<f64> {
    let p = xc.len();
    Mat::from_fn(p, p, |i, j| {
        xc[i].iter().zip(&xc[j]).map(|(a, b)| a * b).sum::<f64>() / div
    })
}

/// The covariance of one series `series[c][t]` (all channels of one length `T ≥ 2`).
pub fn covariance(series: &[Vec<f64>], options: CovarianceOptions) -> Mat<f64> {
    let p = series.len();
    let t = series.first().map_or(0, Vec::len);
    let xc = centred(series);
    let mut c = match options.estimator {
        Estimator::Sample => scatter(&xc, (t as f64 - 1.0).max(1.0)),
        Estimator::LedoitWolf | Estimator::Oas => {
            let s = scatter(&xc, t as f64);
            let mu = (0..p).map(|i| s[(i, i)]).sum::<f64>() / p as f64;
            let shrinkage = match options.estimator {
                Estimator::LedoitWolf => {
                    let delta = (0..p)
                        .flat_map(|i| (0..p).map(move |j| (i, j)))
                        .map(|(i, j)| (s[(i, j)] - if i == j { mu } else { 0.0 }).powi(2))
                        .sum::<f64>()
                        / p as f64;
                    let mut beta = 0.0;
                    for i in 0..p {
                        for j in 0..p {
                            let sij = s[(i, j)];
                            beta += xc[i]
                                .iter()
                                .zip(&xc[j])
                                .map(|(a, b)| (a * b - sij).powi(2))
                                .sum::<f64>();
                        }
                    }
                    let beta = beta / (p as f64 * (t as f64).powi(2));
                    if delta > 0.0 {
                        beta.min(delta) / delta
                    } else {
                        0.0
                    }
                }
                _ => {
                    let alpha = s.squared_norm_l2() / (p * p) as f64;
                    let num = alpha + mu * mu;
                    let den = (t as f64 + 1.0) * (alpha - mu * mu / p as f64);
                    if den > 0.0 { (num / den).min(1.0) } else { 1.0 }
                }
            };
            Mat::from_fn(p, p, |i, j| {
                (1.0 - shrinkage) * s[(i, j)] + if i == j { shrinkage * mu } else { 0.0 }
            })
        }
    };
    if options.trace_normalize {
        let tr: f64 = (0..p).map(|i| c[(i, i)]).sum();
        if tr > 0.0 {
            c = faer::Scale(1.0 / tr) * &c;
        }
    }
    c
}

/// Windowing of a complex signal (`docs/data.md`): column `t` of `F ∈ C^{w × T'}` is
/// `x[hop·t .. hop·t + w]`, `T' = ⌊(T − w)/hop⌋ + 1`; each row is centred over `t`, and the result
/// is the real part of the Hermitian covariance `F̃ F̃ᴴ/(T' − 1)`, i.e. `(A Aᵀ + B Bᵀ)/(T' − 1)`
/// with `A = Re F̃`, `B = Im F̃`. That real part is symmetric positive semi-definite; the official
/// code instead fed `(Re C + Im C)/2`, which is not symmetric (D21 in `docs/fidelity.md`). `None` when fewer than
/// two windows fit.
pub fn windowed_covariance(signal: &[(f64, f64)], window: usize, hop: usize) -> Option<Mat<f64>> {
    if window == 0 || hop == 0 || signal.len() < window {
        return None;
    }
    let windows = (signal.len() - window) / hop + 1;
    if windows < 2 {
        return None;
    }
    let row = |i: usize, part: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        (0..windows).map(|t| part(&signal[hop * t + i])).collect()
    };
    let re: Vec<Vec<f64>> = centred(&(0..window).map(|i| row(i, |z| z.0)).collect::<Vec<_>>());
    let im: Vec<Vec<f64>> = centred(&(0..window).map(|i| row(i, |z| z.1)).collect::<Vec<_>>());
    let div = (windows - 1) as f64;
    let a = scatter(&re, div);
    let b = scatter(&im, div);
    Some(a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &Mat<f64>, b: &[[f64; 2]; 2]) -> bool {
        (0..2).all(|i| (0..2).all(|j| (a[(i, j)] - b[i][j]).abs() < 1e-12))
    }

    /// Channels `[1, 2, 3]`, `[2, 4, 7]`: means 2 and 13/3; centred `[−1, 0, 1]`,
    /// `[−7/3, −1/3, 8/3]`.
    fn series() -> Vec<Vec<f64>> {
        vec![vec![1.0, 2.0, 3.0], vec![2.0, 4.0, 7.0]]
    }

    #[test]
    fn sample_covariance_by_hand() {
        // Σ x² = 2, Σ xy = 5, Σ y² = (49 + 1 + 64)/9 = 114/9; divided by T − 1 = 2
        let c = covariance(
            &series(),
            CovarianceOptions {
                estimator: Estimator::Sample,
                trace_normalize: false,
            },
        );
        assert!(close(&c, &[[1.0, 2.5], [2.5, 57.0 / 9.0]]));
        let t = covariance(
            &series(),
            CovarianceOptions {
                estimator: Estimator::Sample,
                trace_normalize: true,
            },
        );
        let tr = 1.0 + 57.0 / 9.0;
        assert!(close(
            &t,
            &[[1.0 / tr, 2.5 / tr], [2.5 / tr, 57.0 / 9.0 / tr]]
        ));
    }

    /// Ledoit–Wolf and OAS on the same data, from their closed forms computed by hand.
    #[test]
    fn shrinkage_by_hand() {
        // biased S = [[2/3, 5/3], [5/3, 38/9]], μ = (2/3 + 38/9)/2 = 22/9
        let s: [[f64; 2]; 2] = [[2.0 / 3.0, 5.0 / 3.0], [5.0 / 3.0, 38.0 / 9.0]];
        let mu: f64 = 22.0 / 9.0;
        let delta = ((s[0][0] - mu).powi(2) + 2.0 * s[0][1].powi(2) + (s[1][1] - mu).powi(2)) / 2.0;
        let xc: [[f64; 3]; 2] = [[-1.0, 0.0, 1.0], [-7.0 / 3.0, -1.0 / 3.0, 8.0 / 3.0]];
        let mut beta: f64 = 0.0;
        for i in 0..2 {
            for j in 0..2 {
                beta += (0..3)
                    .map(|k| (xc[i][k] * xc[j][k] - s[i][j]).powi(2))
                    .sum::<f64>();
            }
        }
        let beta = beta / (2.0 * 9.0);
        let lw: f64 = beta.min(delta) / delta;
        let expected = |sh: f64| {
            [
                [(1.0 - sh) * s[0][0] + sh * mu, (1.0 - sh) * s[0][1]],
                [(1.0 - sh) * s[1][0], (1.0 - sh) * s[1][1] + sh * mu],
            ]
        };
        let c = covariance(
            &series(),
            CovarianceOptions {
                estimator: Estimator::LedoitWolf,
                trace_normalize: false,
            },
        );
        assert!(close(&c, &expected(lw)));
        let alpha = (s[0][0].powi(2) + 2.0 * s[0][1].powi(2) + s[1][1].powi(2)) / 4.0;
        let oas: f64 = ((alpha + mu * mu) / (4.0 * (alpha - mu * mu / 2.0))).min(1.0);
        let c = covariance(
            &series(),
            CovarianceOptions {
                estimator: Estimator::Oas,
                trace_normalize: false,
            },
        );
        assert!(close(&c, &expected(oas)));
        // with three samples the OAS shrinkage saturates at 1 (the estimate is μI)
        assert!(lw > 0.0 && lw < 1.0 && oas == 1.0, "{lw} {oas}");
    }

    /// A longer 3-channel series where both shrinkages are strictly inside (0, 1): the
    /// estimate equals `(1−s) S + s μ I` with `s` from the published closed forms.
    #[test]
    fn shrinkage_is_interior_on_longer_series() {
        let t = 40;
        let z = spd_linalg::random::gaussian(3, t, &mut spd_linalg::random::seeded_rng(4));
        let mix = [[2.0, 0.0, 0.0], [0.8, 1.0, 0.0], [0.1, -0.3, 0.5]];
        let series: Vec<Vec<f64>> = (0..3)
            .map(|c| {
                (0..t)
                    .map(|k| (0..3).map(|m| mix[c][m] * z[(m, k)]).sum())
                    .collect()
            })
            .collect();
        let xc = centred(&series);
        let s = scatter(&xc, t as f64);
        let p = 3.0;
        let mu = (0..3).map(|i| s[(i, i)]).sum::<f64>() / p;
        let fro = |f: &dyn Fn(usize, usize) -> f64| {
            (0..3)
                .flat_map(|i| (0..3).map(move |j| (i, j)))
                .map(|(i, j)| f(i, j).powi(2))
                .sum::<f64>()
        };
        let delta = fro(&|i, j| s[(i, j)] - if i == j { mu } else { 0.0 }) / p;
        let beta = (0..t)
            .map(|k| fro(&|i, j| xc[i][k] * xc[j][k] - s[(i, j)]))
            .sum::<f64>()
            / (p * (t * t) as f64);
        let lw = beta.min(delta) / delta;
        let alpha = fro(&|i, j| s[(i, j)]) / (p * p);
        let oas = ((alpha + mu * mu) / ((t as f64 + 1.0) * (alpha - mu * mu / p))).min(1.0);
        for (est, sh) in [(Estimator::LedoitWolf, lw), (Estimator::Oas, oas)] {
            assert!(sh > 0.0 && sh < 1.0, "{est:?}: {sh}");
            let c = covariance(
                &series,
                CovarianceOptions {
                    estimator: est,
                    trace_normalize: false,
                },
            );
            for i in 0..3 {
                for j in 0..3 {
                    let want = (1.0 - sh) * s[(i, j)] + if i == j { sh * mu } else { 0.0 };
                    assert!((c[(i, j)] - want).abs() < 1e-12);
                }
            }
        }
    }

    /// Window 2, hop 1 over `[1+i, 2, 3−i]`: windows `[1+i, 2]`, `[2, 3−i]`; row means
    /// `(1.5+0.5i)`, `(2.5−0.5i)`; centred rows `[−0.5+0.5i, 0.5−0.5i]`, `[−0.5+0.5i, 0.5−0.5i]`.
    #[test]
    fn windowed_covariance_by_hand() {
        let c = windowed_covariance(&[(1.0, 1.0), (2.0, 0.0), (3.0, -1.0)], 2, 1).unwrap();
        // A = [[−.5, .5], [−.5, .5]], B = [[.5, −.5], [.5, −.5]]: A Aᵀ + B Bᵀ = all 0.5 + 0.5 = 1
        assert!(close(&c, &[[1.0, 1.0], [1.0, 1.0]]));
        assert!(windowed_covariance(&[(1.0, 0.0); 3], 3, 1).is_none());
    }
}
