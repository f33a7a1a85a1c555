//! `spd-linalg`: the linear algebra of symmetric positive definite (SPD) matrices that spdnas
//! builds on, on top of [faer](https://docs.rs/faer). Pure functions, no tape.
//!
//! - [`mod@eigh`]: symmetric eigendecomposition `A = U diag(λ) Uᵀ` with reusable scratch
//!   ([`EighWorkspace`]) and an instrumented counter ([`evd_count`]).
//! - [`mod@spectral`]: `F(X) = U f(Λ) Uᵀ` for log, exp, sqrt, `X^{-1/2}`, `X^t`, ReEig or any
//!   function with its derivative, and the exact Daleckii–Krein backward.
//! - [`jacobi`]: eight eigendecompositions of one size at once (cyclic Jacobi across SIMD
//!   lanes), each lane's bits independent of the others.
//! - [`batch`]: the same over contiguous batches of matrices, parallel with rayon (lane groups
//!   of the batched Jacobi solver up to `n = 16`), bit-identical for any thread count and any
//!   batch size.
//! - [`capped_exp`]: the exponential with a spectrum-relative floor that bounds the output's
//!   condition number (log-domain pooling).
//! - [`airm`] and [`mean`]: affine-invariant distance, Exp/Log maps, geodesics, parallel
//!   transport, weighted Karcher and log-Euclidean means.
//! - [`stiefel`]: tangent projection and QR, polar and Cayley retractions.
//! - [`validate`], [`random`]: typed checks (`check_spd`) and seeded generators.
//!
//! All matrices are `f64`. Callers parallelise over matrices, so every routine here runs with
//! `Par::Seq`; binaries should also call `faer::set_global_parallelism(faer::Par::Seq)`.

pub mod airm;
pub mod batch;
pub mod capped_exp;
mod counter;
pub mod dense;
pub mod eigh;
mod error;
pub mod jacobi;
mod lanes;
pub mod mean;
pub mod random;
pub mod spectral;
pub mod stiefel;
pub mod tridiag_qr;
pub mod validate;

#[cfg(test)]
mod test_support;

pub use airm::{
    SpdPoint, distance, exp_map, geodesic, log_euclidean_distance, log_map, parallel_transport,
};
pub use batch::{
    BATCHED_JACOBI_MAX, EighBatch, eigh_batch, eigh_batch_seq, spectral_backward_batch,
    spectral_batch,
};
pub use capped_exp::{CappedExp, LOG_CONDITION_CAP, capped_exp_backward_batch, capped_exp_batch};
pub use counter::{evd_count, evd_counts_by_size};
pub use dense::{congruence, symmetrize};
pub use eigh::{EighWorkspace, SymEig, eigh, eigvalsh};
pub use error::{LinalgError, Result};
pub use faer;
pub use mean::{KarcherMean, KarcherOptions, karcher_mean, log_euclidean_mean};
pub use spectral::{
    Custom, Exp, InvSqrt, Log, Pow, ReEig, SpectralFn, SpectralWorkspace, expm, inv_sqrtm, logm,
    powm, reeig, spectral, spectral_backward, sqrtm,
};
pub use stiefel::{
    canonical_gradient, orthonormality_error, project_tangent, retract_cayley, retract_polar,
    retract_qr,
};
pub use validate::{check_finite, check_spd, check_symmetric};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
