//! Genotypes: derivation rules, JSON, DOT, published genotypes and their parameter counts.

use proptest::prelude::*;
use spd_autograd::ParamStore;
use spd_autograd::ops::simplex::Normalization;
use spd_linalg::random::seeded_rng;
use spd_nas::{ArchParams, Genotype, Network, NetworkConfig};

fn set_logits(arch: &mut ArchParams, reduce: bool, rows: &[[f64; 6]]) {
    let ids = if reduce {
        arch.reduce.clone()
    } else {
        arch.normal.clone()
    };
    for (id, row) in ids.iter().zip(rows) {
        arch.store
            .get_mut(*id)
            .unwrap()
            .value
            .data_mut()
            .copy_from_slice(row);
    }
}

/// Top-2 incoming edges by their best non-`none` weight, `none` never chosen, ties to the
/// earlier edge, and names from the list each edge uses.
#[test]
fn derivation_follows_the_rules() {
    let config = NetworkConfig::radar();
    let mut arch = ArchParams::new(5, 6, Normalization::Softmax, &mut seeded_rng(0)).unwrap();
    // columns: none, WPool/AvgPool, BiMap_0/MaxPool, BiMap_1, BiMap_2, Skip
    set_logits(
        &mut arch,
        false,
        &[
            [9.0, 0.0, 0.0, 0.0, 0.0, 1.0], // s0→n0: none dominates, best real op Skip
            [0.0, 0.0, 2.0, 0.0, 0.0, 0.0], // s1→n0: BiMap_0
            [0.0, 0.0, 0.0, 1.0, 0.0, 0.0], // s0→n1: BiMap_1 (tie with the next row: kept)
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0], // s1→n1: BiMap_2 (tie, later: dropped)
            [0.0, 3.0, 0.0, 0.0, 0.0, 0.0], // n0→n1: WeightedPooling
        ],
    );
    set_logits(
        &mut arch,
        true,
        &[
            [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.2],
            [0.0, 0.0, 2.0, 0.0, 0.0, 0.0], // n0→n1 of the reduction cell uses normal ops
        ],
    );
    let g = Genotype::derive(&arch, &config);
    let e = |v: &[(&str, usize)]| {
        v.iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        g.normal,
        e(&[
            ("BiMap_0_normal", 1),
            ("Skip_normal", 0),
            ("WeightedPooling_normal", 2),
            ("BiMap_1_normal", 0)
        ])
    );
    assert_eq!(
        g.reduce,
        e(&[
            ("AvgPooling2_reduced", 0),
            ("MaxPooling_reduced", 1),
            ("BiMap_0_normal", 2),
            ("Skip_reduced", 0)
        ])
    );
    g.check(&config).unwrap();
}

#[test]
fn json_round_trips() {
    for name in Genotype::PUBLISHED {
        let g = Genotype::published(name).unwrap();
        assert_eq!(Genotype::from_json(&g.to_json()).unwrap(), g);
    }
    assert!(Genotype::from_json("{\"normal\": 3}").is_err());
}

/// The DOT text is structurally valid Graphviz: balanced braces, every edge between declared
/// nodes, `2·steps` op edges and `steps` output edges per cell; rendered by `dot` when present.
#[test]
fn dot_is_valid_graphviz() {
    let g = Genotype::published("radar_sparsemax").unwrap();
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph genotype {") && dot.trim_end().ends_with('}'));
    assert_eq!(
        dot.matches('{').count() - dot.matches("c_{").count(),
        dot.matches('}').count() - dot.matches("c_{").count()
    );
    let declared: Vec<&str> = dot
        .lines()
        .filter(|l| l.contains("[label=") && !l.contains("->"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let edges: Vec<(&str, &str)> = dot
        .lines()
        .filter(|l| l.contains("->"))
        .map(|l| {
            let mut w = l.split_whitespace();
            let a = w.next().unwrap();
            w.next();
            (a, w.next().unwrap().trim_end_matches(';'))
        })
        .collect();
    for (a, b) in &edges {
        assert!(declared.contains(a) && declared.contains(b), "{a} -> {b}");
    }
    assert_eq!(edges.len(), 2 * (4 + 2));
    assert_eq!(
        dot.lines()
            .filter(|l| l.contains("-> ") && l.contains("label="))
            .count(),
        8
    );
    if let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
}

fn trainable(config: &NetworkConfig, name: &str) -> usize {
    let mut store = ParamStore::new();
    Network::derived(
        config,
        &Genotype::published(name).unwrap(),
        &mut store,
        &mut seeded_rng(0),
    )
    .unwrap();
    store.trainable_values()
}

/// Our counts of the published derived networks, and the paper's (`docs/fidelity.md`, Model sizes: RADAR 17,603
/// trainable, HDM05 1,063,665) reconstructed term by term: the official derived nets use
/// `stem_multiplier = 2`, so the preprocessing BiMaps of cell 0 (both) and cell 1 (`pre0`)
/// carry a weight slice for a second input channel that never exists (D18). We build no dead
/// slices. The published genotypes use no `Skip_reduced`, so D2 does not enter.
#[test]
fn published_parameter_counts_against_the_paper() {
    let radar = trainable(&NetworkConfig::radar(), "radar_sparsemax");
    // dead slices: cell0.pre0/pre1 BiMap(·→2, 20→20): 2·400 each; cell1.pre0 BiMap(·→4, 20→10): 4·200
    let radar_dead = 2 * (2 * 20 * 20) + 4 * 20 * 10;
    assert_eq!(NetworkConfig::radar().official_dead_weights(), radar_dead);
    assert_eq!(radar, 15_203);
    assert_eq!(radar + radar_dead, 17_603);
    let hdm05 = trainable(&NetworkConfig::hdm05(), "hdm05_sparsemax");
    let hdm05_dead = 2 * (2 * 93 * 93) + 4 * 93 * 30;
    assert_eq!(NetworkConfig::hdm05().official_dead_weights(), hdm05_dead);
    assert_eq!(hdm05, 1_017_909);
    assert_eq!(hdm05 + hdm05_dead, 1_063_665);
}

#[test]
fn genotypes_that_do_not_fit_are_rejected() {
    let mut g = Genotype::published("radar_sparsemax").unwrap();
    g.normal[3].1 = 3;
    assert!(
        Network::derived(
            &NetworkConfig::radar(),
            &g,
            &mut ParamStore::new(),
            &mut seeded_rng(0)
        )
        .is_err()
    );
    let mut g = Genotype::published("radar_sparsemax").unwrap();
    g.reduce[0].0 = "BiMap_0_normal".into();
    assert!(g.check(&NetworkConfig::radar()).is_err());
}

fn random_arch(logits: &[f64]) -> ArchParams {
    let mut arch = ArchParams::new(5, 6, Normalization::Sparsemax, &mut seeded_rng(0)).unwrap();
    let rows: Vec<[f64; 6]> = logits.chunks(6).map(|c| c.try_into().unwrap()).collect();
    set_logits(&mut arch, false, &rows[..5]);
    set_logits(&mut arch, true, &rows[5..]);
    arch
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The cap keeps the chosen edges, leaves at most `cap` skips per cell, changes nothing
    /// when there are no more skips than that, and replaces a skip only by another op.
    #[test]
    fn capped_derivation_keeps_edges_and_limits_skips(
        logits in prop::collection::vec(prop_oneof![Just(3.0), -2.0f64..2.0], 60),
        cap in 0usize..4,
    ) {
        let config = NetworkConfig::radar();
        let arch = random_arch(&logits);
        let free = Genotype::derive(&arch, &config);
        let capped = Genotype::derive_capped(&arch, &config, Some(cap));
        capped.check(&config).unwrap();
        for reduction in [false, true] {
            let sources = |g: &Genotype| g.cell(reduction).iter().map(|e| e.1).collect::<Vec<_>>();
            prop_assert_eq!(sources(&capped), sources(&free));
            prop_assert!(capped.skips(reduction) <= cap);
            if free.skips(reduction) <= cap {
                prop_assert_eq!(capped.cell(reduction), free.cell(reduction));
            } else {
                prop_assert_eq!(capped.skips(reduction), cap);
                // the skips kept weigh at least as much as the skips replaced
                let w = arch.weights(reduction);
                let skip_weight = |i: usize, source: usize| {
                    let node = i / 2;
                    w[(0..node).map(|k| 2 + k).sum::<usize>() + source][5]
                };
                let (mut kept, mut replaced) = (f64::INFINITY, f64::NEG_INFINITY);
                for (i, (c, f)) in capped.cell(reduction).iter().zip(free.cell(reduction)).enumerate() {
                    prop_assert!(c == f || f.0 == "Skip_normal", "{:?} replaced {:?}", c, f);
                    if f.0 == "Skip_normal" {
                        if c == f {
                            kept = kept.min(skip_weight(i, f.1));
                        } else {
                            replaced = replaced.max(skip_weight(i, f.1));
                        }
                    }
                }
                prop_assert!(kept >= replaced, "kept {} < replaced {}", kept, replaced);
            }
        }
    }
}

/// The collapsed RADAR normal cell of the paper preset (four skips) keeps its two strongest
/// skips under a cap of 2; the two weaker skip edges take their best BiMap.
#[test]
fn cap_of_two_replaces_the_weakest_skips_by_their_best_other_op() {
    let config = NetworkConfig::radar();
    let mut arch = ArchParams::new(5, 6, Normalization::Softmax, &mut seeded_rng(0)).unwrap();
    // columns: none, WPool, BiMap_0, BiMap_1, BiMap_2, Skip
    set_logits(
        &mut arch,
        false,
        &[
            [0.0, 0.0, 0.0, 0.0, 0.0, 4.0],
            [0.0, 0.0, 0.0, 0.0, 1.0, 3.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 5.0],
            [0.0, 0.5, 2.0, 0.0, 0.0, 2.5],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ],
    );
    let g = Genotype::derive_capped(&arch, &config, Some(2));
    let e = |v: &[(&str, usize)]| {
        v.iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect::<Vec<_>>()
    };
    assert_eq!(Genotype::derive(&arch, &config).skips(false), 4);
    assert_eq!(
        g.normal,
        e(&[
            ("Skip_normal", 0),
            ("BiMap_2_normal", 1),
            ("Skip_normal", 0),
            ("BiMap_0_normal", 1)
        ])
    );
}
