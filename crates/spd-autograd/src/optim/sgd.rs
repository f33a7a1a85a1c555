use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{decayed, retract, updatable};
use crate::error::{LinalgContext, Result};
use crate::graph::Gradients;
use crate::manifold::StiefelMetric;
use crate::param::{ParamId, ParamStore};
use crate::tensor::Tensor;

/// SGD with momentum and weight decay; Riemannian on manifold parameters:
/// `ξ = grad_R(g + λx)`, `v ← μ·Γ(v) + ξ`, `x ← R_x(−η v)`, with `Γ` the vector transport.
/// With `μ = 0` and [`StiefelMetric::Canonical`] this is the official SPDNetNAS
/// `MixOptimizer`'s update (`docs/fidelity.md`); the default embedded metric steps half as far on square
/// Stiefel weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Learning rate `η`.
    pub lr: f64,
    /// Momentum `μ`.
    pub momentum: f64,
    /// Coupled L2 weight decay `λ`.
    pub weight_decay: f64,
    /// The metric of the Riemannian gradient on Stiefel parameters.
    #[serde(default)]
    pub stiefel_metric: StiefelMetric,
    velocity: BTreeMap<ParamId, Tensor>,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            ..Default::default()
        }
    }

    /// With momentum `μ`.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// With the metric `metric` on Stiefel parameters.
    pub fn with_stiefel_metric(mut self, metric: StiefelMetric) -> Self {
        self.stiefel_metric = metric;
        self
    }

    /// With weight decay `λ`.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// One step on every trainable parameter of `store` that has a gradient in `grads`.
    pub fn step(&mut self, store: &mut ParamStore, grads: &Gradients) -> Result<()> {
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
            let direction = match (self.momentum, self.velocity.get(&id)) {
                (m, Some(v)) if m != 0.0 => {
                    let mut d = v.scaled(m);
                    d.add_assign(&xi);
                    d
                }
                _ => xi,
            };
            let new_value = retract(p, &direction.scaled(-self.lr))?;
            if self.momentum != 0.0 {
                let moved = p
                    .manifold
                    .transport(&new_value, &direction)
                    .op("transport")?;
                self.velocity.insert(id, moved);
            }
            store.get_mut(id).expect("checked by updatable").value = new_value;
        }
        Ok(())
    }
}
