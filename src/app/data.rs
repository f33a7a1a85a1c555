//! Where a run's data comes from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spd_data::covariance::{CovarianceOptions, Estimator};
use spd_data::radar::{RadarConfig, radar_dataset};
use spd_data::{Dataset, Format, LoadOptions, Regularization, SymmetryPolicy, Validation};

use super::error::Result;

/// A dataset: generated, embedded or read from disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// The synthetic micro-Doppler RADAR (`spd_data::radar`), 20×20 window covariances.
    RadarSynthetic {
        /// Generator settings.
        config: RadarConfig,
        /// Generator seed.
        seed: u64,
    },
    /// The embedded BasicMotions recordings as 6×6 covariances.
    BasicMotions,
    /// Arrays handed over in memory (the Python package): recorded, but not reloadable.
    Arrays {
        /// How the caller describes them.
        label: String,
    },
    /// A file or folder in one of the supported formats.
    Path {
        /// Path.
        path: PathBuf,
        /// Reading options (format, labels file, validation, front end).
        options: LoadOptions,
    },
}

/// How samples are prepared before any method sees them, whatever their source (recorded in
/// `config.json`): the covariance estimator for time series, symmetrisation, regularisation
/// and trace normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Preparation {
    /// Covariance estimator of time-series data (`--estimator scm|lwf|oas`).
    #[serde(default)]
    pub estimator: Estimator,
    /// Symmetry, regularisation and scaling of every matrix.
    #[serde(default)]
    pub validation: Validation,
}

impl Preparation {
    fn covariance(&self) -> CovarianceOptions {
        CovarianceOptions {
            estimator: self.estimator,
            trace_normalize: false,
        }
    }

    /// Whether the matrices are changed after they are read or generated.
    fn changes_matrices(&self) -> bool {
        self.validation.regularization != Regularization::None
            || self.validation.trace_normalize
            || self.validation.symmetry == SymmetryPolicy::Symmetrize
    }
}

impl DataSource {
    /// The default synthetic RADAR (1000 signals per class, calibrated SNR).
    pub fn radar(seed: u64) -> Self {
        DataSource::RadarSynthetic {
            config: RadarConfig::default(),
            seed,
        }
    }

    /// A path, format detected unless given.
    pub fn path(path: PathBuf, format: Option<Format>, labels: Option<PathBuf>) -> Self {
        DataSource::Path {
            path,
            options: LoadOptions {
                format,
                labels,
                ..Default::default()
            },
        }
    }

    /// Loads (or generates) the data as it is.
    pub fn load(&self) -> Result<Dataset> {
        self.load_prepared(&Preparation::default())
    }

    /// Loads (or generates) the data and prepares it.
    pub fn load_prepared(&self, prep: &Preparation) -> Result<Dataset> {
        let generated = match self {
            DataSource::RadarSynthetic { config, seed } => radar_dataset(config, *seed)?,
            DataSource::BasicMotions => spd_data::embedded::basicmotions(prep.covariance())?,
            DataSource::Path { path, options } => {
                let options = LoadOptions {
                    validation: prep.validation,
                    covariance: prep.covariance(),
                    ..options.clone()
                };
                return Ok(spd_data::load(path, &options)?);
            }
            DataSource::Arrays { label } => {
                return Err(super::AppError::Input(format!(
                    "{label}: in-memory arrays cannot be loaded again; give the data with --data"
                )));
            }
        };
        Ok(if prep.changes_matrices() {
            generated.prepared(&prep.validation)?
        } else {
            generated
        })
    }

    /// A short name for tables.
    pub fn label(&self) -> String {
        match self {
            DataSource::RadarSynthetic { config, .. } => {
                format!("synthetic RADAR ({} dB SNR)", config.snr_db)
            }
            DataSource::BasicMotions => "BasicMotions".into(),
            DataSource::Path { path, .. } => path.display().to_string(),
            DataSource::Arrays { label } => label.clone(),
        }
    }
}
