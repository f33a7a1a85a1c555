//! SPD networks made of cells (spec §6): the supernet, whose edges mix every candidate by a
//! weighted Fréchet mean, and the network derived from a genotype. All sizes follow from the
//! configuration (input size, reduced sizes, classes), nothing is hard-coded (fixing D8).

use rand::Rng;
use serde::{Deserialize, Serialize};
use spd_autograd::layers::{BatchNormSpd, BiMapLayer, ForwardCtx, LinearLayer};
use spd_autograd::ops::arith::select_entries;
use spd_autograd::ops::concat::concat_channels;
use spd_autograd::ops::eig::reeig_default;
use spd_autograd::ops::flatten::{Vectorize, log_eig_flatten};
use spd_autograd::ops::frechet::{frechet_mean, weighted_frechet_mean_flagged};
use spd_autograd::ops::simplex::Normalization;
use spd_autograd::{Graph, ParamStore, Var};

use crate::arch::ArchParams;
use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::ops::{Op, OpCache, OpSettings};
use crate::space::{Naming, SearchSpace, SpaceVersion};

/// Everything that fixes the shape of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Input matrix size `n`.
    pub input_dim: usize,
    /// Output size of each reduction cell (cells 0, 2, 4, … reduce).
    pub reduced_dims: Vec<usize>,
    /// Number of classes.
    pub num_classes: usize,
    /// Number of cells (2 in the paper).
    pub layers: usize,
    /// Channels `C` before the first cell (1 in the paper); doubled before every cell.
    pub init_channels: usize,
    /// Intermediate nodes per cell (2 in the paper).
    pub steps: usize,
    /// Stem output channels = `stem_multiplier · C` (1 in the paper's supernet).
    pub stem_multiplier: usize,
    /// Karcher steps and WeightedPooling normalisation.
    pub ops: OpSettings,
    /// Candidate list.
    pub space: SpaceVersion,
    /// Reading of `BiMap_1/2_reduced` (D1).
    pub naming: Naming,
    /// α → mixing weights (sparsemax in the paper).
    pub arch_normalization: Normalization,
    /// Head vectorisation (all `n²` entries in the paper).
    pub vectorize: Vectorize,
}

impl NetworkConfig {
    /// The paper's settings for `n → n_out` inputs and `classes` classes.
    pub fn paper(input_dim: usize, reduced_dim: usize, num_classes: usize) -> Self {
        Self {
            input_dim,
            reduced_dims: vec![reduced_dim],
            num_classes,
            layers: 2,
            init_channels: 1,
            steps: 2,
            stem_multiplier: 1,
            ops: OpSettings {
                karcher_steps: 1,
                pooling_normalization: Normalization::Sparsemax,
            },
            space: SpaceVersion::V0,
            naming: Naming::Paper,
            arch_normalization: Normalization::Sparsemax,
            vectorize: Vectorize::Full,
        }
    }

    /// RADAR: 20×20 → 10×10, 3 classes.
    pub fn radar() -> Self {
        Self::paper(20, 10, 3)
    }

    /// HDM05: 93×93 → 30×30, 117 classes.
    pub fn hdm05() -> Self {
        Self::paper(93, 30, 117)
    }

    /// Checks the configuration is buildable.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(NasError::Config(m));
        if self.layers == 0
            || self.steps == 0
            || self.init_channels == 0
            || self.stem_multiplier == 0
        {
            return bad("layers, steps, init_channels and stem_multiplier must be positive".into());
        }
        if self.num_classes < 2 {
            return bad(format!("{} classes", self.num_classes));
        }
        let reductions = self.layers.div_ceil(2);
        if self.reduced_dims.len() != reductions {
            return bad(format!(
                "{} layers have {reductions} reduction cells but {} reduced sizes were given",
                self.layers,
                self.reduced_dims.len()
            ));
        }
        let mut n = self.input_dim;
        for &m in &self.reduced_dims {
            if m == 0 || m > n {
                return bad(format!("cannot reduce {n} to {m}"));
            }
            n = m;
        }
        if self.ops.karcher_steps == 0 {
            return bad("karcher_steps must be at least 1".into());
        }
        Ok(())
    }

    /// Edges per cell: `Σ_{j < steps} (2 + j)`.
    pub fn edges(&self) -> usize {
        (0..self.steps).map(|j| 2 + j).sum()
    }

    /// The search space.
    pub fn search_space(&self) -> SearchSpace {
        SearchSpace::new(self.space, self.naming)
    }
}

/// `ReEig → BiMap → BN`, the fixed preprocessing of a cell input ("BiMap_2").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preprocess {
    bimap: BiMapLayer,
    bn: BatchNormSpd,
}

impl Preprocess {
    fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        c: (usize, usize),
        n: (usize, usize),
        rng: &mut R,
    ) -> Result<Self> {
        Ok(Self {
            bimap: BiMapLayer::new(store, &format!("{name}.bimap"), c, n, rng)?,
            bn: BatchNormSpd::new(store, &format!("{name}.bn"), n.1)?,
        })
    }

    fn forward(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        let h = reeig_default(g, x)?;
        let h = self.bimap.forward(g, store, h)?;
        Ok(self.bn.forward(g, store, ctx, h)?)
    }
}

/// What an edge computes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum EdgeOp {
    /// Every candidate, mixed by the weighted Fréchet mean with weights from α row `row`.
    Mixed {
        /// Candidates in space order.
        candidates: Vec<Op>,
        /// α row of this edge.
        row: usize,
    },
    /// One chosen op.
    Fixed(Op),
}

/// An edge from state `source` (0 = s0, 1 = s1, 2 + j = node j) into node `node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Edge {
    /// Source state.
    pub source: usize,
    /// Target node.
    pub node: usize,
    /// The op.
    pub op: EdgeOp,
}

/// A cell: two preprocessed inputs, `steps` nodes (each the Fréchet mean of its incoming
/// edges), output the channel concatenation of the nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Whether the cell reduces the matrix size.
    pub reduction: bool,
    pre0: Preprocess,
    pre1: Preprocess,
    /// Edges, node by node.
    pub edges: Vec<Edge>,
    steps: usize,
}

/// Shape of a state: channels and matrix size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateShape {
    /// Channels.
    pub channels: usize,
    /// Matrix size.
    pub dim: usize,
}

/// A network: stem, cells, LogEig head.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    /// Its configuration.
    pub config: NetworkConfig,
    stem: (BiMapLayer, BatchNormSpd),
    /// The cells.
    pub cells: Vec<Cell>,
    head: LinearLayer,
}

/// Mixing weights of one cell type on a tape: the taped rows and their values.
type MixingWeights = (Vec<Var>, Vec<Vec<f64>>);

/// Values recorded by a traced forward: every node of every cell, and the logits.
pub struct Trace {
    /// Node states, cell by cell.
    pub nodes: Vec<Var>,
    /// The logits.
    pub logits: Var,
}

impl Network {
    /// The supernet: every edge mixes all candidates.
    pub fn supernet<R: Rng + ?Sized>(
        config: &NetworkConfig,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        Self::build(config, None, store, rng)
    }

    /// The network of a genotype.
    pub fn derived<R: Rng + ?Sized>(
        config: &NetworkConfig,
        genotype: &Genotype,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        genotype.check(config)?;
        Self::build(config, Some(genotype), store, rng)
    }

    fn build<R: Rng + ?Sized>(
        config: &NetworkConfig,
        genotype: Option<&Genotype>,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        let space = match genotype {
            Some(gt) => SearchSpace::new(gt.space, gt.naming),
            None => config.search_space(),
        };
        let n = config.input_dim;
        let stem_c = config.stem_multiplier * config.init_channels;
        let stem = (
            BiMapLayer::new(store, "stem.bimap", (1, stem_c), (n, n), rng)?,
            BatchNormSpd::new(store, "stem.bn", n)?,
        );
        let (mut s0, mut s1) = (
            StateShape {
                channels: stem_c,
                dim: n,
            },
            StateShape {
                channels: stem_c,
                dim: n,
            },
        );
        let mut c_curr = config.init_channels;
        let mut reduced = config.reduced_dims.iter();
        let mut cells = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let reduction = i % 2 == 0;
            c_curr *= 2;
            let n_in = s1.dim;
            let n_out = if reduction {
                *reduced.next().expect("validated")
            } else {
                n_in
            };
            let name = format!("cell{i}");
            let pre0 = Preprocess::new(
                store,
                &format!("{name}.pre0"),
                (s0.channels, c_curr),
                (s0.dim, n_in),
                rng,
            )?;
            let pre1 = Preprocess::new(
                store,
                &format!("{name}.pre1"),
                (s1.channels, c_curr),
                (s1.dim, n_in),
                rng,
            )?;
            let mut edges = Vec::new();
            for node in 0..config.steps {
                let sources: Vec<(usize, String)> = match genotype {
                    None => (0..2 + node).map(|s| (s, String::new())).collect(),
                    Some(gt) => gt.cell(reduction)[2 * node..2 * node + 2]
                        .iter()
                        .map(|(op, s)| (*s, op.clone()))
                        .collect(),
                };
                for (source, op_name) in sources {
                    let reduced_edge = reduction && source < 2;
                    let dims = if reduced_edge {
                        (n_in, n_out)
                    } else {
                        (n_out, n_out)
                    };
                    let list = space.list(reduced_edge);
                    let row = edges.len();
                    let op = match genotype {
                        None => EdgeOp::Mixed {
                            candidates: list
                                .iter()
                                .map(|p| {
                                    Op::build(
                                        p.kind,
                                        store,
                                        &format!("{name}.edge{row}.{}", p.name),
                                        c_curr,
                                        dims,
                                        rng,
                                    )
                                })
                                .collect::<Result<_>>()?,
                            row,
                        },
                        Some(_) => {
                            let col = space.column(&op_name, reduced_edge)?;
                            EdgeOp::Fixed(Op::build(
                                list[col].kind,
                                store,
                                &format!("{name}.edge{row}.{}", list[col].name),
                                c_curr,
                                dims,
                                rng,
                            )?)
                        }
                    };
                    edges.push(Edge { source, node, op });
                }
            }
            cells.push(Cell {
                reduction,
                pre0,
                pre1,
                edges,
                steps: config.steps,
            });
            (s0, s1) = (
                s1,
                StateShape {
                    channels: config.steps * c_curr,
                    dim: n_out,
                },
            );
        }
        let features = s1.channels * config.vectorize.len(s1.dim);
        let head = LinearLayer::new(store, "classifier", features, config.num_classes, rng)?;
        Ok(Self {
            config: config.clone(),
            stem,
            cells,
            head,
        })
    }

    /// Logits `[B, 1, 1, classes]` for inputs `[B, 1, n, n]`; `arch` is required by a supernet.
    pub fn forward(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        Ok(self.forward_traced(g, store, arch, ctx, x)?.logits)
    }

    /// [`Network::forward`], also returning every node state.
    pub fn forward_traced(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        arch: Option<&ArchParams>,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Trace> {
        let settings = &self.config.ops;
        let mut weights: [Option<MixingWeights>; 2] = [None, None];
        let h = self.stem.0.forward(g, store, x)?;
        let h = self.stem.1.forward(g, store, ctx, h)?;
        let (mut s0, mut s1) = (h, h);
        let mut nodes = Vec::new();
        let mut cache = OpCache::default();
        for cell in &self.cells {
            let a = cell.pre0.forward(g, store, ctx, s0)?;
            let b = cell.pre1.forward(g, store, ctx, s1)?;
            let mut states = vec![a, b];
            for node in 0..cell.steps {
                let mut incoming = Vec::new();
                for e in cell.edges.iter().filter(|e| e.node == node) {
                    let input = states[e.source];
                    let out = match &e.op {
                        EdgeOp::Fixed(op) => {
                            op.forward(g, store, ctx, input, settings, &mut cache)?
                        }
                        EdgeOp::Mixed { candidates, row } => {
                            let slot = &mut weights[cell.reduction as usize];
                            if slot.is_none() {
                                let arch = arch.ok_or_else(|| {
                                    NasError::Config(
                                        "a supernet needs architecture parameters".into(),
                                    )
                                })?;
                                *slot = Some((
                                    arch.weight_vars(g, cell.reduction)?,
                                    arch.weights(cell.reduction),
                                ));
                            }
                            let (vars, values) = slot.as_ref().expect("just set");
                            mixed_forward(
                                g,
                                store,
                                ctx,
                                input,
                                candidates,
                                (vars[*row], &values[*row]),
                                settings,
                                &mut cache,
                            )?
                        }
                    };
                    incoming.push(out);
                }
                let merged = frechet_mean(g, &incoming, settings.karcher_steps)?;
                nodes.push(merged);
                states.push(merged);
            }
            let out = concat_channels(g, &states[2..])?;
            (s0, s1) = (s1, out);
        }
        let features = log_eig_flatten(g, s1, self.config.vectorize)?;
        let logits = self.head.forward(g, store, features)?;
        Ok(Trace { nodes, logits })
    }
}

/// A mixed edge: the candidates with a positive weight (all of them under softmax; the
/// sparsemax support otherwise — a zero-weight candidate contributes nothing to the mean, and
/// the sparsemax Jacobian sends it no gradient, so skipping it is exact), mixed by the weighted
/// Fréchet mean.
#[allow(clippy::too_many_arguments)]
fn mixed_forward(
    g: &mut Graph,
    store: &ParamStore,
    ctx: &mut ForwardCtx,
    x: Var,
    candidates: &[Op],
    (w, w_values): (Var, &[f64]),
    settings: &OpSettings,
    cache: &mut OpCache,
) -> Result<Var> {
    let support: Vec<usize> = (0..candidates.len())
        .filter(|&k| w_values[k] > 0.0)
        .collect();
    let mut outs = Vec::with_capacity(support.len());
    for &k in &support {
        outs.push(candidates[k].forward(g, store, ctx, x, settings, cache)?);
    }
    let w = if support.len() == candidates.len() {
        w
    } else {
        select_entries(g, w, &support)?
    };
    let identity: Vec<bool> = support.iter().map(|&k| candidates[k].is_zero()).collect();
    Ok(weighted_frechet_mean_flagged(
        g,
        &outs,
        w,
        settings.karcher_steps,
        &identity,
    )?)
}
