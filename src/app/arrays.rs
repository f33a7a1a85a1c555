//! Fitting one network on samples held in memory, the entry of the Python package: the run
//! configuration (a preset with overrides), the method, a stratified train/validation split of
//! all the samples, and a fit under the caller's observer and interrupter. What comes back is
//! data: the model file, the per-stage history, the genotype, the parameter count.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use spd_data::Dataset;
use spd_data::split::{SplitFractions, stratified_split};
use spd_nas::Genotype;
use spd_nas::darts::DartsMixing;
use spd_nas::estimator::{
    DartsClassifier, Estimator, GenotypeChoice, GenotypeClassifier, SpdNetClassifier, SpdNetLayout,
    SpdNetNasClassifier, SpdNetParams,
};
use spd_nas::runner::{Ended, History, Hooks, Interrupter, NoCheckpoints, Observer, Observers};
use spd_nas::saved::SavedModel;

use super::{AppError, Result, RunConfig};

/// Which network to fit.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Search, derive, train.
    SpdNetNas,
    /// Train the network of this genotype (no search).
    Genotype(Genotype),
    /// SPDNet, or SPDNetBN with batch norm.
    SpdNet {
        /// Riemannian batch norm after every BiMap.
        batch_norm: bool,
    },
    /// DARTS (softmax) or FairDARTS (sigmoid) on the matrix logarithms: search, derive, train.
    Darts(DartsMixing),
}

/// A fitted network as data.
#[derive(Debug, Clone)]
pub struct FittedArrays {
    /// The model file (the configuration as provenance).
    pub model: SavedModel,
    /// Every epoch's log line, by stage (`search`, `train`, `spdnet`, …).
    pub history: BTreeMap<String, Vec<serde_json::Value>>,
    /// The cells (SPDNetNAS, a given genotype, DARTS, FairDARTS): genotype JSON and its
    /// Graphviz drawing.
    pub cells: Option<(String, String)>,
    /// Trainable scalar parameters.
    pub n_params: usize,
}

/// Fits `method` with `config` on every sample of `data`: `config.split.val` of each class
/// (seeded by the split seed) selects the genotype and the epoch, the rest trains. `Break` when
/// the interrupter stopped it.
pub fn fit_arrays(
    config: &RunConfig,
    method: &Method,
    data: &Dataset,
    interrupter: &dyn Interrupter,
    observer: &mut dyn Observer,
) -> Result<ControlFlow<String, FittedArrays>> {
    config.check()?;
    config
        .network
        .for_data(data.n(), data.num_classes())
        .validate()?;
    let fractions = SplitFractions {
        val: config.split.val,
        test: 0.0,
    };
    let split = stratified_split(
        data.labels(),
        fractions,
        config.split_seed.unwrap_or(config.seed),
    );
    let mut estimator: Box<dyn Estimator> = match method {
        Method::SpdNetNas => Box::new(SpdNetNasClassifier::new(config.spdnetnas())?),
        Method::Genotype(g) => Box::new(GenotypeClassifier::new(
            config.genotype_net(GenotypeChoice::Given(g.clone())),
        )?),
        Method::SpdNet { batch_norm } => Box::new(SpdNetClassifier::new(SpdNetParams {
            layout: SpdNetLayout::Auto,
            batch_norm: *batch_norm,
            train: config.train.clone(),
            seed: config.seed,
        })?),
        Method::Darts(mixing) => Box::new(DartsClassifier::new(config.darts(*mixing))?),
    };
    let mut history = History::default();
    let ended = {
        let mut observers = Observers(vec![&mut history, observer]);
        let mut hooks = Hooks {
            observer: &mut observers,
            checkpointer: &NoCheckpoints,
            interrupter,
        };
        estimator.fit(data, &split, &mut hooks)?
    };
    if let Ended::Interrupted { stage, epoch } = ended {
        return Ok(ControlFlow::Break(format!(
            "{stage} stopped after {epoch} epochs"
        )));
    }
    let provenance = serde_json::to_value(config).map_err(|e| AppError::Runtime(e.to_string()))?;
    Ok(ControlFlow::Continue(FittedArrays {
        model: estimator.to_saved(data.class_names().to_vec(), Some(provenance))?,
        history: history.0,
        cells: estimator.cells().map(|c| (c.to_json(), c.to_dot())),
        n_params: estimator.n_params()?,
    }))
}

/// Class scores of every sample of `data` under a model file: logits, or with `proba` their
/// softmax.
pub fn model_scores(model: &SavedModel, data: &Dataset, proba: bool) -> Result<Vec<Vec<f64>>> {
    let (n, classes) = model.architecture.shape();
    if data.n() != n {
        return Err(AppError::Input(format!(
            "the model takes {n}×{n} matrices, the data has {}×{}",
            data.n(),
            data.n()
        )));
    }
    if classes != model.class_names.len() {
        return Err(AppError::Input(format!(
            "the model file's network has {classes} outputs but {} class names",
            model.class_names.len()
        )));
    }
    let indices: Vec<usize> = (0..data.len()).collect();
    let logits = model.load()?.decision_function(data, &indices)?;
    Ok(if proba {
        logits
            .iter()
            .map(|row| spd_nas::estimator::softmax(row))
            .collect()
    } else {
        logits
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spd_data::Validation;

    /// A model file whose class names do not match its network's outputs is refused with a
    /// message, not scored.
    #[test]
    fn a_model_with_fewer_class_names_than_outputs_is_refused() {
        let text = include_str!("../../crates/spd-nas/tests/data/model-v1.json");
        let mut model = SavedModel::from_json(text).unwrap();
        let identity: Vec<f64> = (0..16).map(|k| f64::from(u8::from(k % 5 == 0))).collect();
        let data = Dataset::new(
            4,
            identity,
            vec![0],
            vec!["a".into()],
            "test",
            &Validation::default(),
        )
        .unwrap();
        assert_eq!(model_scores(&model, &data, false).unwrap()[0].len(), 3);
        model.class_names.pop();
        let err = model_scores(&model, &data, false).unwrap_err().to_string();
        assert!(err.contains("3 outputs but 2 class names"), "{err}");
    }
}
