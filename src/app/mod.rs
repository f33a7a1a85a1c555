//! The application layer behind the `spdnas` command: whole runs (search → derive → train →
//! baselines → report), the individual stages, and their files. The CLI only parses arguments,
//! calls these functions and prints what they return.

mod data;
mod error;
pub mod plot;
mod repeat;
mod run;

pub use data::{DataSource, Preparation};
pub use error::{AppError, Result};
pub use repeat::*;
pub use run::*;

/// Progress of a long stage (search epochs, training epochs); the CLI draws bars with it.
pub trait Progress {
    /// A stage of `total` steps starts.
    fn start(&self, label: &str, total: u64);
    /// One step done, with a short status.
    fn tick(&self, status: &str);
    /// The stage is over.
    fn finish(&self);
}

/// Progress that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn tick(&self, _: &str) {}
    fn finish(&self) {}
}
