//! The bilevel search: per training batch, an architecture step on a validation
//! batch (Adam on α), then a network step (Riemannian SGD on the weights, clipped). The
//! second-order architecture gradient uses a Riemannian virtual step and Riemannian
//! finite-difference perturbations (fixing D4); α never enters the weight optimiser or the
//! clipping (fixing D3); auxiliary forwards never move the batch-norm running means (D17).
//! Beyond the paper (all off in its defaults): a warm-up of the weights with α frozen, a
//! learning-rate schedule and an epoch budget (see [`crate::schedule`]), and a cap on the skip
//! connections of a derived cell. The genotype is selected on the supernet's validation
//! accuracy after each epoch (the paper selects "based on the validation
//! performance") or taken from the last epoch.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spd_autograd::layers::ForwardCtx;
use spd_autograd::on_worker;
use spd_autograd::ops::loss::{correct_count, cross_entropy};
use spd_autograd::optim::{Adam, Optimizer, clip_grad_norm_of};
use spd_autograd::{Gradients, Graph, ParamId, ParamStore, StiefelMetric, Tensor};
use spd_data::Dataset;
use spd_data::split::{Split, epoch_batches};

use crate::arch::ArchParams;
use crate::darts::{DartsConfig, DartsNetwork};
use crate::error::{NasError, Result, ensure};
use crate::genotype::Genotype;
use crate::network::Network;
use crate::network_config::NetworkConfig;
use crate::runner::{EpochLoop, log_value};
use crate::schedule::{
    LrSchedule, WeightOptimizer, better_validation, epoch_budget, lr_at, steps_per_epoch,
    warmup_epochs,
};
use crate::seeds;
use crate::supernet::Supernet;

/// First- or second-order (unrolled) architecture gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Order {
    /// `∇_α L_val(w, α)`.
    First,
    /// `∇_α L_val(w̃, α) − η ∇²_{α,w} L_train(w, α) ∇_{w̃} L_val(w̃, α)` with
    /// `w̃ = R_w(−η grad L_train)` (paper Eqs. 9–10).
    #[default]
    Second,
}

/// Which epoch's genotype a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GenotypeSelection {
    /// The epoch whose supernet validation accuracy is highest (ties: lower loss, then the
    /// earlier epoch), among the epochs after the warm-up.
    #[default]
    Best,
    /// The last epoch's.
    Last,
}

/// Search hyper-parameters (the paper's values, `docs/fidelity.md`; missing fields read as those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchConfig {
    /// Epochs (at least; see `min_steps`).
    pub epochs: usize,
    /// At least this many network steps: on a small training set the search gets more epochs
    /// ([`epoch_budget`]); 0 (the paper) runs `epochs` whatever the size.
    #[serde(default)]
    pub min_steps: usize,
    /// Fraction of the epochs at the start in which only the weights train (α frozen), as
    /// DARTS-style searches warm up; 0 in the paper.
    #[serde(default)]
    pub warmup: f64,
    /// The optimiser of the supernet's weights.
    #[serde(default)]
    pub optimizer: WeightOptimizer,
    /// The metric of the Riemannian gradient on the BiMap (Stiefel) weights, in the network
    /// step and the virtual step: canonical in the paper (`docs/fidelity.md`). A configuration without
    /// it was written before the choice existed and ran the embedded metric.
    #[serde(default)]
    pub stiefel_metric: StiefelMetric,
    /// The learning-rate schedule of the weights (the virtual step uses the current rate).
    #[serde(default)]
    pub schedule: LrSchedule,
    /// Which epoch's genotype is returned.
    #[serde(default)]
    pub selection: GenotypeSelection,
    /// At most this many skip connections (the identity op `Skip_normal`; v1's `Skip_1_normal`
    /// carries a BiMap and does not count) per derived cell: surplus skips (lowest weight
    /// first) are replaced by the edge's best other op, as P-DARTS does (Chen et al. 2019).
    /// `None` in the paper.
    #[serde(default)]
    pub max_skips: Option<usize>,
    /// Batch size (30).
    pub batch_size: usize,
    /// Network learning rate η (0.025), also the virtual step's.
    pub lr: f64,
    /// Network momentum (0 in the official code).
    pub momentum: f64,
    /// Global gradient-norm clip of the network weights (5).
    pub grad_clip: f64,
    /// α learning rate (3e-4).
    pub arch_lr: f64,
    /// α Adam betas ((0.5, 0.999)).
    pub arch_betas: (f64, f64),
    /// α weight decay (1e-3).
    pub arch_weight_decay: f64,
    /// First or second order.
    pub order: Order,
    /// Seed of batch order.
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            min_steps: 0,
            warmup: 0.0,
            optimizer: WeightOptimizer::Sgd,
            stiefel_metric: StiefelMetric::Canonical,
            schedule: LrSchedule::Constant,
            selection: GenotypeSelection::Best,
            max_skips: None,
            batch_size: 30,
            lr: 0.025,
            momentum: 0.0,
            grad_clip: 5.0,
            arch_lr: 3e-4,
            arch_betas: (0.5, 0.999),
            arch_weight_decay: 1e-3,
            order: Order::Second,
            seed: 0,
        }
    }
}

impl SearchConfig {
    /// Rejects settings no search can use.
    pub fn check(&self) -> Result<()> {
        ensure(
            self.epochs > 0 || self.min_steps > 0,
            "search.epochs",
            self.epochs,
            "the search needs at least one epoch",
        )?;
        ensure(
            self.lr.is_finite() && self.lr > 0.0,
            "search.lr",
            self.lr,
            "must be positive",
        )?;
        ensure(
            self.arch_lr.is_finite() && self.arch_lr > 0.0,
            "search.arch_lr",
            self.arch_lr,
            "must be positive",
        )?;
        ensure(
            (0.0..1.0).contains(&self.warmup),
            "search.warmup",
            self.warmup,
            "must be in [0, 1)",
        )?;
        ensure(
            self.batch_size > 0,
            "search.batch_size",
            self.batch_size,
            "must be positive",
        )
    }

    /// The epochs of a search on `train_len` training samples.
    pub fn epochs_for(&self, train_len: usize) -> usize {
        epoch_budget(self.epochs, self.min_steps, train_len, self.batch_size)
    }

    /// The warm-up epochs (α frozen) of a search of `epochs` epochs; always leaves one epoch
    /// in which α moves.
    pub fn warmup_epochs(&self, epochs: usize) -> usize {
        warmup_epochs(self.warmup, epochs)
    }
}

/// The genotype a search selected and the supernet's validation result at that epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectedGenotype<G = Genotype> {
    /// The epoch (from 0) it was derived after.
    pub epoch: usize,
    /// Supernet validation accuracy after that epoch.
    pub val_accuracy: f64,
    /// Supernet validation loss after that epoch.
    pub val_loss: f64,
    /// The genotype.
    pub genotype: G,
}

/// One line of the search log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog<G = Genotype> {
    /// Epoch (from 0).
    pub epoch: usize,
    /// Mean training loss of the network steps.
    pub train_loss: f64,
    /// Training accuracy of the network steps.
    pub train_accuracy: f64,
    /// Mean validation loss (evaluation mode, after the epoch).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// The genotype derived after the epoch.
    pub genotype: G,
    /// Mixing weights of the normal cell after the epoch, one row per edge.
    pub alpha_normal: Vec<Vec<f64>>,
    /// Mixing weights of the reduction cell.
    pub alpha_reduce: Vec<Vec<f64>>,
    /// Seconds since the search started.
    pub elapsed_s: f64,
    /// Whether α moved in this epoch (false in the warm-up).
    #[serde(default = "yes")]
    pub arch_moved: bool,
    /// Learning rate of the weights in this epoch.
    #[serde(default)]
    pub lr: f64,
    /// The epoch whose genotype the selection keeps so far.
    #[serde(default)]
    pub selected_epoch: Option<usize>,
}

fn yes() -> bool {
    true
}

impl<G: Serialize> EpochLog<G> {
    /// One line of JSON (for a `search.jsonl` log).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an epoch log serialises")
    }
}

/// A batch: inputs `[B, 1, n, n]` and labels.
pub fn batch(data: &Dataset, indices: &[usize]) -> Result<(Tensor, Vec<usize>)> {
    let mats: Vec<_> = indices.iter().map(|&i| data.matrix(i)).collect();
    let x = Tensor::from_matrices(1, &mats)?;
    Ok((x, indices.iter().map(|&i| data.labels()[i]).collect()))
}

/// Loss, accuracy, gradients (of whatever is not frozen) and the buffer updates of one forward.
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Correct predictions.
    pub correct: usize,
    /// Gradients.
    pub grads: Option<Gradients>,
    /// Running-mean updates recorded (train mode).
    pub ctx: ForwardCtx,
}

/// Batch statistics or running means in the batch-norm layers of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics, and running-mean updates recorded in the [`Evaluation`]'s context.
    Train,
    /// Running means.
    Eval,
}

/// Which parameters a forward differentiates; the others enter the tape as constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Differentiate {
    /// No backward pass.
    Nothing,
    /// The network weights (α constant).
    Weights,
    /// α (the weights constant).
    Arch,
    /// Both.
    Both,
}

impl Differentiate {
    fn weights(self) -> bool {
        matches!(self, Differentiate::Weights | Differentiate::Both)
    }

    fn arch(self) -> bool {
        matches!(self, Differentiate::Arch | Differentiate::Both)
    }
}

/// Forward of `network` on a batch in `mode`, with the cross-entropy and, unless `wrt` is
/// [`Differentiate::Nothing`], its gradients with respect to `wrt`.
pub fn evaluate<N: Supernet>(
    network: &N,
    weights: &ParamStore,
    arch: Option<&ArchParams>,
    (x, y): (&Tensor, &[usize]),
    mode: Mode,
    wrt: Differentiate,
) -> Result<Evaluation> {
    let mut g = Graph::new();
    if !wrt.weights() {
        g.freeze(weights);
    }
    if let (false, Some(a)) = (wrt.arch(), arch) {
        g.freeze(&a.store);
    }
    let mut ctx = match mode {
        Mode::Train => ForwardCtx::train(),
        Mode::Eval => ForwardCtx::eval(),
    };
    let xv = g.constant(x.clone());
    let logits = network.logits(&mut g, weights, arch, &mut ctx, xv)?;
    let correct = correct_count(g.value(logits), y);
    let loss = cross_entropy(&mut g, logits, y)?;
    let value = g.value(loss).data()[0];
    let grads = match wrt {
        Differentiate::Nothing => None,
        _ => Some(g.backward(loss)?),
    };
    Ok(Evaluation {
        loss: value,
        correct,
        grads,
        ctx,
    })
}

fn weight_grads(grads: &Gradients, store: &ParamStore) -> BTreeMap<ParamId, Tensor> {
    grads
        .params()
        .iter()
        .filter(|(id, _)| store.contains(**id))
        .map(|(id, t)| (*id, t.clone()))
        .collect()
}

/// A copy of `store` moved along `direction` by the retraction: `R_w(s · direction)` per
/// parameter.
fn retracted(
    store: &ParamStore,
    direction: &BTreeMap<ParamId, Tensor>,
    s: f64,
) -> Result<ParamStore> {
    let mut out = store.clone();
    for (id, d) in direction {
        let p = out.get_mut(*id).expect("own parameter");
        p.value = p
            .manifold
            .retract(&p.value, &d.scaled(s))
            .map_err(|source| NasError::Manifold {
                what: "retraction",
                param: p.name.clone(),
                source,
            })?;
    }
    Ok(out)
}

/// The virtual step `w̃ = R_w(−η ξ)` of the second-order gradient: the learning rate `η` and
/// the metric of `ξ` on Stiefel weights (those of the network step it imitates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VirtualStep {
    /// `η`.
    pub lr: f64,
    /// The metric of the Riemannian gradients `ξ` and `v`.
    pub metric: StiefelMetric,
}

/// Riemannian gradients (of `metric` on Stiefel weights) of the Euclidean gradients `g` at the
/// points of `store`.
fn riemannian(
    store: &ParamStore,
    g: &BTreeMap<ParamId, Tensor>,
    metric: StiefelMetric,
) -> Result<BTreeMap<ParamId, Tensor>> {
    g.iter()
        .map(|(id, t)| {
            let p = store.get(*id).expect("own parameter");
            let r = p
                .manifold
                .riemannian_gradient_in(metric, &p.value, t)
                .map_err(|source| NasError::Manifold {
                    what: "Riemannian gradient",
                    param: p.name.clone(),
                    source,
                })?;
            Ok((*id, r))
        })
        .collect()
}

/// The gradient of the network's penalty on α ([`Supernet::arch_penalty`]); `None` when it
/// has none.
fn penalty_gradient<N: Supernet>(
    network: &N,
    arch: &ArchParams,
) -> Result<Option<BTreeMap<ParamId, Tensor>>> {
    let mut g = Graph::new();
    let Some(penalty) = network.arch_penalty(&mut g, arch)? else {
        return Ok(None);
    };
    Ok(Some(weight_grads(&g.backward(penalty)?, &arch.store)))
}

/// The architecture gradient `g_α` for one (train, val) pair of batches: the gradient of the
/// validation loss (first or second order) plus that of the network's penalty on α, which
/// depends on neither the weights nor the data and so adds as it is in both orders.
pub fn arch_gradient<N: Supernet>(
    network: &N,
    weights: &ParamStore,
    arch: &ArchParams,
    train: (&Tensor, &[usize]),
    val: (&Tensor, &[usize]),
    order: Order,
    step: VirtualStep,
) -> Result<BTreeMap<ParamId, Tensor>> {
    let mut g_alpha = loss_arch_gradient(network, weights, arch, train, val, order, step)?;
    if let Some(penalty) = penalty_gradient(network, arch)? {
        for (id, p) in penalty {
            g_alpha
                .entry(id)
                .or_insert_with(|| Tensor::zeros(p.shape()))
                .axpy(1.0, &p);
        }
    }
    Ok(g_alpha)
}

/// The gradient in α of the validation loss, first or second order.
fn loss_arch_gradient<N: Supernet>(
    network: &N,
    weights: &ParamStore,
    arch: &ArchParams,
    train: (&Tensor, &[usize]),
    val: (&Tensor, &[usize]),
    order: Order,
    step: VirtualStep,
) -> Result<BTreeMap<ParamId, Tensor>> {
    let VirtualStep { lr, metric } = step;
    let alpha_of = |g: &Gradients| -> BTreeMap<ParamId, Tensor> {
        g.params()
            .iter()
            .filter(|(id, _)| arch.store.contains(**id))
            .map(|(id, t)| (*id, t.clone()))
            .collect()
    };
    match order {
        Order::First => {
            let e = evaluate(
                network,
                weights,
                Some(arch),
                val,
                Mode::Train,
                Differentiate::Arch,
            )?;
            Ok(alpha_of(e.grads.as_ref().expect("backward")))
        }
        Order::Second => {
            // virtual step w̃ = R_w(−η ξ), ξ the Riemannian gradient of the training loss
            let e = evaluate(
                network,
                weights,
                Some(arch),
                train,
                Mode::Train,
                Differentiate::Weights,
            )?;
            let xi = riemannian(
                weights,
                &weight_grads(e.grads.as_ref().expect("backward"), weights),
                metric,
            )?;
            let virtual_w = retracted(weights, &xi, -lr)?;
            // ∇_α L_val(w̃, α) and v = ∇_w̃ L_val(w̃, α)
            let e = evaluate(
                network,
                &virtual_w,
                Some(arch),
                val,
                Mode::Train,
                Differentiate::Both,
            )?;
            let grads = e.grads.expect("backward");
            let mut g_alpha = alpha_of(&grads);
            let v = riemannian(&virtual_w, &weight_grads(&grads, &virtual_w), metric)?;
            // moved to T_w by projection, then w± = R_w(±δ v), δ = 0.01/‖v‖
            let v_at_w: BTreeMap<ParamId, Tensor> =
                v.iter()
                    .map(|(id, t)| {
                        let p = weights.get(*id).expect("own parameter");
                        let moved = p.manifold.transport(&p.value, t).map_err(|source| {
                            NasError::Manifold {
                                what: "transport",
                                param: p.name.clone(),
                                source,
                            }
                        })?;
                        Ok((*id, moved))
                    })
                    .collect::<Result<_>>()?;
            let norm = v_at_w.values().map(Tensor::norm_sq).sum::<f64>().sqrt();
            if norm == 0.0 {
                return Ok(g_alpha);
            }
            let delta = 0.01 / norm;
            let plus = retracted(weights, &v_at_w, delta)?;
            let minus = retracted(weights, &v_at_w, -delta)?;
            let hp = evaluate(
                network,
                &plus,
                Some(arch),
                train,
                Mode::Train,
                Differentiate::Arch,
            )?;
            let hm = evaluate(
                network,
                &minus,
                Some(arch),
                train,
                Mode::Train,
                Differentiate::Arch,
            )?;
            let (hp, hm) = (
                alpha_of(hp.grads.as_ref().expect("backward")),
                alpha_of(hm.grads.as_ref().expect("backward")),
            );
            for (id, g) in g_alpha.iter_mut() {
                let zero = Tensor::zeros(g.shape());
                let (a, b) = (hp.get(id).unwrap_or(&zero), hm.get(id).unwrap_or(&zero));
                g.axpy(-lr / (2.0 * delta), a);
                g.axpy(lr / (2.0 * delta), b);
            }
            Ok(g_alpha)
        }
    }
}

/// The state of a search.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Search<N: Supernet = Network> {
    /// The supernet.
    pub network: N,
    /// Its weights.
    pub weights: ParamStore,
    /// α.
    pub arch: ArchParams,
    /// Settings.
    pub config: SearchConfig,
    weight_opt: Optimizer,
    arch_opt: Adam,
    started: Option<f64>,
    /// The best epoch's genotype so far (after the warm-up).
    #[serde(default)]
    best: Option<SelectedGenotype<N::Genotype>>,
    /// The last epoch's genotype.
    #[serde(default)]
    last: Option<SelectedGenotype<N::Genotype>>,
    /// The next epoch to run.
    #[serde(default)]
    epoch: usize,
    /// One line per epoch run.
    #[serde(default)]
    logs: Vec<EpochLog<N::Genotype>>,
}

impl Search {
    /// The search of a fresh supernet for `network`: its weights, then α, drawn from one
    /// generator seeded by `seed` (salt [`seeds::SUPERNET_INIT`]).
    pub fn supernet(network: &NetworkConfig, config: SearchConfig, seed: u64) -> Result<Self> {
        let mut rng = seeds::rng(seed, seeds::SUPERNET_INIT);
        let mut weights = ParamStore::new();
        let supernet = Network::supernet(network, &mut weights, &mut rng)?;
        let arch = ArchParams::new(
            network.edges(),
            network.search_space().width(),
            network.spec.arch_normalization,
            &mut rng,
        )?;
        Ok(Self::new(supernet, weights, arch, config))
    }
}

impl Search<DartsNetwork> {
    /// The search of a fresh DARTS (or FairDARTS, by `network.mixing`) supernet: its weights,
    /// then α, drawn from one generator seeded by `seed` (salt [`seeds::SUPERNET_INIT`]).
    pub fn darts(network: &DartsConfig, config: SearchConfig, seed: u64) -> Result<Self> {
        network.check()?;
        let mut rng = seeds::rng(seed, seeds::SUPERNET_INIT);
        let mut weights = ParamStore::new();
        let supernet = DartsNetwork::supernet(network, &mut weights, &mut rng)?;
        let arch = DartsNetwork::arch_params(network, &mut rng)?;
        Ok(Self::new(supernet, weights, arch, config))
    }
}

impl<N: Supernet> Search<N> {
    /// A search of `network` (a supernet) from `weights` and `arch`.
    pub fn new(network: N, weights: ParamStore, arch: ArchParams, config: SearchConfig) -> Self {
        let weight_opt =
            config
                .optimizer
                .build(config.lr, config.momentum, config.stiefel_metric, 0.0);
        let arch_opt = Adam::new(config.arch_lr)
            .with_betas(config.arch_betas.0, config.arch_betas.1)
            .with_weight_decay(config.arch_weight_decay);
        Self {
            network,
            weights,
            arch,
            config,
            weight_opt,
            arch_opt,
            started: None,
            best: None,
            last: None,
            epoch: 0,
            logs: Vec::new(),
        }
    }

    /// The epochs run so far, one log line each.
    pub fn logs(&self) -> &[EpochLog<N::Genotype>] {
        &self.logs
    }

    /// One architecture step on `val` then one network step on `train`; returns the training
    /// loss and correct count of the network step.
    pub fn step(
        &mut self,
        train: (&Tensor, &[usize]),
        val: (&Tensor, &[usize]),
    ) -> Result<(f64, usize)> {
        on_worker(|| {
            self.arch_step(train, val)?;
            self.weight_step(train)
        })
    }

    /// The architecture step: Adam on α with the (first- or second-order) gradient.
    fn arch_step(&mut self, train: (&Tensor, &[usize]), val: (&Tensor, &[usize])) -> Result<()> {
        let g_alpha = arch_gradient(
            &self.network,
            &self.weights,
            &self.arch,
            train,
            val,
            self.config.order,
            VirtualStep {
                lr: self.weight_opt.lr(),
                metric: self.config.stiefel_metric,
            },
        )?;
        let mut grads = Gradients::default();
        grads.params_mut().extend(g_alpha);
        self.arch_opt.step(&mut self.arch.store, &grads)?;
        Ok(())
    }

    /// The network step: the weights' optimiser on the clipped training gradient, α frozen.
    fn weight_step(&mut self, train: (&Tensor, &[usize])) -> Result<(f64, usize)> {
        let e = evaluate(
            &self.network,
            &self.weights,
            Some(&self.arch),
            train,
            Mode::Train,
            Differentiate::Weights,
        )?;
        let mut grads = e.grads.expect("backward");
        clip_grad_norm_of(&mut grads, &self.weights.ids(), self.config.grad_clip);
        self.weight_opt.step(&mut self.weights, &grads)?;
        e.ctx.commit(&mut self.weights);
        Ok((e.loss, e.correct))
    }

    /// The next epoch over `split.train`, validation batches cycling through `split.val` (α
    /// frozen in the warm-up epochs); then the validation loss and accuracy in evaluation mode,
    /// the derived genotype, and the selection updated. The log line is kept in
    /// [`Search::logs`] and returned.
    pub fn search_epoch(
        &mut self,
        data: &Dataset,
        split: &Split,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<EpochLog<N::Genotype>> {
        let epoch = self.epoch;
        let start = Instant::now();
        let offset = self.started.unwrap_or(0.0);
        let bs = self.config.batch_size;
        let train_batches = epoch_batches(&split.train, bs, self.config.seed, epoch as u64);
        let val_batches = epoch_batches(
            &split.val,
            bs,
            self.config.seed ^ seeds::SEARCH_VALIDATION_BATCHES,
            epoch as u64,
        );
        if val_batches.is_empty() || train_batches.is_empty() {
            return Err(NasError::Config(
                "the search needs training and validation samples".into(),
            ));
        }
        let epochs = self.config.epochs_for(split.train.len());
        let lr = lr_at(self.config.schedule, self.config.lr, epoch, epochs);
        self.weight_opt.set_lr(lr);
        let arch_moves = epoch >= self.config.warmup_epochs(epochs);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0, 0);
        for (i, tb) in train_batches.iter().enumerate() {
            let (tx, ty) = batch(data, tb)?;
            let step = if arch_moves {
                let (vx, vy) = batch(data, &val_batches[i % val_batches.len()])?;
                self.step((&tx, &ty), (&vx, &vy))
            } else {
                on_worker(|| self.weight_step((&tx, &ty)))
            };
            let (l, c) = step.map_err(|e| e.in_step("search", epoch, i))?;
            loss_sum += l * ty.len() as f64;
            correct += c;
            seen += ty.len();
            progress(i + 1, train_batches.len());
        }
        let (val_loss, val_accuracy) = self.validate(data, &split.val)?;
        let elapsed = offset + start.elapsed().as_secs_f64();
        self.started = Some(elapsed);
        let current = SelectedGenotype {
            epoch,
            val_accuracy,
            val_loss,
            genotype: self.genotype()?,
        };
        if arch_moves
            && self.best.as_ref().is_none_or(|b| {
                better_validation((val_accuracy, val_loss), (b.val_accuracy, b.val_loss))
            })
        {
            self.best = Some(current.clone());
        }
        self.last = Some(current.clone());
        let log = EpochLog {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            val_loss,
            val_accuracy,
            genotype: current.genotype,
            alpha_normal: self.arch.weights(false),
            alpha_reduce: self.arch.weights(true),
            elapsed_s: elapsed,
            arch_moved: arch_moves,
            lr,
            selected_epoch: self.selected().map(|s| s.epoch),
        };
        self.logs.push(log.clone());
        self.epoch += 1;
        Ok(log)
    }

    /// Mean loss and accuracy on `indices` in evaluation mode.
    pub fn validate(&self, data: &Dataset, indices: &[usize]) -> Result<(f64, f64)> {
        on_worker(|| self.validate_here(data, indices))
    }

    fn validate_here(&self, data: &Dataset, indices: &[usize]) -> Result<(f64, f64)> {
        let (mut loss, mut correct) = (0.0, 0);
        for chunk in indices.chunks(self.config.batch_size.max(1)) {
            let (x, y) = batch(data, chunk)?;
            let e = evaluate(
                &self.network,
                &self.weights,
                Some(&self.arch),
                (&x, &y),
                Mode::Eval,
                Differentiate::Nothing,
            )?;
            loss += e.loss * y.len() as f64;
            correct += e.correct;
        }
        Ok((
            loss / indices.len().max(1) as f64,
            correct as f64 / indices.len().max(1) as f64,
        ))
    }

    /// The genotype derived from the current α (with the configured cap on skips where the
    /// supernet supports it).
    pub fn genotype(&self) -> Result<N::Genotype> {
        self.network.derive(&self.arch, self.config.max_skips)
    }

    /// The genotype the configured selection keeps, with its epoch and validation result;
    /// `None` before the first epoch (`Last`) or the first epoch after the warm-up (`Best`).
    pub fn selected(&self) -> Option<&SelectedGenotype<N::Genotype>> {
        match self.config.selection {
            GenotypeSelection::Best => self.best.as_ref(),
            GenotypeSelection::Last => self.last.as_ref(),
        }
    }
}

impl<N: Supernet> EpochLoop for Search<N> {
    fn epoch(&self) -> usize {
        self.epoch
    }

    fn epochs(&self, split: &Split) -> usize {
        self.config.epochs_for(split.train.len())
    }

    fn batches(&self, split: &Split) -> usize {
        steps_per_epoch(split.train.len(), self.config.batch_size)
    }

    fn finished(&self, split: &Split) -> bool {
        self.epoch >= self.epochs(split)
    }

    fn run_epoch(
        &mut self,
        data: &Dataset,
        split: &Split,
        on_batch: &mut dyn FnMut(usize, usize),
    ) -> Result<serde_json::Value> {
        Ok(log_value(&self.search_epoch(data, split, on_batch)?))
    }

    fn checkpoint(&self) -> Result<serde_json::Value> {
        Ok(log_value(self))
    }
}
