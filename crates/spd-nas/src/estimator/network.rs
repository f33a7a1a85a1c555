//! The networks trained from scratch: the network of a genotype (given, or drawn at random from
//! the search space) and SPDNet / SPDNetBN. Each trains with [`crate::train::Training`] under
//! the runner and keeps the weights of its best validation epoch.

use std::ops::ControlFlow;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spd_autograd::ParamStore;
use spd_data::Dataset;
use spd_data::split::Split;

use super::Estimator;
use crate::baselines::{SpdNet, SpdNetConfig, random_genotype};
use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::network::Network;
use crate::network_config::{NetworkConfig, NetworkSpec};
use crate::runner::{Ended, Hooks, log_value, run_epochs};
use crate::saved::{Architecture, SavedModel};
use crate::seeds;
use crate::train::{Classifier, TrainConfig, TrainLog, TrainState, Training, logits};

/// A trained network's result: the weights of its best validation epoch (with batch-norm
/// running means) and the record of its training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trained {
    /// Weights after the best validation epoch.
    pub weights: ParamStore,
    /// That epoch (from 0).
    pub best_epoch: usize,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// One line per epoch.
    pub history: Vec<TrainLog>,
    /// Trainable scalar parameters.
    pub params: usize,
    /// Seconds spent training in this process (a resumed run counts only its own part).
    pub seconds: f64,
}

/// Trains `model` from `weights` as stage `stage` (its checkpoint name), or continues the
/// stage's checkpoint; `Break` when the interrupter stopped it.
pub(crate) fn train_network(
    stage: &str,
    model: &dyn Classifier,
    weights: ParamStore,
    config: &TrainConfig,
    (data, split): (&Dataset, &Split),
    hooks: &mut Hooks,
) -> Result<ControlFlow<Ended, Trained>> {
    let params = weights.trainable_values();
    let start = Instant::now();
    let state = hooks.resume_or(stage, || Ok(TrainState::new(weights, config)))?;
    if state.epoch > 0 {
        let history: Vec<_> = state.history.iter().map(log_value).collect();
        hooks.observer.resumed(stage, &history);
    }
    let mut training = Training {
        model,
        config: config.clone(),
        state,
    };
    if let ended @ Ended::Interrupted { .. } = run_epochs(stage, &mut training, data, split, hooks)?
    {
        return Ok(ControlFlow::Break(ended));
    }
    let best = training.best()?;
    Ok(ControlFlow::Continue(Trained {
        weights: best.weights.clone(),
        best_epoch: best.epoch,
        val_accuracy: best.val_accuracy,
        history: training.state.history.clone(),
        params,
        seconds: start.elapsed().as_secs_f64(),
    }))
}

/// A trained network: the model, what a model file rebuilds it from, and
/// its training.
#[derive(Debug, Clone)]
pub struct FittedNetwork<M> {
    /// The model.
    pub model: M,
    /// What it computes, for its model file.
    pub architecture: Architecture,
    /// Best-validation weights and the record of the training.
    pub trained: Trained,
}

impl<M: Classifier> FittedNetwork<M> {
    /// Trains `model` from `weights` as stage `stage` ([`train_network`]); `Break` when the
    /// interrupter stopped it.
    pub(super) fn train(
        stage: &str,
        (model, architecture, weights): (M, Architecture, ParamStore),
        config: &TrainConfig,
        data_split: (&Dataset, &Split),
        hooks: &mut Hooks,
    ) -> Result<ControlFlow<Ended, Self>> {
        Ok(
            match train_network(stage, &model, weights, config, data_split, hooks)? {
                ControlFlow::Break(ended) => ControlFlow::Break(ended),
                ControlFlow::Continue(trained) => ControlFlow::Continue(Self {
                    model,
                    architecture,
                    trained,
                }),
            },
        )
    }

    /// The logits of the samples `indices`, in batches of `batch_size`.
    pub(super) fn logits(
        &self,
        data: &Dataset,
        indices: &[usize],
        batch_size: usize,
    ) -> Result<Vec<Vec<f64>>> {
        logits(
            &self.model,
            &self.trained.weights,
            data,
            indices,
            batch_size,
        )
    }

    /// The model file.
    pub(super) fn saved(
        &self,
        class_names: Vec<String>,
        provenance: Option<serde_json::Value>,
    ) -> SavedModel {
        SavedModel::new(
            self.architecture.clone(),
            class_names,
            &self.trained.weights,
            provenance,
        )
    }
}

/// Which genotype a [`GenotypeClassifier`] trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GenotypeChoice {
    /// This one (a searched or published cell); weights from salt [`seeds::DERIVED_INIT`].
    Given(Genotype),
    /// One drawn uniformly from the search space (the random-architecture baseline); the draw,
    /// then the weights, from salt [`seeds::BASELINE_INIT`].
    Random,
}

/// Settings of a [`GenotypeClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenotypeParams {
    /// The network's shape (sizes follow from the data).
    pub network: NetworkSpec,
    /// The cell.
    pub genotype: GenotypeChoice,
    /// Training.
    pub train: TrainConfig,
    /// Seed of the initialisation (and of the random draw).
    pub seed: u64,
}

impl GenotypeParams {
    /// Rejects settings no fit can use.
    pub fn check(&self) -> Result<()> {
        self.network.check()?;
        self.train.check()
    }
}

/// The network derived from a genotype, trained from scratch.
#[derive(Debug, Clone)]
pub struct GenotypeClassifier {
    /// Settings.
    pub params: GenotypeParams,
    fitted: Option<(Genotype, FittedNetwork<Network>)>,
}

impl GenotypeClassifier {
    /// An unfitted classifier; fails on invalid settings.
    pub fn new(params: GenotypeParams) -> Result<Self> {
        params.check()?;
        Ok(Self {
            params,
            fitted: None,
        })
    }

    /// The network, its genotype and its training, once fitted.
    pub fn fitted(&self) -> Result<(&Network, &Genotype, &Trained)> {
        self.fitted
            .as_ref()
            .map(|(g, f)| (&f.model, g, &f.trained))
            .ok_or(NasError::NotFitted(self.name()))
    }

    fn network(&self) -> Result<&FittedNetwork<Network>> {
        self.fitted
            .as_ref()
            .map(|(_, f)| f)
            .ok_or(NasError::NotFitted(self.name()))
    }

    /// The checkpoint stage of this classifier's training.
    fn stage(&self) -> &'static str {
        match self.params.genotype {
            GenotypeChoice::Given(_) => "train",
            GenotypeChoice::Random => "random",
        }
    }

    /// The network and genotype for `config`, with fresh weights in `store`.
    fn build(&self, config: &NetworkConfig, store: &mut ParamStore) -> Result<(Network, Genotype)> {
        let seed = self.params.seed;
        let (mut rng, genotype) = match &self.params.genotype {
            GenotypeChoice::Given(g) => (seeds::rng(seed, seeds::DERIVED_INIT), g.clone()),
            GenotypeChoice::Random => {
                let mut rng = seeds::rng(seed, seeds::BASELINE_INIT);
                let g = random_genotype(config, &mut rng);
                (rng, g)
            }
        };
        let network = Network::derived(config, &genotype, store, &mut rng)?;
        Ok((network, genotype))
    }
}

impl Estimator for GenotypeClassifier {
    fn name(&self) -> &'static str {
        match self.params.genotype {
            GenotypeChoice::Given(_) => "SPDNetNAS",
            GenotypeChoice::Random => "SPDNetNAS (R)",
        }
    }

    fn fit(&mut self, data: &Dataset, split: &Split, hooks: &mut Hooks) -> Result<Ended> {
        let config = self.params.network.for_data(data.n(), data.num_classes());
        let mut store = ParamStore::new();
        let (network, genotype) = self.build(&config, &mut store)?;
        let architecture = Architecture::Genotype {
            network: config,
            genotype: genotype.clone(),
        };
        let built = (network, architecture, store);
        let train = &self.params.train;
        match FittedNetwork::train(self.stage(), built, train, (data, split), hooks)? {
            ControlFlow::Break(ended) => Ok(ended),
            ControlFlow::Continue(fitted) => {
                self.fitted = Some((genotype, fitted));
                Ok(Ended::Finished)
            }
        }
    }

    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        self.network()?
            .logits(data, indices, self.params.train.batch_size)
    }

    fn n_params(&self) -> Result<usize> {
        Ok(self.network()?.trained.params)
    }

    fn genotype(&self) -> Option<&Genotype> {
        self.fitted.as_ref().map(|(g, _)| g)
    }

    fn to_saved(
        &self,
        class_names: Vec<String>,
        provenance: Option<serde_json::Value>,
    ) -> Result<SavedModel> {
        Ok(self.network()?.saved(class_names, provenance))
    }
}

/// The layer sizes of an SPDNet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SpdNetLayout {
    /// The published layouts where the data has their shape (RADAR 20→16→8 with 3 classes,
    /// HDM05 93→30 with 117 classes; `docs/fidelity.md`, Model sizes), else the RADAR layout scaled to `n`
    /// (`n → ⌈4n/5⌉ → ⌈2n/5⌉`).
    #[default]
    Auto,
    /// The RADAR layout scaled to `n` whatever the data.
    Scaled,
    /// These sizes after the input (`[16, 8]` is RADAR's).
    Dims(Vec<usize>),
}

impl SpdNetLayout {
    /// The network for `n × n` inputs in `num_classes` classes.
    pub fn config(&self, n: usize, num_classes: usize, batch_norm: bool) -> SpdNetConfig {
        let paper = [
            SpdNetConfig::radar(batch_norm),
            SpdNetConfig::hdm05(batch_norm),
        ];
        match self {
            SpdNetLayout::Auto => paper
                .into_iter()
                .find(|c| c.dims[0] == n && c.num_classes == num_classes)
                .unwrap_or_else(|| SpdNetConfig::scaled(n, num_classes, batch_norm)),
            SpdNetLayout::Scaled => SpdNetConfig::scaled(n, num_classes, batch_norm),
            SpdNetLayout::Dims(dims) => SpdNetConfig {
                dims: std::iter::once(n).chain(dims.iter().copied()).collect(),
                batch_norm,
                num_classes,
            },
        }
    }
}

/// Settings of an [`SpdNetClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpdNetParams {
    /// Layer sizes.
    pub layout: SpdNetLayout,
    /// Riemannian batch norm after every BiMap (SPDNetBN, Brooks et al. 2019).
    pub batch_norm: bool,
    /// Training.
    pub train: TrainConfig,
    /// Seed of the initialisation (salt [`seeds::BASELINE_INIT`]).
    pub seed: u64,
}

impl SpdNetParams {
    /// Rejects settings no fit can use.
    pub fn check(&self) -> Result<()> {
        if let SpdNetLayout::Dims(dims) = &self.layout {
            crate::error::ensure(
                !dims.is_empty() && !dims.contains(&0),
                "layout",
                format!("{dims:?}"),
                "an SPDNet needs at least one positive size after the input",
            )?;
        }
        self.train.check()
    }
}

/// SPDNet (Huang & Van Gool 2017) or SPDNetBN (Brooks et al. 2019), trained from scratch.
#[derive(Debug, Clone)]
pub struct SpdNetClassifier {
    /// Settings.
    pub params: SpdNetParams,
    fitted: Option<FittedNetwork<SpdNet>>,
}

impl SpdNetClassifier {
    /// An unfitted classifier; fails on invalid settings.
    pub fn new(params: SpdNetParams) -> Result<Self> {
        params.check()?;
        Ok(Self {
            params,
            fitted: None,
        })
    }

    /// The network, what rebuilds it and its training, once fitted.
    pub fn fitted(&self) -> Result<&FittedNetwork<SpdNet>> {
        self.fitted.as_ref().ok_or(NasError::NotFitted(self.name()))
    }
}

impl Estimator for SpdNetClassifier {
    fn name(&self) -> &'static str {
        if self.params.batch_norm {
            "SPDNetBN"
        } else {
            "SPDNet"
        }
    }

    fn fit(&mut self, data: &Dataset, split: &Split, hooks: &mut Hooks) -> Result<Ended> {
        let bn = self.params.batch_norm;
        let config = self.params.layout.config(data.n(), data.num_classes(), bn);
        let mut store = ParamStore::new();
        let net = SpdNet::new(
            &config,
            &mut store,
            &mut seeds::rng(self.params.seed, seeds::BASELINE_INIT),
        )?;
        let built = (net, Architecture::SpdNet(config), store);
        let stage = if bn { "spdnetbn" } else { "spdnet" };
        match FittedNetwork::train(stage, built, &self.params.train, (data, split), hooks)? {
            ControlFlow::Break(ended) => Ok(ended),
            ControlFlow::Continue(fitted) => {
                self.fitted = Some(fitted);
                Ok(Ended::Finished)
            }
        }
    }

    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        self.fitted()?
            .logits(data, indices, self.params.train.batch_size)
    }

    fn n_params(&self) -> Result<usize> {
        Ok(self.fitted()?.trained.params)
    }

    fn to_saved(
        &self,
        class_names: Vec<String>,
        provenance: Option<serde_json::Value>,
    ) -> Result<SavedModel> {
        Ok(self.fitted()?.saved(class_names, provenance))
    }
}
