//! Shared strategies and checks for this crate's property tests.

use faer::Mat;
use proptest::prelude::*;

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
