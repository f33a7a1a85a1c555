//! Seeded generators of orthogonal, Stiefel, symmetric and SPD matrices, including the
//! adversarial spectra the property tests use. All take any `rand::Rng`; [`seeded_rng`] gives the
//! portable ChaCha8 stream, identical on every platform for a given seed.

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::dense::sandwich_diag;
use crate::stiefel::orthonormalize_qr;

/// The portable random stream used throughout spdnas.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// An `r × c` matrix of independent standard normal entries.
pub fn gaussian<R: Rng + ?Sized>(rows: usize, cols: usize, rng: &mut R) -> Mat<f64> {
    let mut m = Mat::zeros(rows, cols);
    for j in 0..cols {
        for i in 0..rows {
            m[(i, j)] = StandardNormal.sample(rng);
        }
    }
    m
}

/// A Haar-distributed point of `St(n, p)`: the sign-fixed Q factor of a Gaussian `n × p`.
pub fn random_stiefel<R: Rng + ?Sized>(n: usize, p: usize, rng: &mut R) -> Mat<f64> {
    orthonormalize_qr(gaussian(n, p, rng).as_ref())
}

/// A Haar-distributed orthogonal `n × n` matrix.
pub fn random_orthogonal<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Mat<f64> {
    random_stiefel(n, n, rng)
}

/// A symmetric matrix `(G + Gᵀ)/2`, `G` standard Gaussian.
pub fn random_symmetric<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Mat<f64> {
    crate::dense::symmetrize(gaussian(n, n, rng).as_ref())
}

/// `Q diag(spectrum) Qᵀ` with Haar-random `Q`, exactly symmetric.
pub fn spd_with_spectrum<R: Rng + ?Sized>(spectrum: &[f64], rng: &mut R) -> Mat<f64> {
    let q = random_orthogonal(spectrum.len(), rng);
    sandwich_diag(q.as_ref(), spectrum)
}

/// A random SPD matrix with eigenvalues log-uniform in `[0.1, 10]`.
pub fn random_spd<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Mat<f64> {
    let spectrum = log_uniform_spectrum(n, 0.1, 10.0, rng);
    spd_with_spectrum(&spectrum, rng)
}

/// `n` eigenvalues log-uniform in `[lo, hi]`, ascending.
pub fn log_uniform_spectrum<R: Rng + ?Sized>(n: usize, lo: f64, hi: f64, rng: &mut R) -> Vec<f64> {
    let (a, b) = (lo.ln(), hi.ln());
    let mut v: Vec<f64> = (0..n)
        .map(|_| (a + (b - a) * rng.random::<f64>()).exp())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Families of spectra on which spectral code classically breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpectrumKind {
    /// Log-uniform in `[0.01, 100]`, gaps generic.
    WellSeparated,
    /// A few distinct levels, each repeated exactly.
    Repeated,
    /// Clusters whose members differ by relative gaps of `10^{-12}` to `10^{-6}`.
    NearRepeated,
    /// Log-uniform over a condition number of `10^2` to `10^4`, with a repeated smallest value:
    /// ill-conditioned, yet still within reach of an f64 finite-difference check.
    Graded,
    /// Log-uniform over a condition number of `10^4` to `10^{10}`, with a repeated extreme.
    IllConditioned,
    /// All eigenvalues equal (a multiple of the identity).
    Scalar,
}

impl SpectrumKind {
    /// Every kind, for exhaustive tests.
    pub const ALL: [SpectrumKind; 6] = [
        SpectrumKind::WellSeparated,
        SpectrumKind::Repeated,
        SpectrumKind::NearRepeated,
        SpectrumKind::Graded,
        SpectrumKind::IllConditioned,
        SpectrumKind::Scalar,
    ];
}

/// `n` positive eigenvalues of the given kind, ascending, with the largest of order 1 to 100.
pub fn adversarial_spectrum<R: Rng + ?Sized>(
    n: usize,
    kind: SpectrumKind,
    rng: &mut R,
) -> Vec<f64> {
    let mut v = match kind {
        SpectrumKind::WellSeparated => log_uniform_spectrum(n, 0.01, 100.0, rng),
        SpectrumKind::Repeated => {
            let levels = log_uniform_spectrum(rng.random_range(1..=3), 0.1, 10.0, rng);
            (0..n)
                .map(|_| levels[rng.random_range(0..levels.len())])
                .collect()
        }
        SpectrumKind::NearRepeated => {
            let levels = log_uniform_spectrum(rng.random_range(1..=3), 0.1, 10.0, rng);
            (0..n)
                .map(|_| {
                    let base = levels[rng.random_range(0..levels.len())];
                    let gap = 10f64.powf(rng.random_range(-12.0..-6.0));
                    base * (1.0 + gap * rng.random_range(0.0..4.0))
                })
                .collect()
        }
        SpectrumKind::Graded | SpectrumKind::IllConditioned => {
            let decades = if kind == SpectrumKind::Graded {
                2.0..=4.0
            } else {
                4.0..=10.0
            };
            let condition = 10f64.powf(rng.random_range(decades));
            let mut v = log_uniform_spectrum(n, 1.0 / condition, 1.0, rng);
            v[0] = 1.0 / condition;
            if n > 1 {
                v[n - 1] = 1.0;
            }
            if n > 2 {
                v[1] = v[0];
            }
            v
        }
        SpectrumKind::Scalar => vec![rng.random_range(0.1..10.0); n],
    };
    v.sort_by(f64::total_cmp);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bits() {
        for kind in SpectrumKind::ALL {
            let a = adversarial_spectrum(9, kind, &mut seeded_rng(42));
            let b = adversarial_spectrum(9, kind, &mut seeded_rng(42));
            assert_eq!(a, b);
            assert!(a.iter().all(|v| *v > 0.0 && v.is_finite()));
        }
        assert_eq!(
            random_spd(6, &mut seeded_rng(7)),
            random_spd(6, &mut seeded_rng(7))
        );
        assert_ne!(
            random_spd(6, &mut seeded_rng(7)),
            random_spd(6, &mut seeded_rng(8))
        );
    }

    #[test]
    fn ill_conditioned_spectra_reach_their_condition_number() {
        let mut rng = seeded_rng(3);
        let worst = (0..200)
            .map(|_| {
                let s = adversarial_spectrum(10, SpectrumKind::IllConditioned, &mut rng);
                s[9] / s[0]
            })
            .fold(0.0, f64::max);
        assert!(worst > 1e9 && worst <= 1e10 * (1.0 + 1e-12));
    }
}
