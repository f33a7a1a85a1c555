//! The configuration that fixes a network's shape (cells, sizes, candidate list, mixing), shared
//! by the network builder and genotype derivation so neither has to import the other:
//! [`NetworkSpec`] holds what does not depend on the data, [`NetworkConfig`] adds the input size
//! and the class count.

use serde::{Deserialize, Serialize};
use spd_autograd::ops::flatten::Vectorize;
use spd_autograd::ops::simplex::Normalization;

use crate::error::{NasError, Result, ensure};
use crate::ops::OpSettings;
use crate::space::{Naming, SearchSpace, SpaceVersion};

/// The settings of a network that do not depend on the data: with a matrix size and a class
/// count they give a [`NetworkConfig`] ([`NetworkSpec::for_data`]). Missing fields read as the
/// paper's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSpec {
    /// Output size of each reduction cell (cells 0, 2, 4, … reduce); empty: each reduction
    /// halves the size (`⌈n/2⌉`).
    pub reduced_dims: Vec<usize>,
    /// Number of cells (2 in the paper).
    pub layers: usize,
    /// Channels `C` before the first cell (1 in the paper); doubled before every cell.
    pub init_channels: usize,
    /// Intermediate nodes per cell (2 in the paper).
    pub steps: usize,
    /// Stem output channels = `stem_multiplier · C` (1 in the paper's supernet).
    pub stem_multiplier: usize,
    /// Karcher steps and WeightedPooling normalisation.
    pub ops: OpSettings,
    /// Candidate list.
    pub space: SpaceVersion,
    /// Reading of `BiMap_1/2_reduced` (D1).
    pub naming: Naming,
    /// α → mixing weights (sparsemax in the paper; softmax and sigmoid in its Table 5).
    pub arch_normalization: Normalization,
    /// Head vectorisation (all `n²` entries in the paper).
    pub vectorize: Vectorize,
}

impl Default for NetworkSpec {
    /// The paper's network.
    fn default() -> Self {
        Self {
            reduced_dims: Vec::new(),
            layers: 2,
            init_channels: 1,
            steps: 2,
            stem_multiplier: 1,
            ops: OpSettings {
                karcher_steps: 1,
                pooling_normalization: Normalization::Sparsemax,
            },
            space: SpaceVersion::V0,
            naming: Naming::Paper,
            arch_normalization: Normalization::Sparsemax,
            vectorize: Vectorize::Full,
        }
    }
}

impl NetworkSpec {
    /// Rejects settings no network can have (whatever the data).
    pub fn check(&self) -> Result<()> {
        let positive = [
            ("network.layers", self.layers),
            ("network.init_channels", self.init_channels),
            ("network.steps", self.steps),
            ("network.stem_multiplier", self.stem_multiplier),
            ("network.ops.karcher_steps", self.ops.karcher_steps),
        ];
        for (field, value) in positive {
            ensure(value > 0, field, value, "must be positive")?;
        }
        let reductions = self.reductions();
        ensure(
            self.reduced_dims.is_empty() || self.reduced_dims.len() == reductions,
            "network.reduced_dims",
            format!("{:?}", self.reduced_dims),
            &format!(
                "{} cells have {reductions} reduction cells: give one size each",
                self.layers
            ),
        )?;
        for (field, normalization) in [
            ("network.arch_normalization", self.arch_normalization),
            (
                "network.ops.pooling_normalization",
                self.ops.pooling_normalization,
            ),
        ] {
            ensure(
                normalization != Normalization::Sigmoid,
                field,
                "Sigmoid",
                "the weights feed a weighted Fréchet mean and must sum to one: use the \
                 renormalised sigmoid (SigmoidSimplex)",
            )?;
        }
        Ok(())
    }

    /// Reduction cells: `⌈layers / 2⌉`.
    pub fn reductions(&self) -> usize {
        self.layers.div_ceil(2)
    }

    /// The network for `n × n` inputs in `num_classes` classes, with the reduced sizes spelt
    /// out (each reduction halving the size unless given).
    pub fn for_data(&self, n: usize, num_classes: usize) -> NetworkConfig {
        let mut spec = self.clone();
        if spec.reduced_dims.is_empty() {
            spec.reduced_dims = (0..self.reductions())
                .scan(n, |m, _| {
                    *m = m.div_ceil(2);
                    Some(*m)
                })
                .collect();
        }
        NetworkConfig {
            input_dim: n,
            num_classes,
            spec,
        }
    }
}

/// Everything that fixes the shape of a network: the data's sizes and the [`NetworkSpec`]
/// (serialised flat, one object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Input matrix size `n`.
    pub input_dim: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Cells, reduced sizes (one per reduction cell), candidates, mixing.
    #[serde(flatten)]
    pub spec: NetworkSpec,
}

impl NetworkConfig {
    /// The paper's settings for `n → n_out` inputs and `classes` classes.
    pub fn paper(input_dim: usize, reduced_dim: usize, num_classes: usize) -> Self {
        Self {
            input_dim,
            num_classes,
            spec: NetworkSpec {
                reduced_dims: vec![reduced_dim],
                ..NetworkSpec::default()
            },
        }
    }

    /// RADAR: 20×20 → 10×10, 3 classes.
    pub fn radar() -> Self {
        Self::paper(20, 10, 3)
    }

    /// HDM05: 93×93 → 30×30, 117 classes.
    pub fn hdm05() -> Self {
        Self::paper(93, 30, 117)
    }

    /// Checks the configuration is buildable: the spec's rules, at least two classes, one
    /// reduced size per reduction cell, each no larger than its input.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(NasError::Config(m));
        self.spec.check()?;
        if self.num_classes < 2 {
            return bad(format!("{} classes", self.num_classes));
        }
        let reductions = self.spec.reductions();
        if self.spec.reduced_dims.len() != reductions {
            return bad(format!(
                "{} layers have {reductions} reduction cells but {} reduced sizes were given",
                self.spec.layers,
                self.spec.reduced_dims.len()
            ));
        }
        let mut n = self.input_dim;
        for &m in &self.spec.reduced_dims {
            ensure(
                m > 0 && m <= n,
                "network.reduced_dims",
                format!("{:?}", self.spec.reduced_dims),
                &format!("cannot reduce {n}×{n} matrices to {m}×{m}"),
            )?;
            n = m;
        }
        Ok(())
    }

    /// Weight values the official derived network allocates beyond ours (D18, counted in the
    /// paper's model sizes): it sizes the preprocessing BiMaps that read the stem (both of cell 0,
    /// `pre0` of cell 1) for `2C` input channels while the stem gives `stem_multiplier · C`, so
    /// each carries `(2C − stem_multiplier · C) · C_out · n_in · n_out` unused values.
    pub fn official_dead_weights(&self) -> usize {
        let c = self.spec.init_channels;
        let missing = (2 * c).saturating_sub(self.spec.stem_multiplier * c);
        let n = self.input_dim;
        let cell0 = 2 * (2 * c) * n * n;
        let cell1 = match (self.spec.layers, self.spec.reduced_dims.first()) {
            (2.., Some(&m)) => 4 * c * n * m,
            _ => 0,
        };
        missing * (cell0 + cell1)
    }

    /// Edges per cell: `Σ_{j < steps} (2 + j)`.
    pub fn edges(&self) -> usize {
        (0..self.spec.steps).map(|j| 2 + j).sum()
    }

    /// The search space.
    pub fn search_space(&self) -> SearchSpace {
        SearchSpace::new(self.spec.space, self.spec.naming)
    }
}
