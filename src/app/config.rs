//! The settings of a run (`config.json`), its presets, and the data a run prepares from them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use spd_autograd::StiefelMetric;
use spd_data::Dataset;
use spd_data::split::{Split, SplitFractions, stratified_split};
use spd_nas::NetworkSpec;
use spd_nas::darts::DartsMixing;
use spd_nas::estimator::{
    DartsClassifier, DartsLayout, DartsParams, Estimator, GenotypeChoice, GenotypeClassifier,
    GenotypeParams, MdmClassifier, SpdNetClassifier, SpdNetLayout, SpdNetNasParams, SpdNetParams,
    TslrClassifier, TslrParams,
};
use spd_nas::schedule::{LrSchedule, WeightOptimizer};
use spd_nas::search::{Order, SearchConfig};
use spd_nas::train::TrainConfig;

use super::files::read_json;
use super::{AppError, DataSource, Preparation, Result};

/// Every setting of a run, written to `config.json` so it can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The data.
    pub data: DataSource,
    /// How the samples are prepared (estimator, regularisation, trace normalisation).
    #[serde(default)]
    pub preparation: Preparation,
    /// A separate test set used as given (a dataset's own train/test protocol): then `data`
    /// is split into training and validation only, and the test set is never seen by
    /// search, training or model selection.
    #[serde(default)]
    pub test_data: Option<DataSource>,
    /// Seed of all initialisations and batch orders, and of the split unless `split_seed` is set.
    pub seed: u64,
    /// Seed of the split when it differs from `seed` (repetitions that vary only the
    /// initialisation keep one split).
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Validation and test fractions (the test fraction is unused with `test_data`).
    pub split: SplitFractions,
    /// The network's shape: reduced sizes, cells, channels, space, mixing (the paper's unless
    /// set).
    #[serde(default)]
    pub network: NetworkSpec,
    /// The reduced size of configurations written before `network` existed; [`RunConfig::read`]
    /// moves it into `network.reduced_dims`.
    #[serde(default, rename = "reduced_dim", skip_serializing)]
    legacy_reduced_dim: Option<usize>,
    /// Search settings.
    pub search: SearchConfig,
    /// Training settings (derived net and network baselines).
    pub train: TrainConfig,
    /// Which baselines to run.
    pub baselines: Vec<Baseline>,
    /// The size of the DARTS and FairDARTS networks.
    #[serde(default)]
    pub darts_layout: DartsLayout,
}

/// A baseline method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Baseline {
    /// SPDNet.
    SpdNet,
    /// SPDNet with Riemannian batch norm.
    SpdNetBn,
    /// A random architecture of the search space, trained like the searched one.
    Random,
    /// Minimum distance to the Riemannian class mean.
    Mdm,
    /// Tangent-space logistic regression.
    Tslr,
    /// DARTS on the matrix logarithms (searched and trained like SPDNetNAS).
    Darts,
    /// FairDARTS on the matrix logarithms.
    FairDarts,
}

impl Baseline {
    /// Every baseline.
    pub const ALL: [Baseline; 7] = [
        Baseline::SpdNet,
        Baseline::SpdNetBn,
        Baseline::Random,
        Baseline::Mdm,
        Baseline::Tslr,
        Baseline::Darts,
        Baseline::FairDarts,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::SpdNet => "SPDNet",
            Baseline::SpdNetBn => "SPDNetBN",
            Baseline::Random => "SPDNetNAS (R)",
            Baseline::Mdm => "MDM",
            Baseline::Tslr => "TSLR",
            Baseline::Darts => "DARTS",
            Baseline::FairDarts => "FairDARTS",
        }
    }

    /// The baseline whose [`Baseline::slug`] is `name`.
    pub fn named(name: &str) -> Result<Baseline> {
        Self::ALL
            .into_iter()
            .find(|b| b.slug() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.map(Baseline::slug).to_vec();
                AppError::Input(format!(
                    "baseline {name:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The baselines a run has unless told otherwise: every one but DARTS and FairDARTS, whose
    /// convolutional supernets take seconds per step on a CPU (`docs/experiments.md`) and
    /// are asked for by name (`--baselines darts,fairdarts`).
    pub const DEFAULT: [Baseline; 5] = [
        Baseline::SpdNet,
        Baseline::SpdNetBn,
        Baseline::Random,
        Baseline::Mdm,
        Baseline::Tslr,
    ];

    /// The name the CLI takes (`--baselines fairdarts`), also the stem of the baseline's
    /// files (`fairdarts_genotype.json`).
    pub fn slug(self) -> &'static str {
        match self {
            Baseline::SpdNet => "spdnet",
            Baseline::SpdNetBn => "spdnetbn",
            Baseline::Random => "random",
            Baseline::Mdm => "mdm",
            Baseline::Tslr => "tslr",
            Baseline::Darts => "darts",
            Baseline::FairDarts => "fairdarts",
        }
    }
}

/// Schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Minutes on a laptop CPU, and enough optimisation on small sets
    /// (`docs/experiments.md` records the experiments behind each choice): a first-order search
    /// of at least 3 epochs and 300 steps (α learning rate ×10 to make up for the shorter
    /// search), the first 30 % a warm-up of the weights with α frozen, at most 2 skip
    /// connections per derived cell, the genotype of the best validated epoch; training of at
    /// least 30 epochs and 1500 steps; Riemannian Adam (learning rate 0.01) with a 5 % linear
    /// warm-up and cosine annealing for the weights in both.
    Quick,
    /// The paper's schedule exactly (`docs/fidelity.md`): 100 second-order search epochs and 200
    /// training epochs, Riemannian SGD at a constant 0.025 along the canonical-metric Stiefel
    /// gradient `G − W Gᵀ W` of the official optimiser, no warm-up, no cap on skips.
    Paper,
    /// The paper's HDM05 configuration (`docs/fidelity.md`): reduction 93 → 30 (the official
    /// kernel 4, stride 3), 50 second-order search epochs (the paper's count; the official README
    /// says 300) and 100 training epochs, batches of 30, Riemannian SGD at a constant 0.025 along
    /// the canonical-metric Stiefel gradient; SPDNet and SPDNetBN use the paper's 93 → 30 layout.
    PaperHdm05,
}

impl Preset {
    /// Every preset with the name the CLI and the Python package use.
    pub const NAMED: [(&'static str, Preset); 3] = [
        ("quick", Preset::Quick),
        ("paper", Preset::Paper),
        ("paper-hdm05", Preset::PaperHdm05),
    ];

    /// The preset called `name`.
    pub fn named(name: &str) -> Result<Preset> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, p)| p)
            .ok_or_else(|| {
                let names: Vec<String> =
                    Self::NAMED.iter().map(|(n, _)| format!("{n:?}")).collect();
                AppError::Input(format!(
                    "preset {name:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The quick preset's weight optimiser, learning rate, schedule and Stiefel metric (Adam's
/// per-matrix second moment makes the metric's factor 2 on square weights irrelevant).
const QUICK_WEIGHTS: (WeightOptimizer, f64, LrSchedule, StiefelMetric) = (
    WeightOptimizer::Adam,
    0.01,
    LrSchedule::COSINE,
    StiefelMetric::Embedded,
);

impl RunConfig {
    /// A configuration with the preset's schedule.
    pub fn preset(preset: Preset, data: DataSource, seed: u64) -> Self {
        let (search, train) = match preset {
            Preset::Quick => {
                let (optimizer, lr, schedule, stiefel_metric) = QUICK_WEIGHTS;
                (
                    SearchConfig {
                        epochs: 3,
                        min_steps: 300,
                        warmup: 0.3,
                        optimizer,
                        stiefel_metric,
                        lr,
                        schedule,
                        max_skips: Some(2),
                        order: Order::First,
                        arch_lr: 3e-3,
                        seed,
                        ..Default::default()
                    },
                    TrainConfig {
                        epochs: 30,
                        min_steps: 1500,
                        optimizer,
                        stiefel_metric,
                        lr,
                        schedule,
                        seed,
                        ..Default::default()
                    },
                )
            }
            Preset::Paper => (
                SearchConfig {
                    epochs: 100,
                    seed,
                    ..Default::default()
                },
                TrainConfig {
                    epochs: 200,
                    seed,
                    ..Default::default()
                },
            ),
            Preset::PaperHdm05 => (
                SearchConfig {
                    epochs: 50,
                    batch_size: 30,
                    seed,
                    ..Default::default()
                },
                TrainConfig {
                    epochs: 100,
                    batch_size: 30,
                    seed,
                    ..Default::default()
                },
            ),
        };
        let network = match preset {
            Preset::PaperHdm05 => NetworkSpec {
                reduced_dims: vec![30],
                ..NetworkSpec::default()
            },
            Preset::Quick | Preset::Paper => NetworkSpec::default(),
        };
        Self {
            data,
            preparation: Preparation::default(),
            test_data: None,
            seed,
            split_seed: None,
            split: SplitFractions::default(),
            network,
            legacy_reduced_dim: None,
            search,
            train,
            baselines: Baseline::DEFAULT.to_vec(),
            darts_layout: DartsLayout::default(),
        }
    }

    /// Sets the seed of the initialisations, the batch orders and (unless `split_seed` is set)
    /// the split.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.search.seed = seed;
        self.train.seed = seed;
    }

    /// Rejects settings no run can use, naming the `spdnas` flag that sets them.
    pub fn check(&self) -> Result<()> {
        self.network.check()?;
        self.spdnetnas().check().map_err(AppError::from)
    }

    /// The settings of SPDNetNAS.
    pub fn spdnetnas(&self) -> SpdNetNasParams {
        SpdNetNasParams {
            network: self.network.clone(),
            search: self.search.clone(),
            train: self.train.clone(),
            seed: self.seed,
        }
    }

    /// The settings of the network of `genotype` (the searched one or a published one).
    pub fn genotype_net(&self, genotype: GenotypeChoice) -> GenotypeParams {
        GenotypeParams {
            network: self.network.clone(),
            genotype,
            train: self.train.clone(),
            seed: self.seed,
        }
    }

    /// The estimator of a baseline, with this run's training settings and seed.
    pub fn baseline(&self, b: Baseline) -> Result<Box<dyn Estimator>> {
        let spdnet = |batch_norm| SpdNetParams {
            layout: SpdNetLayout::Auto,
            batch_norm,
            train: self.train.clone(),
            seed: self.seed,
        };
        Ok(match b {
            Baseline::SpdNet => Box::new(SpdNetClassifier::new(spdnet(false))?),
            Baseline::SpdNetBn => Box::new(SpdNetClassifier::new(spdnet(true))?),
            Baseline::Random => Box::new(GenotypeClassifier::new(
                self.genotype_net(GenotypeChoice::Random),
            )?),
            Baseline::Mdm => Box::new(MdmClassifier::new()),
            Baseline::Tslr => Box::new(TslrClassifier::new(TslrParams {
                seed: self.seed,
                ..TslrParams::default()
            })?),
            Baseline::Darts => Box::new(DartsClassifier::new(self.darts(DartsMixing::Softmax))?),
            Baseline::FairDarts => {
                Box::new(DartsClassifier::new(self.darts(DartsMixing::Sigmoid))?)
            }
        })
    }

    /// The settings of DARTS (softmax mixing) or FairDARTS (sigmoid): this run's layout,
    /// search and training settings and seed.
    pub fn darts(&self, mixing: DartsMixing) -> DartsParams {
        DartsParams {
            mixing,
            layout: self.darts_layout,
            search: self.search.clone(),
            train: self.train.clone(),
            seed: self.seed,
        }
    }

    /// Loads and prepares the data (and the given test set, appended after it) and splits it
    /// by the run's protocol.
    pub fn prepare(&self) -> Result<Prepared> {
        let data = self.data.load_prepared(&self.preparation)?;
        self.network
            .for_data(data.n(), data.num_classes())
            .validate()?;
        let split_seed = self.split_seed.unwrap_or(self.seed);
        let Some(test_source) = &self.test_data else {
            let split = stratified_split(data.labels(), self.split, split_seed);
            let protocol = format!(
                "one stratified split of {}: {:.0} % train / {:.0} % validation / {:.0} % test (seed {})",
                self.data.label(),
                100.0 * (1.0 - self.split.val - self.split.test),
                100.0 * self.split.val,
                100.0 * self.split.test,
                split_seed
            );
            return Ok(Prepared {
                data,
                split,
                protocol,
            });
        };
        let test = test_source.load_prepared(&self.preparation)?;
        let train_count = data.len();
        let joined = data.concat(&test)?;
        let fractions = SplitFractions {
            val: self.split.val,
            test: 0.0,
        };
        let mut split = stratified_split(data.labels(), fractions, split_seed);
        split.test = (train_count..joined.len()).collect();
        let protocol = format!(
            "given test set {} ({} samples, used only for the final test); training and validation from {} ({:.0} % of it stratified to validation, seed {})",
            test_source.label(),
            test.len(),
            self.data.label(),
            100.0 * self.split.val,
            split_seed
        );
        Ok(Prepared {
            data: joined,
            split,
            protocol,
        })
    }

    /// A configuration from JSON (a run's `config.json`), written by this version or by one
    /// from before the network settings existed (its `reduced_dim` becomes
    /// `network.reduced_dims`).
    pub fn from_json(value: serde_json::Value) -> std::result::Result<Self, serde_json::Error> {
        let mut c: RunConfig = serde_json::from_value(value)?;
        if let Some(r) = c.legacy_reduced_dim.take() {
            if c.network.reduced_dims.is_empty() {
                c.network.reduced_dims = vec![r];
            }
        }
        Ok(c)
    }

    /// Reads a run's `config.json` ([`RunConfig::from_json`]).
    pub fn read(path: &Path) -> Result<Self> {
        let value: serde_json::Value = read_json(path)?;
        Self::from_json(value).map_err(|e| AppError::Input(format!("{}: {e}", path.display())))
    }
}

/// The data of a run, prepared, with its split and a sentence saying which protocol made it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Every sample (training file first, then a given test set).
    pub data: Dataset,
    /// Train, validation and test indices into `data`.
    pub split: Split,
    /// How the split was made.
    pub protocol: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper preset steps along the official optimiser's canonical Stiefel gradient, the
    /// quick preset along the embedded one, and a configuration written before the setting
    /// existed reads back as embedded (what it ran with).
    #[test]
    fn presets_choose_their_stiefel_metric_and_old_configs_read_as_embedded() {
        let data = DataSource::BasicMotions;
        let paper = RunConfig::preset(Preset::Paper, data.clone(), 0);
        assert_eq!(paper.search.stiefel_metric, StiefelMetric::Canonical);
        assert_eq!(paper.train.stiefel_metric, StiefelMetric::Canonical);
        let quick = RunConfig::preset(Preset::Quick, data, 0);
        assert_eq!(quick.search.stiefel_metric, StiefelMetric::Embedded);
        assert_eq!(quick.train.stiefel_metric, StiefelMetric::Embedded);

        let mut old = serde_json::to_value(&paper).unwrap();
        for stage in ["search", "train"] {
            let removed = old[stage].as_object_mut().unwrap().remove("stiefel_metric");
            assert!(removed.is_some(), "{stage} has the field");
        }
        let old: RunConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.search.stiefel_metric, StiefelMetric::Embedded);
        assert_eq!(old.train.stiefel_metric, StiefelMetric::Embedded);
    }

    /// `--preset paper-hdm05` gives the paper's HDM05 run: the published genotype on 93×93
    /// inputs reduces to 30×30 (the network of the paper's 1.064 MB count), with the HDM05
    /// epochs, batch size and learning rate; every preset name reads back to its preset.
    #[test]
    fn the_hdm05_preset_builds_the_papers_hdm05_network_and_schedule() {
        let c = RunConfig::preset(
            Preset::named("paper-hdm05").unwrap(),
            DataSource::BasicMotions,
            0,
        );
        let network = c.network.for_data(93, 117);
        assert_eq!(network, spd_nas::NetworkConfig::hdm05());
        let genotype = spd_nas::Genotype::published("hdm05_sparsemax").unwrap();
        let count = crate::app::genotype_params(&genotype, &network).unwrap();
        assert_eq!(count.trainable + count.official_dead, 1_063_665);
        assert_eq!(
            (c.search.epochs, c.search.batch_size, c.search.lr),
            (50, 30, 0.025)
        );
        assert_eq!(
            (c.train.epochs, c.train.batch_size, c.train.lr),
            (100, 30, 0.025)
        );
        assert_eq!(c.search.order, Order::Second);
        assert_eq!(c.train.stiefel_metric, StiefelMetric::Canonical);
        for (name, preset) in Preset::NAMED {
            assert_eq!(Preset::named(name).unwrap(), preset);
        }
        assert!(Preset::named("hdm05").is_err());
    }

    /// A configuration written before the network settings existed keeps its reduced size.
    #[test]
    fn a_top_level_reduced_dim_of_an_older_config_becomes_the_networks() {
        let mut old = serde_json::to_value(RunConfig::preset(
            Preset::Quick,
            DataSource::BasicMotions,
            0,
        ))
        .unwrap();
        let fields = old.as_object_mut().unwrap();
        fields.remove("network");
        fields.insert("reduced_dim".into(), 4.into());
        let read = RunConfig::from_json(old).unwrap();
        assert_eq!(read.network.reduced_dims, vec![4]);
        assert!(
            !serde_json::to_string(&read)
                .unwrap()
                .contains("\"reduced_dim\"")
        );
    }
}
