//! `spd-nas`: SPDNetNAS (Sukthanker et al., IJCAI 2021) — the SPD search space, the supernet
//! whose edges mix candidates by weighted Fréchet means, the bilevel architecture search with
//! Riemannian virtual steps, genotypes and the networks derived from them.
//!
//! - [`space`]: the candidate lists (v0, v1) and the `BiMap_1/2_reduced` naming switch (D1).
//! - [`ops`]: the candidate operations; [`network`]: cells, supernet, derived network.
//! - [`arch`]: α, kept apart from the network weights (D3).
//! - [`genotype`]: derivation, JSON, DOT, the published genotypes.
//! - [`search`]: first- and second-order search steps and epochs.
//! - [`schedule`]: weight optimiser, learning-rate schedule, epoch budget.

pub mod arch;
pub mod baselines;
mod error;
pub mod genotype;
pub mod network;
pub mod ops;
pub mod schedule;
pub mod search;
pub mod space;
pub mod train;

pub use arch::ArchParams;
pub use error::{NasError, Result};
pub use genotype::Genotype;
pub use network::{Network, NetworkConfig};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
