//! Class-conditional SPD distributions for tests and demos: Riemannian-Gaussian-like clouds
//! `X = M^{1/2} exp(σ S) M^{1/2}` around class means, and Wishart samples.

use faer::Mat;
use serde::{Deserialize, Serialize};
use spd_linalg::SpdPoint;
use spd_linalg::random::{gaussian, random_spd, random_symmetric, seeded_rng};

use crate::dataset::{Dataset, Validation};
use crate::error::Result;

/// How samples scatter around their class mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Scatter {
    /// `M^{1/2} exp(σ S/√n) M^{1/2}`, `S` a symmetric Gaussian matrix.
    ExpMap {
        /// Spread `σ`.
        sigma: f64,
    },
    /// `(1/ν) Σ_{k ≤ ν} z_k z_kᵀ` with `z_k ~ N(0, M)` (`ν ≥ n` for positive definiteness).
    Wishart {
        /// Degrees of freedom `ν`.
        dof: usize,
    },
}

/// A class-conditional SPD problem.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianConfig {
    /// Matrix size.
    pub n: usize,
    /// Number of classes.
    pub classes: usize,
    /// Samples per class.
    pub per_class: usize,
    /// Class means `B^{1/2} exp(δ S_c/√n) B^{1/2}` around a random base `B`.
    pub separation: f64,
    /// Scatter model.
    pub scatter: Scatter,
}

impl Default for GaussianConfig {
    fn default() -> Self {
        Self {
            n: 10,
            classes: 3,
            per_class: 100,
            separation: 0.5,
            scatter: Scatter::ExpMap { sigma: 1.0 },
        }
    }
}

/// Samples the problem; labels cycle through the classes.
pub fn generate_gaussian(config: &GaussianConfig, seed: u64) -> Result<Dataset> {
    let n = config.n;
    let mut rng = seeded_rng(seed);
    let root_n = (n as f64).sqrt();
    let base = SpdPoint::new(random_spd(n, &mut rng).as_ref()).expect("random SPD is SPD");
    let means: Vec<SpdPoint> = (0..config.classes)
        .map(|_| {
            let v = faer::Scale(config.separation / root_n) * random_symmetric(n, &mut rng);
            let m = base
                .exp_map(base.colour(v.as_ref()).as_ref())
                .expect("exp map of a symmetric matrix");
            SpdPoint::new(m.as_ref()).expect("SPD mean")
        })
        .collect();
    let total = config.classes * config.per_class;
    let mut matrices = Vec::with_capacity(total * n * n);
    let mut labels = Vec::with_capacity(total);
    for i in 0..total {
        let c = i % config.classes;
        let m = &means[c];
        let x: Mat<f64> = match config.scatter {
            Scatter::ExpMap { sigma } => {
                let v = faer::Scale(sigma / root_n) * random_symmetric(n, &mut rng);
                m.exp_map(m.colour(v.as_ref()).as_ref()).expect("exp map")
            }
            Scatter::Wishart { dof } => {
                let z = spd_linalg::dense::mm(
                    m.sqrt.as_ref(),
                    gaussian(n, dof.max(1), &mut rng).as_ref(),
                );
                faer::Scale(1.0 / dof.max(1) as f64)
                    * spd_linalg::dense::mm(z.as_ref(), z.transpose())
            }
        };
        let x = spd_linalg::symmetrize(x.as_ref());
        for j in 0..n {
            for r in 0..n {
                matrices.push(x[(r, j)]);
            }
        }
        labels.push(c);
    }
    let names = (0..config.classes).map(|c| format!("class{c}")).collect();
    Dataset::new(
        n,
        matrices,
        labels,
        names,
        "gaussian generator",
        &Validation::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_valid() {
        let a = generate_gaussian(&GaussianConfig::default(), 3).unwrap();
        assert_eq!(a, generate_gaussian(&GaussianConfig::default(), 3).unwrap());
        assert_eq!(a.class_counts(), vec![100, 100, 100]);
        let w = GaussianConfig {
            scatter: Scatter::Wishart { dof: 30 },
            ..Default::default()
        };
        assert_eq!(generate_gaussian(&w, 1).unwrap().len(), 300);
    }
}
