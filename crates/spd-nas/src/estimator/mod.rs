//! One estimator API under every method: SPDNetNAS (search, derive, train), a network of a
//! given or random genotype, SPDNet and SPDNetBN, DARTS and FairDARTS on log-matrix images
//! (search, derive, train), MDM and tangent-space logistic regression.
//! An estimator is built from a validated parameter struct, fitted on a dataset and a split
//! (the training part fits, the validation part selects; the test part is never touched), and
//! then scores samples. Fitting runs its epoch loops through [`crate::runner`], so the caller's
//! observer, checkpointer and interrupter see and steer every method alike.

mod classical;
mod darts;
mod network;
mod search_stage;
mod spdnetnas;

pub use classical::{MdmClassifier, TslrClassifier, TslrParams};
pub use darts::{DartsClassifier, DartsLayout, DartsParams};
pub use network::{
    FittedNetwork, GenotypeChoice, GenotypeClassifier, GenotypeParams, SpdNetClassifier,
    SpdNetLayout, SpdNetParams, Trained,
};
pub use search_stage::SearchOutcome;
pub use spdnetnas::{SpdNetNasClassifier, SpdNetNasParams};

use spd_autograd::ops::loss::argmax;
use spd_data::Dataset;
use spd_data::split::Split;

use crate::baselines::accuracy;
use crate::darts::DartsGenotype;
use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::runner::{Ended, Hooks};
use crate::saved::SavedModel;

/// A classifier of SPD matrices in the manner of scikit-learn: fit, then score.
pub trait Estimator {
    /// The method's display name (`"SPDNetBN"`).
    fn name(&self) -> &'static str;

    /// Fits on `split.train` (with `split.val` for model selection where the method selects).
    /// Returns [`Ended::Interrupted`] when the interrupter stopped a loop; fitting again with
    /// the same checkpointer continues it.
    fn fit(&mut self, data: &Dataset, split: &Split, hooks: &mut Hooks) -> Result<Ended>;

    /// Class scores of the samples `indices`, one row each: logits for the networks and TSLR,
    /// `−δ(X, M_k)` (the negated affine-invariant distance to each class mean) for MDM.
    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>>;

    /// Class probabilities, one row each: the softmax of the decision function (MDM:
    /// `softmax(−δ²)`, as pyRiemann).
    fn predict_proba(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        Ok(self
            .decision_function(data, indices)?
            .iter()
            .map(|row| softmax(row))
            .collect())
    }

    /// The class of the largest score (the first on ties).
    fn predict(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<usize>> {
        Ok(self
            .decision_function(data, indices)?
            .iter()
            .map(|row| argmax(row))
            .collect())
    }

    /// Accuracy on `indices`.
    fn score(&self, data: &Dataset, indices: &[usize]) -> Result<f64> {
        Ok(accuracy(data, indices, &self.predict(data, indices)?))
    }

    /// The cell of a fitted network of the search space (SPDNetNAS, a given or random
    /// genotype); `None` for the other methods.
    fn genotype(&self) -> Option<&Genotype> {
        None
    }

    /// The cells of a fitted searched or drawn network, whichever search space they come
    /// from (SPDNetNAS's, DARTS's); `None` for the other methods.
    fn cells(&self) -> Option<Cells<'_>> {
        self.genotype().map(Cells::Spd)
    }

    /// The fitted model as a model file (the networks); an error for methods that have none.
    fn to_saved(
        &self,
        class_names: Vec<String>,
        provenance: Option<serde_json::Value>,
    ) -> Result<SavedModel> {
        let _ = (class_names, provenance);
        Err(NasError::Config(format!(
            "{} has no model file format",
            self.name()
        )))
    }

    /// Trainable scalar parameters of the fitted model (0 for MDM; TSLR counts its weights and
    /// biases, not the reference point).
    fn n_params(&self) -> Result<usize>;
}

/// The cells of a network, from either search space, as the files that show them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cells<'a> {
    /// SPDNetNAS's SPD search space.
    Spd(&'a Genotype),
    /// DARTS's Euclidean one.
    Darts(&'a DartsGenotype),
}

impl Cells<'_> {
    /// The genotype as JSON.
    pub fn to_json(self) -> String {
        match self {
            Cells::Spd(g) => g.to_json(),
            Cells::Darts(g) => g.to_json(),
        }
    }

    /// The cells as a Graphviz drawing.
    pub fn to_dot(self) -> String {
        match self {
            Cells::Spd(g) => g.to_dot(),
            Cells::Darts(g) => g.to_dot(),
        }
    }
}

/// `e^{z_i − max z} / Σ_j e^{z_j − max z}`.
pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}
