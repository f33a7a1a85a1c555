//! The layout of a DARTS network and how its supernet mixes candidates.

use serde::{Deserialize, Serialize};
use spd_autograd::ops::simplex::Normalization;

use super::Primitive;
use super::{FAIR_THRESHOLD, ZERO_ONE_WEIGHT};
use crate::arch::ArchParams;
use crate::error::{NasError, Result, ensure};

/// How a supernet edge weighs its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DartsMixing {
    /// DARTS: softmax over the candidates of an edge.
    Softmax,
    /// FairDARTS: an independent sigmoid per candidate, not normalised.
    Sigmoid,
}

impl DartsMixing {
    /// The map from α to mixing weights.
    pub fn normalization(self) -> Normalization {
        match self {
            DartsMixing::Softmax => Normalization::Softmax,
            DartsMixing::Sigmoid => Normalization::Sigmoid,
        }
    }
}

/// The layout of a DARTS network (supernet or derived) on `input_size × input_size` log-matrix
/// images, and the FairDARTS settings of its search. [`DartsConfig::check`] validates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DartsConfig {
    /// `C`: channels of the first cells' edges (doubled at each reduction cell); even, since
    /// FactorizedReduce splits its output in two halves.
    pub channels: usize,
    /// Number of cells; those at `⌊cells/3⌋` and `⌊2·cells/3⌋` are reduction cells.
    pub cells: usize,
    /// Intermediate nodes per cell (4 in DARTS).
    pub steps: usize,
    /// The stem outputs `stem_multiplier · C` channels (3 in DARTS).
    pub stem_multiplier: usize,
    /// Number of classes.
    pub classes: usize,
    /// `n` of the `n × n` inputs.
    pub input_size: usize,
    /// Mixing of the supernet's candidates.
    pub mixing: DartsMixing,
    /// `w₀₁`, the weight of FairDARTS's zero-one loss in the architecture loss (10); used with
    /// [`DartsMixing::Sigmoid`].
    pub zero_one_weight: f64,
    /// FairDARTS's derivation threshold on the sigmoid weights (0.85).
    pub threshold: f64,
}

impl DartsConfig {
    /// Checks that `arch` is α of a supernet of this configuration: mixed by this mixing, one
    /// row of [`Primitive::ALL`]`.len()` logits per edge of each cell type.
    pub fn check_arch(&self, arch: &ArchParams) -> Result<()> {
        if arch.normalization != self.mixing.normalization() {
            return Err(NasError::Config(format!(
                "α is mixed by {:?} but the configuration by {:?}",
                arch.normalization, self.mixing
            )));
        }
        let width = Primitive::ALL.len();
        for reduce in [false, true] {
            let rows = arch.logits(reduce);
            if rows.len() != self.edges() || rows.iter().any(|r| r.len() != width) {
                return Err(NasError::Config(format!(
                    "α needs {} rows of {width} per cell type, not {} of {:?}",
                    self.edges(),
                    rows.len(),
                    rows.iter().map(Vec::len).collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }

    /// A layout that searches in minutes on two cores: `C = 8`, 3 cells (normal, reduction,
    /// reduction), 4 nodes, stem 24 channels, DARTS mixing.
    pub fn small(input_size: usize, classes: usize) -> Self {
        Self {
            channels: 8,
            cells: 3,
            steps: 4,
            stem_multiplier: 3,
            classes,
            input_size,
            mixing: DartsMixing::Softmax,
            zero_one_weight: ZERO_ONE_WEIGHT,
            threshold: FAIR_THRESHOLD,
        }
    }

    /// The evaluation layout sized after the paper's DARTS model (2.64 MB, Table 2): DARTS's
    /// CIFAR-10 evaluation network (20 cells) with `C = 32` instead of 36. With DARTS's
    /// published cell ([`super::DartsGenotype::darts_v2`]) and 3 classes it has 2,660,707
    /// trainable parameters (0.8 % above 2.64 M; the count does not depend on the input
    /// size). `C = 36` gives 3,343,359: DARTS's own count of that network on CIFAR-10,
    /// 3,349,342, less the two input channels of the stem (1,944) and seven classes of the
    /// head (4,039). `C = 30` gives 2,348,553. The DARTS search itself used 8 cells of
    /// `C = 16` (a 1.93 M-parameter supernet here).
    pub fn paper(input_size: usize, classes: usize) -> Self {
        Self {
            channels: 32,
            cells: 20,
            ..Self::small(input_size, classes)
        }
    }

    /// The same layout with FairDARTS mixing (sigmoids).
    pub fn fair(self) -> Self {
        Self {
            mixing: DartsMixing::Sigmoid,
            ..self
        }
    }

    /// Rejects layouts no network can have.
    pub fn check(&self) -> Result<()> {
        ensure(
            self.channels > 0 && self.channels % 2 == 0,
            "darts.channels",
            self.channels,
            "must be even and positive (FactorizedReduce halves it)",
        )?;
        ensure(
            self.cells > 0,
            "darts.cells",
            self.cells,
            "needs at least one cell",
        )?;
        ensure(
            self.steps > 0,
            "darts.steps",
            self.steps,
            "needs at least one node",
        )?;
        ensure(
            self.stem_multiplier > 0,
            "darts.stem_multiplier",
            self.stem_multiplier,
            "must be positive",
        )?;
        ensure(
            self.classes >= 2,
            "darts.classes",
            self.classes,
            "needs at least two classes",
        )?;
        ensure(
            self.input_size > 0,
            "darts.input_size",
            self.input_size,
            "must be positive",
        )?;
        ensure(
            self.zero_one_weight.is_finite() && self.zero_one_weight >= 0.0,
            "darts.zero_one_weight",
            self.zero_one_weight,
            "must be at least 0",
        )?;
        ensure(
            self.threshold > 0.0 && self.threshold < 1.0,
            "darts.threshold",
            self.threshold,
            "must lie in (0, 1)",
        )
    }

    /// Whether cell `i` is a reduction cell.
    pub fn is_reduction(&self, i: usize) -> bool {
        i == self.cells / 3 || i == 2 * self.cells / 3
    }

    /// Edges per cell: `Σ_{i<steps} (2 + i)` (14 for 4 nodes).
    pub fn edges(&self) -> usize {
        (0..self.steps).map(|i| 2 + i).sum()
    }
}
