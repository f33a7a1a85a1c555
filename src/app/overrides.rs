//! The settings a user changes most, as one set of optional overrides of a run configuration:
//! the CLI's flags and the Python estimators' parameters both become an [`Overrides`], so the
//! names, the accepted values and the checks exist once. Choices are given by name (`"adam"`,
//! `"softmax"`); a wrong name is an input error naming the flag and the accepted names.

use serde::{Deserialize, Serialize};
use spd_autograd::StiefelMetric;
use spd_autograd::ops::simplex::Normalization;
use spd_nas::estimator::DartsLayout;
use spd_nas::schedule::{LrSchedule, WeightOptimizer};
use spd_nas::search::{GenotypeSelection, Order};
use spd_nas::space::{Naming, SpaceVersion};

use super::{AppError, Result, RunConfig};

/// Optional settings; each one given replaces the configuration's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    /// Search epochs (`--search-epochs`).
    pub search_epochs: Option<usize>,
    /// Training epochs (`--train-epochs`).
    pub train_epochs: Option<usize>,
    /// `first` or `second` (`--order`).
    pub order: Option<String>,
    /// Reduced size of each reduction cell (`--reduced-dim`).
    pub reduced_dim: Option<Vec<usize>>,
    /// `sgd` or `adam`, search and training (`--optimizer`).
    pub optimizer: Option<String>,
    /// Learning rate of the weights, search and training (`--lr`).
    pub lr: Option<f64>,
    /// `embedded` or `canonical` (`--stiefel-metric`).
    pub stiefel_metric: Option<String>,
    /// `constant` or `cosine` (`--schedule`).
    pub schedule: Option<String>,
    /// Minimum training steps (`--min-steps`).
    pub min_steps: Option<usize>,
    /// Minimum search steps (`--search-min-steps`).
    pub search_min_steps: Option<usize>,
    /// Early-stopping patience in epochs (`--patience`).
    pub patience: Option<usize>,
    /// L2 decay of the trained network's Euclidean weights (`--weight-decay`).
    #[serde(default)]
    pub weight_decay: Option<f64>,
    /// Fraction of search epochs with α frozen (`--warmup`).
    pub warmup: Option<f64>,
    /// A whole number or `none` (`--max-skips`).
    pub max_skips: Option<String>,
    /// `best` or `last` (`--selection`).
    pub selection: Option<String>,
    /// `sparsemax`, `softmax` or `sigmoid-simplex` (`--mixing`).
    pub mixing: Option<String>,
    /// `v0` or `v1` (`--space`).
    pub space: Option<String>,
    /// `paper` or `official-code` (`--naming`).
    pub naming: Option<String>,
    /// Karcher steps of every Fréchet mean (`--karcher-steps`).
    pub karcher_steps: Option<usize>,
    /// Cells (`--cells`).
    pub cells: Option<usize>,
    /// Channels before the first cell (`--channels`).
    pub channels: Option<usize>,
    /// Fraction of each class held out for validation (`--val-fraction`).
    pub val_fraction: Option<f64>,
    /// `small` or `paper`: the DARTS and FairDARTS networks (`--darts-layout`).
    pub darts_layout: Option<String>,
}

/// The value named `name` among `choices`, or an input error naming `flag` and the names.
fn choice<T: Copy>(flag: &str, name: &str, choices: &[(&str, T)]) -> Result<T> {
    choices
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            AppError::Input(format!("{flag} {name}: expected {}", names.join(", ")))
        })
}

impl Overrides {
    /// Applies every given setting to `c`, then checks the whole configuration.
    pub fn apply(&self, c: &mut RunConfig) -> Result<()> {
        if let Some(e) = self.search_epochs {
            c.search.epochs = e;
        }
        if let Some(e) = self.train_epochs {
            c.train.epochs = e;
        }
        if let Some(o) = &self.order {
            c.search.order = choice(
                "--order",
                o,
                &[("first", Order::First), ("second", Order::Second)],
            )?;
        }
        if let Some(r) = &self.reduced_dim {
            c.network.reduced_dims = r.clone();
        }
        if let Some(o) = &self.optimizer {
            let o = choice(
                "--optimizer",
                o,
                &[
                    ("sgd", WeightOptimizer::Sgd),
                    ("adam", WeightOptimizer::Adam),
                ],
            )?;
            c.search.optimizer = o;
            c.train.optimizer = o;
        }
        if let Some(lr) = self.lr {
            c.search.lr = lr;
            c.train.lr = lr;
        }
        if let Some(m) = &self.stiefel_metric {
            let m = choice(
                "--stiefel-metric",
                m,
                &[
                    ("embedded", StiefelMetric::Embedded),
                    ("canonical", StiefelMetric::Canonical),
                ],
            )?;
            c.search.stiefel_metric = m;
            c.train.stiefel_metric = m;
        }
        if let Some(s) = &self.schedule {
            let s = choice(
                "--schedule",
                s,
                &[
                    ("constant", LrSchedule::Constant),
                    ("cosine", LrSchedule::COSINE),
                ],
            )?;
            c.search.schedule = s;
            c.train.schedule = s;
        }
        if let Some(m) = self.min_steps {
            c.train.min_steps = m;
        }
        if let Some(m) = self.search_min_steps {
            c.search.min_steps = m;
        }
        if let Some(p) = self.patience {
            c.train.patience = Some(p);
        }
        if let Some(w) = self.weight_decay {
            c.train.weight_decay = w;
        }
        if let Some(w) = self.warmup {
            c.search.warmup = w;
        }
        if let Some(m) = &self.max_skips {
            c.search.max_skips = match m.as_str() {
                "none" => None,
                n => Some(n.parse().map_err(|_| {
                    AppError::Input(format!(
                        "--max-skips {n}: must be a whole number or \"none\""
                    ))
                })?),
            };
        }
        if let Some(s) = &self.selection {
            c.search.selection = choice(
                "--selection",
                s,
                &[
                    ("best", GenotypeSelection::Best),
                    ("last", GenotypeSelection::Last),
                ],
            )?;
        }
        if let Some(m) = &self.mixing {
            c.network.arch_normalization = choice(
                "--mixing",
                m,
                &[
                    ("sparsemax", Normalization::Sparsemax),
                    ("softmax", Normalization::Softmax),
                    ("sigmoid-simplex", Normalization::SigmoidSimplex),
                ],
            )?;
        }
        if let Some(v) = &self.space {
            c.network.space = choice(
                "--space",
                v,
                &[("v0", SpaceVersion::V0), ("v1", SpaceVersion::V1)],
            )?;
        }
        if let Some(n) = &self.naming {
            c.network.naming = choice(
                "--naming",
                n,
                &[
                    ("paper", Naming::Paper),
                    ("official-code", Naming::OfficialCode),
                ],
            )?;
        }
        if let Some(k) = self.karcher_steps {
            c.network.ops.karcher_steps = k;
        }
        if let Some(l) = self.cells {
            c.network.layers = l;
        }
        if let Some(ch) = self.channels {
            c.network.init_channels = ch;
        }
        if let Some(v) = self.val_fraction {
            if !(0.0..1.0).contains(&v) {
                return Err(AppError::Input(format!(
                    "--val-fraction {v}: must be in [0, 1)"
                )));
            }
            c.split.val = v;
        }
        if let Some(l) = &self.darts_layout {
            c.darts_layout = choice(
                "--darts-layout",
                l,
                &[("small", DartsLayout::Small), ("paper", DartsLayout::Paper)],
            )?;
        }
        c.check()
    }
}
