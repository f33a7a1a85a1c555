//! The application layer behind the `spdnas` command: whole runs (search → derive → train →
//! baselines → report), the individual stages, and their files. Every method runs as an
//! [`spd_nas::Estimator`] under the [`spd_nas::runner`]; the CLI only parses arguments, calls
//! these functions and prints what they return.

mod arrays;
mod config;
mod data;
mod error;
mod files;
mod overrides;
pub mod plot;
mod progress;
mod repeat;
mod report;
mod run;

pub use arrays::{FittedArrays, Method, fit_arrays, model_scores};
pub use config::{Baseline, Prepared, Preset, RunConfig};
pub use data::{DataSource, Preparation};
pub use error::{AppError, Result};
pub use files::{
    LogFiles, ParameterCount, default_run_dir, genotype_from, genotype_params, write_cells,
    write_text,
};
pub use overrides::Overrides;
pub use progress::Bars;
pub use repeat::*;
pub use report::{Report, Timings, table};
pub use run::*;
pub use spd_nas::runner::{Interrupter, Never, Observer, Silent, StopAfter, StopFlag};
