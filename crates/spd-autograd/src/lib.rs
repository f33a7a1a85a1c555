//! `spd-autograd`: reverse-mode differentiation for SPD manifold networks.
//!
//! - [`Tensor`]: `[batch, channels, rows, cols]` of `f64`, matrices contiguous and column-major.
//! - [`Graph`]: a define-by-run tape; ops in [`ops`] record their backward rule with the values
//!   it needs (eigenvectors, masks); [`Graph::backward`] returns the Euclidean gradient of every
//!   leaf and, summed over uses, of every parameter.
//! - [`ParamStore`], [`Manifold`]: named parameters that know where they live (Euclidean,
//!   Stiefel, SPD) and the buffers (batch-norm running means) a checkpoint needs.
//! - [`optim`]: SGD and Adam, Riemannian on manifold parameters; gradient clipping.
//! - [`layers`]: BiMap, Riemannian batch norm, linear head.
//! - [`gradcheck`]: the finite-difference checker every op is tested with.
//!
//! Per-matrix work runs in parallel over the matrices of a tensor; every reduction over
//! matrices is summed in index order, so results are bit-identical on any number of threads;
//! [`on_worker`] runs a step on the pool so those loops do not wake the caller each time.

mod error;
pub mod euclid;
pub mod gradcheck;
mod graph;
pub mod layers;
mod manifold;
pub mod ops;
pub mod optim;
mod param;
mod tensor;
mod worker;

pub use error::{AutogradError, Result};
pub use graph::{Backward, BackwardContext, Gradients, Graph, Var};
pub use manifold::{MANIFOLD_TOLERANCE, Manifold, StiefelMetric};
pub use param::{Param, ParamId, ParamStore};
pub use tensor::Tensor;
pub use worker::on_worker;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
