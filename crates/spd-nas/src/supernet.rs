//! What the bilevel search needs of a supernet, so one search ([`crate::search::Search`]) runs
//! SPDNetNAS's SPD supernet and the Euclidean DARTS/FairDARTS supernets alike: the logits of a
//! batch under α, an optional penalty on α alone, and the genotype α derives.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use spd_autograd::layers::ForwardCtx;
use spd_autograd::{Graph, ParamStore, Var};

use crate::arch::ArchParams;
use crate::darts::{DartsGenotype, DartsMixing, DartsNetwork, arch_zero_one_loss};
use crate::error::Result;
use crate::genotype::Genotype;
use crate::network::Network;

/// A network whose edges mix candidates by α, searchable by [`crate::search::Search`].
pub trait Supernet: Send + Sync + Clone + Debug + Serialize + DeserializeOwned {
    /// What a derivation from α gives.
    type Genotype: Send + Sync + Clone + Debug + PartialEq + Serialize + DeserializeOwned;

    /// The logits `[B, 1, 1, classes]` of the SPD batch `x` (`[B, 1, n, n]`) under α.
    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var>;

    /// A term `R(α)` added to the validation loss of the architecture step (independent of the
    /// weights and the data), on `g` with α read as parameters; `None` when the method has none.
    fn arch_penalty(&self, g: &mut Graph, arch: &ArchParams) -> Result<Option<Var>> {
        let _ = (g, arch);
        Ok(None)
    }

    /// The genotype of α, with at most `max_skips` identity edges per cell where the method
    /// supports the cap.
    fn derive(&self, arch: &ArchParams, max_skips: Option<usize>) -> Result<Self::Genotype>;
}

/// SPDNetNAS's supernet: weighted Fréchet means of SPD candidates; derivation by the top-2 rule
/// with the optional P-DARTS cap on skips ([`Genotype::derive_capped`]).
impl Supernet for Network {
    type Genotype = Genotype;

    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        self.forward(g, weights, arch, ctx, x)
    }

    fn derive(&self, arch: &ArchParams, max_skips: Option<usize>) -> Result<Genotype> {
        Ok(Genotype::derive_capped(arch, &self.config, max_skips))
    }
}

/// DARTS's and FairDARTS's supernet on the matrix logarithms of the samples. FairDARTS adds
/// `w₀₁ · L₀₁(α)` to the architecture loss. The derivation is the published one of each method
/// (top-2 or threshold, [`DartsGenotype::derive`]); it has no cap on skips, which is
/// P-DARTS's rule, not theirs.
impl Supernet for DartsNetwork {
    type Genotype = DartsGenotype;

    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        self.forward_spd(g, weights, arch, ctx, x)
    }

    fn arch_penalty(&self, g: &mut Graph, arch: &ArchParams) -> Result<Option<Var>> {
        match self.config.mixing {
            DartsMixing::Softmax => Ok(None),
            DartsMixing::Sigmoid => Ok(Some(arch_zero_one_loss(
                g,
                arch,
                self.config.zero_one_weight,
            )?)),
        }
    }

    fn derive(&self, arch: &ArchParams, _max_skips: Option<usize>) -> Result<DartsGenotype> {
        DartsGenotype::derive(arch, &self.config)
    }
}
