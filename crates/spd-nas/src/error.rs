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
    /// A genotype that does not fit the search space or the network.
    #[error("invalid genotype: {0}")]
    Genotype(String),
}

/// Result alias of this crate.
pub type Result<T, E = NasError> = std::result::Result<T, E>;
