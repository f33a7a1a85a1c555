use spd_linalg::LinalgError;
use thiserror::Error;

/// Errors of graph construction, differentiation and optimisation.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AutogradError {
    /// Operand shapes do not fit the op.
    #[error("{op}: shape mismatch: {detail}")]
    Shape {
        /// The op.
        op: &'static str,
        /// What does not fit.
        detail: String,
    },
    /// A numerical routine refused its input (non-SPD matrix, non-convergence, ...).
    #[error("{op}: {source}")]
    Linalg {
        /// The op.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: LinalgError,
    },
    /// `backward` was called on a non-scalar output.
    #[error("backward needs a scalar loss, got shape {0:?}")]
    NotScalar([usize; 4]),
    /// A parameter name or id that the store does not hold.
    #[error("unknown parameter {0}")]
    UnknownParameter(String),
    /// Invalid hyper-parameter or argument.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = AutogradError> = std::result::Result<T, E>;

pub(crate) fn shape_err(op: &'static str, detail: impl Into<String>) -> AutogradError {
    AutogradError::Shape {
        op,
        detail: detail.into(),
    }
}

pub(crate) trait LinalgContext<T> {
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> LinalgContext<T> for std::result::Result<T, LinalgError> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| AutogradError::Linalg { op, source })
    }
}
