//! `spd-data`: SPD datasets for spdnas.
//!
//! - [`Dataset`]: SPD matrices + labels + class names + provenance, validated when built
//!   (finite, symmetric or explicitly symmetrised, positive definite or explicitly regularised).
//! - Readers: [`npy`], [`npz`], [`mat`] (level 5), [`ts`] (UEA/UCR), [`folder`] (the paper's
//!   per-sample layout), all behind [`load()`]; every error names the file, the sample or line,
//!   and the problem ([`DataError`]), and no input makes a reader panic.
//! - Front ends ([`covariance`]): sample / Ledoit–Wolf / OAS covariance of series, and the
//!   window covariance of complex signals.
//! - Generators: a micro-Doppler [`radar`] dataset, class-conditional SPD [`gaussian`]s, and
//!   EEG-like mixed-[`sources`] recordings.
//! - [`split`]: stratified seeded splits and mini-batches; [`embedded`]: BasicMotions.

pub mod covariance;
mod dataset;
pub mod embedded;
mod error;
pub mod folder;
pub mod gaussian;
pub mod load;
pub mod mat;
pub mod npy;
pub mod npz;
pub mod radar;
pub mod sources;
pub mod split;
pub mod ts;

#[cfg(test)]
mod test_support;

pub use dataset::{Dataset, Regularization, Summary, SymmetryPolicy, Validation};
pub use error::{DataError, Location, Problem, Result, write_atomic};
pub use load::{Format, LoadOptions, load};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
