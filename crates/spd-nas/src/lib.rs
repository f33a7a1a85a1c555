//! `spd-nas`: SPDNetNAS (Sukthanker et al., IJCAI 2021) — the SPD search space, the supernet
//! whose edges mix candidates by weighted Fréchet means, the bilevel architecture search with
//! Riemannian virtual steps, genotypes and the networks derived from them.
//!
//! - [`space`]: the candidate lists (v0, v1) and the `BiMap_1/2_reduced` naming switch (D1).
//! - [`ops`]: the candidate operations; [`network`]: cells, supernet, derived network.
//! - [`arch`]: α, kept apart from the network weights (D3).
//! - [`genotype`]: derivation, JSON, DOT, the published genotypes.
//! - [`search`]: first- and second-order search steps and epochs, of any [`supernet`].
//! - [`darts`]: DARTS and FairDARTS on log-matrix images, the Euclidean baselines.
//! - [`schedule`]: weight optimiser, learning-rate schedule, epoch budget.
//! - [`runner`]: the one epoch loop under search and training, with observers, checkpointers
//!   and interrupters; [`seeds`]: the salts of every random stream.
//! - [`estimator`]: every method behind one fit/predict trait; [`saved`]: model files.

pub mod arch;
pub mod baselines;
pub mod darts;
mod error;
pub mod estimator;
pub mod genotype;
pub mod network;
pub mod network_config;
pub mod ops;
pub mod runner;
pub mod saved;
pub mod schedule;
pub mod search;
pub mod seeds;
pub mod space;
pub mod supernet;
pub mod train;

pub use arch::ArchParams;
pub use error::{NasError, Result};
pub use estimator::Estimator;
pub use genotype::Genotype;
pub use network::Network;
pub use network_config::{NetworkConfig, NetworkSpec};

/// What a user of the estimators needs, in one import: `use spd_nas::prelude::*;`.
pub mod prelude {
    pub use crate::estimator::{
        DartsClassifier, DartsLayout, DartsParams, Estimator, GenotypeChoice, GenotypeClassifier,
        GenotypeParams, MdmClassifier, SpdNetClassifier, SpdNetLayout, SpdNetNasClassifier,
        SpdNetNasParams, SpdNetParams, TslrClassifier, TslrParams,
    };
    pub use crate::runner::{Ended, Hooks, Observer};
    pub use crate::saved::SavedModel;
    pub use crate::schedule::{LrSchedule, WeightOptimizer};
    pub use crate::search::{Order, SearchConfig};
    pub use crate::train::TrainConfig;
    pub use crate::{Genotype, NasError, NetworkSpec};
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
