//! The DARTS/FairDARTS baseline on log-matrix images: shapes through supernets and derived
//! networks, parameter counts, the α gradient of the logits and of the zero-one loss against
//! finite differences, the derivation rules, genotype files, log-matrix images, and training
//! a derived network through `train`.

mod common;

use common::{Model, Tally, Target, check_gradients};
use spd_autograd::gradcheck::{Input, InputKind, check};
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::simplex::Normalization;
use spd_autograd::{AutogradError, Graph, ParamStore, Tensor};
use spd_linalg::random::seeded_rng;
use spd_nas::ArchParams;
use spd_nas::darts::{
    DartsConfig, DartsEdge, DartsGenotype, DartsMixing, DartsNetwork, Primitive,
    arch_zero_one_loss, edge_row, log_matrix_images, zero_one_loss,
};
use spd_nas::train::{Classifier, TrainConfig, TrainState, train_step};

/// A seeded SPD batch `[b, 1, n, n]`.
fn spd_batch(b: usize, n: usize, seed: u64) -> Tensor {
    InputKind::Spd.sample([b, 1, n, n], seed).value
}

/// Sets every α logit of `arch` to `N(0, scale²)` (seeded).
fn randomize(arch: &mut ArchParams, scale: f64, seed: u64) {
    let ids: Vec<_> = arch.normal.iter().chain(&arch.reduce).copied().collect();
    for (k, id) in ids.into_iter().enumerate() {
        let p = arch.store.get_mut(id).unwrap();
        let shape = p.value.shape();
        p.value = InputKind::General
            .sample(shape, seed + k as u64)
            .value
            .scaled(scale);
    }
}

/// Sets α row `row` of one cell type to `logits`.
fn set_row(arch: &mut ArchParams, reduce: bool, row: usize, logits: [f64; 8]) {
    let id = if reduce {
        arch.reduce[row]
    } else {
        arch.normal[row]
    };
    arch.store.get_mut(id).unwrap().value =
        Tensor::from_vec([1, 1, 1, 8], logits.to_vec()).unwrap();
}

fn edge(node: usize, source: usize, op: Primitive) -> DartsEdge {
    DartsEdge { node, source, op }
}

/// Supernets (DARTS and FairDARTS mixing, training and evaluation mode) and the DARTS_V2
/// network of the small layout map `[2, 1, n, n]` SPD samples to finite `[2, 1, 1, 3]` logits
/// on 6×6 (reductions 6 → 3 → 2, odd sizes included) and 20×20 (20 → 10 → 5) inputs.
#[test]
fn supernet_and_derived_logits_have_batch_by_classes_shape_on_6x6_and_20x20() {
    for n in [6, 20] {
        let x = spd_batch(2, n, n as u64);
        for mixing in [DartsMixing::Softmax, DartsMixing::Sigmoid] {
            let config = DartsConfig {
                mixing,
                ..DartsConfig::small(n, 3)
            };
            let mut rng = seeded_rng(1);
            let mut store = ParamStore::new();
            let net = DartsNetwork::supernet(&config, &mut store, &mut rng).unwrap();
            let arch = DartsNetwork::arch_params(&config, &mut rng).unwrap();
            assert_eq!(arch.normal.len(), 14);
            assert_eq!(
                arch.store.get(arch.normal[0]).unwrap().value.shape(),
                [1, 1, 1, 8]
            );
            let reductions: Vec<bool> = net.cells.iter().map(|c| c.reduction).collect();
            assert_eq!(reductions, [false, true, true]);
            for mut ctx in [ForwardCtx::train(), ForwardCtx::eval()] {
                let mut g = Graph::new();
                let xv = g.constant(x.clone());
                let y = net
                    .forward_spd(&mut g, &store, Some(&arch), &mut ctx, xv)
                    .unwrap();
                assert_eq!(g.value(y).shape(), [2, 1, 1, 3], "{n}×{n} {mixing:?}");
                assert!(g.value(y).is_finite());
            }
            let mut g = Graph::new();
            let xv = g.constant(x.clone());
            assert!(
                net.forward_spd(&mut g, &store, None, &mut ForwardCtx::train(), xv)
                    .is_err(),
                "a supernet needs α"
            );
        }
        let config = DartsConfig::small(n, 3);
        let mut store = ParamStore::new();
        let net = DartsNetwork::derived(
            &config,
            &DartsGenotype::darts_v2(),
            &mut store,
            &mut seeded_rng(2),
        )
        .unwrap();
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let y = net
            .logits(&mut g, &store, &mut ForwardCtx::train(), xv)
            .unwrap();
        assert_eq!(g.value(y).shape(), [2, 1, 1, 3]);
        assert!(g.value(y).is_finite());
        let mut g = Graph::new();
        let wrong = g.constant(spd_batch(2, n + 1, 0));
        assert!(
            net.logits(&mut g, &store, &mut ForwardCtx::train(), wrong)
                .is_err(),
            "input size checked"
        );
    }
}

/// Trainable parameter counts (the count does not depend on the input size). Paper layout
/// (`C = 32`, 20 cells) with DARTS_V2: 2,660,707, near the paper's 2.64 MB. With `C = 36` it
/// is 3,343,359 = DARTS's count of its CIFAR-10 network, 3,349,342, less two stem input
/// channels (`108·2·9 = 1,944`) and seven classes (`7·577 = 4,039`). Small layout: DARTS_V2
/// network 6,899, supernet 208,107 (plus `2·14·8 = 224` α logits, kept apart).
#[test]
fn parameter_counts_of_small_and_paper_layouts() {
    let count = |config: &DartsConfig, genotype: Option<&DartsGenotype>| {
        let mut store = ParamStore::new();
        match genotype {
            Some(gt) => DartsNetwork::derived(config, gt, &mut store, &mut seeded_rng(0)),
            None => DartsNetwork::supernet(config, &mut store, &mut seeded_rng(0)),
        }
        .unwrap();
        store.trainable_values()
    };
    let v2 = DartsGenotype::darts_v2();
    let paper = DartsConfig::paper(20, 3);
    assert_eq!(count(&paper, Some(&v2)), 2_660_707);
    let darts_cifar = DartsConfig {
        channels: 36,
        ..paper.clone()
    };
    assert_eq!(count(&darts_cifar, Some(&v2)), 3_349_342 - 1_944 - 4_039);
    let small = DartsConfig::small(20, 3);
    assert_eq!(count(&small, Some(&v2)), 6_899);
    assert_eq!(count(&DartsConfig::small(6, 3), Some(&v2)), 6_899);
    assert_eq!(count(&small, None), 208_107);
    let arch = DartsNetwork::arch_params(&small, &mut seeded_rng(0)).unwrap();
    assert_eq!(arch.store.trainable_values(), 224);
}

/// `C = 2`, 3 cells (cells 1 and 2 reduce), 2 classes; normal cell all max-pooling, reduction
/// cell max-pooling except a skip connection from `s0` (FactorizedReduce). By hand, with
/// affine batch norms (2 values per channel):
/// - stem: conv 1→6, 3×3: 54; BN: 12 → 66
/// - cell 0 (C 2): pre0, pre1 ReLUConvBN 6→2: (12 + 4)·2 → 32
/// - cell 1 (C 4): pre0 ReLUConvBN 6→4: 24 + 8; pre1 8→4: 32 + 8; skip FactorizedReduce
///   4→4: 2·(4·2) + 8 = 24 → 96
/// - cell 2 (C 8, after a reduction): pre0 FactorizedReduce 8→8: 2·(8·4) + 16 = 80; pre1
///   ReLUConvBN 16→8: 128 + 16 = 144; skip FactorizedReduce 8→8: 80 → 304
/// - head: 32·2 + 2 = 66.
///
/// Total 564.
#[test]
fn hand_derived_parameter_count_of_a_tiny_derived_network() {
    let pools = |skip: bool| {
        (0..4)
            .flat_map(|node| {
                [
                    edge(
                        node,
                        0,
                        if skip && node == 0 {
                            Primitive::SkipConnect
                        } else {
                            Primitive::MaxPool3x3
                        },
                    ),
                    edge(node, 1, Primitive::MaxPool3x3),
                ]
            })
            .collect()
    };
    let genotype = DartsGenotype {
        steps: 4,
        normal: pools(false),
        reduce: pools(true),
    };
    let config = DartsConfig {
        channels: 2,
        ..DartsConfig::small(6, 2)
    };
    let mut store = ParamStore::new();
    DartsNetwork::derived(&config, &genotype, &mut store, &mut seeded_rng(0)).unwrap();
    assert_eq!(store.trainable_values(), 66 + 32 + 96 + 304 + 66);
}

/// The logits' gradient with respect to α (normal and reduction rows, separately) matches
/// fourth-order central differences along a random direction and along the gradient, on a
/// tiny supernet (`C = 2`, 3 cells, 2 or 4 nodes, 6×6 log-matrix images, batch 3, training-mode
/// batch norms), for softmax and sigmoid mixing, with α drawn from `N(0, 1)` so that the
/// weights differ. The checker of `tests/common` tolerates the kinks of ReLU and max pooling.
#[test]
fn logits_gradient_wrt_alpha_matches_finite_differences() {
    let mut tally = Tally::default();
    for (k, mixing) in [DartsMixing::Softmax, DartsMixing::Sigmoid]
        .into_iter()
        .enumerate()
    {
        for seed in 0..4u64 {
            let config = DartsConfig {
                channels: 2,
                steps: if seed % 2 == 0 { 2 } else { 4 },
                mixing,
                ..DartsConfig::small(6, 3)
            };
            let mut rng = seeded_rng(10 + seed);
            let mut weights = ParamStore::new();
            let net = DartsNetwork::supernet(&config, &mut weights, &mut rng).unwrap();
            let mut arch = DartsNetwork::arch_params(&config, &mut rng).unwrap();
            randomize(&mut arch, 1.0, 100 * seed + k as u64);
            let images = log_matrix_images(&spd_batch(3, 6, seed)).unwrap();
            let inputs = [Input {
                value: images,
                kind: InputKind::General,
            }];
            let targets = [
                Target::params("α normal", &arch.normal),
                Target::params("α reduce", &arch.reduce),
            ];
            let model = Model {
                weights,
                arch: Some(arch),
            };
            let build = |g: &mut Graph, v: &[spd_autograd::Var], m: &Model| {
                net.forward(
                    g,
                    &m.weights,
                    m.arch.as_ref(),
                    &mut ForwardCtx::train(),
                    v[0],
                )
            };
            check_gradients(&inputs, &model, &targets, &build, seed, &mut tally)
                .unwrap_or_else(|e| panic!("{mixing:?}, seed {seed}: {e}"));
        }
    }
    tally.assert_few_skips(0.1);
}

fn autograd(e: spd_nas::NasError) -> AutogradError {
    match e {
        spd_nas::NasError::Autograd(e) => e,
        e => AutogradError::Invalid(e.to_string()),
    }
}

/// `L₀₁ = −(1/N) Σ (σ(α) − 0.5)²`: its value on `α = (0, ln 3)` (σ = 0.5, 0.75) is
/// `−0.0625/2`; its gradient over two logit tensors of different shapes matches
/// finite differences (spd-autograd's checker, 16 seeds); over an `ArchParams` it covers
/// all 2·14 rows, scaled by `w₀₁`.
#[test]
fn zero_one_loss_value_and_gradient_match_finite_differences() {
    let mut g = Graph::new();
    let a = g.leaf(Tensor::from_vec([1, 1, 1, 2], vec![0.0, 3f64.ln()]).unwrap());
    let l = zero_one_loss(&mut g, &[a]).unwrap();
    assert!((g.value(l).data()[0] + 0.0625 / 2.0).abs() < 1e-15);
    for seed in 0..16u64 {
        let inputs = [
            InputKind::General.sample([1, 1, 1, 8], seed),
            InputKind::General.sample([1, 1, 3, 8], seed + 1000),
        ];
        check(&inputs, |g, v| zero_one_loss(g, v).map_err(autograd), seed)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let mut arch = ArchParams::new(14, 8, Normalization::Sigmoid, &mut seeded_rng(0)).unwrap();
    randomize(&mut arch, 2.0, 7);
    let mut g = Graph::new();
    let weighted = arch_zero_one_loss(&mut g, &arch, 10.0).unwrap();
    let values: Vec<f64> = arch
        .logits(false)
        .into_iter()
        .chain(arch.logits(true))
        .flatten()
        .collect();
    let sig: Vec<f64> = values.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
    let want = -10.0 * sig.iter().map(|s| (s - 0.5).powi(2)).sum::<f64>() / 224.0;
    assert!((g.value(weighted).data()[0] - want).abs() < 1e-14);
    let grads = g.backward(weighted).unwrap();
    for id in arch.normal.iter().chain(&arch.reduce) {
        let z = arch.store.get(*id).unwrap().value.data().to_vec();
        for (d, z) in grads.param(*id).unwrap().data().iter().zip(z) {
            let s = 1.0 / (1.0 + (-z).exp());
            let want = -10.0 * 2.0 * (s - 0.5) * s * (1.0 - s) / 224.0;
            assert!((d - want).abs() < 1e-15, "{d} vs {want}");
        }
    }
}

/// DARTS's rule on hand-set softmax logits (all 0 unless stated; 4 nodes, edge rows
/// `edge_row(node, source)`): node 0 keeps both inputs (skip from s0, sep_conv_3x3 from s1,
/// equal weights: the earlier first); node 1 keeps sep_conv_5x5 from s1 (logit 3) then
/// dil_conv_3x3 from s0 (logit 2), not node 0's edge whose only large logit is `none`; node 2
/// (all equal) keeps s0 and s1 with the first non-none op, max_pool_3x3; node 3 keeps
/// dil_conv_5x5 from node 2 (logit 4) then avg_pool_3x3 from node 0 (logit 3).
#[test]
fn darts_derivation_keeps_the_two_strongest_edges_per_node_by_best_non_none_op() {
    assert_eq!(
        (0..4).map(|n| edge_row(n, 0)).collect::<Vec<_>>(),
        [0, 2, 5, 9]
    );
    let mut arch = ArchParams::new(14, 8, Normalization::Softmax, &mut seeded_rng(0)).unwrap();
    randomize(&mut arch, 0.0, 0);
    let one = |col: usize, v: f64| {
        let mut r = [0.0; 8];
        r[col] = v;
        r
    };
    set_row(&mut arch, false, edge_row(0, 0), one(3, 1.0));
    set_row(&mut arch, false, edge_row(0, 1), one(4, 1.0));
    set_row(&mut arch, false, edge_row(1, 0), one(6, 2.0));
    set_row(&mut arch, false, edge_row(1, 1), one(5, 3.0));
    set_row(&mut arch, false, edge_row(1, 2), one(0, 5.0));
    set_row(&mut arch, false, edge_row(3, 2), one(2, 3.0));
    set_row(&mut arch, false, edge_row(3, 4), one(7, 4.0));
    let config = DartsConfig::small(6, 3);
    let gt = DartsGenotype::derive(&arch, &config).unwrap();
    use Primitive::*;
    assert_eq!(
        gt.normal,
        [
            edge(0, 0, SkipConnect),
            edge(0, 1, SepConv3x3),
            edge(1, 1, SepConv5x5),
            edge(1, 0, DilConv3x3),
            edge(2, 0, MaxPool3x3),
            edge(2, 1, MaxPool3x3),
            edge(3, 4, DilConv5x5),
            edge(3, 2, AvgPool3x3),
        ]
    );
    let all_pools: Vec<DartsEdge> = (0..4)
        .flat_map(|n| [edge(n, 0, MaxPool3x3), edge(n, 1, MaxPool3x3)])
        .collect();
    assert_eq!(gt.reduce, all_pools);
    gt.check(4).unwrap();
}

/// FairDARTS's rule on hand-set sigmoid logits (all −5, σ ≈ 0.007, unless stated; threshold
/// 0.85): node 0 keeps both sep_conv_3x3 (σ(3) = 0.95) and sep_conv_5x5 (σ(2) = 0.88) of the
/// s0 edge, not s1's `none` (σ(5)); node 1 has nothing above 0.85 (σ(1) = 0.73 on
/// dil_conv_3x3 from s1, σ(0.5) from s0) and keeps its single strongest pair, dil_conv_3x3
/// from s1; node 2 keeps skip from s1 (σ(2.5)) and max_pool_3x3 from node 1 (σ(1.8) = 0.858),
/// not avg_pool from s0 at σ(1.7) = 0.846; node 3 has only a strong `none` and keeps the first
/// of its equal non-none pairs, max_pool_3x3 from s0. The reduction cell (all −5) keeps one
/// max_pool_3x3 from s0 per node.
#[test]
fn fairdarts_derivation_keeps_ops_above_threshold_and_the_strongest_for_an_empty_node() {
    let mut arch = ArchParams::new(14, 8, Normalization::Sigmoid, &mut seeded_rng(0)).unwrap();
    for reduce in [false, true] {
        for row in 0..14 {
            set_row(&mut arch, reduce, row, [-5.0; 8]);
        }
    }
    let with = |pairs: &[(usize, f64)]| {
        let mut r = [-5.0; 8];
        for &(c, v) in pairs {
            r[c] = v;
        }
        r
    };
    set_row(
        &mut arch,
        false,
        edge_row(0, 0),
        with(&[(4, 3.0), (5, 2.0)]),
    );
    set_row(&mut arch, false, edge_row(0, 1), with(&[(0, 5.0)]));
    set_row(&mut arch, false, edge_row(1, 0), with(&[(2, 0.5)]));
    set_row(&mut arch, false, edge_row(1, 1), with(&[(6, 1.0)]));
    set_row(&mut arch, false, edge_row(2, 0), with(&[(2, 1.7)]));
    set_row(&mut arch, false, edge_row(2, 1), with(&[(3, 2.5)]));
    set_row(&mut arch, false, edge_row(2, 3), with(&[(1, 1.8)]));
    set_row(&mut arch, false, edge_row(3, 0), with(&[(0, 5.0)]));
    let config = DartsConfig::small(6, 3).fair();
    let gt = DartsGenotype::derive(&arch, &config).unwrap();
    use Primitive::*;
    assert_eq!(
        gt.normal,
        [
            edge(0, 0, SepConv3x3),
            edge(0, 0, SepConv5x5),
            edge(1, 1, DilConv3x3),
            edge(2, 1, SkipConnect),
            edge(2, 3, MaxPool3x3),
            edge(3, 0, MaxPool3x3),
        ]
    );
    let singles: Vec<DartsEdge> = (0..4).map(|n| edge(n, 0, MaxPool3x3)).collect();
    assert_eq!(gt.reduce, singles);
    gt.check(4).unwrap();
    // a lower threshold admits avg_pool from s0 into node 2 (σ(1.7) = 0.846)
    let lower = DartsGenotype::derive_threshold(&arch, 4, 0.84);
    assert!(lower.normal.contains(&edge(2, 0, AvgPool3x3)));
    // the derived network of a FairDARTS genotype (a node with two ops on one edge) runs
    let mut store = ParamStore::new();
    let net = DartsNetwork::derived(&config, &gt, &mut store, &mut seeded_rng(0)).unwrap();
    let mut g = Graph::new();
    let x = g.constant(spd_batch(2, 6, 1));
    let y = net
        .logits(&mut g, &store, &mut ForwardCtx::train(), x)
        .unwrap();
    assert_eq!(g.value(y).shape(), [2, 1, 1, 3]);
}

/// A genotype survives JSON (DARTS names as strings) unchanged; DOT lists every edge with
/// its op; `check` and `derived` reject `none`, a source after its node, a node without
/// input and a wrong node count; unknown names fail to parse.
#[test]
fn genotype_json_round_trip_dot_and_invalid_genotypes() {
    let v2 = DartsGenotype::darts_v2();
    let json = v2.to_json();
    assert!(json.contains("\"sep_conv_3x3\"") && json.contains("\"max_pool_3x3\""));
    assert_eq!(DartsGenotype::from_json(&json).unwrap(), v2);
    let dot = v2.to_dot();
    assert_eq!(dot.matches("[label=\"sep_conv_3x3\"]").count(), 5);
    assert!(dot.contains("normal_n0 -> normal_n3 [label=\"dil_conv_3x3\"]"));
    assert_eq!(dot.matches(" -> ").count(), 16 + 8);
    assert!(DartsGenotype::from_json(&json.replace("sep_conv_3x3", "conv_7x7")).is_err());
    assert_eq!(
        Primitive::from_name("dil_conv_5x5").unwrap(),
        Primitive::DilConv5x5
    );
    assert_eq!(Primitive::SepConv3x3.column(), 4);
    let config = DartsConfig::small(6, 3);
    let broken = |f: &dyn Fn(&mut DartsGenotype)| {
        let mut gt = DartsGenotype::darts_v2();
        f(&mut gt);
        assert!(gt.check(4).is_err());
        let mut store = ParamStore::new();
        assert!(DartsNetwork::derived(&config, &gt, &mut store, &mut seeded_rng(0)).is_err());
    };
    broken(&|gt| gt.normal[0].op = Primitive::None);
    broken(&|gt| gt.reduce[7].source = 5);
    broken(&|gt| gt.normal.retain(|e| e.node != 2));
    broken(&|gt| gt.steps = 3);
}

/// `log_matrix_images` equals spd-linalg's `logm` per sample (same solver; 1e-13 relative
/// allowed for a different summation path), the taped `forward_spd` equals `forward` on
/// those images, and a multi-channel batch is refused.
#[test]
fn log_matrix_images_equal_spd_linalg_log() {
    let x = spd_batch(4, 7, 3);
    let logs = log_matrix_images(&x).unwrap();
    assert_eq!(logs.shape(), [4, 1, 7, 7]);
    for k in 0..4 {
        let want = spd_linalg::logm(x.mat(k)).unwrap();
        let scale = want.norm_l2().max(1.0);
        for j in 0..7 {
            for i in 0..7 {
                assert!((logs.mat(k)[(i, j)] - want[(i, j)]).abs() <= 1e-13 * scale);
            }
        }
    }
    assert!(log_matrix_images(&InputKind::Spd.sample([2, 2, 3, 3], 0).value).is_err());
    let config = DartsConfig::small(7, 3);
    let mut store = ParamStore::new();
    let net = DartsNetwork::derived(
        &config,
        &DartsGenotype::darts_v2(),
        &mut store,
        &mut seeded_rng(4),
    )
    .unwrap();
    let mut g = Graph::new();
    let (xv, lv) = (g.constant(x), g.constant(logs));
    let a = net
        .forward_spd(&mut g, &store, None, &mut ForwardCtx::eval(), xv)
        .unwrap();
    let b = net
        .forward(&mut g, &store, None, &mut ForwardCtx::eval(), lv)
        .unwrap();
    for (p, q) in g.value(a).data().iter().zip(g.value(b).data()) {
        assert!((p - q).abs() <= 1e-10 * (1.0 + q.abs()), "{p} vs {q}");
    }
}

/// The derived network is a `train::Classifier`: ten `train_step`s (SGD, lr 0.05) on one
/// batch of 6 samples lower its training loss and fill the batch-norm running statistics;
/// a supernet refuses to be trained as a classifier.
#[test]
fn derived_network_trains_through_train_step() {
    let config = DartsConfig {
        channels: 4,
        ..DartsConfig::small(6, 2)
    };
    let mut store = ParamStore::new();
    let net = DartsNetwork::derived(
        &config,
        &DartsGenotype::darts_v2(),
        &mut store,
        &mut seeded_rng(5),
    )
    .unwrap();
    let ids = store.ids();
    let train = TrainConfig {
        lr: 0.05,
        ..TrainConfig::default()
    };
    let mut state = TrainState::new(store.clone(), &train);
    let x = spd_batch(6, 6, 9);
    let y = [0, 1, 0, 1, 0, 1];
    let mut losses = Vec::new();
    for _ in 0..10 {
        let (loss, _) = train_step(&net, &mut state, x.clone(), &y, &ids, 5.0).unwrap();
        losses.push(loss);
    }
    assert!(losses[9] < losses[0], "{losses:?}");
    assert_ne!(
        state.weights.buffer("stem.bn.running_mean"),
        store.buffer("stem.bn.running_mean")
    );
    let mut weights = ParamStore::new();
    let supernet = DartsNetwork::supernet(&config, &mut weights, &mut seeded_rng(0)).unwrap();
    let mut g = Graph::new();
    let xv = g.constant(x);
    assert!(
        supernet
            .logits(&mut g, &weights, &mut ForwardCtx::train(), xv)
            .is_err()
    );
}

/// Layouts are validated: odd `C`, no cell, a single class, a threshold outside (0, 1).
#[test]
fn invalid_layouts_are_rejected() {
    let ok = DartsConfig::small(6, 3);
    ok.check().unwrap();
    assert_eq!(ok.edges(), 14);
    let json = serde_json::to_string(&ok).unwrap();
    assert_eq!(serde_json::from_str::<DartsConfig>(&json).unwrap(), ok);
    for bad in [
        DartsConfig {
            channels: 5,
            ..ok.clone()
        },
        DartsConfig {
            cells: 0,
            ..ok.clone()
        },
        DartsConfig {
            classes: 1,
            ..ok.clone()
        },
        DartsConfig {
            threshold: 1.0,
            ..ok.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
        let mut store = ParamStore::new();
        assert!(DartsNetwork::supernet(&bad, &mut store, &mut seeded_rng(0)).is_err());
    }
}

/// α that does not belong to the configuration (another mixing, too few rows) is refused with
/// an error by the derivation and by the supernet's forward, never used or indexed past.
#[test]
fn alpha_of_another_configuration_is_refused() {
    let config = DartsConfig::small(6, 3);
    let mut rng = seeded_rng(4);
    let mut store = ParamStore::new();
    let net = DartsNetwork::supernet(&config, &mut store, &mut rng).unwrap();
    let sigmoid = DartsNetwork::arch_params(&config.clone().fair(), &mut rng).unwrap();
    let short = ArchParams::new(3, 8, Normalization::Softmax, &mut rng).unwrap();
    for (arch, says) in [(&sigmoid, "mixed by"), (&short, "rows of 8")] {
        let err = DartsGenotype::derive(arch, &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
        let mut g = Graph::new();
        let xv = g.constant(spd_batch(2, 6, 1));
        let err = net
            .forward_spd(&mut g, &store, Some(arch), &mut ForwardCtx::train(), xv)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
}

/// A first-order search of three classes of 6×6 samples: 12 training, 12 validation.
fn search_problem() -> (spd_data::Dataset, spd_data::split::Split) {
    let data = spd_data::gaussian::generate_gaussian(
        &spd_data::gaussian::GaussianConfig {
            n: 6,
            classes: 3,
            per_class: 8,
            ..Default::default()
        },
        4,
    )
    .unwrap();
    let split = spd_data::split::stratified_split(
        data.labels(),
        spd_data::split::SplitFractions {
            val: 0.5,
            test: 0.0,
        },
        0,
    );
    (data, split)
}

fn arch_bits(arch: &ArchParams) -> Vec<u64> {
    [false, true]
        .into_iter()
        .flat_map(|r| arch.logits(r))
        .flatten()
        .map(f64::to_bits)
        .collect()
}

/// The architecture gradient of FairDARTS, first and second order, exceeds that of the same
/// supernet with `w₀₁ = 0` by the zero-one loss's closed-form gradient
/// `−(2 w₀₁ / N)(σ − ½) σ (1 − σ)` per logit (`N` = every logit of both cell types); DARTS's
/// first-order architecture gradient is its validation loss's gradient, bit for bit.
#[test]
fn fairdarts_arch_gradient_adds_the_zero_one_gradient_and_darts_adds_nothing() {
    use spd_nas::search::{
        Differentiate, Mode, Order, Search, SearchConfig, VirtualStep, arch_gradient, evaluate,
    };
    use spd_nas::supernet::Supernet;
    let x = spd_batch(4, 6, 11);
    let y = vec![0, 1, 2, 0];
    let step = VirtualStep {
        lr: 0.01,
        metric: spd_autograd::StiefelMetric::Embedded,
    };
    let config = DartsConfig::small(6, 3).fair();
    let mut fair = Search::darts(&config, SearchConfig::default(), 3).unwrap();
    randomize(&mut fair.arch, 1.5, 40);
    let mut plain = fair.network.clone();
    plain.config.zero_one_weight = 0.0;
    let count = 2 * config.edges() * Primitive::ALL.len();
    for order in [Order::First, Order::Second] {
        let gradient = |network: &DartsNetwork| {
            arch_gradient(
                network,
                &fair.weights,
                &fair.arch,
                (&x, &y),
                (&x, &y),
                order,
                step,
            )
            .unwrap()
        };
        let (with, without) = (gradient(&fair.network), gradient(&plain));
        for id in fair.arch.normal.iter().chain(&fair.arch.reduce) {
            let z = fair.arch.store.get(*id).unwrap().value.data();
            for (k, &zk) in z.iter().enumerate() {
                let sg = 1.0 / (1.0 + (-zk).exp());
                let expected =
                    -2.0 * config.zero_one_weight / count as f64 * (sg - 0.5) * sg * (1.0 - sg);
                let got = with[id].data()[k] - without[id].data()[k];
                assert!(
                    (got - expected).abs() <= 1e-12 * (1.0 + with[id].data()[k].abs()),
                    "{order:?}: {got:e} vs {expected:e}"
                );
            }
        }
    }

    let mut darts = Search::darts(&DartsConfig::small(6, 3), SearchConfig::default(), 3).unwrap();
    randomize(&mut darts.arch, 1.5, 41);
    assert!(
        darts
            .network
            .arch_penalty(&mut Graph::new(), &darts.arch)
            .unwrap()
            .is_none()
    );
    let total = arch_gradient(
        &darts.network,
        &darts.weights,
        &darts.arch,
        (&x, &y),
        (&x, &y),
        Order::First,
        step,
    )
    .unwrap();
    let loss = evaluate(
        &darts.network,
        &darts.weights,
        Some(&darts.arch),
        (&x, &y),
        Mode::Train,
        Differentiate::Arch,
    )
    .unwrap()
    .grads
    .unwrap();
    for id in darts.arch.normal.iter().chain(&darts.arch.reduce) {
        assert_eq!(total[id].data(), loss.params()[id].data());
    }
}

/// A DARTS and a FairDARTS search epoch (first and second order) run through
/// the one search: α moves, the log line carries a genotype that builds a derived network,
/// and the selection keeps it.
#[test]
fn darts_and_fairdarts_search_epochs_move_alpha_and_select_a_buildable_genotype() {
    use spd_nas::search::{Order, Search, SearchConfig};
    let (data, split) = search_problem();
    for (mixing, order) in [
        (DartsMixing::Softmax, Order::First),
        (DartsMixing::Softmax, Order::Second),
        (DartsMixing::Sigmoid, Order::First),
        (DartsMixing::Sigmoid, Order::Second),
    ] {
        let config = DartsConfig {
            mixing,
            ..DartsConfig::small(6, 3)
        };
        let search_config = SearchConfig {
            epochs: 1,
            batch_size: 6,
            order,
            arch_lr: 0.05,
            ..Default::default()
        };
        let mut s = Search::darts(&config, search_config, 5).unwrap();
        let before = arch_bits(&s.arch);
        let log = s.search_epoch(&data, &split, |_, _| {}).unwrap();
        assert_ne!(
            arch_bits(&s.arch),
            before,
            "{mixing:?} {order:?}: α did not move"
        );
        assert!(log.train_loss.is_finite() && log.val_loss.is_finite());
        assert_eq!(log.alpha_normal.len(), config.edges());
        let selected = s.selected().unwrap();
        assert_eq!(selected.genotype, log.genotype);
        let mut store = ParamStore::new();
        DartsNetwork::derived(&config, &selected.genotype, &mut store, &mut seeded_rng(0)).unwrap();
    }
}
