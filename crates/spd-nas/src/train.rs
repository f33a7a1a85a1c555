//! Training a fixed network (a derived architecture or a baseline) from scratch (spec §10):
//! Riemannian SGD (or Adam) with clipping and a learning-rate schedule, an epoch budget that
//! guarantees a minimum number of optimiser steps on small training sets, evaluation on the
//! validation part every epoch, selection of the epoch with the best validation accuracy (ties:
//! lower validation loss; the test part is touched once, by the caller, at the end; fixing
//! D12/D14), optional early stopping, and atomic checkpoints from which a killed run resumes to
//! the same result.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::loss::{argmax_rows, correct_count, cross_entropy};
use spd_autograd::optim::{Optimizer, clip_grad_norm_of};
use spd_autograd::{Graph, ParamId, ParamStore, StiefelMetric, Tensor, Var, on_worker};
use spd_data::Dataset;
use spd_data::split::{Split, epoch_batches};

use crate::error::{NasError, Result};
use crate::schedule::{LrSchedule, WeightOptimizer, better_validation, epoch_budget, lr_at};
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

/// Training hyper-parameters (paper defaults, spec §10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// paper (spec §8.3). A configuration without it was written before the choice existed and
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
            grad_clip: 5.0,
            patience: None,
            seed: 0,
        }
    }
}

impl TrainConfig {
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
            optimizer: config
                .optimizer
                .build(config.lr, config.momentum, config.stiefel_metric),
            best: None,
            history: Vec::new(),
        }
    }

    /// Reads a checkpoint written by [`TrainState::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let fail = |message: String| NasError::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| fail(format!("not a training checkpoint ({e})")))
    }

    /// Writes the state atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let fail = |message: String| NasError::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let json = serde_json::to_string(self).map_err(|e| fail(e.to_string()))?;
        spd_data::write_atomic(path, json.as_bytes()).map_err(|e| fail(e.problem.to_string()))
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

/// Predicted classes of `model` on `indices`.
pub fn predict(
    model: &dyn Classifier,
    weights: &ParamStore,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
) -> Result<Vec<usize>> {
    on_worker(|| predict_here(model, weights, data, indices, batch_size))
}

fn predict_here(
    model: &dyn Classifier,
    weights: &ParamStore,
    data: &Dataset,
    indices: &[usize],
    batch_size: usize,
) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(batch_size.max(1)) {
        let (x, _) = batch(data, chunk)?;
        let mut g = Graph::new();
        g.freeze(weights);
        let xv = g.constant(x);
        let logits = model.logits(&mut g, weights, &mut ForwardCtx::eval(), xv)?;
        out.extend(argmax_rows(g.value(logits)));
    }
    Ok(out)
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
    if state
        .best
        .as_ref()
        .is_none_or(|b| better_validation((val_accuracy, val_loss), (b.val_accuracy, b.val_loss)))
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

/// Trains until finished (or until `stop_at` epochs have run, to simulate an interruption),
/// saving a checkpoint after every epoch when `checkpoint` is given; returns the state and the
/// seconds spent.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &dyn Classifier,
    mut state: TrainState,
    data: &Dataset,
    split: &Split,
    config: &TrainConfig,
    checkpoint: Option<&Path>,
    stop_at: Option<usize>,
    mut on_epoch: impl FnMut(&TrainLog),
) -> Result<(TrainState, f64)> {
    let start = Instant::now();
    while !state.finished(config, split.train.len()) && stop_at.is_none_or(|s| state.epoch < s) {
        let log = train_epoch(model, &mut state, data, split, config, |_, _| {})?;
        on_epoch(&log);
        if let Some(path) = checkpoint {
            state.save(path)?;
        }
    }
    Ok((state, start.elapsed().as_secs_f64()))
}
