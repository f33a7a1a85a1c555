use thiserror::Error;

/// Every way a linear-algebra routine of this crate can refuse its input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LinalgError {
    /// An entry is NaN or infinite.
    #[error("entry ({row}, {col}) is not finite: {value}")]
    NotFinite {
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        col: usize,
        /// The value found.
        value: f64,
    },
    /// `|a_ij − a_ji|` exceeds the tolerance.
    #[error(
        "not symmetric: entry ({row}, {col}) = {upper:e} but ({col}, {row}) = {lower:e}, \
         difference {difference:e} exceeds {tolerance:e}"
    )]
    NotSymmetric {
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        col: usize,
        /// The entry above the diagonal.
        upper: f64,
        /// The entry below the diagonal.
        lower: f64,
        /// Their absolute difference.
        difference: f64,
        /// The tolerance exceeded.
        tolerance: f64,
    },
    /// Cholesky failed: the matrix has a non-positive eigenvalue.
    #[error(
        "not positive definite: Cholesky pivot {pivot} is not positive \
         (smallest eigenvalue {min_eigenvalue:e})"
    )]
    NotPositiveDefinite {
        /// The failing pivot.
        pivot: usize,
        /// The smallest eigenvalue.
        min_eigenvalue: f64,
    },
    /// A spectral function was asked for an eigenvalue outside its domain.
    #[error("{function} is undefined at eigenvalue {eigenvalue:e} (it needs λ > 0)")]
    OutsideDomain {
        /// The spectral function.
        function: &'static str,
        /// The offending eigenvalue.
        eigenvalue: f64,
    },
    /// Operand sizes do not fit together.
    #[error("dimension mismatch in {context}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// Where the sizes met.
        context: &'static str,
        /// The size expected.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// Mean weights that are negative, non-finite or sum to zero.
    #[error("invalid weights: {reason}")]
    InvalidWeights {
        /// What is wrong.
        reason: &'static str,
    },
    /// The symmetric QR iteration did not converge.
    #[error("eigendecomposition did not converge")]
    NoConvergence,
    /// A decomposition other than the EVD failed (e.g. an SVD in a retraction).
    #[error("{0} did not converge")]
    Decomposition(&'static str),
    /// The error of one matrix of a batch, with its position.
    #[error("matrix {index} of the batch: {source}")]
    InBatch {
        /// Position in the batch.
        index: usize,
        /// The underlying error.
        source: Box<LinalgError>,
    },
}

impl LinalgError {
    /// Tags the error with the index of the batch matrix it came from.
    pub fn in_batch(self, index: usize) -> Self {
        LinalgError::InBatch {
            index,
            source: Box::new(self),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = LinalgError> = std::result::Result<T, E>;

/// The first of `(context, expected, found)` whose sizes differ, as a `DimensionMismatch`.
pub(crate) fn check_sizes(checks: &[(&'static str, usize, usize)]) -> Result<()> {
    match checks.iter().find(|(_, expected, found)| expected != found) {
        Some(&(context, expected, found)) => Err(LinalgError::DimensionMismatch {
            context,
            expected,
            found,
        }),
        None => Ok(()),
    }
}
