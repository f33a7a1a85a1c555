//! The classical pipelines as estimators: MDM and tangent-space logistic regression. Both fit
//! on the training part only and run no epoch loop.

use serde::{Deserialize, Serialize};
use spd_data::Dataset;
use spd_data::split::Split;

use super::{Estimator, softmax};
use crate::baselines::{Mdm, Tslr};
use crate::error::{NasError, Result, ensure};
use crate::runner::{Ended, Hooks};
use crate::seeds;

/// Minimum distance to the Riemannian class mean (Barachant et al. 2012).
#[derive(Debug, Clone, Default)]
pub struct MdmClassifier {
    fitted: Option<Mdm>,
}

impl MdmClassifier {
    /// An unfitted classifier.
    pub fn new() -> Self {
        Self::default()
    }

    fn model(&self) -> Result<&Mdm> {
        self.fitted.as_ref().ok_or(NasError::NotFitted("MDM"))
    }
}

impl Estimator for MdmClassifier {
    fn name(&self) -> &'static str {
        "MDM"
    }

    fn fit(&mut self, data: &Dataset, split: &Split, _: &mut Hooks) -> Result<Ended> {
        self.fitted = Some(Mdm::fit(data, &split.train)?);
        Ok(Ended::Finished)
    }

    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        let d = self.model()?.distances(data, indices)?;
        Ok(d.iter()
            .map(|row| row.iter().map(|v| -v).collect())
            .collect())
    }

    fn predict_proba(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        let d = self.model()?.distances(data, indices)?;
        Ok(d.iter()
            .map(|row| softmax(&row.iter().map(|v| -v * v).collect::<Vec<_>>()))
            .collect())
    }

    fn n_params(&self) -> Result<usize> {
        self.model().map(|_| 0)
    }
}

/// Settings of tangent-space logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TslrParams {
    /// L2 strength λ of `mean CE + (λ/2)‖W‖²`.
    pub l2: f64,
    /// Full-batch Adam iterations.
    pub iterations: usize,
    /// Seed of the initial weights (salt [`seeds::TSLR_INIT`]).
    pub seed: u64,
}

impl Default for TslrParams {
    fn default() -> Self {
        Self {
            l2: 1e-3,
            iterations: 300,
            seed: 0,
        }
    }
}

impl TslrParams {
    /// Rejects settings no fit can use.
    pub fn check(&self) -> Result<()> {
        ensure(
            self.l2.is_finite() && self.l2 >= 0.0,
            "l2",
            self.l2,
            "must be finite and non-negative",
        )?;
        ensure(
            self.iterations > 0,
            "iterations",
            self.iterations,
            "must be positive",
        )
    }
}

/// Tangent-space logistic regression (pyRiemann's `TangentSpace` + logistic regression).
#[derive(Debug, Clone)]
pub struct TslrClassifier {
    /// Settings.
    pub params: TslrParams,
    fitted: Option<Tslr>,
}

impl TslrClassifier {
    /// An unfitted classifier; fails on invalid settings.
    pub fn new(params: TslrParams) -> Result<Self> {
        params.check()?;
        Ok(Self {
            params,
            fitted: None,
        })
    }

    fn model(&self) -> Result<&Tslr> {
        self.fitted.as_ref().ok_or(NasError::NotFitted("TSLR"))
    }
}

impl Estimator for TslrClassifier {
    fn name(&self) -> &'static str {
        "TSLR"
    }

    fn fit(&mut self, data: &Dataset, split: &Split, _: &mut Hooks) -> Result<Ended> {
        let mut train = split.train.clone();
        train.sort_unstable();
        let p = &self.params;
        self.fitted = Some(Tslr::fit(
            data,
            &train,
            p.l2,
            p.iterations,
            p.seed ^ seeds::TSLR_INIT,
        )?);
        Ok(Ended::Finished)
    }

    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        self.model()?.decision(data, indices)
    }

    fn n_params(&self) -> Result<usize> {
        Ok(self.model()?.params())
    }
}
