//! Shared strategies and checks for this crate's property tests.

use faer::Mat;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::dense::{distance_frobenius, mm, sandwich_diag};

use crate::random::{
    SpectrumKind, adversarial_spectrum, random_symmetric, seeded_rng, spd_with_spectrum,
};

/// Proptest configuration: 256 cases per property, from a fixed seed so CI is reproducible;
/// set `SPDNAS_PROPTEST_RANDOM=1` to explore new cases (or `PROPTEST_RNG_SEED=n` for one seed).
pub fn config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(256);
    if std::env::var_os("SPDNAS_PROPTEST_RANDOM").is_none()
        && std::env::var_os("PROPTEST_RNG_SEED").is_none()
    {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed_5bd0);
    }
    config
}

/// Any spectrum kind.
pub fn kind() -> impl Strategy<Value = SpectrumKind> {
    prop::sample::select(SpectrumKind::ALL.to_vec())
}

/// A test matrix: its size, the kind and exact spectrum it was built from, and the seed.
#[derive(Debug, Clone)]
pub struct Case {
    pub kind: SpectrumKind,
    pub spectrum: Vec<f64>,
    pub x: Mat<f64>,
    pub seed: u64,
}

impl Case {
    pub fn new(n: usize, kind: SpectrumKind, seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let spectrum = adversarial_spectrum(n, kind, &mut rng);
        let x = spd_with_spectrum(&spectrum, &mut rng);
        Self {
            kind,
            spectrum,
            x,
            seed,
        }
    }

    pub fn condition(&self) -> f64 {
        self.spectrum[self.spectrum.len() - 1] / self.spectrum[0]
    }

    /// A second, independent symmetric matrix from the same seed (for directions, weights).
    pub fn symmetric(&self, salt: u64) -> Mat<f64> {
        let mut rng = seeded_rng(self.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        random_symmetric(self.x.nrows(), &mut rng)
    }
}

/// Matrices of size `1..=max_n` over every adversarial spectrum kind.
pub fn case(max_n: usize) -> impl Strategy<Value = Case> {
    (1..=max_n, kind(), any::<u64>()).prop_map(|(n, k, s)| Case::new(n, k, s))
}

/// Matrices for finite-difference gradient checks: every kind but `IllConditioned`. A central
/// difference in f64 cannot resolve a derivative better than about `ε κ / h_rel`, which at
/// κ = 1e10 is far above 1e-6 whatever the backward; those spectra are covered by the forward
/// properties and by the finiteness of the backward instead.
pub fn gradient_case(max_n: usize) -> impl Strategy<Value = Case> {
    let kinds: Vec<SpectrumKind> = SpectrumKind::ALL
        .into_iter()
        .filter(|k| *k != SpectrumKind::IllConditioned)
        .collect();
    (1..=max_n, prop::sample::select(kinds), any::<u64>()).prop_map(|(n, k, s)| Case::new(n, k, s))
}

/// Matrices of one kind.
pub fn case_of(max_n: usize, kind: SpectrumKind) -> impl Strategy<Value = Case> {
    (1..=max_n, any::<u64>()).prop_map(move |(n, s)| Case::new(n, kind, s))
}

/// Whether every entry is finite.
pub fn all_finite(m: &Mat<f64>) -> bool {
    (0..m.ncols()).all(|j| (0..m.nrows()).all(|i| m[(i, j)].is_finite()))
}

/// The properties every eigensolver is held to, for `A = c.x` and its computed `λ`, `U`:
/// `‖U diag(λ) Uᵀ − A‖ ≤ 1e-12 ‖A‖`, `‖UᵀU − I‖ ≤ 1e-12`, `λ` ascending and within
/// `1e-13 n ‖A‖` of the spectrum `A` was built from.
pub fn check_eigenpairs(c: &Case, values: &[f64], vectors: &Mat<f64>) -> Result<(), TestCaseError> {
    let n = c.x.nrows();
    let scale = c.x.norm_l2();
    let back = sandwich_diag(vectors.as_ref(), values);
    prop_assert!(distance_frobenius(back.as_ref(), c.x.as_ref()) <= 1e-12 * scale);
    let gram = mm(vectors.transpose(), vectors.as_ref());
    prop_assert!(distance_frobenius(gram.as_ref(), Mat::<f64>::identity(n, n).as_ref()) <= 1e-12);
    prop_assert!(values.windows(2).all(|w| w[0] <= w[1]));
    for (got, want) in values.iter().zip(&c.spectrum) {
        prop_assert!(
            (got - want).abs() <= 1e-13 * n as f64 * scale,
            "{got} vs {want}"
        );
    }
    Ok(())
}

/// Eigenvalues within `1e-13 n ‖A‖` of faer's, and the basis-independent `U Λ² Uᵀ` within
/// `1e-11 ‖A‖²` of faer's (eigenvectors themselves are defined only up to a rotation within a
/// cluster).
pub fn check_agrees_with_faer(
    x: &Mat<f64>,
    values: &[f64],
    vectors: &Mat<f64>,
) -> Result<(), TestCaseError> {
    let n = x.nrows();
    let mut faer_values = vec![0.0; n];
    let mut faer_vectors = Mat::zeros(n, n);
    crate::EighWorkspace::with_faer(n)
        .decompose_into(x.as_ref(), &mut faer_values, Some(faer_vectors.as_mut()))
        .unwrap();
    let scale = x.norm_l2();
    for (a, b) in values.iter().zip(&faer_values) {
        prop_assert!((a - b).abs() <= 1e-13 * n as f64 * scale, "{a} vs {b}");
    }
    let sq: Vec<f64> = values.iter().map(|v| v * v).collect();
    let faer_sq: Vec<f64> = faer_values.iter().map(|v| v * v).collect();
    let ours = sandwich_diag(vectors.as_ref(), &sq);
    let theirs = sandwich_diag(faer_vectors.as_ref(), &faer_sq);
    prop_assert!(distance_frobenius(ours.as_ref(), theirs.as_ref()) <= 1e-11 * scale * scale);
    Ok(())
}
