use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{decayed, retract, updatable};
use crate::error::{LinalgContext, Result};
use crate::graph::Gradients;
use crate::manifold::{Manifold, StiefelMetric};
use crate::param::{ParamId, ParamStore};
use crate::tensor::Tensor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Moments {
    first: Tensor,
    /// Per entry (Euclidean) or per matrix slice (Stiefel, SPD: `‖ξ_k‖²_x`).
    second: Vec<f64>,
}

/// Adam (Kingma & Ba) with coupled L2 weight decay, as the DARTS architect uses it; on manifold
/// parameters Riemannian Adam (Bécigneul & Ganea 2019): one second moment per matrix slice from
/// `‖ξ_k‖²`, the step `R_x(−η m̂ / (√v̂ + ε))`, and the first moment transported to the new point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// `(β₁, β₂)`.
    pub betas: (f64, f64),
    /// `ε`.
    pub eps: f64,
    /// Coupled L2 weight decay.
    pub weight_decay: f64,
    /// The metric of the Riemannian gradient on Stiefel parameters.
    #[serde(default)]
    pub stiefel_metric: StiefelMetric,
    steps: u64,
    moments: BTreeMap<ParamId, Moments>,
}

impl Adam {
    /// Adam with learning rate `lr` and the usual defaults `β = (0.9, 0.999)`, `ε = 1e-8`.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            stiefel_metric: StiefelMetric::Embedded,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// With `(β₁, β₂)`.
    pub fn with_betas(mut self, b1: f64, b2: f64) -> Self {
        self.betas = (b1, b2);
        self
    }

    /// With the metric `metric` on Stiefel parameters.
    pub fn with_stiefel_metric(mut self, metric: StiefelMetric) -> Self {
        self.stiefel_metric = metric;
        self
    }

    /// With weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// One step on every trainable parameter of `store` that has a gradient in `grads`.
    pub fn step(&mut self, store: &mut ParamStore, grads: &Gradients) -> Result<()> {
        self.steps += 1;
        let (b1, b2) = self.betas;
        let c1 = 1.0 - b1.powi(self.steps as i32);
        let c2 = 1.0 - b2.powi(self.steps as i32);
        for (id, g) in updatable(store, grads)? {
            let p = store.get(id).expect("checked by updatable");
            let xi = p
                .manifold
                .riemannian_gradient_in(
                    self.stiefel_metric,
                    &p.value,
                    &decayed(p, g, self.weight_decay),
                )
                .op("gradient")?;
            let per_entry = p.manifold == Manifold::Euclidean;
            let sq: Vec<f64> = if per_entry {
                xi.data().iter().map(|v| v * v).collect()
            } else {
                p.manifold.slice_norms_sq(&p.value, &xi).op("metric")?
            };
            let mo = self.moments.entry(id).or_insert_with(|| Moments {
                first: Tensor::zeros(xi.shape()),
                second: vec![0.0; sq.len()],
            });
            mo.first = mo.first.scaled(b1);
            mo.first.axpy(1.0 - b1, &xi);
            for (v, s) in mo.second.iter_mut().zip(&sq) {
                *v = b2 * *v + (1.0 - b2) * s;
            }
            let mut step = mo.first.scaled(-self.lr / c1);
            let slice = if per_entry { 1 } else { step.matrix_len() };
            for (chunk, v) in step.data_mut().chunks_mut(slice).zip(&mo.second) {
                let denom = (v / c2).sqrt() + self.eps;
                chunk.iter_mut().for_each(|s| *s /= denom);
            }
            let new_value = retract(p, &step)?;
            if !per_entry {
                mo.first = p
                    .manifold
                    .transport(&new_value, &mo.first)
                    .op("transport")?;
            }
            store.get_mut(id).expect("checked by updatable").value = new_value;
        }
        Ok(())
    }
}
