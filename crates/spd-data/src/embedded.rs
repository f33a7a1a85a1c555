//! Data shipped inside the crate: the real BasicMotions recordings (UEA archive, BSD-3-Clause,
//! licence in `data/basicmotions/LICENSE`).

use crate::covariance::CovarianceOptions;
use crate::dataset::{Dataset, Validation};
use crate::error::{DataError, Result};
use crate::load::series_to_dataset;
use crate::ts::{MissingPolicy, TimeSeriesSet, parse_ts};

const TRAIN: &str = include_str!("../data/basicmotions/BasicMotions_TRAIN.ts");
const TEST: &str = include_str!("../data/basicmotions/BasicMotions_TEST.ts");

/// The 80 BasicMotions series (40 from the archive's TRAIN file, then its 40 TEST series):
/// 6 channels (3-D accelerometer, 3-D gyroscope) of length 100, 4 classes.
pub fn basicmotions_series() -> Result<TimeSeriesSet> {
    let parse = |text, name: &str| {
        parse_ts(text, MissingPolicy::Error).map_err(|(l, p)| DataError::at(name, l, p))
    };
    let mut set = parse(TRAIN, "BasicMotions_TRAIN.ts")?;
    let test = parse(TEST, "BasicMotions_TEST.ts")?;
    set.series.extend(test.series);
    set.labels.extend(test.labels);
    Ok(set)
}

/// BasicMotions as 6×6 covariances (Ledoit–Wolf by default).
pub fn basicmotions(cov: CovarianceOptions) -> Result<Dataset> {
    series_to_dataset(
        &basicmotions_series()?,
        cov,
        "embedded BasicMotions",
        &Validation::default(),
    )
}
