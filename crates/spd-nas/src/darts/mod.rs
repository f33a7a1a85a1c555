//! DARTS (Liu et al., ICLR 2019) and FairDARTS (Chu et al., ECCV 2020) on SPD data, the
//! Euclidean baselines of the paper's Table 2 (Sukthanker et al., IJCAI 2021).
//!
//! **Input.** Each `n × n` SPD sample `X` enters as its matrix logarithm `log X`, a
//! one-channel `n × n` image ([`log_matrix_images`]). The full symmetric matrix is kept (not
//! its upper triangle as a vector): a convolution expects 2-D neighbourhoods, and entry
//! `(i, j)` of `log X` has its row and column neighbours where a kernel looks for them. The
//! duplicated off-diagonal entries cost nothing but compute.
//!
//! **Network** ([`DartsNetwork`]). DARTS's CNN: stem = 3×3 convolution + batch norm
//! (`stem_multiplier · C` channels); `cells` cells, those at `⌊cells/3⌋` and `⌊2·cells/3⌋`
//! reduction cells (stride 2, channels doubled); each cell preprocesses its inputs `s0`
//! (FactorizedReduce if the previous cell reduced, else ReLU → 1×1 convolution → BN) and `s1`
//! (ReLU → 1×1 convolution → BN), has `steps` (4) intermediate nodes, each the sum of its
//! incoming edges, and outputs the channel concatenation of its nodes; head = global average
//! pooling + linear. The supernet mixes the eight [`Primitive`]s on each of the 14 edges
//! ([`DartsMixing`]); the derived network (from a [`DartsGenotype`]) has one op per edge.
//!
//! **Architecture parameters.** α is an [`crate::ArchParams`] (one row of 8 logits per edge
//! and cell type, kept apart from the weights); DARTS mixes by softmax, FairDARTS by
//! independent sigmoids ([`spd_autograd::ops::simplex::Normalization::Sigmoid`], not
//! renormalised). FairDARTS adds the zero-one loss [`zero_one_loss`] to the architecture loss.
//!
//! Not implemented (DARTS's evaluation network has them, they are training tricks of the
//! final CIFAR-10 runs, not of the architecture): the auxiliary head, drop path, cutout.

mod config;
mod genotype;
mod network;
mod ops;

pub use config::{DartsConfig, DartsMixing};
pub use genotype::{DartsEdge, DartsGenotype};
pub use network::{DartsCell, DartsEdgeOp, DartsNetwork, edge_row};
pub use ops::{DartsOp, Primitive};

use spd_autograd::ops::simplex::sigmoid_row;
use spd_autograd::{AutogradError, Backward, BackwardContext, Graph, Tensor, Var};
use spd_linalg::{Log, spectral_batch};

use crate::arch::ArchParams;
use crate::error::{NasError, Result};

/// The matrix logarithms of a batch of SPD samples `[B, 1, n, n]`, as one-channel images
/// `[B, 1, n, n]` (spd-linalg's `log`, one eigendecomposition per sample, in parallel).
pub fn log_matrix_images(x: &Tensor) -> Result<Tensor> {
    let [b, c, n, m] = x.shape();
    if c != 1 || n != m {
        return Err(NasError::Config(format!(
            "log-matrix images need a [B, 1, n, n] batch, got {:?}",
            x.shape()
        )));
    }
    let (data, _) = spectral_batch(&Log, x.data(), n).map_err(|source| {
        NasError::Autograd(AutogradError::Linalg {
            op: "log_matrix_images",
            source,
        })
    })?;
    Ok(Tensor::from_vec([b, 1, n, n], data)?)
}

/// FairDARTS's default weight `w₀₁` of the zero-one loss.
pub const ZERO_ONE_WEIGHT: f64 = 10.0;

/// FairDARTS's default threshold on the sigmoid weights when deriving a genotype.
pub const FAIR_THRESHOLD: f64 = 0.85;

struct ZeroOne {
    count: usize,
}

/// FairDARTS's zero-one loss `L₀₁ = −(1/N) Σ (σ(α) − 0.5)²` over all `N` entries of the
/// logit tensors `alphas` (any shapes), as a scalar on the tape. Its gradient,
/// `−(2/N)(σ − 0.5) σ (1 − σ)` per entry, pushes every weight away from 0.5, towards 0 or 1.
pub fn zero_one_loss(g: &mut Graph, alphas: &[Var]) -> Result<Var> {
    let count: usize = alphas.iter().map(|a| g.value(*a).data().len()).sum();
    if count == 0 {
        return Err(NasError::Config("zero-one loss of no logits".into()));
    }
    let total: f64 = alphas
        .iter()
        .flat_map(|a| sigmoid_row(g.value(*a).data()))
        .map(|s| (s - 0.5) * (s - 0.5))
        .sum();
    let value = Tensor::scalar(-total / count as f64);
    Ok(g.push(value, alphas.to_vec(), Box::new(ZeroOne { count })))
}

impl Backward for ZeroOne {
    fn backward(
        &self,
        ctx: &BackwardContext<'_>,
        grad: &Tensor,
    ) -> spd_autograd::Result<Vec<Option<Tensor>>> {
        let upstream = grad.data()[0];
        let scale = -2.0 * upstream / self.count as f64;
        Ok(ctx
            .inputs
            .iter()
            .zip(&ctx.needs)
            .map(|(z, &needs)| {
                needs.then(|| {
                    let data = sigmoid_row(z.data())
                        .into_iter()
                        .map(|s| scale * (s - 0.5) * s * (1.0 - s))
                        .collect();
                    Tensor::from_vec(z.shape(), data).expect("same shape")
                })
            })
            .collect())
    }
}

/// `w₀₁ · L₀₁` over every row of `arch` (normal and reduction cells), read on `g` as
/// parameters, to add to the architecture loss (FairDARTS uses `w₀₁ = 10`,
/// [`ZERO_ONE_WEIGHT`]).
pub fn arch_zero_one_loss(g: &mut Graph, arch: &ArchParams, weight: f64) -> Result<Var> {
    let alphas = arch
        .normal
        .iter()
        .chain(&arch.reduce)
        .map(|id| g.param(&arch.store, *id))
        .collect::<spd_autograd::Result<Vec<_>>>()?;
    let l = zero_one_loss(g, &alphas)?;
    Ok(spd_autograd::ops::arith::scale(g, l, weight))
}
