//! DARTS and FairDARTS as estimators (the Euclidean baselines of the paper's Table 2): the
//! bilevel search of a DARTS supernet on the matrix logarithms of the samples (checkpoint stage
//! `darts-search` or `fairdarts-search`), the genotype its selection keeps, and the derived
//! network trained from scratch (stage `darts` or `fairdarts`), under the same search and
//! training settings as SPDNetNAS.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use spd_autograd::ParamStore;
use spd_data::Dataset;
use spd_data::split::Split;

use super::network::FittedNetwork;
use super::search_stage::{SearchOutcome, run_search};
use super::{Cells, Estimator};
use crate::darts::{DartsConfig, DartsGenotype, DartsMixing, DartsNetwork};
use crate::error::{NasError, Result};
use crate::runner::{Ended, Hooks};
use crate::saved::{Architecture, SavedModel};
use crate::search::{Search, SearchConfig};
use crate::seeds;
use crate::train::TrainConfig;

/// The sizes of the searched supernet and of the derived network, whatever the input size
/// (the convolutions keep the image size until a reduction cell halves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DartsLayout {
    /// [`DartsConfig::small`] for both: `C = 8`, 3 cells.
    #[default]
    Small,
    /// DARTS's search network (`C = 16`, 8 cells), then [`DartsConfig::paper`] (`C = 32`, 20
    /// cells), the paper's 2.64 M-parameter model.
    Paper,
}

impl DartsLayout {
    /// The derived network's layout for `n × n` inputs in `classes` classes, mixed by `mixing`.
    pub fn config(self, n: usize, classes: usize, mixing: DartsMixing) -> DartsConfig {
        let config = match self {
            DartsLayout::Small => DartsConfig::small(n, classes),
            DartsLayout::Paper => DartsConfig::paper(n, classes),
        };
        DartsConfig { mixing, ..config }
    }

    /// The searched supernet's layout: the derived one, with DARTS's search sizes for `Paper`.
    pub fn search_config(self, n: usize, classes: usize, mixing: DartsMixing) -> DartsConfig {
        let config = self.config(n, classes, mixing);
        match self {
            DartsLayout::Small => config,
            DartsLayout::Paper => DartsConfig {
                channels: 16,
                cells: 8,
                ..config
            },
        }
    }
}

/// Settings of DARTS or FairDARTS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DartsParams {
    /// Softmax (DARTS) or sigmoid with the zero-one loss (FairDARTS).
    pub mixing: DartsMixing,
    /// The network's size.
    pub layout: DartsLayout,
    /// The search (the same settings as SPDNetNAS's in a run).
    pub search: SearchConfig,
    /// Training of the derived network.
    pub train: TrainConfig,
    /// Seed of the supernet and α (salt `SUPERNET_INIT`) and of the derived network's weights
    /// (salt `BASELINE_INIT`); the batch orders follow `search.seed` and `train.seed`.
    pub seed: u64,
}

impl DartsParams {
    /// Rejects settings no fit can use.
    pub fn check(&self) -> Result<()> {
        self.layout.config(2, 2, self.mixing).check()?;
        self.layout.search_config(2, 2, self.mixing).check()?;
        self.search.check()?;
        self.train.check()
    }

    /// The method's name and checkpoint stage prefix.
    fn method(&self) -> (&'static str, &'static str) {
        match self.mixing {
            DartsMixing::Softmax => ("DARTS", "darts"),
            DartsMixing::Sigmoid => ("FairDARTS", "fairdarts"),
        }
    }
}

/// DARTS (Liu et al., ICLR 2019) or FairDARTS (Chu et al., ECCV 2020) on log-matrix images:
/// search, derive, train.
#[derive(Debug, Clone)]
pub struct DartsClassifier {
    /// Settings.
    pub params: DartsParams,
    searched: Option<SearchOutcome<DartsConfig, DartsGenotype>>,
    derived: Option<FittedNetwork<DartsNetwork>>,
}

impl DartsClassifier {
    /// An unfitted classifier; fails on invalid settings.
    pub fn new(params: DartsParams) -> Result<Self> {
        params.check()?;
        Ok(Self {
            params,
            searched: None,
            derived: None,
        })
    }

    /// The search's outcome, once searched.
    pub fn searched(&self) -> Result<&SearchOutcome<DartsConfig, DartsGenotype>> {
        self.searched
            .as_ref()
            .ok_or(NasError::NotFitted(self.name()))
    }

    /// The derived network, what rebuilds it and its training, once fitted.
    pub fn derived(&self) -> Result<&FittedNetwork<DartsNetwork>> {
        self.derived
            .as_ref()
            .ok_or(NasError::NotFitted(self.name()))
    }
}

impl Estimator for DartsClassifier {
    fn name(&self) -> &'static str {
        self.params.method().0
    }

    fn fit(&mut self, data: &Dataset, split: &Split, hooks: &mut Hooks) -> Result<Ended> {
        let p = &self.params;
        let stage = p.method().1;
        let (n, classes) = (data.n(), data.num_classes());
        let supernet = p.layout.search_config(n, classes, p.mixing);
        let fresh = || Search::darts(&supernet, p.search.clone(), p.seed);
        let search_stage = format!("{stage}-search");
        let searched =
            match run_search(&search_stage, supernet.clone(), (data, split), hooks, fresh)? {
                ControlFlow::Break(ended) => return Ok(ended),
                ControlFlow::Continue(outcome) => self.searched.insert(outcome),
            };
        let genotype = searched.selected.genotype.clone();
        let config = p.layout.config(n, classes, p.mixing);
        let mut store = ParamStore::new();
        let mut rng = seeds::rng(p.seed, seeds::BASELINE_INIT);
        let network = DartsNetwork::derived(&config, &genotype, &mut store, &mut rng)?;
        let architecture = Architecture::Darts { config, genotype };
        let built = (network, architecture, store);
        match FittedNetwork::train(stage, built, &p.train, (data, split), hooks)? {
            ControlFlow::Break(ended) => Ok(ended),
            ControlFlow::Continue(fitted) => {
                self.derived = Some(fitted);
                Ok(Ended::Finished)
            }
        }
    }

    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        self.derived()?
            .logits(data, indices, self.params.train.batch_size)
    }

    fn n_params(&self) -> Result<usize> {
        Ok(self.derived()?.trained.params)
    }

    fn cells(&self) -> Option<Cells<'_>> {
        let derived = self.derived.as_ref()?;
        match &derived.architecture {
            Architecture::Darts { genotype, .. } => Some(Cells::Darts(genotype)),
            _ => None,
        }
    }

    fn to_saved(
        &self,
        class_names: Vec<String>,
        provenance: Option<serde_json::Value>,
    ) -> Result<SavedModel> {
        Ok(self.derived()?.saved(class_names, provenance))
    }
}
