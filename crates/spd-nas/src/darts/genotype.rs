//! Genotypes of DARTS cells: derivation from α (DARTS's top-2 rule, FairDARTS's threshold
//! rule), JSON, Graphviz DOT, and DARTS's published cell.

use serde::{Deserialize, Serialize};

use super::config::{DartsConfig, DartsMixing};
use super::network::edge_row;
use super::ops::Primitive;
use crate::arch::ArchParams;
use crate::error::{NasError, Result};

/// One edge of a derived cell: `op` from state `source` (0 = s0, 1 = s1, 2 + j = node j) into
/// node `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsEdge {
    /// Target node (from 0).
    pub node: usize,
    /// Source state.
    pub source: usize,
    /// The op.
    pub op: Primitive,
}

/// The edges of a derived normal and reduction cell; every node is concatenated into the cell
/// output. A DARTS genotype has exactly two edges per node; a FairDARTS one any positive
/// number (an edge may even appear with several ops, which are summed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsGenotype {
    /// Intermediate nodes per cell.
    pub steps: usize,
    /// Normal cell.
    pub normal: Vec<DartsEdge>,
    /// Reduction cell.
    pub reduce: Vec<DartsEdge>,
}

/// Index and value of the largest entry of `row` other than `none` (column 0); the first one
/// on ties.
fn best_op(row: &[f64]) -> (usize, f64) {
    row.iter()
        .enumerate()
        .skip(1)
        .fold((1, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
}

impl DartsGenotype {
    /// The edges of one cell type.
    pub fn cell(&self, reduction: bool) -> &[DartsEdge] {
        if reduction {
            &self.reduce
        } else {
            &self.normal
        }
    }

    /// Derivation by the rule of `config.mixing`: [`DartsGenotype::derive_top2`] (DARTS) or
    /// [`DartsGenotype::derive_threshold`] with `config.threshold` (FairDARTS); an error when
    /// `arch` is not α of that configuration ([`DartsConfig::check_arch`]).
    pub fn derive(arch: &ArchParams, config: &DartsConfig) -> Result<Self> {
        config.check_arch(arch)?;
        Ok(match config.mixing {
            DartsMixing::Softmax => Self::derive_top2(arch, config.steps),
            DartsMixing::Sigmoid => Self::derive_threshold(arch, config.steps, config.threshold),
        })
    }

    /// DARTS's rule (`Network.genotype` of DARTS's `model_search.py`): for each node, the two
    /// incoming edges with the largest best non-`none` weight (ties keep the earlier edge),
    /// each with that op (first maximum); the strongest edge is listed first.
    pub fn derive_top2(arch: &ArchParams, steps: usize) -> Self {
        let cell = |reduction: bool| {
            let w = arch.weights(reduction);
            let mut edges = Vec::new();
            for node in 0..steps {
                let mut scored: Vec<(usize, usize, f64)> = (0..2 + node)
                    .map(|source| {
                        let (col, v) = best_op(&w[edge_row(node, source)]);
                        (source, col, v)
                    })
                    .collect();
                // stable: equal weights keep the earlier source first
                scored.sort_by(|a, b| b.2.total_cmp(&a.2));
                edges.extend(scored.iter().take(2).map(|&(source, col, _)| DartsEdge {
                    node,
                    source,
                    op: Primitive::ALL[col],
                }));
            }
            edges
        };
        Self {
            steps,
            normal: cell(false),
            reduce: cell(true),
        }
    }

    /// FairDARTS's rule: every (edge, op) whose weight exceeds `threshold` (0.85 in
    /// FairDARTS), `none` excluded, in edge then column order. A node where nothing exceeds the
    /// threshold would be disconnected, which the cell cannot compute; it keeps its single
    /// strongest (edge, non-`none` op) pair (first maximum in edge then column order), so
    /// every node has at least one input.
    pub fn derive_threshold(arch: &ArchParams, steps: usize, threshold: f64) -> Self {
        let cell = |reduction: bool| {
            let w = arch.weights(reduction);
            let mut edges = Vec::new();
            for node in 0..steps {
                let before = edges.len();
                let mut strongest: Option<(f64, DartsEdge)> = None;
                for source in 0..2 + node {
                    let row = &w[edge_row(node, source)];
                    for (col, &v) in row.iter().enumerate().skip(1) {
                        let edge = DartsEdge {
                            node,
                            source,
                            op: Primitive::ALL[col],
                        };
                        if v > threshold {
                            edges.push(edge);
                        }
                        if strongest.is_none_or(|(best, _)| v > best) {
                            strongest = Some((v, edge));
                        }
                    }
                }
                if edges.len() == before {
                    edges.extend(strongest.map(|(_, e)| e));
                }
            }
            edges
        };
        Self {
            steps,
            normal: cell(false),
            reduce: cell(true),
        }
    }

    /// Checks that the genotype fits cells of `steps` nodes: every node has an input, no
    /// source lies after its node, no edge is `none`.
    pub fn check(&self, steps: usize) -> Result<()> {
        if self.steps != steps {
            return Err(NasError::Genotype(format!(
                "{} nodes per cell, the network has {steps}",
                self.steps
            )));
        }
        for reduction in [false, true] {
            let cell = self.cell(reduction);
            for e in cell {
                if e.node >= steps || e.source >= 2 + e.node {
                    return Err(NasError::Genotype(format!(
                        "node {} cannot take input {} in a cell of {steps} nodes",
                        e.node, e.source
                    )));
                }
                if e.op == Primitive::None {
                    return Err(NasError::Genotype("a derived cell cannot use none".into()));
                }
            }
            if let Some(node) = (0..steps).find(|n| cell.iter().all(|e| e.node != *n)) {
                return Err(NasError::Genotype(format!("node {node} has no input")));
            }
        }
        Ok(())
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a genotype serialises")
    }

    /// From JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| NasError::Genotype(format!("JSON: {e}")))
    }

    /// Graphviz DOT of both cells (`dot -Tsvg` renders it), in the style of
    /// [`crate::Genotype::to_dot`].
    pub fn to_dot(&self) -> String {
        crate::genotype::cells_to_dot("darts_genotype", self.steps, |reduction| {
            self.cell(reduction)
                .iter()
                .map(|e| (e.op.name().to_string(), e.source, e.node))
                .collect()
        })
    }

    /// DARTS's published CIFAR-10 cell (`DARTS_V2`, second order, DARTS's `genotypes.py`).
    pub fn darts_v2() -> Self {
        use Primitive::*;
        let cell = |v: [(Primitive, usize); 8]| {
            v.iter()
                .enumerate()
                .map(|(i, &(op, source))| DartsEdge {
                    node: i / 2,
                    source,
                    op,
                })
                .collect()
        };
        Self {
            steps: 4,
            normal: cell([
                (SepConv3x3, 0),
                (SepConv3x3, 1),
                (SepConv3x3, 0),
                (SepConv3x3, 1),
                (SepConv3x3, 1),
                (SkipConnect, 0),
                (SkipConnect, 0),
                (DilConv3x3, 2),
            ]),
            reduce: cell([
                (MaxPool3x3, 0),
                (MaxPool3x3, 1),
                (SkipConnect, 2),
                (MaxPool3x3, 1),
                (MaxPool3x3, 0),
                (SkipConnect, 2),
                (SkipConnect, 2),
                (MaxPool3x3, 1),
            ]),
        }
    }
}
