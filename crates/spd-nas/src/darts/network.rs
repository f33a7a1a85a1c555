//! The DARTS supernet and the network derived from a [`DartsGenotype`], on log-matrix images.

use rand::Rng;
use serde::{Deserialize, Serialize};
use spd_autograd::euclid::{
    BatchNorm2d, Conv2dLayer, Conv2dSpec, FactorizedReduce, Layer2d, OpSpec, ReLUConvBN,
};
use spd_autograd::layers::{ForwardCtx, LinearLayer};
use spd_autograd::ops::arith::{add, weighted_sum};
use spd_autograd::ops::concat::concat_channels;
use spd_autograd::ops::eig::log_eig;
use spd_autograd::ops::flatten::{Vectorize, flatten};
use spd_autograd::ops::image_pool::global_avg_pool2d;
use spd_autograd::{Graph, ParamStore, Var};

use super::config::DartsConfig;
use super::genotype::DartsGenotype;
use super::ops::{DartsOp, Primitive};
use crate::arch::ArchParams;
use crate::error::{NasError, Result};
use crate::train::Classifier;

/// The α row of the edge from `source` into `node`: edges are numbered node by node, sources
/// in order (node 0: rows 0–1, node 1: 2–4, node 2: 5–8, node 3: 9–13).
pub fn edge_row(node: usize, source: usize) -> usize {
    2 * node + node * node.saturating_sub(1) / 2 + source
}

/// The preprocessing of `s0`: FactorizedReduce after a reduction cell, else ReLU → 1×1 conv → BN.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Preprocess {
    Reduce(FactorizedReduce),
    Conv(ReLUConvBN),
}

impl Preprocess {
    fn forward(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        Ok(match self {
            Preprocess::Reduce(op) => op.forward(g, store, ctx, x)?,
            Preprocess::Conv(op) => op.forward(g, store, ctx, x)?,
        })
    }
}

/// What an edge computes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DartsEdgeOp {
    /// Every candidate ([`Primitive::ALL`] order), summed with the weights of α row `row`.
    Mixed {
        /// The candidates.
        candidates: Vec<DartsOp>,
        /// α row of this edge.
        row: usize,
    },
    /// One op.
    Fixed(DartsOp),
}

/// A cell: two preprocessed inputs, nodes summing their incoming edges, output the channel
/// concatenation of the nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DartsCell {
    /// Whether the cell halves the image size and doubles the channels.
    pub reduction: bool,
    pre0: Preprocess,
    pre1: ReLUConvBN,
    /// `(node, source, op)` of every edge, node by node.
    pub edges: Vec<(usize, usize, DartsEdgeOp)>,
    steps: usize,
}

/// A DARTS network on `[B, 1, n, n]` log-matrix images: stem, cells, global average pooling,
/// linear classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DartsNetwork {
    /// Its layout.
    pub config: DartsConfig,
    /// The genotype of a derived network (`None` for the supernet).
    pub genotype: Option<DartsGenotype>,
    stem: (Conv2dLayer, BatchNorm2d),
    /// The cells.
    pub cells: Vec<DartsCell>,
    head: LinearLayer,
}

impl DartsNetwork {
    /// The supernet: every edge mixes all eight candidates; batch norms inside the cells
    /// without affine parameters (DARTS's `model_search.py`).
    pub fn supernet<R: Rng + ?Sized>(
        config: &DartsConfig,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        Self::build(config, None, store, rng)
    }

    /// The network of `genotype`: one op per genotype edge, affine batch norms, pooling
    /// without a batch norm (DARTS's `model.py`, without its auxiliary head and drop path).
    pub fn derived<R: Rng + ?Sized>(
        config: &DartsConfig,
        genotype: &DartsGenotype,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        genotype.check(config.steps)?;
        Self::build(config, Some(genotype), store, rng)
    }

    /// Fresh α for a supernet of `config`: 1e-3·N(0, 1) logits, one row of 8 per edge and cell
    /// type, mapped to weights by `config.mixing`.
    pub fn arch_params<R: Rng + ?Sized>(config: &DartsConfig, rng: &mut R) -> Result<ArchParams> {
        ArchParams::new(
            config.edges(),
            Primitive::ALL.len(),
            config.mixing.normalization(),
            rng,
        )
    }

    fn build<R: Rng + ?Sized>(
        config: &DartsConfig,
        genotype: Option<&DartsGenotype>,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        config.check()?;
        let supernet = genotype.is_none();
        let affine = !supernet;
        let c = config.channels;
        let stem_c = config.stem_multiplier * c;
        let stem = (
            Conv2dLayer::new(
                store,
                "stem.conv",
                Conv2dSpec::new(1, stem_c, 3).padding(1),
                rng,
            )?,
            BatchNorm2d::new(store, "stem.bn", stem_c, true)?,
        );
        let (mut c_pp, mut c_p, mut c_curr) = (stem_c, stem_c, c);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(config.cells);
        for i in 0..config.cells {
            let reduction = config.is_reduction(i);
            if reduction {
                c_curr *= 2;
            }
            let name = format!("cell{i}");
            let pw = |c_in| OpSpec {
                c_in,
                c_out: c_curr,
                kernel: 1,
                stride: 1,
                padding: 0,
                affine,
            };
            let pre0 = if reduction_prev {
                Preprocess::Reduce(FactorizedReduce::new(
                    store,
                    &format!("{name}.pre0"),
                    (c_pp, c_curr),
                    affine,
                    rng,
                )?)
            } else {
                Preprocess::Conv(ReLUConvBN::new(
                    store,
                    &format!("{name}.pre0"),
                    pw(c_pp),
                    rng,
                )?)
            };
            let pre1 = ReLUConvBN::new(store, &format!("{name}.pre1"), pw(c_p), rng)?;
            let mut edges = Vec::new();
            for node in 0..config.steps {
                match genotype {
                    None => {
                        for source in 0..2 + node {
                            let stride = if reduction && source < 2 { 2 } else { 1 };
                            let row = edge_row(node, source);
                            let candidates = Primitive::ALL
                                .iter()
                                .map(|p| {
                                    DartsOp::build(
                                        *p,
                                        store,
                                        &format!("{name}.edge{row}.{}", p.name()),
                                        (c_curr, stride),
                                        true,
                                        rng,
                                    )
                                })
                                .collect::<Result<_>>()?;
                            edges.push((node, source, DartsEdgeOp::Mixed { candidates, row }));
                        }
                    }
                    Some(gt) => {
                        for (k, e) in gt
                            .cell(reduction)
                            .iter()
                            .enumerate()
                            .filter(|(_, e)| e.node == node)
                        {
                            let stride = if reduction && e.source < 2 { 2 } else { 1 };
                            let op = DartsOp::build(
                                e.op,
                                store,
                                &format!("{name}.edge{k}.{}", e.op.name()),
                                (c_curr, stride),
                                false,
                                rng,
                            )?;
                            edges.push((node, e.source, DartsEdgeOp::Fixed(op)));
                        }
                    }
                }
            }
            cells.push(DartsCell {
                reduction,
                pre0,
                pre1,
                edges,
                steps: config.steps,
            });
            reduction_prev = reduction;
            (c_pp, c_p) = (c_p, config.steps * c_curr);
        }
        let head = LinearLayer::new(store, "classifier", c_p, config.classes, rng)?;
        Ok(Self {
            config: config.clone(),
            genotype: genotype.cloned(),
            stem,
            cells,
            head,
        })
    }

    /// Logits `[B, 1, 1, classes]` of log-matrix images `[B, 1, n, n]`; `arch` is required by
    /// a supernet and ignored by a derived network.
    pub fn forward(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        images: Var,
    ) -> Result<Var> {
        let shape = g.value(images).shape();
        let n = self.config.input_size;
        if shape[1] != 1 || shape[2] != n || shape[3] != n {
            return Err(NasError::Config(format!(
                "the DARTS network takes [B, 1, {n}, {n}] images, got {shape:?}"
            )));
        }
        // taped mixing weights of each cell type, fetched once per forward
        let mut weights: [Option<Vec<Var>>; 2] = [None, None];
        let h = self.stem.0.forward(g, store, ctx, images)?;
        let h = self.stem.1.forward(g, store, ctx, h)?;
        let (mut s0, mut s1) = (h, h);
        for cell in &self.cells {
            let a = cell.pre0.forward(g, store, ctx, s0)?;
            let b = cell.pre1.forward(g, store, ctx, s1)?;
            let mut states = vec![a, b];
            for node in 0..cell.steps {
                let mut sum: Option<Var> = None;
                for (_, source, op) in cell.edges.iter().filter(|e| e.0 == node) {
                    let x = states[*source];
                    let out = match op {
                        DartsEdgeOp::Fixed(op) => op.forward(g, store, ctx, x)?,
                        DartsEdgeOp::Mixed { candidates, row } => {
                            let slot = &mut weights[cell.reduction as usize];
                            if slot.is_none() {
                                let arch = arch.ok_or_else(|| {
                                    NasError::Config(
                                        "a DARTS supernet needs architecture parameters".into(),
                                    )
                                })?;
                                self.config.check_arch(arch)?;
                                *slot = Some(arch.weight_vars(g, cell.reduction)?);
                            }
                            let w = slot.as_ref().expect("just set")[*row];
                            let outs = candidates
                                .iter()
                                .map(|op| op.forward(g, store, ctx, x))
                                .collect::<Result<Vec<_>>>()?;
                            weighted_sum(g, &outs, w)?
                        }
                    };
                    sum = Some(match sum {
                        None => out,
                        Some(s) => add(g, s, out)?,
                    });
                }
                states.push(sum.ok_or_else(|| {
                    NasError::Genotype(format!("node {node} of a cell has no input"))
                })?);
            }
            let out = concat_channels(g, &states[2..])?;
            (s0, s1) = (s1, out);
        }
        let pooled = global_avg_pool2d(g, s1);
        let features = flatten(g, pooled, Vectorize::Full)?;
        Ok(self.head.forward(g, store, features)?)
    }

    /// [`DartsNetwork::forward`] on SPD samples `[B, 1, n, n]`: their matrix logarithms (on
    /// the tape, so a gradient reaches the samples if they need one) are the images.
    pub fn forward_spd(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        let images = log_eig(g, x)?;
        self.forward(g, store, arch, ctx, images)
    }
}

/// A derived DARTS network as a classifier of SPD samples (the matrix logarithm is taken
/// inside), so `train::Training` trains it like any other.
impl Classifier for DartsNetwork {
    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        if self.genotype.is_none() {
            return Err(NasError::Config(
                "a DARTS supernet needs architecture parameters; train a derived network".into(),
            ));
        }
        self.forward_spd(g, weights, None, ctx, x)
    }
}
