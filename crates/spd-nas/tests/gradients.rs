//! Finite-difference checks of the spd-nas ops as composed, in their inputs and parameters
//! (α included): WeightedPooling, Skip_reduced, the mixed edge (sparsemax / softmax /
//! renormalised-sigmoid weighted Fréchet mixing of the candidates), and whole cells of a
//! supernet. Inputs are drawn with well-conditioned, near-repeated and ill-conditioned
//! (κ 1e3–1e4) spectra. The checker, its steps and its tolerance (gradcheck's bound) are in
//! `common`.

mod common;

use common::{Model, Slot, Spectra, Target, check_gradients, op_forward, run_cases, spd_input};
use proptest::prelude::*;
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::simplex::Normalization;
use spd_autograd::{Manifold, ParamId, ParamStore};
use spd_linalg::random::seeded_rng;
use spd_nas::ops::{Op, OpSettings};
use spd_nas::space::{OpKind, SpaceVersion};
use spd_nas::{ArchParams, Network, NetworkConfig};

const NORMALIZATIONS: [Normalization; 3] = [
    Normalization::Sparsemax,
    Normalization::Softmax,
    Normalization::SigmoidSimplex,
];

fn spectra() -> impl Strategy<Value = Spectra> {
    proptest::sample::select(Spectra::ALL.to_vec())
}

/// Network inputs: near-repeated spectra as clusters, never near a multiple of the identity,
/// where MaxPooling_reduced sits at a tie (see [`Spectra::Clustered`]).
fn network_spectra() -> impl Strategy<Value = Spectra> {
    proptest::sample::select(Spectra::NETWORK.to_vec())
}

/// WeightedPooling (output channel i = wFM of the input channels with weights
/// `normalise(Ω)[i, :]`, then training-mode BN), in the input, in `Ω` and in the BN bias, for
/// each row normalisation. `Ω` is the op's U(0, 1) initialisation times a spread in
/// `[1, 4]`, so sparsemax rows have supports of every size. Skips (neither one-sided quotient
/// matches at a sparsemax support change) must stay under 1% of the comparisons.
#[test]
fn weighted_pooling_gradients_in_input_omega_and_bn_bias() {
    let strategy = (
        0usize..3,
        1usize..4,
        2usize..5,
        1usize..5,
        1.0f64..4.0,
        spectra(),
        1usize..3,
        any::<u64>(),
    );
    let tally = run_cases(
        48,
        strategy,
        |(k, b, c, n, spread, spectra, steps, seed), tally| {
            let normalization = NORMALIZATIONS[k];
            let mut rng = seeded_rng(seed);
            let mut store = ParamStore::new();
            let op = Op::build(
                OpKind::WeightedPooling,
                &mut store,
                "wp",
                c,
                (n, n),
                &mut rng,
            )
            .unwrap();
            let Op::WeightedPooling { omega, bn } = &op else {
                panic!("not WeightedPooling")
            };
            let o = &mut store.get_mut(*omega).unwrap().value;
            *o = o.scaled(spread);
            let settings = OpSettings {
                karcher_steps: steps,
                pooling_normalization: normalization,
            };
            let targets = [
                Target::new("input", vec![Slot::Input(0)]),
                Target::params("Ω", &[*omega]),
                Target::params("bn bias", &[bn.bias]),
            ];
            let x = spd_input([b, c, n, n], spectra, seed ^ 1);
            check_gradients(
                &[x],
                &Model::new(store.clone()),
                &targets,
                &|g, v, m| op_forward(&op, g, &m.weights, &settings, v[0]),
                seed,
                tally,
            )
            .map_err(|e| {
                format!("{normalization:?}, {spectra:?}, [{b}, {c}, {n}, {n}], {steps} steps: {e}")
            })
        },
    );
    tally.assert_few_skips(0.01);
}

/// Skip_reduced (`blockdiag(BiMap_a(X), BiMap_b(X))`, sizes `⌈m/2⌉` and `⌊m/2⌋`, odd `m`
/// included), in the input and in both BiMap weights. The op is linear in X and quadratic in
/// each W, so the fourth-order difference has no truncation error: only the rounding floor.
#[test]
fn skip_reduced_gradients_in_input_and_both_bimap_weights() {
    let strategy = (
        1usize..4,
        1usize..4,
        2usize..7,
        0.0f64..1.0,
        spectra(),
        any::<u64>(),
    );
    let tally = run_cases(32, strategy, |(b, c, n, reduce, spectra, seed), tally| {
        let m = 2 + ((n - 2) as f64 * reduce).round() as usize;
        let mut rng = seeded_rng(seed);
        let mut store = ParamStore::new();
        let op = Op::build(OpKind::SkipReduced, &mut store, "skip", c, (n, m), &mut rng).unwrap();
        let Op::SkipReduced { first, second } = &op else {
            panic!("not SkipReduced")
        };
        let targets = [
            Target::new("input", vec![Slot::Input(0)]),
            Target::params("first bimap", &[first.weight]),
            Target::params("second bimap", &[second.weight]),
        ];
        let x = spd_input([b, c, n, n], spectra, seed ^ 1);
        let settings = OpSettings {
            karcher_steps: 1,
            pooling_normalization: Normalization::Sparsemax,
        };
        check_gradients(
            &[x],
            &Model::new(store.clone()),
            &targets,
            &|g, v, mm| op_forward(&op, g, &mm.weights, &settings, v[0]),
            seed,
            tally,
        )
        .map_err(|e| format!("{spectra:?}, [{b}, {c}, {n}, {n}] → {m}: {e}"))
    });
    tally.assert_few_skips(0.0);
}

/// A supernet of `config` with α logits `spread · N(0, 1)` (1e-3 is the paper's
/// initialisation: all candidates in the sparsemax support; 0.5 leaves some out).
fn supernet(config: &NetworkConfig, spread: f64, seed: u64) -> (Network, Model) {
    let mut rng = seeded_rng(seed);
    let mut store = ParamStore::new();
    let net = Network::supernet(config, &mut store, &mut rng).unwrap();
    let mut arch = ArchParams::new(
        config.edges(),
        config.search_space().width(),
        config.spec.arch_normalization,
        &mut rng,
    )
    .unwrap();
    for id in arch.store.ids() {
        let v = &mut arch.store.get_mut(id).unwrap().value;
        let z = spd_linalg::random::gaussian(1, v.cols(), &mut rng);
        for (j, x) in v.data_mut().iter_mut().enumerate() {
            *x = spread * z[(0, j)];
        }
    }
    (
        net,
        Model {
            weights: store,
            arch: Some(arch),
        },
    )
}

/// The network's logits in training mode (batch statistics in every BN).
fn logits(
    net: &Network,
) -> impl Fn(
    &mut spd_autograd::Graph,
    &[spd_autograd::Var],
    &Model,
) -> spd_nas::Result<spd_autograd::Var>
+ '_ {
    move |g, v, m| {
        net.forward(
            g,
            &m.weights,
            m.arch.as_ref(),
            &mut ForwardCtx::train(),
            v[0],
        )
    }
}

/// Targets for the weights whose names start with `prefix`, one per manifold.
fn weight_targets(model: &Model, prefix: &str) -> Vec<Target> {
    [
        (Manifold::Stiefel, "Stiefel"),
        (Manifold::Spd, "SPD"),
        (Manifold::Euclidean, "Euclidean"),
    ]
    .into_iter()
    .map(|(manifold, name)| {
        Target::params(
            format!("{name} weights {prefix}*"),
            &model.weight_ids(manifold, prefix),
        )
    })
    .collect()
}

fn case_strategy() -> impl Strategy<Value = (bool, usize, usize, f64, usize, bool, Spectra, u64)> {
    (
        any::<bool>(),
        0usize..3,
        3usize..6,
        0.0f64..1.0,
        2usize..4,
        any::<bool>(),
        network_spectra(),
        any::<u64>(),
    )
}

/// The mixed edge: a network with one reduction cell (stem, 5 edges, head), where edge 0
/// mixes the reduced candidates (none, Avg/MaxPooling, BiMap_1/2, Skip_reduced; v1 adds
/// BiMap_0) and edge 4 (node 0 → node 1) the normal ones (none, WeightedPooling or the v1
/// channel ops, BiMaps, Skip). The logits' gradient is checked in the α rows of these two
/// edges, in their candidates' weights (per manifold) and in the network input. Each mixing
/// normalisation is used, with α at the paper's initialisation or spread out. Skips (neither
/// one-sided quotient matches at a sparsemax support change, ReEig threshold or max-pool tie)
/// must stay under 1% of the comparisons.
#[test]
fn mixed_edge_gradients_in_alpha_rows_and_candidate_weights() {
    let tally = run_cases(
        24,
        case_strategy(),
        |(v1, k, n, reduce, b, spread, spectra, seed), tally| {
            let m = 2 + ((n - 2) as f64 * reduce).round() as usize;
            let mut config = NetworkConfig::paper(n, m, 3);
            config.spec.layers = 1;
            config.spec.space = if v1 {
                SpaceVersion::V1
            } else {
                SpaceVersion::V0
            };
            config.spec.arch_normalization = NORMALIZATIONS[k];
            let spread = if spread { 0.5 } else { 1e-3 };
            let (net, model) = supernet(&config, spread, seed);
            let arch = model.arch.as_ref().unwrap();
            let mut targets = vec![
                Target::new("input", vec![Slot::Input(0)]),
                Target::params("α of edges 0 and 4", &[arch.reduce[0], arch.reduce[4]]),
            ];
            for edge in [0, 4] {
                targets.extend(weight_targets(&model, &format!("cell0.edge{edge}.")));
            }
            let x = spd_input([b, 1, n, n], spectra, seed ^ 1);
            check_gradients(&[x], &model, &targets, &logits(&net), seed, tally).map_err(|e| {
                format!(
                    "{:?} {:?}, {spectra:?}, α spread {spread}, {n} → {m}, batch {b}: {e}",
                    config.spec.space, config.spec.arch_normalization
                )
            })
        },
    );
    tally.assert_few_skips(0.01);
}

/// The paper's supernet shape (stem, a reduction cell, a normal cell, 5 mixed edges each,
/// LogEig head): the logits' gradient in the input, in every weight (Stiefel, SPD,
/// Euclidean) and in all α rows, in both search spaces and for each mixing normalisation.
/// Skips must stay under 1% of the comparisons.
#[test]
fn two_cell_supernet_gradients_in_input_weights_and_alpha() {
    let tally = run_cases(
        16,
        case_strategy(),
        |(v1, k, n, reduce, b, spread, spectra, seed), tally| {
            let m = 2 + ((n - 2) as f64 * reduce).round() as usize;
            let mut config = NetworkConfig::paper(n, m, 3);
            config.spec.space = if v1 {
                SpaceVersion::V1
            } else {
                SpaceVersion::V0
            };
            config.spec.arch_normalization = NORMALIZATIONS[k];
            let spread = if spread { 0.5 } else { 1e-3 };
            let (net, model) = supernet(&config, spread, seed);
            let arch = model.arch.as_ref().unwrap();
            let alpha: Vec<ParamId> = arch.normal.iter().chain(&arch.reduce).copied().collect();
            let mut targets = vec![
                Target::new("input", vec![Slot::Input(0)]),
                Target::params("α", &alpha),
            ];
            targets.extend(weight_targets(&model, ""));
            let x = spd_input([b, 1, n, n], spectra, seed ^ 1);
            check_gradients(&[x], &model, &targets, &logits(&net), seed, tally).map_err(|e| {
                format!(
                    "{:?} {:?}, {spectra:?}, α spread {spread}, {n} → {m}, batch {b}: {e}",
                    config.spec.space, config.spec.arch_normalization
                )
            })
        },
    );
    tally.assert_few_skips(0.01);
}
