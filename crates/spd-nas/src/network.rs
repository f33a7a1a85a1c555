//! SPD networks made of cells: the supernet, whose edges mix every candidate by a
//! weighted Fréchet mean, and the network derived from a genotype. All sizes follow from the
//! configuration (input size, reduced sizes, classes), nothing is hard-coded (fixing D8).

use rand::Rng;
use serde::{Deserialize, Serialize};
use spd_autograd::layers::{BatchNormSpd, BiMapLayer, ForwardCtx, LinearLayer};
use spd_autograd::ops::arith::select_entries;
use spd_autograd::ops::concat::concat_channels;
use spd_autograd::ops::eig::reeig_default;
use spd_autograd::ops::flatten::log_eig_flatten;
use spd_autograd::ops::frechet::{frechet_mean, weighted_frechet_mean_flagged};
use spd_autograd::{Graph, ParamStore, Var};

use crate::arch::ArchParams;
use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::network_config::NetworkConfig;
use crate::ops::{Op, OpCache, Pass};
use crate::space::{EdgeKind, SearchSpace};

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

    fn forward(&self, pass: &mut Pass, x: Var) -> Result<Var> {
        let g = &mut *pass.g;
        let h = reeig_default(g, x)?;
        let h = self.bimap.forward(g, pass.store, h)?;
        Ok(self
            .bn
            .forward_with_steps(g, pass.store, pass.ctx, h, pass.settings.karcher_steps)?)
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
        let stem_c = config.spec.stem_multiplier * config.spec.init_channels;
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
        let mut c_curr = config.spec.init_channels;
        let mut reduced = config.spec.reduced_dims.iter();
        let mut cells = Vec::with_capacity(config.spec.layers);
        for i in 0..config.spec.layers {
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
            for node in 0..config.spec.steps {
                let sources: Vec<(usize, String)> = match genotype {
                    None => (0..2 + node).map(|s| (s, String::new())).collect(),
                    Some(gt) => gt.cell(reduction)[2 * node..2 * node + 2]
                        .iter()
                        .map(|(op, s)| (*s, op.clone()))
                        .collect(),
                };
                for (source, op_name) in sources {
                    let edge = EdgeKind::new(reduction, source);
                    let dims = if edge.is_reducing() {
                        (n_in, n_out)
                    } else {
                        (n_out, n_out)
                    };
                    let list = space.list(edge);
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
                            let col = space.column(&op_name, edge)?;
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
                steps: config.spec.steps,
            });
            (s0, s1) = (
                s1,
                StateShape {
                    channels: config.spec.steps * c_curr,
                    dim: n_out,
                },
            );
        }
        let features = s1.channels * config.spec.vectorize.len(s1.dim);
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
        let mut weights: [Option<MixingWeights>; 2] = [None, None];
        let mut pass = Pass {
            g,
            store,
            ctx,
            settings: &self.config.spec.ops,
            cache: OpCache::default(),
        };
        let h = self.stem.0.forward(pass.g, store, x)?;
        let h = self.stem.1.forward_with_steps(
            pass.g,
            store,
            pass.ctx,
            h,
            pass.settings.karcher_steps,
        )?;
        let (mut s0, mut s1) = (h, h);
        let mut nodes = Vec::new();
        for cell in &self.cells {
            let a = cell.pre0.forward(&mut pass, s0)?;
            let b = cell.pre1.forward(&mut pass, s1)?;
            let mut states = vec![a, b];
            for node in 0..cell.steps {
                let mut incoming = Vec::new();
                for e in cell.edges.iter().filter(|e| e.node == node) {
                    let input = states[e.source];
                    let out = match &e.op {
                        EdgeOp::Fixed(op) => op.forward(&mut pass, input)?,
                        EdgeOp::Mixed { candidates, row } => {
                            let slot = &mut weights[cell.reduction as usize];
                            if slot.is_none() {
                                let arch = arch.ok_or_else(|| {
                                    NasError::Config(
                                        "a supernet needs architecture parameters".into(),
                                    )
                                })?;
                                *slot = Some((
                                    arch.weight_vars(pass.g, cell.reduction)?,
                                    arch.weights(cell.reduction),
                                ));
                            }
                            let (vars, values) = slot.as_ref().expect("just set");
                            mixed_forward(
                                &mut pass,
                                input,
                                candidates,
                                (vars[*row], &values[*row]),
                            )?
                        }
                    };
                    incoming.push(out);
                }
                let merged = frechet_mean(pass.g, &incoming, pass.settings.karcher_steps)?;
                nodes.push(merged);
                states.push(merged);
            }
            let out = concat_channels(pass.g, &states[2..])?;
            (s0, s1) = (s1, out);
        }
        let g = pass.g;
        let features = log_eig_flatten(g, s1, self.config.spec.vectorize)?;
        let logits = self.head.forward(g, store, features)?;
        Ok(Trace { nodes, logits })
    }
}

/// A mixed edge: the candidates with a positive weight (all of them under softmax; the
/// sparsemax support otherwise — a zero-weight candidate contributes nothing to the mean, and
/// the sparsemax Jacobian sends it no gradient, so skipping it is exact), mixed by the weighted
/// Fréchet mean.
fn mixed_forward(
    pass: &mut Pass,
    x: Var,
    candidates: &[Op],
    (w, w_values): (Var, &[f64]),
) -> Result<Var> {
    let support: Vec<usize> = (0..candidates.len())
        .filter(|&k| w_values[k] > 0.0)
        .collect();
    let mut outs = Vec::with_capacity(support.len());
    for &k in &support {
        outs.push(candidates[k].forward(pass, x)?);
    }
    let w = if support.len() == candidates.len() {
        w
    } else {
        select_entries(pass.g, w, &support)?
    };
    let identity: Vec<bool> = support.iter().map(|&k| candidates[k].is_zero()).collect();
    Ok(weighted_frechet_mean_flagged(
        pass.g,
        &outs,
        w,
        pass.settings.karcher_steps,
        &identity,
    )?)
}
