//! Supernet forward and architecture gradients.

use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::loss::cross_entropy;
use spd_autograd::ops::simplex::Normalization;
use spd_autograd::{Graph, ParamId, ParamStore, StiefelMetric, Tensor};
use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_linalg::random::{gaussian, seeded_rng};
use spd_nas::search::{Differentiate, Mode, Order, VirtualStep, arch_gradient, batch, evaluate};
use spd_nas::{ArchParams, Network, NetworkConfig};
use std::collections::BTreeMap;

fn data(n: usize, count: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let d = generate_gaussian(
        &GaussianConfig {
            n,
            classes: 3,
            per_class: count.div_ceil(3),
            ..Default::default()
        },
        seed,
    )
    .unwrap();
    batch(&d, &(0..count).collect::<Vec<_>>()).unwrap()
}

fn supernet(config: &NetworkConfig, seed: u64) -> (Network, ParamStore, ArchParams) {
    let mut rng = seeded_rng(seed);
    let mut store = ParamStore::new();
    let net = Network::supernet(config, &mut store, &mut rng).unwrap();
    let arch = ArchParams::new(
        config.edges(),
        config.search_space().width(),
        config.spec.arch_normalization,
        &mut rng,
    )
    .unwrap();
    (net, store, arch)
}

fn arch_loss(net: &Network, w: &ParamStore, arch: &ArchParams, xy: (&Tensor, &[usize])) -> f64 {
    evaluate(net, w, Some(arch), xy, Mode::Train, Differentiate::Nothing)
        .unwrap()
        .loss
}

fn moved(arch: &ArchParams, dir: &BTreeMap<ParamId, Tensor>, t: f64) -> ArchParams {
    let mut a = arch.clone();
    for (id, d) in dir {
        a.store.get_mut(*id).unwrap().value.axpy(t, d);
    }
    a
}

fn random_direction(arch: &ArchParams, seed: u64) -> BTreeMap<ParamId, Tensor> {
    let mut rng = seeded_rng(seed);
    let ids: Vec<ParamId> = arch.normal.iter().chain(&arch.reduce).copied().collect();
    let mut dir: BTreeMap<ParamId, Tensor> = ids
        .iter()
        .map(|id| {
            let k = arch.store.get(*id).unwrap().value.cols();
            let m = gaussian(1, k, &mut rng);
            (
                *id,
                Tensor::from_vec([1, 1, 1, k], (0..k).map(|j| m[(0, j)]).collect()).unwrap(),
            )
        })
        .collect();
    let norm = dir.values().map(Tensor::norm_sq).sum::<f64>().sqrt();
    dir.values_mut().for_each(|t| *t = t.scaled(1.0 / norm));
    dir
}

fn dot(a: &BTreeMap<ParamId, Tensor>, b: &BTreeMap<ParamId, Tensor>) -> f64 {
    a.iter().map(|(id, t)| t.dot(&b[id])).sum()
}

/// RADAR shapes (batch 4, 20×20 → 10×10, 3 classes): every node is SPD, the logits are
/// finite, and ∂L/∂α matches central differences (relative 1e-5) for each normalisation.
#[test]
fn supernet_forward_is_spd_and_alpha_gradient_matches_finite_differences() {
    let (x, y) = data(20, 4, 1);
    for normalization in [
        Normalization::Sparsemax,
        Normalization::Softmax,
        Normalization::SigmoidSimplex,
    ] {
        let mut config = NetworkConfig::radar();
        config.spec.arch_normalization = normalization;
        let (net, store, arch) = supernet(&config, 2);
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let trace = net
            .forward_traced(&mut g, &store, Some(&arch), &mut ForwardCtx::train(), xv)
            .unwrap();
        assert_eq!(trace.nodes.len(), 4);
        for node in &trace.nodes {
            let t = g.value(*node);
            for k in 0..t.count() {
                spd_linalg::check_spd(t.mat(k)).unwrap();
            }
        }
        assert_eq!(g.value(trace.logits).shape(), [4, 1, 1, 3]);
        assert!(g.value(trace.logits).is_finite());
        let loss = cross_entropy(&mut g, trace.logits, &y).unwrap();
        let grads = g.backward(loss).unwrap();
        let g_alpha: BTreeMap<ParamId, Tensor> = grads
            .params()
            .iter()
            .filter(|(id, _)| arch.store.contains(**id))
            .map(|(id, t)| (*id, t.clone()))
            .collect();
        assert_eq!(
            g_alpha.len(),
            2 * config.edges(),
            "{normalization:?}: every α row has a gradient"
        );
        let norm = dot(&g_alpha, &g_alpha).sqrt();
        assert!(norm > 0.0);
        for dir in [
            random_direction(&arch, 3),
            g_alpha
                .iter()
                .map(|(id, t)| (*id, t.scaled(1.0 / norm)))
                .collect(),
        ] {
            let h = 1e-4;
            let l = |t: f64| arch_loss(&net, &store, &moved(&arch, &dir, t), (&x, &y));
            let fd = (-l(2.0 * h) + 8.0 * l(h) - 8.0 * l(-h) + l(-2.0 * h)) / (12.0 * h);
            let an = dot(&g_alpha, &dir);
            assert!(
                (fd - an).abs() <= 1e-5 * norm,
                "{normalization:?}: finite difference {fd:e}, backward {an:e}, ‖g‖ {norm:e}"
            );
        }
    }
}

/// The unrolled gradient against a finite-difference estimate of `d/dα L_val(w̃(α), α)`, where
/// `w̃(α)` re-runs the Riemannian virtual step at each perturbed α, under both Stiefel metrics.
#[test]
fn second_order_gradient_matches_the_unrolled_objective() {
    let config = NetworkConfig::paper(6, 4, 3);
    let (net, store, arch) = supernet(&config, 5);
    let (tx, ty) = data(6, 6, 7);
    let (vx, vy) = data(6, 6, 8);
    let lr = 0.025;
    for metric in [StiefelMetric::Embedded, StiefelMetric::Canonical] {
        let g_alpha = arch_gradient(
            &net,
            &store,
            &arch,
            (&tx, &ty),
            (&vx, &vy),
            Order::Second,
            VirtualStep { lr, metric },
        )
        .unwrap();
        let unrolled = |a: &ArchParams| -> f64 {
            let e = evaluate(
                &net,
                &store,
                Some(a),
                (&tx, &ty),
                Mode::Train,
                Differentiate::Weights,
            )
            .unwrap();
            let grads = e.grads.unwrap();
            let mut w = store.clone();
            for (id, gt) in grads.params().iter().filter(|(id, _)| store.contains(**id)) {
                let p = w.get_mut(*id).unwrap();
                let xi = p
                    .manifold
                    .riemannian_gradient_in(metric, &p.value, gt)
                    .unwrap();
                p.value = p.manifold.retract(&p.value, &xi.scaled(-lr)).unwrap();
                if p.manifold == spd_autograd::Manifold::Stiefel {
                    for k in 0..p.value.count() {
                        assert!(
                            spd_linalg::orthonormality_error(p.value.mat(k)) <= 1e-10,
                            "{} left the Stiefel manifold",
                            p.name
                        );
                    }
                }
            }
            arch_loss(&net, &w, a, (&vx, &vy))
        };
        let norm = dot(&g_alpha, &g_alpha).sqrt();
        let dir: BTreeMap<ParamId, Tensor> = g_alpha
            .iter()
            .map(|(id, t)| (*id, t.scaled(1.0 / norm)))
            .collect();
        let h = 1e-4;
        let fd = (-unrolled(&moved(&arch, &dir, 2.0 * h)) + 8.0 * unrolled(&moved(&arch, &dir, h))
            - 8.0 * unrolled(&moved(&arch, &dir, -h))
            + unrolled(&moved(&arch, &dir, -2.0 * h)))
            / (12.0 * h);
        let first = arch_gradient(
            &net,
            &store,
            &arch,
            (&tx, &ty),
            (&vx, &vy),
            Order::First,
            VirtualStep { lr, metric },
        )
        .unwrap();
        eprintln!(
            "{metric:?}: directional derivative along g: unrolled objective {fd:e}, second-order {norm:e}, first-order {:e}",
            dot(&first, &dir)
        );
        assert!(
            (fd - norm).abs() <= 1e-6 * norm,
            "{metric:?}: finite difference {fd:e} vs second-order gradient {norm:e}"
        );
        // the second-order term is not negligible: the first-order gradient is measurably further off
        assert!((fd - dot(&first, &dir)).abs() > 10.0 * (fd - norm).abs());
    }
}

/// Candidates whose sparsemax weight is exactly 0 are skipped, and so are their batch norms:
/// with every normal-cell row one-hot on `BiMap_0_normal`, a training-mode forward records
/// running-mean updates for that candidate on each normal edge and for no other candidate of
/// those edges (`docs/architecture.md`, mixed edges, says why this is kept).
#[test]
fn skipped_candidates_keep_their_running_means() {
    let config = NetworkConfig::paper(6, 3, 3);
    let (net, store, mut arch) = supernet(&config, 5);
    let names: Vec<&str> = config
        .search_space()
        .list(spd_nas::space::EdgeKind::Normal)
        .iter()
        .map(|p| p.name)
        .collect();
    let kept = names.iter().position(|n| *n == "BiMap_0_normal").unwrap();
    for id in arch.normal.clone() {
        let row = arch.store.get_mut(id).unwrap().value.data_mut();
        row.fill(0.0);
        row[kept] = 10.0;
    }
    assert!(arch.weights(false).iter().all(|w| w[kept] == 1.0));
    let ev = evaluate(
        &net,
        &store,
        Some(&arch),
        (&data(6, 4, 1).0, &data(6, 4, 1).1),
        Mode::Train,
        Differentiate::Nothing,
    )
    .unwrap();
    let updated: Vec<&str> = ev
        .ctx
        .buffer_updates
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for edge in 0..config.edges() {
        let on_edge = |candidate: &str| format!("cell1.edge{edge}.{candidate}.bn.running_mean");
        assert!(
            updated.contains(&on_edge(names[kept]).as_str()),
            "the active candidate of edge {edge} records no update: {updated:?}"
        );
        for (j, other) in names.iter().enumerate().filter(|&(j, _)| j != kept) {
            assert!(
                !updated.contains(&on_edge(other).as_str()),
                "skipped candidate {j} ({other}) of edge {edge} moved its running mean"
            );
        }
    }
}

/// The network's `karcher_steps` is the Karcher step count of its batch norms' barycentres too:
/// the running-mean update the stem's batch norm records (its input, `BiMap(x)`, does not depend
/// on the setting) changes from 1 to 2 steps, and so does every other batch norm's; the same
/// setting twice records the same bits.
#[test]
fn network_karcher_steps_reach_every_batch_norm() {
    let updates = |steps: usize| {
        let mut config = NetworkConfig::paper(6, 3, 3);
        config.spec.ops.karcher_steps = steps;
        let (net, store, arch) = supernet(&config, 5);
        let (x, y) = data(6, 4, 1);
        evaluate(
            &net,
            &store,
            Some(&arch),
            (&x, &y),
            Mode::Train,
            Differentiate::Nothing,
        )
        .unwrap()
        .ctx
        .buffer_updates
    };
    let (one, two) = (updates(1), updates(2));
    assert_eq!(one, updates(1));
    assert_eq!(one.len(), two.len());
    assert!(one.iter().any(|(name, _)| name == "stem.bn.running_mean"));
    for ((name, a), (other, b)) in one.iter().zip(&two) {
        assert_eq!(name, other);
        assert_ne!(a, b, "{name} does not depend on karcher_steps");
    }
}
