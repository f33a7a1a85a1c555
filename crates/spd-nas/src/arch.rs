//! Architecture parameters α: one logit row per edge and cell type, kept in their
//! own [`ParamStore`] so that only the architecture optimiser moves them (fixing D3).

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use spd_autograd::ops::simplex::{Normalization, normalize_rows};
use spd_autograd::{Graph, Manifold, ParamId, ParamStore, Tensor, Var};

use crate::error::Result;

/// First id of architecture parameters, far above any network's weight ids.
pub const ARCH_PARAM_BASE: usize = 1 << 40;

/// α of the normal and the reduction cells, and the map from logits to mixing weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchParams {
    /// The logits, one `[1, 1, 1, K]` parameter per edge.
    pub store: ParamStore,
    /// Rows of the normal cell, in edge order.
    pub normal: Vec<ParamId>,
    /// Rows of the reduction cell, in edge order.
    pub reduce: Vec<ParamId>,
    /// Logits → weights.
    pub normalization: Normalization,
}

impl ArchParams {
    /// `edges` rows of width `width` per cell type, initialised `1e-3 · N(0, 1)`.
    pub fn new<R: rand::Rng + ?Sized>(
        edges: usize,
        width: usize,
        normalization: Normalization,
        rng: &mut R,
    ) -> Result<Self> {
        let mut store = ParamStore::with_base(ARCH_PARAM_BASE);
        let mut rows = |name: &str, store: &mut ParamStore| -> Result<Vec<ParamId>> {
            (0..edges)
                .map(|e| {
                    let v: Vec<f64> = (0..width)
                        .map(|_| {
                            1e-3 * <StandardNormal as Distribution<f64>>::sample(
                                &StandardNormal,
                                rng,
                            )
                        })
                        .collect();
                    Ok(store.add(
                        format!("alpha_{name}.{e}"),
                        Manifold::Euclidean,
                        Tensor::from_vec([1, 1, 1, width], v)?,
                    )?)
                })
                .collect()
        };
        let normal = rows("normal", &mut store)?;
        let reduce = rows("reduce", &mut store)?;
        Ok(Self {
            store,
            normal,
            reduce,
            normalization,
        })
    }

    fn ids(&self, reduce: bool) -> &[ParamId] {
        if reduce { &self.reduce } else { &self.normal }
    }

    /// The logits of one cell type, one row per edge.
    pub fn logits(&self, reduce: bool) -> Vec<Vec<f64>> {
        self.ids(reduce)
            .iter()
            .map(|id| self.store.get(*id).expect("own id").value.data().to_vec())
            .collect()
    }

    /// The mixing weights of one cell type, one row per edge.
    pub fn weights(&self, reduce: bool) -> Vec<Vec<f64>> {
        self.logits(reduce)
            .iter()
            .map(|z| self.normalization.apply_row(z))
            .collect()
    }

    /// The mixing weights as taped values (leaves unless the store is frozen on `g`).
    pub fn weight_vars(&self, g: &mut Graph, reduce: bool) -> Result<Vec<Var>> {
        self.ids(reduce)
            .iter()
            .map(|id| {
                let z = g.param(&self.store, *id)?;
                Ok(normalize_rows(g, z, self.normalization)?)
            })
            .collect()
    }
}
