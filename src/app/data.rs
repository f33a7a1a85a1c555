//! Where a run's data comes from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spd_data::covariance::CovarianceOptions;
use spd_data::radar::{RadarConfig, radar_dataset};
use spd_data::{Dataset, Format, LoadOptions};

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
    /// A file or folder in one of the supported formats.
    Path {
        /// Path.
        path: PathBuf,
        /// Reading options (format, labels file, validation, front end).
        options: LoadOptions,
    },
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

    /// Loads (or generates) the data.
    pub fn load(&self) -> Result<Dataset> {
        Ok(match self {
            DataSource::RadarSynthetic { config, seed } => radar_dataset(config, *seed)?,
            DataSource::BasicMotions => {
                spd_data::embedded::basicmotions(CovarianceOptions::default())?
            }
            DataSource::Path { path, options } => spd_data::load(path, options)?,
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
        }
    }
}
