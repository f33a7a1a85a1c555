use super::*;
use crate::graph::Graph;
use crate::manifold::{Manifold, StiefelMetric};
use crate::ops::{arith::dot_const, arith::lincomb, bimap::bimap};
use crate::param::ParamId;
use spd_linalg::random::{random_spd, random_stiefel, seeded_rng};

/// Brockett cost `−tr(Wᵀ A W)` for a fixed SPD `A`, minimised over `St(n, p)`.
fn brockett(store: &ParamStore, w: ParamId, a: &Tensor) -> (f64, Gradients) {
    let p = store.get(w).unwrap().value.cols();
    brockett_weighted(store, w, a, &Tensor::identities(1, 1, p))
}

/// `−tr(D Wᵀ A W)` for fixed `A` and `D`.
fn brockett_weighted(store: &ParamStore, w: ParamId, a: &Tensor, d: &Tensor) -> (f64, Gradients) {
    let mut g = Graph::new();
    let wv = g.param(store, w).unwrap();
    let av = g.constant(a.clone());
    let y = bimap(&mut g, av, wv).unwrap();
    let loss = dot_const(&mut g, y, &d.scaled(-1.0)).unwrap();
    (g.value(loss).data()[0], g.backward(loss).unwrap())
}

fn stiefel_store(seed: u64) -> (ParamStore, ParamId, Tensor) {
    stiefel_store_of(seed, 8, 3)
}

/// A store holding one `n × p` Stiefel weight, and an `n × n` SPD `A`.
fn stiefel_store_of(seed: u64, n: usize, p: usize) -> (ParamStore, ParamId, Tensor) {
    let mut rng = seeded_rng(seed);
    let mut store = ParamStore::new();
    let w = random_stiefel(n, p, &mut rng);
    let w = store
        .add(
            "w",
            Manifold::Stiefel,
            Tensor::from_matrices(1, &[w.as_ref()]).unwrap(),
        )
        .unwrap();
    let a = random_spd(n, &mut rng);
    (store, w, Tensor::from_matrices(1, &[a.as_ref()]).unwrap())
}

#[test]
fn stiefel_weights_stay_on_the_manifold_for_1000_steps() {
    for (use_adam, metric) in [false, true]
        .into_iter()
        .flat_map(|a| [StiefelMetric::Embedded, StiefelMetric::Canonical].map(|m| (a, m)))
    {
        let (mut store, w, a) = stiefel_store(1);
        let (first, _) = brockett(&store, w, &a);
        let mut sgd = Sgd::new(0.05)
            .with_momentum(0.9)
            .with_stiefel_metric(metric);
        let mut adam = Adam::new(0.01).with_stiefel_metric(metric);
        let mut last = first;
        for _ in 0..1000 {
            let (l, grads) = brockett(&store, w, &a);
            last = l;
            if use_adam {
                adam.step(&mut store, &grads).unwrap()
            } else {
                sgd.step(&mut store, &grads).unwrap()
            }
        }
        let wv = &store.get(w).unwrap().value;
        assert!(
            spd_linalg::orthonormality_error(wv.mat(0)) <= 1e-10,
            "adam {use_adam}, {metric:?}"
        );
        // the optimum is minus the sum of the 3 largest eigenvalues of A
        let eig = spd_linalg::eigvalsh(a.mat(0)).unwrap();
        let optimum = -(eig[5] + eig[6] + eig[7]);
        assert!(
            last < first && (last - optimum).abs() < 1e-3 * optimum.abs(),
            "adam {use_adam}, {metric:?}: {first} → {last}, optimum {optimum}"
        );
    }
}

/// On a square Stiefel weight, an SGD step along the canonical gradient is the embedded
/// metric's step at twice the learning rate (to rounding).
#[test]
fn canonical_sgd_step_on_square_weights_is_the_embedded_step_at_twice_the_rate() {
    let (store, w, a) = stiefel_store_of(3, 6, 6);
    let w0 = store.get(w).unwrap().value.clone();
    // −tr(D WᵀAW) with distinct weights D: on square W, tr(WᵀAW) alone is constant
    let d = faer::Mat::<f64>::from_fn(6, 6, |i, j| if i == j { (i + 1) as f64 } else { 0.0 });
    let (_, grads) = brockett_weighted(
        &store,
        w,
        &a,
        &Tensor::from_matrices(1, &[d.as_ref()]).unwrap(),
    );
    let mut canonical = store.clone();
    Sgd::new(0.02)
        .with_stiefel_metric(StiefelMetric::Canonical)
        .step(&mut canonical, &grads)
        .unwrap();
    let mut embedded = store.clone();
    Sgd::new(0.04).step(&mut embedded, &grads).unwrap();
    let (c, e) = (
        &canonical.get(w).unwrap().value,
        &embedded.get(w).unwrap().value,
    );
    let moved = spd_linalg::dense::distance_frobenius(e.mat(0), w0.mat(0));
    assert!(moved > 1e-3, "the step moved W by {moved}");
    let gap = spd_linalg::dense::distance_frobenius(c.mat(0), e.mat(0));
    assert!(gap <= 1e-13, "‖W_canonical − W_embedded(2η)‖ = {gap:e}");
}

/// `f(X) = ⟨C, X⟩ + ⟨D, X⁻¹⟩`-like objective through the BN-style SPD bias: here
/// `‖log X − log T‖²` pulled towards a target `T`; the bias stays SPD and reaches it.
#[test]
fn spd_bias_stays_spd_and_converges() {
    for use_adam in [false, true] {
        let mut rng = seeded_rng(2);
        let target = random_spd(4, &mut rng);
        let target_log =
            Tensor::from_matrices(1, &[spd_linalg::logm(target.as_ref()).unwrap().as_ref()])
                .unwrap();
        let mut store = ParamStore::new();
        let b = store
            .add("b", Manifold::Spd, Tensor::identities(1, 1, 4))
            .unwrap();
        let mut sgd = Sgd::new(0.1);
        let mut adam = Adam::new(0.05);
        for _ in 0..1000 {
            let mut g = Graph::new();
            let x = g.param(&store, b).unwrap();
            let l = crate::ops::eig::log_eig(&mut g, x).unwrap();
            let t = g.constant(target_log.clone());
            let d = lincomb(&mut g, l, 1.0, t, -1.0).unwrap();
            let dv = g.value(d).clone();
            let loss = dot_const(&mut g, d, &dv).unwrap();
            let grads = g.backward(loss).unwrap();
            if use_adam {
                adam.step(&mut store, &grads).unwrap()
            } else {
                sgd.step(&mut store, &grads).unwrap()
            }
            spd_linalg::check_spd(store.get(b).unwrap().value.mat(0)).unwrap();
        }
        let reached =
            spd_linalg::distance(store.get(b).unwrap().value.mat(0), target.as_ref()).unwrap();
        assert!(reached < 1e-3, "adam {use_adam}: distance {reached}");
    }
}

/// Adam on the convex `½‖x − a‖²` (Euclidean) reaches the minimiser; weight decay shifts it to
/// `a/(1+λ)`.
#[test]
fn adam_minimises_a_convex_quadratic() {
    for wd in [0.0, 0.5] {
        let a = Tensor::from_vec([1, 1, 1, 4], vec![1.0, -2.0, 0.5, 3.0]).unwrap();
        let mut store = ParamStore::new();
        let x = store
            .add("x", Manifold::Euclidean, Tensor::zeros([1, 1, 1, 4]))
            .unwrap();
        let mut adam = Adam::new(0.05).with_betas(0.5, 0.999).with_weight_decay(wd);
        for _ in 0..2000 {
            let mut g = Graph::new();
            let xv = g.param(&store, x).unwrap();
            let av = g.constant(a.clone());
            let d = lincomb(&mut g, xv, 1.0, av, -1.0).unwrap();
            let dv = g.value(d).clone();
            // ⟨d₀, d⟩ with d₀ = d(x) frozen has the gradient of ½‖d‖² at x.
            let loss = dot_const(&mut g, d, &dv).unwrap();
            adam.step(&mut store, &g.backward(loss).unwrap()).unwrap();
        }
        let got = &store.get(x).unwrap().value;
        for (v, t) in got.data().iter().zip(a.data()) {
            assert!(
                (v - t / (1.0 + wd)).abs() < 1e-3,
                "wd {wd}: {v} vs {}",
                t / (1.0 + wd)
            );
        }
    }
}

#[test]
fn clipping_bounds_the_global_norm() {
    let (store, w, a) = stiefel_store(3);
    let (_, mut grads) = brockett(&store, w, &a);
    let before = clip_grad_norm(&mut grads, 1e-3);
    assert!(before > 1e-3);
    let after: f64 = grads
        .params()
        .values()
        .map(Tensor::norm_sq)
        .sum::<f64>()
        .sqrt();
    assert!((after - 1e-3).abs() < 1e-15);
}

#[test]
fn clipping_a_subset_leaves_the_rest() {
    let (mut store, w, a) = stiefel_store(5);
    let other = store
        .add("v", Manifold::Stiefel, store.get(w).unwrap().value.clone())
        .unwrap();
    let mut g = Graph::new();
    let (wv, vv, av) = (
        g.param(&store, w).unwrap(),
        g.param(&store, other).unwrap(),
        g.constant(a.clone()),
    );
    let y1 = bimap(&mut g, av, wv).unwrap();
    let y2 = bimap(&mut g, av, vv).unwrap();
    let y = lincomb(&mut g, y1, 1.0, y2, 1.0).unwrap();
    let loss = dot_const(&mut g, y, &Tensor::identities(1, 1, 3)).unwrap();
    let mut grads = g.backward(loss).unwrap();
    let untouched = grads.param(other).unwrap().clone();
    let before = clip_grad_norm_of(&mut grads, &[w], 1e-3);
    assert!(before > 1e-3);
    assert!((grads.param(w).unwrap().norm_sq().sqrt() - 1e-3).abs() < 1e-15);
    assert_eq!(grads.param(other).unwrap(), &untouched);
}

#[test]
fn frozen_parameters_do_not_move() {
    let (mut store, w, a) = stiefel_store(4);
    store.get_mut(w).unwrap().trainable = false;
    let before = store.get(w).unwrap().value.clone();
    let (_, grads) = brockett(&store, w, &a);
    assert!(grads.param(w).is_none());
    Sgd::new(0.1).step(&mut store, &grads).unwrap();
    assert_eq!(store.get(w).unwrap().value, before);
}

/// Weight decay acts on Euclidean parameters only: an SGD or Adam step with decay moves an SPD
/// and a Stiefel parameter exactly as the step without it, and a Euclidean one differently.
#[test]
fn weight_decay_moves_euclidean_parameters_only() {
    let mut rng = seeded_rng(9);
    let mut store = ParamStore::new();
    let spd = random_spd(3, &mut rng);
    let st = random_stiefel(4, 2, &mut rng);
    let ids = [
        store
            .add(
                "spd",
                Manifold::Spd,
                Tensor::from_matrices(1, &[spd.as_ref()]).unwrap(),
            )
            .unwrap(),
        store
            .add(
                "st",
                Manifold::Stiefel,
                Tensor::from_matrices(1, &[st.as_ref()]).unwrap(),
            )
            .unwrap(),
        store
            .add(
                "e",
                Manifold::Euclidean,
                Tensor::from_vec([1, 1, 1, 3], vec![0.5, -1.0, 2.0]).unwrap(),
            )
            .unwrap(),
    ];
    let mut g = Graph::new();
    let mut loss = None;
    for id in ids {
        let v = g.param(&store, id).unwrap();
        let c = g.value(v).scaled(0.3);
        let l = dot_const(&mut g, v, &c).unwrap();
        loss = Some(match loss {
            None => l,
            Some(s) => lincomb(&mut g, s, 1.0, l, 1.0).unwrap(),
        });
    }
    let grads = g.backward(loss.unwrap()).unwrap();
    let stepped = |decay: f64, adam: bool| {
        let mut s = store.clone();
        if adam {
            Adam::new(0.01)
                .with_weight_decay(decay)
                .step(&mut s, &grads)
                .unwrap();
        } else {
            Sgd::new(0.01)
                .with_weight_decay(decay)
                .step(&mut s, &grads)
                .unwrap();
        }
        s
    };
    for adam in [false, true] {
        let (plain, decayed) = (stepped(0.0, adam), stepped(0.5, adam));
        for id in &ids[..2] {
            assert_eq!(
                plain.get(*id).unwrap().value,
                decayed.get(*id).unwrap().value
            );
        }
        assert_ne!(
            plain.get(ids[2]).unwrap().value,
            decayed.get(ids[2]).unwrap().value,
            "adam {adam}: decay did not move the Euclidean parameter"
        );
    }
}
