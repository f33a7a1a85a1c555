//! Genotypes: the discrete architecture derived from α, JSON, Graphviz, and the
//! published ones.

use serde::{Deserialize, Serialize};

use crate::arch::ArchParams;
use crate::error::{NasError, Result};
use crate::network_config::NetworkConfig;
use crate::space::{EdgeKind, Naming, OpKind, SearchSpace, SpaceVersion};

/// Two `(op name, source)` entries per node (source 0 = s0, 1 = s1, 2 + j = node j) for each
/// cell type; every node is concatenated into the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    /// Normal cell.
    pub normal: Vec<(String, usize)>,
    /// Reduction cell.
    pub reduce: Vec<(String, usize)>,
    /// The space the names refer to.
    pub space: SpaceVersion,
    /// How the names `BiMap_1/2_reduced` are read (D1).
    pub naming: Naming,
}

impl Genotype {
    /// The entries of one cell type.
    pub fn cell(&self, reduction: bool) -> &[(String, usize)] {
        if reduction {
            &self.reduce
        } else {
            &self.normal
        }
    }

    /// Number of intermediate nodes.
    pub fn steps(&self) -> usize {
        self.normal.len() / 2
    }

    /// Derivation: for each node, the two incoming edges whose best non-`none`
    /// weight is largest (ties keep the earlier edge), each with its best non-`none` op (first
    /// maximum). Names come from the list the edge uses, so a size-preserving edge of a
    /// reduction cell gets a normal op's name (no D16 ambiguity).
    pub fn derive(arch: &ArchParams, config: &NetworkConfig) -> Genotype {
        Self::derive_capped(arch, config, None)
    }

    /// [`Genotype::derive`], then at most `max_skips` skip connections per cell: while there
    /// are more, the kept skip edge with the lowest weight takes its best op other than `none`
    /// and skip (P-DARTS's rule, Chen et al. 2019). The edges chosen do not change.
    pub fn derive_capped(
        arch: &ArchParams,
        config: &NetworkConfig,
        max_skips: Option<usize>,
    ) -> Genotype {
        let space = config.search_space();
        let pick = |reduction: bool| {
            let w = arch.weights(reduction);
            // (row, column, weight, source) of each kept edge
            let mut kept: Vec<(usize, usize, f64, usize)> = Vec::new();
            let mut row = 0;
            for node in 0..config.spec.steps {
                let mut scored: Vec<(usize, usize, usize, f64)> = (0..2 + node)
                    .map(|source| {
                        let (best, score) = best_column(&w[row + source], |_| true);
                        (row + source, source, best, score)
                    })
                    .collect();
                scored.sort_by(|a, b| b.3.total_cmp(&a.3));
                kept.extend(scored.iter().take(2).map(|&(r, s, c, v)| (r, c, v, s)));
                row += 2 + node;
            }
            let list = |source: usize| space.list(EdgeKind::new(reduction, source));
            let is_skip = |source: usize, column: usize| list(source)[column].kind == OpKind::Skip;
            if let Some(cap) = max_skips {
                loop {
                    let skips: Vec<usize> = (0..kept.len())
                        .filter(|&i| is_skip(kept[i].3, kept[i].1))
                        .collect();
                    if skips.len() <= cap {
                        break;
                    }
                    let weakest = *skips
                        .iter()
                        .min_by(|&&a, &&b| kept[a].2.total_cmp(&kept[b].2))
                        .expect("more skips than the cap");
                    let (r, _, _, source) = kept[weakest];
                    let (column, weight) = best_column(&w[r], |c| !is_skip(source, c));
                    kept[weakest] = (r, column, weight, source);
                }
            }
            kept.iter()
                .map(|&(_, column, _, source)| (list(source)[column].name.to_string(), source))
                .collect()
        };
        Genotype {
            normal: pick(false),
            reduce: pick(true),
            space: config.spec.space,
            naming: config.spec.naming,
        }
    }

    /// The number of skip connections of one cell type.
    pub fn skips(&self, reduction: bool) -> usize {
        let space = SearchSpace::new(self.space, self.naming);
        self.cell(reduction)
            .iter()
            .filter(|(name, source)| {
                space
                    .column(name, EdgeKind::new(reduction, *source))
                    .is_ok_and(|c| {
                        space.list(EdgeKind::new(reduction, *source))[c].kind == OpKind::Skip
                    })
            })
            .count()
    }

    /// Checks the genotype fits a network configuration.
    pub fn check(&self, config: &NetworkConfig) -> Result<()> {
        let space = SearchSpace::new(self.space, self.naming);
        for reduction in [false, true] {
            let cell = self.cell(reduction);
            if cell.len() != 2 * config.spec.steps {
                return Err(NasError::Genotype(format!(
                    "{} entries for {} nodes",
                    cell.len(),
                    config.spec.steps
                )));
            }
            for (i, (name, source)) in cell.iter().enumerate() {
                let node = i / 2;
                if *source >= 2 + node {
                    return Err(NasError::Genotype(format!(
                        "node {node} cannot take input {source}"
                    )));
                }
                space.column(name, EdgeKind::new(reduction, *source))?;
                if name.starts_with("none") {
                    return Err(NasError::Genotype("a derived cell cannot use none".into()));
                }
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

    /// Graphviz DOT of both cells (`dot -Tsvg` renders it).
    pub fn to_dot(&self) -> String {
        cells_to_dot("genotype", self.steps(), |reduction| {
            self.cell(reduction)
                .iter()
                .enumerate()
                .map(|(i, (name, source))| (name.clone(), *source, i / 2))
                .collect()
        })
    }

    /// A published genotype by name: `radar_sparsemax`, `hdm05_sparsemax` (the
    /// official `genotypes.py`; official-code naming of the reduced BiMaps).
    pub fn published(name: &str) -> Option<Genotype> {
        let e = |v: &[(&str, usize)]| v.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        let (normal, reduce) = match name {
            "radar_sparsemax" => (
                e(&[
                    ("Skip_normal", 0),
                    ("Skip_normal", 1),
                    ("BiMap_0_normal", 0),
                    ("BiMap_1_normal", 2),
                ]),
                e(&[
                    ("BiMap_2_reduced", 1),
                    ("BiMap_2_reduced", 0),
                    ("BiMap_1_reduced", 1),
                    ("BiMap_2_reduced", 0),
                ]),
            ),
            "hdm05_sparsemax" => (
                e(&[
                    ("Skip_normal", 0),
                    ("Skip_normal", 1),
                    ("BiMap_2_normal", 0),
                    ("BiMap_2_normal", 2),
                ]),
                e(&[
                    ("BiMap_1_reduced", 0),
                    ("BiMap_1_reduced", 1),
                    ("BiMap_2_reduced", 0),
                    ("BiMap_1_reduced", 1),
                ]),
            ),
            _ => return None,
        };
        Some(Genotype {
            normal,
            reduce,
            space: SpaceVersion::V0,
            naming: Naming::OfficialCode,
        })
    }

    /// Names accepted by [`Genotype::published`].
    pub const PUBLISHED: [&'static str; 2] = ["radar_sparsemax", "hdm05_sparsemax"];
}

/// The first column after `none` (column 0) with the largest weight among those `allowed`,
/// and that weight.
fn best_column(row: &[f64], allowed: impl Fn(usize) -> bool) -> (usize, f64) {
    row.iter()
        .enumerate()
        .skip(1)
        .filter(|(i, _)| allowed(*i))
        .fold((1, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
}

/// Graphviz DOT of a normal and a reduction cell with `steps` intermediate nodes: inputs
/// `c_{k-2}`, `c_{k-1}`, the nodes, the concatenated output, and one labelled arrow per
/// `(op, source, node)` that `edges(reduction)` lists (sources 0 and 1 are the cell's inputs).
pub(crate) fn cells_to_dot(
    graph: &str,
    steps: usize,
    edges: impl Fn(bool) -> Vec<(String, usize, usize)>,
) -> String {
    let mut s = format!("digraph {graph} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for (tag, reduction) in [("normal", false), ("reduce", true)] {
        s.push_str(&format!(
            "  subgraph cluster_{tag} {{\n    label=\"{tag} cell\";\n"
        ));
        let node = |i: usize| match i {
            0 => format!("{tag}_c_k_2"),
            1 => format!("{tag}_c_k_1"),
            j => format!("{tag}_n{}", j - 2),
        };
        s.push_str(&format!(
            "    {} [label=\"c_{{k-2}}\"];\n    {} [label=\"c_{{k-1}}\"];\n",
            node(0),
            node(1)
        ));
        for j in 0..steps {
            s.push_str(&format!(
                "    {} [label=\"{j}\", shape=circle];\n",
                node(2 + j)
            ));
        }
        s.push_str(&format!("    {tag}_out [label=\"c_{{k}}\"];\n"));
        for (name, source, to) in edges(reduction) {
            s.push_str(&format!(
                "    {} -> {} [label=\"{name}\"];\n",
                node(source),
                node(2 + to)
            ));
        }
        for j in 0..steps {
            s.push_str(&format!("    {} -> {tag}_out;\n", node(2 + j)));
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}
