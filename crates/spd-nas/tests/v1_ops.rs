//! The v1 search space's own ops (spec §5.2): `AvgPooling_1_normal` (ChannelPool),
//! `DiMap_1_normal`, `DiMap_2_normal` and `Skip_1_normal` (SkipPairs). Each forward is
//! compared with an independent computation from spd-linalg. The channel pairing is recovered
//! from the outputs and pinned at 2 and 3 channels. The gradients in the input and every
//! parameter are checked against finite differences on well-conditioned, near-repeated and
//! ill-conditioned (κ 1e3–1e4) spectra.

mod common;

use common::{
    Model, Slot, Spectra, Tally, Target, check_gradients, op_forward, run_cases, spd_input,
};
use faer::Mat;
use proptest::prelude::*;
use rand::Rng;
use spd_autograd::ops::simplex::Normalization;
use spd_autograd::{Graph, ParamId, ParamStore, Tensor};
use spd_linalg::random::seeded_rng;
use spd_linalg::{SpdPoint, random::log_uniform_spectrum, random::spd_with_spectrum};
use spd_nas::ops::{Op, OpSettings, pair_partners};
use spd_nas::space::{Naming, OpKind, SearchSpace, SpaceVersion};

const PAIR_KINDS: [OpKind; 3] = [OpKind::ChannelPool, OpKind::DiMap1, OpKind::DiMap2];

fn settings(karcher_steps: usize) -> OpSettings {
    OpSettings {
        karcher_steps,
        pooling_normalization: Normalization::Sparsemax,
    }
}

/// The partner of channel `c` of `channels` that the v1 pair ops are documented to use
/// (written out here, independently of `pair_partners`): the next channel for
/// `AvgPooling_1` and `DiMap_1`; two channels on for `DiMap_2`, except at 2 channels, where the
/// only other channel is the next one.
fn documented_partner(kind: OpKind, channels: usize, c: usize) -> usize {
    match (kind, channels) {
        (OpKind::DiMap2, 2) => 1 - c,
        (OpKind::DiMap2, _) => (c + 2) % channels,
        _ => (c + 1) % channels,
    }
}

/// A pair op with random learnt weights `ω` and, if `random_bias`, a random SPD batch-norm
/// bias (κ ≤ 10); returns the op, its store and its parameter ids `(ω, bias)`.
fn pair_op(
    kind: OpKind,
    channels: usize,
    n: usize,
    random_bias: bool,
    seed: u64,
) -> (Op, ParamStore, Option<ParamId>, ParamId) {
    let mut rng = seeded_rng(seed);
    let mut store = ParamStore::new();
    let op = Op::build(kind, &mut store, "op", channels, (n, n), &mut rng).unwrap();
    let Op::ChannelPairs { weights, bn, .. } = &op else {
        panic!("{kind:?} is not a channel-pair op");
    };
    let (weights, bias) = (*weights, bn.bias);
    if let Some(id) = weights {
        let w = Tensor::from_vec(
            [1, 1, 1, 2],
            vec![rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)],
        )
        .unwrap();
        store.get_mut(id).unwrap().value = w;
    }
    if random_bias {
        let s = log_uniform_spectrum(n, 0.5, 5.0, &mut rng);
        let b = spd_with_spectrum(&s, &mut rng);
        store.get_mut(bias).unwrap().value = Tensor::from_matrices(1, &[b.as_ref()]).unwrap();
    }
    (op, store, weights, bias)
}

/// `steps` Karcher steps of the weighted Fréchet mean from the weighted arithmetic mean, with
/// spd-linalg's exponential and logarithm maps: `M ← Exp_M(Σ_k w_k Log_M(X_k))`.
fn reference_wfm(xs: &[Mat<f64>], w: &[f64], steps: usize) -> Mat<f64> {
    let n = xs[0].nrows();
    let mut m = Mat::<f64>::zeros(n, n);
    for (x, wk) in xs.iter().zip(w) {
        m += x * faer::Scale(*wk);
    }
    for _ in 0..steps {
        let p = SpdPoint::new(m.as_ref()).unwrap();
        let mut t = Mat::<f64>::zeros(n, n);
        for (x, wk) in xs.iter().zip(w) {
            t += p.log_map(x.as_ref()).unwrap() * faer::Scale(*wk);
        }
        m = p.exp_map(t.as_ref()).unwrap();
    }
    m
}

/// What a channel-pair op computes, from spd-linalg: per sample and channel the (weighted)
/// mean of the channel and its documented partner; the batch norm's barycentre of all `B·C`
/// means (the same `steps` Karcher steps), whitening by it and colouring by the bias; ReEig(1e-4)
/// for the DiMaps.
fn reference_pair_op(
    kind: OpKind,
    x: &Tensor,
    w: [f64; 2],
    bias: &Tensor,
    steps: usize,
) -> Vec<Mat<f64>> {
    let [b, c, _, _] = x.shape();
    let mut means = Vec::with_capacity(b * c);
    for s in 0..b {
        for ch in 0..c {
            let p = documented_partner(kind, c, ch);
            let pair = [x.at(s, ch).to_owned(), x.at(s, p).to_owned()];
            means.push(reference_wfm(&pair, &w, steps));
        }
    }
    let uniform = vec![1.0 / means.len() as f64; means.len()];
    let g = SpdPoint::new(reference_wfm(&means, &uniform, steps).as_ref()).unwrap();
    let bias = SpdPoint::new(bias.mat(0)).unwrap();
    means
        .iter()
        .map(|m| {
            let y = bias.colour(g.whiten(m.as_ref()).as_ref());
            let y = spd_linalg::symmetrize(y.as_ref());
            if kind == OpKind::ChannelPool {
                y
            } else {
                spd_linalg::reeig(y.as_ref(), 1e-4).unwrap()
            }
        })
        .collect()
}

fn softmax2(z: &[f64]) -> [f64; 2] {
    let m = z[0].max(z[1]);
    let (a, b) = ((z[0] - m).exp(), (z[1] - m).exp());
    [a / (a + b), b / (a + b)]
}

fn pair_case() -> impl Strategy<Value = (usize, usize, usize, usize, Spectra, usize, bool, u64)> {
    (
        0usize..3,
        1usize..4,
        2usize..6,
        1usize..5,
        proptest::sample::select(Spectra::ALL.to_vec()),
        1usize..3,
        any::<bool>(),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..spd_autograd::gradcheck::config()
    })]

    /// ChannelPool, DiMap_1 and DiMap_2 keep the shape `[B, C, n, n]`, output SPD matrices
    /// (DiMaps: eigenvalues ≥ the ReEig threshold), and equal BN(→ ReEig) of the weighted
    /// means of each channel with its documented partner, computed independently with
    /// spd-linalg's maps. Both sides evaluate the same formula in a different order (tape:
    /// `M^{1/2} exp(Σ w log(M^{-1/2} X M^{-1/2})) M^{1/2}`; reference: `Exp_M(Σ w Log_M X)`),
    /// each with the forward error of a whitening, `c n ε κ` relative (the accuracy contract of
    /// docs/architecture.md), κ the input's condition number. The bound is `1e2 n ε κ`; over
    /// 3000 random cases the largest difference was `21 n ε κ`.
    #[test]
    fn channel_pair_ops_equal_bn_of_the_weighted_means_of_documented_pairs(
        (k, b, c, n, spectra, steps, random_bias, seed) in pair_case()
    ) {
        let kind = PAIR_KINDS[k];
        let (op, store, weights, bias) = pair_op(kind, c, n, random_bias, seed);
        let x = spd_input([b, c, n, n], spectra, seed ^ 1).value;
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let y = op_forward(&op, &mut g, &store, &settings(steps), xv).unwrap();
        let y = g.value(y);
        prop_assert_eq!(y.shape(), [b, c, n, n]);
        let w = match weights {
            Some(id) => softmax2(store.get(id).unwrap().value.data()),
            None => [0.5, 0.5],
        };
        let reference = reference_pair_op(kind, &x, w, &store.get(bias).unwrap().value, steps);
        let kappa = common::condition(&x);
        let bound = 1e2 * n as f64 * f64::EPSILON * kappa;
        for (i, r) in reference.iter().enumerate() {
            spd_linalg::check_spd(y.mat(i))
                .map_err(|e| TestCaseError::fail(format!("matrix {i}: {e}")))?;
            if kind != OpKind::ChannelPool {
                let lmin = spd_linalg::eigvalsh(y.mat(i)).unwrap()[0];
                prop_assert!(lmin >= 1e-4 * (1.0 - 1e-9), "ReEig output eigenvalue {lmin:e}");
            }
            let diff = (y.mat(i).to_owned() - r).norm_l2() / r.norm_l2();
            prop_assert!(
                diff <= bound,
                "{kind:?} matrix {i}: relative difference {diff:e} > {bound:e} (κ {kappa:e})"
            );
        }
    }

    /// Skip_1_normal keeps the shape `[B, C, n, n]`, outputs SPD matrices and equals
    /// `Y_o = Σ_i W_oiᵀ blockdiag(X_i, X_{i+1 mod C}) W_oi` computed with plain products (the
    /// only rounding is that of the products: `1e-13` relative for sizes up to 2n = 8).
    #[test]
    fn skip_pairs_maps_the_block_diagonal_of_each_channel_and_the_next_back_to_n(
        (b, c, n, spectra, seed) in (
            1usize..4,
            1usize..5,
            1usize..5,
            proptest::sample::select(Spectra::ALL.to_vec()),
            any::<u64>(),
        )
    ) {
        let mut rng = seeded_rng(seed);
        let mut store = ParamStore::new();
        let op = Op::build(OpKind::SkipPairs, &mut store, "op", c, (n, n), &mut rng).unwrap();
        let Op::SkipPairs { bimap } = &op else { panic!("not SkipPairs") };
        let w = store.get(bimap.weight).unwrap().value.clone();
        prop_assert_eq!(w.shape(), [c, c, 2 * n, n]);
        let x = spd_input([b, c, n, n], spectra, seed ^ 1).value;
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let y = op_forward(&op, &mut g, &store, &settings(1), xv).unwrap();
        let y = g.value(y);
        prop_assert_eq!(y.shape(), [b, c, n, n]);
        for s in 0..b {
            for o in 0..c {
                let mut r = Mat::<f64>::zeros(n, n);
                for i in 0..c {
                    let mut d = Mat::<f64>::zeros(2 * n, 2 * n);
                    d.as_mut().submatrix_mut(0, 0, n, n).copy_from(x.at(s, i));
                    d.as_mut().submatrix_mut(n, n, n, n).copy_from(x.at(s, (i + 1) % c));
                    let wi = w.mat(o * c + i);
                    r += wi.transpose() * &d * wi;
                }
                let got = y.at(s, o);
                spd_linalg::check_spd(got)
                    .map_err(|e| TestCaseError::fail(format!("({s}, {o}): {e}")))?;
                let diff = (got.to_owned() - &r).norm_l2() / r.norm_l2();
                prop_assert!(diff <= 1e-13, "({s}, {o}): relative difference {diff:e}");
            }
        }
    }
}

/// The log-scalars `l_c` of inputs `X_c = e^{l_c} I`: distinct, so a channel is recognised by
/// its value.
fn scalar_logs(channels: usize) -> Vec<f64> {
    (0..channels)
        .map(|c| 0.37 * (c as f64 + 1.0) * if c % 2 == 0 { 1.0 } else { -1.3 })
        .collect()
}

/// The partner of every output channel, read off the output of a pair op on `X_c = e^{l_c} I`
/// (batch 1). A weighted mean of scalar matrices is exact after one Karcher step,
/// `e^{w_0 l_c + w_1 l_p} I`. The batch norm divides every matrix by their geometric mean,
/// `e^{mean(l)}` for any bijective pairing. So `l_p = (log y_c + mean(l) − w_0 l_c)/w_1`,
/// matched to the nearest `l_j`. Also returns the gradient of the output's log-trace in `ω`
/// (`None` for ChannelPool).
fn recovered_partners(kind: OpKind, channels: usize) -> (Vec<usize>, Option<Vec<f64>>) {
    let (op, store, weights, _) = pair_op(kind, channels, 2, false, 11);
    let l = scalar_logs(channels);
    let mats: Vec<Mat<f64>> = l
        .iter()
        .map(|v| Mat::<f64>::identity(2, 2) * faer::Scale(v.exp()))
        .collect();
    let views: Vec<_> = mats.iter().map(|m| m.as_ref()).collect();
    let x = Tensor::from_matrices(channels, &views).unwrap();
    let w = match weights {
        Some(id) => softmax2(store.get(id).unwrap().value.data()),
        None => [0.5, 0.5],
    };
    let mean_l = l.iter().sum::<f64>() / channels as f64;
    let mut g = Graph::new();
    let xv = g.constant(x);
    let y = op_forward(&op, &mut g, &store, &settings(1), xv).unwrap();
    let partners = (0..channels)
        .map(|c| {
            let m = g.value(y).mat(c);
            assert!((m[(0, 1)]).abs() < 1e-12 && (m[(0, 0)] - m[(1, 1)]).abs() < 1e-12 * m[(0, 0)]);
            let lp = (m[(0, 0)].ln() + mean_l - w[0] * l[c]) / w[1];
            let (j, dist) = l
                .iter()
                .enumerate()
                .map(|(j, v)| (j, (v - lp).abs()))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            assert!(
                dist < 1e-9,
                "{kind:?}, channel {c}: no input channel has log-scalar {lp}"
            );
            j
        })
        .collect();
    let grad = weights.map(|id| {
        let log = spd_autograd::ops::eig::log_eig(&mut g, y).unwrap();
        // a loss weighting channel c by c+1, so that the swap symmetry of the pair means
        // cannot cancel the gradient
        let mut c_weights = Tensor::identities(1, channels, 2);
        for c in 0..channels {
            c_weights
                .mat_mut(c)
                .copy_from(Mat::<f64>::identity(2, 2) * faer::Scale(c as f64 + 1.0));
        }
        let loss = spd_autograd::ops::arith::dot_const(&mut g, log, &c_weights).unwrap();
        let grads = g.backward(loss).unwrap();
        grads.param(id).map_or(vec![0.0; 2], |t| t.data().to_vec())
    });
    (partners, grad)
}

/// On scalar inputs the pairing can be read off the output: for 2 to 6 channels every
/// channel-pair op pairs channel `c` with its documented partner (next channel; DiMap_2 two
/// on, or the other channel at C = 2), which `pair_partners` reports too.
#[test]
fn channel_pair_ops_pair_each_channel_with_its_documented_partner() {
    for channels in 2..=6 {
        for kind in PAIR_KINDS {
            let expected: Vec<usize> = (0..channels)
                .map(|c| documented_partner(kind, channels, c))
                .collect();
            let (found, _) = recovered_partners(kind, channels);
            assert_eq!(found, expected, "{kind:?} with {channels} channels");
            let offset = if kind == OpKind::DiMap2 { 2 } else { 1 };
            assert_eq!(
                pair_partners(channels, offset),
                expected,
                "{kind:?} with {channels} channels"
            );
        }
    }
}

/// DiMap_2 at C = 2 and C = 3: every channel is paired with a *different* channel (the plain
/// `(c + 2) mod C` rule paired each channel with itself at C = 2, which made the op BN → ReEig
/// and left `ω` without gradient), and `ω` gets a non-zero gradient. At C = 3 DiMap_2 pairs
/// `c` with `c + 2 ≡ c − 1`, DiMap_1 with `c + 1`.
#[test]
fn dimap_2_at_two_and_three_channels_pairs_distinct_channels_and_gives_omega_a_gradient() {
    assert_eq!(pair_partners(2, 2), [1, 0]);
    assert_eq!(pair_partners(3, 2), [2, 0, 1]);
    assert_eq!(pair_partners(3, 1), [1, 2, 0]);
    assert_eq!(
        pair_partners(1, 2),
        [0],
        "one channel: no other channel exists"
    );
    for (channels, expected) in [(2, vec![1, 0]), (3, vec![2, 0, 1])] {
        let (found, grad) = recovered_partners(OpKind::DiMap2, channels);
        assert_eq!(found, expected, "DiMap_2 with {channels} channels");
        let grad = grad.unwrap();
        assert!(
            grad.iter().map(|v| v.abs()).fold(0.0, f64::max) > 1e-3,
            "DiMap_2 with {channels} channels: ω gets no gradient ({grad:?})"
        );
    }
    assert_eq!(recovered_partners(OpKind::DiMap1, 3).0, [1, 2, 0]);
}

/// The v1 list still has 7 candidates per edge, with the channel-pair ops in their columns.
#[test]
fn v1_lists_put_the_pair_ops_in_their_columns() {
    let space = SearchSpace::new(SpaceVersion::V1, Naming::Paper);
    let kinds: Vec<OpKind> = space.normal.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds[1..4],
        [OpKind::ChannelPool, OpKind::DiMap1, OpKind::DiMap2]
    );
    assert_eq!(kinds[6], OpKind::SkipPairs);
}

/// Gradients of ChannelPool, DiMap_1 and DiMap_2 (training-mode batch norm) in the input, in
/// the learnt pair weights `ω` and in the batch-norm bias, on the three spectrum families.
/// Skips (neither one-sided quotient matches at the ReEig threshold) must stay under 1% of the
/// comparisons.
#[test]
fn channel_pair_op_gradients_in_input_pair_weights_and_bn_bias() {
    let tally = run_cases(
        48,
        pair_case(),
        |(k, b, c, n, spectra, steps, random_bias, seed), tally| {
            let kind = PAIR_KINDS[k];
            let (op, store, weights, bias) = pair_op(kind, c, n, random_bias, seed);
            let x = spd_input([b, c, n, n], spectra, seed ^ 1);
            let model = Model::new(store);
            let settings = settings(steps);
            let mut targets = vec![
                Target::new("input", vec![Slot::Input(0)]),
                Target::params("bn bias", &[bias]),
            ];
            if let Some(id) = weights {
                targets.push(Target::params("ω", &[id]));
            }
            check_gradients(
                &[x],
                &model,
                &targets,
                &|g, v, m| op_forward(&op, g, &m.weights, &settings, v[0]),
                seed,
                tally,
            )
            .map_err(|e| format!("{kind:?}, {spectra:?}, [{b}, {c}, {n}, {n}], {steps} steps: {e}"))
        },
    );
    tally.assert_few_skips(0.01);
}

/// Gradients of Skip_1_normal in the input (used twice: as itself and as the partner of the
/// previous channel) and in its BiMap weight. The op is linear in X and quadratic in W, so the
/// fourth-order difference has no truncation error and only the rounding floor remains.
#[test]
fn skip_pairs_gradients_in_input_and_bimap_weight() {
    let strategy = (
        1usize..4,
        1usize..5,
        1usize..5,
        proptest::sample::select(Spectra::ALL.to_vec()),
        any::<u64>(),
    );
    let tally = run_cases(
        32,
        strategy,
        |(b, c, n, spectra, seed), tally: &mut Tally| {
            let mut rng = seeded_rng(seed);
            let mut store = ParamStore::new();
            let op = Op::build(OpKind::SkipPairs, &mut store, "op", c, (n, n), &mut rng).unwrap();
            let Op::SkipPairs { bimap } = &op else {
                panic!("not SkipPairs")
            };
            let targets = [
                Target::new("input", vec![Slot::Input(0)]),
                Target::params("bimap weight", &[bimap.weight]),
            ];
            let x = spd_input([b, c, n, n], spectra, seed ^ 1);
            let settings = settings(1);
            check_gradients(
                &[x],
                &Model::new(store.clone()),
                &targets,
                &|g, v, m| op_forward(&op, g, &m.weights, &settings, v[0]),
                seed,
                tally,
            )
            .map_err(|e| format!("{spectra:?}, [{b}, {c}, {n}, {n}]: {e}"))
        },
    );
    tally.assert_few_skips(0.0);
}
