//! The search spaces of SPDNetNAS: primitive names in the order that defines the
//! columns of α and the indices of genotypes.

use serde::{Deserialize, Serialize};

use crate::error::{NasError, Result};

/// Which candidate list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SpaceVersion {
    /// `PRIMITIVES_SPDNet_v0`, used for every published result.
    #[default]
    V0,
    /// `PRIMITIVES_SPDNet_v1` (the official code's legacy list), adapted to channel-preserving edges; see
    /// `docs/architecture.md`.
    V1,
}

/// How `BiMap_1_reduced` / `BiMap_2_reduced` are read (D1 in `docs/fidelity.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Naming {
    /// Paper Table 1 (and the normal ops): `BiMap_1` = BiMap → BN → ReEig, `BiMap_2` = ReEig →
    /// BiMap → BN.
    #[default]
    Paper,
    /// The official code: the two reduced variants swapped. The published genotypes were
    /// produced with this meaning.
    OfficialCode,
}

/// Where an edge sits, which decides its candidate list and the names it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Any edge of a normal cell: normal ops at the cell's size.
    Normal,
    /// An edge of a reduction cell from one of its two inputs: reduced ops, `n_in → n_out`.
    ReductionInput,
    /// An edge of a reduction cell between intermediate nodes: normal ops at `n_out`, weighted by
    /// an `α_reduce` row and printed with the reduced name of the same column (D16 in `docs/fidelity.md`).
    ReductionInner,
}

impl EdgeKind {
    /// The edge from input `source` (0 and 1 are the cell's inputs) of a normal or reduction cell.
    pub fn new(reduction: bool, source: usize) -> Self {
        match (reduction, source < 2) {
            (false, _) => EdgeKind::Normal,
            (true, true) => EdgeKind::ReductionInput,
            (true, false) => EdgeKind::ReductionInner,
        }
    }

    /// Whether the edge changes the size (`n_in → n_out`) and so uses the reduced list.
    pub fn is_reducing(self) -> bool {
        self == EdgeKind::ReductionInput
    }
}

/// A candidate operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    /// Identity matrices (zero in the log domain).
    Zero,
    /// The input unchanged.
    Skip,
    /// Channel-mixing weighted Fréchet mean with learnt weights, then BN.
    WeightedPooling,
    /// BiMap → BN.
    BiMapBn,
    /// BiMap → BN → ReEig.
    BiMapBnReEig,
    /// ReEig → BiMap → BN.
    ReEigBiMapBn,
    /// LogEig → average pool → ExpEig → BN.
    AvgPool,
    /// LogEig → max pool → ExpEig → BN.
    MaxPool,
    /// Block-diagonal of two trained BiMaps (fixing D2).
    SkipReduced,
    /// v1: unweighted Fréchet mean of channel pairs `(c, c+1)`, then BN.
    ChannelPool,
    /// v1: weighted Fréchet mean of channel pairs `(c, c+1)` (learnt 2-weights), BN, ReEig.
    DiMap1,
    /// v1: the same over dilated pairs `(c, c+2)`.
    DiMap2,
    /// v1: block-diagonal of channel pairs `(c, c+1)` mapped back to `n` by a trained BiMap.
    SkipPairs,
}

/// One candidate: its published name and what it computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Primitive {
    /// The name used in genotypes.
    pub name: &'static str,
    /// The operation.
    pub kind: OpKind,
}

const fn p(name: &'static str, kind: OpKind) -> Primitive {
    Primitive { name, kind }
}

/// The normal and reduced candidate lists of a space under a naming convention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSpace {
    /// Version.
    pub version: SpaceVersion,
    /// Naming convention.
    pub naming: Naming,
    /// Candidates of size-preserving edges.
    pub normal: Vec<Primitive>,
    /// Candidates of size-reducing edges.
    pub reduced: Vec<Primitive>,
}

impl SearchSpace {
    /// The space `version` read with `naming`.
    pub fn new(version: SpaceVersion, naming: Naming) -> Self {
        use OpKind::*;
        let (bimap1_reduced, bimap2_reduced) = match naming {
            Naming::Paper => (BiMapBnReEig, ReEigBiMapBn),
            Naming::OfficialCode => (ReEigBiMapBn, BiMapBnReEig),
        };
        let (normal, reduced) = match version {
            SpaceVersion::V0 => (
                vec![
                    p("none_normal", Zero),
                    p("WeightedPooling_normal", WeightedPooling),
                    p("BiMap_0_normal", BiMapBn),
                    p("BiMap_1_normal", BiMapBnReEig),
                    p("BiMap_2_normal", ReEigBiMapBn),
                    p("Skip_normal", Skip),
                ],
                vec![
                    p("none_reduced", Zero),
                    p("AvgPooling2_reduced", AvgPool),
                    p("MaxPooling_reduced", MaxPool),
                    p("BiMap_1_reduced", bimap1_reduced),
                    p("BiMap_2_reduced", bimap2_reduced),
                    p("Skip_reduced", SkipReduced),
                ],
            ),
            SpaceVersion::V1 => (
                vec![
                    p("none_normal", Zero),
                    p("AvgPooling_1_normal", ChannelPool),
                    p("DiMap_1_normal", DiMap1),
                    p("DiMap_2_normal", DiMap2),
                    p("BiMap_1_normal", BiMapBnReEig),
                    p("BiMap_2_normal", ReEigBiMapBn),
                    p("Skip_1_normal", SkipPairs),
                ],
                vec![
                    p("none_reduced", Zero),
                    p("AvgPooling_2_reduced", AvgPool),
                    p("MaxPooling_reduced", MaxPool),
                    p("BiMap_0_reduced", BiMapBn),
                    p("BiMap_1_reduced", bimap1_reduced),
                    p("BiMap_2_reduced", bimap2_reduced),
                    p("Skip_2_reduced", SkipReduced),
                ],
            ),
        };
        Self {
            version,
            naming,
            normal,
            reduced,
        }
    }

    /// Number of candidates per edge (the width of α; both lists have the same length).
    pub fn width(&self) -> usize {
        self.normal.len()
    }

    /// The candidate list of an edge.
    pub fn list(&self, edge: EdgeKind) -> &[Primitive] {
        if edge.is_reducing() {
            &self.reduced
        } else {
            &self.normal
        }
    }

    /// The column of `name` in the list an edge uses. On an inner edge of a reduction cell a
    /// reduced name is mapped to the normal op of the same column, as the official derived-net
    /// builder does (D16 in `docs/fidelity.md`); a normal cell accepts normal names only.
    pub fn column(&self, name: &str, edge: EdgeKind) -> Result<usize> {
        let position = |list: &[Primitive]| list.iter().position(|p| p.name == name);
        let found = match edge {
            EdgeKind::ReductionInner => position(&self.normal).or_else(|| position(&self.reduced)),
            _ => position(self.list(edge)),
        };
        found.ok_or_else(|| {
            NasError::Genotype(format!(
                "{name} is not a {} op of the {:?} space",
                match edge {
                    EdgeKind::Normal => "normal-cell",
                    EdgeKind::ReductionInput => "reduced",
                    EdgeKind::ReductionInner => "reduction-cell inner",
                },
                self.version
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_order_and_naming_switch() {
        let paper = SearchSpace::new(SpaceVersion::V0, Naming::Paper);
        let names: Vec<_> = paper.normal.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "none_normal",
                "WeightedPooling_normal",
                "BiMap_0_normal",
                "BiMap_1_normal",
                "BiMap_2_normal",
                "Skip_normal"
            ]
        );
        assert_eq!(paper.reduced[3].kind, OpKind::BiMapBnReEig);
        let code = SearchSpace::new(SpaceVersion::V0, Naming::OfficialCode);
        assert_eq!(code.reduced[3].kind, OpKind::ReEigBiMapBn);
        assert_eq!(
            code.normal[3].kind,
            OpKind::BiMapBnReEig,
            "normal ops agree in both readings"
        );
        assert_eq!(
            paper
                .column("AvgPooling2_reduced", EdgeKind::ReductionInner)
                .unwrap(),
            1,
            "D16 remap"
        );
        assert!(paper.column("nothing", EdgeKind::ReductionInput).is_err());
        assert_eq!(SearchSpace::new(SpaceVersion::V1, Naming::Paper).width(), 7);
    }

    #[test]
    fn reduced_names_are_remapped_on_reduction_inner_edges_only() {
        let space = SearchSpace::new(SpaceVersion::V0, Naming::Paper);
        let inner = space
            .column("MaxPooling_reduced", EdgeKind::ReductionInner)
            .unwrap();
        assert_eq!(space.reduced[inner].name, "MaxPooling_reduced");
        assert!(
            space
                .column("MaxPooling_reduced", EdgeKind::Normal)
                .is_err()
        );
        assert!(
            space
                .column("MaxPooling_reduced", EdgeKind::ReductionInput)
                .is_ok()
        );
        assert!(
            space
                .column("Skip_normal", EdgeKind::ReductionInput)
                .is_err()
        );
        assert_eq!(
            space
                .column("Skip_normal", EdgeKind::ReductionInner)
                .unwrap(),
            space.column("Skip_normal", EdgeKind::Normal).unwrap()
        );
    }
}
