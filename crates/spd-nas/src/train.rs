//! Training a fixed network (a derived architecture or a baseline) from scratch:
//! Riemannian SGD (or Adam) with clipping and a learning-rate schedule, an epoch budget that
//! guarantees a minimum number of optimiser steps on small training sets, evaluation on the
//! validation part every epoch, selection of the epoch with the best validation accuracy (ties:
//! lower validation loss; the test part is touched once, by the caller, at the end; fixing
//! D12/D14; without a validation part, the last epoch), optional early stopping, and atomic checkpoints from which a killed run resumes to
//! the same result.

use serde::{Deserialize, Serialize};
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::loss::{correct_count, cross_entropy};
use spd_autograd::optim::{Optimizer, clip_grad_norm_of};
use spd_autograd::{Graph, ParamId, ParamStore, StiefelMetric, Tensor, Var, on_worker};
use spd_data::Dataset;
use spd_data::split::{Split, epoch_batches};

use crate::error::{NasError, Result, ensure};
use crate::runner::{EpochLoop, log_value};
use crate::schedule::{
    LrSchedule, WeightOptimizer, better_validation, epoch_budget, lr_at, steps_per_epoch,
};
use crate::search::batch;

/// A model mapping `[B, 1, n, n]` inputs to logits (`Sync`, so training runs on rayon's
/// workers; see [`on_worker`]).
pub trait Classifier: Sync {
    /// The logits `[B, 1, 1, classes]`.
    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var>;
}

impl Classifier for crate::network::Network {
    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        self.forward(g, weights, None, ctx, x)
    }
}

/// Training hyper-parameters (the paper's values, `docs/fidelity.md`; missing fields read as those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Epochs (at least; see `min_steps`).
    pub epochs: usize,
    /// At least this many optimiser steps: on a small training set the run gets more epochs
    /// ([`epoch_budget`]). 0 (the paper) runs `epochs` whatever the set's size.
    #[serde(default)]
    pub min_steps: usize,
    /// The optimiser of the weights.
    #[serde(default)]
    pub optimizer: WeightOptimizer,
    /// The metric of the Riemannian gradient on the BiMap (Stiefel) weights: canonical in the
    /// paper (`docs/fidelity.md`). A configuration without it was written before the choice existed and
    /// ran the embedded metric.
    #[serde(default)]
    pub stiefel_metric: StiefelMetric,
    /// The learning-rate schedule over the epoch budget.
    #[serde(default)]
    pub schedule: LrSchedule,
    /// Batch size (30).
    pub batch_size: usize,
    /// Learning rate (0.025).
    pub lr: f64,
    /// Momentum (0 in the official code).
    pub momentum: f64,
    /// Coupled L2 decay `λ` of the Euclidean weights (the classifier; 0 in the paper).
    #[serde(default)]
    pub weight_decay: f64,
    /// Global gradient-norm clip (5).
    pub grad_clip: f64,
    /// Stop after this many epochs without a better validation result (accuracy, then loss).
    pub patience: Option<usize>,
    /// Seed of the batch order.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            min_steps: 0,
            optimizer: WeightOptimizer::Sgd,
            stiefel_metric: StiefelMetric::Canonical,
            schedule: LrSchedule::Constant,
            batch_size: 30,
            lr: 0.025,
            momentum: 0.0,
            weight_decay: 0.0,
            grad_clip: 5.0,
            patience: None,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Rejects settings no training can use.
    pub fn check(&self) -> Result<()> {
        ensure(
            self.epochs > 0 || self.min_steps > 0,
            "train.epochs",
            self.epochs,
            "training needs at least one epoch",
        )?;
        ensure(
            self.lr.is_finite() && self.lr > 0.0,
            "train.lr",
            self.lr,
            "must be positive",
        )?;
        ensure(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "train.weight_decay",
            self.weight_decay,
            "must be at least 0",
        )?;
        ensure(
            self.batch_size > 0,
            "train.batch_size",
            self.batch_size,
            "must be positive",
        )
    }

    /// The epochs of a run on `train_len` training samples.
    pub fn epochs_for(&self, train_len: usize) -> usize {
        epoch_budget(self.epochs, self.min_steps, train_len, self.batch_size)
    }
}

/// The epoch with the best validation result so far, with its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BestEpoch {
    /// The epoch (from 0).
    pub epoch: usize,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// Its validation loss (the tie-break).
    pub val_loss: f64,
    /// The weights after it.
    pub weights: ParamStore,
}

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainLog {
    /// Epoch (from 0).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (during the epoch, training mode).
    pub train_accuracy: f64,
    /// Validation loss (evaluation mode, after the epoch).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Learning rate of the epoch.
    #[serde(default)]
    pub lr: f64,
}

/// Everything a run needs to continue: weights (with batch-norm running means), optimiser
/// state, the epoch reached, the best weights so far and the history. The batch order of epoch
/// `e` is a function of `(seed, e)`, so no other random state exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Next epoch to run.
    pub epoch: usize,
    /// Current weights.
    pub weights: ParamStore,
    /// Optimiser (with its momentum buffers or moments).
    pub optimizer: Optimizer,
    /// The best epoch so far.
    pub best: Option<BestEpoch>,
    /// Per-epoch logs.
    pub history: Vec<TrainLog>,
}

impl TrainState {
    /// A fresh state for `weights`.
    pub fn new(weights: ParamStore, config: &TrainConfig) -> Self {
        Self {
            epoch: 0,
            weights,
            optimizer: config.optimizer.build(
                config.lr,
                config.momentum,
                config.stiefel_metric,
                config.weight_decay,
            ),
            best: None,
            history: Vec::new(),
        }
    }

    /// Whether training on `train_len` samples is over: the epoch budget run, or patience
    /// exhausted.
    pub fn finished(&self, config: &TrainConfig, train_len: usize) -> bool {
        if self.epoch >= config.epochs_for(train_len) {
            return true;
        }
        match (config.patience, &self.best) {
            (Some(p), Some(best)) => self.epoch > best.epoch + p,
            _ => false,
        }
    }
}

/// Mean loss and accuracy of `model` on `indices` (evaluation mode).
pub fn evaluate_model(
    model: &dyn Classifier,
    weights: &ParamStore,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
) -> Result<(f64, f64)> {
    on_worker(|| evaluate_here(model, weights, data, indices, batch_size))
}

fn evaluate_here(
    model: &dyn Classifier,
    weights: &ParamStore,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
) -> Result<(f64, f64)> {
    let (mut loss, mut correct) = (0.0, 0);
    for chunk in indices.chunks(batch_size.max(1)) {
        let (x, y) = batch(data, chunk)?;
        let mut g = Graph::new();
        g.freeze(weights);
        let xv = g.constant(x);
        let logits = model.logits(&mut g, weights, &mut ForwardCtx::eval(), xv)?;
        correct += correct_count(g.value(logits), &y);
        let l = cross_entropy(&mut g, logits, &y)?;
        loss += g.value(l).data()[0] * y.len() as f64;
    }
    let n = indices.len().max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

/// The logits of `model` on `indices` (evaluation mode), one row of class scores per sample.
pub fn logits(
    model: &dyn Classifier,
    weights: &ParamStore,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
) -> Result<Vec<Vec<f64>>> {
    on_worker(|| {
        let mut rows = Vec::with_capacity(indices.len());
        for chunk in indices.chunks(batch_size.max(1)) {
            let (x, _) = batch(data, chunk)?;
            let mut g = Graph::new();
            g.freeze(weights);
            let xv = g.constant(x);
            let logits = model.logits(&mut g, weights, &mut ForwardCtx::eval(), xv)?;
            let k = g.value(logits).cols().max(1);
            rows.extend(g.value(logits).data().chunks(k).map(<[f64]>::to_vec));
        }
        Ok(rows)
    })
}

/// One optimiser step of `state` on the batch `(x, y)`: forward in training mode, cross-entropy,
/// backward, clipping of the global gradient norm over `ids` to `grad_clip`, Riemannian SGD,
/// batch-norm running means committed. Returns the batch's mean loss and correct count.
pub fn train_step(
    model: &dyn Classifier,
    state: &mut TrainState,
    x: Tensor,
    y: &[usize],
    ids: &[ParamId],
    grad_clip: f64,
) -> Result<(f64, usize)> {
    on_worker(|| {
        let mut g = Graph::new();
        let xv = g.constant(x);
        let mut ctx = ForwardCtx::train();
        let logits = model.logits(&mut g, &state.weights, &mut ctx, xv)?;
        let correct = correct_count(g.value(logits), y);
        let loss = cross_entropy(&mut g, logits, y)?;
        let loss_value = g.value(loss).data()[0];
        let mut grads = g.backward(loss)?;
        clip_grad_norm_of(&mut grads, ids, grad_clip);
        state.optimizer.step(&mut state.weights, &grads)?;
        ctx.commit(&mut state.weights);
        Ok((loss_value, correct))
    })
}

/// Runs one epoch of `state` and its validation.
pub fn train_epoch(
    model: &dyn Classifier,
    state: &mut TrainState,
    data: &Dataset,
    split: &Split,
    config: &TrainConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<TrainLog> {
    let epoch = state.epoch;
    let lr = lr_at(
        config.schedule,
        config.lr,
        epoch,
        config.epochs_for(split.train.len()),
    );
    state.optimizer.set_lr(lr);
    let batches = epoch_batches(&split.train, config.batch_size, config.seed, epoch as u64);
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0, 0);
    let ids = state.weights.ids();
    for (i, b) in batches.iter().enumerate() {
        let (x, y) = batch(data, b)?;
        let (loss, c) = train_step(model, state, x, &y, &ids, config.grad_clip)
            .map_err(|e| e.in_step("training", state.epoch, i))?;
        loss_sum += loss * y.len() as f64;
        correct += c;
        seen += y.len();
        progress(i + 1, batches.len());
    }
    let (val_loss, val_accuracy) =
        evaluate_model(model, &state.weights, data, &split.val, config.batch_size)?;
    let log = TrainLog {
        epoch,
        train_loss: loss_sum / seen.max(1) as f64,
        train_accuracy: correct as f64 / seen.max(1) as f64,
        val_loss,
        val_accuracy,
        lr,
    };
    // without a validation part nothing can be selected: the last epoch is kept
    if split.val.is_empty()
        || state.best.as_ref().is_none_or(|b| {
            better_validation((val_accuracy, val_loss), (b.val_accuracy, b.val_loss))
        })
    {
        state.best = Some(BestEpoch {
            epoch,
            val_accuracy,
            val_loss,
            weights: state.weights.clone(),
        });
    }
    state.history.push(log.clone());
    state.epoch += 1;
    Ok(log)
}

/// A training as an epoch loop: `model` with the weights and optimiser of `state`, run by
/// [`crate::runner::run_epochs`].
pub struct Training<'m> {
    /// The model (its weights live in `state`).
    pub model: &'m dyn Classifier,
    /// Settings.
    pub config: TrainConfig,
    /// Weights, optimiser, best epoch and history.
    pub state: TrainState,
}

impl<'m> Training<'m> {
    /// A fresh training of `model` from `weights`.
    pub fn new(model: &'m dyn Classifier, weights: ParamStore, config: TrainConfig) -> Self {
        let state = TrainState::new(weights, &config);
        Self {
            model,
            config,
            state,
        }
    }

    /// The best validation epoch, or an error when no epoch ran.
    pub fn best(&self) -> Result<&BestEpoch> {
        self.state
            .best
            .as_ref()
            .ok_or_else(|| NasError::Run("training ran no epoch".into()))
    }
}

impl EpochLoop for Training<'_> {
    fn epoch(&self) -> usize {
        self.state.epoch
    }

    fn epochs(&self, split: &Split) -> usize {
        self.config.epochs_for(split.train.len())
    }

    fn batches(&self, split: &Split) -> usize {
        steps_per_epoch(split.train.len(), self.config.batch_size)
    }

    fn finished(&self, split: &Split) -> bool {
        self.state.finished(&self.config, split.train.len())
    }

    fn run_epoch(
        &mut self,
        data: &Dataset,
        split: &Split,
        on_batch: &mut dyn FnMut(usize, usize),
    ) -> Result<serde_json::Value> {
        let log = train_epoch(
            self.model,
            &mut self.state,
            data,
            split,
            &self.config,
            on_batch,
        )?;
        Ok(log_value(&log))
    }

    fn checkpoint(&self) -> Result<serde_json::Value> {
        Ok(log_value(&self.state))
    }
}
