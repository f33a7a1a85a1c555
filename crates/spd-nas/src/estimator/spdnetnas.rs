//! SPDNetNAS as one estimator: the bilevel search of a supernet (checkpoint stage `search`),
//! the genotype its selection keeps, and the derived network trained from scratch (stage
//! `train`).

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use spd_data::Dataset;
use spd_data::split::Split;

use super::search_stage::{SearchOutcome, run_search};
use super::{Estimator, GenotypeChoice, GenotypeClassifier, GenotypeParams};
use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::network_config::NetworkSpec;
use crate::runner::{Ended, Hooks};
use crate::saved::SavedModel;
use crate::search::{Search, SearchConfig};
use crate::train::TrainConfig;

/// Settings of SPDNetNAS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpdNetNasParams {
    /// The supernet's shape (sizes follow from the data).
    pub network: NetworkSpec,
    /// The search.
    pub search: SearchConfig,
    /// Training of the derived network.
    pub train: TrainConfig,
    /// Seed of the supernet and α (salt `SUPERNET_INIT`) and of the derived network's weights
    /// (salt `DERIVED_INIT`); the batch orders follow `search.seed` and `train.seed`.
    pub seed: u64,
}

impl SpdNetNasParams {
    /// Rejects settings no fit can use.
    pub fn check(&self) -> Result<()> {
        self.network.check()?;
        self.search.check()?;
        self.train.check()
    }
}

/// SPDNetNAS: search, derive, train.
#[derive(Debug, Clone)]
pub struct SpdNetNasClassifier {
    /// Settings.
    pub params: SpdNetNasParams,
    searched: Option<SearchOutcome>,
    derived: Option<GenotypeClassifier>,
}

impl SpdNetNasClassifier {
    /// An unfitted classifier; fails on invalid settings.
    pub fn new(params: SpdNetNasParams) -> Result<Self> {
        params.check()?;
        Ok(Self {
            params,
            searched: None,
            derived: None,
        })
    }

    /// The search alone (fit runs it first): continues the `search` checkpoint if there is one,
    /// and keeps the selected genotype.
    pub fn search(
        &mut self,
        data: &Dataset,
        split: &Split,
        hooks: &mut Hooks,
    ) -> Result<ControlFlow<Ended, &SearchOutcome>> {
        let network = self.params.network.for_data(data.n(), data.num_classes());
        network.validate()?;
        let p = &self.params;
        let fresh = || Search::supernet(&network, p.search.clone(), p.seed);
        Ok(
            match run_search("search", network.clone(), (data, split), hooks, fresh)? {
                ControlFlow::Break(ended) => ControlFlow::Break(ended),
                ControlFlow::Continue(outcome) => {
                    ControlFlow::Continue(&*self.searched.insert(outcome))
                }
            },
        )
    }

    /// The search's outcome, once searched.
    pub fn searched(&self) -> Result<&SearchOutcome> {
        self.searched
            .as_ref()
            .ok_or(NasError::NotFitted("SPDNetNAS"))
    }

    /// The derived network's classifier, once fitted.
    pub fn derived(&self) -> Result<&GenotypeClassifier> {
        self.derived
            .as_ref()
            .ok_or(NasError::NotFitted("SPDNetNAS"))
    }
}

impl Estimator for SpdNetNasClassifier {
    fn name(&self) -> &'static str {
        "SPDNetNAS"
    }

    fn fit(&mut self, data: &Dataset, split: &Split, hooks: &mut Hooks) -> Result<Ended> {
        let genotype = match self.search(data, split, hooks)? {
            ControlFlow::Break(ended) => return Ok(ended),
            ControlFlow::Continue(outcome) => outcome.selected.genotype.clone(),
        };
        let mut derived = GenotypeClassifier::new(GenotypeParams {
            network: self.params.network.clone(),
            genotype: GenotypeChoice::Given(genotype),
            train: self.params.train.clone(),
            seed: self.params.seed,
        })?;
        let ended = derived.fit(data, split, hooks)?;
        if ended == Ended::Finished {
            self.derived = Some(derived);
        }
        Ok(ended)
    }

    fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        self.derived()?.decision_function(data, indices)
    }

    fn n_params(&self) -> Result<usize> {
        self.derived()?.n_params()
    }

    fn genotype(&self) -> Option<&Genotype> {
        self.derived.as_ref()?.genotype()
    }

    fn to_saved(
        &self,
        class_names: Vec<String>,
        provenance: Option<serde_json::Value>,
    ) -> Result<SavedModel> {
        self.derived()?.to_saved(class_names, provenance)
    }
}
