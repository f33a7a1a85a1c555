use spd_autograd::AutogradError;
use thiserror::Error;

/// Errors of the search space, networks, genotypes and search.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NasError {
    /// A differentiable op refused its input.
    #[error(transparent)]
    Autograd(#[from] AutogradError),
    /// An invalid configuration, with what is wrong.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A setting outside its range: the field (its dotted path in the parameter struct, e.g.
    /// `train.lr`), the value given, and the rule it breaks.
    #[error("{field} = {value}: {rule}")]
    Setting {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A run that cannot produce its result (a search in which α never moved, a training
    /// that ran no epoch).
    #[error("{0}")]
    Run(String),
    /// A method asked for something it has not fitted yet.
    #[error("{0} is not fitted: call fit first")]
    NotFitted(&'static str),
    /// A genotype that does not fit the search space or the network.
    #[error("invalid genotype: {0}")]
    Genotype(String),
    /// A manifold operation on a parameter failed at run time (retraction, Riemannian
    /// gradient, transport).
    #[error("{what} of parameter {param}: {source}")]
    Manifold {
        /// The operation.
        what: &'static str,
        /// The parameter's name.
        param: String,
        /// The failure.
        source: spd_linalg::LinalgError,
    },
    /// Writing or reading a checkpoint failed (disk full, permissions, a corrupt file).
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A failure during a step of a search or training loop, with where it happened and what
    /// the user can try.
    #[error("{stage} epoch {epoch}, step {step}: {source}; {HINT}")]
    InStep {
        /// `"search"` or `"training"`.
        stage: &'static str,
        /// Epoch (from 0).
        epoch: usize,
        /// Step within the epoch (from 0).
        step: usize,
        /// The failure.
        source: Box<NasError>,
    },
}

/// What a user can try after a numerical failure inside a step.
const HINT: &str = "the data may be too ill-conditioned: try --shrinkage 0.01, --ridge 1e-3 or --trace-normalize (`spdnas data inspect` reports condition numbers)";

impl NasError {
    /// Tags the error with the loop step it happened in.
    pub fn in_step(self, stage: &'static str, epoch: usize, step: usize) -> Self {
        match self {
            e @ (NasError::Config(_)
            | NasError::Setting { .. }
            | NasError::NotFitted(_)
            | NasError::Run(_)
            | NasError::Genotype(_)
            | NasError::InStep { .. }) => e,
            e => NasError::InStep {
                stage,
                epoch,
                step,
                source: Box::new(e),
            },
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = NasError> = std::result::Result<T, E>;

/// `Err(Setting)` unless `ok`.
pub(crate) fn ensure(
    ok: bool,
    field: &'static str,
    value: impl std::fmt::Display,
    rule: &str,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(NasError::Setting {
            field,
            value: value.to_string(),
            rule: rule.to_string(),
        })
    }
}
