//! `Dataset`: SPD matrices with class labels, validated when built.

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Location, Problem, Result};

/// What to do with a matrix that is not symmetric within tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SymmetryPolicy {
    /// Refuse it: `|a_ij − a_ji| ≤ tolerance · max|a|` or an error naming the sample.
    Strict {
        /// Relative tolerance.
        tolerance: f64,
    },
    /// Replace every matrix by `(A + Aᵀ)/2` (for formats that store only a numerically
    /// symmetric matrix, e.g. float32 exports).
    Symmetrize,
}

impl Default for SymmetryPolicy {
    fn default() -> Self {
        SymmetryPolicy::Strict { tolerance: 1e-8 }
    }
}

/// Regularisation applied to every matrix, only when asked for.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Regularization {
    /// Matrices must be positive definite as they are.
    #[default]
    None,
    /// Ridge: `X + ε (tr X / n) I`, `ε` relative to the mean eigenvalue (the official code's
    /// `1e-5·tr` shift, normalised by `n`); command line `--ridge ε`.
    TraceShift(f64),
    /// Shrinkage toward the scaled identity, `(1 − α) X + α (tr X / n) I` (pyRiemann's
    /// `Shrinkage(shrinkage=α)`); command line `--shrinkage α`.
    Shrink(f64),
}

/// Checks a dataset undergoes when it is built.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Validation {
    /// Symmetry handling.
    pub symmetry: SymmetryPolicy,
    /// Regularisation.
    pub regularization: Regularization,
    /// After the regularisation, scale every matrix to `tr X = n` (mean eigenvalue 1);
    /// command line `--trace-normalize`.
    #[serde(default)]
    pub trace_normalize: bool,
}

/// SPD matrices (each `n × n`, column-major, stored contiguously), their class indices, the
/// class names, and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    n: usize,
    matrices: Vec<f64>,
    labels: Vec<usize>,
    class_names: Vec<String>,
    provenance: String,
}

/// Summary statistics for `spdnas data inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub samples: usize,
    /// Matrix size.
    pub n: usize,
    /// `(class name, count)`.
    pub classes: Vec<(String, usize)>,
    /// Smallest eigenvalue over all matrices.
    pub min_eigenvalue: f64,
    /// Largest eigenvalue over all matrices.
    pub max_eigenvalue: f64,
    /// Largest condition number.
    pub max_condition: f64,
    /// Median condition number.
    #[serde(default)]
    pub median_condition: f64,
    /// Samples that are numerically rank-deficient: condition number above `1e8`, i.e. their
    /// smallest eigenvalues are below `1e-8 λ_max` (low-rank covariances plus a tiny ridge).
    #[serde(default)]
    pub rank_deficient: usize,
    /// Smallest and largest trace.
    #[serde(default)]
    pub trace_range: (f64, f64),
}

/// Condition number above which a sample counts as numerically rank-deficient.
pub const RANK_DEFICIENT_CONDITION: f64 = 1e8;

impl Summary {
    /// Preparation flags worth trying on this data, with the reason for each.
    pub fn suggestions(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.rank_deficient > 0 {
            out.push(format!(
                "{} of {} samples are numerically rank-deficient (κ > 1e8): try --shrinkage 0.01 or --ridge 1e-3",
                self.rank_deficient, self.samples
            ));
        }
        if self.trace_range.0 > 0.0 && self.trace_range.1 / self.trace_range.0 > 100.0 {
            out.push(format!(
                "traces range over [{:.3e}, {:.3e}]: try --trace-normalize",
                self.trace_range.0, self.trace_range.1
            ));
        }
        out
    }
}

impl Dataset {
    /// [`Dataset::new`] from a C-order stack `(k, i, j)` of `n × n` matrices (numpy's layout),
    /// each transposed into this crate's column-major storage.
    pub fn from_c_order(
        n: usize,
        values: &[f64],
        labels: Vec<usize>,
        class_names: Vec<String>,
        source: &str,
        validation: &Validation,
    ) -> Result<Self> {
        let nn = n * n;
        let mut matrices = Vec::with_capacity(values.len());
        for stacked in values.chunks(nn.max(1)) {
            if stacked.len() < nn {
                matrices.extend_from_slice(stacked);
                break;
            }
            for j in 0..n {
                matrices.extend((0..n).map(|i| stacked[i * n + j]));
            }
        }
        Self::new(n, matrices, labels, class_names, source, validation)
    }

    /// Builds and validates a dataset; `source` names the file (or generator) in errors.
    /// Every matrix must be finite, symmetric (or symmetrised by the policy), and positive
    /// definite after the requested regularisation; every label must name a class and every
    /// class must have a sample.
    pub fn new(
        n: usize,
        mut matrices: Vec<f64>,
        labels: Vec<usize>,
        class_names: Vec<String>,
        source: &str,
        validation: &Validation,
    ) -> Result<Self> {
        let err = |location, problem| DataError::at(source, location, problem);
        let nn = n * n;
        if nn == 0 || matrices.len() % nn != 0 {
            return Err(err(
                Location::File,
                Problem::Shape(format!(
                    "{} values are not a stack of {n}×{n} matrices",
                    matrices.len()
                )),
            ));
        }
        let count = matrices.len() / nn;
        if count != labels.len() {
            return Err(err(
                Location::File,
                Problem::CountMismatch {
                    matrices: count,
                    labels: labels.len(),
                },
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l >= class_names.len())
        {
            return Err(err(
                Location::Sample(i),
                Problem::UnknownLabel(l.to_string()),
            ));
        }
        for (c, name) in class_names.iter().enumerate() {
            if !labels.contains(&c) {
                return Err(err(Location::File, Problem::EmptyClass(name.clone())));
            }
        }
        for (k, m) in matrices.chunks_mut(nn).enumerate() {
            validate_matrix(m, n, validation).map_err(|p| err(Location::Sample(k), p))?;
        }
        Ok(Self {
            n,
            matrices,
            labels,
            class_names,
            provenance: source.to_string(),
        })
    }

    /// Matrix size `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Sample `i`.
    pub fn matrix(&self, i: usize) -> MatRef<'_, f64> {
        let nn = self.n * self.n;
        MatRef::from_column_major_slice(&self.matrices[i * nn..(i + 1) * nn], self.n, self.n)
    }

    /// All matrices, contiguous.
    pub fn matrices(&self) -> &[f64] {
        &self.matrices
    }

    /// Class index of every sample.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Class names.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Where the data came from.
    pub fn provenance(&self) -> &str {
        &self.provenance
    }

    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.class_names.len()];
        self.labels.iter().for_each(|&l| c[l] += 1);
        c
    }

    /// The samples `indices` (in that order), as a dataset with the same classes.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let nn = self.n * self.n;
        let mut matrices = Vec::with_capacity(indices.len() * nn);
        for &i in indices {
            matrices.extend_from_slice(&self.matrices[i * nn..(i + 1) * nn]);
        }
        Dataset {
            n: self.n,
            matrices,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
            provenance: self.provenance.clone(),
        }
    }

    /// The same samples after `validation`'s symmetrisation, regularisation and scaling (for
    /// generated or embedded data, which are built before a preparation is chosen).
    pub fn prepared(self, validation: &Validation) -> Result<Dataset> {
        Dataset::new(
            self.n,
            self.matrices,
            self.labels,
            self.class_names,
            &self.provenance,
            validation,
        )
    }

    /// `self` followed by the samples of `other`, whose classes are matched to `self`'s by
    /// name; returns the joined dataset. A class of `other` that `self` lacks is an error
    /// naming `other`'s file.
    pub fn concat(&self, other: &Dataset) -> Result<Dataset> {
        if other.n != self.n {
            return Err(DataError::at(
                &other.provenance,
                Location::File,
                Problem::Shape(format!(
                    "{}×{} matrices, but {} has {}×{}",
                    other.n, other.n, self.provenance, self.n, self.n
                )),
            ));
        }
        let mut labels = self.labels.clone();
        for &l in &other.labels {
            let name = &other.class_names[l];
            let c = self
                .class_names
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| {
                    DataError::at(
                        &other.provenance,
                        Location::File,
                        Problem::UnknownLabel(format!(
                            "{name} (not a class of {})",
                            self.provenance
                        )),
                    )
                })?;
            labels.push(c);
        }
        let mut matrices = self.matrices.clone();
        matrices.extend_from_slice(&other.matrices);
        Ok(Dataset {
            n: self.n,
            matrices,
            labels,
            class_names: self.class_names.clone(),
            provenance: format!("{} + {}", self.provenance, other.provenance),
        })
    }

    /// Counts, class balance and spectrum range.
    pub fn summary(&self) -> Summary {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        let mut conditions = Vec::with_capacity(self.len());
        let mut traces = (f64::INFINITY, 0.0f64);
        for i in 0..self.len() {
            let m = self.matrix(i);
            let t: f64 = (0..self.n).map(|k| m[(k, k)]).sum();
            traces = (traces.0.min(t), traces.1.max(t));
            if let Ok(v) = spd_linalg::eigvalsh(m) {
                let (a, b) = (v[0], v[v.len() - 1]);
                lo = lo.min(a);
                hi = hi.max(b);
                conditions.push(b / a);
            }
        }
        conditions.sort_by(f64::total_cmp);
        let cond = conditions.last().copied().unwrap_or(1.0);
        let median_condition = conditions.get(conditions.len() / 2).copied().unwrap_or(1.0);
        let rank_deficient = conditions
            .iter()
            .filter(|&&c| c > RANK_DEFICIENT_CONDITION)
            .count();
        Summary {
            samples: self.len(),
            n: self.n,
            classes: self
                .class_names
                .iter()
                .cloned()
                .zip(self.class_counts())
                .collect(),
            min_eigenvalue: lo,
            max_eigenvalue: hi,
            max_condition: cond,
            median_condition,
            rank_deficient,
            trace_range: traces,
        }
    }
}

fn validate_matrix(m: &mut [f64], n: usize, v: &Validation) -> std::result::Result<(), Problem> {
    for (k, &x) in m.iter().enumerate() {
        if !x.is_finite() {
            return Err(Problem::NotFinite {
                row: k % n,
                col: k / n,
                value: x,
            });
        }
    }
    match v.symmetry {
        SymmetryPolicy::Strict { tolerance } => {
            let scale = m.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            for j in 0..n {
                for i in (j + 1)..n {
                    let difference = (m[i + j * n] - m[j + i * n]).abs();
                    if difference > tolerance * scale {
                        return Err(Problem::NotSymmetric {
                            row: i,
                            col: j,
                            difference,
                            tolerance: tolerance * scale,
                        });
                    }
                }
            }
        }
        SymmetryPolicy::Symmetrize => {
            for j in 0..n {
                for i in (j + 1)..n {
                    let s = 0.5 * (m[i + j * n] + m[j + i * n]);
                    m[i + j * n] = s;
                    m[j + i * n] = s;
                }
            }
        }
    }
    let mean_diag = (0..n).map(|i| m[i + i * n]).sum::<f64>() / n as f64;
    match v.regularization {
        Regularization::None => {}
        Regularization::TraceShift(eps) => (0..n).for_each(|i| m[i + i * n] += eps * mean_diag),
        Regularization::Shrink(alpha) => {
            m.iter_mut().for_each(|x| *x *= 1.0 - alpha);
            (0..n).for_each(|i| m[i + i * n] += alpha * mean_diag);
        }
    }
    let view = MatRef::from_column_major_slice(m, n, n);
    let checked = spd_linalg::validate::check_spd_with_tolerance(view, f64::INFINITY);
    if checked.is_ok() && v.trace_normalize {
        let scale = n as f64 / (0..n).map(|i| m[i + i * n]).sum::<f64>();
        m.iter_mut().for_each(|x| *x *= scale);
    }
    match checked {
        Ok(()) => Ok(()),
        Err(spd_linalg::LinalgError::NotPositiveDefinite { min_eigenvalue, .. }) => {
            Err(Problem::NotPositiveDefinite { min_eigenvalue })
        }
        Err(e) => Err(Problem::Invalid(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<f64> {
        vec![2.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0, 3.0]
    }

    #[test]
    fn accepts_valid_data() {
        let d = Dataset::new(
            2,
            two(),
            vec![0, 1],
            vec!["a".into(), "b".into()],
            "mem",
            &Validation::default(),
        )
        .unwrap();
        assert_eq!((d.len(), d.n(), d.class_counts()), (2, 2, vec![1, 1]));
        assert_eq!(d.subset(&[1]).labels(), &[1]);
        let s = d.summary();
        assert!((s.max_eigenvalue - 3.0).abs() < 1e-12);
    }

    #[test]
    fn names_sample_and_problem() {
        let v = Validation::default();
        let names = vec!["a".to_string(), "b".to_string()];
        let mut m = two();
        m[5] = f64::NAN;
        let e = Dataset::new(2, m, vec![0, 1], names.clone(), "f.npz", &v).unwrap_err();
        assert_eq!(e.location, Location::Sample(1));
        assert!(
            e.to_string()
                .starts_with("f.npz: sample 1: entry (1, 0) is not finite"),
            "{e}"
        );
        let mut m = two();
        m[1] = 0.7;
        let e = Dataset::new(2, m.clone(), vec![0, 1], names.clone(), "f", &v).unwrap_err();
        assert!(matches!(e.problem, Problem::NotSymmetric { .. }));
        let sym = Validation {
            symmetry: SymmetryPolicy::Symmetrize,
            ..Default::default()
        };
        let d = Dataset::new(2, m, vec![0, 1], names.clone(), "f", &sym).unwrap();
        assert_eq!(d.matrix(0)[(0, 1)], 0.6);
        let indefinite = vec![1.0, 2.0, 2.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let e =
            Dataset::new(2, indefinite.clone(), vec![0, 1], names.clone(), "f", &v).unwrap_err();
        assert!(
            matches!(e.problem, Problem::NotPositiveDefinite { min_eigenvalue } if (min_eigenvalue + 1.0).abs() < 1e-12)
        );
        let shrink = Validation {
            regularization: Regularization::Shrink(0.9),
            ..Default::default()
        };
        assert!(Dataset::new(2, indefinite, vec![0, 1], names.clone(), "f", &shrink).is_ok());
        assert!(matches!(
            Dataset::new(2, two(), vec![0], names.clone(), "f", &v)
                .unwrap_err()
                .problem,
            Problem::CountMismatch {
                matrices: 2,
                labels: 1
            }
        ));
        assert!(matches!(
            Dataset::new(2, two(), vec![0, 0], names.clone(), "f", &v)
                .unwrap_err()
                .problem,
            Problem::EmptyClass(_)
        ));
        assert!(matches!(
            Dataset::new(2, two(), vec![0, 2], names, "f", &v)
                .unwrap_err()
                .problem,
            Problem::UnknownLabel(_)
        ));
    }
}
