//! Optimisers that respect each parameter's manifold: on a Euclidean parameter they are the
//! textbook methods; on Stiefel and SPD parameters they use the Riemannian gradient, move by
//! the retraction, and carry their state (momentum, first moments) by vector transport.
//! Global gradient-norm clipping acts on the Euclidean gradients before the step.

mod adam;
mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use serde::{Deserialize, Serialize};

use crate::error::{AutogradError, LinalgContext, Result};
use crate::graph::Gradients;
use crate::param::{Param, ParamStore};
use crate::tensor::Tensor;

/// Scales all gradients in `grads` so their global Euclidean norm is at most `max_norm`;
/// returns the norm before clipping (summed over parameters in id order).
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f64) -> f64 {
    let total = grads
        .params()
        .values()
        .map(Tensor::norm_sq)
        .sum::<f64>()
        .sqrt();
    if total > max_norm && total > 0.0 {
        let s = max_norm / total;
        for g in grads.params_mut().values_mut() {
            *g = g.scaled(s);
        }
    }
    total
}

/// [`clip_grad_norm`] restricted to the parameters `ids` (others untouched and not counted).
pub fn clip_grad_norm_of(grads: &mut Gradients, ids: &[crate::ParamId], max_norm: f64) -> f64 {
    let total = ids
        .iter()
        .filter_map(|id| grads.param(*id))
        .map(Tensor::norm_sq)
        .sum::<f64>()
        .sqrt();
    if total > max_norm && total > 0.0 {
        let s = max_norm / total;
        for id in ids {
            if let Some(g) = grads.params_mut().get_mut(id) {
                *g = g.scaled(s);
            }
        }
    }
    total
}

/// One of the optimisers, chosen at run time (a network's weights are moved by whichever the
/// configuration names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// (Riemannian) SGD with momentum.
    Sgd(Sgd),
    /// (Riemannian) Adam.
    Adam(Adam),
}

impl Optimizer {
    /// One step on every trainable parameter of `store` that has a gradient in `grads`.
    pub fn step(&mut self, store: &mut ParamStore, grads: &Gradients) -> Result<()> {
        match self {
            Optimizer::Sgd(o) => o.step(store, grads),
            Optimizer::Adam(o) => o.step(store, grads),
        }
    }

    /// The learning rate `η`.
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Sgd(o) => o.lr,
            Optimizer::Adam(o) => o.lr,
        }
    }

    /// Sets the learning rate (for a schedule); the optimiser's state is kept.
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Sgd(o) => o.lr = lr,
            Optimizer::Adam(o) => o.lr = lr,
        }
    }
}

/// `egrad + λ·x`: coupled L2 weight decay, on Euclidean parameters only (on a Stiefel weight
/// the term is normal to the manifold and projects to 0; on an SPD one it would pull towards the
/// zero matrix, off the manifold).
fn decayed(p: &Param, g: &Tensor, weight_decay: f64) -> Tensor {
    let mut g = g.clone();
    if weight_decay != 0.0 && p.manifold == crate::Manifold::Euclidean {
        g.axpy(weight_decay, &p.value);
    }
    g
}

/// The trainable parameters that have a gradient, in id order.
fn updatable<'a>(
    store: &ParamStore,
    grads: &'a Gradients,
) -> Result<Vec<(crate::ParamId, &'a Tensor)>> {
    let mut out = Vec::new();
    for (id, g) in grads.params() {
        let p = store
            .get(*id)
            .ok_or_else(|| AutogradError::UnknownParameter(format!("{id:?}")))?;
        if p.trainable {
            if g.shape() != p.value.shape() {
                return Err(AutogradError::Invalid(format!(
                    "gradient of {} has shape {:?}",
                    p.name,
                    g.shape()
                )));
            }
            out.push((*id, g));
        }
    }
    Ok(out)
}

fn retract(p: &Param, step: &Tensor) -> Result<Tensor> {
    p.manifold.retract(&p.value, step).op("retraction")
}

#[cfg(test)]
mod tests;
