//! How much optimisation a search or a training run gets, and how its learning rate moves: the
//! optimiser of the network weights, the learning-rate schedule, and an epoch budget that grows
//! on small training sets so that a run always makes a minimum number of optimiser steps.

use serde::{Deserialize, Serialize};
use spd_autograd::StiefelMetric;
use spd_autograd::optim::{Adam, Optimizer, Sgd};

/// The optimiser that moves the network weights (Stiefel BiMaps, SPD batch-norm biases and
/// Euclidean weights, each on its own manifold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WeightOptimizer {
    /// Riemannian SGD with the configured momentum: the paper's `MixOptimizer` (`docs/fidelity.md`).
    #[default]
    Sgd,
    /// Riemannian Adam (Bécigneul & Ganea 2019), `β = (0.9, 0.999)`, one second moment per
    /// matrix slice.
    Adam,
}

impl WeightOptimizer {
    /// The optimiser with learning rate `lr` (and `momentum`, used by SGD only), stepping
    /// along the gradient of `metric` on Stiefel weights, with coupled L2 decay `weight_decay`
    /// of the Euclidean weights.
    pub fn build(
        self,
        lr: f64,
        momentum: f64,
        metric: StiefelMetric,
        weight_decay: f64,
    ) -> Optimizer {
        match self {
            WeightOptimizer::Sgd => Optimizer::Sgd(
                Sgd::new(lr)
                    .with_momentum(momentum)
                    .with_stiefel_metric(metric)
                    .with_weight_decay(weight_decay),
            ),
            WeightOptimizer::Adam => Optimizer::Adam(
                Adam::new(lr)
                    .with_stiefel_metric(metric)
                    .with_weight_decay(weight_decay),
            ),
        }
    }
}

/// The learning rate of epoch `e` of `E`: `η_e = η · factor(e, E)`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum LrSchedule {
    /// `η` throughout (the paper).
    #[default]
    Constant,
    /// A linear warm-up over the first `w = ⌈warmup · E⌉` epochs, `η (e + 1)/(w + 1)`, then
    /// cosine annealing `η · ½ (1 + cos(π (e − w)/(E − w)))`.
    Cosine {
        /// Fraction of the epochs spent warming up, in `[0, 1)`.
        warmup: f64,
    },
}

impl LrSchedule {
    /// Cosine annealing after a linear warm-up over 5 % of the epochs (the quick preset's).
    pub const COSINE: LrSchedule = LrSchedule::Cosine { warmup: 0.05 };

    /// The factor of epoch `epoch` (from 0) of `epochs`; in `(0, 1]`.
    pub fn factor(self, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine { warmup } => {
                let w = warmup_epochs(warmup, epochs);
                if epoch < w {
                    return (epoch + 1) as f64 / (w + 1) as f64;
                }
                let span = epochs.saturating_sub(w).max(1) as f64;
                let t = (epoch - w) as f64 / span;
                0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }
}

/// Whether a validation result `(accuracy, loss)` is better than `best`: higher accuracy, or
/// the same accuracy at a lower loss (so an earlier epoch wins a full tie).
pub fn better_validation((accuracy, loss): (f64, f64), best: (f64, f64)) -> bool {
    accuracy > best.0 || (accuracy == best.0 && loss < best.1)
}

/// The warm-up epochs of a run of `epochs`: `⌈fraction · epochs⌉` (a negative or NaN fraction
/// counts as 0), leaving at least the last epoch out of the warm-up.
pub fn warmup_epochs(fraction: f64, epochs: usize) -> usize {
    let w = if fraction > 0.0 {
        (fraction * epochs as f64).ceil() as usize
    } else {
        0
    };
    w.min(epochs.saturating_sub(1))
}

/// The learning rate of epoch `epoch` of `epochs` under `schedule` from the base rate `lr`.
pub fn lr_at(schedule: LrSchedule, lr: f64, epoch: usize, epochs: usize) -> f64 {
    lr * schedule.factor(epoch, epochs)
}

/// The epochs a run makes on `train_len` training samples: at least `epochs`, and at least
/// enough for `min_steps` optimiser steps of `batch_size` (`⌈min_steps / ⌈train_len / batch⌉⌉`).
pub fn epoch_budget(epochs: usize, min_steps: usize, train_len: usize, batch_size: usize) -> usize {
    epochs.max(min_steps.div_ceil(steps_per_epoch(train_len, batch_size).max(1)))
}

/// Optimiser steps of an epoch over `train_len` samples: `⌈train_len / batch_size⌉`.
pub fn steps_per_epoch(train_len: usize, batch_size: usize) -> usize {
    train_len.div_ceil(batch_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn epoch_budget_keeps_epochs_on_large_sets_and_grows_on_small_ones() {
        // RADAR: 1500 samples, 50 steps per epoch
        assert_eq!(epoch_budget(30, 1500, 1500, 30), 30);
        // 316 samples, 11 steps per epoch
        assert_eq!(epoch_budget(30, 1500, 316, 30), 137);
        // 28 samples: one step per epoch
        assert_eq!(epoch_budget(30, 1500, 28, 30), 1500);
        assert_eq!(epoch_budget(30, 0, 0, 0), 30);
    }

    proptest! {
        #[test]
        fn epoch_budget_gives_at_least_min_steps_and_epochs(
            epochs in 0usize..500, min_steps in 0usize..5000, len in 1usize..3000, bs in 1usize..64,
        ) {
            let e = epoch_budget(epochs, min_steps, len, bs);
            prop_assert!(e >= epochs);
            prop_assert!(e * len.div_ceil(bs) >= min_steps);
            // and no epoch more than needed for either
            prop_assert!(e == epochs || (e - 1) * len.div_ceil(bs) < min_steps);
        }

        #[test]
        fn cosine_factor_is_in_unit_interval_rises_then_falls(
            warmup in 0.0f64..0.9, epochs in 1usize..400,
        ) {
            let s = LrSchedule::Cosine { warmup };
            let f: Vec<f64> = (0..epochs).map(|e| s.factor(e, epochs)).collect();
            let w = warmup_epochs(warmup, epochs);
            for (e, v) in f.iter().enumerate() {
                prop_assert!(*v > 0.0 && *v <= 1.0, "factor {} at epoch {}", v, e);
            }
            for e in 1..epochs {
                if e <= w {
                    prop_assert!(f[e] > f[e - 1]);
                } else {
                    prop_assert!(f[e] < f[e - 1]);
                }
            }
            prop_assert_eq!(f[w], 1.0);
        }
    }

    #[test]
    fn constant_factor_is_one() {
        assert_eq!(LrSchedule::Constant.factor(7, 10), 1.0);
    }
}
